//! ROI: measured uses aggregated from the tool-call audit log (counted in SQL, never
//! loaded row by row), and the inputs admins set per server, audited in the same
//! transaction as the change.

use super::admin_audit::{AdminAction, InsertAudit};
use super::{SnapshotReads, Store, StoreError, impl_for_connections, now_ms, on_pool};
use app::wire::{RoiInputs, ToolMinutes};

/// Calls of one tool with a given outcome in a time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolUses {
    /// The server.
    pub server: String,
    /// The tool's upstream name.
    pub tool: String,
    /// How many.
    pub uses: u64,
}

/// A server's stored inputs, with who set them last.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRoiInputs {
    /// The server.
    pub server: String,
    /// The inputs.
    pub inputs: RoiInputs,
    /// Who changed them last.
    pub updated_by: String,
    /// When (Unix ms).
    pub updated_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct InputsRow {
    server: String,
    development_hours: f64,
    hourly_rate: f64,
    currency: String,
    default_minutes_saved: f64,
    months: i64,
    updated_at_ms: i64,
    updated_by: String,
}

const INPUT_COLUMNS: &str = "server, development_hours, hourly_rate, currency, \
     default_minutes_saved, months, updated_at_ms, updated_by";

impl InputsRow {
    fn into_stored(self, tool_minutes: Vec<ToolMinutes>) -> StoredRoiInputs {
        StoredRoiInputs {
            server: self.server,
            inputs: RoiInputs {
                development_hours: self.development_hours,
                hourly_rate: self.hourly_rate,
                currency: self.currency,
                default_minutes_saved: self.default_minutes_saved,
                months: u32::try_from(self.months).unwrap_or(1),
                tool_minutes,
            },
            updated_by: self.updated_by,
            updated_at_ms: self.updated_at_ms,
        }
    }
}

/// How inputs read in the audit log, e.g.
/// `40 h × 85 EUR/h, 5 min/use (query 2.5), 12 months`.
pub fn describe_inputs(inputs: &RoiInputs) -> String {
    let tools = if inputs.tool_minutes.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = inputs
            .tool_minutes
            .iter()
            .map(|t| format!("{} {}", t.tool, t.minutes_saved))
            .collect();
        format!(" ({})", list.join(", "))
    };
    format!(
        "{} h × {} {}/h, {} min/use{tools}, {} months",
        inputs.development_hours,
        inputs.hourly_rate,
        inputs.currency,
        inputs.default_minutes_saved,
        inputs.months
    )
}

impl Store {
    /// Calls with `outcome` per server and tool with `from_ms <= at_ms <= to_ms`, by server
    /// and tool.
    pub async fn tool_uses(
        &self,
        outcome: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ToolUses>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT server, tool, COUNT(*) FROM tool_calls \
             WHERE outcome = $1 AND at_ms >= $2 AND at_ms <= $3 \
             GROUP BY server, tool ORDER BY server, tool"
        )
        .bind(outcome)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(server, tool, uses)| ToolUses {
                server,
                tool,
                uses: u64::try_from(uses).unwrap_or(0),
            })
            .collect())
    }

    /// Each server's first recorded call (any outcome) up to `to_ms`, by server.
    pub async fn first_calls(&self, to_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT server, MIN(at_ms) FROM tool_calls WHERE at_ms <= $1 \
             GROUP BY server ORDER BY server"
        )
        .bind(to_ms)
        .fetch_all(pool)
        .await)?)
    }

    /// Every server's stored ROI inputs, by server.
    pub async fn roi_inputs(&self) -> Result<Vec<StoredRoiInputs>, StoreError> {
        let (rows, minutes): (Vec<InputsRow>, Vec<(String, String, f64)>) =
            on_pool!(self, |pool| {
                let mut tx = pool.begin().await?;
                tx.snapshot_reads().await?;
                let rows = sqlx::query_as(&format!(
                    "SELECT {INPUT_COLUMNS} FROM roi_inputs ORDER BY server"
                ))
                .fetch_all(&mut *tx)
                .await?;
                let minutes = sqlx::query_as(
                    "SELECT server, tool, minutes_saved FROM roi_tool_minutes \
                     ORDER BY server, tool",
                )
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, StoreError>((rows, minutes))
            })?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let tools = minutes
                    .iter()
                    .filter(|(server, _, _)| *server == row.server)
                    .map(|(_, tool, minutes_saved)| ToolMinutes {
                        tool: tool.clone(),
                        minutes_saved: *minutes_saved,
                    })
                    .collect();
                row.into_stored(tools)
            })
            .collect())
    }

    /// Replaces a server's inputs (tool minutes included) and writes the admin-audit row
    /// `roi.set_inputs` with the inputs before and after, in one transaction. Returns the
    /// inputs before, if there were any.
    pub async fn save_roi_inputs(
        &self,
        server: &str,
        inputs: &RoiInputs,
        actor: &str,
    ) -> Result<Option<RoiInputs>, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            match tx.write_inputs(server, inputs, actor, now).await {
                Ok(before) => {
                    tx.commit().await?;
                    Ok(before)
                }
                Err(error) => {
                    // Roll back now: a dropped transaction keeps the write lock until its
                    // connection is next used.
                    let _ = tx.rollback().await;
                    Err(error)
                }
            }
        })
    }
}

/// The writes of [`Store::save_roi_inputs`], inside its transaction.
trait RoiWrites {
    /// Replaces `server`'s inputs and audits it; returns the inputs before.
    async fn write_inputs(
        &mut self,
        server: &str,
        inputs: &RoiInputs,
        actor: &str,
        now: i64,
    ) -> Result<Option<RoiInputs>, StoreError>;
}

impl_for_connections!(RoiWrites {
    async fn write_inputs(
        &mut self,
        server: &str,
        inputs: &RoiInputs,
        actor: &str,
        now: i64,
    ) -> Result<Option<RoiInputs>, StoreError> {
        // A write first (it changes nothing), so the transaction holds SQLite's write lock
        // before it reads; RETURNING gives the row as it was.
        let before: Option<InputsRow> = sqlx::query_as(&format!(
            "UPDATE roi_inputs SET updated_at_ms = updated_at_ms WHERE server = $1 \
             RETURNING {INPUT_COLUMNS}"
        ))
        .bind(server)
        .fetch_optional(&mut *self)
        .await?;
        let before = match before {
            Some(row) => {
                let tools: Vec<(String, f64)> = sqlx::query_as(
                    "SELECT tool, minutes_saved FROM roi_tool_minutes WHERE server = $1 \
                     ORDER BY tool",
                )
                .bind(server)
                .fetch_all(&mut *self)
                .await?;
                let tools = tools
                    .into_iter()
                    .map(|(tool, minutes_saved)| ToolMinutes {
                        tool,
                        minutes_saved,
                    })
                    .collect();
                Some(row.into_stored(tools).inputs)
            }
            None => None,
        };
        sqlx::query(
            "INSERT INTO roi_inputs (server, development_hours, hourly_rate, currency, \
             default_minutes_saved, months, updated_at_ms, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (server) DO UPDATE SET \
             development_hours = excluded.development_hours, \
             hourly_rate = excluded.hourly_rate, currency = excluded.currency, \
             default_minutes_saved = excluded.default_minutes_saved, \
             months = excluded.months, updated_at_ms = excluded.updated_at_ms, \
             updated_by = excluded.updated_by",
        )
        .bind(server)
        .bind(inputs.development_hours)
        .bind(inputs.hourly_rate)
        .bind(&inputs.currency)
        .bind(inputs.default_minutes_saved)
        .bind(i64::from(inputs.months))
        .bind(now)
        .bind(actor)
        .execute(&mut *self)
        .await?;
        sqlx::query("DELETE FROM roi_tool_minutes WHERE server = $1")
            .bind(server)
            .execute(&mut *self)
            .await?;
        for tool in &inputs.tool_minutes {
            sqlx::query(
                "INSERT INTO roi_tool_minutes (server, tool, minutes_saved) VALUES ($1, $2, $3)",
            )
            .bind(server)
            .bind(&tool.tool)
            .bind(tool.minutes_saved)
            .execute(&mut *self)
            .await?;
        }
        let mut action =
            AdminAction::new(actor, "roi.set_inputs", server).after(describe_inputs(inputs));
        if let Some(before) = &before {
            action = action.before(describe_inputs(before));
        }
        self.insert_audit(&action, now).await?;
        Ok(before)
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;

    fn inputs(hours: f64, tools: &[(&str, f64)]) -> RoiInputs {
        RoiInputs {
            development_hours: hours,
            hourly_rate: 85.0,
            currency: "EUR".into(),
            default_minutes_saved: 5.0,
            months: 12,
            tool_minutes: tools
                .iter()
                .map(|(tool, minutes_saved)| ToolMinutes {
                    tool: tool.to_string(),
                    minutes_saved: *minutes_saved,
                })
                .collect(),
        }
    }

    each_backend! {
        async fn inputs_are_replaced_whole_and_each_change_is_audited_with_before_and_after(store) {
            assert_eq!(store.roi_inputs().await.unwrap(), vec![]);

            let first = inputs(40.0, &[("query", 2.5), ("lookup", 1.0)]);
            assert_eq!(
                store
                    .save_roi_inputs("search", &first, "alice")
                    .await
                    .unwrap(),
                None
            );
            let second = inputs(60.0, &[("query", 3.0)]);
            let before = store
                .save_roi_inputs("search", &second, "bob")
                .await
                .unwrap();
            // Tools come back ordered by name.
            assert_eq!(
                before,
                Some(inputs(40.0, &[("lookup", 1.0), ("query", 2.5)]))
            );

            let stored = store.roi_inputs().await.unwrap();
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].server, "search");
            assert_eq!(stored[0].inputs, second);
            assert_eq!(stored[0].updated_by, "bob");

            let audit = store.recent_admin_audit(10).await.unwrap();
            assert_eq!(audit.len(), 2);
            assert_eq!(
                (
                    audit[0].actor.as_str(),
                    audit[0].action.as_str(),
                    audit[0].target.as_str()
                ),
                ("bob", "roi.set_inputs", "search")
            );
            assert_eq!(
                audit[0].before.as_deref(),
                Some("40 h × 85 EUR/h, 5 min/use (lookup 1, query 2.5), 12 months")
            );
            assert_eq!(
                audit[0].after.as_deref(),
                Some("60 h × 85 EUR/h, 5 min/use (query 3), 12 months")
            );
            assert_eq!(audit[1].before, None);
        }
    }

    each_backend! {
        async fn a_refused_write_changes_nothing_and_audits_nothing(store) {
            let good = inputs(40.0, &[]);
            store
                .save_roi_inputs("search", &good, "alice")
                .await
                .unwrap();
            // The schema's own checks are the last line: a negative value never lands.
            let bad = inputs(-1.0, &[]);
            assert!(
                store
                    .save_roi_inputs("search", &bad, "mallory")
                    .await
                    .is_err()
            );
            assert_eq!(store.roi_inputs().await.unwrap()[0].inputs, good);
            assert_eq!(store.recent_admin_audit(10).await.unwrap().len(), 1);
        }
    }
}
