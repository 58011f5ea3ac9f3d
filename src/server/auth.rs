//! Authentication and TLS.
//!
//! - Users come from the configuration (`[[auth.users]]`, name and SCRAM-SHA-256 verifier as
//!   PostgreSQL stores it: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, made by
//!   `journeydb hash-password`); the server never holds a password. With users configured every
//!   connection authenticates with SCRAM-SHA-256, so passwords never cross the network; an
//!   unknown user, a wrong or an empty password fail with 28P01. Without users, connections are
//!   trusted and the server listens on loopback addresses only.
//! - TLS with a configured certificate and key (PEM; rustls): clients asking for SSL get it,
//!   and SCRAM-SHA-256-PLUS binds the authentication to the TLS channel.

use crate::error::{Error, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Iterations of new verifiers (PostgreSQL's default).
const ITERATIONS: usize = 4096;

/// A parsed verifier.
#[derive(Clone)]
pub struct Verifier {
    salt: Vec<u8>,
    iterations: usize,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({} iterations)", self.iterations)
    }
}

/// Reads `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts).
pub fn parse_verifier(text: &str) -> Result<Verifier> {
    let bad = || {
        Error::Config(
            "a password must be a SCRAM-SHA-256 verifier (SCRAM-SHA-256$4096:salt$StoredKey:ServerKey); \
             make one with `journeydb hash-password`"
                .into(),
        )
    };
    let rest = text.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
    let (head, keys) = rest.split_once('$').ok_or_else(bad)?;
    let (iterations, salt) = head.split_once(':').ok_or_else(bad)?;
    let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| B64.decode(s).map_err(|_| bad());
    let v = Verifier {
        salt: decode(salt)?,
        iterations: iterations.parse().map_err(|_| bad())?,
        stored_key: decode(stored)?,
        server_key: decode(server)?,
    };
    if v.iterations < 4096 || v.stored_key.len() != 32 || v.server_key.len() != 32 || v.salt.is_empty() {
        return Err(bad());
    }
    Ok(v)
}

/// The verifier of `password` with a fresh random salt, as PostgreSQL would store it.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    Ok(verifier_with_salt(password, &salt, ITERATIONS))
}

fn verifier_with_salt(password: &str, salt: &[u8], iterations: usize) -> String {
    let salted = gen_salted_password(password, salt, iterations);
    let ScramSecret::Verifier { stored_key, server_key, .. } =
        ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, iterations)
    else {
        unreachable!("verifier_from_salted_password gives a verifier")
    };
    format!("SCRAM-SHA-256${iterations}:{}${}:{}", B64.encode(salt), B64.encode(stored_key), B64.encode(server_key))
}

/// Failed authentications by client address. Each failure is answered later than the one
/// before (by [`Failures::STEP`] more, up to [`Failures::MAX`]), so that guessing passwords is
/// slow (issue 25: 50 wrong passwords took 0.19 s); an address without failures for
/// [`Failures::FORGET`] starts again from nothing. Successful logins are never delayed.
#[derive(Debug, Default)]
pub struct Failures {
    recent: std::sync::Mutex<HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
}

impl Failures {
    pub const STEP: std::time::Duration = std::time::Duration::from_millis(250);
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(2);
    pub const FORGET: std::time::Duration = std::time::Duration::from_secs(60);
    /// Addresses remembered at most (beyond, the forgotten ones are dropped first).
    const ADDRESSES: usize = 10_000;

    /// Records a failure from `ip`; returns how long to wait before answering it.
    pub fn record(&self, ip: std::net::IpAddr) -> std::time::Duration {
        let now = std::time::Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= Self::ADDRESSES {
            recent.retain(|_, (_, last)| now.duration_since(*last) < Self::FORGET);
        }
        let (count, last) = recent.entry(ip).or_insert((0, now));
        if now.duration_since(*last) >= Self::FORGET {
            *count = 0;
        }
        *count = count.saturating_add(1);
        *last = now;
        (Self::STEP * *count).min(Self::MAX)
    }
}

/// The configured users' verifiers, as pgwire's SCRAM asks for them.
#[derive(Debug, Default)]
pub struct Users(HashMap<String, Verifier>);

impl Users {
    pub fn new(users: HashMap<String, Verifier>) -> Users {
        Users(users)
    }

    /// Whether `password` is `user`'s: its salted password, under the verifier's salt and
    /// iterations, gives the verifier's StoredKey (what a SCRAM exchange proves, checked on a
    /// password sent whole, as the explorer's login form sends it over loopback).
    pub fn check(&self, user: &str, password: &str) -> bool {
        let Some(v) = self.0.get(user) else { return false };
        let salted = gen_salted_password(password, &v.salt, v.iterations);
        let ScramSecret::Verifier { stored_key, .. } =
            ScramSecret::verifier_from_salted_password(v.salt.clone(), salted, v.iterations)
        else {
            return false;
        };
        // Compared in full, whatever differs first.
        stored_key.len() == v.stored_key.len()
            && stored_key.iter().zip(&v.stored_key).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn failed(login: &LoginInfo) -> PgWireError {
    PgWireError::InvalidPassword(login.user().unwrap_or_default().to_owned())
}

#[async_trait::async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // Passwords are not kept; SCRAM reads the verifier (get_scram_secret).
        Err(failed(login))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().ok_or_else(|| failed(login))?;
        let Some(v) = self.0.get(user) else { return Ok((mock_verifier(user), None)) };
        Ok((
            ScramSecret::Verifier {
                salt: v.salt.clone(),
                iterations: v.iterations,
                stored_key: v.stored_key.clone(),
                server_key: v.server_key.clone(),
            },
            None,
        ))
    }
}

/// What an unknown user authenticates against: as PostgreSQL does, the exchange goes on as for
/// a known user, with a salt that is the same at every attempt for that name (a keyed hash of
/// it, the key random per server) and keys no password matches, so the answers do not tell
/// which users exist (issue 25: unknown users were refused before the server's first message);
/// the login fails at the proof with 28P01, as a wrong password does.
fn mock_verifier(user: &str) -> ScramSecret {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<(std::collections::hash_map::RandomState, Vec<u8>)> = std::sync::OnceLock::new();
    let (hasher, keys) = KEY.get_or_init(|| {
        let mut keys = vec![0u8; 64];
        if getrandom::fill(&mut keys).is_err() {
            keys = (0..64u8).map(|i| i.wrapping_mul(31) ^ std::process::id() as u8).collect();
        }
        (std::collections::hash_map::RandomState::new(), keys)
    });
    let salt: Vec<u8> = [0u8, 1].iter().flat_map(|i| hasher.hash_one((user, *i)).to_be_bytes()).collect();
    ScramSecret::Verifier {
        salt,
        iterations: ITERATIONS,
        stored_key: keys[..32].to_vec(),
        server_key: keys[32..].to_vec(),
    }
}

/// The TLS acceptor for a PEM certificate chain and private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<pgwire::tokio::TlsAcceptor> {
    tls_acceptor_for(cert, key, &[])
}

/// The same certificate for HTTPS (the explorer): ALPN offers HTTP/1.1, which browsers ask for.
pub fn https_acceptor(cert: &Path, key: &Path) -> Result<pgwire::tokio::TlsAcceptor> {
    tls_acceptor_for(cert, key, &[b"http/1.1"])
}

fn tls_acceptor_for(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<pgwire::tokio::TlsAcceptor> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Config(format!("{}: not a PEM certificate: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{}: no certificate in it", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| Error::Config(format!("{}: not a PEM private key: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_checks_against_its_verifier() {
        let verifier = parse_verifier(&hash_password("s3cret").expect("hash")).expect("parse");
        let users = Users::new(HashMap::from([("analyst".to_string(), verifier)]));
        assert!(users.check("analyst", "s3cret"));
        assert!(!users.check("analyst", "s3cret "));
        assert!(!users.check("analyst", ""));
        assert!(!users.check("nobody", "s3cret"));
    }

    #[test]
    fn verifiers_match_postgres() {
        // The RFC 7677 example's password and salt; the keys computed independently with
        // Python's hashlib (PBKDF2-HMAC-SHA256, HMAC "Client Key" / "Server Key").
        let v = verifier_with_salt("pencil", &B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt"), 4096);
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        let parsed = parse_verifier(&v).expect("parses");
        assert_eq!(parsed.iterations, 4096);
        let fresh = hash_password("s3cret").expect("hash");
        assert!(parse_verifier(&fresh).is_ok());
        assert_ne!(fresh, hash_password("s3cret").expect("hash"), "a fresh salt each time");
        for bad in ["s3cret", "md5abc", "SCRAM-SHA-256$12:abc$def:ghi", "SCRAM-SHA-256$4096:W22Z$AA==:AA=="] {
            assert!(parse_verifier(bad).is_err(), "{bad}");
        }
    }

    /// Issue 25: an unknown user gets a salt like a known one's, the same at every attempt and
    /// another for another name, so the server's first message tells nothing.
    #[tokio::test]
    async fn unknown_users_get_a_stable_mock_salt() {
        let known = parse_verifier(&hash_password("s3cret").expect("hash")).expect("verifier");
        let users = Users::new(HashMap::from([("analyst".to_string(), known)]));
        let salt = |user: &'static str| {
            let users = &users;
            async move {
                let login = LoginInfo::new(Some(user), Some("journeydb"), "127.0.0.1".to_owned());
                match users.get_scram_secret(&login).await.expect("a verifier for anyone").0 {
                    ScramSecret::Verifier { salt, iterations, .. } => (salt, iterations),
                    _ => panic!("a verifier"),
                }
            }
        };
        let (a, iterations) = salt("mallory").await;
        assert_eq!(a.len(), 16);
        assert_eq!(iterations, ITERATIONS);
        assert_eq!(salt("mallory").await.0, a, "the same salt at every attempt");
        assert_ne!(salt("eve").await.0, a, "another name, another salt");
        assert_eq!(salt("analyst").await.0.len(), 16);
    }
}
