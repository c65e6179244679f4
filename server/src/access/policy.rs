//! Who may call which tool, as pure rules: the tiers' default patterns and rate limits, an
//! assistant's explicit entries, and how they combine into one decision. No I/O here.

use app::wire::{Decision, DecisionSource, PermissionCell, Tier};
use std::collections::BTreeMap;

/// Highest rate accepted, in calls per minute (beyond it a limit is no limit).
pub const MAX_RATE_PER_MIN: u32 = 1_000_000;

/// The tool name that stands for every tool of a server in an explicit entry.
pub const EVERY_TOOL: &str = "*";

/// What a tier grants by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierPolicy {
    /// Allowed tools, as patterns (see [`pattern_matches`]); the first match decides.
    pub patterns: Vec<String>,
    /// Calls per minute per assistant, also the burst allowed at once.
    pub rate_per_min: u32,
}

/// The access policy: each tier's defaults and per-tool rate overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Read-only assistants.
    pub viewer: TierPolicy,
    /// Everyday assistants.
    pub developer: TierPolicy,
    /// Unrestricted assistants.
    pub admin: TierPolicy,
    /// Calls per minute per assistant for single tools, keyed `<server>__<tool>`; for those
    /// tools it applies instead of the tier's rate.
    pub tool_rate_per_min: BTreeMap<String, u32>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        let patterns = |list: &[&str]| list.iter().map(|p| p.to_string()).collect();
        AccessPolicy {
            viewer: TierPolicy {
                patterns: patterns(&["read_*"]),
                rate_per_min: 50,
            },
            developer: TierPolicy {
                patterns: patterns(&[
                    "read_*",
                    "list_*",
                    "get_*",
                    "query*",
                    "lookup*",
                    "search*",
                    "sql_select",
                    "echo",
                ]),
                rate_per_min: 100,
            },
            admin: TierPolicy {
                patterns: patterns(&["*"]),
                rate_per_min: 1000,
            },
            tool_rate_per_min: BTreeMap::new(),
        }
    }
}

impl AccessPolicy {
    /// The defaults of one tier.
    pub fn tier(&self, tier: Tier) -> &TierPolicy {
        match tier {
            Tier::Viewer => &self.viewer,
            Tier::Developer => &self.developer,
            Tier::Admin => &self.admin,
        }
    }

    /// Checks rates and patterns; the message names the offending tier or tool.
    pub fn validate(&self) -> Result<(), String> {
        for tier in Tier::ALL {
            let policy = self.tier(tier);
            validate_rate(policy.rate_per_min).map_err(|e| format!("{tier} tier: {e}"))?;
            for pattern in &policy.patterns {
                validate_pattern(pattern).map_err(|e| format!("{tier} tier: {e}"))?;
            }
        }
        for (exposed, rate) in &self.tool_rate_per_min {
            match exposed.split_once("__") {
                Some((server, tool))
                    if !server.is_empty() && !tool.is_empty() && !exposed.contains('*') => {}
                _ => {
                    return Err(format!(
                        "tool rate {exposed:?}: name one tool as <server>__<tool>"
                    ));
                }
            }
            validate_rate(*rate).map_err(|e| format!("tool rate {exposed}: {e}"))?;
        }
        Ok(())
    }
}

fn validate_rate(rate: u32) -> Result<(), String> {
    if rate == 0 || rate > MAX_RATE_PER_MIN {
        return Err(format!(
            "rate {rate}/min must be between 1 and {MAX_RATE_PER_MIN}"
        ));
    }
    Ok(())
}

fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("an empty pattern matches nothing: remove it".into());
    }
    if pattern.trim_end_matches('*').contains('*') || pattern.ends_with("**") {
        return Err(format!(
            "pattern {pattern:?}: '*' is only allowed once, at the end"
        ));
    }
    if pattern.chars().any(char::is_whitespace) {
        return Err(format!("pattern {pattern:?} contains whitespace"));
    }
    Ok(())
}

/// Whether `pattern` matches the tool `tool` of server `server`.
///
/// A pattern containing `__` is matched against the exposed name `<server>__<tool>`,
/// otherwise against the tool name alone; a trailing `*` matches any suffix (also an empty
/// one), so `*` matches everything.
pub fn pattern_matches(pattern: &str, server: &str, tool: &str) -> bool {
    // The exposed name is compared piecewise rather than built, to keep the hot path free
    // of allocations.
    let subject: &[&str] = if pattern.contains("__") {
        &[server, "__", tool]
    } else {
        &[tool]
    };
    match pattern.strip_suffix('*') {
        Some(prefix) => parts_start_with(subject, prefix),
        None => {
            subject.iter().map(|p| p.len()).sum::<usize>() == pattern.len()
                && parts_start_with(subject, pattern)
        }
    }
}

/// Whether the concatenation of `parts` starts with `prefix`.
fn parts_start_with(parts: &[&str], prefix: &str) -> bool {
    let mut rest = prefix;
    for part in parts {
        if rest.len() <= part.len() {
            return part.starts_with(rest);
        }
        match rest.strip_prefix(part) {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    rest.is_empty()
}

/// One assistant's explicit entries: per server, per tool (or [`EVERY_TOOL`]), a decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExplicitRules {
    by_server: BTreeMap<String, BTreeMap<String, Decision>>,
}

impl ExplicitRules {
    /// The rules from `(server, tool or "*", decision)` entries; a later duplicate wins.
    pub fn new(entries: impl IntoIterator<Item = (String, String, Decision)>) -> Self {
        let mut by_server: BTreeMap<String, BTreeMap<String, Decision>> = BTreeMap::new();
        for (server, tool, decision) in entries {
            by_server.entry(server).or_default().insert(tool, decision);
        }
        ExplicitRules { by_server }
    }

    /// Every entry as `(server, tool, decision)`, sorted by server then tool.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, Decision)> {
        self.by_server.iter().flat_map(|(server, tools)| {
            tools
                .iter()
                .map(move |(tool, decision)| (server.as_str(), tool.as_str(), *decision))
        })
    }
}

/// The effective decision for one tool, and which rule made it.
///
/// Precedence: the explicit entry for the tool, then the explicit server-wide entry, then the
/// first tier pattern that matches (allow); anything unmatched is denied.
pub fn resolve(
    explicit: &ExplicitRules,
    tier: &TierPolicy,
    server: &str,
    tool: &str,
) -> PermissionCell {
    if let Some(tools) = explicit.by_server.get(server) {
        if let Some(decision) = tools.get(tool) {
            return PermissionCell {
                decision: *decision,
                source: DecisionSource::Explicit,
            };
        }
        if let Some(decision) = tools.get(EVERY_TOOL) {
            return PermissionCell {
                decision: *decision,
                source: DecisionSource::ServerWide,
            };
        }
    }
    match tier
        .patterns
        .iter()
        .find(|pattern| pattern_matches(pattern, server, tool))
    {
        Some(pattern) => PermissionCell {
            decision: Decision::Allow,
            source: DecisionSource::TierPattern(pattern.clone()),
        },
        None => PermissionCell {
            decision: Decision::Deny,
            source: DecisionSource::Unmatched,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_tool_names_or_exposed_names() {
        let cases = [
            // (pattern, server, tool, matches)
            ("read_*", "files", "read_file", true),
            ("read_*", "files", "read_", true),
            ("read_*", "files", "read", false),
            ("read_*", "files", "write_file", false),
            ("read_*", "read_", "x", false),
            ("*", "any", "thing", true),
            ("*", "any", "", true),
            ("echo", "demo", "echo", true),
            ("echo", "demo", "echo2", false),
            ("echo", "demo", "ech", false),
            ("query*", "db", "query", true),
            ("query*", "db", "query_rows", true),
            ("search__*", "search", "lookup", true),
            ("search__*", "search", "", true),
            ("search__*", "searcher", "lookup", false),
            ("files__read_*", "files", "read", false),
            ("search__*", "files", "search__x", false),
            ("search__lookup", "search", "lookup", true),
            ("search__lookup", "search", "lookup2", false),
            ("search__look*", "search", "lookup", true),
            ("search__look*", "search", "lo", false),
            ("sea*", "search", "lookup", false),
            ("sea*", "files", "search", true),
            ("files__read_*", "files", "read_file", true),
            ("files__read_*", "search", "read_file", false),
        ];
        for (pattern, server, tool, expected) in cases {
            assert_eq!(
                pattern_matches(pattern, server, tool),
                expected,
                "{pattern} vs {server}__{tool}"
            );
        }
    }

    fn cell(decision: Decision, source: DecisionSource) -> PermissionCell {
        PermissionCell { decision, source }
    }

    #[test]
    fn explicit_entries_beat_server_wide_beat_tier_patterns() {
        let policy = AccessPolicy::default();
        let rules = ExplicitRules::new([
            ("files".into(), "read_secret".into(), Decision::Deny),
            ("files".into(), "write_file".into(), Decision::Allow),
            ("admin".into(), "*".into(), Decision::Deny),
            ("admin".into(), "read_status".into(), Decision::Allow),
            ("ops".into(), "*".into(), Decision::Allow),
        ]);
        let pattern = |p: &str| DecisionSource::TierPattern(p.into());
        let cases = [
            // An explicit deny beats the tier's allow.
            (
                "files",
                "read_secret",
                cell(Decision::Deny, DecisionSource::Explicit),
            ),
            // An explicit allow grants what the tier does not.
            (
                "files",
                "write_file",
                cell(Decision::Allow, DecisionSource::Explicit),
            ),
            // Untouched tools fall through to the tier.
            (
                "files",
                "read_file",
                cell(Decision::Allow, pattern("read_*")),
            ),
            (
                "files",
                "delete_file",
                cell(Decision::Deny, DecisionSource::Unmatched),
            ),
            // A server-wide deny beats the tier's allow …
            (
                "admin",
                "read_logs",
                cell(Decision::Deny, DecisionSource::ServerWide),
            ),
            // … and a per-tool entry beats the server-wide one.
            (
                "admin",
                "read_status",
                cell(Decision::Allow, DecisionSource::Explicit),
            ),
            // A server-wide allow grants every tool of that server only.
            (
                "ops",
                "restart",
                cell(Decision::Allow, DecisionSource::ServerWide),
            ),
            (
                "other",
                "restart",
                cell(Decision::Deny, DecisionSource::Unmatched),
            ),
            (
                "other",
                "read",
                cell(Decision::Deny, DecisionSource::Unmatched),
            ),
        ];
        for (server, tool, expected) in cases {
            assert_eq!(
                resolve(&rules, policy.tier(Tier::Viewer), server, tool),
                expected,
                "{server}__{tool}"
            );
        }
    }

    #[test]
    fn tiers_default_to_their_patterns_first_match_first() {
        let policy = AccessPolicy::default();
        let none = ExplicitRules::default();
        let decide = |tier, server, tool| resolve(&none, policy.tier(tier), server, tool);
        assert_eq!(
            decide(Tier::Admin, "db", "drop_table"),
            cell(Decision::Allow, DecisionSource::TierPattern("*".into()))
        );
        assert_eq!(
            decide(Tier::Developer, "db", "sql_select"),
            cell(
                Decision::Allow,
                DecisionSource::TierPattern("sql_select".into())
            )
        );
        assert_eq!(
            decide(Tier::Developer, "search", "search_docs"),
            cell(
                Decision::Allow,
                DecisionSource::TierPattern("search*".into())
            )
        );
        assert_eq!(
            decide(Tier::Developer, "db", "sql_execute").decision,
            Decision::Deny
        );
        assert_eq!(decide(Tier::Viewer, "db", "query").decision, Decision::Deny);
        let custom = TierPolicy {
            patterns: vec!["search__*".into(), "*".into()],
            rate_per_min: 1,
        };
        assert_eq!(
            resolve(&none, &custom, "search", "x").source,
            DecisionSource::TierPattern("search__*".into())
        );
        assert_eq!(
            resolve(&none, &custom, "files", "x").source,
            DecisionSource::TierPattern("*".into())
        );
    }

    #[test]
    fn explicit_rules_list_sorted_and_later_duplicates_win() {
        let rules = ExplicitRules::new([
            ("search".into(), "lookup".into(), Decision::Allow),
            ("files".into(), "read".into(), Decision::Allow),
            ("files".into(), "*".into(), Decision::Deny),
            ("search".into(), "lookup".into(), Decision::Deny),
        ]);
        let listed: Vec<_> = rules.entries().collect();
        assert_eq!(
            listed,
            [
                ("files", "*", Decision::Deny),
                ("files", "read", Decision::Allow),
                ("search", "lookup", Decision::Deny),
            ]
        );
        assert_eq!(ExplicitRules::default().entries().count(), 0);
    }

    #[test]
    fn the_default_policy_is_valid_and_bad_ones_are_named() {
        assert_eq!(AccessPolicy::default().validate(), Ok(()));

        let mut zero = AccessPolicy::default();
        zero.viewer.rate_per_min = 0;
        assert!(zero.validate().unwrap_err().contains("viewer tier"));

        let mut huge = AccessPolicy::default();
        huge.admin.rate_per_min = MAX_RATE_PER_MIN + 1;
        assert!(huge.validate().unwrap_err().contains("admin tier"));

        let mut empty = AccessPolicy::default();
        empty.developer.patterns.push(String::new());
        assert!(
            empty
                .validate()
                .unwrap_err()
                .contains("developer tier: an empty pattern")
        );

        for bad in ["re*ad", "*read", "read**", "a b*"] {
            let mut inner = AccessPolicy::default();
            inner.viewer.patterns = vec![bad.into()];
            assert!(inner.validate().is_err(), "{bad} accepted");
        }

        let mut tool = AccessPolicy::default();
        tool.tool_rate_per_min.insert("search__lookup".into(), 5);
        assert_eq!(tool.validate(), Ok(()));
        tool.tool_rate_per_min.insert("lookup".into(), 5);
        assert!(tool.validate().unwrap_err().contains("\"lookup\""));

        let mut tool_zero = AccessPolicy::default();
        tool_zero
            .tool_rate_per_min
            .insert("search__lookup".into(), 0);
        assert!(
            tool_zero
                .validate()
                .unwrap_err()
                .contains("tool rate search__lookup")
        );
    }
}
