//! Access control at run time: who is calling (API keys), may they call this tool
//! (permissions), may they call it now (rate limits), and the admin changes to all of it.
//!
//! The hot path reads an immutable in-memory snapshot of assistants, keys and permissions,
//! with no I/O. Every change goes to the store first, in one transaction with an
//! `access_revision` bump and an audit row, and then replaces the snapshot; other processes
//! on the same database (the CLI, other replicas) are noticed by polling that revision.

use super::keys::{generate_key, key_digest, key_fingerprint, key_prefix};
use super::policy::{AccessPolicy, EVERY_TOOL, ExplicitRules, resolve};
use super::rate_limit::RateLimits;
use crate::store::{AccessRecords, AssistantRecord, DeclaredAssistant, Store, StoreError, now_ms};
use app::wire::{Decision, DecisionSource, IssuedKey, PermissionCell, Tier};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest assistant name accepted.
pub const MAX_ASSISTANT_NAME_LEN: usize = 64;
/// Shortest key a fleet file may declare (generated keys are far longer).
pub const MIN_DECLARED_KEY_CHARS: usize = 32;
/// Longest server or tool name accepted in a permission entry.
pub const MAX_PERMISSION_NAME_LEN: usize = 256;
/// Longest key worth digesting: anything longer is no key of ours (and bounds the work).
const MAX_PRESENTED_KEY_LEN: usize = 512;
/// Decisions cached per snapshot at most: callers cannot grow memory without bound with
/// made-up tool names.
const MAX_CACHED_DECISIONS: usize = 100_000;
/// How often the watcher forgets idle rate-limit budgets.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// An authenticated caller of the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The assistant's name.
    pub assistant: Arc<str>,
    /// Its tier when the key was checked.
    pub tier: Tier,
    /// The key it presented.
    pub key_id: i64,
}

/// Why an access change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The assistant or key does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change contradicts what exists (a taken name, a key already revoked).
    #[error("{0}")]
    Conflict(String),
    /// The input is malformed (a bad name, an invalid policy).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccessError {
    /// The store's not-found and conflict become ours, so callers match on one type.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => AccessError::NotFound(what),
            StoreError::Conflict(why) => AccessError::Conflict(why),
            other => AccessError::Store(other),
        }
    }
}

/// When a key last authenticated, shared by successive snapshots so no use is lost when
/// one replaces another.
#[derive(Debug, Default)]
struct KeyUsage {
    /// Unix ms of the latest use (0: never).
    last_used_ms: AtomicI64,
    /// The latest time written to the store.
    flushed_ms: AtomicI64,
}

impl KeyUsage {
    /// Takes in a stored time, which another replica may have moved past ours.
    fn merge_stored(&self, stored_ms: Option<i64>) {
        let stored = stored_ms.unwrap_or(0);
        self.last_used_ms.fetch_max(stored, Ordering::Relaxed);
        self.flushed_ms.fetch_max(stored, Ordering::Relaxed);
    }
}

/// A key that authenticates (revoked keys are left out).
struct ActiveKey {
    key_id: i64,
    assistant: Arc<str>,
    tier: Tier,
    usage: Arc<KeyUsage>,
}

/// One assistant's rules and the decisions made from them so far.
struct AssistantRules {
    tier: Tier,
    explicit: ExplicitRules,
    /// Server → tool → decision.
    decisions: RwLock<HashMap<String, HashMap<String, PermissionCell>>>,
}

/// Everything the hot path reads, as of one `access_revision`. Replaced whole on reload,
/// which also drops every cached decision.
struct Snapshot {
    revision: i64,
    keys_by_digest: HashMap<String, ActiveKey>,
    rules: HashMap<String, AssistantRules>,
    records: Vec<AssistantRecord>,
    usage: HashMap<i64, Arc<KeyUsage>>,
    cached_decisions: AtomicUsize,
}

impl Snapshot {
    fn empty() -> Self {
        Snapshot {
            revision: -1,
            keys_by_digest: HashMap::new(),
            rules: HashMap::new(),
            records: Vec::new(),
            usage: HashMap::new(),
            cached_decisions: AtomicUsize::new(0),
        }
    }

    /// Builds a snapshot from stored records, carrying over the previous key usage.
    fn build(records: AccessRecords, previous_usage: &HashMap<i64, Arc<KeyUsage>>) -> Self {
        let mut explicit: HashMap<&str, Vec<(String, String, Decision)>> = HashMap::new();
        for entry in &records.permissions {
            explicit.entry(entry.assistant.as_str()).or_default().push((
                entry.server.clone(),
                entry.tool.clone(),
                entry.decision,
            ));
        }
        let mut keys_by_digest = HashMap::new();
        let mut usage = HashMap::new();
        let mut rules = HashMap::new();
        for assistant in &records.assistants {
            let name: Arc<str> = Arc::from(assistant.name.as_str());
            for key in &assistant.keys {
                let key_usage = previous_usage.get(&key.id).cloned().unwrap_or_default();
                key_usage.merge_stored(key.last_used_at_ms);
                usage.insert(key.id, key_usage.clone());
                if key.revoked_at_ms.is_none() {
                    keys_by_digest.insert(
                        key.digest.clone(),
                        ActiveKey {
                            key_id: key.id,
                            assistant: name.clone(),
                            tier: assistant.tier,
                            usage: key_usage,
                        },
                    );
                }
            }
            rules.insert(
                assistant.name.clone(),
                AssistantRules {
                    tier: assistant.tier,
                    explicit: ExplicitRules::new(
                        explicit.remove(assistant.name.as_str()).unwrap_or_default(),
                    ),
                    decisions: RwLock::default(),
                },
            );
        }
        Snapshot {
            revision: records.revision,
            keys_by_digest,
            rules,
            records: records.assistants,
            usage,
            cached_decisions: AtomicUsize::new(0),
        }
    }
}

/// Assistants, keys, permissions and rate limits, as the gateway and the dashboard use them.
pub struct AccessControl {
    store: Store,
    policy: AccessPolicy,
    limits: RateLimits,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serialises reloads, so a slower one never installs older data over a newer one.
    reload_lock: tokio::sync::Mutex<()>,
}

impl AccessControl {
    /// Validates the policy and loads the current state from the store.
    pub async fn load(
        store: Store,
        policy: AccessPolicy,
    ) -> Result<Arc<AccessControl>, AccessError> {
        policy
            .validate()
            .map_err(|e| AccessError::Invalid(format!("access policy: {e}")))?;
        let control = AccessControl {
            limits: RateLimits::new(&policy),
            store,
            policy,
            snapshot: RwLock::new(Arc::new(Snapshot::empty())),
            reload_lock: tokio::sync::Mutex::new(()),
        };
        control.reload().await?;
        Ok(Arc::new(control))
    }

    /// The policy in force.
    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    /// The rate limiters (for housekeeping outside [`AccessControl::watch`]).
    pub fn rate_limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The `access_revision` of the state in use.
    pub fn revision(&self) -> i64 {
        self.current().revision
    }

    fn current(&self) -> Arc<Snapshot> {
        // A panic elsewhere while holding the lock cannot leave a half-swapped Arc behind.
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Brings the fleet file's assistants into the store: creates missing ones (created by
    /// `fleet-file`) with their tier, registers each key's digest if not yet known (a key
    /// already registered to a different assistant is a conflict), and updates the tier if
    /// the file changed it. Idempotent across restarts; never deletes. A declared key that
    /// was revoked stays revoked (with a warning).
    pub async fn import_declared(
        &self,
        declared: &[(String, Tier, String)],
    ) -> Result<(), AccessError> {
        let mut changed = false;
        for (name, tier, key) in declared {
            validate_assistant_name(name)?;
            if key.chars().count() < MIN_DECLARED_KEY_CHARS {
                return Err(AccessError::Invalid(format!(
                    "assistant {name}: a declared key needs at least \
                     {MIN_DECLARED_KEY_CHARS} characters"
                )));
            }
            let import = self
                .store
                .import_declared_assistant(&DeclaredAssistant {
                    name,
                    tier: *tier,
                    key_prefix: &key_fingerprint(key),
                    key_digest: &key_digest(key),
                })
                .await?;
            if import.created {
                tracing::info!(assistant = %name, %tier, "assistant added from the fleet file");
            }
            if let Some(before) = import.tier_before {
                tracing::info!(
                    assistant = %name,
                    %before,
                    after = %tier,
                    "assistant tier set from the fleet file"
                );
            }
            if import.key_revoked {
                tracing::warn!(
                    assistant = %name,
                    "the fleet file declares a key that was revoked: it stays revoked; \
                     remove it from the file or declare a new one"
                );
            }
            changed |= import.changed();
        }
        if changed {
            self.reload().await?;
        } else {
            // Another replica starting at the same time may have imported the same file after
            // this one loaded: what is stored now is what this one must serve.
            self.reload_if_changed().await?;
        }
        Ok(())
    }

    /// The caller presenting this key, or `None` for an unknown or revoked key. No I/O:
    /// the key's digest is looked up in memory, and the use is noted there.
    pub fn authenticate(&self, presented_key: &str) -> Option<Caller> {
        if presented_key.is_empty() || presented_key.len() > MAX_PRESENTED_KEY_LEN {
            return None;
        }
        // Looking up the digest (not the key) leaks nothing through timing: finding a key
        // whose digest shares a prefix with a stored one tells nothing about the stored key.
        let digest = key_digest(presented_key);
        let snapshot = self.current();
        let key = snapshot.keys_by_digest.get(&digest)?;
        key.usage
            .last_used_ms
            .fetch_max(now_ms(), Ordering::Relaxed);
        Some(Caller {
            assistant: key.assistant.clone(),
            tier: key.tier,
            key_id: key.key_id,
        })
    }

    /// The effective decision for `assistant` calling `server`'s `tool`, and which rule made
    /// it. No I/O: decisions are cached in the current snapshot, so the cache dies with it
    /// when a change reloads. An unknown assistant is denied.
    pub fn decide(&self, assistant: &str, server: &str, tool: &str) -> PermissionCell {
        let snapshot = self.current();
        let Some(rules) = snapshot.rules.get(assistant) else {
            return PermissionCell {
                decision: Decision::Deny,
                source: DecisionSource::Unmatched,
            };
        };
        let cached = rules
            .decisions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(server)
            .and_then(|tools| tools.get(tool))
            .cloned();
        if let Some(cell) = cached {
            return cell;
        }
        let cell = resolve(&rules.explicit, self.policy.tier(rules.tier), server, tool);
        if snapshot.cached_decisions.load(Ordering::Relaxed) < MAX_CACHED_DECISIONS {
            let mut decisions = rules
                .decisions
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let tools = decisions.entry(server.to_string()).or_default();
            if tools.insert(tool.to_string(), cell.clone()).is_none() {
                snapshot.cached_decisions.fetch_add(1, Ordering::Relaxed);
            }
        }
        cell
    }

    /// Counts one call against the caller's rate limit; `Err` holds when to retry.
    pub fn check_rate(&self, caller: &Caller, server: &str, tool: &str) -> Result<(), Duration> {
        self.limits
            .check(&caller.assistant, caller.tier, server, tool)
    }

    /// Counts one request other than a tool call (a listing, a ping, a handshake, a refused
    /// name) against the caller's tier budget; `Err` holds when to retry.
    pub fn check_request_rate(&self, caller: &Caller) -> Result<(), Duration> {
        self.limits.check_tier(&caller.assistant, caller.tier)
    }

    /// Re-reads assistants, keys and permissions from the store and swaps the snapshot.
    pub async fn reload(&self) -> Result<(), AccessError> {
        let _serialised = self.reload_lock.lock().await;
        let records = self.store.load_access().await?;
        let previous = self.current();
        let next = Arc::new(Snapshot::build(records, &previous.usage));
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }

    /// Reloads if the stored `access_revision` moved; returns whether it did.
    pub async fn reload_if_changed(&self) -> Result<bool, AccessError> {
        let stored = self.store.access_revision().await?;
        if stored == self.current().revision {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Until `shutdown`: every `interval`, reloads when `access_revision` moved (changes by
    /// the CLI or another replica), flushes last-used times to the store, and now and then
    /// forgets idle rate-limit budgets. Failures are logged and retried on the next tick.
    /// Flushes once more on shutdown.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the state was just loaded.
        ticker.tick().await;
        let mut last_housekeeping = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Err(error) = self.reload_if_changed().await {
                tracing::warn!(%error, "cannot reload access control; retrying");
            }
            if let Err(error) = self.flush_last_used().await {
                tracing::warn!(%error, "cannot record API key use; retrying");
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                self.limits.retain_recent();
                last_housekeeping = Instant::now();
            }
        }
        if let Err(error) = self.flush_last_used().await {
            tracing::warn!(%error, "cannot record API key use at shutdown");
        }
    }

    /// Writes last-used times not yet in the store (a stored later time is kept).
    pub async fn flush_last_used(&self) -> Result<(), AccessError> {
        let snapshot = self.current();
        let pending: Vec<(i64, i64)> = snapshot
            .usage
            .iter()
            .filter_map(|(key_id, usage)| {
                let used = usage.last_used_ms.load(Ordering::Relaxed);
                (used > usage.flushed_ms.load(Ordering::Relaxed)).then_some((*key_id, used))
            })
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        self.store.record_key_use(&pending).await?;
        for (key_id, used) in pending {
            if let Some(usage) = snapshot.usage.get(&key_id) {
                usage.flushed_ms.fetch_max(used, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Reloads after this process committed a change. The change is in the store whatever
    /// happens here (and a key shown once must reach its caller), so a failed reload is
    /// logged, not returned; the watcher sees the moved revision and retries.
    async fn reload_after_change(&self) {
        if let Err(error) = self.reload().await {
            tracing::warn!(
                %error,
                "access change saved but not yet loaded; the watcher will retry"
            );
        }
    }

    /// Adds an assistant with a first key, shown once in the answer. The name has 1 to 64
    /// of `a-z 0-9 . _ -`, starting with a letter or digit; a taken name is a conflict.
    pub async fn add_assistant(
        &self,
        actor: &str,
        name: &str,
        tier: Tier,
    ) -> Result<IssuedKey, AccessError> {
        validate_assistant_name(name)?;
        let key = generate_key();
        let key_id = self
            .store
            .insert_assistant(name, tier, &key_prefix(&key), &key_digest(&key), actor)
            .await?;
        self.reload_after_change().await;
        Ok(IssuedKey {
            assistant: name.to_string(),
            key_id,
            key,
        })
    }

    /// Changes an assistant's tier (its default permissions and rate limit).
    pub async fn set_tier(&self, actor: &str, name: &str, tier: Tier) -> Result<(), AccessError> {
        self.store.update_assistant_tier(name, tier, actor).await?;
        self.reload_after_change().await;
        Ok(())
    }

    /// Issues another key to an assistant, shown once in the answer.
    pub async fn issue_key(&self, actor: &str, name: &str) -> Result<IssuedKey, AccessError> {
        let key = generate_key();
        let key_id = self
            .store
            .insert_api_key(name, &key_prefix(&key), &key_digest(&key), actor)
            .await?;
        self.reload_after_change().await;
        Ok(IssuedKey {
            assistant: name.to_string(),
            key_id,
            key,
        })
    }

    /// Revokes an assistant's key: its next call is refused. A key of another assistant is
    /// not found; a key already revoked is a conflict.
    pub async fn revoke_key(
        &self,
        actor: &str,
        name: &str,
        key_id: i64,
    ) -> Result<(), AccessError> {
        self.store.revoke_api_key(name, key_id, actor).await?;
        self.reload_after_change().await;
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`, back to the tier's patterns) an assistant's explicit
    /// entry for a server's tool; tool `*` is server-wide, and a server-wide decision also
    /// removes the assistant's per-tool entries of that server (a bulk grant or revoke is
    /// uniform). Names are not checked against the fleet here (the caller does that), but
    /// must be non-empty and without whitespace.
    pub async fn set_permission(
        &self,
        actor: &str,
        assistant: &str,
        server: &str,
        tool: &str,
        decision: Option<Decision>,
    ) -> Result<(), AccessError> {
        validate_permission_name("server", server)?;
        if server.contains('*') {
            return Err(AccessError::Invalid(format!(
                "server {server:?}: name one server (no '*')"
            )));
        }
        validate_permission_name("tool", tool)?;
        if tool != EVERY_TOOL && tool.contains('*') {
            return Err(AccessError::Invalid(format!(
                "tool {tool:?}: name one tool, or \"*\" alone for every tool of the server"
            )));
        }
        self.store
            .set_permission(assistant, server, tool, decision, actor)
            .await?;
        self.reload_after_change().await;
        Ok(())
    }

    /// Every assistant, by name, with its keys newest first; last-used times include uses
    /// not yet flushed to the store.
    pub fn assistants(&self) -> Vec<AssistantRecord> {
        let snapshot = self.current();
        let mut records = snapshot.records.clone();
        for key in records.iter_mut().flat_map(|a| a.keys.iter_mut()) {
            if let Some(usage) = snapshot.usage.get(&key.id) {
                let used = usage.last_used_ms.load(Ordering::Relaxed);
                if used > key.last_used_at_ms.unwrap_or(0) {
                    key.last_used_at_ms = Some(used);
                }
            }
        }
        records
    }

    /// One assistant's explicit entries as `(server, tool, decision)`, sorted.
    pub fn explicit_permissions(
        &self,
        assistant: &str,
    ) -> Result<Vec<(String, String, Decision)>, AccessError> {
        let snapshot = self.current();
        let rules = snapshot
            .rules
            .get(assistant)
            .ok_or_else(|| AccessError::NotFound(format!("assistant {assistant}")))?;
        Ok(rules
            .explicit
            .entries()
            .map(|(server, tool, decision)| (server.to_string(), tool.to_string(), decision))
            .collect())
    }

    /// An assistant's tier, if it exists.
    pub fn tier_of(&self, assistant: &str) -> Option<Tier> {
        self.current().rules.get(assistant).map(|rules| rules.tier)
    }
}

/// Checks an assistant name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_assistant_name(name: &str) -> Result<(), AccessError> {
    let well_formed = (1..=MAX_ASSISTANT_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if well_formed {
        Ok(())
    } else {
        Err(AccessError::Invalid(format!(
            "assistant name {name:?}: use 1 to {MAX_ASSISTANT_NAME_LEN} of a-z, 0-9, '.', '_', \
             '-', starting with a letter or digit"
        )))
    }
}

fn validate_permission_name(what: &str, name: &str) -> Result<(), AccessError> {
    if name.is_empty() || name.len() > MAX_PERMISSION_NAME_LEN {
        return Err(AccessError::Invalid(format!(
            "a {what} name needs 1 to {MAX_PERMISSION_NAME_LEN} characters"
        )));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AccessError::Invalid(format!(
            "{what} {name:?} contains whitespace"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::assistants::FLEET_FILE_ACTOR;
    use crate::store::test_support::temp_store;
    use crate::store::{SQLITE_FILE, default_database_url};

    async fn control() -> (Arc<AccessControl>, Store, tempfile::TempDir) {
        let (store, dir) = temp_store().await;
        let control = AccessControl::load(store.clone(), AccessPolicy::default())
            .await
            .unwrap();
        (control, store, dir)
    }

    /// Audit rows, oldest first, as (actor, action, target).
    async fn audit(store: &Store) -> Vec<(String, String, String)> {
        let mut rows = store.recent_admin_audit(100).await.unwrap();
        rows.reverse();
        rows.into_iter()
            .map(|a| (a.actor, a.action, a.target))
            .collect()
    }

    fn allowed(control: &AccessControl, assistant: &str, server: &str, tool: &str) -> bool {
        control.decide(assistant, server, tool).decision == Decision::Allow
    }

    #[tokio::test]
    async fn an_issued_key_authenticates_until_it_is_revoked() {
        let (control, _store, _dir) = control().await;
        let issued = control
            .add_assistant("olga", "claude", Tier::Developer)
            .await
            .unwrap();
        assert_eq!(issued.assistant, "claude");
        assert!(issued.key.starts_with("fdk_"));
        let caller = control.authenticate(&issued.key).unwrap();
        assert_eq!(
            caller,
            Caller {
                assistant: Arc::from("claude"),
                tier: Tier::Developer,
                key_id: issued.key_id
            }
        );
        assert_eq!(control.authenticate("fdk_not-a-key"), None);
        assert_eq!(control.authenticate(""), None);
        assert_eq!(control.authenticate(&"x".repeat(10_000)), None);

        let second = control.issue_key("olga", "claude").await.unwrap();
        assert_ne!(second.key, issued.key);
        control
            .revoke_key("olga", "claude", issued.key_id)
            .await
            .unwrap();
        assert_eq!(control.authenticate(&issued.key), None, "refused at once");
        assert_eq!(
            control.authenticate(&second.key).unwrap().key_id,
            second.key_id,
            "other keys keep working"
        );
    }

    #[tokio::test]
    async fn mutations_refuse_bad_input_with_the_right_error() {
        let (control, _store, _dir) = control().await;
        let issued = control
            .add_assistant("olga", "claude", Tier::Viewer)
            .await
            .unwrap();
        control
            .add_assistant("olga", "other", Tier::Viewer)
            .await
            .unwrap();
        for bad in ["", "Claude", "-x", ".x", "a b", "a/b", &"a".repeat(65)] {
            let err = control
                .add_assistant("olga", bad, Tier::Viewer)
                .await
                .unwrap_err();
            assert!(matches!(err, AccessError::Invalid(_)), "{bad:?}: {err}");
        }
        control
            .add_assistant("olga", "ci-agent.v2_b", Tier::Viewer)
            .await
            .unwrap();
        let err = control
            .add_assistant("olga", "claude", Tier::Admin)
            .await
            .unwrap_err();
        assert!(matches!(err, AccessError::Conflict(_)), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = control
            .set_tier("olga", "nobody", Tier::Admin)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "assistant nobody not found");
        let err = control.issue_key("olga", "nobody").await.unwrap_err();
        assert!(matches!(err, AccessError::NotFound(_)), "{err}");
        let err = control
            .revoke_key("olga", "other", issued.key_id)
            .await
            .unwrap_err();
        assert!(matches!(err, AccessError::NotFound(_)), "{err}");
        control
            .revoke_key("olga", "claude", issued.key_id)
            .await
            .unwrap();
        let err = control
            .revoke_key("olga", "claude", issued.key_id)
            .await
            .unwrap_err();
        assert!(matches!(err, AccessError::Conflict(_)), "{err}");
        for (server, tool) in [
            ("", "x"),
            ("files", ""),
            ("fi les", "x"),
            ("files", "re ad"),
            ("*", "x"),
            ("files", "read*"),
        ] {
            let err = control
                .set_permission("olga", "claude", server, tool, Some(Decision::Allow))
                .await
                .unwrap_err();
            assert!(
                matches!(err, AccessError::Invalid(_)),
                "{server:?} {tool:?}: {err}"
            );
        }
        let err = control
            .set_permission("olga", "nobody", "files", "read", Some(Decision::Allow))
            .await
            .unwrap_err();
        assert!(matches!(err, AccessError::NotFound(_)), "{err}");
        assert!(matches!(
            control.explicit_permissions("nobody"),
            Err(AccessError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_permission_change_is_decided_on_at_once() {
        let (control, _store, _dir) = control().await;
        control
            .add_assistant("olga", "claude", Tier::Viewer)
            .await
            .unwrap();
        assert_eq!(
            control.decide("claude", "files", "read_file"),
            PermissionCell {
                decision: Decision::Allow,
                source: DecisionSource::TierPattern("read_*".into())
            }
        );
        assert!(!allowed(&control, "claude", "files", "write_file"));
        // Decided twice: the second answer comes from the cache.
        assert!(!allowed(&control, "claude", "files", "write_file"));

        control
            .set_permission(
                "olga",
                "claude",
                "files",
                "write_file",
                Some(Decision::Allow),
            )
            .await
            .unwrap();
        assert_eq!(
            control.decide("claude", "files", "write_file"),
            PermissionCell {
                decision: Decision::Allow,
                source: DecisionSource::Explicit
            }
        );
        control
            .set_permission("olga", "claude", "files", "read_file", Some(Decision::Deny))
            .await
            .unwrap();
        assert!(!allowed(&control, "claude", "files", "read_file"));
        assert_eq!(
            control.explicit_permissions("claude").unwrap(),
            [
                ("files".into(), "read_file".into(), Decision::Deny),
                ("files".into(), "write_file".into(), Decision::Allow),
            ]
        );

        // A server-wide revoke replaces the per-tool entries, so everything is denied.
        control
            .set_permission("olga", "claude", "files", "*", Some(Decision::Deny))
            .await
            .unwrap();
        assert_eq!(
            control.decide("claude", "files", "write_file"),
            PermissionCell {
                decision: Decision::Deny,
                source: DecisionSource::ServerWide
            }
        );
        assert_eq!(
            control.explicit_permissions("claude").unwrap(),
            [("files".into(), "*".into(), Decision::Deny)]
        );
        // Removing it goes back to the tier's patterns.
        control
            .set_permission("olga", "claude", "files", "*", None)
            .await
            .unwrap();
        assert!(allowed(&control, "claude", "files", "read_file"));
        assert!(!allowed(&control, "claude", "files", "write_file"));

        // A tier change moves the defaults at once too.
        control
            .set_tier("olga", "claude", Tier::Admin)
            .await
            .unwrap();
        assert_eq!(control.tier_of("claude"), Some(Tier::Admin));
        assert!(allowed(&control, "claude", "files", "write_file"));
        assert_eq!(control.tier_of("nobody"), None);
        assert_eq!(
            control.decide("nobody", "files", "read_file"),
            PermissionCell {
                decision: Decision::Deny,
                source: DecisionSource::Unmatched
            }
        );
    }

    #[tokio::test]
    async fn another_process_changes_are_seen_after_the_watch_interval() {
        let (server, store, dir) = control().await;
        server
            .add_assistant("olga", "claude", Tier::Viewer)
            .await
            .unwrap();
        assert!(!allowed(&server, "claude", "db", "drop_table"));
        let shutdown = CancellationToken::new();
        let watcher = tokio::spawn(
            server
                .clone()
                .watch(Duration::from_millis(50), shutdown.clone()),
        );

        // The CLI: its own store and access control on the same database file.
        assert!(dir.path().join(SQLITE_FILE).is_file());
        let cli_store = Store::open(&default_database_url(dir.path()))
            .await
            .unwrap();
        let cli = AccessControl::load(cli_store, AccessPolicy::default())
            .await
            .unwrap();
        cli.set_permission("cli", "claude", "db", "drop_table", Some(Decision::Allow))
            .await
            .unwrap();
        let issued = cli
            .add_assistant("cli", "batch", Tier::Admin)
            .await
            .unwrap();

        let deadline = Instant::now() + Duration::from_secs(5);
        while !(allowed(&server, "claude", "db", "drop_table")
            && server.authenticate(&issued.key).is_some())
        {
            assert!(
                Instant::now() < deadline,
                "the server never saw the CLI's changes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.revision(), store.access_revision().await.unwrap());

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), watcher)
            .await
            .expect("the watcher stops on shutdown")
            .unwrap();
    }

    #[tokio::test]
    async fn declared_assistants_import_idempotently_and_keys_stay_theirs() {
        let (control, store, _dir) = control().await;
        let declared = vec![
            (
                "bench".to_string(),
                Tier::Developer,
                "bench-key-0123456789-0123456789-abc".to_string(),
            ),
            (
                "wall".to_string(),
                Tier::Viewer,
                "wall-key-0123456789ab-0123456789-abc".to_string(),
            ),
        ];
        control.import_declared(&declared).await.unwrap();
        let bench = control
            .authenticate("bench-key-0123456789-0123456789-abc")
            .unwrap();
        assert_eq!((&*bench.assistant, bench.tier), ("bench", Tier::Developer));
        let audited = audit(&store).await.len();
        let revision = store.access_revision().await.unwrap();

        // A restart imports the same file: nothing changes.
        control.import_declared(&declared).await.unwrap();
        let restarted = AccessControl::load(store.clone(), AccessPolicy::default())
            .await
            .unwrap();
        restarted.import_declared(&declared).await.unwrap();
        assert_eq!(audit(&store).await.len(), audited);
        assert_eq!(store.access_revision().await.unwrap(), revision);
        assert_eq!(restarted.assistants().len(), 2);

        // The file changes bench's tier and gives wall a second key.
        let changed = vec![
            (
                "bench".to_string(),
                Tier::Admin,
                "bench-key-0123456789-0123456789-abc".to_string(),
            ),
            (
                "wall".to_string(),
                Tier::Viewer,
                "wall-key-2-0123456789-0123456789-abc".to_string(),
            ),
        ];
        control.import_declared(&changed).await.unwrap();
        assert_eq!(control.tier_of("bench"), Some(Tier::Admin));
        assert!(
            control
                .authenticate("wall-key-0123456789ab-0123456789-abc")
                .is_some()
        );
        assert!(
            control
                .authenticate("wall-key-2-0123456789-0123456789-abc")
                .is_some()
        );
        let created_by: Vec<_> = control
            .assistants()
            .into_iter()
            .flat_map(|a| a.keys.into_iter().map(|k| k.created_by))
            .collect();
        assert!(
            created_by.iter().all(|c| c == FLEET_FILE_ACTOR),
            "{created_by:?}"
        );

        // Someone else's key is a conflict.
        let stolen = vec![(
            "thief".to_string(),
            Tier::Admin,
            "bench-key-0123456789-0123456789-abc".to_string(),
        )];
        let err = control.import_declared(&stolen).await.unwrap_err();
        assert!(matches!(err, AccessError::Conflict(_)), "{err}");
        assert_eq!(control.tier_of("thief"), None);

        let short = vec![("tiny".to_string(), Tier::Viewer, "short".to_string())];
        let err = control.import_declared(&short).await.unwrap_err();
        assert!(matches!(err, AccessError::Invalid(_)), "{err}");

        // A revoked declared key stays revoked across imports.
        control
            .revoke_key("olga", "bench", bench.key_id)
            .await
            .unwrap();
        control.import_declared(&changed).await.unwrap();
        assert!(
            control
                .authenticate("bench-key-0123456789-0123456789-abc")
                .is_none()
        );
    }

    #[tokio::test]
    async fn every_mutation_writes_an_audit_row() {
        let (control, store, _dir) = control().await;
        let issued = control
            .add_assistant("olga", "claude", Tier::Viewer)
            .await
            .unwrap();
        control
            .set_tier("olga", "claude", Tier::Developer)
            .await
            .unwrap();
        control.issue_key("olga", "claude").await.unwrap();
        control
            .revoke_key("olga", "claude", issued.key_id)
            .await
            .unwrap();
        control
            .set_permission("olga", "claude", "search", "*", Some(Decision::Allow))
            .await
            .unwrap();
        control
            .set_permission("olga", "claude", "search", "*", None)
            .await
            .unwrap();
        let row = |action: &str, target: &str| {
            ("olga".to_string(), action.to_string(), target.to_string())
        };
        assert_eq!(
            audit(&store).await,
            [
                row("assistant.add", "claude"),
                row("assistant.set_tier", "claude"),
                row("key.issue", "claude"),
                row("key.revoke", "claude"),
                row("permission.set", "claude: search__*"),
                row("permission.set", "claude: search__*"),
            ]
        );
        let newest = &store.recent_admin_audit(1).await.unwrap()[0];
        assert_eq!(
            (newest.before.as_deref(), newest.after.as_deref()),
            (Some("allow"), Some("tier default"))
        );
        // Every change moved the revision too.
        assert_eq!(store.access_revision().await.unwrap(), 6);
        assert_eq!(control.revision(), 6);
    }

    #[tokio::test]
    async fn last_use_shows_at_once_and_is_flushed_to_the_store() {
        let (control, store, _dir) = control().await;
        let issued = control
            .add_assistant("olga", "claude", Tier::Viewer)
            .await
            .unwrap();
        let key_id = issued.key_id;
        let stored_last_used = |store: Store| async move {
            let records = store.load_access().await.unwrap();
            let key = records.assistants[0].keys.iter().find(|k| k.id == key_id);
            key.unwrap().last_used_at_ms
        };
        assert_eq!(control.assistants()[0].keys[0].last_used_at_ms, None);
        let before = now_ms();
        control.authenticate(&issued.key).unwrap();
        let shown = control.assistants()[0].keys[0].last_used_at_ms.unwrap();
        assert!(shown >= before, "{shown} < {before}");
        assert_eq!(
            stored_last_used(store.clone()).await,
            None,
            "not flushed yet"
        );

        // A reload in between (another change) loses nothing.
        control.issue_key("olga", "claude").await.unwrap();
        control.flush_last_used().await.unwrap();
        assert_eq!(stored_last_used(store.clone()).await, Some(shown));
        let listed = control.assistants();
        let key = listed[0]
            .keys
            .iter()
            .find(|k| k.id == issued.key_id)
            .unwrap();
        assert_eq!(key.last_used_at_ms, Some(shown));
        // A later use is flushed again.
        tokio::time::sleep(Duration::from_millis(5)).await;
        control.authenticate(&issued.key).unwrap();
        control.flush_last_used().await.unwrap();
        let later = stored_last_used(store.clone()).await.unwrap();
        assert!(later > shown, "{later} <= {shown}");

        // A restarted server sees the stored time.
        let restarted = AccessControl::load(store.clone(), AccessPolicy::default())
            .await
            .unwrap();
        let key = restarted.assistants()[0]
            .keys
            .iter()
            .find(|k| k.id == issued.key_id)
            .cloned()
            .unwrap();
        assert_eq!(key.last_used_at_ms, Some(later));
    }

    #[tokio::test]
    async fn the_watcher_flushes_on_shutdown() {
        let (control, store, _dir) = control().await;
        let issued = control
            .add_assistant("olga", "claude", Tier::Viewer)
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        // An interval so long that only the shutdown flush can write.
        let watcher = tokio::spawn(
            control
                .clone()
                .watch(Duration::from_secs(3600), shutdown.clone()),
        );
        control.authenticate(&issued.key).unwrap();
        shutdown.cancel();
        watcher.await.unwrap();
        let stored = store.load_access().await.unwrap();
        assert!(stored.assistants[0].keys[0].last_used_at_ms.is_some());
    }

    #[tokio::test]
    async fn rate_limits_follow_the_callers_tier() {
        let (control, _store, _dir) = control().await;
        let issued = control
            .add_assistant("olga", "wall", Tier::Viewer)
            .await
            .unwrap();
        let caller = control.authenticate(&issued.key).unwrap();
        assert_eq!(control.policy().viewer.rate_per_min, 50);
        for _ in 0..50 {
            control.check_rate(&caller, "files", "read_file").unwrap();
        }
        assert_eq!(control.rate_limits().tracked(), 1);
        let wait = control
            .check_rate(&caller, "files", "read_file")
            .unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(1200),
            "{wait:?}"
        );
    }

    #[tokio::test]
    async fn an_invalid_policy_is_refused_at_load() {
        let (store, _dir) = temp_store().await;
        let mut policy = AccessPolicy::default();
        policy.viewer.rate_per_min = 0;
        let err = AccessControl::load(store, policy).await.err().unwrap();
        assert!(matches!(err, AccessError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("viewer tier"), "{err}");
    }
}
