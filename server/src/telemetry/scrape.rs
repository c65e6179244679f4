//! Reading an instance's own Prometheus endpoint (`metrics_url`): its CPU, memory and the
//! calls it is serving, for least-load routing, capacity advice and the dashboard.

use std::time::{Duration, Instant};

/// The standard process metrics of Prometheus client libraries.
const CPU_SECONDS: &str = "process_cpu_seconds_total";
const RESIDENT_BYTES: &str = "process_resident_memory_bytes";

/// Why a scrape gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The endpoint could not be reached or answered with an error status.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// The metrics URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The body is not Prometheus text exposition.
    #[error("not Prometheus text: {0}")]
    Parse(String),
}

/// The raw values of one scrape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// When it was taken.
    pub at: Instant,
    /// `process_cpu_seconds_total`, if exposed.
    pub cpu_seconds: Option<f64>,
    /// `process_resident_memory_bytes`, if exposed.
    pub resident_bytes: Option<f64>,
    /// The configured in-flight gauge, summed over its label sets, if exposed.
    pub in_flight: Option<f64>,
}

/// What the dashboard and the balancer use: rates derived from two readings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadSignals {
    /// When the newest reading was taken.
    pub at: Instant,
    /// CPU cores busy between the last two readings.
    pub cpu_cores: Option<f64>,
    /// Resident memory in bytes.
    pub resident_bytes: Option<f64>,
    /// Calls the instance is serving, as it reports them.
    pub in_flight: Option<f64>,
}

/// Reads the values this module cares about from exposition text.
pub fn read(
    text: &str,
    in_flight_metric: Option<&str>,
    at: Instant,
) -> Result<Reading, ScrapeError> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .map_err(|e| ScrapeError::Parse(e.to_string()))?;
    let value = |sample: &prometheus_parse::Sample| match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => Some(v).filter(|v| v.is_finite()),
        _ => None,
    };
    let first = |name: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .find_map(value)
    };
    let in_flight = in_flight_metric.and_then(|name| {
        let values: Vec<f64> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter_map(value)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    });
    Ok(Reading {
        at,
        cpu_seconds: first(CPU_SECONDS),
        resident_bytes: first(RESIDENT_BYTES),
        in_flight,
    })
}

/// Signals from the newest reading and the one before it (CPU is a rate, so it needs two;
/// a counter that went backwards means the process restarted, and gives no rate yet).
pub fn signals(previous: Option<&Reading>, current: &Reading) -> LoadSignals {
    let cpu_cores = previous.and_then(|before| {
        let elapsed = current
            .at
            .saturating_duration_since(before.at)
            .as_secs_f64();
        let used = current.cpu_seconds? - before.cpu_seconds?;
        (elapsed > 0.0 && used >= 0.0).then(|| used / elapsed)
    });
    LoadSignals {
        at: current.at,
        cpu_cores,
        resident_bytes: current.resident_bytes,
        in_flight: current.in_flight,
    }
}

/// Largest exposition read from an instance (a node_exporter page is ~100 KiB).
pub const MAX_SCRAPE_BYTES: usize = 4 * 1024 * 1024;

/// Fetches `url` within `timeout` and reads it; the body is read up to
/// [`MAX_SCRAPE_BYTES`], never further. Errors name the URL redacted.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    in_flight_metric: Option<&str>,
    timeout: Duration,
) -> Result<Reading, ScrapeError> {
    let failed = |reason: String| ScrapeError::Fetch {
        url: crate::sanitize::redact_url(url),
        reason: crate::sanitize::scrub_url(&reason, url),
    };
    let mut response = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("HTTP {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_SCRAPE_BYTES as u64)
    {
        return Err(failed(format!("the page is over {MAX_SCRAPE_BYTES} bytes")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
        if body.len() + chunk.len() > MAX_SCRAPE_BYTES {
            return Err(failed(format!("the page is over {MAX_SCRAPE_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).map_err(|_| ScrapeError::Parse("not UTF-8".into()))?;
    read(&text, in_flight_metric, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exposition as a Go service with client_golang writes it (node_exporter's process
    /// metrics, HELP/TYPE lines, exponent notation, a labelled gauge).
    const GO_SERVICE: &str = r#"# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 23
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.4576e+07
# HELP mcp_in_flight Calls being served.
# TYPE mcp_in_flight gauge
mcp_in_flight{tool="query"} 3
mcp_in_flight{tool="lookup"} 2
# HELP http_request_duration_seconds A histogram.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 5
http_request_duration_seconds_bucket{le="+Inf"} 7
http_request_duration_seconds_sum 1.2
http_request_duration_seconds_count 7
"#;

    #[test]
    fn process_metrics_and_a_summed_in_flight_gauge_are_read() {
        let at = Instant::now();
        let reading = read(GO_SERVICE, Some("mcp_in_flight"), at).unwrap();
        assert_eq!(reading.cpu_seconds, Some(12.5));
        assert_eq!(reading.resident_bytes, Some(24_576_000.0));
        assert_eq!(reading.in_flight, Some(5.0));
        let without = read(GO_SERVICE, None, at).unwrap();
        assert_eq!(without.in_flight, None, "no in-flight metric configured");
        let absent = read("up 1\n", Some("mcp_in_flight"), at).unwrap();
        assert_eq!(
            (absent.cpu_seconds, absent.resident_bytes, absent.in_flight),
            (None, None, None)
        );
    }

    #[test]
    fn our_own_exposition_is_readable() {
        let fleet = crate::config::fleet::FleetFile::parse(
            "[[server]]\nname = \"s\"\n[[server.instance]]\nid = \"s-1\"\nurl = \"http://127.0.0.1:9/mcp\"\n",
            std::path::Path::new("fleet.toml"),
        )
        .unwrap();
        let registry = crate::registry::Registry::from_fleet(&fleet);
        let text = crate::telemetry::metrics::Metrics::new().render(&registry, Default::default());
        let reading = read(&text, Some("fleetdeck_instance_in_flight"), Instant::now()).unwrap();
        assert_eq!(reading.in_flight, Some(0.0), "{text}");
    }

    #[test]
    fn cpu_is_a_rate_between_two_readings_and_a_restart_gives_none() {
        let t0 = Instant::now();
        let reading = |at: Instant, cpu: f64| Reading {
            at,
            cpu_seconds: Some(cpu),
            resident_bytes: Some(1e6),
            in_flight: None,
        };
        let first = reading(t0, 10.0);
        assert_eq!(
            signals(None, &first).cpu_cores,
            None,
            "one reading is no rate"
        );
        let second = reading(t0 + Duration::from_secs(4), 13.0);
        assert_eq!(signals(Some(&first), &second).cpu_cores, Some(0.75));
        let restarted = reading(t0 + Duration::from_secs(8), 0.5);
        assert_eq!(signals(Some(&second), &restarted).cpu_cores, None);
        assert_eq!(signals(Some(&second), &restarted).resident_bytes, Some(1e6));
    }
}
