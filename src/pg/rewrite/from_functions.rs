//! Functions in FROM: scalar functions as one-row tables, set-returning functions' columns
//! named after their alias, `ARRAY(SELECT ... FROM unnest(...))` as an array transform.

use super::*;

/// PostgreSQL reads a scalar function in FROM as a one-row table with one column named after
/// the alias: `string_to_array(...) s` (Grafana's table list) becomes `(SELECT
/// string_to_array(...) AS s) AS s`. A set-returning function of one column names its column
/// the same way: `generate_series(...) AS i` has a column `i`, and without an alias the column
/// is `generate_series` (DataFusion would say `value`).
pub(super) fn scalar_functions_in_from(factor: &mut TableFactor) {
    use datafusion::sql::sqlparser::ast::{TableAlias, TableAliasColumnDef};
    let TableFactor::Table { name, args: Some(args), alias, .. } = factor else { return };
    let is_series = match name.0.as_slice() {
        [f] => part(f).is_some_and(|f| f.eq_ignore_ascii_case("generate_series")),
        [schema, f] => {
            part(schema).is_some_and(|s| s.eq_ignore_ascii_case(PG_CATALOG))
                && part(f).is_some_and(|f| f.eq_ignore_ascii_case("generate_series"))
        }
        _ => false,
    };
    if is_series {
        let function = "generate_series";
        let alias = alias.get_or_insert_with(|| TableAlias {
            explicit: true,
            name: Ident::new(function),
            columns: vec![],
            at: None,
        });
        if alias.columns.is_empty() {
            alias.columns = vec![TableAliasColumnDef { name: alias.name.clone(), data_type: None }];
        }
        return;
    }
    let Some(function) = (name.0.len() == 1).then(|| part(&name.0[0])).flatten().map(str::to_ascii_lowercase) else {
        return;
    };
    let Some(alias) = alias else { return };
    if !alias.columns.is_empty() {
        return;
    }
    match function.as_str() {
        "string_to_array" | "regexp_split_to_array" | "current_schemas" | "parse_ident" => {
            let call = Expr::Function(datafusion::sql::sqlparser::ast::Function {
                name: name.clone(),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
                    duplicate_treatment: None,
                    args: args.args.clone(),
                    clauses: vec![],
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: vec![],
            });
            let Ok(mut statements) = journeydb_udfs::dialect::parse_sql("SELECT 1") else { return };
            let Some(Statement::Query(mut query)) = statements.pop() else { return };
            if let SetExpr::Select(select) = query.body.as_mut() {
                select.projection = vec![SelectItem::ExprWithAlias { expr: call, alias: alias.name.clone() }];
            }
            let alias = TableAlias { explicit: true, name: alias.name.clone(), columns: vec![], at: None };
            *factor = TableFactor::Derived { lateral: false, subquery: query, alias: Some(alias), sample: None };
        }
        _ => {}
    }
}

pub(super) fn function_name_is(f: &datafusion::sql::sqlparser::ast::Function, name: &str) -> bool {
    f.name.0.last().and_then(part).is_some_and(|n| n.eq_ignore_ascii_case(name))
        && matches!(&f.args, FunctionArguments::Subquery(q) if !is_empty_query(q))
}

/// `ARRAY(SELECT <e> FROM [pg_catalog.]unnest(<arr>) [AS] x)` as
/// `coalesce(array_transform(<arr>, x -> <e>), make_array())`.
pub(super) fn unnest_map(q: &Query) -> Option<Expr> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else { return None };
    let no_grouping = matches!(&s.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if s.projection.len() != 1 || s.selection.is_some() || !no_grouping || s.having.is_some() || s.distinct.is_some() {
        return None;
    }
    let (SelectItem::UnnamedExpr(body) | SelectItem::ExprWithAlias { expr: body, .. }) = &s.projection[0] else {
        return None;
    };
    let [from] = s.from.as_slice() else { return None };
    if !from.joins.is_empty() {
        return None;
    }
    let TableFactor::Table { name, alias: Some(alias), args: Some(args), .. } = &from.relation else { return None };
    if !name.0.last().and_then(part).is_some_and(|n| n.eq_ignore_ascii_case("unnest")) || !alias.columns.is_empty() {
        return None;
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] = args.args.as_slice() else { return None };
    let sql = format!("coalesce(array_transform({array}, {} -> {body}), make_array())", alias.name);
    Parser::new(&datafusion::sql::sqlparser::dialect::DuckDbDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}
