//! Rate limits of tool calls: a GCRA limit (governor) per assistant, by tier, with per-tool
//! overrides.
//!
//! A tool with an override is limited by the override *instead of* the tier's limit: its
//! calls neither consume nor are blocked by the assistant's tier budget. One budget per call
//! is simpler to reason about (and to explain in a refusal) than two that both apply.

use super::policy::AccessPolicy;
use app::wire::Tier;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A limiter keyed by assistant name.
type PerAssistant<C> = RateLimiter<
    Arc<str>,
    DefaultKeyedStateStore<Arc<str>>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// The gateway's rate limits: one keyed limiter per tier and one per overridden tool.
pub struct RateLimits<C: Clock = DefaultClock> {
    viewer: PerAssistant<C>,
    developer: PerAssistant<C>,
    admin: PerAssistant<C>,
    /// Server → tool → limiter; nested so that a call is looked up without building its
    /// exposed name.
    per_tool: HashMap<String, HashMap<String, PerAssistant<C>>>,
    clock: C,
}

impl RateLimits<DefaultClock> {
    /// The policy's limits on the system clock.
    pub fn new(policy: &AccessPolicy) -> Self {
        Self::with_clock(policy, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// The policy's limits on the given clock (tests use a fake one).
    pub fn with_clock(policy: &AccessPolicy, clock: C) -> Self {
        let limiter = |rate: u32| -> PerAssistant<C> {
            RateLimiter::dashmap_with_clock(per_minute(rate), clock.clone())
        };
        let mut per_tool: HashMap<String, HashMap<String, PerAssistant<C>>> = HashMap::new();
        for (exposed, rate) in &policy.tool_rate_per_min {
            // `AccessPolicy::validate` refuses keys that name no tool; such a key limits nothing.
            if let Some((server, tool)) = exposed.split_once("__") {
                per_tool
                    .entry(server.to_string())
                    .or_default()
                    .insert(tool.to_string(), limiter(*rate));
            }
        }
        RateLimits {
            viewer: limiter(policy.viewer.rate_per_min),
            developer: limiter(policy.developer.rate_per_min),
            admin: limiter(policy.admin.rate_per_min),
            per_tool,
            clock,
        }
    }

    /// Counts one call of `assistant` to `server`'s `tool`; `Err` holds how long to wait.
    ///
    /// The name is shared (`Arc<str>`, as [`super::Caller`] holds it) so that a call costs
    /// no allocation once the assistant's budget exists.
    pub fn check(
        &self,
        assistant: &Arc<str>,
        tier: Tier,
        server: &str,
        tool: &str,
    ) -> Result<(), Duration> {
        let limiter = self
            .per_tool
            .get(server)
            .and_then(|tools| tools.get(tool))
            .unwrap_or_else(|| self.tier_limiter(tier));
        limiter
            .check_key(assistant)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Counts one request of `assistant` against its tier's budget (requests that name no
    /// tool, or a tool name that is not valid).
    pub fn check_tier(&self, assistant: &Arc<str>, tier: Tier) -> Result<(), Duration> {
        self.tier_limiter(tier)
            .check_key(assistant)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets assistants whose budgets are full again and releases the memory, bounding the
    /// limiters' size (housekeeping, run now and then).
    pub fn retain_recent(&self) {
        for limiter in self.limiters() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many (assistant, limiter) budgets are tracked.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.limiters().map(|limiter| limiter.len()).sum()
    }

    fn tier_limiter(&self, tier: Tier) -> &PerAssistant<C> {
        match tier {
            Tier::Viewer => &self.viewer,
            Tier::Developer => &self.developer,
            Tier::Admin => &self.admin,
        }
    }

    fn limiters(&self) -> impl Iterator<Item = &PerAssistant<C>> {
        [&self.viewer, &self.developer, &self.admin]
            .into_iter()
            .chain(self.per_tool.values().flat_map(|tools| tools.values()))
    }
}

/// `rate` calls a minute, all of them allowed at once.
fn per_minute(rate: u32) -> Quota {
    // `AccessPolicy::validate` refuses 0; a limiter cannot express it, so it means 1 here.
    Quota::per_minute(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limits(policy: &AccessPolicy) -> (RateLimits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RateLimits::with_clock(policy, clock.clone()), clock)
    }

    /// One call, by assistant name.
    fn call<C: Clock + Clone>(
        limits: &RateLimits<C>,
        assistant: &str,
        tier: Tier,
        server: &str,
        tool: &str,
    ) -> Result<(), Duration> {
        limits.check(&Arc::from(assistant), tier, server, tool)
    }

    #[test]
    fn a_viewer_gets_fifty_calls_then_learns_when_to_retry() {
        let (limits, clock) = limits(&AccessPolicy::default());
        for n in 0..50 {
            assert!(
                call(&limits, "wall", Tier::Viewer, "files", "read_file").is_ok(),
                "call {n}"
            );
        }
        let wait = call(&limits, "wall", Tier::Viewer, "files", "read_file").unwrap_err();
        // One call is replenished every 60 s / 50 = 1.2 s.
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(1200),
            "{wait:?}"
        );
        clock.advance(wait);
        assert!(call(&limits, "wall", Tier::Viewer, "files", "read_file").is_ok());
        assert!(call(&limits, "wall", Tier::Viewer, "files", "read_file").is_err());
    }

    #[test]
    fn tiers_have_their_own_rates() {
        let (limits, _clock) = limits(&AccessPolicy::default());
        let allowed = |name: &str, tier| {
            (0..1100)
                .take_while(|_| call(&limits, name, tier, "s", "t").is_ok())
                .count()
        };
        assert_eq!(allowed("d", Tier::Developer), 100);
        assert_eq!(allowed("a", Tier::Admin), 1000);
    }

    #[test]
    fn limits_are_per_assistant() {
        let (limits, _clock) = limits(&AccessPolicy::default());
        for _ in 0..50 {
            call(&limits, "one", Tier::Viewer, "files", "read").unwrap();
        }
        assert!(call(&limits, "one", Tier::Viewer, "files", "read").is_err());
        assert!(call(&limits, "two", Tier::Viewer, "files", "read").is_ok());
        assert_eq!(limits.tracked(), 2);
    }

    #[test]
    fn a_tool_override_applies_instead_of_the_tier_limit() {
        let mut policy = AccessPolicy::default();
        policy.tool_rate_per_min.insert("db__sql_select".into(), 3);
        policy
            .tool_rate_per_min
            .insert("search__lookup".into(), 200);
        let (limits, _clock) = limits(&policy);
        for _ in 0..3 {
            call(&limits, "dev", Tier::Developer, "db", "sql_select").unwrap();
        }
        let wait = call(&limits, "dev", Tier::Developer, "db", "sql_select").unwrap_err();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // The same tool name on another server, and other tools, use the tier's budget,
        // which the overridden tool did not consume.
        for _ in 0..100 {
            call(&limits, "dev", Tier::Developer, "files", "sql_select").unwrap();
        }
        assert!(call(&limits, "dev", Tier::Developer, "db", "query").is_err());
        // A generous override lets a viewer beyond its tier's 50 on that tool.
        for n in 0..200 {
            assert!(
                call(&limits, "wall", Tier::Viewer, "search", "lookup").is_ok(),
                "call {n}"
            );
        }
        assert!(call(&limits, "wall", Tier::Viewer, "search", "lookup").is_err());
        // The override is per assistant too.
        assert!(call(&limits, "other", Tier::Developer, "db", "sql_select").is_ok());
    }

    #[test]
    fn idle_assistants_are_forgotten() {
        let (limits, clock) = limits(&AccessPolicy::default());
        call(&limits, "a", Tier::Viewer, "s", "t").unwrap();
        call(&limits, "b", Tier::Admin, "s", "t").unwrap();
        assert_eq!(limits.tracked(), 2);
        limits.retain_recent();
        assert_eq!(limits.tracked(), 2, "budgets not yet full are kept");
        clock.advance(Duration::from_secs(120));
        limits.retain_recent();
        assert_eq!(limits.tracked(), 0);
    }
}
