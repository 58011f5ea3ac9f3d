//! What the parser does not know, said another way before parsing: dollar quotes, `ALTER
//! VIEW ... RENAME`.

/// Dollar-quoted strings (`$tag$ ... $tag$`, which dbt uses for COMMENT ON) as standard
/// single-quoted literals, for statements where the parser accepts only the latter. Quoted
/// strings, identifiers and comments are skipped; None when there is no dollar quote.
pub fn dollar_quotes_to_literals(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut i, mut last, mut changed) = (0, 0, false);
    let skip_to = |from: usize, end: &str| sql[from..].find(end).map(|p| from + p + end.len()).unwrap_or(sql.len());
    while i < b.len() {
        match b[i] {
            b'\'' => {
                // A standard string: '' is a quote inside it.
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'"' => i = skip_to(i + 1, "\""),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_to(i, "\n"),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_to(i + 2, "*/"),
            b'$' => {
                let tag_end = sql[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|p| i + 1 + p)
                    .unwrap_or(b.len());
                let tag = &sql[i + 1..tag_end];
                let is_tag = b.get(tag_end) == Some(&b'$') && !tag.starts_with(|c: char| c.is_ascii_digit());
                if !is_tag {
                    i += 1;
                    continue;
                }
                let delimiter = &sql[i..=tag_end];
                let body_start = tag_end + 1;
                let len = sql[body_start..].find(delimiter)?;
                out.push_str(&sql[last..i]);
                out.push('\'');
                out.push_str(&sql[body_start..body_start + len].replace('\'', "''"));
                out.push('\'');
                i = body_start + len + delimiter.len();
                last = i;
                changed = true;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[last.min(sql.len())..]);
    changed.then_some(out)
}

/// `ALTER VIEW name RENAME TO new` as `ALTER TABLE name RENAME TO new` (the same in
/// PostgreSQL, and the form the parser knows), for each such statement of `sql`; None when
/// there is none.
pub fn alter_view_rename(sql: &str) -> Option<String> {
    let mut out = String::with_capacity(sql.len());
    let mut changed = false;
    for (i, part) in sql.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        let words: Vec<String> = part.split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
        let is_rename = words.len() >= 6
            && words[0] == "alter"
            && words[1] == "view"
            && words.windows(2).any(|w| w[0] == "rename" && w[1] == "to");
        if is_rename && let Some(at) = part.to_ascii_lowercase().find("view") {
            out.push_str(&part[..at]);
            out.push_str("TABLE");
            out.push_str(&part[at + 4..]);
            changed = true;
        } else {
            out.push_str(part);
        }
    }
    changed.then_some(out)
}
