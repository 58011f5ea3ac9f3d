//! One Ballista job, from the server's side: submitted to the scheduler, its status polled, its
//! result partitions read from the executors over Arrow Flight. Unlike Ballista's own client,
//! a job whose rows are no longer wanted (the statement was cancelled, hit
//! `statement_timeout`, or its client went away) is cancelled on the cluster too.

use ballista_core::client::BallistaClient;
use ballista_core::config::BallistaConfig;
use ballista_core::serde::protobuf::execute_query_params::Query;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{
    CancelJobParams, ExecuteQueryParams, GetJobStatusParams, KeyValuePair, PartitionLocation, SuccessfulJob,
    execute_query_result, job_status,
};
use ballista_core::utils::{GrpcClientConfig, create_grpc_client_connection};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionConfig;
use futures::{StreamExt, TryStreamExt};
use std::time::Duration;
use tonic::transport::Channel;

/// How often a running job's status is asked.
const POLL: Duration = Duration::from_millis(20);

/// Why a job gave no rows.
#[derive(Debug)]
pub enum JobError {
    /// The scheduler could not be reached or refused the job.
    Unreachable(String),
    /// The job ran and failed (a task's error, executors lost).
    Failed(String),
}

/// Cancels the job when dropped before it is finished.
struct Running {
    scheduler: SchedulerGrpcClient<Channel>,
    job_id: String,
    finished: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (mut scheduler, job_id) = (self.scheduler.clone(), self.job_id.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = scheduler.cancel_job(CancelJobParams { job_id: job_id.clone() }).await {
                    tracing::warn!(%job_id, error = %e, "could not cancel a cluster job");
                }
            });
        }
    }
}

/// A scheduler, and the connection to it: made at the first job (with that session's gRPC
/// settings) and kept, as tonic reconnects a channel whose connection broke; forgotten after a
/// job that could not reach the scheduler, so that the next job connects again.
#[derive(Debug)]
pub struct Scheduler {
    address: String,
    channel: std::sync::Mutex<Option<Channel>>,
}

impl Scheduler {
    /// The scheduler at `address` (`host:port`); nothing is connected yet.
    pub fn new(address: String) -> Scheduler {
        Scheduler { address, channel: std::sync::Mutex::new(None) }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    async fn channel(&self, grpc: &GrpcClientConfig) -> std::result::Result<Channel, JobError> {
        if let Some(c) = self.kept().clone() {
            return Ok(c);
        }
        let channel = create_grpc_client_connection(format!("http://{}", self.address), grpc)
            .await
            .map_err(|e| JobError::Unreachable(e.to_string()))?;
        Ok(self.kept().get_or_insert(channel).clone())
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Option<Channel>> {
        self.channel.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs encoded physical plan `plan` (one output partition, of `schema`) with the session's
    /// `config`: the rows, once the job is done.
    pub async fn run(
        &self,
        plan: Vec<u8>,
        schema: SchemaRef,
        config: &SessionConfig,
    ) -> std::result::Result<SendableRecordBatchStream, JobError> {
        let ran = run(self, plan, schema, config).await;
        if let Err(JobError::Unreachable(_)) = &ran {
            self.kept().take();
        }
        ran
    }
}

async fn run(
    scheduler: &Scheduler,
    plan: Vec<u8>,
    schema: SchemaRef,
    config: &SessionConfig,
) -> std::result::Result<SendableRecordBatchStream, JobError> {
    let ballista: BallistaConfig = ballista_core::extension::SessionConfigExt::ballista_config(config);
    let grpc = GrpcClientConfig::from(&ballista);
    let unreachable = |e: &dyn std::fmt::Display| JobError::Unreachable(e.to_string());
    let channel = scheduler.channel(&grpc).await?;
    let size = ballista.grpc_client_max_message_size();
    let mut client = SchedulerGrpcClient::new(channel).max_encoding_message_size(size).max_decoding_message_size(size);
    let settings =
        config.options().entries().into_iter().map(|e| KeyValuePair { key: e.key, value: e.value }).collect();
    let session_id = format!("journeydb-{:016x}", rand_id());
    let mut request = tonic::Request::new(ExecuteQueryParams {
        query: Some(Query::PhysicalPlan(plan)),
        settings,
        session_id,
        operation_id: format!("{:016x}", rand_id()),
    });
    ballista_core::version::insert_version_header(request.metadata_mut());
    let submitted = client.execute_query(request).await.map_err(|e| unreachable(&e.message()))?.into_inner();
    let job_id = match submitted.result {
        Some(execute_query_result::Result::Success(s)) => s.job_id,
        Some(execute_query_result::Result::Failure(f)) => return Err(JobError::Failed(format!("{:?}", f.failure))),
        None => return Err(JobError::Unreachable("the scheduler answered nothing".into())),
    };
    let mut running = Running { scheduler: client.clone(), job_id: job_id.clone(), finished: false };
    let done: SuccessfulJob = loop {
        let status = client
            .get_job_status(GetJobStatusParams { job_id: job_id.clone() })
            .await
            .map_err(|e| unreachable(&e.message()))?
            .into_inner();
        match status.status.and_then(|s| s.status) {
            Some(job_status::Status::Successful(done)) => break done,
            Some(job_status::Status::Failed(f)) => {
                running.finished = true;
                return Err(JobError::Failed(format!("job {job_id} failed: {}", f.error)));
            }
            _ => tokio::time::sleep(POLL).await,
        }
    };
    running.finished = true;
    let use_tls = grpc.use_tls;
    let rows = futures::stream::iter(done.partition_location)
        .then(move |location| fetch(location, size, use_tls))
        .try_flatten();
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
}

/// A random id for what the scheduler tells apart by id (sessions, operations).
fn rand_id() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// The rows of one result partition, read from the executor holding it.
async fn fetch(location: PartitionLocation, size: usize, use_tls: bool) -> Result<SendableRecordBatchStream> {
    let layout = location.layout();
    let missing = |what: &str| DataFusionError::Internal(format!("a result partition without its {what}"));
    let executor = location.executor_meta.ok_or_else(|| missing("executor"))?;
    let partition = location.partition_id.ok_or_else(|| missing("id"))?;
    let port = executor.port as u16;
    let mut client = BallistaClient::try_new(&executor.host, port, size, use_tls, None, 3, 100, 0, 0)
        .await
        .map_err(|e| DataFusionError::Execution(format!("cannot reach executor {}:{port}: {e}", executor.host)))?;
    client
        .fetch_partition_proxied(&executor.id, &partition.into(), location.file_id, layout, &executor.host, port, true)
        .await
        .map_err(|e| e.into_datafusion())
}
