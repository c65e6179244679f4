//! Which demo MCP server an instance runs: [`DemoKind`] and its names.

use serde::{Deserialize, Serialize};

/// Which demo MCP server an instance runs.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DemoKind {
    /// Full-text search over a generated document corpus.
    Search,
    /// A tiny in-memory SQL database.
    Database,
    /// An in-memory file tree.
    Files,
    /// An outbox of sent notifications.
    Notifications,
}

/// A name that is not a [`DemoKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown demo server kind '{0}' (expected search, database, files or notifications)")]
pub struct UnknownDemoKind(pub String);

impl DemoKind {
    /// Every kind, in the order the demo fleet lists them.
    pub const ALL: [DemoKind; 4] = [
        DemoKind::Search,
        DemoKind::Database,
        DemoKind::Files,
        DemoKind::Notifications,
    ];

    /// The kind's name: "search", "database", "files" or "notifications".
    pub fn as_str(self) -> &'static str {
        match self {
            DemoKind::Search => "search",
            DemoKind::Database => "database",
            DemoKind::Files => "files",
            DemoKind::Notifications => "notifications",
        }
    }

    /// The MCP server name announced in `initialize`, e.g. "fleetdeck-demo-search".
    pub fn server_name(self) -> String {
        format!("fleetdeck-demo-{}", self.as_str())
    }

    /// The seed of the kind's data: one per kind, not per instance, so replicas agree.
    pub(super) fn data_seed(self) -> u64 {
        match self {
            DemoKind::Search => 0x5EA2_C400_0001,
            DemoKind::Database => 0xDA7A_BA5E_0002,
            DemoKind::Files => 0xF11E_5000_0003,
            DemoKind::Notifications => 0x0071_F1ED_0004,
        }
    }
}

impl std::fmt::Display for DemoKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DemoKind {
    type Err = UnknownDemoKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DemoKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownDemoKind(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_name_themselves() {
        for kind in DemoKind::ALL {
            assert_eq!(kind.as_str().parse::<DemoKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(DemoKind::Search.server_name(), "fleetdeck-demo-search");
        let error = "weather".parse::<DemoKind>().expect_err("not a kind");
        assert!(error.to_string().contains("'weather'"));
    }
}
