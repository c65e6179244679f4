//! Per-instance latency statistics: an EWMA for least-load balancing and percentiles over a
//! window of recent calls for adaptive timeouts.

use std::time::Duration;

/// Samples kept per instance by default: enough for a stable p99 (5 samples above it).
pub const DEFAULT_SAMPLES: usize = 512;

/// Weight of the newest sample in the EWMA: reacts within a handful of calls, yet one outlier
/// moves it by only a fifth.
const EWMA_ALPHA: f64 = 0.2;

/// Far above the rounding error of `q * len` for any window size in use, far below one rank.
const RANK_ROUNDING: f64 = 1e-9;

/// The latencies of an instance's recent calls. Not thread-safe by itself: callers wrap it in
/// a `Mutex`.
#[derive(Clone, Debug)]
pub struct LatencyWindow {
    /// At most `capacity` samples; once full, `next` is the oldest and is overwritten next.
    samples: Vec<Duration>,
    capacity: usize,
    next: usize,
    ewma_ms: Option<f64>,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        LatencyWindow::new(DEFAULT_SAMPLES)
    }
}

impl LatencyWindow {
    /// A window keeping the last `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        LatencyWindow {
            samples: Vec::with_capacity(capacity),
            capacity,
            next: 0,
            ewma_ms: None,
        }
    }

    /// Adds one call's latency, replacing the oldest sample once the window is full.
    pub fn record(&mut self, latency: Duration) {
        if self.samples.len() < self.capacity {
            self.samples.push(latency);
        } else {
            self.samples[self.next] = latency;
        }
        self.next = (self.next + 1) % self.capacity;

        let sample_ms = latency.as_secs_f64() * 1000.0;
        self.ewma_ms = Some(match self.ewma_ms {
            // The first sample initialises it, so a new instance is not assumed instant.
            None => sample_ms,
            Some(ewma) => ewma + EWMA_ALPHA * (sample_ms - ewma),
        });
    }

    /// The exponentially weighted moving average in milliseconds; 0 before any sample.
    pub fn ewma_ms(&self) -> f64 {
        self.ewma_ms.unwrap_or(0.0)
    }

    /// The nearest-rank `q` quantile (e.g. 0.99) over the window; `None` when empty.
    /// `q` is clamped to [0, 1]; 0 gives the fastest sample.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        let count = self.samples.len();
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        // The small subtraction undoes rounding such as 0.07 * 100 = 7.000000000000001, which
        // would otherwise skip a rank; `as` saturates, and the clamp keeps the rank in range.
        let rank = ((q * count as f64 - RANK_ROUNDING).ceil() as usize).clamp(1, count);
        let mut sorted = self.samples.clone();
        let (_, nth, _) = sorted.select_nth_unstable(rank - 1);
        Some(*nth)
    }

    /// How many samples the window holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no call has been recorded yet.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// A timeout that follows the instance: `p99 * multiplier`, kept within [min, max].
///
/// With no samples yet it is `max`, so a cold instance is not cut off before it is measured.
/// If `min > max`, `max` wins: it is the operator's hard limit.
pub fn adaptive_timeout(
    p99: Option<Duration>,
    multiplier: f64,
    min: Duration,
    max: Duration,
) -> Duration {
    let Some(p99) = p99 else {
        return max;
    };
    let seconds = p99.as_secs_f64() * multiplier;
    let scaled = match Duration::try_from_secs_f64(seconds) {
        Ok(scaled) => scaled,
        // Too large to represent: as long as allowed.
        Err(_) if seconds > 0.0 => max,
        // Negative or NaN (a nonsensical multiplier): as short as allowed.
        Err(_) => min,
    };
    scaled.max(min).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn window_of(capacity: usize, millis: impl IntoIterator<Item = u64>) -> LatencyWindow {
        let mut window = LatencyWindow::new(capacity);
        for value in millis {
            window.record(ms(value));
        }
        window
    }

    #[test]
    fn an_empty_window_has_no_statistics() {
        let window = LatencyWindow::default();
        assert_eq!(window.len(), 0);
        assert!(window.is_empty());
        assert_eq!(window.ewma_ms(), 0.0);
        assert_eq!(window.percentile(0.99), None);
    }

    #[test]
    fn the_first_sample_initialises_the_ewma() {
        let window = window_of(8, [40]);
        assert_eq!(window.ewma_ms(), 40.0);
    }

    #[test]
    fn the_ewma_moves_a_fifth_towards_each_sample() {
        let mut window = window_of(8, [100]);
        window.record(ms(200));
        assert!((window.ewma_ms() - 120.0).abs() < 1e-9);
        window.record(ms(20));
        assert!((window.ewma_ms() - 100.0).abs() < 1e-9);
        // A long run of one value converges to it.
        (0..100).for_each(|_| window.record(ms(10)));
        assert!((window.ewma_ms() - 10.0).abs() < 1e-6);
    }

    #[test]
    fn the_window_keeps_only_the_newest_samples() {
        let window = window_of(4, 1..=10);
        assert_eq!(window.len(), 4);
        assert_eq!(window.percentile(0.0), Some(ms(7)));
        assert_eq!(window.percentile(1.0), Some(ms(10)));
        assert_eq!(LatencyWindow::default().capacity, DEFAULT_SAMPLES);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        // 1..=100 ms in shuffled order.
        let mut values: Vec<u64> = (1..=100).collect();
        fastrand::seed(3);
        fastrand::shuffle(&mut values);
        let window = window_of(DEFAULT_SAMPLES, values);
        assert_eq!(window.percentile(0.5), Some(ms(50)));
        assert_eq!(window.percentile(0.99), Some(ms(99)));
        assert_eq!(window.percentile(0.995), Some(ms(100)));
        assert_eq!(window.percentile(1.0), Some(ms(100)));
        assert_eq!(window.percentile(0.0), Some(ms(1)));
        assert_eq!(window.percentile(0.001), Some(ms(1)));
        // 0.07 * 100 is 7.000000000000001 in floating point; the rank is still 7.
        assert_eq!(window.percentile(0.07), Some(ms(7)));

        // The textbook example: 15, 20, 35, 40, 50.
        let small = window_of(8, [50, 15, 40, 20, 35]);
        let quantiles = [0.05, 0.3, 0.4, 0.5, 1.0].map(|q| small.percentile(q));
        assert_eq!(quantiles, [15, 20, 20, 35, 50].map(|value| Some(ms(value))));
    }

    #[test]
    fn odd_quantiles_are_clamped() {
        let window = window_of(8, [5, 1, 9]);
        assert_eq!(window.percentile(-3.0), Some(ms(1)));
        assert_eq!(window.percentile(f64::NAN), Some(ms(1)));
        assert_eq!(window.percentile(42.0), Some(ms(9)));
    }

    #[test]
    fn a_zero_capacity_keeps_one_sample() {
        let window = window_of(0, [3, 4]);
        assert_eq!(window.len(), 1);
        assert_eq!(window.percentile(0.5), Some(ms(4)));
    }

    #[test]
    fn adaptive_timeout_scales_the_p99_within_bounds() {
        let (min, max) = (ms(200), ms(10_000));
        assert_eq!(adaptive_timeout(Some(ms(500)), 4.0, min, max), ms(2000));
        assert_eq!(adaptive_timeout(Some(ms(10)), 4.0, min, max), min);
        assert_eq!(adaptive_timeout(Some(ms(5000)), 4.0, min, max), max);
    }

    #[test]
    fn adaptive_timeout_without_samples_is_the_max() {
        assert_eq!(adaptive_timeout(None, 4.0, ms(200), ms(10_000)), ms(10_000));
    }

    #[test]
    fn adaptive_timeout_survives_odd_inputs() {
        let (min, max) = (ms(200), ms(10_000));
        assert_eq!(adaptive_timeout(Some(Duration::MAX), 4.0, min, max), max);
        assert_eq!(
            adaptive_timeout(Some(ms(500)), f64::INFINITY, min, max),
            max
        );
        assert_eq!(adaptive_timeout(Some(ms(500)), -1.0, min, max), min);
        assert_eq!(adaptive_timeout(Some(ms(500)), f64::NAN, min, max), min);
        // Inverted bounds: the max is the hard limit.
        assert_eq!(adaptive_timeout(Some(ms(500)), 4.0, max, min), min);
    }

    #[test]
    fn adaptive_timeout_from_a_window() {
        let window = window_of(DEFAULT_SAMPLES, (1..=100).map(|n| n * 10));
        let timeout = adaptive_timeout(window.percentile(0.99), 4.0, ms(200), ms(10_000));
        assert_eq!(timeout, ms(3960));
    }
}
