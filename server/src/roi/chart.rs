//! The ROI chart: cumulative value against development cost over the months evaluated,
//! drawn on the server as SVG markup with plotters.
//!
//! Only fixed words and a validated currency code (three letters) reach the SVG, and
//! plotters' SVG backend escapes all text it writes (`<`, `>`, `&`, quotes) as well.

use plotters::prelude::*;

/// Width and height of the chart in SVG user units (it scales with its container).
const SIZE: (u32, u32) = (640, 280);

use crate::telemetry::chart_theme as theme;

const VALUE: RGBColor = theme::GREEN;
const COST: RGBColor = theme::RED;
const INK: RGBColor = theme::MUTED;

/// The SVG of `cumulative` (value at the end of month 0, 1, …) against a flat `cost`
/// line, with the amounts in `currency`. `None` if plotters fails (logged), so that a
/// chart never takes the report down with it.
pub fn value_against_cost(cumulative: &[f64], cost: f64, currency: &str) -> Option<String> {
    match draw(cumulative, cost, currency) {
        Ok(svg) => Some(svg),
        Err(error) => {
            tracing::warn!(%error, "ROI chart not drawn");
            None
        }
    }
}

fn draw(cumulative: &[f64], cost: f64, currency: &str) -> Result<String, String> {
    let months = u32::try_from(cumulative.len().saturating_sub(1))
        .unwrap_or(u32::MAX)
        .max(1);
    let top = cumulative.iter().copied().fold(cost, f64::max).max(1.0) * 1.08;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&theme::BACKGROUND).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(84)
            .build_cartesian_2d(0u32..months, 0f64..top)
            .map_err(|e| err(&e))?;
        let axis_text = (theme::FONT, theme::LABEL_SIZE).into_font().color(&INK);
        chart
            .configure_mesh()
            .light_line_style(theme::GRID.mix(0.5))
            .bold_line_style(theme::GRID)
            .axis_style(INK)
            .label_style(axis_text.clone())
            .axis_desc_style(axis_text.clone())
            .x_desc("month")
            .y_desc(currency)
            .x_labels(months.min(12) as usize + 1)
            .y_label_formatter(&|v| app::wire::format_grouped(*v, 0))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                cumulative.iter().enumerate().map(|(m, v)| (m as u32, *v)),
                VALUE.stroke_width(3),
            ))
            .map_err(|e| err(&e))?
            .label("cumulative value")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], VALUE.stroke_width(3)));
        chart
            .draw_series(LineSeries::new(
                [(0, cost), (months, cost)],
                COST.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label("development cost")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], COST.stroke_width(2)));
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
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_an_svg_with_both_lines_and_its_legend() {
        let svg = value_against_cost(&[0.0, 500.0, 1000.0, 1500.0], 800.0, "EUR").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("cumulative value"));
        assert!(svg.contains("development cost"));
        assert!(svg.contains("EUR"));
        assert!(svg.contains("polyline") || svg.contains("<path"));
    }

    #[test]
    fn text_is_escaped_and_flat_zero_charts_draw() {
        let svg = value_against_cost(&[0.0, 0.0], 0.0, "<b>&").unwrap();
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;b&gt;&amp;"));
    }
}
