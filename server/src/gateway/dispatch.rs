//! One tool call through the fleet: resolve `server__tool`, pick an instance the balancer
//! likes and whose breaker admits, call it with a timeout, and on a retryable failure back
//! off and try another instance, within the server's retry budget.

use crate::access::audit_log::{args_digest, redacted_arguments};
use crate::access::control::{AccessControl, Caller};
use crate::gateway::balancer::Candidate;
use crate::gateway::record::{CallRecord, CallRecorder, Outcome};
use crate::gateway::retry::{FailureKind, backoff, is_retryable};
use crate::gateway::{catalog, result_size, tool_name};
use crate::registry::{
    CallOutcome, CallPermit, FleetEvent, Refusal, Registry, ServerEntry, split_tool_name,
};
use crate::sanitize;
use crate::store::Store;
use crate::telemetry::metrics::{Metrics, UpstreamRefusal};
use crate::telemetry::traces;
use crate::upstream::{ProgressSink, UpstreamError};
use app::wire::Decision;
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode, Tool,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Least time between two background listings of one server: an instance announcing
/// `tools/list_changed` in a loop gets one listing a second at most.
const RELIST_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// JSON-RPC error code of a call a permission refuses (in the implementation-defined range).
pub const PERMISSION_DENIED: ErrorCode = ErrorCode(-32003);
/// JSON-RPC error code of a call over the assistant's rate limit ("429").
pub const RATE_LIMITED: ErrorCode = ErrorCode(-32029);

/// The gateway's routing core, shared by every downstream session.
pub struct Dispatcher {
    registry: Arc<Registry>,
    access: Arc<AccessControl>,
    recorder: CallRecorder,
    /// Where fleet events about catalogs are recorded (none in unit tests).
    events: Option<Store>,
}

/// What routing learned about a call, for its record.
struct CallFacts {
    outcome: Outcome,
    instance: Option<String>,
    attempts: u32,
    cache_hit: bool,
    cacheable: bool,
    known_tool: bool,
    error: Option<String>,
}

impl CallFacts {
    fn new() -> Self {
        CallFacts {
            outcome: Outcome::Ok,
            instance: None,
            attempts: 0,
            cache_hit: false,
            cacheable: false,
            known_tool: false,
            error: None,
        }
    }

    /// Ends the call with `outcome` and, for failures, why (bounded: the text may come from
    /// an instance).
    fn end(&mut self, outcome: Outcome, error: Option<String>) {
        self.outcome = outcome;
        self.error = error.map(|e| sanitize::error_text(&e));
    }
}

/// Why a call was not admitted.
enum NotAdmitted {
    /// A protocol error: unknown tool, denied, rate-limited.
    Refused(ErrorData),
    /// Arguments that do not fit the tool's input schema: a tool execution error
    /// (`isError`, as the 2025-11-25 revision says of input validation), still without
    /// an upstream call.
    InvalidArguments(String),
}

impl From<ErrorData> for NotAdmitted {
    fn from(error: ErrorData) -> Self {
        NotAdmitted::Refused(error)
    }
}

/// A call that passed every check before routing: its tool is known, allowed, and its
/// arguments fit.
struct Admitted {
    server: Arc<ServerEntry>,
    /// Read-only or idempotent: safe to retry after a timeout.
    idempotent: bool,
    cacheable: bool,
}

impl Dispatcher {
    /// A dispatcher over the fleet, checking calls with `access` and recording them.
    pub fn new(
        registry: Arc<Registry>,
        access: Arc<AccessControl>,
        recorder: CallRecorder,
    ) -> Self {
        Dispatcher {
            registry,
            access,
            recorder,
            events: None,
        }
    }

    /// Records fleet events (catalogs refused or cut down) in `store`.
    pub fn with_event_store(mut self, store: Store) -> Self {
        self.events = Some(store);
        self
    }

    /// Charges a request other than a tool call (a listing, a ping, a handshake) to the
    /// caller's tier budget.
    pub fn charge_request(&self, caller: &Caller) -> Result<(), ErrorData> {
        self.access
            .check_request_rate(caller)
            .map_err(|retry_after| {
                self.recorder
                    .metrics()
                    .rate_limited_request(&caller.assistant);
                rate_limited(caller, retry_after)
            })
    }

    /// The tools `caller` may call, as `<server>__<tool>`.
    pub async fn list_tools(&self, caller: &Caller) -> Vec<Tool> {
        let mut tools = self.all_tools().await;
        tools.retain(|tool| {
            split_tool_name(&tool.name).is_some_and(|(server, name)| {
                self.access.decide(&caller.assistant, server, name).decision == Decision::Allow
            })
        });
        tools
    }

    /// Every tool of the fleet as `<server>__<tool>`. A stale catalog is listed again in
    /// the background; only servers never listed yet are waited for (all at once).
    pub async fn all_tools(&self) -> Vec<Tool> {
        let servers = self.registry.servers();
        futures::future::join_all(servers.iter().map(|s| self.ensure_catalog(s))).await;
        let mut tools = Vec::new();
        for server in servers {
            for tool in server.catalog().tools.iter() {
                let mut exposed = Tool::clone(tool);
                exposed.name = format!("{}__{}", server.name, tool.name).into();
                tools.push(exposed);
            }
        }
        tools
    }

    /// Makes sure `server` has a catalog to answer from: a fresh one is a hit; a stale one
    /// is used while one background listing runs; a server never listed is listed now
    /// (callers waiting for it share one listing), unless a listing failed within the last
    /// second (then it has no tools until the next try).
    async fn ensure_catalog(&self, server: &Arc<ServerEntry>) {
        let now = Instant::now();
        if !server.catalog_stale(now) {
            server.tool_list_hits.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !server.has_catalog() {
            if server.listing_ended_within(now, RELIST_AT_MOST_EVERY) {
                return;
            }
            if let Err(error) = self.refresh_tools(server).await {
                tracing::warn!(server = %server.name, %error, "cannot list tools");
            }
            return;
        }
        server.tool_list_hits.fetch_add(1, Ordering::Relaxed);
        if !server.relist_due(now, RELIST_AT_MOST_EVERY) {
            return;
        }
        let (registry, server, metrics, events) = (
            self.registry.clone(),
            server.clone(),
            self.recorder.metrics().clone(),
            self.events.clone(),
        );
        tokio::spawn(async move {
            if let Err(error) =
                catalog::refresh(&registry, &server, &metrics, events.as_ref()).await
            {
                tracing::warn!(server = %server.name, %error, "cannot list tools; serving the last known list");
            }
        });
    }

    /// Lists a server's tools from the first instance that answers (one listing at a time
    /// per server).
    pub async fn refresh_tools(&self, server: &ServerEntry) -> Result<(), String> {
        catalog::refresh(&self.registry, server, self.metrics(), self.events.as_ref()).await
    }

    fn metrics(&self) -> &Arc<Metrics> {
        self.recorder.metrics()
    }

    /// Routes one call of `caller` and records it (audit log, metrics) before answering.
    /// Failures the caller should read come back as an isError result; requests refused
    /// before routing (bad or unknown tool, denied, rate-limited) are protocol errors.
    pub async fn call_tool(
        &self,
        caller: &Caller,
        params: CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: CancellationToken,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let at_ms = crate::store::now_ms();
        let mut facts = CallFacts::new();
        let args_digest = args_digest(params.arguments.as_ref());
        // Checked before anything looks at the name; a bad one is only kept escaped (and
        // not split: its parts would name no real server or tool).
        let (server_name, tool_name, arguments, answer) = match tool_name::check(&params.name) {
            Err(problem) => {
                let shown = sanitize::escaped_name(&params.name);
                let refusal = self.refuse_bad_name(caller, problem, &mut facts);
                (String::new(), shown, None, Err(refusal))
            }
            Ok(name) => {
                let exposed = name.as_str().to_string();
                let arguments = self.recorded_arguments(&exposed, &params);
                let answer = self
                    .route(caller, &exposed, params, progress, &cancel, &mut facts)
                    .await;
                let (server, tool) = split_tool_name(&exposed)
                    .map_or((String::new(), exposed.clone()), |(s, t)| {
                        (s.to_string(), t.to_string())
                    });
                (server, tool, arguments, answer)
            }
        };
        // The root span (opened by the endpoint) learns how the call ended.
        let root = tracing::Span::current();
        root.record("outcome", facts.outcome.as_str());
        if let Some(error) = &facts.error {
            root.record("error", error.as_str());
        }
        // A refused call of a listed tool still counts under its own name.
        let known_tool = facts.known_tool
            || self
                .registry
                .server(&server_name)
                .is_some_and(|s| s.tool(&tool_name).is_some());
        let audit_span = tracing::debug_span!("audit_enqueue");
        self.recorder
            .record(CallRecord {
                at_ms,
                assistant: caller.assistant.to_string(),
                server: server_name,
                tool: tool_name,
                instance: facts.instance,
                outcome: facts.outcome,
                cache_hit: facts.cache_hit,
                cacheable: facts.cacheable,
                duration: started.elapsed(),
                attempts: facts.attempts,
                trace_id: traces::current_trace_id(),
                args_digest,
                arguments,
                error: facts.error,
                known_tool,
            })
            .instrument(audit_span)
            .await;
        answer
    }

    /// The arguments as the audit row keeps them, where the server records them (redacted
    /// and bounded).
    fn recorded_arguments(&self, exposed: &str, params: &CallToolRequestParams) -> Option<String> {
        let (server, _) = split_tool_name(exposed)?;
        let server = self.registry.server(server)?;
        let audit = &server.settings.audit;
        audit
            .record_arguments
            .then(|| redacted_arguments(params.arguments.as_ref(), &audit.redact))
    }

    /// A name that breaks the rule: charged to the tier budget like any request, then
    /// refused with the rule (`invalid_params`).
    fn refuse_bad_name(
        &self,
        caller: &Caller,
        problem: tool_name::ToolNameError,
        facts: &mut CallFacts,
    ) -> ErrorData {
        if let Err(retry_after) = self.access.check_request_rate(caller) {
            let error = rate_limited(caller, retry_after);
            facts.end(Outcome::RateLimited, Some(error.message.to_string()));
            return error;
        }
        let message = problem.to_string();
        facts.end(Outcome::Rejected, Some(message.clone()));
        ErrorData::invalid_params(message, None)
    }

    /// Everything after the name check: admission, the result cache, the upstream attempts.
    async fn route(
        &self,
        caller: &Caller,
        exposed: &str,
        params: CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        facts: &mut CallFacts,
    ) -> Result<CallToolResponse, ErrorData> {
        let admitted = match self.admit_call(caller, exposed, &params, facts).await {
            Ok(admitted) => admitted,
            Err(NotAdmitted::Refused(error)) => return Err(error),
            Err(NotAdmitted::InvalidArguments(message)) => {
                return Ok(CallToolResponse::Complete(CallToolResult::error(vec![
                    ContentBlock::text(message),
                ])));
            }
        };
        let tool_name = split_tool_name(exposed).map_or(exposed, |(_, tool)| tool);
        let server = &admitted.server;
        if admitted.cacheable {
            let lookup = tracing::debug_span!("cache_lookup", result = tracing::field::Empty);
            let hit = server
                .results
                .get(tool_name, params.arguments.as_ref())
                .instrument(lookup.clone())
                .await;
            lookup.record("result", if hit.is_some() { "hit" } else { "miss" });
            if let Some(hit) = hit {
                facts.cache_hit = true;
                return Ok(answered(facts, CallToolResponse::Complete((*hit).clone())));
            }
        }
        let mut upstream_params = params;
        upstream_params.name = tool_name.to_string().into();
        let answer = self
            .call_with_retries(
                caller,
                exposed,
                &admitted,
                &upstream_params,
                progress,
                cancel,
                facts,
            )
            .await?;
        // Only the tool's own answers are kept (not the gateway's failures).
        if admitted.cacheable
            && facts.outcome == Outcome::Ok
            && let CallToolResponse::Complete(result) = &answer
        {
            server
                .results
                .put(tool_name, upstream_params.arguments.as_ref(), result)
                .await;
        }
        Ok(answer)
    }

    /// The checks before any instance is involved, in order: the rate limit (before the
    /// name is resolved, so made-up names cost budget too), the server, the permission,
    /// the tool in the catalog, the arguments against its schema.
    async fn admit_call(
        &self,
        caller: &Caller,
        exposed: &str,
        params: &CallToolRequestParams,
        facts: &mut CallFacts,
    ) -> Result<Admitted, NotAdmitted> {
        let unknown = |facts: &mut CallFacts| {
            let message = format!("unknown tool {exposed:?}");
            facts.end(Outcome::Rejected, Some(message.clone()));
            ErrorData::invalid_params(message, None)
        };
        let (server_name, tool_name) = split_tool_name(exposed).unwrap_or(("", exposed));
        let rate = tracing::debug_span!("rate_limit", limited = tracing::field::Empty);
        let checked = rate.in_scope(|| self.access.check_rate(caller, server_name, tool_name));
        rate.record("limited", checked.is_err());
        drop(rate);
        if let Err(retry_after) = checked {
            let error = rate_limited(caller, retry_after);
            facts.end(Outcome::RateLimited, Some(error.message.to_string()));
            return Err(error.into());
        }
        let Some(server) = self.registry.server(server_name) else {
            return Err(unknown(facts).into());
        };
        let permission = tracing::debug_span!(
            "permission",
            decision = tracing::field::Empty,
            source = tracing::field::Empty
        )
        .in_scope(|| {
            let permission = self
                .access
                .decide(&caller.assistant, server_name, tool_name);
            let span = tracing::Span::current();
            span.record("decision", tracing::field::debug(&permission.decision));
            span.record("source", tracing::field::display(&permission.source));
            permission
        });
        if permission.decision == Decision::Deny {
            let message = format!(
                "permission denied: assistant {} may not call {exposed} ({})",
                caller.assistant, permission.source
            );
            facts.end(Outcome::Denied, Some(message.clone()));
            return Err(ErrorData::new(PERMISSION_DENIED, message, None).into());
        }
        // Every call resolves its tool in the catalog: a hit, or (first call) a listing.
        self.ensure_catalog(&server).await;
        let Some(tool) = server.tool(tool_name) else {
            return Err(unknown(facts).into());
        };
        facts.known_tool = true;
        if let Err(problem) = check_arguments(&tool, params.arguments.as_ref()) {
            let message = format!("{exposed}: invalid arguments: {problem}");
            facts.end(Outcome::Rejected, Some(message.clone()));
            return Err(NotAdmitted::InvalidArguments(message));
        }
        let idempotent = tool
            .annotations
            .as_ref()
            .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true));
        let cacheable = server.settings.cacheable.contains(tool_name);
        facts.cacheable = cacheable;
        Ok(Admitted {
            server,
            idempotent,
            cacheable,
        })
    }

    /// Attempts on the instances the balancer picks until one answers, a failure is not
    /// worth retrying, or the retry budget or attempts run out.
    #[allow(clippy::too_many_arguments)]
    async fn call_with_retries(
        &self,
        caller: &Caller,
        exposed: &str,
        admitted: &Admitted,
        params: &CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        facts: &mut CallFacts,
    ) -> Result<CallToolResponse, ErrorData> {
        let server = &admitted.server;
        let policy = server.settings.retry;
        server.retry_budget.record_request(Instant::now());
        let mut tried: Vec<String> = Vec::new();
        let mut retry = 0u32;
        // The wait before the next attempt, for its span.
        let mut waited = Duration::ZERO;
        loop {
            let select = tracing::debug_span!(
                "select_instance",
                strategy = server.balancer.strategy().as_str(),
                instance = tracing::field::Empty,
                error = tracing::field::Empty
            );
            let permit = match select.in_scope(|| self.admit(server, &caller.assistant, &tried)) {
                Ok(permit) => {
                    select.record("instance", permit.instance().id.as_str());
                    permit
                }
                Err(why) => {
                    select.record("error", why.as_str());
                    return Ok(failed(facts, format!("{exposed}: {why}")));
                }
            };
            drop(select);
            let instance = permit.instance().clone();
            facts.attempts += 1;
            facts.instance = Some(instance.id.clone());
            let attempt = tracing::debug_span!(
                "attempt",
                instance = %instance.id,
                breaker = instance.breaker_state(Instant::now()).as_str(),
                backoff_ms = waited.as_millis() as u64,
                error = tracing::field::Empty
            );
            let failure = match self
                .attempt(
                    server,
                    &instance,
                    params,
                    progress.clone(),
                    cancel,
                    &attempt,
                )
                .await
            {
                Attempt::Answered(response) => {
                    self.settle(permit, CallOutcome::Answered);
                    return Ok(answered(facts, response));
                }
                Attempt::Refused(error) => {
                    // The instance answered: it works, the request was refused.
                    self.settle(permit, CallOutcome::Answered);
                    facts.end(Outcome::Rejected, Some(error.message.to_string()));
                    return Err(error);
                }
                Attempt::OverLimit(why) => {
                    self.settle(permit, CallOutcome::Answered);
                    return Ok(failed(
                        facts,
                        format!("{exposed} on {}: {why}", instance.id),
                    ));
                }
                Attempt::Cancelled => {
                    self.settle(permit, CallOutcome::Abandoned);
                    facts.end(Outcome::Cancelled, None);
                    return Err(ErrorData::internal_error("the call was cancelled", None));
                }
                Attempt::Failed(failure) => failure,
            };
            let kind = match failure {
                UpstreamError::Connect(_) => FailureKind::Connect,
                UpstreamError::Protocol(_) => FailureKind::Protocol,
                // Timed out or lost mid-call: the tool may have run. An internal error
                // (-32603) is the instance failing, like an HTTP 5xx: it counts against the
                // breaker and is retried only where running twice is harmless.
                _ => FailureKind::Timeout,
            };
            let cause = sanitize::error_text(&failure.to_string());
            self.settle(permit, CallOutcome::Failed(&cause));
            attempt.in_scope(|| tracing::warn!(server = %server.name, instance = %instance.id, tool = %params.name, %cause, retry, "upstream call failed"));
            tried.push(instance.id.clone());
            let retry_allowed = retry < policy.attempts
                && is_retryable(kind, admitted.idempotent)
                && !cancel.is_cancelled()
                && server.retry_budget.try_withdraw(Instant::now());
            if !retry_allowed {
                return Ok(failed(
                    facts,
                    format!("{exposed} failed on {}: {cause}", instance.id),
                ));
            }
            waited = backoff(&policy, retry, fastrand::f64());
            attempt
                .in_scope(|| tracing::debug!("retrying after {} ms: {cause}", waited.as_millis()));
            drop(attempt);
            tokio::select! {
                () = tokio::time::sleep(waited) => {}
                () = cancel.cancelled() => {
                    facts.end(Outcome::Cancelled, None);
                    return Err(ErrorData::internal_error("the call was cancelled", None));
                }
            }
            retry += 1;
        }
    }

    /// One upstream call on `instance`, under the `attempt` span, with the trace passed on.
    async fn attempt(
        &self,
        server: &ServerEntry,
        instance: &Arc<crate::registry::Instance>,
        params: &CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        attempt: &tracing::Span,
    ) -> Attempt {
        let timeout = server.timeout_for(&params.name, instance);
        let upstream_call = tracing::debug_span!(
            parent: attempt,
            "upstream_call",
            tool = %params.name,
            traceparent = tracing::field::Empty,
            error = tracing::field::Empty
        );
        let mut attempt_params = params.clone();
        if let Some((traceparent, tracestate)) = traces::propagation_of(&upstream_call) {
            // The instance continues the trace under this span (SEP-414 `_meta`).
            upstream_call.record("traceparent", traceparent.as_str());
            let meta = attempt_params.meta.get_or_insert_default();
            meta.set_traceparent(traceparent);
            match tracestate {
                Some(state) => meta.set_tracestate(state),
                None => {
                    meta.remove("tracestate");
                }
            }
        }
        let answer = instance
            .upstream
            .call_tool(
                attempt_params,
                progress,
                cancel,
                timeout,
                server.settings.limits.max_result_bytes,
            )
            .instrument(upstream_call.clone())
            .await;
        if let Err(error) = &answer {
            upstream_call.record("error", tracing::field::display(error));
            attempt.record("error", tracing::field::display(error));
        }
        match answer {
            Ok(response) => match over_limit(&response, server.settings.limits.max_result_bytes) {
                Some(why) => {
                    self.metrics()
                        .upstream_refusal(&server.name, UpstreamRefusal::ResultTooLarge);
                    attempt.record("error", why.as_str());
                    Attempt::OverLimit(why)
                }
                None => Attempt::Answered(response),
            },
            Err(UpstreamError::Rpc(error)) if error.code != ErrorCode::INTERNAL_ERROR => {
                Attempt::Refused(bounded_error(error))
            }
            Err(UpstreamError::Cancelled) => Attempt::Cancelled,
            Err(UpstreamError::OverLimit(why)) => {
                self.metrics()
                    .upstream_refusal(&server.name, UpstreamRefusal::ResultTooLarge);
                Attempt::OverLimit(why)
            }
            Err(error) => Attempt::Failed(error),
        }
    }

    /// Picks and admits an instance, preferring ones not tried yet for this call.
    fn admit(
        &self,
        server: &ServerEntry,
        assistant: &str,
        tried: &[String],
    ) -> Result<CallPermit, String> {
        let now = Instant::now();
        let instances = server.instances();
        let mut refused: Vec<(String, Refusal)> = Vec::new();
        for fresh_only in [true, false] {
            loop {
                let eligible: Vec<_> = instances
                    .iter()
                    .filter(|i| !(fresh_only && tried.contains(&i.id)))
                    .filter(|i| !refused.iter().any(|(id, _)| *id == i.id))
                    .filter(|i| i.looks_eligible(now))
                    .collect();
                if eligible.is_empty() {
                    break;
                }
                // Instances without samples yet count as the fastest, not as free.
                let unsampled = unsampled_latency(&eligible);
                let candidates: Vec<Candidate<'_>> = eligible
                    .iter()
                    .map(|i| Candidate {
                        id: &i.id,
                        in_flight: i.routing_in_flight(now),
                        latency_ewma_ms: match i.latency_ewma_ms() {
                            ms if ms > 0.0 => ms,
                            _ => unsampled,
                        },
                    })
                    .collect();
                let Some(index) = server.balancer.pick(&candidates, assistant) else {
                    break;
                };
                match eligible[index].try_admit(now) {
                    Ok(permit) => return Ok(permit),
                    Err(refusal) => refused.push((eligible[index].id.clone(), refusal)),
                }
            }
        }
        Err(no_instance_reason(server, &refused, now))
    }

    fn settle(&self, permit: CallPermit, outcome: CallOutcome<'_>) {
        let instance = permit.instance().clone();
        let failed = matches!(outcome, CallOutcome::Failed(_));
        let drained = permit.finish(outcome);
        if drained || failed {
            self.registry.publish(FleetEvent::Instance {
                server: instance.server.clone(),
                instance: instance.id.clone(),
            });
        }
    }
}

/// How one upstream attempt ended, for the retry loop.
enum Attempt {
    /// The tool answered (a result, its own `isError`, or a task).
    Answered(CallToolResponse),
    /// The instance refused the request with a JSON-RPC error other than internal error.
    Refused(ErrorData),
    /// The answer was over one of the server's limits.
    OverLimit(String),
    /// The caller cancelled.
    Cancelled,
    /// No answer: maybe worth another instance.
    Failed(UpstreamError),
}

/// Why an answer is over `max_result_bytes`, if it is.
fn over_limit(response: &CallToolResponse, max_result_bytes: usize) -> Option<String> {
    let CallToolResponse::Complete(result) = response else {
        return None;
    };
    let size = result_size::approx_bytes(result);
    (size > max_result_bytes).then(|| {
        format!(
            "the result has about {size} bytes, over the server's limits.max_result_bytes ({max_result_bytes})"
        )
    })
}

/// An instance's JSON-RPC error as passed on: its message bounded, its data kept only when
/// small.
fn bounded_error(mut error: ErrorData) -> ErrorData {
    /// Largest `data` passed on from an instance's error, as JSON.
    const MAX_ERROR_DATA_BYTES: usize = 8 * 1024;
    error.message = sanitize::error_text(&error.message).into();
    // Passed on to the caller only when small, and with its URLs redacted like the message.
    error.data = error.data.take().and_then(|data| {
        if result_size::json_bytes(&data) > MAX_ERROR_DATA_BYTES {
            return None;
        }
        let text = data.to_string();
        if !text.contains("://") {
            return Some(data);
        }
        serde_json::from_str(&sanitize::redact_urls_in(&text)).ok()
    });
    error
}

/// The refusal of a call over the assistant's rate limit.
fn rate_limited(caller: &Caller, retry_after: Duration) -> ErrorData {
    let message = format!(
        "rate limit exceeded for assistant {}: retry in {:.1} s",
        caller.assistant,
        retry_after.as_secs_f64()
    );
    ErrorData::new(
        RATE_LIMITED,
        message,
        Some(serde_json::json!({ "retry_after_ms": retry_after.as_millis() as u64 })),
    )
}

/// The latency assumed for instances without samples: the fastest known one's. Not 0 (it
/// would take nearly every call) and not the median (a slower-than-best guess is never
/// picked at low load, so the instance would never be measured: seen as an idle demo
/// instance while its siblings served everything). Tied with the fastest, the balancer's
/// tie rotation sends it a call, and its own samples take over.
fn unsampled_latency(instances: &[&Arc<crate::registry::Instance>]) -> f64 {
    instances
        .iter()
        .map(|i| i.latency_ewma_ms())
        .filter(|ms| *ms > 0.0)
        .min_by(f64::total_cmp)
        .unwrap_or(1.0)
}

/// Says why no instance of the server can take the call, by counting the reasons.
fn no_instance_reason(server: &ServerEntry, refused: &[(String, Refusal)], now: Instant) -> String {
    let instances = server.instances();
    let (mut draining, mut unhealthy, mut open, mut saturated) = (0, 0, 0, 0);
    for instance in &instances {
        let refusal = refused
            .iter()
            .find(|(id, _)| *id == instance.id)
            .map(|(_, r)| r.clone())
            .or_else(|| instance.refusal(now));
        match refusal {
            Some(Refusal::NotActive(_)) => draining += 1,
            Some(Refusal::Unhealthy) => unhealthy += 1,
            Some(Refusal::BreakerOpen(_)) => open += 1,
            Some(Refusal::Saturated(_)) => saturated += 1,
            None => {}
        }
    }
    if saturated > 0 && saturated == instances.len() {
        return format!(
            "saturated: all {saturated} instances of {} have {} calls in flight; try again shortly",
            server.name,
            server.instances().first().map_or(0, |i| i.max_in_flight)
        );
    }
    format!(
        "no instance of {} can take the call ({} instances: {draining} draining or drained, {unhealthy} unhealthy, {open} with an open breaker, {saturated} saturated)",
        server.name,
        instances.len()
    )
}

/// A failure the assistant should read (MCP clients hide protocol errors' messages).
fn failed(facts: &mut CallFacts, message: String) -> CallToolResponse {
    facts.end(Outcome::Failed, Some(message.clone()));
    CallToolResponse::Complete(CallToolResult::error(vec![ContentBlock::text(message)]))
}

/// An answer of the tool: a result, or the tool's own error (`isError`).
fn answered(facts: &mut CallFacts, response: CallToolResponse) -> CallToolResponse {
    match &response {
        CallToolResponse::Complete(result) if result.is_error == Some(true) => {
            let text = result
                .content
                .iter()
                .find_map(|c| c.as_text().map(|t| sanitize::error_text(&t.text)));
            facts.end(Outcome::ToolError, text);
        }
        _ => facts.end(Outcome::Ok, None),
    }
    response
}

/// Checks the arguments against the tool's input schema: an object, required properties
/// present, and top-level property types right. The instance validates fully; this catches
/// the common mistakes before a call is spent.
pub fn check_arguments(
    tool: &Tool,
    arguments: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), String> {
    use serde_json::Value;
    let empty = serde_json::Map::new();
    let arguments = arguments.unwrap_or(&empty);
    let schema = tool.input_schema.as_ref();
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !arguments.contains_key(name) {
                return Err(format!("missing required argument {name:?}"));
            }
        }
    }
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return Ok(());
    };
    for (name, value) in arguments {
        let Some(expected) = properties.get(name).and_then(|p| p.get("type")) else {
            if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                return Err(format!("unknown argument {name:?}"));
            }
            continue;
        };
        let types: Vec<&str> = match expected {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let fits = types.iter().any(|t| match *t {
            "string" => value.is_string(),
            "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => true,
        });
        if !fits {
            return Err(format!(
                "argument {name:?} must be of type {}",
                types.join(" or ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(schema: serde_json::Value) -> Tool {
        let schema = schema.as_object().unwrap().clone();
        Tool::new("t", "a tool", Arc::new(schema))
    }

    #[test]
    fn an_unmeasured_instance_is_costed_as_the_fastest_so_it_gets_measured() {
        use crate::gateway::breaker::BreakerConfig;
        use crate::registry::{CallOutcome, Instance};
        use crate::upstream::Endpoint;
        let instance = |id: &str| {
            Arc::new(Instance::new(
                id.into(),
                "s".into(),
                Endpoint::Http {
                    url: "http://127.0.0.1:9/mcp".into(),
                },
                8,
                BreakerConfig::default(),
            ))
        };
        let (slow, fast, new) = (instance("slow"), instance("fast"), instance("new"));
        assert_eq!(unsampled_latency(&[&new]), 1.0, "nothing measured yet");
        let earlier = Instant::now() - Duration::from_millis(40);
        slow.try_admit(earlier)
            .unwrap()
            .finish(CallOutcome::Answered);
        fast.try_admit(Instant::now())
            .unwrap()
            .finish(CallOutcome::Answered);
        let guess = unsampled_latency(&[&slow, &fast, &new]);
        assert_eq!(guess, fast.latency_ewma_ms());
        assert!(guess < slow.latency_ewma_ms());
    }

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let t = tool(json!({
            "type": "object",
            "properties": { "q": { "type": "string" }, "limit": { "type": ["integer", "null"] } },
            "required": ["q"]
        }));
        let args = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert!(check_arguments(&t, Some(&args(json!({"q": "rust"})))).is_ok());
        assert!(check_arguments(&t, Some(&args(json!({"q": "rust", "limit": 5})))).is_ok());
        assert!(check_arguments(&t, Some(&args(json!({"q": "rust", "limit": null})))).is_ok());
        assert_eq!(
            check_arguments(&t, None),
            Err("missing required argument \"q\"".into())
        );
        assert_eq!(
            check_arguments(&t, Some(&args(json!({"q": 3})))),
            Err("argument \"q\" must be of type string".into())
        );
        assert_eq!(
            check_arguments(&t, Some(&args(json!({"q": "x", "limit": 2.5})))),
            Err("argument \"limit\" must be of type integer or null".into())
        );
        let strict =
            tool(json!({"type": "object", "properties": {}, "additionalProperties": false}));
        assert!(check_arguments(&strict, Some(&args(json!({"x": 1})))).is_err());
    }
}
