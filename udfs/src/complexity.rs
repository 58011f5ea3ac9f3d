//! Bounds on how deep a statement may nest, so that no statement a client sends can overflow a
//! stack (issue 25: 1,000 `+` terms, 20,000 `OR` terms or 500 `UNION ALL` branches aborted the
//! server).
//!
//! The parser reads chains of infix and postfix operators (`a + b + c`, `x::int::int`,
//! `q UNION ALL q UNION ALL q`) in a loop, and nesting (parentheses, calls, subqueries, `NOT`,
//! `CASE`) by recursion that [`crate::dialect::MAX_NESTING`] bounds; the tree it builds is as
//! deep as the longest chain, and everything after it (rewrites, planning, evaluation, even
//! dropping the tree) walks it recursively. So, before parsing, [`check_tokens`] bounds the
//! tree's depth from the tokens alone, in one linear pass: a chain has at most as many links as
//! operator tokens between its separators, nested chains add up. `AND` and `OR` do not count:
//! after parsing, [`balance`] rebuilds their chains as balanced trees (they are associative), so
//! 20,000 `OR` terms nest 15 deep, not 20,000.
//!
//! [`MAX_DEPTH`] is set so that what PostgreSQL accepts in practice runs (BI tools' long
//! filters, a thousand terms, hundreds of casts or union branches) on the stack the server's
//! threads have; beyond it the statement fails with 54001, "statement is too complex".

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Statement, Visit, VisitMut, Visitor, VisitorMut};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use std::ops::ControlFlow;

/// The deepest a statement's tree may be, as [`check_tokens`] bounds it.
pub const MAX_DEPTH: usize = 5_000;

/// How deep subqueries in expressions (scalar, `IN`, `EXISTS`) may nest. DataFusion 55's
/// optimizer takes time that doubles with each level (2 s at 14 levels in a debug build, for
/// ever at 30); derived tables in FROM do not count, they plan in linear time.
pub const MAX_SUBQUERY_NESTING: usize = 12;

/// Fails with the nesting found when subqueries in `statement`'s expressions nest deeper than
/// [`MAX_SUBQUERY_NESTING`].
pub fn check_subqueries(statement: &Statement) -> Result<(), usize> {
    struct Nesting {
        now: usize,
    }
    impl Visitor for Nesting {
        type Break = usize;
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<usize> {
            if matches!(expr, Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }) {
                self.now += 1;
                if self.now > MAX_SUBQUERY_NESTING {
                    return ControlFlow::Break(self.now);
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<usize> {
            if matches!(expr, Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }) {
                self.now -= 1;
            }
            ControlFlow::Continue(())
        }
    }
    match statement.visit(&mut Nesting { now: 0 }) {
        ControlFlow::Break(n) => Err(n),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Fails when the statement in `tokens` may nest deeper than [`MAX_DEPTH`]; the error says how
/// deep it may nest.
pub fn check_tokens<'a>(tokens: impl IntoIterator<Item = &'a Token>) -> Result<(), usize> {
    // Per open parenthesis: operator tokens since the last separator at that level, and set
    // operations since the statement began at that level (their chain spans commas).
    let mut levels: Vec<(usize, usize)> = vec![(0, 0)];
    // The sum of both counters over `levels`, kept up to date.
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for t in tokens {
        match t {
            Token::LParen | Token::LBracket => {
                levels.push((0, 0));
                depth += 1;
            }
            Token::RParen | Token::RBracket => {
                if levels.len() > 1
                    && let Some((ops, sets)) = levels.pop()
                {
                    depth -= ops + sets + 1;
                }
                // `a[1][1]` and `(a)::int` chain on after the closing token.
                bump(&mut levels, &mut depth, false);
            }
            Token::Comma => reset(&mut levels, &mut depth, false),
            Token::SemiColon => reset(&mut levels, &mut depth, true),
            Token::Word(w) => match w.keyword {
                Keyword::AND | Keyword::OR => reset(&mut levels, &mut depth, false),
                Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT => bump(&mut levels, &mut depth, true),
                Keyword::IS
                | Keyword::NOT
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::OVERLAPS
                | Keyword::ESCAPE
                | Keyword::ANY
                | Keyword::ALL
                | Keyword::SOME => bump(&mut levels, &mut depth, false),
                _ => {}
            },
            Token::Whitespace(_)
            | Token::EOF
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_)
            | Token::LBrace
            | Token::RBrace => {}
            // Every other token is an operator: `+`, `||`, `::`, `=`, `~`, `->`, `.`, ...
            _ => bump(&mut levels, &mut depth, false),
        }
        deepest = deepest.max(depth);
        if deepest > MAX_DEPTH {
            return Err(deepest);
        }
    }
    Ok(())
}

/// One more link at the innermost level: an operator, or a set operation.
fn bump(levels: &mut [(usize, usize)], depth: &mut usize, set_operation: bool) {
    if let Some(level) = levels.last_mut() {
        if set_operation {
            level.1 += 1;
        } else {
            level.0 += 1;
        }
        *depth += 1;
    }
}

/// A separator at the innermost level: operator chains end there; at a statement's end, set
/// operation chains too.
fn reset(levels: &mut [(usize, usize)], depth: &mut usize, statement_end: bool) {
    if let Some(level) = levels.last_mut() {
        *depth -= level.0;
        level.0 = 0;
        if statement_end {
            *depth -= level.1;
            level.1 = 0;
        }
    }
}

/// Rebuilds every long chain of `AND` (and of `OR`) in `statement` as a balanced tree of the
/// same operands in the same order. Both operators are associative in SQL's three-valued logic,
/// so the answer is the same; the depth falls from n to about log2(n).
pub fn balance(statement: &mut Statement) {
    struct Balance;
    impl VisitorMut for Balance {
        type Break = ();
        // Before the children: the chain is rebuilt before anything descends into it.
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let op = match expr {
                Expr::BinaryOp { op: op @ (BinaryOperator::And | BinaryOperator::Or), .. } => op.clone(),
                _ => return ControlFlow::Continue(()),
            };
            if left_spine(expr, &op) > SHORT_CHAIN {
                let chain = std::mem::replace(expr, Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()));
                *expr = rebuild(flatten(chain, &op), &op);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Balance);
}

/// Chains this long are left as the parser built them (a balanced tree's spines are shorter).
const SHORT_CHAIN: usize = 16;

/// How many `op` nodes the left spine of `expr` has (the parser builds chains left-deep).
fn left_spine(mut expr: &Expr, op: &BinaryOperator) -> usize {
    let mut n = 0;
    while let Expr::BinaryOp { left, op: o, .. } = expr
        && o == op
    {
        n += 1;
        expr = left;
    }
    n
}

/// The operands of a chain of `op`, in order, without recursion.
fn flatten(expr: Expr, op: &BinaryOperator) -> Vec<Expr> {
    let mut out = vec![];
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::BinaryOp { left, op: o, right } if &o == op => {
                stack.push(*right);
                stack.push(*left);
            }
            other => out.push(other),
        }
    }
    out
}

/// A balanced tree of `op` over `operands` (at least one), in order.
fn rebuild(mut operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    // Pairwise, level by level: no recursion, and each level halves the count.
    while operands.len() > 1 {
        let mut next = Vec::with_capacity(operands.len().div_ceil(2));
        let mut it = operands.into_iter();
        while let Some(left) = it.next() {
            match it.next() {
                Some(right) => {
                    next.push(Expr::BinaryOp { left: Box::new(left), op: op.clone(), right: Box::new(right) })
                }
                None => next.push(left),
            }
        }
        operands = next;
    }
    operands.pop().unwrap_or(Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{JourneyDialect, parse_sql};
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn bound(sql: &str) -> Result<(), usize> {
        check_tokens(&Tokenizer::new(&JourneyDialect, sql).tokenize().expect("tokens"))
    }

    #[test]
    fn what_postgresql_accepts_in_practice_passes() {
        let terms = |n: usize, op: &str, term: &str| vec![term; n].join(op);
        for sql in [
            format!("SELECT {}", terms(1000, " + ", "1")),
            format!("SELECT {}", terms(1000, " || ", "'a'")),
            format!("SELECT * FROM t WHERE {}", terms(20_000, " OR ", "x = 1")),
            format!("SELECT * FROM t WHERE {}", terms(1000, " AND ", "x <> 1")),
            format!("SELECT 1{}", "::int".repeat(300)),
            terms(500, " UNION ALL ", "SELECT a, b, c FROM t"),
            format!("SELECT x IN ({}) FROM t", terms(50_000, ", ", "1")),
            format!("SELECT {}", terms(30_000, ", ", "a + 1")),
        ] {
            assert_eq!(bound(&sql), Ok(()), "{}...", &sql[..60]);
        }
    }

    #[test]
    fn deeper_chains_are_refused() {
        let sql = format!("SELECT {}", vec!["1"; 10_000].join(" + "));
        assert!(bound(&sql).is_err());
        let sql = format!("SELECT 1{}", "::int".repeat(6000));
        assert!(bound(&sql).is_err());
        let sql = vec!["SELECT a, b FROM t"; 6000].join(" UNION ALL ");
        assert!(bound(&sql).is_err(), "set operations chain across commas");
        // Chains inside parentheses add to the chain around them.
        let half = vec!["1"; 3000].join(" + ");
        assert!(bound(&format!("SELECT {half} + ({half})")).is_err());
    }

    #[test]
    fn subqueries_in_expressions_nest_at_most_twelve_deep() {
        let scalar = |n: usize| format!("SELECT {}1{}", "(SELECT ".repeat(n), ")".repeat(n));
        let within =
            |n: usize| format!("SELECT 1 WHERE 1 IN {}(SELECT 1){}", "(SELECT 1 WHERE 1 IN ".repeat(n), ")".repeat(n));
        let check = |sql: String| {
            check_subqueries(&crate::dialect::parser(&sql).and_then(|mut p| p.parse_statements()).expect("parse")[0])
        };
        assert_eq!(check(scalar(12)), Ok(()));
        assert_eq!(check(scalar(13)), Err(13));
        assert_eq!(check(within(11)), Ok(()));
        assert!(check(within(30)).is_err());
        let derived = format!("SELECT * FROM {}(SELECT 1 AS x) t{}", "(SELECT * FROM ".repeat(40), ") t".repeat(40));
        assert_eq!(check(derived), Ok(()), "derived tables do not count");
    }

    fn depth(e: &Expr) -> usize {
        match e {
            Expr::BinaryOp { left, right, .. } => 1 + depth(left).max(depth(right)),
            Expr::Nested(e) => 1 + depth(e),
            _ => 1,
        }
    }

    #[test]
    fn and_or_chains_are_balanced_in_order() {
        let sql = format!("SELECT {} FROM t", (0..1000).map(|i| format!("x = {i}")).collect::<Vec<_>>().join(" OR "));
        let mut statements = parse_sql(&sql).expect("parse");
        balance(&mut statements[0]);
        let Statement::Query(q) = &statements[0] else { panic!("query") };
        let datafusion::sql::sqlparser::ast::SetExpr::Select(s) = q.body.as_ref() else { panic!("select") };
        let datafusion::sql::sqlparser::ast::SelectItem::UnnamedExpr(e) = &s.projection[0] else { panic!("item") };
        assert!(depth(e) <= 12, "{}", depth(e));
        let operands = flatten(e.clone(), &BinaryOperator::Or);
        let texts: Vec<String> = operands.iter().map(|o| o.to_string()).collect();
        let want: Vec<String> = (0..1000).map(|i| format!("x = {i}")).collect();
        assert_eq!(texts, want);
        // Mixed chains keep their meaning: AND binds tighter, parentheses stay.
        let mut statements = parse_sql("SELECT a AND b OR c AND (d OR e) OR f").expect("parse");
        balance(&mut statements[0]);
        assert_eq!(statements[0].to_string(), "SELECT a AND b OR c AND (d OR e) OR f");
        // A long chain of ANDs inside an OR chain: both balanced, the operands in order.
        let ands = (0..100).map(|i| format!("y = {i}")).collect::<Vec<_>>().join(" AND ");
        let sql = format!("SELECT * FROM t WHERE {ands} OR {ands}");
        let mut statements = parse_sql(&sql).expect("parse");
        balance(&mut statements[0]);
        let again = parse_sql(&statements[0].to_string()).expect("reparse");
        assert_eq!(again[0].to_string(), sql, "the same statement, printed");
    }
}
