//! A chart of a per-minute series, drawn on the server as SVG (`/charts/<kind>.svg`) and
//! reloaded as the page's poll ticks.

use leptos::prelude::*;

/// Percent-encodes a query value (server, instance and tool names are plain, but a name
/// must never break the URL).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The image URL of a chart: `kind` (`latency`, `calls`, `hit-rate`, `utilisation`) of the
/// fleet, a server, or one of its instances or tools, over `minutes`.
pub fn chart_url(
    kind: &str,
    server: Option<&str>,
    instance: Option<&str>,
    minutes: u32,
    tick: u64,
) -> String {
    let mut url = format!("/charts/{kind}.svg?minutes={minutes}");
    for (name, value) in [("server", server), ("instance", instance)] {
        if let Some(value) = value {
            url.push_str(&format!("&{name}={}", encode(value)));
        }
    }
    url.push_str(&format!("&t={tick}"));
    url
}

/// One chart image; `tick` reloads it.
#[component]
pub fn Chart(
    /// `latency`, `calls`, `hit-rate` or `utilisation`.
    kind: &'static str,
    /// What it shows, for screen readers.
    alt: String,
    /// The server, or `None` for the whole fleet.
    #[prop(optional, into)]
    server: Option<String>,
    /// An instance of `server`.
    #[prop(optional, into)]
    instance: Option<String>,
    /// Reloads the image when it moves.
    tick: ReadSignal<u64>,
) -> impl IntoView {
    let src = move || chart_url(kind, server.as_deref(), instance.as_deref(), 60, tick.get());
    view! {
        <img
            class="chart"
            src=src
            alt=alt
            width="640"
            height="240"
            // Charts in a closed <details> (a server's, on the Fleet and Caches pages) are
            // fetched only once opened.
            loading="lazy"
            data-testid=format!("chart-{kind}")
        />
    }
}

#[cfg(test)]
mod tests {
    use super::chart_url;

    #[test]
    fn the_url_names_the_series_and_encodes_names() {
        assert_eq!(
            chart_url("latency", None, None, 60, 3),
            "/charts/latency.svg?minutes=60&t=3"
        );
        assert_eq!(
            chart_url("calls", Some("a b"), Some("a-1"), 30, 0),
            "/charts/calls.svg?minutes=30&server=a%20b&instance=a-1&t=0"
        );
    }
}
