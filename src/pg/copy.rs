//! The formats of COPY ... FROM STDIN / TO STDOUT, read from the statement's options: `text`
//! (tab-separated, `\N` for NULL, backslash escapes), `csv` (quotes, empty unquoted = NULL) and
//! `binary` (PGCOPY). Both the `WITH (FORMAT csv, HEADER)` and the old `CSV HEADER` spellings.

use crate::error::{Error, Result, SqlState};
use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    Text { delimiter: u8, null: String },
    Csv { delimiter: u8, quote: u8, escape: u8, null: String, header: bool },
    Binary,
}

fn single_byte(what: &str, c: char) -> Result<u8> {
    u8::try_from(c as u32).ok().filter(|b| b.is_ascii() && *b != b'\n' && *b != b'\r').ok_or_else(|| {
        Error::sql(SqlState::FeatureNotSupported, format!("COPY {what} must be a single one-byte character"))
    })
}

/// The format a COPY statement's options ask for.
pub fn copy_format(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyFormat> {
    let mut kind = "text".to_string();
    let (mut delimiter, mut quote, mut escape, mut null, mut header) = (None, None, None, None, false);
    for o in options {
        match o {
            CopyOption::Format(f) => kind = f.value.to_lowercase(),
            CopyOption::Delimiter(c) => delimiter = Some(single_byte("delimiter", *c)?),
            CopyOption::Null(s) => null = Some(s.clone()),
            CopyOption::Header(h) => header = *h,
            CopyOption::Quote(c) => quote = Some(single_byte("quote", *c)?),
            CopyOption::Escape(c) => escape = Some(single_byte("escape", *c)?),
            CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            CopyOption::Freeze(_) => {}
            other => {
                return Err(Error::sql(SqlState::FeatureNotSupported, format!("COPY option {other} is not supported")));
            }
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => kind = "binary".into(),
            CopyLegacyOption::Delimiter(c) => delimiter = Some(single_byte("delimiter", *c)?),
            CopyLegacyOption::Null(s) => null = Some(s.clone()),
            CopyLegacyOption::Header => header = true,
            CopyLegacyOption::Csv(csv) => {
                kind = "csv".into();
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(q) => quote = Some(single_byte("quote", *q)?),
                        CopyLegacyCsvOption::Escape(e) => escape = Some(single_byte("escape", *e)?),
                        other => {
                            return Err(Error::sql(
                                SqlState::FeatureNotSupported,
                                format!("COPY option {other} is not supported"),
                            ));
                        }
                    }
                }
            }
            other => {
                return Err(Error::sql(SqlState::FeatureNotSupported, format!("COPY option {other} is not supported")));
            }
        }
    }
    match kind.as_str() {
        "text" => {
            if header || quote.is_some() || escape.is_some() {
                return Err(Error::sql(
                    SqlState::FeatureNotSupported,
                    "COPY HEADER, QUOTE and ESCAPE are available only in CSV mode",
                ));
            }
            Ok(CopyFormat::Text { delimiter: delimiter.unwrap_or(b'\t'), null: null.unwrap_or_else(|| "\\N".into()) })
        }
        "csv" => {
            let quote = quote.unwrap_or(b'"');
            Ok(CopyFormat::Csv {
                delimiter: delimiter.unwrap_or(b','),
                quote,
                escape: escape.unwrap_or(quote),
                null: null.unwrap_or_default(),
                header,
            })
        }
        "binary" => {
            if delimiter.is_some() || null.is_some() || header || quote.is_some() {
                return Err(Error::sql(SqlState::FeatureNotSupported, "COPY options are not allowed in BINARY mode"));
            }
            Ok(CopyFormat::Binary)
        }
        other => Err(Error::sql(SqlState::InvalidParameterValue, format!("COPY format \"{other}\" not recognized"))),
    }
}

impl CopyFormat {
    /// The wire format code (0 text, 1 binary).
    pub fn code(&self) -> i8 {
        i8::from(matches!(self, CopyFormat::Binary))
    }
}
