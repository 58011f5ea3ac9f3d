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

use datafusion::sql::sqlparser::ast::{Expr, Statement};
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Tokenizer;
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

    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        false
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        PG.get_next_precedence(parser)
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

    #[test]
    fn named_arguments_and_postgresql_syntax_still_parse() {
        let sql = "SELECT * FROM funnel('a', 'b', window => INTERVAL '7 days'); SELECT 'a' ~ 'b', x::int, $1";
        let statements = parse_sql(sql).expect("parse");
        assert!(statements[0].to_string().contains("window => INTERVAL '7 days'"), "{}", statements[0]);
        assert_eq!(statements.len(), 2);
    }
}
