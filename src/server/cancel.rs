//! Stopping a running statement: cancel requests and `statement_timeout`.
//!
//! Each connection registers its process id and secret key in the server's [`Cancels`]; a
//! cancel request (sent by the client on a separate connection) with a matching pair signals
//! that connection. A statement runs under an [`Interrupt`]: planning races it, and a result
//! stream is wrapped so that the next poll after the signal (or after `statement_timeout`
//! milliseconds) ends the stream with SQLSTATE 57014. Ending the stream drops the execution
//! plan's streams, which aborts DataFusion's tasks: the work stops, not only the sending. The
//! connection then serves the next statement as usual.
//!
//! Statements execute on runtimes of their own ([`Lane`], [`on_execution_runtime`]):
//! DataFusion's operators keep their worker threads busy between yields, and on the
//! connections' runtime they would delay the timer and the cancel signal (and every other
//! connection) until they yield; on one shared runtime they delayed every other statement.

use crate::error::Canceled;
use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt};
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;

/// A connection registered for cancellation.
#[derive(Debug)]
struct Registered {
    secret: i32,
    signal: Arc<watch::Sender<u64>>,
    /// The user it authenticated as; `None` until its startup completes.
    user: Option<String>,
}

/// Who asks to cancel or terminate another connection (`pg_cancel_backend`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    /// A superuser may signal anyone's connection; others only their own user's (PostgreSQL's
    /// rule, where `pg_signal_backend` grants the same).
    pub superuser: bool,
}

/// The server's connections by process id: their secret key and cancel signal.
#[derive(Debug, Default)]
pub struct Cancels {
    connections: Mutex<HashMap<i32, Registered>>,
    /// Connections `pg_terminate_backend` ended: they close at their next statement.
    terminated: Mutex<std::collections::HashSet<i32>>,
}

/// Four random bytes from the operating system's CSPRNG: process ids and secrets that say
/// nothing about other connections' (issue 25: they were derived from a counter).
fn random_i32() -> i32 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        // No system randomness at all: still unpredictable from outside this process.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        b = ((nanos as u32) ^ std::process::id().rotate_left(16)).to_be_bytes();
    }
    i32::from_be_bytes(b)
}

/// Process ids are positive and at least this, as an operating system's are.
const MIN_PID: i32 = 1_000;

impl Cancels {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Registered>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection: a random process id no other connection has, and a random
    /// secret key.
    pub fn register(&self, signal: Arc<watch::Sender<u64>>) -> (i32, i32) {
        let mut connections = self.lock();
        let pid = loop {
            let pid = MIN_PID + (random_i32() & i32::MAX) % (i32::MAX - MIN_PID);
            if !connections.contains_key(&pid) {
                break pid;
            }
        };
        let secret = random_i32();
        connections.insert(pid, Registered { secret, signal, user: None });
        (pid, secret)
    }

    /// Connection `pid` authenticated as `user`.
    pub fn set_user(&self, pid: i32, user: &str) {
        if let Some(r) = self.lock().get_mut(&pid) {
            r.user = Some(user.to_string());
        }
    }

    pub fn remove(&self, pid: i32) {
        self.lock().remove(&pid);
        self.terminated.lock().unwrap_or_else(|p| p.into_inner()).remove(&pid);
    }

    /// `pg_cancel_backend(pid)`: signals connection `pid`; false when no connection has that
    /// process id, 42501 when `caller` may not signal it.
    pub fn cancel_backend(&self, pid: i32, caller: &Caller) -> crate::Result<bool> {
        match self.lock().get(&pid) {
            Some(r) if caller.superuser || r.user.as_deref() == Some(caller.user.as_str()) => {
                r.signal.send_modify(|n| *n += 1);
                Ok(true)
            }
            Some(_) => Err(crate::Error::sql(
                crate::error::SqlState::InsufficientPrivilege,
                "permission denied to signal that connection: only its own user or a superuser may",
            )),
            None => Ok(false),
        }
    }

    /// `pg_terminate_backend(pid)`: cancels what connection `pid` runs and closes it (57P01) at
    /// its next statement; the same rights as [`Cancels::cancel_backend`].
    pub fn terminate_backend(&self, pid: i32, caller: &Caller) -> crate::Result<bool> {
        let known = self.cancel_backend(pid, caller)?;
        if known {
            self.terminated.lock().unwrap_or_else(|p| p.into_inner()).insert(pid);
        }
        Ok(known)
    }

    pub fn is_terminated(&self, pid: i32) -> bool {
        self.terminated.lock().unwrap_or_else(|p| p.into_inner()).contains(&pid)
    }

    /// Signals connection `pid` if `secret` is its key; false otherwise (as PostgreSQL, a wrong
    /// key is ignored silently).
    pub fn cancel(&self, pid: i32, secret: i32) -> bool {
        match self.lock().get(&pid) {
            Some(r) if r.secret == secret => {
                r.signal.send_modify(|n| *n += 1);
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        // Our keys are 4 bytes; the message may carry them as bytes.
        let secret = match &request.secret_key {
            SecretKey::I32(s) => Some(*s),
            SecretKey::Bytes(b) => <[u8; 4]>::try_from(b.as_ref()).ok().map(i32::from_be_bytes),
        };
        let done = secret.is_some_and(|s| self.cancel(request.pid, s));
        tracing::debug!(pid = request.pid, done, "cancel request");
    }
}

/// What may stop one statement: a cancel request from now on, and a deadline.
pub struct Interrupt {
    signal: watch::Receiver<u64>,
    timeout: Option<Duration>,
}

impl Interrupt {
    /// Listens to `signal` from now on (earlier cancel requests are spent); `timeout_ms` 0 is
    /// no timeout.
    pub fn new(signal: &watch::Sender<u64>, timeout_ms: u64) -> Interrupt {
        let mut rx = signal.subscribe();
        rx.mark_unchanged();
        Interrupt { signal: rx, timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)) }
    }

    /// Resolves with the error to report when the statement must stop.
    pub fn fired(self) -> Pin<Box<dyn Future<Output = DataFusionError> + Send>> {
        let Interrupt { mut signal, timeout } = self;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        Box::pin(async move {
            let canceled = async {
                // A closed channel (the connection is gone) never cancels.
                if signal.changed().await.is_err() {
                    futures::future::pending::<()>().await;
                }
            };
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => futures::future::pending::<()>().await,
                }
            };
            let message = tokio::select! {
                _ = canceled => "canceling statement due to user request",
                _ = expired => "canceling statement due to statement timeout",
            };
            DataFusionError::External(Box::new(Canceled(message.to_string())))
        })
    }
}

/// Runtimes statements execute on ("lanes"), each with as many workers as cores.
///
/// A tokio worker runs a task until it yields, and DataFusion's operators yield seldom on
/// data that is always ready: on one shared runtime a self-join kept both workers, and
/// another connection's `SELECT 1` waited minutes (issue 25). Each statement takes the lane
/// with the fewest statements running, so a new statement next to a busy one gets idle
/// workers of its own, and the operating system, which preempts, shares the cores between
/// them. Beyond [`LANES`] concurrent statements, lanes are shared.
pub const LANES: usize = 8;

struct LaneRuntime {
    runtime: tokio::runtime::Runtime,
    running: std::sync::atomic::AtomicUsize,
}

fn lanes() -> &'static [LaneRuntime] {
    static LANES_: std::sync::OnceLock<Vec<LaneRuntime>> = std::sync::OnceLock::new();
    LANES_.get_or_init(|| {
        (0..LANES)
            .map(|i| LaneRuntime {
                // Blocking threads (file reads) per lane: the lanes together stay within the
                // blocking threads of one runtime, so that stacks stay bounded.
                runtime: super::runtime_with(&format!("journeydb-exec-{i}"), super::MAX_BLOCKING_THREADS / LANES)
                    .unwrap_or_else(|e| panic!("cannot start an execution runtime: {e}")),
                running: std::sync::atomic::AtomicUsize::new(0),
            })
            .collect()
    })
}

/// A statement's place on a lane, given back when the last holder (its planning, its result
/// stream) drops it.
#[derive(Debug)]
pub struct Lane(usize);

impl Lane {
    /// The lane with the fewest statements running (the first of equals).
    pub fn take() -> Arc<Lane> {
        use std::sync::atomic::Ordering;
        let all = lanes();
        let index = (0..all.len()).min_by_key(|&i| all[i].running.load(Ordering::Acquire)).unwrap_or(0);
        all[index].running.fetch_add(1, Ordering::AcqRel);
        Arc::new(Lane(index))
    }

    fn runtime(&self) -> &'static tokio::runtime::Runtime {
        &lanes()[self.0].runtime
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        lanes()[self.0].running.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// `work` (parsing a statement, say) on a blocking thread of an execution runtime instead of
/// the connection's thread, which goes on reading cancel requests and serving logins; the
/// lane is held until it is done, even when its caller stops waiting.
pub fn off_connection<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = Result<T, tokio::task::JoinError>> {
    let lane = Lane::take();
    let runtime = lane.runtime();
    runtime.spawn_blocking(move || {
        let _lane = lane;
        work()
    })
}

/// `future` polled with `lane`'s runtime as the current runtime, so that the tasks it spawns
/// (DataFusion starts a plan's partitions when its stream is created) run there.
pub fn in_execution_context<F: Future>(lane: Arc<Lane>, future: F) -> impl Future<Output = F::Output> {
    InContext { lane, future: Box::pin(future) }
}

struct InContext<F> {
    lane: Arc<Lane>,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Entered for this poll only: the guard never lives across an await.
        let _entered = self.lane.runtime().enter();
        self.future.as_mut().poll(cx)
    }
}

/// `stream` driven by a task on `lane`'s runtime, its batches handed over through a small
/// channel; dropping the result aborts that task (and so the plan's own tasks) and gives the
/// lane back.
pub fn on_execution_runtime(lane: Arc<Lane>, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let task = lane.runtime().spawn(async move {
        let mut stream = stream;
        while let Some(batch) = stream.next().await {
            if tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    let received = Handover { rx, task, _lane: lane };
    Box::pin(RecordBatchStreamAdapter::new(schema, received))
}

struct Handover {
    rx: tokio::sync::mpsc::Receiver<datafusion::error::Result<RecordBatch>>,
    task: tokio::task::JoinHandle<()>,
    _lane: Arc<Lane>,
}

impl Drop for Handover {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for Handover {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// `stream` ending with the interrupt's error once it fires.
pub fn interruptible(
    stream: SendableRecordBatchStream,
    fired: Pin<Box<dyn Future<Output = DataFusionError> + Send>>,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    Box::pin(RecordBatchStreamAdapter::new(schema, Interruptible { inner: Some(stream), fired }))
}

struct Interruptible {
    /// Dropped (the execution stops) when the interrupt fires.
    inner: Option<SendableRecordBatchStream>,
    fired: Pin<Box<dyn Future<Output = DataFusionError> + Send>>,
}

impl Stream for Interruptible {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let next = inner.poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            return next;
        }
        if let Poll::Ready(e) = self.fired.as_mut().poll(cx) {
            self.inner = None;
            return Poll::Ready(Some(Err(e)));
        }
        next
    }
}

pub use crate::pg::settings::timeout_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeout_values() {
        assert_eq!(timeout_ms("0"), Some(0));
        assert_eq!(timeout_ms("250"), Some(250));
        assert_eq!(timeout_ms("'2s'"), Some(2000));
        assert_eq!(timeout_ms("1.5 min"), Some(90_000));
        assert_eq!(timeout_ms("10ms"), Some(10));
        assert_eq!(timeout_ms("soon"), None);
        assert_eq!(timeout_ms("5 weeks"), None);
    }

    #[test]
    fn only_the_right_key_cancels() {
        let cancels = Cancels::default();
        let signal = Arc::new(watch::channel(0u64).0);
        let (pid, secret) = cancels.register(signal.clone());
        assert!(!cancels.cancel(pid, secret.wrapping_add(1)));
        assert!(!cancels.cancel(pid.wrapping_add(1), secret));
        assert!(cancels.cancel(pid, secret));
        assert_eq!(*signal.borrow(), 1);
        cancels.remove(pid);
        assert!(!cancels.cancel(pid, secret));
    }

    /// Issue 25: keys were `pid * 7919 ^ rotl(os pid, 16)` with pids counting up, so one's own
    /// key gave the next connection's. Now neither pids nor keys follow from each other.
    #[test]
    fn keys_and_pids_are_random() {
        let cancels = Cancels::default();
        let keys: Vec<(i32, i32)> = (0..64).map(|_| cancels.register(Arc::new(watch::channel(0u64).0))).collect();
        let pids: std::collections::HashSet<i32> = keys.iter().map(|k| k.0).collect();
        assert_eq!(pids.len(), 64, "pids are unique");
        assert!(keys.iter().all(|k| k.0 >= MIN_PID));
        let consecutive = keys.windows(2).filter(|w| w[1].0 == w[0].0 + 1).count();
        assert!(consecutive < 2, "pids do not count up: {keys:?}");
        let secrets: std::collections::HashSet<i32> = keys.iter().map(|k| k.1).collect();
        assert!(secrets.len() > 60, "secrets differ: {keys:?}");
    }

    #[test]
    fn only_the_same_user_or_a_superuser_signals_a_connection() {
        let cancels = Cancels::default();
        let signal = Arc::new(watch::channel(0u64).0);
        let (pid, _) = cancels.register(signal.clone());
        cancels.set_user(pid, "alice");
        let caller = |user: &str, superuser| Caller { user: user.into(), superuser };
        let err = cancels.cancel_backend(pid, &caller("bob", false)).expect_err("bob may not");
        assert_eq!(crate::error::to_pg_error(&err).code, crate::error::SqlState::InsufficientPrivilege);
        assert!(cancels.terminate_backend(pid, &caller("bob", false)).is_err());
        assert!(!cancels.is_terminated(pid));
        assert_eq!(*signal.borrow(), 0);
        assert!(cancels.cancel_backend(pid, &caller("alice", false)).expect("own"));
        assert!(cancels.terminate_backend(pid, &caller("root", true)).expect("superuser"));
        assert!(cancels.is_terminated(pid));
        assert_eq!(*signal.borrow(), 2);
        assert!(!cancels.cancel_backend(pid + 1, &caller("alice", false)).expect("unknown pid"));
    }
}
