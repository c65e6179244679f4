//! Failed API-key attempts on `/mcp`, throttled per client address (GCRA, governor): an
//! address that keeps presenting unknown or revoked keys gets 429 with `Retry-After`
//! instead of 401 until its budget recovers, and its attempts are counted.
//!
//! Only failures count, and a valid key is never refused. Many assistants often share one
//! address (a NAT, an egress proxy): blocking the address would let one misconfigured
//! client with a revoked key lock out all of them. Keys are far too long to guess (238
//! random bits generated, at least 32 characters declared), so the throttle is there to
//! make a flood of bad attempts cheap to answer and visible, not to hide whether a key
//! works; checking a key costs one SHA-256 of at most 512 bytes. IPv6 addresses count by
//! their /64, which one host can usually draw addresses from. Behind a load balancer the
//! address comes from `--trusted-proxy`.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Failed attempts a minute one address may make (and the burst allowed at once).
pub const DEFAULT_FAILURES_PER_MINUTE: u32 = 30;

type PerAddress<C> =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The failure budget of every client address.
pub struct BearerThrottle<C: Clock = DefaultClock> {
    failures: PerAddress<C>,
    clock: C,
}

impl BearerThrottle<DefaultClock> {
    /// `per_minute` failures a minute per address, on the system clock.
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl Default for BearerThrottle<DefaultClock> {
    fn default() -> Self {
        Self::new(NonZeroU32::new(DEFAULT_FAILURES_PER_MINUTE).expect("non-zero"))
    }
}

impl<C: Clock + Clone> BearerThrottle<C> {
    /// On the given clock (tests use a fake one).
    pub fn with_clock(per_minute: NonZeroU32, clock: C) -> Self {
        BearerThrottle {
            failures: RateLimiter::dashmap_with_clock(Quota::per_minute(per_minute), clock.clone()),
            clock,
        }
    }

    /// Counts one failed attempt from `client`; `Err` holds how long it must wait (the
    /// attempt is then answered 429 and does not count).
    pub fn failed(&self, client: IpAddr) -> Result<(), Duration> {
        self.failures
            .check_key(&address_key(client))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets addresses whose budget is full again, bounding memory.
    pub fn forget_idle(&self) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
    }
}

/// The key an address counts under: itself for IPv4, its /64 for IPv6.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn an_address_is_throttled_after_its_failures_and_recovers() {
        let clock = FakeRelativeClock::default();
        let throttle = BearerThrottle::with_clock(NonZeroU32::new(3).unwrap(), clock.clone());
        let attacker: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            assert!(throttle.failed(attacker).is_ok());
        }
        let wait = throttle.failed(attacker).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another address is not affected.
        assert!(throttle.failed("198.51.100.8".parse().unwrap()).is_ok());
        clock.advance(Duration::from_secs(20));
        assert!(throttle.failed(attacker).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let clock = FakeRelativeClock::default();
        let throttle = BearerThrottle::with_clock(NonZeroU32::new(2).unwrap(), clock);
        for n in 0..2 {
            let address: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            assert!(throttle.failed(address).is_ok());
        }
        let sibling: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(throttle.failed(sibling).is_err(), "same /64");
        assert!(throttle.failed("2001:db8:1:3::1".parse().unwrap()).is_ok());
    }
}
