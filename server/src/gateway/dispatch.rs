//! One tool call through the fleet: resolve `server__tool`, pick an instance the balancer
//! likes and whose breaker admits, call it with a timeout, and on a retryable failure back
//! off and try another instance, within the server's retry budget.

use crate::access::audit_log::{args_digest, redacted_arguments};
use crate::access::control::{AccessControl, Caller};
use crate::gateway::balancer::Candidate;
use crate::gateway::record::{CallRecord, CallRecorder, Outcome};
use crate::gateway::retry::{FailureKind, backoff, is_retryable};
use crate::registry::{
    CallOutcome, CallPermit, FleetEvent, Refusal, Registry, ServerEntry, split_tool_name,
};
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

/// How long listing a server's tools may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// JSON-RPC error code of a call a permission refuses (in the implementation-defined range).
pub const PERMISSION_DENIED: ErrorCode = ErrorCode(-32003);
/// JSON-RPC error code of a call over the assistant's rate limit ("429").
pub const RATE_LIMITED: ErrorCode = ErrorCode(-32029);

/// The gateway's routing core, shared by every downstream session.
pub struct Dispatcher {
    registry: Arc<Registry>,
    access: Arc<AccessControl>,
    recorder: CallRecorder,
}

/// What routing learned about a call, for its record.
struct CallFacts {
    outcome: Outcome,
    instance: Option<String>,
    attempts: u32,
    cache_hit: bool,
    cacheable: bool,
    error: Option<String>,
}

impl CallFacts {
    /// Ends the call with `outcome` and, for failures, why.
    fn end(&mut self, outcome: Outcome, error: Option<String>) {
        self.outcome = outcome;
        self.error = error;
    }
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
        }
    }

    /// The tools `caller` may call, as `<server>__<tool>`, refreshing stale catalogs first.
    pub async fn list_tools(&self, caller: &Caller) -> Vec<Tool> {
        let mut tools = self.all_tools().await;
        tools.retain(|tool| {
            split_tool_name(&tool.name).is_some_and(|(server, name)| {
                self.access.decide(&caller.assistant, server, name).decision == Decision::Allow
            })
        });
        tools
    }

    /// Every tool of the fleet as `<server>__<tool>`, refreshing stale catalogs first.
    pub async fn all_tools(&self) -> Vec<Tool> {
        let now = Instant::now();
        let mut tools = Vec::new();
        for server in self.registry.servers() {
            if !server.catalog_stale(now) {
                server.tool_list_hits.fetch_add(1, Ordering::Relaxed);
            } else if let Err(error) = self.refresh_tools(&server).await {
                tracing::warn!(server = %server.name, %error, "cannot list tools; serving the last known list");
            }
            for tool in server.catalog().tools {
                let mut exposed = tool.clone();
                exposed.name = format!("{}__{}", server.name, tool.name).into();
                tools.push(exposed);
            }
        }
        tools
    }

    /// Lists a server's tools from the first instance that answers.
    pub async fn refresh_tools(&self, server: &ServerEntry) -> Result<(), String> {
        server.tool_list_misses.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last_error = String::from("no instance is eligible");
        // Eligible ones first; any instance will do for a listing.
        let mut instances = server.instances();
        instances.sort_by_key(|i| !i.looks_eligible(now));
        for instance in instances {
            match instance.upstream.list_tools(LIST_TIMEOUT).await {
                Ok(tools) => {
                    let changed = server.catalog().tools != tools;
                    server.set_catalog(tools, Instant::now());
                    if changed {
                        self.registry.publish(FleetEvent::Tools {
                            server: server.name.clone(),
                        });
                    }
                    return Ok(());
                }
                Err(error) => last_error = format!("{}: {error}", instance.id),
            }
        }
        Err(last_error)
    }

    /// Routes one call of `caller` and records it (audit log, metrics) before answering.
    /// Failures the caller should read come back as an isError result; requests refused
    /// before routing (unknown tool, denied, rate-limited) are protocol errors.
    pub async fn call_tool(
        &self,
        caller: &Caller,
        params: CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: CancellationToken,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let at_ms = crate::store::now_ms();
        let exposed = params.name.to_string();
        let (server_name, tool_name) = split_tool_name(&exposed)
            .map_or((String::new(), exposed.clone()), |(s, t)| {
                (s.to_string(), t.to_string())
            });
        let args_digest = args_digest(params.arguments.as_ref());
        let arguments = self
            .registry
            .server(&server_name)
            .filter(|server| server.settings.audit.record_arguments)
            .map(|server| {
                redacted_arguments(params.arguments.as_ref(), &server.settings.audit.redact)
            });
        let mut facts = CallFacts {
            outcome: Outcome::Ok,
            instance: None,
            attempts: 0,
            cache_hit: false,
            cacheable: false,
            error: None,
        };
        let answer = self
            .route(caller, &exposed, params, progress, &cancel, &mut facts)
            .await;
        // The root span (opened by the endpoint) learns how the call ended.
        let root = tracing::Span::current();
        root.record("outcome", facts.outcome.as_str());
        if let Some(error) = &facts.error {
            root.record("error", error.as_str());
        }
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
            })
            .instrument(audit_span)
            .await;
        answer
    }

    async fn route(
        &self,
        caller: &Caller,
        exposed: &str,
        params: CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        facts: &mut CallFacts,
    ) -> Result<CallToolResponse, ErrorData> {
        let unknown = |facts: &mut CallFacts| {
            let message = format!("unknown tool {exposed:?}");
            facts.end(Outcome::Rejected, Some(message.clone()));
            ErrorData::invalid_params(message, None)
        };
        let Some((server_name, tool_name)) = split_tool_name(exposed) else {
            return Err(unknown(facts));
        };
        let rate = tracing::debug_span!("rate_limit", limited = tracing::field::Empty);
        let checked = rate.in_scope(|| self.access.check_rate(caller, server_name, tool_name));
        rate.record("limited", checked.is_err());
        drop(rate);
        if let Err(retry_after) = checked {
            let message = format!(
                "rate limit exceeded for assistant {}: retry in {:.1} s",
                caller.assistant,
                retry_after.as_secs_f64()
            );
            facts.end(Outcome::RateLimited, Some(message.clone()));
            return Err(ErrorData::new(
                RATE_LIMITED,
                message,
                Some(serde_json::json!({ "retry_after_ms": retry_after.as_millis() as u64 })),
            ));
        }
        let Some(server) = self.registry.server(server_name) else {
            return Err(unknown(facts));
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
            return Err(ErrorData::new(PERMISSION_DENIED, message, None));
        }
        // Every call resolves its tool in the catalog: a hit, or a miss that lists again.
        if server.catalog_stale(Instant::now()) {
            let _ = self.refresh_tools(&server).await;
        } else {
            server.tool_list_hits.fetch_add(1, Ordering::Relaxed);
        }
        let Some(tool) = server.tool(tool_name) else {
            return Err(unknown(facts));
        };
        if let Err(problem) = check_arguments(&tool, params.arguments.as_ref()) {
            let message = format!("{exposed}: {problem}");
            facts.end(Outcome::Rejected, Some(message.clone()));
            return Err(ErrorData::invalid_params(message, None));
        }
        let idempotent = tool
            .annotations
            .as_ref()
            .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true));

        let cacheable = server.settings.cacheable.contains(tool_name);
        facts.cacheable = cacheable;
        if cacheable {
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
            let permit = match select.in_scope(|| self.admit(&server, &caller.assistant, &tried)) {
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
            let timeout = server.timeout_for(tool_name, &instance);
            let attempt = tracing::debug_span!(
                "attempt",
                instance = %instance.id,
                breaker = instance.breaker_state(Instant::now()).as_str(),
                backoff_ms = waited.as_millis() as u64,
                error = tracing::field::Empty
            );
            let upstream_call = tracing::debug_span!(
                parent: &attempt,
                "upstream_call",
                tool = tool_name,
                traceparent = tracing::field::Empty,
                error = tracing::field::Empty
            );
            let mut attempt_params = upstream_params.clone();
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
                .call_tool(attempt_params, progress.clone(), cancel, timeout)
                .instrument(upstream_call.clone())
                .await;
            if let Err(error) = &answer {
                upstream_call.record("error", tracing::field::display(error));
                attempt.record("error", tracing::field::display(error));
            }
            drop(upstream_call);
            let failure = match answer {
                Ok(response) => {
                    self.settle(permit, CallOutcome::Answered);
                    if cacheable && let CallToolResponse::Complete(result) = &response {
                        server
                            .results
                            .put(tool_name, upstream_params.arguments.as_ref(), result)
                            .await;
                    }
                    return Ok(answered(facts, response));
                }
                Err(UpstreamError::Rpc(error))
                    if error.code != rmcp::model::ErrorCode::INTERNAL_ERROR =>
                {
                    // The instance answered: it works, the request was refused.
                    self.settle(permit, CallOutcome::Answered);
                    facts.end(Outcome::Rejected, Some(error.message.to_string()));
                    return Err(error);
                }
                Err(UpstreamError::Cancelled) => {
                    self.settle(permit, CallOutcome::Abandoned);
                    facts.end(Outcome::Cancelled, None);
                    return Err(ErrorData::internal_error("the call was cancelled", None));
                }
                Err(error) => error,
            };
            let kind = match failure {
                UpstreamError::Connect(_) => FailureKind::Connect,
                UpstreamError::Protocol(_) => FailureKind::Protocol,
                // Timed out or lost mid-call: the tool may have run. An internal error
                // (-32603) is the instance failing, like an HTTP 5xx: it counts against the
                // breaker and is retried only where running twice is harmless.
                _ => FailureKind::Timeout,
            };
            let cause = failure.to_string();
            self.settle(permit, CallOutcome::Failed(&cause));
            attempt.in_scope(|| tracing::warn!(server = %server.name, instance = %instance.id, tool = tool_name, %cause, retry, "upstream call failed"));
            tried.push(instance.id.clone());
            let retry_allowed = retry < policy.attempts
                && is_retryable(kind, idempotent)
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
                .find_map(|c| c.as_text().map(|t| t.text.clone()));
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
