//! ROI reports: measured usage from the audit log turned into return on investment.
//!
//! - [`formula`]: the seeds' formula, pure;
//! - [`usage`]: what counts as a use and how uses are projected to a month, pure;
//! - [`inputs`]: parsing and validating what admins type, pure;
//! - [`chart`]: the SVG chart of cumulative value against cost;
//! - this module: the report over the store and the fleet, saving inputs, the planning mode.

pub mod chart;
pub mod formula;
pub mod inputs;
pub mod usage;

use self::formula::{Economics, better_roi, cumulative_value, evaluate, fleet_totals};
use self::inputs::{parse_inputs, parse_plan};
use self::usage::{MAX_WINDOW_DAYS, USE_OUTCOME, measure, per_month, window_start_ms};
use crate::registry::Registry;
use crate::store::{Store, StoreError, StoredRoiInputs, now_ms};
use app::error::AppError;
use app::wire::{
    FleetRoi, RoiFigures, RoiInputs, RoiInputsForm, RoiPlan, RoiPlanForm, RoiReport, ServerRoi,
    SessionUser, ToolRoi,
};
use std::collections::{BTreeMap, BTreeSet};

/// A server of the fleet as the report needs it: its name and its tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetServer {
    /// The server's name.
    pub name: String,
    /// Its tools' upstream names, as last listed.
    pub tools: Vec<String>,
}

/// The fleet's servers and tools as the registry has them now.
pub fn fleet_servers(registry: &Registry) -> Vec<FleetServer> {
    registry
        .servers()
        .iter()
        .map(|server| FleetServer {
            name: server.name.clone(),
            tools: server
                .catalog()
                .tools
                .iter()
                .map(|tool| tool.name.to_string())
                .collect(),
        })
        .collect()
}

/// A store failure, logged with detail and answered without it.
fn store_failure(error: StoreError) -> AppError {
    tracing::error!(%error, "ROI: store operation failed");
    AppError::Internal("the ROI data cannot be read or written; see the server log".into())
}

/// The report over the fleet now (the dashboard's `roi`).
pub async fn report(
    store: &Store,
    registry: &Registry,
    window_days: u32,
) -> Result<RoiReport, AppError> {
    report_at(store, &fleet_servers(registry), window_days, now_ms()).await
}

/// The report over `fleet` as of `now_ms`, measuring the last `window_days` days.
pub async fn report_at(
    store: &Store,
    fleet: &[FleetServer],
    window_days: u32,
    now_ms: i64,
) -> Result<RoiReport, AppError> {
    if !(1..=MAX_WINDOW_DAYS).contains(&window_days) {
        return Err(AppError::Invalid(format!(
            "window: must be from 1 to {MAX_WINDOW_DAYS} days (got {window_days})"
        )));
    }
    let uses = store
        .tool_uses(USE_OUTCOME, window_start_ms(window_days, now_ms), now_ms)
        .await
        .map_err(store_failure)?;
    let first_calls: BTreeMap<String, i64> = store
        .first_calls(now_ms)
        .await
        .map_err(store_failure)?
        .into_iter()
        .collect();
    let stored: BTreeMap<String, StoredRoiInputs> = store
        .roi_inputs()
        .await
        .map_err(store_failure)?
        .into_iter()
        .map(|s| (s.server.clone(), s))
        .collect();

    // The fleet's servers, and any other server that still has uses in the window.
    let mut names: Vec<(String, bool)> = fleet.iter().map(|s| (s.name.clone(), true)).collect();
    let in_fleet: BTreeSet<&str> = fleet.iter().map(|s| s.name.as_str()).collect();
    let departed: BTreeSet<&str> = uses
        .iter()
        .map(|u| u.server.as_str())
        .filter(|s| !in_fleet.contains(s))
        .collect();
    names.extend(departed.into_iter().map(|s| (s.to_string(), false)));

    let mut servers: Vec<ServerRoi> = names
        .into_iter()
        .map(|(name, in_fleet)| {
            let mut tool_uses: BTreeMap<String, u64> = fleet
                .iter()
                .filter(|s| s.name == name)
                .flat_map(|s| s.tools.iter().map(|t| (t.clone(), 0)))
                .collect();
            for u in uses.iter().filter(|u| u.server == name) {
                *tool_uses.entry(u.tool.clone()).or_default() += u.uses;
            }
            let stored = stored.get(&name);
            server_roi(
                name.clone(),
                in_fleet,
                tool_uses,
                stored,
                measure(
                    uses.iter()
                        .filter(|u| u.server == name)
                        .map(|u| u.uses)
                        .sum(),
                    window_days,
                    first_calls.get(&name).copied(),
                    now_ms,
                ),
            )
        })
        .collect();
    rank(&mut servers);
    let fleet = fleet_rois(&servers);
    Ok(RoiReport {
        window_days,
        generated_at_ms: now_ms,
        servers,
        fleet,
    })
}

/// One server's report from its measured uses per tool and its inputs.
fn server_roi(
    server: String,
    in_fleet: bool,
    tool_uses: BTreeMap<String, u64>,
    stored: Option<&StoredRoiInputs>,
    usage: app::wire::MeasuredUsage,
) -> ServerRoi {
    let inputs = stored.map(|s| &s.inputs);
    let tools: Vec<ToolRoi> = tool_uses
        .into_iter()
        .map(|(tool, uses)| {
            let own = inputs.and_then(|i| i.tool_minutes.iter().find(|t| t.tool == tool));
            let minutes_saved = own
                .map(|t| t.minutes_saved)
                .or(inputs.map(|i| i.default_minutes_saved))
                .unwrap_or(0.0);
            let uses_per_month = per_month(uses, usage.covered_days);
            ToolRoi {
                tool,
                uses,
                uses_per_month,
                minutes_saved,
                minutes_is_default: own.is_none(),
                hours_saved_per_month: uses_per_month * minutes_saved / 60.0,
            }
        })
        .collect();
    let figures = inputs.map(|i| figures_of(i, &tools));
    let chart_svg = figures.as_ref().and_then(chart_of);
    ServerRoi {
        server,
        in_fleet,
        usage,
        tools,
        inputs: inputs.cloned(),
        updated: stored.map(|s| (s.updated_by.clone(), s.updated_at_ms)),
        figures,
        rank: None,
        chart_svg,
    }
}

/// The formula over a server's inputs and its tools' hours saved.
fn figures_of(inputs: &RoiInputs, tools: &[ToolRoi]) -> RoiFigures {
    evaluate(&Economics {
        development_hours: inputs.development_hours,
        hourly_rate: inputs.hourly_rate,
        currency: &inputs.currency,
        hours_saved_per_month: tools.iter().map(|t| t.hours_saved_per_month).sum(),
        months: inputs.months,
    })
}

/// The chart of one set of figures.
fn chart_of(figures: &RoiFigures) -> Option<String> {
    chart::value_against_cost(
        &cumulative_value(figures.monthly_value, figures.months, figures.months),
        figures.development_cost,
        &figures.currency,
    )
}

/// Orders servers with figures by ROI (ties by name) and numbers them; the others follow
/// by name, unranked.
fn rank(servers: &mut [ServerRoi]) {
    servers.sort_by(|a, b| match (&a.figures, &b.figures) {
        (Some(fa), Some(fb)) => better_roi(&fa.roi, &fb.roi).then_with(|| a.server.cmp(&b.server)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.server.cmp(&b.server),
    });
    for (i, server) in servers.iter_mut().enumerate() {
        if server.figures.is_some() {
            server.rank = u32::try_from(i + 1).ok();
        }
    }
}

/// The fleet's totals per currency, with their chart.
fn fleet_rois(servers: &[ServerRoi]) -> Vec<FleetRoi> {
    let mut by_currency: BTreeMap<&str, Vec<&ServerRoi>> = BTreeMap::new();
    for server in servers {
        if let Some(figures) = &server.figures {
            by_currency
                .entry(figures.currency.as_str())
                .or_default()
                .push(server);
        }
    }
    by_currency
        .into_values()
        .filter_map(|group| {
            let figures = fleet_totals(group.iter().filter_map(|s| s.figures.as_ref()))?;
            let mut cumulative = vec![0.0; figures.months as usize + 1];
            for f in group.iter().filter_map(|s| s.figures.as_ref()) {
                let own = cumulative_value(f.monthly_value, f.months, figures.months);
                for (total, value) in cumulative.iter_mut().zip(own) {
                    *total += value;
                }
            }
            let chart_svg =
                chart::value_against_cost(&cumulative, figures.development_cost, &figures.currency);
            Some(FleetRoi {
                servers: u32::try_from(group.len()).unwrap_or(u32::MAX),
                uses_per_month: group.iter().map(|s| s.usage.uses_per_month).sum(),
                figures,
                chart_svg,
            })
        })
        .collect()
}

/// Validates and saves a fleet server's inputs, audited as the actor's admin action.
pub async fn set_inputs(
    store: &Store,
    registry: &Registry,
    actor: &SessionUser,
    server: &str,
    form: RoiInputsForm,
) -> Result<(), AppError> {
    if registry.server(server).is_none() {
        return Err(AppError::NotFound(format!("server {server}")));
    }
    let inputs = parse_inputs(&form).map_err(|e| AppError::Invalid(e.to_string()))?;
    store
        .save_roi_inputs(server, &inputs, &actor.username)
        .await
        .map_err(store_failure)?;
    tracing::info!(actor = %actor.username, server, "ROI inputs changed");
    Ok(())
}

/// The planning mode: a proposed server's figures from uses per person × team size.
pub fn plan(form: RoiPlanForm) -> Result<RoiPlan, AppError> {
    let plan = parse_plan(&form).map_err(|e| AppError::Invalid(e.to_string()))?;
    let uses_per_month = plan.uses_per_month();
    let figures = evaluate(&Economics {
        development_hours: plan.development_hours,
        hourly_rate: plan.hourly_rate,
        currency: &plan.currency,
        hours_saved_per_month: uses_per_month * plan.minutes_saved / 60.0,
        months: plan.months,
    });
    Ok(RoiPlan {
        chart_svg: chart_of(&figures),
        name: plan.name,
        uses_per_month,
        figures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::record::{CallRecord, Outcome};
    use crate::store::test_support::temp_store;
    use app::wire::{BreakEven, CoveredSpan, RoiPercent, ToolMinutes};
    use std::time::Duration;

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn call(at_ms: i64, server: &str, tool: &str, outcome: Outcome) -> CallRecord {
        CallRecord {
            at_ms,
            assistant: "alpha".into(),
            server: server.into(),
            tool: tool.into(),
            instance: None,
            outcome,
            cache_hit: false,
            cacheable: false,
            duration: Duration::from_millis(3),
            attempts: 1,
            trace_id: None,
            args_digest: "digest".into(),
            arguments: None,
            error: None,
            known_tool: true,
        }
    }

    fn fleet() -> Vec<FleetServer> {
        vec![FleetServer {
            name: "search".into(),
            tools: vec!["query".into(), "lookup".into(), "unused".into()],
        }]
    }

    fn inputs(hours: f64, rate: f64) -> RoiInputs {
        RoiInputs {
            development_hours: hours,
            hourly_rate: rate,
            currency: "EUR".into(),
            default_minutes_saved: 6.0,
            months: 12,
            tool_minutes: vec![ToolMinutes {
                tool: "query".into(),
                minutes_saved: 3.0,
            }],
        }
    }

    /// search: first call 10 days ago; 7 successful `query` and 3 successful `lookup`
    /// calls, plus calls that are not uses. files (no longer in the fleet): 4 successful
    /// calls 40 days ago (outside a 30-day window) and 2 five days ago.
    async fn recorded() -> (Store, tempfile::TempDir) {
        let (store, dir) = temp_store().await;
        let mut calls = Vec::new();
        calls.push(call(NOW - 10 * DAY, "search", "query", Outcome::Ok));
        calls.extend((1..7).map(|i| call(NOW - i * DAY, "search", "query", Outcome::Ok)));
        calls.extend((1..4).map(|i| call(NOW - i * 3_600_000, "search", "lookup", Outcome::Ok)));
        for outcome in [
            Outcome::Denied,
            Outcome::Denied,
            Outcome::RateLimited,
            Outcome::ToolError,
            Outcome::Failed,
            Outcome::Rejected,
            Outcome::Cancelled,
        ] {
            calls.push(call(NOW - DAY, "search", "query", outcome));
        }
        // After "now": not counted.
        calls.push(call(NOW + 1, "search", "query", Outcome::Ok));
        calls.extend((0..4).map(|i| call(NOW - 40 * DAY + i, "files", "read", Outcome::Ok)));
        calls.extend((0..2).map(|i| call(NOW - 5 * DAY + i, "files", "read", Outcome::Ok)));
        store.insert_tool_calls(&calls).await.unwrap();
        (store, dir)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[tokio::test]
    async fn recorded_calls_are_projected_to_uses_per_month_as_computed_by_hand() {
        let (store, _dir) = recorded().await;
        let report = report_at(&store, &fleet(), 30, NOW).await.unwrap();
        assert_eq!(report.window_days, 30);
        let names: Vec<_> = report.servers.iter().map(|s| s.server.as_str()).collect();
        assert_eq!(names, ["files", "search"], "no inputs: by name");

        let search = &report.servers[1];
        assert!(search.in_fleet);
        // 10 successful calls since the first call 10 days ago: 10 × 30.44 / 10 = 30.44.
        assert_eq!(search.usage.uses, 10);
        assert_eq!(search.usage.covered_days, 10.0);
        assert_eq!(
            search.usage.span,
            CoveredSpan::SinceFirstCall {
                first_call_at_ms: NOW - 10 * DAY
            }
        );
        assert!(close(search.usage.uses_per_month, 30.44));
        let tools: Vec<_> = search
            .tools
            .iter()
            .map(|t| (t.tool.as_str(), t.uses))
            .collect();
        assert_eq!(tools, [("lookup", 3), ("query", 7), ("unused", 0)]);
        assert!(close(search.tools[0].uses_per_month, 3.0 * 30.44 / 10.0));
        assert!(close(search.tools[1].uses_per_month, 7.0 * 30.44 / 10.0));
        assert_eq!((search.figures.as_ref(), search.rank), (None, None));

        // files left the fleet but had 2 uses in the window, which it fully covers.
        let files = &report.servers[0];
        assert!(!files.in_fleet);
        assert_eq!(
            (files.usage.uses, files.usage.span),
            (2, CoveredSpan::Window)
        );
        assert!(close(files.usage.uses_per_month, 2.0 * 30.44 / 30.0));
        // Over 90 days its 6 calls count, over the 40 days since its first call.
        let wide = report_at(&store, &fleet(), 90, NOW).await.unwrap();
        let files = wide.servers.iter().find(|s| s.server == "files").unwrap();
        assert_eq!((files.usage.uses, files.usage.covered_days), (6, 40.0));
        assert!(close(files.usage.uses_per_month, 6.0 * 30.44 / 40.0));
        assert!(report.fleet.is_empty());
    }

    #[tokio::test]
    async fn inputs_turn_measured_uses_into_the_formula_s_figures() {
        let (store, _dir) = recorded().await;
        store
            .save_roi_inputs("search", &inputs(10.0, 80.0), "alice")
            .await
            .unwrap();
        let report = report_at(&store, &fleet(), 30, NOW).await.unwrap();
        let search = &report.servers[0];
        assert_eq!((search.server.as_str(), search.rank), ("search", Some(1)));
        // query: 21.308 uses × 3 min; lookup: 9.132 uses × 6 min (the default).
        let hours = 21.308 * 3.0 / 60.0 + 9.132 * 6.0 / 60.0;
        let monthly = hours * 80.0;
        let f = search.figures.as_ref().unwrap();
        assert!(close(f.hours_saved_per_month, hours), "{f:?}");
        assert!(close(f.development_cost, 800.0));
        assert!(close(f.monthly_value, monthly));
        assert!(close(f.total_value, monthly * 12.0));
        let RoiPercent::Percent(percent) = f.roi else {
            panic!("{f:?}")
        };
        assert!(close(percent, (monthly * 12.0 - 800.0) / 800.0 * 100.0));
        assert!(matches!(f.break_even, BreakEven::AfterMonths(m) if close(m, 800.0 / monthly)));
        assert!(
            search
                .chart_svg
                .as_deref()
                .is_some_and(|s| s.starts_with("<svg"))
        );
        let query = search.tools.iter().find(|t| t.tool == "query").unwrap();
        assert!(!query.minutes_is_default && query.minutes_saved == 3.0);
        assert_eq!(search.updated.as_ref().map(|u| u.0.as_str()), Some("alice"));

        assert_eq!(report.fleet.len(), 1);
        let fleet_figures = &report.fleet[0].figures;
        assert!(close(fleet_figures.monthly_value, monthly));
        assert!(close(report.fleet[0].uses_per_month, 30.44));
        assert_eq!(report.servers[1].server, "files");
        assert_eq!(report.servers[1].rank, None);
    }

    #[tokio::test]
    async fn servers_rank_by_roi_and_zero_usage_never_breaks_even() {
        let (store, _dir) = recorded().await;
        let fleet = vec![
            fleet().remove(0),
            FleetServer {
                name: "idle".into(),
                tools: vec!["nothing".into()],
            },
            FleetServer {
                name: "free".into(),
                tools: vec![],
            },
        ];
        store
            .save_roi_inputs("search", &inputs(10.0, 80.0), "a")
            .await
            .unwrap();
        store
            .save_roi_inputs("idle", &inputs(10.0, 80.0), "a")
            .await
            .unwrap();
        store
            .save_roi_inputs("free", &inputs(0.0, 80.0), "a")
            .await
            .unwrap();
        let report = report_at(&store, &fleet, 30, NOW).await.unwrap();
        let order: Vec<_> = report
            .servers
            .iter()
            .map(|s| (s.server.as_str(), s.rank))
            .collect();
        assert_eq!(
            order,
            [
                ("free", Some(1)),
                ("search", Some(2)),
                ("idle", Some(3)),
                ("files", None)
            ]
        );
        let idle = report.servers[2].figures.as_ref().unwrap();
        assert_eq!(idle.break_even, BreakEven::Never);
        assert_eq!(idle.roi, RoiPercent::Percent(-100.0));
        assert_eq!(report.servers[2].usage.span, CoveredSpan::NoCalls);
        let free = report.servers[0].figures.as_ref().unwrap();
        assert_eq!(free.roi, RoiPercent::NoDevelopmentCost);
    }

    #[tokio::test]
    async fn a_window_out_of_range_is_refused_with_the_range() {
        let (store, _dir) = temp_store().await;
        for days in [0, 366] {
            let error = report_at(&store, &fleet(), days, NOW).await.unwrap_err();
            assert_eq!(
                error,
                AppError::Invalid(format!("window: must be from 1 to 365 days (got {days})"))
            );
        }
    }

    #[test]
    fn plans_use_uses_per_person_times_team_size() {
        let plan = plan(RoiPlanForm {
            name: "tickets".into(),
            development_hours: "80".into(),
            hourly_rate: "100".into(),
            currency: "usd".into(),
            minutes_saved: "6".into(),
            uses_per_person: "20".into(),
            team_size: "10".into(),
            months: "12".into(),
        })
        .unwrap();
        // 200 uses × 0.1 h × 100 = 2000 a month; cost 8000; 12 months: 24000; ROI 200 %.
        assert_eq!(plan.uses_per_month, 200.0);
        assert!(close(plan.figures.monthly_value, 2000.0));
        assert_eq!(plan.figures.roi, RoiPercent::Percent(200.0));
        assert_eq!(plan.figures.break_even, BreakEven::AfterMonths(4.0));
        assert_eq!(plan.figures.currency, "USD");
        let refused = super::plan(RoiPlanForm::default()).unwrap_err();
        assert_eq!(
            refused,
            AppError::Invalid("proposed server: required".into())
        );
    }
}
