//! `fleetdeck scale-fleet`: serves a synthetic fleet on loopback and writes its fleet file,
//! until interrupted. Point `fleetdeck serve --fleet <that file>` at it to see the
//! dashboard and the gateway at a thousand instances.

use crate::config::ScaleFleetArgs;
use crate::demo::scale::{ScaleFleet, ScaleSpec};
use anyhow::Context;

/// Runs until SIGINT or SIGTERM.
pub async fn run(args: ScaleFleetArgs) -> anyhow::Result<()> {
    let spec = ScaleSpec {
        servers: args.servers,
        instances_per_server: args.instances,
        tools_per_server: args.tools,
        assistants: args.assistants,
        unreachable_every: args.unreachable_every,
    };
    let fleet = ScaleFleet::start(spec)
        .await
        .context("starting the synthetic servers")?;
    // Written whole, then renamed: a reader never sees half a file.
    let partial = args.write_fleet.with_extension("partial");
    std::fs::write(&partial, fleet.fleet_file())
        .and_then(|()| std::fs::rename(&partial, &args.write_fleet))
        .with_context(|| format!("writing {}", args.write_fleet.display()))?;
    println!(
        "synthetic fleet ready: {} servers × {} instances, {} tools each, {} assistants; fleet file {}",
        spec.servers,
        spec.instances_per_server,
        spec.tools_per_server,
        spec.assistants,
        args.write_fleet.display()
    );
    super::serve::shutdown_signal().await;
    fleet.shutdown().await;
    Ok(())
}
