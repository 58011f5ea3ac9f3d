//! The reference of every journey function, kept in code beside the function (each module's
//! `DOC`): how a call is written, its `pg_proc` signature, its options with their defaults,
//! a one-line summary and what it returns. The server's `pg_proc` and `pg_description` (so
//! psql's `\df` and `\df+`), the reports' list of accepted options, `docs/functions.md` and
//! the README's function table all come from here; a test checks that the two files are what
//! [`reference`] and [`readme_table`] make of it (`JOURNEYDB_BLESS=1` rewrites them).

/// What kind of function, as `pg_proc.prokind` and the README say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalar,
    Aggregate,
    Window,
    /// A table function read in FROM.
    Report,
}

impl Kind {
    /// `pg_proc.prokind`: `f` function, `a` aggregate, `w` window.
    pub const fn prokind(self) -> &'static str {
        match self {
            Kind::Scalar | Kind::Report => "f",
            Kind::Aggregate => "a",
            Kind::Window => "w",
        }
    }

    pub const fn shown(self) -> &'static str {
        match self {
            Kind::Scalar => "scalar",
            Kind::Aggregate => "aggregate",
            Kind::Window => "window",
            Kind::Report => "report (in FROM)",
        }
    }
}

/// A report's `name => value` option.
#[derive(Debug, Clone, Copy)]
pub struct Parameter {
    pub name: &'static str,
    /// Its PostgreSQL type, as `\df` shows it.
    pub sql_type: &'static str,
    /// Its default as SQL (`'14 days'::interval`), if it has one.
    pub default: Option<&'static str>,
    /// What it means (Markdown).
    pub meaning: &'static str,
}

impl Parameter {
    /// `source`: where every report reads its rows.
    pub const SOURCE: Parameter = Parameter {
        name: "source",
        sql_type: "text",
        default: Some("'journey.events'"),
        meaning: "a table or view name, or a query (`'SELECT ...'`)",
    };

    /// `unit`: whose journeys a report follows.
    pub const UNIT: Parameter = Parameter {
        name: "unit",
        sql_type: "text",
        default: Some("'person'"),
        meaning: "`'account'`: each account's people as one journey, their events merged in time order (the source's `account_id`, which the journey model has with `[journey.accounts]`; rows without one are left out)",
    };

    /// An option naming what a report reads of each row (`person`, `time`, `event`, ...):
    /// columns or SQL expressions over the source, `default` when not given.
    pub const fn column(name: &'static str, default: &'static str) -> Parameter {
        Parameter {
            name,
            sql_type: "text",
            default: Some(default),
            meaning: "columns or SQL expressions over the source",
        }
    }
}

/// One journey function's reference.
#[derive(Debug, Clone, Copy)]
pub struct FunctionDoc {
    pub name: &'static str,
    pub kind: Kind,
    /// How a call is written (Markdown code).
    pub usage: &'static str,
    /// `pg_get_function_result`.
    pub result: &'static str,
    /// The arguments before the options, as `pg_get_function_arguments` shows them.
    pub positional: &'static str,
    /// A report's options, in order; every other name is refused.
    pub options: &'static [Parameter],
    /// One sentence: `\df+`'s Description.
    pub summary: &'static str,
    /// What it returns, in full (Markdown).
    pub description: &'static str,
    /// Where its exact contract is written.
    pub contract: &'static str,
}

/// Names that must be quoted in a signature (keywords).
const QUOTED: [&str; 4] = ["window", "order", "end", "interval"];

impl FunctionDoc {
    /// `pg_get_function_arguments`: the positional arguments, then the options.
    pub fn arguments(&self) -> String {
        let mut parts: Vec<String> = vec![];
        if !self.positional.is_empty() {
            parts.push(self.positional.to_string());
        }
        for p in self.options {
            let name = if QUOTED.contains(&p.name) { format!("\"{}\"", p.name) } else { p.name.to_string() };
            let default = p.default.unwrap_or("NULL");
            parts.push(format!("{name} {} DEFAULT {default}", p.sql_type));
        }
        parts.join(", ")
    }

    /// The names of the options, as a report accepts them.
    pub fn option_names(&self) -> Vec<&'static str> {
        self.options.iter().map(|p| p.name).collect()
    }

    /// `pg_proc.pronargs`.
    pub fn argument_count(&self) -> usize {
        let positional = if self.positional.is_empty() { 0 } else { top_level_commas(self.positional) + 1 };
        positional + self.options.len()
    }
}

fn top_level_commas(s: &str) -> usize {
    let (mut depth, mut quoted, mut n) = (0i32, false, 0);
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => n += 1,
            _ => {}
        }
    }
    n
}

/// `docs/functions.md`: every function's usage, signature, options and contract.
pub fn reference(docs: &[FunctionDoc]) -> String {
    let mut out = String::from(
        "# Journey functions\n\n\
         Generated from the code (`udfs/src/docs.rs` and each function's `DOC`) by\n\
         `JOURNEYDB_BLESS=1 cargo test -p journeydb-udfs docs`; a test fails when this file is stale.\n\
         psql's `\\df+` shows the same signatures and summaries.\n",
    );
    for d in docs {
        out.push_str(&format!("\n## `{}`\n\n", d.usage));
        out.push_str(&format!("*{}*. {}\n\n", capitalised(d.kind.shown()), d.summary));
        out.push_str(&format!("```\n{}({}) RETURNS {}\n```\n\n", d.name, d.arguments(), d.result));
        out.push_str(&format!("{}\n", capitalised(d.description)));
        if !d.options.is_empty() {
            out.push_str("\n| option | type | default | meaning |\n|---|---|---|---|\n");
            for p in d.options {
                let default = p.default.map(|v| format!("`{v}`")).unwrap_or_else(|| "none".into());
                out.push_str(&format!("| `{}` | {} | {default} | {} |\n", p.name, p.sql_type, p.meaning));
            }
        }
        out.push_str(&format!("\nContract: {}.\n", d.contract));
    }
    out
}

/// The README's table of functions: usage, kind, what it returns.
pub fn readme_table(docs: &[FunctionDoc]) -> String {
    let mut out = String::from("| function | kind | what it returns |\n|---|---|---|\n");
    for d in docs {
        out.push_str(&format!("| `{}` | {} | {} |\n", d.usage, d.kind.shown(), d.description));
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const BEGIN: &str = "<!-- functions: generated from udfs/src/docs.rs -->\n";
    const END: &str = "<!-- /functions -->";

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// `docs/functions.md` and the README's table are what the code says; with
    /// `JOURNEYDB_BLESS=1` they are rewritten instead.
    #[test]
    fn docs_the_reference_and_the_readme_table_are_generated_from_the_code() {
        let docs = crate::catalog();
        let reference_path = root().join("docs/functions.md");
        let readme_path = root().join("README.md");
        let readme = std::fs::read_to_string(&readme_path).expect("README.md");
        let (Some(begin), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
            panic!("README.md must hold the function table between {BEGIN:?} and {END:?}")
        };
        let fresh_readme = format!("{}{BEGIN}{}{}", &readme[..begin], readme_table(&docs), &readme[end..]);
        let fresh_reference = reference(&docs);
        if std::env::var_os("JOURNEYDB_BLESS").is_some() {
            std::fs::create_dir_all(root().join("docs")).expect("docs/");
            std::fs::write(&reference_path, &fresh_reference).expect("write docs/functions.md");
            std::fs::write(&readme_path, &fresh_readme).expect("write README.md");
            return;
        }
        let stale = "is stale: run JOURNEYDB_BLESS=1 cargo test -p journeydb-udfs docs";
        assert_eq!(
            std::fs::read_to_string(&reference_path).unwrap_or_default(),
            fresh_reference,
            "docs/functions.md {stale}"
        );
        assert!(readme == fresh_readme, "README.md's function table {stale}");
    }

    #[test]
    fn signatures_count_their_arguments() {
        for d in crate::catalog() {
            let shown = d.arguments();
            assert_eq!(
                d.argument_count(),
                if shown.is_empty() { 0 } else { top_level_commas(&shown) + 1 },
                "{}",
                d.name
            );
        }
    }
}
