//! Login throttling: a GCRA limit per user name and per client address (governor), so that
//! password guessing is slow whether it targets one user or sprays many.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Limits on login attempts.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    /// Attempts per minute for one user name (and the burst allowed at once).
    pub per_user_per_minute: NonZeroU32,
    /// Attempts per minute from one address.
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

/// Counts login attempts per user name and per address.
pub struct LoginThrottle<C: Clock = DefaultClock> {
    per_user: Keyed<String, C>,
    per_ip: Keyed<IpAddr, C>,
    clock: C,
}

impl LoginThrottle<DefaultClock> {
    /// A throttle on the system clock.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> LoginThrottle<C> {
    /// A throttle on the given clock (tests use a fake one).
    pub fn with_clock(limits: ThrottleLimits, clock: C) -> Self {
        LoginThrottle {
            per_user: RateLimiter::dashmap_with_clock(
                Quota::per_minute(limits.per_user_per_minute),
                clock.clone(),
            ),
            per_ip: RateLimiter::dashmap_with_clock(
                Quota::per_minute(limits.per_ip_per_minute),
                clock.clone(),
            ),
            clock,
        }
    }

    /// Counts one attempt; `Err` holds how long the caller must wait.
    ///
    /// User names are compared case-insensitively, so `Admin` and `admin` share a budget.
    pub fn check(&self, username: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        if let Some(ip) = ip {
            self.per_ip
                .check_key(&ip)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now()))?;
        }
        self.per_user
            .check_key(&username.to_lowercase())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys whose budget is full again, bounding memory.
    pub fn forget_idle(&self) {
        self.per_user.retain_recent();
        self.per_ip.retain_recent();
    }

    /// How many keys are tracked (users plus addresses).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.per_user.len() + self.per_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limits(user: u32, ip: u32) -> ThrottleLimits {
        ThrottleLimits {
            per_user_per_minute: NonZeroU32::new(user).unwrap(),
            per_ip_per_minute: NonZeroU32::new(ip).unwrap(),
        }
    }

    #[test]
    fn a_user_is_throttled_after_the_burst_and_recovers() {
        let clock = FakeRelativeClock::default();
        let throttle = LoginThrottle::with_clock(limits(3, 100), clock.clone());
        for _ in 0..3 {
            assert!(throttle.check("alice", None).is_ok());
        }
        let wait = throttle.check("ALICE", None).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another user is unaffected.
        assert!(throttle.check("bob", None).is_ok());
        clock.advance(Duration::from_secs(20));
        assert!(throttle.check("alice", None).is_ok());
    }

    #[test]
    fn an_address_spraying_many_users_is_throttled() {
        let clock = FakeRelativeClock::default();
        let throttle = LoginThrottle::with_clock(limits(100, 2), clock.clone());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(throttle.check("u1", Some(ip)).is_ok());
        assert!(throttle.check("u2", Some(ip)).is_ok());
        assert!(throttle.check("u3", Some(ip)).is_err());
        assert!(throttle.check("u3", Some(other)).is_ok());
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let throttle = LoginThrottle::with_clock(limits(5, 5), clock.clone());
        throttle
            .check("alice", Some("192.0.2.1".parse().unwrap()))
            .unwrap();
        assert_eq!(throttle.tracked(), 2);
        clock.advance(Duration::from_secs(120));
        throttle.forget_idle();
        assert_eq!(throttle.tracked(), 0);
    }
}
