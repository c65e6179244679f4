//! rmcp client sessions to fleet instances: one long-lived session per instance, reused by
//! every call, re-established after a failure. Streamable HTTP or a stdio child process.

use rmcp::handler::client::progress::ProgressDispatcher;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig,
    ClientRequest, Implementation, ProgressNotificationParam, ServerResult, Tool,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RoleClient, RunningService};
use rmcp::{ClientHandler, ServiceError, ServiceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How an instance is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Streamable HTTP at this URL.
    Http {
        /// The MCP endpoint, e.g. `http://127.0.0.1:7001/mcp`.
        url: String,
    },
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        /// Program and arguments.
        command: Vec<String>,
        /// Extra environment.
        env: BTreeMap<String, String>,
    },
}

impl Endpoint {
    /// From a declaration's parts: a URL, or else a command (with its environment).
    pub fn from_parts(
        url: Option<String>,
        command: Option<Vec<String>>,
        env: BTreeMap<String, String>,
    ) -> Option<Endpoint> {
        match (url, command) {
            (Some(url), _) => Some(Endpoint::Http { url }),
            (None, Some(command)) => Some(Endpoint::Stdio { command, env }),
            (None, None) => None,
        }
    }

    /// A short description for the dashboard.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Http { url } => url.clone(),
            Endpoint::Stdio { command, .. } => format!("stdio: {}", command.join(" ")),
        }
    }
}

/// Why an upstream call failed, classified for retries and breakers.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No session could be established (the call never reached the tool).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The session broke while the call was under way (it may have run).
    #[error("connection lost: {0}")]
    Lost(String),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The instance answered with a JSON-RPC error.
    #[error("{0}")]
    Rpc(rmcp::ErrorData),
    /// The instance answered with something that is not a tool result.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// Where progress notifications of one call go (the downstream caller), in order.
pub type ProgressSink =
    Arc<dyn Fn(ProgressNotificationParam) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// The client side of a session: routes progress to the waiting call and notices tool-list
/// changes.
#[derive(Clone)]
struct UpstreamClient {
    progress: ProgressDispatcher,
    tools_changed: Arc<std::sync::atomic::AtomicBool>,
}

impl ClientHandler for UpstreamClient {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.handle_notification(params).await;
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("fleetdeck-gateway", env!("CARGO_PKG_VERSION")),
        )
    }
}

type Session = RunningService<RoleClient, UpstreamClient>;

/// Reconnection backoff: a crashing stdio child or a dead URL is retried at growing
/// intervals, not on every call.
#[derive(Debug, Default)]
struct Reconnect {
    failures: u32,
    not_before: Option<std::time::Instant>,
}

/// First wait after a failed connection; doubles up to [`RECONNECT_MAX`].
const RECONNECT_BASE: Duration = Duration::from_millis(250);
/// Longest wait between connection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// One instance's pooled session.
pub struct UpstreamSession {
    endpoint: Endpoint,
    max_concurrent: usize,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    reconnect: std::sync::Mutex<Reconnect>,
    /// Reuse HTTP connections (see the fleet file's `keep_alive`).
    keep_alive: std::sync::atomic::AtomicBool,
    /// Process group of the stdio child, killed as a whole with the session.
    child_group: std::sync::Mutex<Option<u32>>,
    progress: ProgressDispatcher,
    /// Set when the instance says its tool list changed; cleared when the list is read again.
    pub tools_changed: Arc<std::sync::atomic::AtomicBool>,
}

impl UpstreamSession {
    /// A session to `endpoint`, connected on first use; `max_concurrent` bounds its HTTP
    /// requests in flight.
    pub fn new(endpoint: Endpoint, max_concurrent: usize) -> Self {
        UpstreamSession {
            endpoint,
            max_concurrent: max_concurrent.max(1),
            session: tokio::sync::Mutex::new(None),
            reconnect: std::sync::Mutex::new(Reconnect::default()),
            child_group: std::sync::Mutex::new(None),
            keep_alive: std::sync::atomic::AtomicBool::new(false),
            progress: ProgressDispatcher::new(),
            tools_changed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Reuses HTTP connections from the next session on (for servers with TCP_NODELAY).
    pub fn set_keep_alive(&self, keep_alive: bool) {
        self.keep_alive
            .store(keep_alive, std::sync::atomic::Ordering::Relaxed);
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The live session, connecting (once, under the lock) if there is none.
    async fn peer(&self, connect_timeout: Duration) -> Result<Peer<RoleClient>, UpstreamError> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref()
            && !session.is_closed()
            && !session.peer().is_transport_closed()
        {
            return Ok(session.peer().clone());
        }
        let now = std::time::Instant::now();
        {
            let reconnect = self
                .reconnect
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(not_before) = reconnect.not_before
                && now < not_before
            {
                return Err(UpstreamError::Connect(format!(
                    "{} failed connection attempts; next in {:?}",
                    reconnect.failures,
                    not_before - now
                )));
            }
        }
        let handler = UpstreamClient {
            progress: self.progress.clone(),
            tools_changed: self.tools_changed.clone(),
        };
        let connected = match tokio::time::timeout(connect_timeout, self.connect(handler)).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Connect(format!(
                "no handshake within {connect_timeout:?}"
            ))),
        };
        let mut reconnect = self
            .reconnect
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = match connected {
            Ok(session) => {
                *reconnect = Reconnect::default();
                session
            }
            Err(error) => {
                let wait = RECONNECT_BASE
                    .saturating_mul(1 << reconnect.failures.min(10))
                    .min(RECONNECT_MAX);
                reconnect.failures += 1;
                reconnect.not_before = Some(std::time::Instant::now() + wait);
                return Err(error);
            }
        };
        drop(reconnect);
        let peer = session.peer().clone();
        *slot = Some(Arc::new(session));
        Ok(peer)
    }

    async fn connect(&self, handler: UpstreamClient) -> Result<Session, UpstreamError> {
        let connect_error = |e: &dyn std::fmt::Display| UpstreamError::Connect(e.to_string());
        match &self.endpoint {
            Endpoint::Http { url } => {
                use rmcp::transport::StreamableHttpClientTransport;
                use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                config.max_concurrent_requests = self.max_concurrent;
                let transport = if self.keep_alive.load(std::sync::atomic::Ordering::Relaxed) {
                    let client = reqwest::Client::builder()
                        .pool_max_idle_per_host(self.max_concurrent)
                        .tcp_nodelay(true)
                        .build()
                        .map_err(|e| connect_error(&e))?;
                    StreamableHttpClientTransport::with_client(client, config)
                } else {
                    // rmcp's default: a new connection per request, safe with any server.
                    StreamableHttpClientTransport::from_config(config)
                };
                handler
                    .serve(transport)
                    .await
                    .map_err(|e| connect_error(&e))
            }
            Endpoint::Stdio { command, env } => {
                use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
                let (program, args) = command
                    .split_first()
                    .ok_or_else(|| UpstreamError::Connect("empty command".into()))?;
                let mut wrap = CommandWrap::with_new(program, |cmd| {
                    cmd.args(args).envs(env);
                });
                // Its own process group, killed as a whole: no grandchild outlives the instance.
                wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
                let (transport, _stderr) = rmcp::transport::TokioChildProcess::builder(wrap)
                    .stderr(std::process::Stdio::inherit())
                    .spawn()
                    .map_err(|e| connect_error(&e))?;
                // The child leads its group, so its id is the group's.
                self.kill_child_group();
                *self
                    .child_group
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = transport.id();
                handler
                    .serve(transport)
                    .await
                    .map_err(|e| connect_error(&e))
            }
        }
    }

    /// Drops the session so that the next call reconnects (after a transport failure); a
    /// stdio child is killed with its whole process group.
    pub async fn reset(&self) {
        if let Some(session) = self.session.lock().await.take() {
            session.cancellation_token().cancel();
        }
        self.kill_child_group();
    }

    /// Kills the stdio child's process group, grandchildren included.
    fn kill_child_group(&self) {
        let group = self
            .child_group
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(group) = group
            .and_then(|g| libc::pid_t::try_from(g).ok())
            .filter(|g| *g > 1)
        {
            // SAFETY: killpg has no memory effects; a group that is already gone is ESRCH.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }

    /// Lists the instance's tools (all pages).
    pub async fn list_tools(&self, timeout: Duration) -> Result<Vec<Tool>, UpstreamError> {
        let peer = self.peer(timeout).await?;
        match tokio::time::timeout(timeout, peer.list_all_tools()).await {
            Ok(Ok(tools)) => Ok(tools),
            Ok(Err(e)) => Err(self.classify(e).await),
            Err(_) => Err(UpstreamError::Timeout(timeout)),
        }
    }

    /// Pings the instance (MCP `ping`).
    pub async fn ping(&self, timeout: Duration) -> Result<(), UpstreamError> {
        let peer = self.peer(timeout).await?;
        let request = ClientRequest::PingRequest(Default::default());
        match tokio::time::timeout(timeout, peer.send_request(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(e).await),
            Err(_) => Err(UpstreamError::Timeout(timeout)),
        }
    }

    /// Calls a tool. Progress goes to `progress`; `cancel` or the timeout cancels the call
    /// upstream too (MCP `notifications/cancelled`).
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        timeout: Duration,
    ) -> Result<CallToolResponse, UpstreamError> {
        let peer = self.peer(timeout).await?;
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let mut handle = match peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
        {
            Ok(handle) => handle,
            Err(e) => {
                self.reset().await;
                return Err(UpstreamError::Connect(e.to_string()));
            }
        };
        let mut updates = match progress {
            Some(_) => Some(self.progress.subscribe(handle.progress_token.clone()).await),
            None => None,
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let answer = loop {
            tokio::select! {
                answer = &mut handle.rx => {
                    // Progress sent just before the answer may still be queued: deliver it first.
                    if let (Some(sink), Some(stream)) = (&progress, updates.as_mut()) {
                        use futures::{FutureExt, StreamExt};
                        while let Some(Some(update)) = stream.next().now_or_never() {
                            sink(update).await;
                        }
                    }
                    break answer;
                }
                Some(update) = next_update(&mut updates) => {
                    if let Some(sink) = &progress { sink(update).await }
                }
                () = cancel.cancelled() => {
                    let _ = handle.cancel(Some("cancelled by the caller".into())).await;
                    return Err(UpstreamError::Cancelled);
                }
                () = &mut deadline => {
                    let _ = handle.cancel(Some("timed out at the gateway".into())).await;
                    return Err(UpstreamError::Timeout(timeout));
                }
            }
        };
        match answer {
            Ok(Ok(ServerResult::CallToolResult(result))) => Ok(CallToolResponse::Complete(result)),
            Ok(Ok(ServerResult::InputRequiredResult(result))) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            Ok(Ok(ServerResult::CreateTaskResult(result))) => Ok(CallToolResponse::Task(result)),
            Ok(Ok(other)) => Err(UpstreamError::Protocol(format!("{other:?}"))),
            Ok(Err(e)) => Err(self.classify(e).await),
            Err(_) => {
                self.reset().await;
                Err(UpstreamError::Lost(
                    "the session closed before answering".into(),
                ))
            }
        }
    }

    /// Maps an rmcp error; a broken transport also resets the session.
    async fn classify(&self, error: ServiceError) -> UpstreamError {
        match error {
            ServiceError::McpError(data) => UpstreamError::Rpc(data),
            ServiceError::Timeout { timeout } => UpstreamError::Timeout(timeout),
            ServiceError::Cancelled { .. } => UpstreamError::Cancelled,
            ServiceError::UnexpectedResponse => {
                UpstreamError::Protocol("unexpected response".into())
            }
            other => {
                self.reset().await;
                UpstreamError::Lost(other.to_string())
            }
        }
    }
}

impl Drop for UpstreamSession {
    fn drop(&mut self) {
        // An instance removed from the fleet leaves no process behind.
        self.kill_child_group();
    }
}

async fn next_update(
    updates: &mut Option<rmcp::handler::client::progress::ProgressSubscriber>,
) -> Option<ProgressNotificationParam> {
    use futures::StreamExt;
    match updates {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}
