//! The SQL dialect journeydb parses: PostgreSQL's, without the one feature that made parsing
//! exponential.
//!
//! sqlparser's PostgreSQL dialect accepts any expression as a named argument's name
//! (`json_object('label': 'value')`), so every function argument is first parsed as an
//! expression in search of `=>` or `:`, then parsed again as the argument: nested calls
//! (`abs(abs(abs(...)))`, `coalesce(coalesce(...))`) took 2^depth parses, 3 s at depth 20 and
//! forever at 30 (issue 25). Named arguments keep working with identifier names
//! (`window => '7 days'`), the only form journeydb's functions take; everything else is
//! PostgreSQL's dialect, which the parser still recognises as such (`dialect()`).

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Statement, UnaryOperator, VacuumStatement};
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use std::any::TypeId;

/// How deep the parser may nest (parentheses, calls, subqueries; sqlparser counts a few levels
/// per parenthesis). PostgreSQL answers 48 nested parentheses and more; the parser's own
/// recursion is on a stack that grows as needed (`recursive-protection`), so the bound is about
/// what the planner behind it must walk, not about the parser.
pub const MAX_NESTING: usize = 1000;

/// A parser for `sql` in journeydb's dialect, with its nesting bound. A statement that may nest
/// deeper than [`crate::complexity::MAX_DEPTH`] is refused before it is parsed, as
/// [`ParserError::RecursionLimitExceeded`] (54001 at the wire).
pub fn parser(sql: &str) -> Result<Parser<'static>, ParserError> {
    let tokens = Tokenizer::new(&JourneyDialect, sql).tokenize_with_location()?;
    crate::complexity::check_tokens(tokens.iter().map(|t| &t.token))
        .map_err(|_| ParserError::RecursionLimitExceeded)?;
    Ok(Parser::new(&JourneyDialect).with_recursion_limit(MAX_NESTING).with_tokens_with_locations(tokens))
}

/// Parses statements in journeydb's dialect, long `AND`/`OR` chains balanced
/// ([`crate::complexity::balance`]).
pub fn parse_sql(sql: &str) -> Result<Vec<Statement>, ParserError> {
    let mut statements = parser(sql)?.parse_statements()?;
    for s in &mut statements {
        crate::complexity::check_subqueries(s).map_err(|_| ParserError::RecursionLimitExceeded)?;
        crate::complexity::balance(s);
    }
    Ok(statements)
}

/// Parses one expression in journeydb's dialect.
pub fn parse_expr(sql: &str) -> Result<Expr, ParserError> {
    parser(sql)?.parse_expr()
}

/// How tightly a unary sign binds its operand: between subscripts (130 in PostgreSQL's
/// dialect of sqlparser) and `COLLATE` (120), where PostgreSQL's table puts it.
const UNARY_SIGN_PRECEDENCE: u8 = 125;

/// PostgreSQL's dialect with named arguments named by identifiers only.
#[derive(Debug, Default, Clone, Copy)]
pub struct JourneyDialect;

const PG: PostgreSqlDialect = PostgreSqlDialect {};

/// Methods PostgreSQL's dialect overrides, passed through to it.
macro_rules! pass {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> $ret { PG.$name($($arg),*) })*
    };
}

impl Dialect for JourneyDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    /// `OPTIMIZE t`: compaction of a table's small files (Delta Lake's statement).
    fn supports_optimize_table(&self) -> bool {
        true
    }

    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        false
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        PG.get_next_precedence(parser)
    }

    /// `REINDEX [ (options) ] { INDEX | TABLE | SCHEMA | DATABASE | SYSTEM } [ CONCURRENTLY ]
    /// [ name ]`, which sqlparser does not know, read as `VACUUM REINDEX [table]` (its statement
    /// with a reindex flag): the name is kept for REINDEX TABLE, whose table must exist. The
    /// engine answers it as the no-op it is on Parquet files (issue 24).
    fn parse_statement(&self, parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        if !parser.peek_keyword(Keyword::REINDEX) {
            return None;
        }
        Some(parse_reindex(parser))
    }

    /// A unary `-` or `+` binds tighter than `^`, `COLLATE` and `AT TIME ZONE`, and looser
    /// than `::` and subscripts, as in PostgreSQL: `-2 ^ 2` is `(-2) ^ 2`, `-x::int` is
    /// `-(x::int)`. sqlparser reads its operand up to `*` (issue 24).
    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let op = match parser.peek_token_ref().token {
            Token::Minus => UnaryOperator::Minus,
            Token::Plus => UnaryOperator::Plus,
            _ => return None,
        };
        parser.next_token();
        Some(parser.parse_subexpr(UNARY_SIGN_PRECEDENCE).map(|expr| Expr::UnaryOp { op, expr: Box::new(expr) }))
    }

    /// `a IS [NOT] DISTINCT FROM b`: `b` binds as tightly as `IS` does, as in PostgreSQL, so
    /// `x IS DISTINCT FROM y AND z` is `(x IS DISTINCT FROM y) AND z`. sqlparser reads the whole
    /// rest of the expression as `b` (issue 24).
    fn parse_infix(&self, parser: &mut Parser, expr: &Expr, precedence: u8) -> Option<Result<Expr, ParserError>> {
        // Read in place: this runs before every binary operator of every statement.
        let [is, second, third, fourth] = parser.peek_tokens_ref::<4>().map(|t| &t.token);
        // Comparisons do not chain in PostgreSQL (`a < b = c` is a syntax error, `(a < b) = c`
        // is not): they are non-associative at one level.
        let comparison = |op: &BinaryOperator| {
            matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
            )
        };
        if precedence == PG.prec_value(Precedence::Eq)
            && matches!(expr, Expr::BinaryOp { op, .. } if comparison(op))
            && matches!(is, Token::Eq | Token::Neq | Token::Lt | Token::LtEq | Token::Gt | Token::GtEq)
        {
            return Some(Err(ParserError::ParserError(format!("syntax error at or near \"{is}\""))));
        }
        let keyword = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
        if !keyword(is, Keyword::IS) {
            return None;
        }
        let negated = keyword(second, Keyword::NOT);
        let (distinct, from) = if negated { (third, fourth) } else { (second, third) };
        if !keyword(distinct, Keyword::DISTINCT) || !keyword(from, Keyword::FROM) {
            return None;
        }
        for _ in 0..(3 + usize::from(negated)) {
            parser.next_token();
        }
        let left = Box::new(expr.clone());
        Some(parser.parse_subexpr(precedence).map(|right| {
            if negated {
                Expr::IsNotDistinctFrom(left, Box::new(right))
            } else {
                Expr::IsDistinctFrom(left, Box::new(right))
            }
        }))
    }

    pass! {
        identifier_quote_style(identifier: &str) -> Option<char>;
        is_delimited_identifier_start(ch: char) -> bool;
        is_identifier_start(ch: char) -> bool;
        is_identifier_part(ch: char) -> bool;
        supports_unicode_string_literal() -> bool;
        is_reserved_for_identifier(kw: Keyword) -> bool;
        is_custom_operator_part(ch: char) -> bool;
        supports_filter_during_aggregation() -> bool;
        supports_group_by_expr() -> bool;
        prec_value(prec: Precedence) -> u8;
        allow_extract_custom() -> bool;
        allow_extract_single_quotes() -> bool;
        supports_create_index_with_clause() -> bool;
        supports_explain_with_utility_options() -> bool;
        supports_listen_notify() -> bool;
        supports_factorial_operator() -> bool;
        supports_bitwise_shift_operators() -> bool;
        supports_comment_on() -> bool;
        supports_load_extension() -> bool;
        supports_named_fn_args_with_colon_operator() -> bool;
        supports_empty_projections() -> bool;
        supports_nested_comments() -> bool;
        supports_string_escape_constant() -> bool;
        supports_numeric_literal_underscores() -> bool;
        supports_array_typedef_with_brackets() -> bool;
        supports_geometric_types() -> bool;
        supports_set_names() -> bool;
        supports_alter_column_type_using() -> bool;
        supports_notnull_operator() -> bool;
        supports_interval_options() -> bool;
        supports_insert_table_alias() -> bool;
        supports_create_table_like_parenthesized() -> bool;
        supports_select_wildcard_with_alias() -> bool;
        supports_comma_separated_trim() -> bool;
        supports_xml_expressions() -> bool;
        supports_comment_optimizer_hint() -> bool;
    }
}

fn parse_reindex(parser: &mut Parser) -> Result<Statement, ParserError> {
    parser.expect_keyword(Keyword::REINDEX)?;
    if parser.consume_token(&Token::LParen) {
        // Options (`VERBOSE`, `TABLESPACE x`, `CONCURRENTLY`): nothing to honour.
        let mut depth = 1;
        while depth > 0 {
            match parser.next_token().token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::EOF => return parser.expected("a closing parenthesis", parser.peek_token()),
                _ => {}
            }
        }
    }
    let kind = parser.expect_one_of_keywords(&[
        Keyword::INDEX,
        Keyword::TABLE,
        Keyword::SCHEMA,
        Keyword::DATABASE,
        Keyword::SYSTEM,
    ])?;
    let _ = parser.parse_keyword(Keyword::CONCURRENTLY);
    let name = match parser.peek_token().token {
        Token::EOF | Token::SemiColon => None,
        _ => Some(parser.parse_object_name(false)?),
    };
    if name.is_none() && matches!(kind, Keyword::INDEX | Keyword::TABLE | Keyword::SCHEMA) {
        return parser.expected("a name", parser.peek_token());
    }
    Ok(Statement::Vacuum(VacuumStatement {
        full: false,
        sort_only: false,
        delete_only: false,
        reindex: true,
        recluster: false,
        table_name: if kind == Keyword::TABLE { name } else { None },
        threshold: None,
        boost: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn parse(sql: &str) -> Duration {
        let started = Instant::now();
        parser(sql).and_then(|mut p| p.parse_statements()).expect(sql);
        started.elapsed()
    }

    /// Issue 25: nested calls parse in linear time (they were 2^depth: 3.3 s at depth 20).
    #[test]
    fn nested_calls_parse_in_linear_time() {
        for (open, close) in [("abs(", ")"), ("coalesce(", ")"), ("upper(", ")"), ("(SELECT ", ")"), ("ARRAY[", "]")] {
            let sql = format!("SELECT {}1{}", open.repeat(40), close.repeat(40));
            let took = parse(&sql);
            // 2^40 parses before; a debug build parses these in milliseconds.
            assert!(took < Duration::from_secs(5), "{open} x 40: {took:?}");
        }
    }

    /// Issue 24: the right side of `IS [NOT] DISTINCT FROM` ends where PostgreSQL ends it.
    #[test]
    fn is_distinct_from_binds_as_tightly_as_is() {
        for (sql, parsed) in [
            ("1 IS DISTINCT FROM 2 AND true", "1 IS DISTINCT FROM 2 AND true"),
            ("a IS NOT DISTINCT FROM b OR c", "a IS NOT DISTINCT FROM b OR c"),
            ("a IS DISTINCT FROM b = c", "a IS DISTINCT FROM b = c"),
            ("a = b IS DISTINCT FROM c", "a = b IS DISTINCT FROM c"),
            ("NOT a IS DISTINCT FROM b", "NOT a IS DISTINCT FROM b"),
            ("a IS DISTINCT FROM b + 1 IS NULL", "a IS DISTINCT FROM b + 1 IS NULL"),
        ] {
            let e = parse_expr(sql).expect(sql);
            assert_eq!(e.to_string(), parsed);
        }
        let and = parse_expr("1 IS DISTINCT FROM 2 AND true").expect("parse");
        assert!(matches!(and, Expr::BinaryOp { op: BinaryOperator::And, .. }), "{and:?}");
        let or = parse_expr("a IS NOT DISTINCT FROM b OR c").expect("parse");
        assert!(matches!(or, Expr::BinaryOp { op: BinaryOperator::Or, .. }), "{or:?}");
        // Comparison binds tighter than IS: the right side is `b = c`, the left side `a = b`.
        let eq = parse_expr("a IS DISTINCT FROM b = c").expect("parse");
        assert!(
            matches!(&eq, Expr::IsDistinctFrom(_, r) if matches!(**r, Expr::BinaryOp { op: BinaryOperator::Eq, .. })),
            "{eq:?}"
        );
        let left = parse_expr("a = b IS DISTINCT FROM c").expect("parse");
        assert!(
            matches!(&left, Expr::IsDistinctFrom(l, _) if matches!(**l, Expr::BinaryOp { op: BinaryOperator::Eq, .. })),
            "{left:?}"
        );
        // Comparisons do not chain; parenthesised, they do.
        assert!(parse_expr("1 < 2 = true").is_err());
        assert!(parse_expr("a = b <> c").is_err());
        assert!(parse_expr("(1 < 2) = true").is_ok());
        assert!(parse_expr("a = b AND c < d").is_ok());
        // NOT binds looser than IS.
        assert!(matches!(parse_expr("NOT a IS DISTINCT FROM b").expect("parse"), Expr::UnaryOp { .. }));
    }

    /// Issue 24: a unary sign binds tighter than `^` and looser than `::` and subscripts.
    #[test]
    fn unary_signs_bind_as_in_postgresql() {
        let power = parse_expr("-2 ^ 2").expect("parse");
        assert!(
            matches!(&power, Expr::BinaryOp { left, .. } if matches!(**left, Expr::UnaryOp { op: UnaryOperator::Minus, .. })),
            "{power:?}"
        );
        let cast = parse_expr("-x::int").expect("parse");
        assert!(matches!(&cast, Expr::UnaryOp { expr, .. } if matches!(**expr, Expr::Cast { .. })), "{cast:?}");
        let product = parse_expr("-a * b").expect("parse");
        assert!(
            matches!(&product, Expr::BinaryOp { op: BinaryOperator::Multiply, left, .. } if matches!(**left, Expr::UnaryOp { .. })),
            "{product:?}"
        );
        assert!(matches!(parse_expr("+a[1]").expect("parse"), Expr::UnaryOp { op: UnaryOperator::Plus, .. }));
    }

    /// Issue 24: REINDEX parses (the engine answers it), its table kept for REINDEX TABLE.
    #[test]
    fn reindex_parses() {
        for (sql, table) in [
            ("REINDEX TABLE events", Some("events")),
            ("REINDEX (VERBOSE) TABLE CONCURRENTLY public.events", Some("public.events")),
            ("REINDEX INDEX events_pkey", None),
            ("REINDEX DATABASE journeydb", None),
            ("REINDEX SYSTEM", None),
        ] {
            let statements = parse_sql(sql).expect(sql);
            let [Statement::Vacuum(v)] = statements.as_slice() else { panic!("{sql}: {statements:?}") };
            assert!(v.reindex, "{sql}");
            assert_eq!(v.table_name.as_ref().map(|n| n.to_string()).as_deref(), table, "{sql}");
        }
        assert!(parse_sql("REINDEX TABLE").is_err());
        assert!(parse_sql("REINDEX nothing x").is_err());
    }

    #[test]
    fn named_arguments_and_postgresql_syntax_still_parse() {
        let sql = "SELECT * FROM funnel('a', 'b', window => INTERVAL '7 days'); SELECT 'a' ~ 'b', x::int, $1";
        let statements = parse_sql(sql).expect("parse");
        assert!(statements[0].to_string().contains("window => INTERVAL '7 days'"), "{}", statements[0]);
        assert_eq!(statements.len(), 2);
    }
}
