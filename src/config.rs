//! Typed configuration. Every default lives in [`Config::default`]; [`Config::validate`]
//! rejects what the server must not run with.

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listen address: loopback only, one port above PostgreSQL's.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5433";
/// Where the journey explorer listens by default.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:5480";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "journeydb-data";
/// Events in the demo dataset created when the data directory is missing.
pub const DEFAULT_DEMO_EVENTS: u64 = 300_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the server listens on.
    pub listen: SocketAddr,
    /// Address the journey explorer (the web page) listens on, or `"off"`.
    pub http_listen: String,
    /// The data location: a local directory or `s3://bucket/prefix`, one folder of Parquet
    /// files (or one Delta table) per table.
    pub data_dir: PathBuf,
    /// Events generated into a missing data directory (0: create it empty).
    pub demo_events: u64,
    /// Seed of that demo dataset.
    pub demo_seed: u64,
    /// Target rows per output batch of a query (DataFusion `batch_size`).
    pub batch_size: usize,
    /// Threads a query may use (DataFusion `target_partitions`); 0 = number of cores.
    pub target_partitions: usize,
    /// Connections served at once; one more is refused with 53300.
    pub max_connections: usize,
    /// Seconds a replaced or dropped table version stays readable, so that queries that began
    /// before the change read it to their end (15 minutes).
    pub version_grace_seconds: u64,
    /// Memory all running queries may hold together: `"4GB"`, `"512MB"`, bytes, or `"auto"`
    /// (half the machine's memory). Sorts, aggregations and joins spill to disk beyond their
    /// share; a query that still cannot fit fails with 53200 and the server serves on.
    pub memory_limit: String,
    /// Where spilled data goes (default: the system's temporary directory).
    pub spill_dir: Option<PathBuf>,
    /// Users and TLS (`[auth]`).
    pub auth: AuthConfig,
    /// Object storage (`[store]`): endpoint, credentials, how long listings are trusted.
    pub store: crate::store::StoreOptions,
    /// The cluster (`[cluster]`): the scheduler statements' distributed parts run on.
    pub cluster: crate::cluster::ClusterConfig,
    /// The journey model: which table holds the events and what its events mean.
    pub journey: JourneyConfig,
}

/// `[auth]`: who may connect, and TLS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `[[auth.users]]`: with any user, every connection authenticates with SCRAM-SHA-256.
    pub users: Vec<UserConfig>,
    /// PEM certificate chain and private key: TLS for clients that ask for it.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// A user: name and SCRAM-SHA-256 verifier (`journeydb hash-password` makes one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
    /// May cancel and terminate other users' statements (`pg_cancel_backend`).
    #[serde(default)]
    pub superuser: bool,
}

/// The journey model's configuration (`[journey]` in the file). The defaults describe the demo
/// dataset and the canonical event columns.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JourneyConfig {
    /// The store table holding the events.
    pub events: String,
    /// The shape a tracker writes, read instead of `events` ([`PRESETS`]): `segment` and
    /// `rudderstack` (their warehouse tables `tracks`, `pages`, `identifies`, `aliases`),
    /// `snowplow` (its atomic events in the `events` table), `ga4` (the BigQuery export's
    /// `events_YYYYMMDD` tables, `events` being the prefix).
    pub preset: Option<String>,
    /// Canonical column name -> the events table's column, for tables that name them otherwise
    /// (`user_id`, `anonymous_id`, `event_time`, `event_name`, `channel`, `source`, `medium`,
    /// `campaign`, `term`, `content`, `page_url`, `referrer`, `revenue`, `click_id`, `session_id`).
    pub columns: BTreeMap<String, String>,
    /// Event names that are conversions; their value is `revenue`.
    pub conversions: Vec<String>,
    /// Milestone event names, for the W-shaped and full-path models.
    pub milestones: Milestones,
    /// Stage -> the event names that put a person in it, in funnel order.
    pub stages: Vec<Stage>,
    /// Inactivity that ends a session, in seconds (strictly greater gaps split).
    pub session_gap_seconds: u64,
    /// How sessions are made: `gap` (by inactivity, `session_gap_seconds`) or `tracker` (the
    /// tracker's own session ids, canonical column `session_id`: Snowplow's `domain_sessionid`,
    /// GA4's `user_pseudo_id` with `ga_session_id`; events without one by inactivity).
    pub sessions: Sessions,
    /// Which events are touches, as a SQL predicate over the canonical columns; unset, the
    /// journey model's rule decides (see `journey::touch_rule`).
    pub touch: Option<String>,
    /// The site's own hosts: a referrer from one of them (or a subdomain) is internal
    /// navigation, not a touch. The event's own page host always counts as the site's.
    pub site_hosts: Vec<String>,
    /// The CRM's deal stage history (`[journey.crm]`), joined into the journeys: the closed loop.
    pub crm: Option<CrmConfig>,
    /// Which account each person belongs to (`[journey.accounts]`), for B2B journeys.
    pub accounts: Option<AccountsConfig>,
}

/// `[journey.crm]`: a table of deal stage changes, one row per change, as HubSpot and
/// Salesforce export deal stage history. Its rows join the journeys as events (`event_name` the
/// stage, no channel, so never touches): a deal's first change into an opportunity stage is the
/// `opportunity` milestone, its first change into a closed-won stage the `closed_won` milestone
/// and a conversion worth its amount.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CrmConfig {
    /// The store table of deal stage changes.
    pub deals: String,
    /// Canonical deal column -> the table's column ([`DEAL_COLUMNS`]).
    pub columns: BTreeMap<String, String>,
    /// The stages that make a deal an opportunity (HubSpot's default pipeline by default).
    pub opportunity_stages: Vec<String>,
    /// The stages that close a deal won.
    pub closed_won_stages: Vec<String>,
    /// Whether the events' own `conversions` and `opportunity` / `closed_won` milestones count
    /// beside the CRM's (a shop that also sells online); by default the CRM's alone do.
    pub event_conversions: bool,
}

/// The canonical columns of a deals table: `person_id` (the person's user id) or `email` (read
/// as the user id), one of them, is needed; `amount` may be missing.
pub const DEAL_COLUMNS: [&str; 6] = ["deal_id", "person_id", "email", "stage", "amount", "changed_at"];

impl Default for CrmConfig {
    fn default() -> Self {
        CrmConfig {
            deals: "deals".into(),
            columns: BTreeMap::new(),
            opportunity_stages: names(&[
                "qualifiedtobuy",
                "presentationscheduled",
                "decisionmakerboughtin",
                "contractsent",
            ]),
            closed_won_stages: names(&["closedwon"]),
            event_conversions: false,
        }
    }
}

/// `[journey.accounts]`: which account each person belongs to, from a table (Segment's
/// `groups`: `group_id`, `user_id`, `anonymous_id`; or a mapping: `person_id`, `account_id`) or
/// from the domain of the person's id when it is an email address (free-mail domains apart).
/// A person seen in several accounts belongs to the smallest account id.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// The store table of memberships.
    pub table: Option<String>,
    /// The account is the person id's email domain.
    pub email_domain: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Milestones {
    pub lead: Vec<String>,
    pub opportunity: Vec<String>,
    pub closed_won: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    pub events: Vec<String>,
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for JourneyConfig {
    fn default() -> Self {
        JourneyConfig {
            events: "events".into(),
            preset: None,
            columns: BTreeMap::new(),
            conversions: names(&["purchase"]),
            milestones: Milestones::default(),
            stages: vec![
                Stage { name: "awareness".into(), events: names(&["page_view"]) },
                Stage {
                    name: "consideration".into(),
                    events: names(&["email_open", "email_click", "content_download", "webinar_signup"]),
                },
                Stage {
                    name: "decision".into(),
                    events: names(&["demo_request", "form_submit", "live_chat", "phone_call", "opportunity"]),
                },
                Stage { name: "customer".into(), events: names(&["purchase"]) },
            ],
            session_gap_seconds: 30 * 60,
            sessions: Sessions::Gap,
            touch: None,
            site_hosts: vec![],
            crm: None,
            accounts: None,
        }
    }
}

impl Default for Milestones {
    fn default() -> Self {
        Milestones {
            lead: names(&["form_submit", "live_chat", "phone_call"]),
            opportunity: names(&["opportunity"]),
            closed_won: names(&["purchase"]),
        }
    }
}

/// How the journey model makes sessions (`[journey] sessions`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Sessions {
    /// Again from the events, by inactivity.
    Gap,
    /// The tracker's own session ids.
    Tracker,
}

/// The trackers whose tables the journey model reads as they write them (`[journey] preset`).
pub const PRESETS: [&str; 4] = ["segment", "rudderstack", "snowplow", "ga4"];

/// The canonical event columns a `[journey.columns]` mapping may name.
pub const CANONICAL_COLUMNS: [&str; 15] = [
    "user_id",
    "anonymous_id",
    "event_time",
    "event_name",
    "channel",
    "source",
    "medium",
    "campaign",
    "term",
    "content",
    "page_url",
    "referrer",
    "revenue",
    "click_id",
    "session_id",
];

impl JourneyConfig {
    /// The events table's name for canonical column `canonical`.
    pub fn column<'a>(&'a self, canonical: &'a str) -> &'a str {
        self.columns.get(canonical).map(String::as_str).unwrap_or(canonical)
    }

    /// Rejects mappings that would make an event's meaning ambiguous.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("[journey] {m}")));
        if let Some(p) = &self.preset
            && !PRESETS.contains(&p.as_str())
        {
            return bad(format!("preset \"{p}\": one of {}", PRESETS.join(", ")));
        }
        if let Some(k) = self.columns.keys().find(|k| !CANONICAL_COLUMNS.contains(&k.as_str())) {
            return bad(format!("columns: unknown canonical column \"{k}\" (known: {})", CANONICAL_COLUMNS.join(", ")));
        }
        let m = &self.milestones;
        let mut seen = std::collections::BTreeMap::new();
        for (milestone, events) in [("lead", &m.lead), ("opportunity", &m.opportunity), ("closed_won", &m.closed_won)] {
            for e in events {
                if let Some(other) = seen.insert(e.as_str(), milestone) {
                    return bad(format!("milestones: event \"{e}\" is both {other} and {milestone}"));
                }
            }
        }
        let mut seen = std::collections::BTreeMap::new();
        for stage in &self.stages {
            for e in &stage.events {
                if let Some(other) = seen.insert(e.as_str(), stage.name.as_str()) {
                    return bad(format!("stages: event \"{e}\" is in both {other} and {}", stage.name));
                }
            }
        }
        if self.session_gap_seconds == 0 {
            return bad("session_gap_seconds must be at least 1".into());
        }
        if self.touch.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return bad("touch must be a SQL predicate, such as \"medium IS NOT NULL\"".into());
        }
        if let Some(h) = self.site_hosts.iter().find(|h| !is_host_name(h)) {
            return bad(format!("site_hosts: \"{h}\" is not a host name (write \"example.com\", no scheme or path)"));
        }
        if let Some(crm) = &self.crm {
            if crm.deals.trim().is_empty() {
                return bad("crm: deals must name the table of deal stage changes".into());
            }
            if let Some(k) = crm.columns.keys().find(|k| !DEAL_COLUMNS.contains(&k.as_str())) {
                return bad(format!("crm.columns: unknown deal column \"{k}\" (known: {})", DEAL_COLUMNS.join(", ")));
            }
            if crm.closed_won_stages.is_empty() {
                return bad("crm: closed_won_stages must name at least one stage".into());
            }
            if let Some(s) = crm.opportunity_stages.iter().find(|s| crm.closed_won_stages.contains(s)) {
                return bad(format!("crm: stage \"{s}\" is both an opportunity stage and a closed-won one"));
            }
        }
        if let Some(a) = &self.accounts {
            match (&a.table, a.email_domain) {
                (Some(t), false) if !t.trim().is_empty() => {}
                (None, true) => {}
                _ => return bad("accounts: give either table = \"...\" or email_domain = true".into()),
            }
        }
        Ok(())
    }
}

/// A host name as `site_hosts` takes it: letters, digits, `-` and `.`, nothing else.
fn is_host_name(h: &str) -> bool {
    !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            http_listen: DEFAULT_HTTP_LISTEN.into(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            demo_events: DEFAULT_DEMO_EVENTS,
            demo_seed: 42,
            batch_size: 8192,
            target_partitions: 0,
            max_connections: 100,
            version_grace_seconds: crate::store::DEFAULT_VERSION_GRACE_SECONDS,
            memory_limit: "auto".into(),
            spill_dir: None,
            auth: AuthConfig::default(),
            store: crate::store::StoreOptions::default(),
            cluster: crate::cluster::ClusterConfig::default(),
            journey: JourneyConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML configuration file, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("invalid configuration {}: {e}", path.display())))
    }

    /// Command-line flags override the file.
    pub fn with_serve_args(mut self, args: &ServeArgs) -> Config {
        if let Some(data) = &args.data {
            self.data_dir = data.clone();
        }
        if let Some(listen) = args.listen {
            self.listen = listen;
        }
        if let Some(http) = &args.http_listen {
            self.http_listen = http.clone();
        }
        if let Some(scheduler) = &args.cluster {
            self.cluster.scheduler = Some(scheduler.clone());
        }
        self
    }

    /// The explorer's address, `None` when it is `"off"`.
    pub fn http_address(&self) -> Result<Option<SocketAddr>> {
        let v = self.http_listen.trim();
        if v.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| {
            Error::Config(format!("http_listen \"{v}\": use an address such as \"127.0.0.1:5480\", or \"off\""))
        })
    }

    /// Where the data is: `data_dir` read as a local path or an `s3://` URL.
    pub fn location(&self) -> Result<crate::store::Location> {
        let text = self
            .data_dir
            .to_str()
            .ok_or_else(|| Error::Config(format!("data_dir {} is not valid UTF-8", self.data_dir.display())))?;
        crate::store::Location::parse(text)
    }

    /// The configured users, their verifiers parsed.
    pub fn users(&self) -> Result<crate::server::auth::Users> {
        let mut users = std::collections::HashMap::new();
        for u in &self.auth.users {
            let v = crate::server::auth::parse_verifier(&u.password)
                .map_err(|e| Error::Config(format!("user \"{}\": {e}", u.name)))?;
            if users.insert(u.name.clone(), v).is_some() {
                return Err(Error::Config(format!("user \"{}\" is configured twice", u.name)));
            }
        }
        Ok(crate::server::auth::Users::new(users))
    }

    /// The TLS acceptor, when a certificate and key are configured.
    pub fn tls(&self) -> Result<Option<pgwire::tokio::TlsAcceptor>> {
        match (&self.auth.tls_cert, &self.auth.tls_key) {
            (Some(c), Some(k)) => crate::server::auth::tls_acceptor(c, k).map(Some),
            _ => Ok(None),
        }
    }

    /// `memory_limit` in bytes.
    pub fn memory_limit_bytes(&self) -> Result<usize> {
        let v = self.memory_limit.trim();
        if v.eq_ignore_ascii_case("auto") {
            // Half of MemTotal (kB) from /proc/meminfo; 4 GiB when it cannot be read.
            let total_kb = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| {
                    m.lines()
                        .find(|l| l.starts_with("MemTotal:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
                })
                .unwrap_or(8 << 20);
            return Ok(total_kb * 1024 / 2);
        }
        let upper = v.to_ascii_uppercase();
        let (number, unit) = upper.split_at(upper.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(upper.len()));
        let scale: usize = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1 << 10,
            "MB" => 1 << 20,
            "GB" => 1 << 30,
            "TB" => 1 << 40,
            _ => return Err(Error::Config(format!("memory_limit \"{v}\": use a size such as \"4GB\" or \"auto\""))),
        };
        let n: f64 = number
            .trim()
            .parse()
            .map_err(|_| Error::Config(format!("memory_limit \"{v}\": use a size such as \"4GB\" or \"auto\"")))?;
        let bytes = (n * scale as f64) as usize;
        if bytes < (16 << 20) {
            return Err(Error::Config(format!("memory_limit \"{v}\" is below the minimum of 16MB")));
        }
        Ok(bytes)
    }

    /// Rejects configurations the server must not run with.
    ///
    /// Until authentication exists, connections are trusted; so the server only listens on a
    /// loopback address, where every client is a local user.
    pub fn validate(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() && self.auth.users.is_empty() {
            return Err(Error::Config(format!(
                "refusing to listen on {}: connections are trusted without authentication, \
                 which is allowed on a loopback address only (configure [[auth.users]])",
                self.listen
            )));
        }
        if let Some(http) = self.http_address()?
            && !http.ip().is_loopback()
            && (self.auth.users.is_empty() || self.auth.tls_cert.is_none())
        {
            return Err(Error::Config(format!(
                "refusing to serve the explorer on {http}: beyond a loopback address it needs \
                 [[auth.users]] and TLS (auth.tls_cert, auth.tls_key), or http_listen = \"off\""
            )));
        }
        self.users()?;
        if self.auth.tls_cert.is_some() != self.auth.tls_key.is_some() {
            return Err(Error::Config("TLS needs both auth.tls_cert and auth.tls_key".into()));
        }
        self.tls()?;
        if self.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if self.max_connections == 0 {
            return Err(Error::Config("max_connections must be at least 1".into()));
        }
        self.memory_limit_bytes()?;
        self.journey.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_loopback_and_valid() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:5433");
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn the_explorer_listens_beyond_loopback_only_with_users_and_tls() {
        let mut c = Config::default();
        assert_eq!(c.http_address().expect("default"), Some("127.0.0.1:5480".parse().expect("addr")));
        c.http_listen = "OFF".into();
        assert_eq!(c.http_address().expect("off"), None);
        c.http_listen = "somewhere".into();
        assert!(c.validate().expect_err("not an address").to_string().contains("http_listen \"somewhere\""));
        c.http_listen = "0.0.0.0:5480".into();
        assert!(c.validate().expect_err("no TLS").to_string().contains("refusing to serve the explorer"));
        let verifier = crate::server::auth::hash_password("s3cret").expect("hash");
        c.auth.users.push(UserConfig { name: "analyst".into(), password: verifier, superuser: false });
        c.listen = "0.0.0.0:5433".parse().expect("addr");
        assert!(c.validate().expect_err("not with users alone").to_string().contains("needs [[auth.users]] and TLS"));
        c.http_listen = "127.0.0.1:5480".into();
        c.validate().expect("with users, the wire protocol anywhere, the explorer on loopback");
        // With TLS as well, anywhere (the files must exist: validate loads them).
        let certs = tempfile::tempdir().expect("tmp");
        let (cert, key) = (certs.path().join("c.pem"), certs.path().join("k.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(made.status.success());
        (c.auth.tls_cert, c.auth.tls_key) = (Some(cert), Some(key));
        c.http_listen = "0.0.0.0:5480".into();
        c.validate().expect("with users and TLS, the explorer anywhere");
        c.auth.users.clear();
        c.listen = "127.0.0.1:5433".parse().expect("addr");
        assert!(c.validate().expect_err("TLS without users").to_string().contains("refusing to serve the explorer"));
    }

    #[test]
    fn refuses_non_loopback_without_auth() {
        let mut c = Config { listen: "0.0.0.0:5433".parse().expect("addr"), ..Config::default() };
        let err = c.validate().expect_err("must refuse");
        assert!(err.to_string().contains("refusing to listen on 0.0.0.0:5433"), "{err}");
        let verifier = crate::server::auth::hash_password("s3cret").expect("hash");
        c.auth.users.push(UserConfig { name: "analyst".into(), password: verifier, superuser: false });
        c.validate().expect("with users, any address");
        c.auth.users.push(UserConfig { name: "bob".into(), password: "plain".into(), superuser: false });
        assert!(c.validate().expect_err("plain password").to_string().contains("user \"bob\""));
        c.auth.users.pop();
        c.auth.tls_cert = Some("cert.pem".into());
        assert!(c.validate().expect_err("half TLS").to_string().contains("both"));
    }

    #[test]
    fn presets_are_the_known_trackers() {
        let mut c = Config::default();
        for p in PRESETS {
            c.journey.preset = Some(p.into());
            c.validate().expect("a known preset");
        }
        c.journey.preset = Some("mixpanel".into());
        let err = c.validate().expect_err("unknown preset").to_string();
        assert!(err.contains("preset \"mixpanel\": one of segment, rudderstack, snowplow"), "{err}");
    }

    #[test]
    fn memory_limits() {
        let with = |v: &str| Config { memory_limit: v.into(), ..Config::default() }.memory_limit_bytes();
        assert_eq!(with("4GB").expect("4GB"), 4 << 30);
        assert_eq!(with("512 mb").expect("512MB"), 512 << 20);
        assert_eq!(with("1.5GB").expect("1.5GB"), 3 << 29);
        assert_eq!(with("33554432").expect("bytes"), 32 << 20);
        assert!(with("auto").expect("auto") > 0);
        assert!(with("lots").is_err() && with("1MB").is_err() && with("4XB").is_err());
    }

    #[test]
    fn file_values_and_unknown_keys() {
        let c: Config = toml::from_str("listen = '127.0.0.1:6000'\ndemo_events = 10").expect("parse");
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.demo_events, 10);
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    }

    #[test]
    fn journey_section() {
        let c: Config = toml::from_str(
            "[journey]\nevents = 'hits'\nconversions = ['signup']\n[journey.columns]\nevent_time = 'ts'\n\
             [journey.milestones]\nlead = ['form']\n[[journey.stages]]\nname = 'trial'\nevents = ['signup']",
        )
        .expect("parse");
        assert_eq!(c.journey.events, "hits");
        assert_eq!(c.journey.column("event_time"), "ts");
        assert_eq!(c.journey.column("event_name"), "event_name");
        assert_eq!(c.journey.milestones.lead, ["form"]);
        assert_eq!(c.journey.milestones.opportunity, ["opportunity"], "unset milestones keep their default");
        assert_eq!(c.journey.stages.len(), 1);
        c.validate().expect("valid");
    }

    #[test]
    fn journey_ambiguities_are_refused() {
        let mut c = Config::default();
        c.journey.milestones.opportunity.push("form_submit".into());
        let err = c.validate().expect_err("form_submit twice");
        assert!(err.to_string().contains("\"form_submit\" is both lead and opportunity"), "{err}");
        let mut c = Config::default();
        c.journey.columns.insert("ts".into(), "x".into());
        assert!(c.validate().expect_err("unknown").to_string().contains("unknown canonical column \"ts\""));
        let mut c = Config::default();
        c.journey.stages[0].events.push("purchase".into());
        assert!(c.validate().expect_err("dup").to_string().contains("in both awareness and customer"));
    }
}
