//! Session settings (`SET`, `SHOW`, `RESET`): the PostgreSQL parameters clients set and read,
//! with their defaults. Names are case-insensitive, as in PostgreSQL.

use std::collections::BTreeMap;

/// Parameters with their defaults. Only these are accepted by `SET`.
pub const DEFAULTS: [(&str, &str); 15] = [
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("extra_float_digits", "1"),
    ("intervalstyle", "postgres"),
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

#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SettingError {
    Unknown(String),
    ReadOnly(String),
    /// A value the parameter cannot take: its name and the value.
    Invalid(String, String),
}

impl SettingError {
    /// PostgreSQL's SQLSTATE: 42704 (undefined_object) for an unknown parameter, 55P02
    /// (cant_change_runtime_param) for one fixed at start.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SettingError::Unknown(_) => "42704",
            SettingError::ReadOnly(_) => "55P02",
            SettingError::Invalid(..) => "22023",
        }
    }
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingError::Unknown(n) => write!(f, "unrecognized configuration parameter \"{n}\""),
            SettingError::ReadOnly(n) => write!(f, "parameter \"{n}\" cannot be changed"),
            SettingError::Invalid(n, v) => write!(f, "invalid value for parameter \"{n}\": \"{v}\""),
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
        self.values.insert(n, value.to_string());
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
        assert_eq!(s.set("server_version", "1"), Err(SettingError::ReadOnly("server_version".into())));
        assert_eq!(SettingError::Unknown("x".into()).to_string(), "unrecognized configuration parameter \"x\"");
    }
}
