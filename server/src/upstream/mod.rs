//! Connections to fleet instances. Tool calls to an HTTP instance go over a pooled HTTP
//! client of their own (`http_call`: no session worker to queue behind); everything else
//! (listings, pings, `tools/list_changed`, and every call to a stdio child) uses one
//! long-lived rmcp client session per instance, re-established after a failure.

mod clients;
mod http_call;

use rmcp::handler::client::progress::ProgressDispatcher;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig,
    ClientRequest, Implementation, PaginatedRequestParams, ProgressNotificationParam, ServerResult,
    Tool,
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
    /// The instance answered with a JSON-RPC error (shown by code and message: its `data`
    /// is the instance's to fill and is never logged or stored).
    #[error("error {}: {}", .0.code.0, .0.message)]
    Rpc(rmcp::ErrorData),
    /// The instance answered with something that is not a tool result.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The answer is over one of the server's limits (e.g. too many tools).
    #[error("{0}")]
    OverLimit(String),
}

/// Which addresses an instance may be reached at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AddressPolicy {
    /// Any (instances of the fleet file: their author chose the address).
    #[default]
    Any,
    /// Not link-local (169.254.0.0/16, fe80::/10): where cloud metadata services answer.
    /// For instances added on the dashboard, unless `--allow-link-local-instances`.
    NoLinkLocal,
}

/// Whether `address` is link-local (IPv4 169.254.0.0/16 or IPv6 fe80::/10, also as an
/// IPv4-mapped IPv6 address): the cloud metadata services (169.254.169.254, fd00:ec2::254
/// aside) live there.
pub fn is_link_local(address: std::net::IpAddr) -> bool {
    match address {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_link_local(),
            // fd00:ec2::254 is AWS's IPv6 metadata address (unique local, not link-local).
            None => v6.is_unicast_link_local() || v6 == METADATA_V6,
        },
    }
}

/// AWS's IPv6 instance metadata address.
const METADATA_V6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Host names of cloud metadata services, refused like their addresses.
pub const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata", "instance-data"];

/// Why `url` may not be used under `policy`, judging its host as written (a name is
/// resolved at connection time, see [`LinkLocalFilter`]).
pub fn refused_address(url: &str, policy: AddressPolicy) -> Option<String> {
    if policy == AddressPolicy::Any {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let refused = match parsed.host()? {
        url::Host::Ipv4(v4) => is_link_local(v4.into()),
        url::Host::Ipv6(v6) => is_link_local(v6.into()),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            METADATA_HOSTS.contains(&name.as_str())
        }
    };
    refused.then(|| {
        format!(
            "{} is a link-local or cloud-metadata address (allow with --allow-link-local-instances)",
            crate::sanitize::redact_url(url)
        )
    })
}

/// A DNS resolver that drops link-local answers, so that a host name cannot lead an
/// instance added on the dashboard to a metadata service.
#[derive(Clone, Copy, Debug, Default)]
struct LinkLocalFilter;

impl reqwest::dns::Resolve for LinkLocalFilter {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| !is_link_local(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{host} resolves to no address an instance may use (link-local addresses are refused)"
                )
                .into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
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

impl Reconnect {
    /// Refuses a connection attempt before the backoff has passed.
    fn check(&self, now: std::time::Instant) -> Result<(), UpstreamError> {
        match self.not_before {
            Some(not_before) if now < not_before => Err(UpstreamError::Connect(format!(
                "{} failed connection attempts; next in {:?}",
                self.failures,
                not_before - now
            ))),
            _ => Ok(()),
        }
    }

    /// A connection failed: the next attempt waits longer.
    fn failed(&mut self, now: std::time::Instant) {
        let wait = RECONNECT_BASE
            .saturating_mul(1 << self.failures.min(10))
            .min(RECONNECT_MAX);
        self.failures += 1;
        self.not_before = Some(now + wait);
    }

    /// A connection succeeded: no wait.
    fn succeeded(&mut self) {
        *self = Reconnect::default();
    }
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
    /// Which addresses it may reach.
    address_policy: std::sync::Mutex<AddressPolicy>,
    /// The instance's id, for the log lines of its stdio child.
    label: String,
    /// Process group of the stdio child, killed as a whole with the session.
    child_group: std::sync::Mutex<Option<u32>>,
    progress: ProgressDispatcher,
    /// Tool calls of an HTTP instance (none for stdio).
    http: Option<http_call::HttpCaller>,
    /// Set when the instance says its tool list changed; cleared when the list is read again.
    pub tools_changed: Arc<std::sync::atomic::AtomicBool>,
}

impl UpstreamSession {
    /// A session to `endpoint`, connected on first use; `max_concurrent` bounds its HTTP
    /// requests in flight; `label` names the instance in log lines.
    pub fn new(endpoint: Endpoint, max_concurrent: usize, label: &str) -> Self {
        let http = match &endpoint {
            Endpoint::Http { url } => Some(http_call::HttpCaller::new(url)),
            Endpoint::Stdio { .. } => None,
        };
        UpstreamSession {
            http,
            label: crate::sanitize::bounded_owned(label, 64),
            address_policy: std::sync::Mutex::new(AddressPolicy::Any),
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

    /// Restricts the addresses it may reach from the next session on.
    pub fn set_address_policy(&self, policy: AddressPolicy) {
        *self
            .address_policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
    }

    fn address_policy(&self) -> AddressPolicy {
        *self
            .address_policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How its HTTP requests are sent (the fleet file's settings as they stand).
    fn http_settings(&self) -> http_call::ClientSettings {
        http_call::ClientSettings {
            keep_alive: self.keep_alive.load(std::sync::atomic::Ordering::Relaxed),
            policy: self.address_policy(),
            max_idle: self.max_concurrent,
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// An error text from a client library, fit to keep: the instance's URL redacted (and
    /// any other URL it quotes), bounded.
    fn scrub(&self, text: &str) -> String {
        match &self.endpoint {
            Endpoint::Http { url } => crate::sanitize::scrub_url(text, url),
            Endpoint::Stdio { .. } => crate::sanitize::scrub_url(text, ""),
        }
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
        self.reconnect
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(std::time::Instant::now())?;
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
                reconnect.succeeded();
                session
            }
            Err(error) => {
                reconnect.failed(std::time::Instant::now());
                return Err(error);
            }
        };
        drop(reconnect);
        let peer = session.peer().clone();
        *slot = Some(Arc::new(session));
        Ok(peer)
    }

    async fn connect(&self, handler: UpstreamClient) -> Result<Session, UpstreamError> {
        let connect_error =
            |e: &dyn std::fmt::Display| UpstreamError::Connect(self.scrub(&e.to_string()));
        match &self.endpoint {
            Endpoint::Http { url } => {
                use rmcp::transport::StreamableHttpClientTransport;
                use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
                let policy = self.address_policy();
                if let Some(why) = refused_address(url, policy) {
                    return Err(UpstreamError::Connect(why));
                }
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                config.max_concurrent_requests = self.max_concurrent;
                let keep_alive = self.keep_alive.load(std::sync::atomic::Ordering::Relaxed);
                let client = clients::shared(clients::ClientKind {
                    // Without keep-alive, a new connection per request (rmcp's default,
                    // safe with any server).
                    idle_per_host: if keep_alive { self.max_concurrent } else { 0 },
                    policy,
                })
                .map_err(|e| connect_error(&e))?;
                let transport = StreamableHttpClientTransport::with_client(client, config);
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
                    // A cleared environment: the gateway's secrets (DATABASE_URL,
                    // FLEETDECK_*) never reach a child; it gets what it needs to run and
                    // what the fleet file declares.
                    cmd.env_clear();
                    for name in INHERITED_ENV {
                        if let Some(value) = std::env::var_os(name) {
                            cmd.env(name, value);
                        }
                    }
                    cmd.args(args).envs(env);
                });
                // Its own process group, killed as a whole: no grandchild outlives the instance.
                wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
                let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(wrap)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| connect_error(&e))?;
                if let Some(stderr) = stderr {
                    tokio::spawn(log_stderr(self.label.clone(), stderr));
                }
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
        if let Some(http) = &self.http {
            http.reset();
        }
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

    /// Lists the instance's tools (all pages, within `timeout` together). More than
    /// `max_tools` tools, more pages than that, or more than `max_bytes` of tools as JSON is
    /// an [`UpstreamError::OverLimit`]: a listing never grows without bound.
    pub async fn list_tools(
        &self,
        timeout: Duration,
        max_tools: usize,
        max_bytes: usize,
    ) -> Result<Vec<Tool>, UpstreamError> {
        let peer = self.peer(timeout).await?;
        let listing = async {
            let mut tools = Vec::new();
            let mut bytes = 0;
            let mut cursor = None;
            for _page in 0..=max_tools {
                let page = peer
                    .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
                    .await?;
                bytes += page.tools.iter().map(tool_bytes).sum::<usize>();
                tools.extend(page.tools);
                if tools.len() > max_tools {
                    return Ok(Err(format!(
                        "the instance lists more than {max_tools} tools (the server's limits.max_tools)"
                    )));
                }
                if bytes > max_bytes {
                    return Ok(Err(format!(
                        "the instance's tools take more than {max_bytes} bytes (the server's limits.max_catalog_bytes)"
                    )));
                }
                cursor = page.next_cursor;
                if cursor.is_none() {
                    return Ok(Ok(tools));
                }
            }
            Ok(Err(format!(
                "the instance's tool list runs over more than {max_tools} pages"
            )))
        };
        match tokio::time::timeout(timeout, listing).await {
            Ok(Ok(Ok(tools))) => Ok(tools),
            Ok(Ok(Err(why))) => Err(UpstreamError::OverLimit(why)),
            Ok(Err(e)) => Err(self.classify(e).await),
            Err(_) => Err(UpstreamError::Timeout(timeout)),
        }
    }

    /// Pings the instance (MCP `ping`).
    pub async fn ping(&self, timeout: Duration) -> Result<(), UpstreamError> {
        if let Some(http) = &self.http {
            let scrub = |text: &str| self.scrub(text);
            return http.ping(&self.http_settings(), timeout, &scrub).await;
        }
        let peer = self.peer(timeout).await?;
        let request = ClientRequest::PingRequest(Default::default());
        match tokio::time::timeout(timeout, peer.send_request(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(e).await),
            Err(_) => Err(UpstreamError::Timeout(timeout)),
        }
    }

    /// Calls a tool. Progress goes to `progress`; `cancel` or the timeout cancels the call
    /// upstream too (MCP `notifications/cancelled`). An HTTP instance's answer over
    /// `max_result_bytes` is not read to its end ([`UpstreamError::OverLimit`]).
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        timeout: Duration,
        max_result_bytes: usize,
    ) -> Result<CallToolResponse, UpstreamError> {
        let Some(http) = &self.http else {
            return self
                .call_tool_in_session(params, progress, cancel, timeout)
                .await;
        };
        let scrub = |text: &str| self.scrub(text);
        http.call_tool(
            &self.http_settings(),
            params,
            progress,
            cancel,
            timeout,
            max_result_bytes,
            &scrub,
        )
        .await
    }

    /// A tool call over the rmcp session (stdio instances).
    async fn call_tool_in_session(
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
                return Err(UpstreamError::Connect(self.scrub(&e.to_string())));
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
            // Named, never dumped: the answer is the instance's to choose.
            Ok(Ok(_)) => Err(UpstreamError::Protocol(
                "an answer that is not a tool result".into(),
            )),
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
            ServiceError::McpError(mut data) => {
                data.message = self.scrub(&data.message).into();
                UpstreamError::Rpc(data)
            }
            ServiceError::Timeout { timeout } => UpstreamError::Timeout(timeout),
            ServiceError::Cancelled { .. } => UpstreamError::Cancelled,
            ServiceError::UnexpectedResponse => {
                UpstreamError::Protocol("unexpected response".into())
            }
            other => {
                self.reset().await;
                UpstreamError::Lost(self.scrub(&other.to_string()))
            }
        }
    }
}

/// About how many bytes a tool takes as JSON.
fn tool_bytes(tool: &Tool) -> usize {
    serde_json::to_value(tool).map_or(0, |v| crate::gateway::result_size::json_bytes(&v))
}

/// What a stdio child inherits from the gateway's environment (besides its declared `env`).
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG"];
/// Longest stderr line of a stdio child logged (longer ones are cut).
const MAX_STDERR_LINE_BYTES: usize = 2048;
/// Most stderr lines of one child logged a minute; the rest are counted, not logged.
const MAX_STDERR_LINES_PER_MINUTE: u32 = 120;

/// Logs a stdio child's stderr line by line, with the instance id, bounded in line length
/// and rate (a child writing without end cannot flood the log or grow memory).
async fn log_stderr(instance: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(stderr);
    let mut line = Vec::with_capacity(256);
    let mut window = std::time::Instant::now();
    let (mut logged, mut quiet) = (0u32, 0u64);
    loop {
        line.clear();
        // Reads up to a newline, keeping at most the bound (the rest of a long line is
        // consumed and dropped).
        let mut cut = false;
        loop {
            let buffer = match reader.fill_buf().await {
                Ok(buffer) => buffer,
                Err(_) => return,
            };
            if buffer.is_empty() {
                if !line.is_empty() {
                    break;
                }
                return;
            }
            let (take, done) = match buffer.iter().position(|b| *b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buffer.len(), false),
            };
            let room = MAX_STDERR_LINE_BYTES.saturating_sub(line.len());
            line.extend_from_slice(&buffer[..take.min(room)]);
            cut |= take > room;
            reader.consume(take);
            if done {
                break;
            }
        }
        if window.elapsed() >= Duration::from_secs(60) {
            if quiet > 0 {
                tracing::warn!(%instance, lines = quiet, "stdio instance: stderr lines not logged (over the rate)");
            }
            window = std::time::Instant::now();
            (logged, quiet) = (0, 0);
        }
        if logged >= MAX_STDERR_LINES_PER_MINUTE {
            quiet += 1;
            continue;
        }
        logged += 1;
        let text = String::from_utf8_lossy(&line);
        let text = crate::sanitize::bounded(text.trim_end(), MAX_STDERR_LINE_BYTES);
        tracing::info!(%instance, cut, "stderr: {text}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_addresses_are_refused_for_dashboard_instances() {
        let refused = |url| refused_address(url, AddressPolicy::NoLinkLocal);
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.0.1:8080/mcp",
            "http://[fe80::abcd]/mcp",
            "http://[::ffff:169.254.169.254]/",
            "http://[fd00:ec2::254]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
        ] {
            assert!(refused(url).is_some(), "{url}");
        }
        for url in [
            "http://127.0.0.1:7001/mcp",
            "http://10.0.0.5/mcp",
            "https://search.internal.example/mcp",
            "http://[::1]:9/mcp",
        ] {
            assert_eq!(refused(url), None, "{url}");
        }
        assert_eq!(
            refused_address("http://169.254.169.254/", AddressPolicy::Any),
            None
        );
        let why = refused("http://u:pw@169.254.169.254/?k=v").unwrap();
        assert!(!why.contains("pw") && !why.contains("k=v"), "{why}");
    }
}
