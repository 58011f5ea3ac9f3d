//! Where the store's objects live: a folder on this machine or a prefix of an S3 bucket, seen
//! through one object_store API, so that every store operation is the same code on both.
//!
//! The store's API is synchronous (DataFusion's schema listing is); each call here runs its
//! future on a small I/O runtime of its own and waits for it, so it may be called from a
//! blocking thread or from inside another runtime alike.

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use url::Url;

/// How to reach an S3-compatible object store: the `[store]` section of the configuration.
/// What is not set here comes from the conventional `AWS_*` variables.
#[derive(Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreOptions {
    /// `AWS_ENDPOINT_URL`: the server, for S3-compatible stores other than AWS.
    pub endpoint: Option<String>,
    /// `AWS_REGION`.
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`: never logged or shown.
    pub secret_access_key: Option<String>,
    /// `AWS_ALLOW_HTTP`: plain HTTP to the endpoint (a test server on this machine).
    pub allow_http: Option<bool>,
    /// Seconds a table listing, a table's files and footers, or a Delta table's version is
    /// trusted before it is looked up again. 0 (the default on a local disk) looks at every
    /// query; the default on object storage is 2. Writes through this server are seen at once.
    pub refresh_seconds: Option<f64>,
    /// Hours VACUUM keeps the files a table no longer needs, instead of the table's own
    /// retention (Delta's default is 168, a week). Queries reading an older version than that
    /// fail once its files are gone.
    pub vacuum_retention_hours: Option<f64>,
    /// Seconds one request to the object store may take before it fails (default 30); a
    /// failed request is retried twice, then the query fails with 58030.
    pub request_timeout_seconds: Option<u64>,
}

/// Debug output (a logged configuration) never shows the secret.
impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreOptions({})", self.redacted())
    }
}

impl StoreOptions {
    /// The options with the secret hidden (what their debug output shows).
    pub fn redacted(&self) -> String {
        let mut parts = vec![];
        if let Some(e) = &self.endpoint {
            parts.push(format!("endpoint={e}"));
        }
        if let Some(r) = &self.region {
            parts.push(format!("region={r}"));
        }
        if let Some(a) = &self.access_key_id {
            parts.push(format!("access_key_id={a}"));
        }
        if self.secret_access_key.is_some() {
            parts.push("secret_access_key=********".into());
        }
        parts.join(" ")
    }
}

/// The data location: a local folder or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Reads `--data` / `data_dir`: `s3://bucket[/prefix]`, or a local path.
    pub fn parse(text: &str) -> Result<Location> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Config(format!("no bucket in data location \"{text}\"")));
            }
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(Error::Config(format!(
                "data location \"{text}\": scheme \"{scheme}\" is not supported (a local path or s3://bucket/prefix)"
            )));
        }
        Ok(Location::Local(PathBuf::from(text)))
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A folder's direct content: sub-folders (names) and files.
#[derive(Debug, Default)]
pub struct Listing {
    pub dirs: Vec<String>,
    pub files: Vec<ObjectMeta>,
}

/// The store's objects: relative keys such as `events/part-1.parquet` under the data location.
#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// The URL `store` answers for: `file:///` or `s3://bucket/`.
    base: Url,
    /// The data location inside `store`.
    root: ObjPath,
    /// The data folder, when it is on this machine.
    local: Option<PathBuf>,
}

/// The runtime object-store calls run on, whoever waits for them.
fn io_runtime() -> &'static tokio::runtime::Runtime {
    static IO: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("journeydb-io")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the I/O runtime: {e}"))
    })
}

/// Runs `fut` on the I/O runtime and waits for it.
///
/// The wait is outside tokio's cooperative budget: called from a runtime's task (a catalog
/// lookup while planning), the join handle would otherwise spend that task's budget, and once
/// it is spent (a statement over some hundred tables opened one after another) return pending
/// with its wake deferred to the task's next yield, which this blocked thread never reaches.
pub fn block<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = io_runtime().spawn(fut);
    match futures::executor::block_on(tokio::task::unconstrained(handle)) {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Objects {
    /// Opens `location` (creating a local folder if needed).
    pub fn open(location: &Location, options: &StoreOptions) -> Result<Objects> {
        match location {
            Location::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Config(format!("cannot create data directory {}: {e}", dir.display())))?;
                let dir = dir.canonicalize()?;
                let root = ObjPath::from_absolute_path(&dir)
                    .map_err(|e| Error::Config(format!("data directory {}: {e}", dir.display())))?;
                Ok(Objects {
                    store: Arc::new(object_store::local::LocalFileSystem::new()),
                    base: Url::parse("file:///").map_err(|e| Error::Config(e.to_string()))?,
                    root,
                    local: Some(dir),
                })
            }
            Location::S3 { bucket, prefix } => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                // Two TLS crypto providers are linked: HTTPS clients need one chosen.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(e) = &options.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(r) = &options.region {
                    b = b.with_region(r);
                }
                if let Some(a) = &options.access_key_id {
                    b = b.with_access_key_id(a);
                }
                if let Some(s) = &options.secret_access_key {
                    b = b.with_secret_access_key(s);
                }
                if let Some(h) = options.allow_http {
                    b = b.with_allow_http(h);
                }
                if b.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
                    b = b.with_region("us-east-1");
                }
                let timeout = Duration::from_secs(options.request_timeout_seconds.unwrap_or(30).max(1));
                // A server that does not answer fails the query in seconds, not after the
                // default three minutes of retries.
                let retry = object_store::RetryConfig {
                    max_retries: 2,
                    retry_timeout: timeout,
                    backoff: object_store::BackoffConfig {
                        init_backoff: Duration::from_millis(100),
                        max_backoff: Duration::from_secs(2),
                        base: 2.0,
                    },
                };
                // As configuration keys, not new client options: those would drop what the
                // builder read from the environment (AWS_ALLOW_HTTP among it).
                use object_store::ClientConfigKey;
                let connect = Duration::from_secs(5).min(timeout);
                let s3 = b
                    .with_retry(retry)
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), format!("{}s", timeout.as_secs()))
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        format!("{}s", connect.as_secs()),
                    )
                    .build()
                    .map_err(|e| Error::Config(format!("object store s3://{bucket}: {e}")))?;
                Ok(Objects {
                    store: Arc::new(s3),
                    base: Url::parse(&format!("s3://{bucket}/"))
                        .map_err(|e| Error::Config(format!("bucket name \"{bucket}\": {e}")))?,
                    root: ObjPath::from(prefix.as_str()),
                    local: None,
                })
            }
        }
    }

    /// The object store (its root is the filesystem's or the bucket's).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// `file:///` or `s3://bucket/`: where DataFusion finds [`Objects::store`].
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The data folder on this machine, if it is local.
    pub fn local_dir(&self) -> Option<&Path> {
        self.local.as_deref()
    }

    /// The object path of `rel` (a `/`-separated key under the data location).
    pub fn path(&self, rel: &str) -> ObjPath {
        rel.split('/').filter(|p| !p.is_empty()).fold(self.root.clone(), |p, part| p.join(part))
    }

    /// The key of `path` under the data location (`None` outside it).
    pub fn relative(&self, path: &ObjPath) -> Option<String> {
        let parts: Vec<_> = path.prefix_match(&self.root)?.map(|p| p.as_ref().to_string()).collect();
        Some(parts.join("/"))
    }

    /// The URL of `rel`: a folder URL ends with `/`.
    pub fn url(&self, rel: &str, folder: bool) -> Url {
        let path = self.path(rel);
        let mut text = format!("{}{}", self.base, path.as_ref());
        if folder && !text.ends_with('/') {
            text.push('/');
        }
        // Keys are built from plain names and object paths: they always make a URL.
        Url::parse(&text).unwrap_or_else(|_| self.base.clone())
    }

    /// Where `rel` is on this machine (a local store only).
    pub fn local_path(&self, rel: &str) -> Option<PathBuf> {
        let mut p = self.local.clone()?;
        p.extend(rel.split('/').filter(|s| !s.is_empty()));
        Some(p)
    }

    /// The direct content of folder `rel`.
    pub fn list(&self, rel: &str) -> Result<Listing> {
        if let Some(dir) = self.local_path(rel) {
            return self.list_local(rel, &dir);
        }
        let (store, prefix) = (self.store.clone(), self.path(rel));
        let found = block(async move { store.list_with_delimiter(Some(&prefix)).await });
        match found {
            Ok(r) => Ok(Listing {
                dirs: r.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect(),
                files: r.objects,
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(Listing::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every file under folder `rel`, at any depth, sorted by path.
    pub fn list_all(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        if let Some(dir) = self.local_path(rel) {
            let mut files = vec![];
            let mut stack = vec![(rel.to_string(), dir)];
            while let Some((rel, dir)) = stack.pop() {
                let listing = self.list_local(&rel, &dir)?;
                files.extend(listing.files);
                stack.extend(listing.dirs.into_iter().map(|d| (format!("{rel}/{d}"), dir.join(&d))));
            }
            files.sort_by(|a, b| a.location.cmp(&b.location));
            return Ok(files);
        }
        let (store, prefix) = (self.store.clone(), self.path(rel));
        let found = block(async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await });
        let mut files = match found {
            Ok(f) => f,
            Err(object_store::Error::NotFound { .. }) => vec![],
            Err(e) => return Err(e.into()),
        };
        files.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(files)
    }

    /// A local folder's direct content: what [`Objects::list`] answers, read with `readdir`
    /// (the catalog looks tables up once per row it shows). Links are followed; names the
    /// object store could not hold, and files being written by it, are skipped.
    fn list_local(&self, rel: &str, dir: &Path) -> Result<Listing> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                return Ok(Listing::default());
            }
            Err(e) => return Err(e.into()),
        };
        let base = self.path(rel);
        let mut out = Listing::default();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            let Ok(part) = object_store::path::PathPart::parse(&name) else { continue };
            let meta = match std::fs::metadata(entry.path()) {
                Ok(m) => m,
                // Renamed or removed while we looked.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if meta.is_dir() {
                out.dirs.push(name);
            } else if !name.contains('#') {
                let modified = meta.modified().map(chrono::DateTime::<chrono::Utc>::from).unwrap_or_default();
                out.files.push(ObjectMeta {
                    location: base.clone().join(part),
                    last_modified: modified,
                    size: meta.len(),
                    e_tag: None,
                    version: None,
                });
            }
        }
        out.dirs.sort();
        out.files.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// The content of file `rel`, if there is one.
    pub fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        if let Some(path) = self.local_path(rel) {
            return match std::fs::read(&path) {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            };
        }
        let (store, path) = (self.store.clone(), self.path(rel));
        match block(async move { store.get(&path).await?.bytes().await }) {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether file `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool> {
        let (store, path) = (self.store.clone(), self.path(rel));
        match block(async move { store.head(&path).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes file `rel` whole: readers see the old content or the new, never a part.
    pub fn put(&self, rel: &str, contents: Bytes) -> Result<()> {
        let (store, path) = (self.store.clone(), self.path(rel));
        block(async move { store.put(&path, PutPayload::from(contents)).await })?;
        Ok(())
    }

    /// Writes file `rel` only if there is none; false when there was one.
    pub fn put_new(&self, rel: &str, contents: Bytes) -> Result<bool> {
        let (store, path) = (self.store.clone(), self.path(rel));
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match block(async move { store.put_opts(&path, PutPayload::from(contents), opts).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies local file `local` to file `rel`, in parts (it appears whole when done).
    pub fn upload(&self, local: &Path, rel: &str) -> Result<()> {
        let (store, path, local) = (self.store.clone(), self.path(rel), local.to_path_buf());
        block(async move {
            use tokio::io::AsyncWriteExt;
            let mut upload = object_store::buffered::BufWriter::new(store, path);
            let mut file = tokio::fs::File::open(&local).await?;
            if let Err(e) = tokio::io::copy(&mut file, &mut upload).await {
                let _ = upload.abort().await;
                return Err(e);
            }
            upload.shutdown().await
        })?;
        Ok(())
    }

    /// Removes file `rel` (nothing when there is none).
    pub fn delete(&self, rel: &str) -> Result<()> {
        let (store, path) = (self.store.clone(), self.path(rel));
        match block(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the files `paths` (object paths), a few at a time.
    pub fn delete_paths(&self, paths: Vec<ObjPath>) -> Result<()> {
        let store = self.store.clone();
        block(async move {
            futures::stream::iter(paths)
                .map(|p| {
                    let store = store.clone();
                    async move {
                        match store.delete(&p).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                })
                .buffer_unordered(8)
                .try_collect::<Vec<()>>()
                .await
        })?;
        Ok(())
    }

    /// Removes folder `rel` and everything under it.
    pub fn delete_all(&self, rel: &str) -> Result<()> {
        if let Some(dir) = self.local_path(rel) {
            return match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        let files = self.list_all(rel)?.into_iter().map(|m| m.location).collect();
        self.delete_paths(files)
    }

    /// Copies every file of folder `from` to folder `to` (same relative paths), in the order
    /// `order` puts them.
    pub fn copy_folder(&self, from: &str, to: &str, order: impl Fn(&str) -> u8) -> Result<()> {
        let mut files: Vec<(u8, ObjPath, ObjPath)> = vec![];
        let source = self.path(from);
        for m in self.list_all(from)? {
            let rel: Vec<String> =
                m.location.prefix_match(&source).into_iter().flatten().map(|p| p.as_ref().to_string()).collect();
            let rel = rel.join("/");
            files.push((order(&rel), m.location.clone(), self.path(&format!("{to}/{rel}"))));
        }
        files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (_, from, to) in files {
            let store = self.store.clone();
            block(async move { store.copy(&from, &to).await })?;
        }
        Ok(())
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Error {
        Error::Io(std::io::Error::other(format!("object store: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("s3://b/p/q/").expect("s3"),
            Location::S3 { bucket: "b".into(), prefix: "p/q".into() }
        );
        assert_eq!(Location::parse("s3://b").expect("s3").to_string(), "s3://b");
        assert_eq!(Location::parse("data").expect("local"), Location::Local("data".into()));
        assert!(Location::parse("gs://b").is_err());
        assert!(Location::parse("s3://").is_err());
    }

    #[test]
    fn local_objects() {
        let dir = tempfile::tempdir().expect("tmp");
        let o = Objects::open(&Location::Local(dir.path().into()), &StoreOptions::default()).expect("open");
        o.put("a/b/c.txt", Bytes::from_static(b"x")).expect("put");
        assert!(!o.put_new("a/b/c.txt", Bytes::from_static(b"y")).expect("put_new"));
        assert_eq!(o.get("a/b/c.txt").expect("get").as_deref(), Some(&b"x"[..]));
        assert_eq!(o.list("a").expect("list").dirs, ["b"]);
        assert_eq!(o.list_all("a").expect("all").len(), 1);
        assert_eq!(o.relative(&o.list_all("a").expect("all")[0].location).as_deref(), Some("a/b/c.txt"));
        o.copy_folder("a", "z", |_| 0).expect("copy");
        assert_eq!(o.get("z/b/c.txt").expect("get").as_deref(), Some(&b"x"[..]));
        o.delete_all("a").expect("delete");
        assert!(o.get("a/b/c.txt").expect("get").is_none());
        assert!(o.list("nothing").expect("list").dirs.is_empty());
    }

    #[test]
    fn secrets_are_not_shown() {
        let o = StoreOptions { secret_access_key: Some("hunter2".into()), ..Default::default() };
        assert!(!o.redacted().contains("hunter2"));
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(format!("{o:?}").contains("secret_access_key=********"));
    }
}
