//! ROI inputs for the demo fleet's four servers, stored on the demo's first start so that a
//! manager opening ROI sees numbers, a ranking and the chart at once (the synthetic traffic
//! supplies the uses). They go through the page's own validation and stay editable there;
//! inputs already stored, by an admin or an earlier start, are never replaced.

use crate::roi::inputs::parse_inputs;
use crate::store::Store;
use app::wire::RoiInputsForm;

/// Who the seeding is recorded as in the admin audit log.
const SEEDED_BY: &str = "demo";

/// One server's figures, as an admin would type them on the ROI page.
struct Seed {
    server: &'static str,
    development_hours: &'static str,
    hourly_rate: &'static str,
    minutes_saved: &'static str,
    /// Tools that save more or less than `minutes_saved`.
    tools: &'static [(&'static str, &'static str)],
}

/// Plausible figures for the demo's servers.
const SEEDS: [Seed; 4] = [
    Seed {
        server: "search",
        development_hours: "160",
        hourly_rate: "110",
        minutes_saved: "6",
        tools: &[("reindex", "45"), ("lookup", "3")],
    },
    Seed {
        server: "database",
        development_hours: "240",
        hourly_rate: "110",
        minutes_saved: "10",
        tools: &[("list_tables", "2")],
    },
    Seed {
        server: "files",
        development_hours: "80",
        hourly_rate: "95",
        minutes_saved: "4",
        tools: &[("write_file", "8")],
    },
    Seed {
        server: "notifications",
        development_hours: "60",
        hourly_rate: "95",
        minutes_saved: "3",
        tools: &[],
    },
];

/// Stores the seeds of the servers that have no inputs yet; returns how many it stored.
pub async fn seed_roi_inputs(store: &Store) -> anyhow::Result<usize> {
    let stored = store.roi_inputs().await?;
    let mut seeded = 0;
    for seed in &SEEDS {
        if stored.iter().any(|inputs| inputs.server == seed.server) {
            continue;
        }
        let form = RoiInputsForm {
            development_hours: seed.development_hours.into(),
            hourly_rate: seed.hourly_rate.into(),
            currency: "USD".into(),
            default_minutes_saved: seed.minutes_saved.into(),
            months: "12".into(),
            tool_minutes: seed
                .tools
                .iter()
                .map(|(tool, minutes)| ((*tool).into(), (*minutes).into()))
                .collect(),
        };
        let inputs =
            parse_inputs(&form).map_err(|e| anyhow::anyhow!("demo ROI of {}: {e}", seed.server))?;
        store
            .save_roi_inputs(seed.server, &inputs, SEEDED_BY)
            .await?;
        seeded += 1;
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn seeds_are_valid_stored_once_and_never_replace_an_admins_inputs() {
        let (store, _dir) = temp_store().await;
        let mine = parse_inputs(&RoiInputsForm {
            development_hours: "1".into(),
            hourly_rate: "1".into(),
            currency: "EUR".into(),
            default_minutes_saved: "1".into(),
            months: "1".into(),
            tool_minutes: Vec::new(),
        })
        .unwrap();
        store
            .save_roi_inputs("files", &mine, "admin")
            .await
            .unwrap();
        assert_eq!(seed_roi_inputs(&store).await.unwrap(), 3);
        assert_eq!(
            seed_roi_inputs(&store).await.unwrap(),
            0,
            "a restart seeds nothing"
        );
        let stored = store.roi_inputs().await.unwrap();
        assert_eq!(stored.len(), 4);
        let files = stored.iter().find(|s| s.server == "files").unwrap();
        assert_eq!(files.inputs.currency, "EUR", "the admin's inputs stay");
        let search = stored.iter().find(|s| s.server == "search").unwrap();
        assert_eq!(search.inputs.development_hours, 160.0);
        assert_eq!(search.inputs.tool_minutes.len(), 2);
    }
}
