//! Settings: every one a command-line flag with an environment twin (`fleetdeck --help`).

use crate::telemetry::logging::LogFormat;
use app::wire::{Role, Tier};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Fleetdeck: the control plane of an MCP fleet (gateway and operator dashboard).
#[derive(Debug, Parser)]
#[command(name = "fleetdeck", version, about, long_about = None)]
pub struct Cli {
    /// Directory for Fleetdeck's state (the SQLite database by default); created if missing.
    #[arg(
        long,
        env = "FLEETDECK_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database URL [default: sqlite://<data dir>/fleetdeck.db].
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Log line format (the filter comes from RUST_LOG).
    #[arg(long, env = "FLEETDECK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The database URL in force (an empty DATABASE_URL counts as unset).
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| crate::store::default_database_url(&self.data_dir))
    }
}

/// Fleetdeck's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard.
    Serve(ServeArgs),
    /// Start the demo fleet on loopback, with synthetic traffic, and serve it.
    Demo(DemoArgs),
    /// Serve one demo MCP server (streamable HTTP, or stdio with --stdio).
    DemoServer(DemoServerArgs),
    /// Manage dashboard logins (acts on the same store as a running server).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage assistants and their API keys (a running server sees changes within a second).
    #[command(subcommand)]
    Assistant(AssistantCommand),
    /// Grant, deny or list assistants' tool permissions (a running server sees changes
    /// within a second).
    #[command(subcommand)]
    Permission(PermissionCommand),
    /// Measure the gateway's overhead against direct calls (loopback), or with --dashboard
    /// the dashboard at a thousand instances
    Bench(BenchArgs),
    /// Serve a synthetic fleet on loopback (many servers and instances, large tool
    /// catalogs) and write its fleet file, until interrupted: for scale tests.
    ScaleFleet(ScaleFleetArgs),
}

/// Settings of `fleetdeck scale-fleet`.
#[derive(Debug, Args)]
pub struct ScaleFleetArgs {
    /// Where to write the fleet file (replaced if it exists).
    #[arg(long)]
    pub write_fleet: PathBuf,

    /// Servers.
    #[arg(long, default_value_t = 50, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=500))]
    pub servers: usize,

    /// Instances of each server.
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=200))]
    pub instances: usize,

    /// Tools in each server's catalog.
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub tools: usize,

    /// Assistants declared in the fleet file (tiers in turn: viewer, developer, admin).
    #[arg(long, default_value_t = 100, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000))]
    pub assistants: usize,

    /// Every n-th instance points at a closed port and turns unhealthy (0: none).
    #[arg(long, default_value_t = 17, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1_000_000))]
    pub unreachable_every: usize,
}

/// Settings of `fleetdeck bench` (it keeps its state in a temporary directory, so the
/// global data dir and database URL do not apply).
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds measured per phase (one phase per concurrency and path: direct, gateway).
    #[arg(long, env = "FLEETDECK_BENCH_DURATION_S", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub duration_s: u64,

    /// Concurrent clients of each phase, comma-separated (at most 256, the gateway's
    /// in-flight limit in the bench fleet).
    #[arg(
        long,
        env = "FLEETDECK_BENCH_CONCURRENCY",
        value_delimiter = ',',
        default_value = "1,16,64",
        value_parser = clap::value_parser!(u64).range(1..=256)
    )]
    pub concurrency: Vec<u64>,

    /// Seconds of unmeasured calls before each phase (0: none).
    #[arg(long, env = "FLEETDECK_BENCH_WARMUP_S", default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup_s: u64,

    /// Measure against the TypeScript reference server instead of the demo instance: the
    /// path of `@modelcontextprotocol/server-everything`'s `dist/index.js`, run with the
    /// `node` on PATH (e.g. end2end/node_modules/@modelcontextprotocol/server-everything/dist/index.js).
    #[arg(long, env = "FLEETDECK_BENCH_REFERENCE_SERVER")]
    pub reference_server: Option<std::path::PathBuf>,

    /// Measure the dashboard instead: a synthetic fleet of 1,000 instances (50 servers ×
    /// 20, 200 tools each) and 100 assistants; page render times and sizes, a live
    /// update's bytes, /metrics, and the replica's idle CPU and memory.
    #[arg(long, conflicts_with = "reference_server")]
    pub dashboard: bool,

    /// With --dashboard: loads of each page measured.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub loads: u64,
}

/// Settings of `fleetdeck demo`: everything `serve` takes, plus the traffic rate.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The server settings (the fleet is the demo's own).
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Synthetic tool calls per second through the gateway (0: none).
    #[arg(long, env = "FLEETDECK_DEMO_TRAFFIC", default_value_t = 6.0)]
    pub traffic: f64,
}

/// Settings of `fleetdeck demo-server`.
#[derive(Debug, Args)]
pub struct DemoServerArgs {
    /// Which demo server: search, database, files or notifications.
    #[arg(value_enum)]
    pub kind: crate::demo::DemoKind,

    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,

    /// Instance id reported by the server.
    #[arg(long)]
    pub id: Option<String>,

    /// Speak MCP on stdin/stdout instead of HTTP.
    #[arg(long)]
    pub stdio: bool,
}

/// Settings of `fleetdeck serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Password for the first admin (`admin`), used only when the store has no users; when
    /// unset, one is generated and printed once in the log.
    #[arg(long, env = "FLEETDECK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Directory of the built site (the wasm, JS and CSS that cargo-leptos produces).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Mark the session cookie Secure: set this when users reach Fleetdeck over https.
    #[arg(long, env = "FLEETDECK_SECURE_COOKIE")]
    pub secure_cookie: bool,

    /// Origins (scheme://host[:port]) trusted for changes besides the request's own host,
    /// e.g. the public URL behind a proxy; comma-separated in the environment.
    #[arg(
        long = "allowed-origin",
        env = "FLEETDECK_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// The fleet file (servers, instances, routing); without it the gateway serves no tools.
    #[arg(long, env = "FLEETDECK_FLEET")]
    pub fleet: Option<PathBuf>,

    /// Largest MCP request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "FLEETDECK_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Connections this replica keeps to PostgreSQL at most, one of them listening for the
    /// other replicas' changes; SQLite ignores it.
    #[arg(long, env = "FLEETDECK_DATABASE_MAX_CONNECTIONS", default_value_t = crate::store::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub database_max_connections: u32,

    /// Host names (or host:port) the MCP endpoint accepts besides loopback, e.g. the public
    /// name behind a proxy; comma-separated in the environment.
    #[arg(
        long = "allowed-host",
        env = "FLEETDECK_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client for
    /// login and API-key throttling; comma-separated in the environment. Without it the TCP
    /// peer is the client.
    #[arg(
        long = "trusted-proxy",
        env = "FLEETDECK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,

    /// Let admins add instances at link-local addresses (169.254.0.0/16, fe80::/10), where
    /// cloud metadata services live; refused by default.
    #[arg(long, env = "FLEETDECK_ALLOW_LINK_LOCAL_INSTANCES")]
    pub allow_link_local_instances: bool,

    /// Seconds between active health probes (MCP ping) of each instance.
    #[arg(long, env = "FLEETDECK_PROBE_INTERVAL_S", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub probe_interval_s: u64,

    /// Days the per-minute series (charts) and fleet events (health changes, capacity advice)
    /// are kept.
    #[arg(long, env = "FLEETDECK_SERIES_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub series_retention_days: u32,

    /// Minutes without a request after which a dashboard session ends (decimals allowed,
    /// e.g. 0.5; at most a year).
    #[arg(long, env = "FLEETDECK_SESSION_IDLE_MINUTES", default_value_t = 720.0, value_parser = parse_idle_minutes)]
    pub session_idle_minutes: f64,

    /// Tools (server and tool pairs) with call series of their own on /metrics; calls of
    /// further tools count under their server as tool="_other".
    #[arg(long, env = "FLEETDECK_METRICS_MAX_TOOL_SERIES", default_value_t = crate::telemetry::metrics::DEFAULT_MAX_TOOL_SERIES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=100_000))]
    pub metrics_max_tool_series: usize,

    /// Which traces are kept and where they go.
    #[command(flatten)]
    pub traces: TraceArgs,
}

/// Settings of gateway call traces (recent ones are always kept in memory).
#[derive(Clone, Debug, Args)]
pub struct TraceArgs {
    /// Traces at least this long (ms) are persisted in the database, like failed ones.
    #[arg(long, env = "FLEETDECK_TRACE_SLOW_MS", default_value_t = 500)]
    pub trace_slow_ms: u64,

    /// Share (0 to 1) of the other traces persisted as a sample.
    #[arg(long, env = "FLEETDECK_TRACE_SAMPLE", default_value_t = 0.01, value_parser = parse_ratio)]
    pub trace_sample: f64,

    /// Persisted traces older than this many days are deleted.
    #[arg(long, env = "FLEETDECK_TRACE_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub trace_retention_days: u64,

    /// At most this many persisted traces are kept (the newest).
    #[arg(long, env = "FLEETDECK_TRACE_RETENTION_MAX", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub trace_retention_max: u64,

    /// OTLP/HTTP collector to export every trace to (protobuf), e.g. http://127.0.0.1:4318
    /// (`/v1/traces` is appended unless given); unset: no export.
    #[arg(long, env = "FLEETDECK_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Idle minutes: a positive number, at most a year (525 600).
fn parse_idle_minutes(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(minutes) if minutes > 0.0 && minutes <= 525_600.0 => Ok(minutes),
        _ => Err(format!(
            "{text:?} is not a number of minutes above 0 and at most 525600"
        )),
    }
}

/// A ratio between 0 and 1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("{text:?} is not a ratio between 0 and 1")),
    }
}

/// `fleetdeck user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a login; prints a generated password unless --password-stdin is given.
    Add {
        /// User name (lower-case letters, digits, . _ @ -).
        name: String,
        /// Role: viewer, operator or admin.
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a login's role.
    SetRole {
        /// User name.
        name: String,
        /// New role: viewer, operator or admin.
        role: Role,
    },
    /// Replace a login's password; prints a generated one unless --password-stdin is given.
    ResetPassword {
        /// User name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a login: it cannot log in, and its sessions end at once.
    Disable {
        /// User name.
        name: String,
    },
    /// Enable a disabled login again.
    Enable {
        /// User name.
        name: String,
    },
    /// Delete a login (its sessions end with it).
    Delete {
        /// User name.
        name: String,
    },
    /// End every session of a login, on every replica.
    LogoutEverywhere {
        /// User name.
        name: String,
    },
    /// List logins, their roles and whether they are disabled.
    List,
}

/// `fleetdeck assistant …`.
#[derive(Debug, Subcommand)]
pub enum AssistantCommand {
    /// Add an assistant; prints its first API key, once.
    Add {
        /// Name (lower-case letters, digits, . _ -).
        name: String,
        /// Tier: viewer, developer or admin.
        #[arg(long, default_value = "developer")]
        tier: Tier,
    },
    /// Issue another API key; prints it, once.
    IssueKey {
        /// The assistant.
        name: String,
    },
    /// Revoke an API key (see `assistant list` for key ids); refused from the next call on.
    RevokeKey {
        /// The assistant.
        name: String,
        /// The key's id.
        key_id: i64,
    },
    /// Change an assistant's tier.
    SetTier {
        /// The assistant.
        name: String,
        /// New tier: viewer, developer or admin.
        tier: Tier,
    },
    /// List assistants and their keys.
    List,
}

/// `fleetdeck permission …`. Tools are named `<server>__<tool>`, or `<server>__*` for every
/// tool of a server.
#[derive(Debug, Subcommand)]
pub enum PermissionCommand {
    /// Allow an assistant to call a tool (overrides its tier's patterns).
    Allow(PermissionTarget),
    /// Deny an assistant a tool (overrides its tier's patterns).
    Deny(PermissionTarget),
    /// Remove an explicit entry: the tier's patterns decide again.
    Reset(PermissionTarget),
    /// An assistant's tier patterns and explicit entries.
    List {
        /// The assistant.
        assistant: String,
        /// The fleet file whose [access] section overrides the tier defaults.
        #[arg(long, env = "FLEETDECK_FLEET")]
        fleet: Option<PathBuf>,
    },
}

/// Whose permission for which tool.
#[derive(Debug, Args)]
pub struct PermissionTarget {
    /// The assistant.
    pub assistant: String,
    /// `<server>__<tool>`, or `<server>__*` for all the server's tools.
    pub tool: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_arguments_and_bad_values_are_usage_errors() {
        let err = Cli::try_parse_from(["fleetdeck", "serve", "--no-such-flag"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let err =
            Cli::try_parse_from(["fleetdeck", "user", "set-role", "bob", "root"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err = Cli::try_parse_from(["fleetdeck", "serve", "--addr", "nowhere"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err = Cli::try_parse_from(["fleetdeck", "bench", "--duration-s", "0"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err = Cli::try_parse_from(["fleetdeck", "bench", "--concurrency", "1,0"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        for bad in ["1.5", "-0.1", "lots"] {
            // `=`: a value starting with `-` would otherwise read as a flag.
            let flag = format!("--trace-sample={bad}");
            let err = Cli::try_parse_from(["fleetdeck", "serve", flag.as_str()]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        for bad in ["0", "-1", "525601", "soon"] {
            let flag = format!("--session-idle-minutes={bad}");
            let err = Cli::try_parse_from(["fleetdeck", "serve", flag.as_str()]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        let err =
            Cli::try_parse_from(["fleetdeck", "serve", "--trace-retention-days", "0"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        // A pool of one would leave no connection beside the change listener.
        let err = Cli::try_parse_from(["fleetdeck", "serve", "--database-max-connections", "1"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn the_idle_timeout_takes_fractions_of_a_minute() {
        let serve = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        };
        assert_eq!(serve(&["fleetdeck", "serve"]).session_idle_minutes, 720.0);
        let short = serve(&["fleetdeck", "serve", "--session-idle-minutes", "0.1"]);
        assert_eq!(short.session_idle_minutes, 0.1);
    }

    #[test]
    fn bench_takes_a_comma_list_of_concurrencies() {
        let bench = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Bench(args) => args,
            other => panic!("not bench: {other:?}"),
        };
        let defaults = bench(&["fleetdeck", "bench"]);
        assert_eq!(defaults.concurrency, [1, 16, 64]);
        assert_eq!((defaults.duration_s, defaults.warmup_s), (5, 1));
        let chosen = bench(&[
            "fleetdeck",
            "bench",
            "--concurrency",
            "8,2",
            "--duration-s",
            "120",
            "--warmup-s",
            "0",
        ]);
        assert_eq!(chosen.concurrency, [8, 2]);
        assert_eq!((chosen.duration_s, chosen.warmup_s), (120, 0));
    }

    #[test]
    fn the_database_defaults_to_sqlite_in_the_data_dir() {
        let dir = std::path::Path::new("/var/lib/fd");
        assert_eq!(
            crate::store::default_database_url(dir),
            "sqlite:///var/lib/fd/fleetdeck.db"
        );
        let cli = Cli::try_parse_from(["fleetdeck", "user", "list", "--data-dir", "x"]).unwrap();
        assert_eq!(
            cli.data_dir,
            PathBuf::from("x"),
            "global flags go after the command too"
        );
    }
}
