//! Charts of per-minute series, drawn as SVG with plotters on the server (the browser only
//! shows an image): latency percentiles, calls and errors, cache hit rate, utilisation.

use super::chart_theme as theme;
use crate::telemetry::series::SeriesPoint;
use plotters::prelude::*;
use std::str::FromStr;

/// Which chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartKind {
    /// p50, p95 and p99 in ms.
    Latency,
    /// Calls and errors per second, by minute.
    Calls,
    /// Cache hits per cacheable call, in %.
    HitRate,
    /// Mean utilisation, in %.
    Utilisation,
}

impl ChartKind {
    /// The URL name, e.g. `latency`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Latency => "latency",
            ChartKind::Calls => "calls",
            ChartKind::HitRate => "hit-rate",
            ChartKind::Utilisation => "utilisation",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ChartKind::Latency => "Latency (ms): p50, p95, p99",
            ChartKind::Calls => "Calls and errors per second",
            ChartKind::HitRate => "Cache hit rate (%)",
            ChartKind::Utilisation => "Utilisation (%)",
        }
    }
}

/// A chart name that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("unknown chart {0:?}: expected latency, calls, hit-rate or utilisation")]
pub struct UnknownChart(pub String);

impl FromStr for ChartKind {
    type Err = UnknownChart;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [
            ChartKind::Latency,
            ChartKind::Calls,
            ChartKind::HitRate,
            ChartKind::Utilisation,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| UnknownChart(name.to_string()))
    }
}

/// Chart size in pixels (the page scales it).
const SIZE: (u32, u32) = (640, 240);

/// One line of a chart: its name, colour and (minutes ago, value) points.
struct Line {
    name: &'static str,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Seconds of `point`'s minute that have passed by `now_ms` (60 for a complete minute).
fn seconds_of(point: &SeriesPoint, now_ms: i64) -> f64 {
    ((now_ms - point.minute_ms) as f64 / 1000.0).clamp(1.0, 60.0)
}

/// The lines of `kind` over `points`, with x in minutes before `now_ms` (negative).
fn lines(kind: ChartKind, points: &[SeriesPoint], now_ms: i64) -> Vec<Line> {
    let x = |p: &SeriesPoint| (p.minute_ms - now_ms) as f64 / 60_000.0;
    let line = |name, colour, value: &dyn Fn(&SeriesPoint) -> Option<f64>| Line {
        name,
        colour,
        points: points
            .iter()
            .filter_map(|p| Some((x(p), value(p)?)))
            .collect(),
    };
    match kind {
        ChartKind::Latency => vec![
            line("p50", theme::BLUE, &|p| p.p50_ms),
            line("p95", theme::AMBER, &|p| p.p95_ms),
            line("p99", theme::RED, &|p| p.p99_ms),
        ],
        // Per second of the minute seen so far, so that the current minute is comparable.
        ChartKind::Calls => vec![
            line("calls", theme::BLUE, &|p| {
                Some(p.calls as f64 / seconds_of(p, now_ms))
            }),
            line("errors", theme::RED, &|p| {
                Some(p.errors as f64 / seconds_of(p, now_ms))
            }),
        ],
        ChartKind::HitRate => vec![line("hit rate", theme::GREEN, &|p| {
            p.hit_rate().map(|r| r * 100.0)
        })],
        ChartKind::Utilisation => vec![line("utilisation", theme::AMBER, &|p| {
            p.utilisation.map(|u| u * 100.0)
        })],
    }
}

/// Draws `kind` for the `minutes` before `now_ms` as an SVG document. An empty series is a
/// chart saying so, not an error.
pub fn render(kind: ChartKind, points: &[SeriesPoint], now_ms: i64, minutes: u32) -> String {
    let lines = lines(kind, points, now_ms);
    let mut svg = String::new();
    // Drawing into a string fails only on plotters' own bugs; an empty image is better than a
    // 500 for a chart, and the error is logged.
    if let Err(error) = draw(&mut svg, kind, &lines, minutes) {
        tracing::warn!(chart = kind.as_str(), %error, "cannot draw a chart");
    }
    svg
}

fn draw(
    svg: &mut String,
    kind: ChartKind,
    lines: &[Line],
    minutes: u32,
) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&theme::BACKGROUND)?;
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let y_max = match kind {
        ChartKind::HitRate | ChartKind::Utilisation => top.max(100.0),
        _ => (top * 1.1).max(1.0),
    };
    let x_range = -f64::from(minutes)..0.0;
    let labels = (theme::FONT, theme::LABEL_SIZE)
        .into_font()
        .color(&theme::MUTED);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            kind.title(),
            (theme::FONT, theme::CAPTION_SIZE)
                .into_font()
                .color(&theme::INK),
        )
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("minutes ago")
        .x_label_formatter(&|x| format!("{:.0}", -x))
        .y_label_formatter(&|y| {
            if y_max >= 100.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .light_line_style(theme::GRID.mix(0.5))
        .bold_line_style(theme::GRID)
        .axis_style(theme::MUTED)
        .label_style(labels.clone())
        .axis_desc_style(labels.clone())
        .draw()?;
    let empty = lines.iter().all(|l| l.points.is_empty());
    if empty {
        root.draw(&Text::new(
            "no calls in this period",
            (SIZE.0 as i32 / 2 - 80, SIZE.1 as i32 / 2),
            labels.clone(),
        ))?;
    }
    for line in lines {
        let colour = line.colour;
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                colour.stroke_width(theme::LINE_WIDTH),
            ))?
            .label(line.name)
            .legend(move |(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 14, y)],
                    colour.stroke_width(theme::LINE_WIDTH),
                )
            });
        // A lone minute would be an invisible line: mark every point.
        chart.draw_series(
            line.points
                .iter()
                .map(|p| Circle::new(*p, 2, colour.filled())),
        )?;
    }
    if !empty {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(theme::BACKGROUND.mix(0.85))
            .border_style(theme::GRID)
            .label_font(
                (theme::FONT, theme::LABEL_SIZE)
                    .into_font()
                    .color(&theme::INK),
            )
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(minute_ms: i64, calls: u64, p99: f64) -> SeriesPoint {
        SeriesPoint {
            minute_ms,
            calls,
            errors: calls / 10,
            cache_lookups: calls,
            cache_hits: calls / 2,
            p50_ms: Some(p99 / 4.0),
            p95_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
            utilisation: Some(0.4),
        }
    }

    #[test]
    fn every_chart_is_an_svg_with_its_lines_and_legend() {
        let now = 1_700_000_000_000;
        let points: Vec<SeriesPoint> = (0..30)
            .map(|m| point(now - (30 - m) * 60_000, 100 + m as u64, 40.0 + m as f64))
            .collect();
        for (kind, legend) in [
            (ChartKind::Latency, vec!["p50", "p95", "p99"]),
            (ChartKind::Calls, vec!["calls", "errors"]),
            (ChartKind::HitRate, vec!["hit rate"]),
            (ChartKind::Utilisation, vec!["utilisation"]),
        ] {
            let svg = render(kind, &points, now, 60);
            assert!(svg.starts_with("<svg"), "{kind:?}");
            assert!(svg.contains("minutes ago"));
            assert!(svg.contains("<polyline"), "{kind:?} draws lines");
            for name in legend {
                assert!(
                    svg.contains(&format!(">\n{name}\n</text>")),
                    "{kind:?}: legend {name}"
                );
            }
            assert!(!svg.contains("no calls in this period"));
        }
    }

    #[test]
    fn an_empty_series_says_so() {
        let svg = render(ChartKind::Latency, &[], 1_700_000_000_000, 60);
        assert!(svg.starts_with("<svg") && svg.contains("no calls in this period"));
    }

    #[test]
    fn chart_names_round_trip_and_unknown_ones_are_named() {
        for kind in ["latency", "calls", "hit-rate", "utilisation"] {
            assert_eq!(kind.parse::<ChartKind>().unwrap().as_str(), kind);
        }
        let err = "pie".parse::<ChartKind>().unwrap_err().to_string();
        assert!(err.contains("\"pie\""), "{err}");
    }
}
