//! Login throttling: failed logins are counted per (user name, client address) and per
//! client address, each in a leaky bucket that drains at a steady rate; while a bucket is
//! full, attempts of that key are refused before any password is checked.
//!
//! Only failures count. An attempt takes one unit from both of its buckets when it is
//! admitted (so that many concurrent guesses cannot all pass before the first failure is
//! recorded), and a successful login gives the units back.
//!
//! Why these keys: a budget per user name alone would let anyone lock a user out by
//! failing on purpose from anywhere; per (user name, address), failures from one address
//! never stop the right password from another one. The per-address bucket stops one
//! address from spraying many user names.
//!
//! The trade-off: guessing distributed over many addresses is not slowed for the user it
//! targets; each address gets its own budget (10 a minute per user name by default), so
//! N addresses get N times that. What holds against it is the password policy (at least 12
//! characters, argon2id), and the log: every refused login is logged with user name and
//! address, for alerting. Behind a load balancer the address is the client's only when the
//! balancer is a trusted proxy (`--trusted-proxy`, see [`super::client_address`]);
//! otherwise every client shares the balancer's address and budget.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits on failed logins.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    /// Failures per minute for one user name from one address (and the burst allowed at
    /// once).
    pub per_user_per_minute: NonZeroU32,
    /// Failures per minute from one address, whatever the user names.
    pub per_ip_per_minute: NonZeroU32,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            per_user_per_minute: NonZeroU32::new(10).expect("non-zero"),
            per_ip_per_minute: NonZeroU32::new(30).expect("non-zero"),
        }
    }
}

/// Failures of one kind of key, each key in its own leaky bucket.
struct FailureBuckets<K> {
    /// Bucket size: failures in a row before the key is refused.
    capacity: f64,
    /// How fast a bucket drains, in failures per second.
    drain_per_s: f64,
    /// Each key's level and when it was last brought up to date.
    levels: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Eq + Hash + Clone> FailureBuckets<K> {
    fn per_minute(limit: NonZeroU32) -> Self {
        FailureBuckets {
            capacity: f64::from(limit.get()),
            drain_per_s: f64::from(limit.get()) / 60.0,
            levels: Mutex::new(HashMap::new()),
        }
    }

    /// The level of `key` at `now`, drained since it was last written.
    fn level(&self, entry: Option<&(f64, Instant)>, now: Instant) -> f64 {
        entry.map_or(0.0, |(level, at)| {
            let drained = now.saturating_duration_since(*at).as_secs_f64() * self.drain_per_s;
            (level - drained).max(0.0)
        })
    }

    /// How long until `key` may try again (`Duration::ZERO`: now).
    fn wait(&self, key: &K, now: Instant) -> Duration {
        let levels = self.levels.lock().expect("throttle lock");
        let over = self.level(levels.get(key), now) + 1.0 - self.capacity;
        // Within rounding of a whole unit of room: admitted.
        if over <= 1e-9 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(over / self.drain_per_s)
        }
    }

    /// Adds `units` (negative: gives them back) to `key`'s bucket.
    fn add(&self, key: &K, units: f64, now: Instant) {
        let mut levels = self.levels.lock().expect("throttle lock");
        let level = (self.level(levels.get(key), now) + units).max(0.0);
        levels.insert(key.clone(), (level, now));
    }

    /// Forgets keys whose bucket has drained empty.
    fn forget_empty(&self, now: Instant) {
        let mut levels = self.levels.lock().expect("throttle lock");
        let drained: Vec<K> = levels
            .iter()
            .filter(|(_, entry)| self.level(Some(entry), now) == 0.0)
            .map(|(key, _)| key.clone())
            .collect();
        for key in drained {
            levels.remove(&key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.levels.lock().expect("throttle lock").len()
    }
}

/// A login attempt admitted by [`LoginThrottle::admit`]; counted as a failure unless
/// given to [`LoginThrottle::succeeded`].
#[derive(Debug)]
#[must_use = "an admitted attempt counts as a failure unless it is reported as a success"]
pub struct Admitted {
    user: (String, Option<IpAddr>),
    ip: Option<IpAddr>,
}

/// Counts failed logins per (user name, address) and per address.
pub struct LoginThrottle {
    per_user: FailureBuckets<(String, Option<IpAddr>)>,
    per_ip: FailureBuckets<IpAddr>,
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        LoginThrottle {
            per_user: FailureBuckets::per_minute(limits.per_user_per_minute),
            per_ip: FailureBuckets::per_minute(limits.per_ip_per_minute),
        }
    }

    /// Admits an attempt to log in as `username` from `ip`, or says how long to wait.
    ///
    /// User names are compared case-insensitively, so `Admin` and `admin` share a budget.
    pub fn admit(&self, username: &str, ip: Option<IpAddr>) -> Result<Admitted, Duration> {
        self.admit_at(username, ip, Instant::now())
    }

    /// The attempt succeeded: its units are given back.
    pub fn succeeded(&self, attempt: Admitted) {
        self.succeeded_at(attempt, Instant::now())
    }

    fn admit_at(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Result<Admitted, Duration> {
        let user = (username.to_lowercase(), ip);
        let wait = ip
            .map_or(Duration::ZERO, |ip| self.per_ip.wait(&ip, now))
            .max(self.per_user.wait(&user, now));
        if !wait.is_zero() {
            return Err(wait);
        }
        self.per_user.add(&user, 1.0, now);
        if let Some(ip) = ip {
            self.per_ip.add(&ip, 1.0, now);
        }
        Ok(Admitted { user, ip })
    }

    fn succeeded_at(&self, attempt: Admitted, now: Instant) {
        self.per_user.add(&attempt.user, -1.0, now);
        if let Some(ip) = attempt.ip {
            self.per_ip.add(&ip, -1.0, now);
        }
    }

    /// Forgets keys whose failures have drained away, bounding memory.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        self.per_user.forget_empty(now);
        self.per_ip.forget_empty(now);
    }

    /// How many keys are tracked ((user, address) pairs plus addresses).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.per_user.len() + self.per_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(user: u32, ip: u32) -> LoginThrottle {
        LoginThrottle::new(ThrottleLimits {
            per_user_per_minute: NonZeroU32::new(user).unwrap(),
            per_ip_per_minute: NonZeroU32::new(ip).unwrap(),
        })
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn failures_fill_the_budget_and_it_drains_again() {
        let throttle = limits(3, 100);
        let start = Instant::now();
        for _ in 0..3 {
            let _failed = throttle.admit_at("alice", ip("192.0.2.1"), start).unwrap();
        }
        let wait = throttle
            .admit_at("ALICE", ip("192.0.2.1"), start)
            .unwrap_err();
        assert!(
            (wait.as_secs_f64() - 20.0).abs() < 1e-3,
            "one failure drains in 60/3 s: {wait:?}"
        );
        // Another user from the same address is unaffected.
        assert!(throttle.admit_at("bob", ip("192.0.2.1"), start).is_ok());
        let later = start + Duration::from_secs(20);
        let _failed = throttle.admit_at("alice", ip("192.0.2.1"), later).unwrap();
        assert!(throttle.admit_at("alice", ip("192.0.2.1"), later).is_err());
    }

    #[test]
    fn successes_do_not_count() {
        let throttle = limits(2, 2);
        let now = Instant::now();
        for _ in 0..50 {
            let attempt = throttle.admit_at("alice", ip("192.0.2.1"), now).unwrap();
            throttle.succeeded_at(attempt, now);
        }
        let _failed = throttle.admit_at("alice", ip("192.0.2.1"), now).unwrap();
        let _failed = throttle.admit_at("alice", ip("192.0.2.1"), now).unwrap();
        assert!(throttle.admit_at("alice", ip("192.0.2.1"), now).is_err());
    }

    #[test]
    fn one_address_failing_does_not_lock_the_user_out_elsewhere() {
        let throttle = limits(3, 100);
        let now = Instant::now();
        for _ in 0..3 {
            let _failed = throttle.admit_at("alice", ip("203.0.113.66"), now).unwrap();
        }
        assert!(throttle.admit_at("alice", ip("203.0.113.66"), now).is_err());
        let attempt = throttle.admit_at("alice", ip("198.51.100.7"), now).unwrap();
        throttle.succeeded_at(attempt, now);
    }

    #[test]
    fn an_address_spraying_many_users_is_throttled() {
        let throttle = limits(100, 2);
        let now = Instant::now();
        let _failed = throttle.admit_at("u1", ip("192.0.2.7"), now).unwrap();
        let _failed = throttle.admit_at("u2", ip("192.0.2.7"), now).unwrap();
        assert!(throttle.admit_at("u3", ip("192.0.2.7"), now).is_err());
        assert!(throttle.admit_at("u3", ip("192.0.2.8"), now).is_ok());
    }

    #[test]
    fn admitted_attempts_count_before_they_finish() {
        // Concurrent guesses: each admission takes its unit at once, so no more than the
        // budget are in flight even before any of them has failed.
        let throttle = limits(3, 100);
        let now = Instant::now();
        let in_flight: Vec<_> = (0..10)
            .filter_map(|_| throttle.admit_at("alice", ip("192.0.2.1"), now).ok())
            .collect();
        assert_eq!(in_flight.len(), 3);
    }

    #[test]
    fn drained_keys_are_forgotten() {
        let throttle = limits(5, 5);
        let long_ago = Instant::now() - Duration::from_secs(120);
        let _failed = throttle
            .admit_at("alice", ip("192.0.2.1"), long_ago)
            .unwrap();
        let _failed = throttle
            .admit_at("bob", ip("192.0.2.2"), Instant::now())
            .unwrap();
        assert_eq!(throttle.tracked(), 4);
        throttle.forget_idle();
        assert_eq!(throttle.tracked(), 2, "bob's failure is recent");
    }
}
