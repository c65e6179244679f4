//! Process logs with `tracing`: filter from `RUST_LOG`, text for people or JSON for machines.
//!
//! Every line passes through [`RedactingStderr`] on its way out: URLs lose their user
//! information and query (libraries, rmcp's included, log the URLs they were given), and a
//! line is cut at [`MAX_LOG_LINE_BYTES`]. Our own code bounds what it logs; this also
//! covers what other crates log.

use std::io::Write;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Longest log line written (a longer one is cut and marked).
pub const MAX_LOG_LINE_BYTES: usize = 16 * 1024;
/// Bytes buffered beyond the bound: a buffer that fills up was cut.
const BUFFER_SLACK: usize = 64;

/// Writes one formatted log event to stderr, redacted and bounded, when dropped (the
/// formatter writes each event through a fresh writer).
#[derive(Default)]
pub struct RedactingStderr {
    line: Vec<u8>,
}

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Keep a little more than the bound, so that a cut line is known to be cut.
        let room = (MAX_LOG_LINE_BYTES + BUFFER_SLACK).saturating_sub(self.line.len());
        self.line.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let _ = std::io::stderr().write_all(redacted_line(&self.line).as_bytes());
    }
}

/// A log line as written: URLs redacted, cut at the bound, one newline at the end.
pub fn redacted_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut body = text.trim_end_matches('\n');
    let was_cut = raw.len() >= MAX_LOG_LINE_BYTES + BUFFER_SLACK;
    // A line cut while buffered may end inside a URL (after `user:pass`, before the `@`
    // that would mark it): drop its last, incomplete word before redacting.
    if was_cut {
        body = body
            .rsplit_once(char::is_whitespace)
            .map_or("", |(kept, _)| kept);
    }
    let mut line = crate::sanitize::redact_urls_in(body);
    let too_long = line.len() > MAX_LOG_LINE_BYTES;
    if too_long {
        let mut end = MAX_LOG_LINE_BYTES;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    if was_cut || too_long {
        line.push_str(" …(cut)");
    }
    line.push('\n');
    line
}

/// Lets a kind of log line through at most once per period, telling how many were kept
/// quiet meanwhile: for what callers or upstreams can repeat at will.
#[derive(Debug)]
pub struct LogLimiter {
    every: std::time::Duration,
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl LogLimiter {
    /// At most one line per `every`.
    pub const fn every(every: std::time::Duration) -> Self {
        LogLimiter {
            every,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    /// Runs `log` if the period has passed (first reporting how many were kept quiet),
    /// else counts one more kept quiet.
    pub fn note(&self, log: impl FnOnce()) {
        let now = std::time::Instant::now();
        let quiet = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if state
                .0
                .is_some_and(|last| now.duration_since(last) < self.every)
            {
                state.1 += 1;
                return;
            }
            *state = (Some(now), 0);
            std::mem::take(&mut state.1)
        };
        if quiet > 0 {
            tracing::warn!(
                kept_quiet = quiet,
                "more lines like the next one were not logged in the last {:?}",
                self.every
            );
        }
        log();
    }
}

/// Makes a [`RedactingStderr`] per event.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactedStderr;

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = RedactingStderr;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr::default()
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The default log filter: what an operator should act on, and Fleetdeck's own news.
const DEFAULT_FILTER: &str = "warn,fleetdeck=info,app=info";

/// rmcp's transport worker logs every failed connection to an instance as an error: at a
/// thousand instances, a few dead ones would fill the log at every probe. The prober
/// reports the same failure once, as a health change with its reason.
const QUIET_RMCP_WORKER: &str = "rmcp::transport::worker=off";

/// The filter for `RUST_LOG` (unset, empty or invalid: the default), with rmcp's transport
/// worker silenced unless `RUST_LOG` names rmcp itself.
fn log_filter(rust_log: Option<&str>) -> EnvFilter {
    let spec = rust_log
        .map(str::trim)
        .filter(|spec| !spec.is_empty() && EnvFilter::try_new(spec).is_ok())
        .unwrap_or(DEFAULT_FILTER);
    let spec = if spec.contains("rmcp") {
        spec.to_string()
    } else {
        format!("{spec},{QUIET_RMCP_WORKER}")
    };
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the global subscriber, writing to stderr. `RUST_LOG` overrides the default
/// filter (`info` for Fleetdeck, `warn` for its dependencies); it filters log lines only:
/// the trace layer (see `telemetry::traces`) sees the gateway's spans whatever it says.
pub fn init(format: LogFormat) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(RedactedStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(crate::telemetry::traces::layer())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_silences_rmcps_worker_unless_asked_for() {
        let shown = |rust_log: Option<&str>| log_filter(rust_log).to_string();
        for quiet in [None, Some(""), Some("debug"), Some("not a [filter")] {
            assert!(
                shown(quiet).contains(QUIET_RMCP_WORKER),
                "{quiet:?}: {}",
                shown(quiet)
            );
        }
        assert!(shown(None).contains("fleetdeck=info"));
        assert!(
            shown(Some("not a [filter")).contains("fleetdeck=info"),
            "invalid: the default"
        );
        assert!(
            shown(Some("debug")).starts_with("debug") || shown(Some("debug")).contains(",debug")
        );
        let asked = shown(Some("rmcp=trace"));
        assert!(!asked.contains(QUIET_RMCP_WORKER), "{asked}");
    }

    #[test]
    fn log_lines_lose_url_secrets_and_are_bounded() {
        let line = redacted_line(
            b"ERROR worker quit: reqwest::Error { url: \"http://10.0.0.1:7/mcp?token=abc123\" } \
              and http://u:pw@host/x\n",
        );
        assert!(!line.contains("abc123") && !line.contains("u:pw"), "{line}");
        assert!(line.contains("http://10.0.0.1:7/mcp?…"), "{line}");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let mut cut_in_a_url = b"see ".to_vec();
        cut_in_a_url.extend(std::iter::repeat_n(b'y', MAX_LOG_LINE_BYTES + 50));
        cut_in_a_url.extend(b" http://user:hunter2");
        cut_in_a_url.truncate(MAX_LOG_LINE_BYTES + BUFFER_SLACK);
        assert!(
            !redacted_line(&cut_in_a_url).contains("hunt"),
            "the partial URL is dropped"
        );
        let long = redacted_line(&vec![b'x'; 100_000]);
        assert!(long.len() <= MAX_LOG_LINE_BYTES + 16, "{}", long.len());
        assert!(long.trim_end().ends_with("…(cut)"));
    }
}
