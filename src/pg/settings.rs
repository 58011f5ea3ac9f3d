//! Session settings (`SET`, `SHOW`, `RESET`): the PostgreSQL parameters clients set and read,
//! with their defaults. Names are case-insensitive, as in PostgreSQL.

use crate::error::SqlState;
use std::collections::BTreeMap;

/// Parameters with their defaults. Only these are accepted by `SET`.
pub const DEFAULTS: [(&str, &str); 17] = [
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    // SQLAlchemy's inspector compares each table's access method with it.
    ("default_table_access_method", "heap"),
    ("default_transaction_isolation", "read committed"),
    ("extra_float_digits", "1"),
    ("intervalstyle", "postgres"),
    // Whether a server with a cluster runs statements' distributed parts there.
    ("journeydb.cluster", "on"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", super::SERVER_VERSION),
    ("server_version_num", super::SERVER_VERSION_NUM),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
];

/// Read-only parameters.
const READ_ONLY: [&str; 3] = ["server_encoding", "server_version", "server_version_num"];

/// A session's settings, shared with the functions that read and change them
/// (`current_setting`, `set_config`).
pub type SharedSettings = std::sync::Arc<std::sync::Mutex<Settings>>;

/// The settings behind `shared`; a panic while holding the lock leaves only a map behind.
pub fn lock(shared: &SharedSettings) -> std::sync::MutexGuard<'_, Settings> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SettingError {
    Unknown(String),
    ReadOnly(String),
    /// A value the parameter cannot take: its name and the value.
    Invalid(String, String),
    /// A value PostgreSQL takes that journeydb does not honour: the name, the value, and why.
    Unsupported(String, String, &'static str),
}

impl SettingError {
    /// PostgreSQL's SQLSTATE: 42704 (undefined_object) for an unknown parameter, 55P02
    /// (cant_change_runtime_param) for one fixed at start.
    pub fn sqlstate(&self) -> SqlState {
        match self {
            SettingError::Unknown(_) => SqlState::UndefinedObject,
            SettingError::ReadOnly(_) => SqlState::CantChangeRuntimeParam,
            SettingError::Invalid(..) => SqlState::InvalidParameterValue,
            SettingError::Unsupported(..) => SqlState::FeatureNotSupported,
        }
    }
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingError::Unknown(n) => write!(f, "unrecognized configuration parameter \"{n}\""),
            SettingError::ReadOnly(n) => write!(f, "parameter \"{n}\" cannot be changed"),
            SettingError::Invalid(n, v) => write!(f, "invalid value for parameter \"{n}\": \"{v}\""),
            SettingError::Unsupported(n, v, why) => write!(f, "{n} \"{v}\" is not supported: {why}"),
        }
    }
}

/// The setting a name means: lower case, and the SQL-standard spellings of SHOW (`TIME ZONE`,
/// `TRANSACTION ISOLATION LEVEL`) as their parameters.
pub fn canonical(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.as_str() {
        "time zone" => "timezone".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        _ => n,
    }
}

/// A DateStyle as PostgreSQL shows it (`ISO, DMY`): the output style, then the field order
/// for input, each kept from `current` when not given. Only the ISO output style is honoured.
fn date_style(value: &str, current: &str) -> Result<String, SettingError> {
    let current_order = current.split(',').nth(1).map(str::trim).unwrap_or("MDY").to_string();
    let (mut style, mut order) = (None, None);
    for word in value.split(',').map(|w| w.trim().trim_matches('\'').to_ascii_uppercase()).filter(|w| !w.is_empty()) {
        match word.as_str() {
            "ISO" | "SQL" | "POSTGRES" | "GERMAN" => style = Some(word),
            "DMY" | "EURO" | "EUROPEAN" => order = Some("DMY".to_string()),
            "MDY" | "US" | "NONEURO" | "NONEUROPEAN" => order = Some("MDY".to_string()),
            "YMD" => order = Some("YMD".to_string()),
            _ => return Err(SettingError::Invalid("DateStyle".into(), value.to_string())),
        }
    }
    match style.as_deref() {
        None | Some("ISO") => Ok(format!("ISO, {}", order.unwrap_or(current_order))),
        Some(_) => {
            Err(SettingError::Unsupported("DateStyle".into(), value.to_string(), "dates are shown in ISO style"))
        }
    }
}

impl Settings {
    pub fn get(&self, name: &str) -> Result<String, SettingError> {
        let n = canonical(name);
        if let Some(v) = self.values.get(&n) {
            return Ok(v.clone());
        }
        DEFAULTS.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()).ok_or(SettingError::Unknown(n))
    }

    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SettingError> {
        let n = canonical(name);
        if READ_ONLY.contains(&n.as_str()) {
            return Err(SettingError::ReadOnly(n));
        }
        if !DEFAULTS.iter().any(|(k, _)| *k == n) {
            return Err(SettingError::Unknown(n));
        }
        if n == "timezone" {
            // `SET TIME ZONE LOCAL` / `DEFAULT`: the server's zone.
            if value.eq_ignore_ascii_case("local") || value.eq_ignore_ascii_case("default") {
                self.values.remove(&n);
                return Ok(());
            }
            if super::time_zone::parse(value).is_none() {
                return Err(SettingError::Invalid("TimeZone".into(), value.to_string()));
            }
        }
        let value = match n.as_str() {
            "datestyle" => date_style(value, &self.get("datestyle").unwrap_or_default())?,
            "intervalstyle" if !value.trim().eq_ignore_ascii_case("postgres") => {
                let why = "intervals are shown in the postgres style";
                return Err(
                    if ["sql_standard", "iso_8601", "postgres_verbose"]
                        .iter()
                        .any(|v| value.trim().eq_ignore_ascii_case(v))
                    {
                        SettingError::Unsupported("IntervalStyle".into(), value.to_string(), why)
                    } else {
                        SettingError::Invalid("IntervalStyle".into(), value.to_string())
                    },
                );
            }
            "intervalstyle" => "postgres".to_string(),
            "journeydb.cluster" => match boolean(value) {
                Some(on) => if on { "on" } else { "off" }.to_string(),
                None => return Err(SettingError::Invalid(n, value.to_string())),
            },
            // As PostgreSQL: milliseconds, or a number with a unit, from 0 to 2^31 - 1 ms.
            "statement_timeout" if timeout_ms(value).is_none_or(|ms| ms > i32::MAX as u64) => {
                return Err(SettingError::Invalid("statement_timeout".into(), value.to_string()));
            }
            _ => value.to_string(),
        };
        self.values.insert(n, value);
        Ok(())
    }

    pub fn reset(&mut self, name: &str) -> Result<(), SettingError> {
        let n = canonical(name);
        if !DEFAULTS.iter().any(|(k, _)| *k == n) {
            return Err(SettingError::Unknown(n));
        }
        self.values.remove(&n);
        Ok(())
    }

    pub fn reset_all(&mut self) {
        self.values.clear();
    }
}

/// A boolean parameter's value as PostgreSQL reads it (`on`, `off`, `true`, `false`, `yes`,
/// `no`, `1`, `0`, and unique prefixes of the words).
pub fn boolean(value: &str) -> Option<bool> {
    let v = value.trim().trim_matches('\'').trim().to_ascii_lowercase();
    let prefix = |word: &str, min: usize| v.len() >= min && word.starts_with(v.as_str());
    if v == "1" || prefix("true", 1) || prefix("yes", 1) || prefix("on", 2) {
        Some(true)
    } else if v == "0" || prefix("false", 1) || prefix("no", 1) || prefix("off", 2) {
        Some(false)
    } else {
        None
    }
}

/// `statement_timeout` in milliseconds: PostgreSQL's syntax, a number (milliseconds) or a
/// number with a unit (`ms`, `s`, `min`, `h`, `d`); `None` for anything else.
pub fn timeout_ms(value: &str) -> Option<u64> {
    let v = value.trim().trim_matches('\'').trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1.0,
        "s" => 1e3,
        "min" => 6e4,
        "h" => 3.6e6,
        "d" => 8.64e7,
        _ => return None,
    };
    let ms = n * factor;
    (ms.is_finite() && ms >= 0.0).then(|| ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_show_reset() {
        let mut s = Settings::default();
        assert_eq!(s.get("TimeZone").as_deref(), Ok("UTC"));
        assert_eq!(s.get("TRANSACTION ISOLATION LEVEL").as_deref(), Ok("read committed"));
        s.set("application_name", "psql").expect("set");
        assert_eq!(s.get("APPLICATION_NAME").as_deref(), Ok("psql"));
        s.reset("application_name").expect("reset");
        assert_eq!(s.get("application_name").as_deref(), Ok(""));
        assert_eq!(s.set("no_such", "1"), Err(SettingError::Unknown("no_such".into())));
        // Issue 25: accepted silently before.
        for bad in ["abc", "-1", "'-1'", "5 weeks", "9999999999"] {
            assert_eq!(
                s.set("statement_timeout", bad).map_err(|e| e.sqlstate()),
                Err(SqlState::InvalidParameterValue),
                "{bad}"
            );
        }
        assert_eq!(s.set("statement_timeout", "'2s'"), Ok(()));
        assert_eq!(s.set("server_version", "1"), Err(SettingError::ReadOnly("server_version".into())));
        assert_eq!(SettingError::Unknown("x".into()).to_string(), "unrecognized configuration parameter \"x\"");
    }
}
