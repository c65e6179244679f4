//! Wire types: what the server and the browser exchange. Plain serde data, no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A dashboard login's role. Ordered: each role may do everything the ones below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches the fleet, reads reports.
    Viewer,
    /// On-call: drains instances, resets breakers, invalidates caches.
    Operator,
    /// Manages permissions, assistants and users.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether a user with this role may do what `required` is needed for.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of viewer, operator, admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected viewer, operator or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

/// The logged-in user of a dashboard session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    /// The user's id in the store.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Current role (read from the store on every request, so a change applies at once).
    pub role: Role,
}

/// One dashboard login as the Users page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    /// The user's id in the store.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// When the user was created (Unix ms).
    pub created_at_ms: i64,
    /// When the user's role or password last changed (Unix ms).
    pub updated_at_ms: i64,
}

/// A password the server generated, shown once to the admin who asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedPassword {
    /// Whose password it is.
    pub username: String,
    /// The password in clear; it is stored only as an argon2id hash.
    pub password: String,
}

/// The control plane's own state, for the Overview page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// Fleetdeck's version.
    pub version: String,
    /// Which store backs this replica ("sqlite" or "postgres").
    pub database: String,
    /// Whether the database answered just now.
    pub database_ok: bool,
    /// Seconds since this replica started.
    pub uptime_s: u64,
    /// Dashboard logins, by role.
    pub users_by_role: Vec<(Role, u64)>,
    /// Server time of this reading (Unix ms).
    pub now_ms: i64,
}

/// One recorded admin action: who changed what, from what to what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminActionEntry {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who acted (a user name, or `cli`).
    pub actor: String,
    /// What they did, e.g. `user.set_role`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The state before, if recorded.
    pub before: Option<String>,
    /// The state after, if recorded.
    pub after: Option<String>,
}

/// The fleet as the Fleet page shows it: every server and its instances, at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetView {
    /// The servers, by name.
    pub servers: Vec<ServerView>,
    /// Server time of this reading (Unix ms).
    pub now_ms: i64,
}

/// One MCP server of the fleet with its routing strategy and instances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerView {
    /// Unique name; its tools are exposed as `<name>__<tool>`.
    pub name: String,
    /// Business domain, if the fleet file gives one.
    pub domain: Option<String>,
    /// Balancer strategy, e.g. `least-load`.
    pub strategy: String,
    /// The instances, in fleet-file order.
    pub instances: Vec<InstanceView>,
}

/// One instance's state: admin state, health, breaker, load, counters and latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    /// Unique instance id.
    pub id: String,
    /// The server it belongs to.
    pub server: String,
    /// Where it is reached: its URL, or `stdio: <command>`.
    pub endpoint: String,
    /// Admin state: `active`, `draining` or `drained`.
    pub admin: String,
    /// Observed health: `unknown`, `healthy`, `degraded` or `unhealthy`.
    pub health: String,
    /// Breaker state: `closed`, `open` or `half_open`.
    pub breaker: String,
    /// Consecutive failures the breaker counted.
    pub consecutive_failures: u32,
    /// Time until an open breaker lets probes through (ms); `None` unless open.
    pub half_open_in_ms: Option<u64>,
    /// Calls in flight now.
    pub in_flight: u32,
    /// Concurrency limit.
    pub max_in_flight: u32,
    /// Calls that reached the instance since this replica started.
    pub calls: u64,
    /// Of those, calls that failed at the instance.
    pub failures: u64,
    /// Median latency over recent calls (ms), if any.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency over recent calls (ms), if any.
    pub p99_ms: Option<f64>,
    /// The last failure's cause, if any.
    pub last_error: Option<String>,
    /// Seconds since the last failure, if any.
    pub last_error_age_s: Option<u64>,
    /// Added while running (removable from the dashboard), not declared in the fleet file.
    pub runtime: bool,
    /// Calls per second over the last seconds.
    pub calls_per_s: f64,
}

/// One recorded breaker state change of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerTransitionView {
    /// The instance whose breaker changed.
    pub instance: String,
    /// The instance's server.
    pub server: String,
    /// When it changed (Unix ms, derived from this replica's monotonic clock).
    pub at_ms: i64,
    /// State before: `closed`, `open` or `half_open`.
    pub from: String,
    /// State after: `closed`, `open` or `half_open`.
    pub to: String,
    /// Why, in words for an operator.
    pub cause: String,
}

/// One cache of one server, for the Caches page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheView {
    /// The server.
    pub server: String,
    /// `tools` (the tool list) or `results` (cacheable tools' results).
    pub kind: String,
    /// Entries now.
    pub entries: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to an instance.
    pub misses: u64,
    /// Entries pushed out by size or age.
    pub evictions: u64,
    /// How long an entry is served, in seconds.
    pub ttl_s: u64,
    /// The tools whose results are cached (results caches only).
    pub cacheable: Vec<String>,
}

impl CacheView {
    /// Hits over lookups, in percent (`None` before any lookup).
    pub fn hit_rate_percent(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 * 100.0 / lookups as f64)
    }
}

/// One tool of the fleet, for the Tools page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolView {
    /// The server.
    pub server: String,
    /// The name assistants call: `<server>__<tool>`.
    pub name: String,
    /// Human title, if any.
    pub title: Option<String>,
    /// Description from the upstream server.
    pub description: Option<String>,
    /// The input schema, pretty-printed JSON.
    pub input_schema: String,
    /// Annotation hints that are set, e.g. `("read_only", "true")`.
    pub annotations: Vec<(String, String)>,
    /// Instances that serve it.
    pub instances: Vec<String>,
    /// Whether results are cached.
    pub cacheable: bool,
}

/// Formats a duration in seconds as `3d 4h`, `2h 05m`, `4m 09s` or `7s`.
pub fn format_duration_s(total: u64) -> String {
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Formats Unix ms as `YYYY-MM-DD HH:MM:SS` in UTC (identical on server and browser, so
/// hydration matches).
pub fn format_timestamp_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_allow_what_is_below_them() {
        assert!(Role::Admin.allows(Role::Admin));
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Admin.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
        assert!(Role::Viewer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Admin));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "unknown role \"root\": expected viewer, operator or admin"
        );
        assert!(
            "Admin".parse::<Role>().is_err(),
            "role names are case-sensitive"
        );
    }

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(format_timestamp_utc(0), "1970-01-01 00:00:00");
        assert_eq!(
            format_timestamp_utc(1_795_352_645_678),
            "2026-11-22 13:04:05"
        );
        assert_eq!(format_timestamp_utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_timestamp_utc(-1000), "1969-12-31 23:59:59");
    }

    #[test]
    fn hit_rates_need_lookups() {
        let mut cache = CacheView {
            server: "s".into(),
            kind: "results".into(),
            entries: 0,
            hits: 0,
            misses: 0,
            evictions: 0,
            ttl_s: 60,
            cacheable: vec![],
        };
        assert_eq!(cache.hit_rate_percent(), None);
        cache.hits = 3;
        cache.misses = 1;
        assert_eq!(cache.hit_rate_percent(), Some(75.0));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration_s(7), "7s");
        assert_eq!(format_duration_s(249), "4m 09s");
        assert_eq!(format_duration_s(7500), "2h 05m");
        assert_eq!(format_duration_s(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
