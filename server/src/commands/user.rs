//! `fleetdeck user …`: dashboard logins from scripts, on the same store as the server.

use crate::access::UserDirectory;
use crate::access::password::generate_password;
use crate::config::UserCommand;
use crate::store::Store;
use anyhow::{Context, bail};
use std::io::BufRead;

/// The actor recorded in the audit log for CLI changes.
const CLI_ACTOR: &str = "cli";

/// Runs one user command, printing its result on stdout.
pub async fn run(command: UserCommand, database_url: &str) -> anyhow::Result<()> {
    let store = Store::open(database_url).await?;
    let users = UserDirectory::new(store.clone());
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let (password, generated) = password_from(password_stdin)?;
            users.add(CLI_ACTOR, &name, role, &password).await?;
            println!("added {name} ({role})");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::SetRole { name, role } => {
            let change = users.set_role(CLI_ACTOR, &name, role).await?;
            println!("{name}: {} -> {}", change.before, change.after);
        }
        UserCommand::ResetPassword {
            name,
            password_stdin,
        } => {
            let (password, generated) = password_from(password_stdin)?;
            users.reset_password(CLI_ACTOR, &name, &password).await?;
            println!("password of {name} replaced");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Disable { name } => {
            let changed = users.set_disabled(CLI_ACTOR, &name, true).await?;
            println!(
                "{name} {}",
                if changed {
                    "disabled; its sessions ended"
                } else {
                    "was already disabled"
                }
            );
        }
        UserCommand::Enable { name } => {
            let changed = users.set_disabled(CLI_ACTOR, &name, false).await?;
            println!(
                "{name} {}",
                if changed {
                    "enabled"
                } else {
                    "was already enabled"
                }
            );
        }
        UserCommand::Delete { name } => {
            users.delete(CLI_ACTOR, &name).await?;
            println!("deleted {name}");
        }
        UserCommand::LogoutEverywhere { name } => {
            users.logout_everywhere(CLI_ACTOR, &name).await?;
            println!("every session of {name} ended");
        }
        UserCommand::List => {
            for user in store.list_users().await? {
                let state = if user.is_enabled() { "" } else { "\tdisabled" };
                println!("{}\t{}{state}", user.username, user.role);
            }
        }
    }
    store.close().await;
    Ok(())
}

/// The password from stdin's first line, or a generated one (`true` when generated).
fn password_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if !stdin {
        return Ok((generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok((password, false))
}
