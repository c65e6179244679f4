//! `fleetdeck demo` and `fleetdeck demo-server`: the demo fleet behind a real gateway.

use crate::access::keys::generate_key;
use crate::config::{DemoArgs, DemoServerArgs};
use crate::demo::{Knobs, fleet, roi_seed, serve_demo_instance, serve_demo_stdio, traffic};
use crate::store::Store;
use anyhow::Context;
use std::path::Path;

/// The file, in the data dir, holding the demo's assistant key.
pub const DEMO_KEY_FILE: &str = "demo-key";

/// The key kept in `file`, or a new one written there.
fn demo_key(file: &Path) -> anyhow::Result<String> {
    if let Ok(kept) = std::fs::read_to_string(file) {
        let kept = kept.trim();
        if kept.chars().count() >= crate::access::control::MIN_DECLARED_KEY_CHARS {
            return Ok(kept.to_string());
        }
    }
    let key = generate_key();
    write_secret(file, &key).with_context(|| format!("writing {}", file.display()))?;
    Ok(key)
}

/// Starts the demo fleet and serves it until SIGINT or SIGTERM.
pub async fn run(args: DemoArgs, database_url: &str, data_dir: &Path) -> anyhow::Result<()> {
    let instances = fleet::start_instances()
        .await
        .context("starting the demo instances")?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    // Keys are kept in the data dir so that a restarted demo keeps its assistants' keys
    // (the store holds their digests).
    let key_file = data_dir.join(DEMO_KEY_FILE);
    let user_key = demo_key(&key_file)?;
    let mut synthetic: Vec<(String, String)> = Vec::new();
    for (name, _) in fleet::SYNTHETIC_ASSISTANTS {
        let key = demo_key(&data_dir.join(format!("{DEMO_KEY_FILE}-{name}")))?;
        synthetic.push((name.to_string(), key));
    }
    let fleet =
        fleet::fleet_file(&instances, &user_key, &synthetic).context("the demo fleet file")?;
    seed_roi(database_url).await;

    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let rate = args.traffic;
    let generator = tokio::spawn(async move {
        let Ok(addr) = ready_rx.await else { return };
        println!("Fleetdeck demo: {} instances of 4 servers", instances.len());
        println!("  dashboard:  http://{addr}/");
        println!("  gateway:    http://{addr}/mcp");
        println!(
            "  your key:   {user_key}   (also in {})",
            key_file.display()
        );
        println!("  try:        Authorization: Bearer <key>, then tools/list");
        traffic::run(format!("http://{addr}/mcp"), synthetic, rate).await;
        // Keeps the instances alive as long as the traffic runs.
        drop(instances);
    });
    let served = super::serve::run_fleet(args.serve, database_url, fleet, Some(ready_tx)).await;
    generator.abort();
    served
}

/// Gives the demo's servers ROI inputs on its first start (never over stored ones). A store
/// that cannot take them costs the demo nothing but the numbers: it is logged.
async fn seed_roi(database_url: &str) {
    let seeded = async {
        let store = Store::open_with(database_url, 2).await?;
        let seeded = roi_seed::seed_roi_inputs(&store).await;
        store.close().await;
        seeded
    };
    match seeded.await {
        Ok(0) => {}
        Ok(servers) => tracing::info!(
            servers,
            "stored the demo's ROI inputs (editable on the ROI page)"
        ),
        Err(error) => tracing::warn!(%error, "cannot store the demo's ROI inputs"),
    }
}

/// Serves one demo server until SIGINT or SIGTERM (HTTP), or until stdin closes (stdio).
pub async fn run_server(args: DemoServerArgs) -> anyhow::Result<()> {
    let id = args
        .id
        .unwrap_or_else(|| format!("{}-{}", args.kind.as_str(), std::process::id()));
    if args.stdio {
        return serve_demo_stdio(args.kind, &id, Knobs::default())
            .await
            .context("serving MCP on stdio");
    }
    let instance = serve_demo_instance(args.kind, &id, args.addr, Knobs::default())
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    // Tests and scripts read this line to find the port.
    println!(
        "{} listening on {}",
        instance.instance_id,
        instance.mcp_url()
    );
    super::serve::shutdown_signal().await;
    instance.shutdown().await;
    Ok(())
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{secret}")
}
