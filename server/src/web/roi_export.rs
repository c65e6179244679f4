//! `GET /api/roi.csv?window=30`: the ROI report as CSV, one row per server (by rank), one
//! per tool, and the fleet's totals per currency. Any logged-in dashboard user may export;
//! anonymous requests get 401, a bad window 400.
//!
//! Text cells go through the audit export's CSV helpers (quoting, formula neutralising);
//! numbers are written as plain decimals so that spreadsheets read them as numbers.

use super::AppState;
use super::audit_export::push_csv_field;
use app::error::AppError;
use app::wire::{BreakEven, DEFAULT_ROI_WINDOW, RoiFigures, RoiReport, ServerRoi, format_fixed};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

/// The export's query string.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ExportParams {
    window: Option<String>,
}

/// The CSV columns.
const HEADER: [&str; 22] = [
    "level",
    "server",
    "tool",
    "rank",
    "in_fleet",
    "window_days",
    "covered_days",
    "successful_calls",
    "uses_per_month",
    "minutes_saved_per_use",
    "hours_saved_per_month",
    "currency",
    "development_hours",
    "hourly_rate",
    "development_cost",
    "monthly_value",
    "months",
    "total_value",
    "net_value",
    "roi_percent",
    "break_even",
    "break_even_months",
];

/// One CSV cell: text (neutralised and quoted as needed) or a number we formatted.
enum Cell {
    Text(String),
    Number(String),
    Empty,
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(value.into())
}

fn number(value: f64, decimals: u32) -> Cell {
    Cell::Number(format_fixed(value, decimals))
}

fn push_row(out: &mut String, cells: &[Cell]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match cell {
            Cell::Text(value) => push_csv_field(out, value),
            Cell::Number(value) => out.push_str(value),
            Cell::Empty => {}
        }
    }
    out.push_str("\r\n");
}

/// The break-even columns: a word, and the months when there is a number.
fn break_even_cells(break_even: BreakEven) -> [Cell; 2] {
    match break_even {
        BreakEven::AfterMonths(months) => [text("after_months"), number(months, 2)],
        BreakEven::Immediately => [text("immediately"), number(0.0, 2)],
        BreakEven::Never => [text("never"), Cell::Empty],
    }
}

/// The figure columns (currency … break_even_months) of a server or the fleet.
fn figure_cells(figures: Option<&RoiFigures>, hours: Option<(f64, f64)>) -> Vec<Cell> {
    let Some(f) = figures else {
        return (0..11).map(|_| Cell::Empty).collect();
    };
    let (development_hours, hourly_rate) = match hours {
        Some((h, r)) => (number(h, 2), number(r, 2)),
        None => (Cell::Empty, Cell::Empty),
    };
    let roi = match f.roi.percent() {
        Some(percent) => number(percent, 2),
        None => text("no_development_cost"),
    };
    let [break_even, break_even_months] = break_even_cells(f.break_even);
    vec![
        text(f.currency.clone()),
        development_hours,
        hourly_rate,
        number(f.development_cost, 2),
        number(f.monthly_value, 2),
        Cell::Number(f.months.to_string()),
        number(f.total_value, 2),
        number(f.net_value, 2),
        roi,
        break_even,
        break_even_months,
    ]
}

fn server_rows(out: &mut String, window_days: u32, server: &ServerRoi) {
    let usage = &server.usage;
    let mut cells = vec![
        text("server"),
        text(server.server.clone()),
        Cell::Empty,
        server
            .rank
            .map_or(Cell::Empty, |r| Cell::Number(r.to_string())),
        text(server.in_fleet.to_string()),
        Cell::Number(window_days.to_string()),
        number(usage.covered_days, 2),
        Cell::Number(usage.uses.to_string()),
        number(usage.uses_per_month, 2),
        Cell::Empty,
        server
            .figures
            .as_ref()
            .map_or(Cell::Empty, |f| number(f.hours_saved_per_month, 2)),
    ];
    cells.extend(figure_cells(
        server.figures.as_ref(),
        server
            .inputs
            .as_ref()
            .map(|i| (i.development_hours, i.hourly_rate)),
    ));
    push_row(out, &cells);
    for tool in &server.tools {
        let configured = server.inputs.is_some();
        let mut cells = vec![
            text("tool"),
            text(server.server.clone()),
            text(tool.tool.clone()),
            Cell::Empty,
            text(server.in_fleet.to_string()),
            Cell::Number(window_days.to_string()),
            number(usage.covered_days, 2),
            Cell::Number(tool.uses.to_string()),
            number(tool.uses_per_month, 2),
            if configured {
                number(tool.minutes_saved, 2)
            } else {
                Cell::Empty
            },
            if configured {
                number(tool.hours_saved_per_month, 2)
            } else {
                Cell::Empty
            },
        ];
        cells.extend((0..11).map(|_| Cell::Empty));
        push_row(out, &cells);
    }
}

/// The whole report as CSV text.
pub fn report_csv(report: &RoiReport) -> String {
    let mut out = String::new();
    push_row(&mut out, &HEADER.map(text));
    for server in &report.servers {
        server_rows(&mut out, report.window_days, server);
    }
    for fleet in &report.fleet {
        let mut cells = vec![
            text("fleet"),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Number(report.window_days.to_string()),
            Cell::Empty,
            Cell::Empty,
            number(fleet.uses_per_month, 2),
            Cell::Empty,
            number(fleet.figures.hours_saved_per_month, 2),
        ];
        cells.extend(figure_cells(Some(&fleet.figures), None));
        push_row(&mut out, &cells);
    }
    out
}

/// The handler.
pub(super) async fn export(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<ExportParams>,
) -> Response {
    let Some(user) = super::session_user(&state, &session).await else {
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    };
    let window = match params.window.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_ROI_WINDOW,
        Some(value) => match value.parse::<u32>() {
            Ok(days) => days,
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("window must be a number of days, got {value:?}\n"),
                )
                    .into_response();
            }
        },
    };
    let report = match state.control.roi(window).await {
        Ok(report) => report,
        Err(error @ AppError::Invalid(_)) => {
            return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response();
        }
        Err(error) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response();
        }
    };
    tracing::info!(user = %user.username, window, "ROI export");
    let mut response = report_csv(&report).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"fleetdeck-roi-{window}d.csv\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::wire::{CoveredSpan, FleetRoi, MeasuredUsage, RoiInputs, RoiPercent, ToolRoi};

    fn figures(roi: RoiPercent, break_even: BreakEven) -> RoiFigures {
        RoiFigures {
            currency: "EUR".into(),
            months: 12,
            development_cost: 800.0,
            hours_saved_per_month: 7.61,
            monthly_value: 608.8,
            total_value: 7305.6,
            net_value: 6505.6,
            roi,
            break_even,
        }
    }

    fn server(name: &str, figures: Option<RoiFigures>) -> ServerRoi {
        ServerRoi {
            server: name.into(),
            in_fleet: true,
            usage: MeasuredUsage {
                window_days: 30,
                covered_days: 1.0,
                span: CoveredSpan::MinimumDay {
                    first_call_at_ms: 0,
                },
                uses: 5,
                uses_per_month: 152.2,
            },
            tools: vec![ToolRoi {
                tool: "echo".into(),
                uses: 5,
                uses_per_month: 152.2,
                minutes_saved: 3.0,
                minutes_is_default: false,
                hours_saved_per_month: 7.61,
            }],
            inputs: figures.as_ref().map(|_| RoiInputs {
                development_hours: 10.0,
                hourly_rate: 80.0,
                currency: "EUR".into(),
                default_minutes_saved: 6.0,
                months: 12,
                tool_minutes: vec![],
            }),
            updated: None,
            rank: figures.as_ref().map(|_| 1),
            figures,
            chart_svg: None,
        }
    }

    #[test]
    fn every_server_tool_and_total_is_a_row_with_plain_numbers() {
        let report = RoiReport {
            window_days: 30,
            generated_at_ms: 0,
            servers: vec![
                server(
                    "everything",
                    Some(figures(
                        RoiPercent::Percent(813.2),
                        BreakEven::AfterMonths(800.0 / 608.8),
                    )),
                ),
                server("=cmd|'/c calc'!A1", None),
            ],
            fleet: vec![FleetRoi {
                servers: 1,
                uses_per_month: 152.2,
                figures: figures(RoiPercent::Percent(-12.5), BreakEven::Never),
                chart_svg: None,
            }],
        };
        let csv = report_csv(&report);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], HEADER.join(","));
        assert_eq!(
            lines[1],
            "server,everything,,1,true,30,1.00,5,152.20,,7.61,EUR,10.00,80.00,800.00,608.80,12,\
             7305.60,6505.60,813.20,after_months,1.31"
        );
        assert_eq!(
            lines[2],
            "tool,everything,echo,,true,30,1.00,5,152.20,3.00,7.61,,,,,,,,,,,"
        );
        // A hostile server name is neutralised; numbers (even negative ones) stay numbers.
        assert!(
            lines[3].starts_with("server,'=cmd|'/c calc'!A1,,,true,30,"),
            "{}",
            lines[3]
        );
        assert!(
            lines[5].starts_with("fleet,,,,,30,,,152.20,,7.61,EUR,,,800.00"),
            "{}",
            lines[5]
        );
        assert!(lines[5].ends_with(",-12.50,never,"), "{}", lines[5]);
        assert_eq!(
            lines.len(),
            7,
            "header, 2 × (server + tool), fleet, and the final CRLF"
        );
        for line in &lines[..6] {
            assert_eq!(line.matches(',').count(), HEADER.len() - 1, "{line}");
        }
    }
}
