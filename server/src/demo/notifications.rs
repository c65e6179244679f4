//! The notifications demo server: an outbox seeded with recent notifications and the
//! `send` and `list_sent` tools.

use super::kind::DemoKind;
use super::server::{Backend, DemoServer};
use rmcp::{
    Json,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    schemars::JsonSchema,
    tool, tool_router,
};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Notifications kept in the outbox; the oldest are dropped beyond, to bound memory.
const OUTBOX_CAPACITY: usize = 10_000;
/// The longest message accepted.
const MAX_MESSAGE_CHARS: usize = 2_000;

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
enum Channel {
    /// An email.
    Email,
    /// A Slack message.
    Slack,
    /// A text message.
    Sms,
    /// A page to the on-call engineer.
    Pager,
}

/// A notification in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SentNotification {
    /// Its id, e.g. "ntf-000042".
    id: String,
    /// The channel it went out on.
    channel: Channel,
    /// Who it went to.
    recipient: String,
    /// What it said.
    message: String,
    /// When it was sent, in milliseconds since the Unix epoch.
    sent_at_ms: u64,
}

struct Outbox {
    next_id: u64,
    sent: VecDeque<SentNotification>,
}

pub(super) struct NotificationsBackend {
    outbox: Mutex<Outbox>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl NotificationsBackend {
    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(
        &self,
        channel: Channel,
        recipient: String,
        message: String,
    ) -> Result<SentNotification, String> {
        let recipient = recipient.trim().to_owned();
        if recipient.is_empty() {
            return Err("recipient must not be empty".to_owned());
        }
        if message.trim().is_empty() {
            return Err("message must not be empty".to_owned());
        }
        let chars = message.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(format!(
                "message is {chars} characters; the limit is {MAX_MESSAGE_CHARS}"
            ));
        }
        let mut outbox = self.outbox();
        let notification = SentNotification {
            id: format!("ntf-{:06}", outbox.next_id),
            channel,
            recipient,
            message,
            sent_at_ms: now_ms(),
        };
        outbox.next_id += 1;
        if outbox.sent.len() >= OUTBOX_CAPACITY {
            outbox.sent.pop_front();
        }
        outbox.sent.push_back(notification.clone());
        Ok(notification)
    }

    fn list(&self, limit: usize, channel: Option<Channel>) -> Vec<SentNotification> {
        self.outbox()
            .sent
            .iter()
            .rev()
            .filter(|notification| channel.is_none_or(|channel| notification.channel == channel))
            .take(limit)
            .cloned()
            .collect()
    }
}

impl Backend for NotificationsBackend {
    const KIND: DemoKind = DemoKind::Notifications;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        const SEEDED: [(Channel, &str, &str); 5] = [
            (
                Channel::Email,
                "oncall@example.com",
                "Weekly availability report is ready.",
            ),
            (
                Channel::Slack,
                "#payments-alerts",
                "Breaker opened on payments-2.",
            ),
            (
                Channel::Pager,
                "search-primary",
                "search p99 latency above 800 ms.",
            ),
            (
                Channel::Sms,
                "+15550100",
                "Your deploy of files-1 finished.",
            ),
            (Channel::Slack, "#platform", "Breaker closed on payments-2."),
        ];
        // The seeded history ends a few minutes before start, so it reads as recent.
        let start = now_ms();
        let mut at = start.saturating_sub(3_600_000);
        let sent = SEEDED
            .iter()
            .zip(1_u64..)
            .map(|((channel, recipient, message), id)| {
                at += rng.u64(60_000..600_000);
                SentNotification {
                    id: format!("ntf-{id:06}"),
                    channel: *channel,
                    recipient: (*recipient).to_owned(),
                    message: (*message).to_owned(),
                    sent_at_ms: at.min(start),
                }
            })
            .collect::<VecDeque<_>>();
        Self {
            outbox: Mutex::new(Outbox {
                next_id: sent.len() as u64 + 1,
                sent,
            }),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `send`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SendArgs {
    /// The channel: email, slack, sms or pager.
    channel: Channel,
    /// An address, a Slack channel, a phone number or an on-call rotation.
    recipient: String,
    /// The text (at most 2000 characters).
    message: String,
}

/// Arguments of `list_sent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ListSentArgs {
    /// How many to return, newest first (1 to 100, default 20).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// Only this channel's notifications.
    channel: Option<Channel>,
}

/// The result of `list_sent`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SentOutput {
    /// Notifications, newest first.
    notifications: Vec<SentNotification>,
}

#[tool_router]
impl DemoServer<NotificationsBackend> {
    #[tool(
        description = "Sends a notification and records it in the outbox; every call sends \
                       another one.",
        annotations(
            title = "Send a notification",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn send(
        &self,
        Parameters(args): Parameters<SendArgs>,
    ) -> Result<Json<SentNotification>, String> {
        self.backend
            .send(args.channel, args.recipient, args.message)
            .map(Json)
    }

    #[tool(
        description = "Lists sent notifications, newest first.",
        annotations(
            title = "List sent notifications",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_sent(
        &self,
        Parameters(args): Parameters<ListSentArgs>,
    ) -> Result<Json<SentOutput>, String> {
        let limit = args.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(format!("limit must be between 1 and 100, got {limit}"));
        }
        Ok(Json(SentOutput {
            notifications: self.backend.list(limit as usize, args.channel),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::serving::test_support::{bounded, call, connect, start, structured};
    use serde_json::json;

    #[tokio::test]
    async fn notifications_are_sent_and_listed_newest_first() {
        bounded(async {
            let instance = start(DemoKind::Notifications).await;
            let client = connect(&instance, ()).await;
            let message =
                json!({ "channel": "slack", "recipient": "#ops", "message": "deploy done" });
            let first: SentNotification = structured(&call(&client, "send", message.clone()).await);
            let second: SentNotification = structured(&call(&client, "send", message).await);
            assert_ne!(first.id, second.id, "every send is another notification");

            let listed: SentOutput =
                structured(&call(&client, "list_sent", json!({ "limit": 2 })).await);
            let ids: Vec<&str> = listed.notifications.iter().map(|n| n.id.as_str()).collect();
            assert_eq!(ids, vec![second.id.as_str(), first.id.as_str()]);
            let pages: SentOutput =
                structured(&call(&client, "list_sent", json!({ "channel": "pager" })).await);
            assert!(
                pages
                    .notifications
                    .iter()
                    .all(|notification| notification.channel == Channel::Pager)
            );

            let bad_channel = call(
                &client,
                "send",
                json!({ "channel": "pigeon", "recipient": "x", "message": "y" }),
            )
            .await;
            assert_eq!(bad_channel.is_error, Some(true));
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }
}
