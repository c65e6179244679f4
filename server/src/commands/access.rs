//! `fleetdeck assistant …` and `fleetdeck permission …`: assistants, keys and permissions
//! from scripts and CI, on the same store as the server. A running server notices the
//! change through the store's access revision within a second.

use crate::access::control::AccessControl;
use crate::access::policy::AccessPolicy;
use crate::config::fleet::FleetFile;
use crate::config::{AssistantCommand, PermissionCommand, PermissionTarget};
use crate::store::Store;
use anyhow::{Context, bail};
use app::wire::{Decision, format_timestamp_utc};

/// The actor recorded in the audit log for CLI changes.
const CLI_ACTOR: &str = "cli";

/// Runs one assistant command, printing its result on stdout.
pub async fn run_assistant(command: AssistantCommand, database_url: &str) -> anyhow::Result<()> {
    let store = Store::open(database_url).await?;
    let access = AccessControl::load(store.clone(), AccessPolicy::default()).await?;
    match command {
        AssistantCommand::Add { name, tier } => {
            let issued = access.add_assistant(CLI_ACTOR, &name, tier).await?;
            println!("added {name} ({tier})");
            print_key(&issued.key, issued.key_id);
        }
        AssistantCommand::IssueKey { name } => {
            let issued = access.issue_key(CLI_ACTOR, &name).await?;
            print_key(&issued.key, issued.key_id);
        }
        AssistantCommand::RevokeKey { name, key_id } => {
            access.revoke_key(CLI_ACTOR, &name, key_id).await?;
            println!("revoked key {key_id} of {name}");
        }
        AssistantCommand::SetTier { name, tier } => {
            let before = access
                .tier_of(&name)
                .with_context(|| format!("assistant {name} not found"))?;
            access.set_tier(CLI_ACTOR, &name, tier).await?;
            println!("{name}: {before} -> {tier}");
        }
        AssistantCommand::List => {
            for assistant in access.assistants() {
                println!("{}\t{}", assistant.name, assistant.tier);
                for key in &assistant.keys {
                    let state = match key.revoked_at_ms {
                        Some(at) => format!("revoked {}", format_timestamp_utc(at)),
                        None => "active".to_string(),
                    };
                    let used = key.last_used_at_ms.map_or_else(
                        || "never used".to_string(),
                        |at| format!("last used {}", format_timestamp_utc(at)),
                    );
                    println!("  key {}\t{}…\t{state}\t{used}", key.id, key.prefix);
                }
            }
        }
    }
    store.close().await;
    Ok(())
}

/// Runs one permission command, printing its result on stdout.
pub async fn run_permission(command: PermissionCommand, database_url: &str) -> anyhow::Result<()> {
    let policy = match &command {
        PermissionCommand::List {
            fleet: Some(path), ..
        } => FleetFile::load(path)?.access_policy(),
        _ => AccessPolicy::default(),
    };
    let store = Store::open(database_url).await?;
    let access = AccessControl::load(store.clone(), policy).await?;
    let (target, decision) = match command {
        PermissionCommand::Allow(target) => (target, Some(Decision::Allow)),
        PermissionCommand::Deny(target) => (target, Some(Decision::Deny)),
        PermissionCommand::Reset(target) => (target, None),
        PermissionCommand::List { assistant, .. } => {
            let tier = access
                .tier_of(&assistant)
                .with_context(|| format!("assistant {assistant} not found"))?;
            let patterns = &access.policy().tier(tier).patterns;
            println!("{assistant}\ttier {tier}\tpatterns {}", patterns.join(" "));
            for (server, tool, decision) in access.explicit_permissions(&assistant)? {
                println!("{server}__{tool}\t{}\texplicit", decision.as_str());
            }
            store.close().await;
            return Ok(());
        }
    };
    let PermissionTarget { assistant, tool } = target;
    let Some((server, tool_name)) = tool.split_once("__") else {
        bail!("{tool:?}: name the tool as <server>__<tool> (or <server>__* for all its tools)");
    };
    access
        .set_permission(CLI_ACTOR, &assistant, server, tool_name, decision)
        .await?;
    match decision {
        Some(decision) => println!("{assistant}: {tool} {}", decision.as_str()),
        None => println!("{assistant}: {tool} back to the tier's patterns"),
    }
    store.close().await;
    Ok(())
}

fn print_key(key: &str, key_id: i64) {
    println!("key {key_id}: {key}");
    println!("(shown once: it is stored only as a digest)");
}
