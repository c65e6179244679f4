//! Fault-injection knobs of one demo instance.
//!
//! Every session of an instance reads the same [`KnobsHandle`], so an operator (or a test)
//! that turns a knob through `PUT /knobs` changes the behaviour of calls already on their
//! way in. The knobs are read once per tool call, never held across an `.await`.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// The largest `extra_latency_ms` accepted: ten minutes is already far beyond any sane
/// upstream timeout, and a cap keeps a typo from parking calls for days.
pub const MAX_EXTRA_LATENCY_MS: u64 = 600_000;

/// The largest `latency_scale` accepted (a 100× slower instance is slow enough to demo).
pub const MAX_LATENCY_SCALE: f64 = 100.0;

/// How one demo instance misbehaves; all rates are probabilities per tool call.
///
/// Missing fields take their defaults when deserialised (so `{"error_rate": 1.0}` is a
/// complete value: PUT replaces the whole set), and unknown fields are rejected so a typo
/// is an error rather than a silent reset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Share of calls answered with an `isError` result "injected failure" (0..=1).
    pub error_rate: f64,
    /// Share of calls answered with a protocol-level internal error (0..=1).
    pub fail_rate: f64,
    /// Share of calls never answered until the caller cancels them (0..=1).
    pub hang_rate: f64,
    /// Milliseconds added to every call's latency.
    pub extra_latency_ms: u64,
    /// Factor applied to the instance's natural latency (1 = unchanged, 0 = none).
    pub latency_scale: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            fail_rate: 0.0,
            hang_rate: 0.0,
            extra_latency_ms: 0,
            latency_scale: 1.0,
        }
    }
}

/// Why a set of knobs was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KnobsError {
    /// A probability outside 0..=1 (or not a number).
    #[error("{knob} must be a number between 0 and 1, got {value}")]
    RateOutOfRange {
        /// The knob's name as it appears in JSON.
        knob: &'static str,
        /// The refused value.
        value: f64,
    },
    /// A latency scale that is negative, not a number or absurdly large.
    #[error("latency_scale must be a number between 0 and {MAX_LATENCY_SCALE}, got {0}")]
    LatencyScaleOutOfRange(f64),
    /// An extra latency above [`MAX_EXTRA_LATENCY_MS`].
    #[error("extra_latency_ms must be at most {MAX_EXTRA_LATENCY_MS}, got {0}")]
    ExtraLatencyTooLarge(u64),
}

/// The misbehaviour chosen for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Do not answer until the call is cancelled.
    Hang,
    /// Answer with a protocol-level internal error.
    Fail,
    /// Answer with an `isError` tool result.
    Error,
}

impl Knobs {
    /// Checks every knob's range; the first violation is the error.
    pub fn validate(&self) -> Result<(), KnobsError> {
        for (knob, value) in [
            ("error_rate", self.error_rate),
            ("fail_rate", self.fail_rate),
            ("hang_rate", self.hang_rate),
        ] {
            // `contains` is false for NaN, so NaN is refused too.
            if !(0.0..=1.0).contains(&value) {
                return Err(KnobsError::RateOutOfRange { knob, value });
            }
        }
        if !(0.0..=MAX_LATENCY_SCALE).contains(&self.latency_scale) {
            return Err(KnobsError::LatencyScaleOutOfRange(self.latency_scale));
        }
        if self.extra_latency_ms > MAX_EXTRA_LATENCY_MS {
            return Err(KnobsError::ExtraLatencyTooLarge(self.extra_latency_ms));
        }
        Ok(())
    }

    /// Picks this call's fault, if any.
    ///
    /// The draws are sequential and independent: hang first, then fail, then error. So a
    /// knob at 1 always wins over the ones after it, and a knob at 0 never fires.
    pub fn draw_fault(&self, rng: &mut fastrand::Rng) -> Option<Fault> {
        // `f64()` is in [0, 1), so a rate of 1 always fires and a rate of 0 never does.
        if rng.f64() < self.hang_rate {
            Some(Fault::Hang)
        } else if rng.f64() < self.fail_rate {
            Some(Fault::Fail)
        } else if rng.f64() < self.error_rate {
            Some(Fault::Error)
        } else {
            None
        }
    }

    /// The delay of a call whose natural latency is `natural`, after scaling and the extra.
    pub fn delay(&self, natural: Duration) -> Duration {
        // Validated knobs keep the product finite and non-negative; clamp anyway so an
        // unvalidated value can never make `from_secs_f64` panic.
        let scaled = (natural.as_secs_f64() * self.latency_scale).clamp(0.0, 86_400.0);
        let scaled = if scaled.is_finite() { scaled } else { 0.0 };
        Duration::from_secs_f64(scaled) + Duration::from_millis(self.extra_latency_ms)
    }
}

/// Shared, runtime-adjustable knobs of one instance (cheap to clone).
#[derive(Debug, Clone)]
pub struct KnobsHandle {
    inner: Arc<RwLock<Knobs>>,
}

impl KnobsHandle {
    /// Wraps validated knobs.
    pub fn new(knobs: Knobs) -> Result<Self, KnobsError> {
        knobs.validate()?;
        Ok(Self {
            inner: Arc::new(RwLock::new(knobs)),
        })
    }

    /// The current knobs.
    pub fn get(&self) -> Knobs {
        // A writer only ever stores a whole `Copy` value, so a poisoned lock still holds a
        // consistent one.
        *self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces all knobs; returns the previous ones. Invalid knobs change nothing.
    pub fn set(&self, knobs: Knobs) -> Result<Knobs, KnobsError> {
        knobs.validate()?;
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        Ok(std::mem::replace(&mut *guard, knobs))
    }

    /// Changes some knobs in place; returns the new ones. An invalid result changes nothing.
    #[allow(dead_code)] // For the dashboard's knob controls (next change); tests use it now.
    pub fn update(&self, change: impl FnOnce(&mut Knobs)) -> Result<Knobs, KnobsError> {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = *guard;
        change(&mut next);
        next.validate()?;
        *guard = next;
        Ok(next)
    }
}

impl Default for KnobsHandle {
    fn default() -> Self {
        Self {
            inner: Arc::new(RwLock::new(Knobs::default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_harmless() {
        let knobs = Knobs::default();
        assert_eq!(knobs.validate(), Ok(()));
        let mut rng = fastrand::Rng::with_seed(7);
        assert!((0..1_000).all(|_| knobs.draw_fault(&mut rng).is_none()));
        assert_eq!(
            knobs.delay(Duration::from_millis(3)),
            Duration::from_millis(3)
        );
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_knob_named() {
        let bad = Knobs {
            error_rate: 2.0,
            ..Knobs::default()
        };
        let error = bad.validate().expect_err("2 is not a probability");
        assert_eq!(
            error.to_string(),
            "error_rate must be a number between 0 and 1, got 2"
        );
        let nan = Knobs {
            hang_rate: f64::NAN,
            ..Knobs::default()
        };
        assert!(matches!(
            nan.validate(),
            Err(KnobsError::RateOutOfRange {
                knob: "hang_rate",
                ..
            })
        ));
        let negative_scale = Knobs {
            latency_scale: -1.0,
            ..Knobs::default()
        };
        assert_eq!(
            negative_scale.validate(),
            Err(KnobsError::LatencyScaleOutOfRange(-1.0))
        );
        let huge_extra = Knobs {
            extra_latency_ms: MAX_EXTRA_LATENCY_MS + 1,
            ..Knobs::default()
        };
        assert!(huge_extra.validate().is_err());
    }

    #[test]
    fn json_fills_missing_fields_and_refuses_unknown_ones() {
        let knobs: Knobs = serde_json::from_str(r#"{"error_rate": 0.5}"#).expect("valid JSON");
        assert_eq!(knobs.error_rate, 0.5);
        assert_eq!(knobs.latency_scale, 1.0);
        let typo = serde_json::from_str::<Knobs>(r#"{"eror_rate": 0.5}"#);
        assert!(typo.is_err());
    }

    #[test]
    fn a_rate_of_one_always_fires_in_order() {
        let mut rng = fastrand::Rng::with_seed(1);
        let all = Knobs {
            error_rate: 1.0,
            fail_rate: 1.0,
            hang_rate: 1.0,
            ..Knobs::default()
        };
        assert_eq!(all.draw_fault(&mut rng), Some(Fault::Hang));
        let fail_and_error = Knobs {
            hang_rate: 0.0,
            ..all
        };
        assert_eq!(fail_and_error.draw_fault(&mut rng), Some(Fault::Fail));
        let error = Knobs {
            error_rate: 1.0,
            ..Knobs::default()
        };
        assert_eq!(error.draw_fault(&mut rng), Some(Fault::Error));
    }

    #[test]
    fn delay_scales_then_adds_the_extra() {
        let knobs = Knobs {
            latency_scale: 2.0,
            extra_latency_ms: 5,
            ..Knobs::default()
        };
        assert_eq!(
            knobs.delay(Duration::from_millis(3)),
            Duration::from_millis(11)
        );
    }

    #[test]
    fn the_handle_refuses_invalid_knobs_and_keeps_the_old_ones() {
        let handle = KnobsHandle::new(Knobs::default()).expect("defaults are valid");
        let previous = handle
            .set(Knobs {
                error_rate: 0.25,
                ..Knobs::default()
            })
            .expect("valid");
        assert_eq!(previous, Knobs::default());
        assert!(
            handle
                .set(Knobs {
                    fail_rate: 1.5,
                    ..Knobs::default()
                })
                .is_err()
        );
        assert!(handle.update(|knobs| knobs.latency_scale = -3.0).is_err());
        assert_eq!(handle.get().error_rate, 0.25);
        let updated = handle
            .update(|knobs| knobs.extra_latency_ms = 10)
            .expect("valid");
        assert_eq!(updated.error_rate, 0.25);
        assert_eq!(updated.extra_latency_ms, 10);
        assert!(
            KnobsHandle::new(Knobs {
                error_rate: -0.1,
                ..Knobs::default()
            })
            .is_err()
        );
    }
}
