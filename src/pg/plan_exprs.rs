//! Rewriting a plan node's expressions where their types matter: each part of each expression
//! is seen with the schema it reads, and each expression keeps the name the nodes above refer
//! to it by. Used by [`super::time_zone`] and [`super::text_cast`].

use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};
use std::sync::Arc;

/// `node` with `rewrite` applied to every part of its expressions (bottom up), given the
/// schema they read (nodes of one input only; others are left as they are). Each expression
/// keeps the name it had, which the nodes above refer to it by.
pub(crate) fn map_typed_expressions(
    node: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    let schema = match node.inputs().as_slice() {
        [input] => Arc::clone(input.schema()),
        _ => return Ok(Transformed::no(node)),
    };
    let names = NamePreserver::new(&node);
    let node = node.map_expressions(|e| {
        let saved = names.save(&e);
        let rewritten = e.transform_up(|part| rewrite(part, &schema))?;
        Ok(if rewritten.transformed { rewritten.update_data(|e| saved.restore(e)) } else { rewritten })
    })?;
    if node.transformed { Ok(Transformed::yes(node.data.recompute_schema()?)) } else { Ok(node) }
}
