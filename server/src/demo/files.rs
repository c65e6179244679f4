//! The files demo server: a generated in-memory file tree and the `read_file`,
//! `list_dir` and `write_file` tools.

use super::kind::DemoKind;
use super::server::{Backend, DemoServer, TEAMS};
use rmcp::{
    Json,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    schemars::JsonSchema,
    tool, tool_router,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{PoisonError, RwLock};

/// The largest file `write_file` accepts.
const MAX_FILE_BYTES: usize = 64 * 1024;
/// The most files the tree holds, to bound memory under synthetic traffic.
const MAX_FILES: usize = 1_000;
/// The longest path accepted.
const MAX_PATH_BYTES: usize = 256;

pub(super) struct FilesBackend {
    /// Absolute file path → content; directories are implied by the paths.
    files: RwLock<BTreeMap<String, String>>,
}

/// Normalises an absolute path: `/a//b/./c` → `/a/b/c`; `..` is refused.
fn normalise_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "path must be absolute (start with /), got '{path}'"
        ));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("path is longer than {MAX_PATH_BYTES} bytes"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("'..' is not allowed in paths, got '{path}'")),
            part => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `path` with a trailing slash, the prefix of everything inside it.
fn dir_prefix(path: &str) -> String {
    if path == "/" {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

impl FilesBackend {
    fn files(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, String>> {
        self.files.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_dir(files: &BTreeMap<String, String>, path: &str) -> bool {
        let prefix = dir_prefix(path);
        path == "/"
            || files
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(key, _)| key.starts_with(&prefix))
    }

    fn read(&self, path: &str) -> Result<FileOutput, String> {
        let path = normalise_path(path)?;
        let files = self.files();
        match files.get(&path) {
            Some(content) => Ok(FileOutput {
                bytes: content.len(),
                content: content.clone(),
                path,
            }),
            None if Self::is_dir(&files, &path) => {
                Err(format!("{path} is a directory; use list_dir"))
            }
            None => Err(format!("no such file {path}")),
        }
    }

    fn list(&self, path: &str) -> Result<DirOutput, String> {
        let path = normalise_path(path)?;
        let files = self.files();
        if files.contains_key(&path) {
            return Err(format!("{path} is a file; use read_file"));
        }
        let prefix = dir_prefix(&path);
        let mut entries: BTreeMap<String, DirEntry> = BTreeMap::new();
        for (key, content) in files.range(prefix.clone()..) {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    entries.entry(dir.to_owned()).or_insert_with(|| DirEntry {
                        name: dir.to_owned(),
                        kind: "dir".to_owned(),
                        bytes: None,
                    });
                }
                None => {
                    entries.insert(
                        rest.to_owned(),
                        DirEntry {
                            name: rest.to_owned(),
                            kind: "file".to_owned(),
                            bytes: Some(content.len()),
                        },
                    );
                }
            }
        }
        if entries.is_empty() && path != "/" {
            return Err(format!("no such directory {path}"));
        }
        Ok(DirOutput {
            path,
            entries: entries.into_values().collect(),
        })
    }

    fn write(&self, path: &str, content: String) -> Result<WriteOutput, String> {
        let path = normalise_path(path)?;
        if path == "/" {
            return Err("cannot write to / (it is a directory)".to_owned());
        }
        if content.len() > MAX_FILE_BYTES {
            return Err(format!(
                "content is {} bytes; files are limited to {MAX_FILE_BYTES}",
                content.len()
            ));
        }
        let mut files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        if Self::is_dir(&files, &path) {
            return Err(format!("{path} is a directory"));
        }
        // Every ancestor must be a directory (or not exist yet), never a file.
        let mut ancestor = path.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if parent.is_empty() {
                break;
            }
            if files.contains_key(parent) {
                return Err(format!("{parent} is a file, so {path} cannot be created"));
            }
            ancestor = parent;
        }
        let created = !files.contains_key(&path);
        if created && files.len() >= MAX_FILES {
            return Err(format!(
                "the tree is full ({MAX_FILES} files); overwrite an existing file instead"
            ));
        }
        let bytes = content.len();
        files.insert(path.clone(), content);
        Ok(WriteOutput {
            path,
            bytes,
            created,
        })
    }
}

impl Backend for FilesBackend {
    const KIND: DemoKind = DemoKind::Files;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        let mut files = BTreeMap::new();
        let mut add = |path: &str, content: String| {
            files.insert(path.to_owned(), content);
        };
        add(
            "/README.md",
            "# Acme services\n\nRunbooks, configuration and recent logs of the Acme API.\n\
             See docs/ for runbooks and config/ for the live settings.\n"
                .to_owned(),
        );
        add(
            "/docs/runbook.md",
            "# Runbook\n\n1. Check the gateway dashboard for open breakers.\n\
             2. Drain the unhealthy instance.\n3. Page the owning team if errors persist.\n"
                .to_owned(),
        );
        add(
            "/docs/architecture.md",
            "# Architecture\n\nClients call the gateway, which routes each tool call to a \
             healthy instance and records a trace.\n"
                .to_owned(),
        );
        add(
            "/docs/oncall.md",
            format!(
                "# On-call\n\nPrimary: {} team. Secondary: {} team.\nEscalate after 15 minutes.\n",
                TEAMS[rng.usize(..TEAMS.len())],
                TEAMS[rng.usize(..TEAMS.len())]
            ),
        );
        add(
            "/config/gateway.toml",
            format!(
                "[gateway]\nlisten = \"0.0.0.0:8080\"\ntimeout_ms = {}\nmax_in_flight = {}\n",
                rng.u32(2..10) * 500,
                rng.u32(4..16) * 8
            ),
        );
        add(
            "/config/limits.json",
            format!(
                "{{\n  \"free\": {{ \"per_minute\": {} }},\n  \"pro\": {{ \"per_minute\": {} }}\n}}\n",
                rng.u32(1..6) * 10,
                rng.u32(3..12) * 100
            ),
        );
        add(
            "/src/main.rs",
            "fn main() {\n    acme::serve();\n}\n".to_owned(),
        );
        add(
            "/src/handlers/orders.rs",
            "pub fn list_orders() -> Vec<Order> {\n    Vec::new()\n}\n".to_owned(),
        );
        add(
            "/src/handlers/users.rs",
            "pub fn find_user(id: u64) -> Option<User> {\n    None\n}\n".to_owned(),
        );
        const LEVELS: [&str; 4] = ["INFO", "INFO", "WARN", "ERROR"];
        const EVENTS: [&str; 4] = [
            "request served",
            "cache miss",
            "upstream slow",
            "retrying call",
        ];
        for day in 1..=7 {
            let mut log = String::new();
            for line in 0..25 {
                let _ = writeln!(
                    log,
                    "2025-01-0{day}T{:02}:{:02}:{:02}Z {:5} {} latency_ms={}",
                    line % 24,
                    rng.u8(..60),
                    rng.u8(..60),
                    LEVELS[rng.usize(..LEVELS.len())],
                    EVENTS[rng.usize(..EVENTS.len())],
                    rng.u32(1..400)
                );
            }
            add(&format!("/logs/app-2025-01-0{day}.log"), log);
        }
        Self {
            files: RwLock::new(files),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ReadFileArgs {
    /// Absolute path, e.g. "/docs/runbook.md".
    path: String,
}

/// The result of `read_file`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(super) struct FileOutput {
    /// The normalised path.
    path: String,
    /// Size in bytes.
    bytes: usize,
    /// The file's text.
    pub(super) content: String,
}

/// Arguments of `list_dir`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ListDirArgs {
    /// Absolute directory path (default "/").
    path: Option<String>,
}

/// The result of `list_dir`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct DirOutput {
    /// The normalised directory path.
    path: String,
    /// Its entries, by name.
    entries: Vec<DirEntry>,
}

/// One directory entry.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct DirEntry {
    /// The entry's name (no slashes).
    name: String,
    /// "file" or "dir".
    kind: String,
    /// A file's size in bytes (absent for directories).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
}

/// Arguments of `write_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct WriteFileArgs {
    /// Absolute path; missing directories are created.
    path: String,
    /// The new content (at most 64 KiB), replacing any previous content.
    content: String,
}

/// The result of `write_file`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct WriteOutput {
    /// The normalised path.
    path: String,
    /// Bytes written.
    bytes: usize,
    /// Whether the file is new (false: it was replaced).
    created: bool,
}

#[tool_router]
impl DemoServer<FilesBackend> {
    #[tool(
        description = "Reads a text file.",
        annotations(
            title = "Read a file",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn read_file(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<Json<FileOutput>, String> {
        self.backend.read(&args.path).map(Json)
    }

    #[tool(
        description = "Lists a directory's files and subdirectories.",
        annotations(
            title = "List a directory",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_dir(
        &self,
        Parameters(args): Parameters<ListDirArgs>,
    ) -> Result<Json<DirOutput>, String> {
        self.backend
            .list(args.path.as_deref().unwrap_or("/"))
            .map(Json)
    }

    #[tool(
        description = "Creates or replaces a text file (writing the same content twice \
                       leaves the same tree).",
        annotations(
            title = "Write a file",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn write_file(
        &self,
        Parameters(args): Parameters<WriteFileArgs>,
    ) -> Result<Json<WriteOutput>, String> {
        self.backend.write(&args.path, args.content).map(Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::serving::test_support::{bounded, call, connect, start, structured, text_of};
    use serde_json::json;

    #[test]
    fn file_paths_are_normalised_and_confined() {
        assert_eq!(normalise_path("/a//b/./c/").as_deref(), Ok("/a/b/c"));
        assert_eq!(normalise_path("/").as_deref(), Ok("/"));
        assert!(normalise_path("relative").is_err());
        assert!(normalise_path("/a/../etc/passwd").is_err());
        let files = FilesBackend::generate(&mut fastrand::Rng::with_seed(1));
        assert!(files.write("/README.md/inner", "x".to_owned()).is_err());
        assert!(files.write("/docs", "x".to_owned()).is_err());
        let error = files.read("/docs").expect_err("a directory");
        assert!(error.contains("is a directory"), "{error}");
    }

    #[tokio::test]
    async fn files_are_listed_read_and_written() {
        bounded(async {
            let instance = start(DemoKind::Files).await;
            let client = connect(&instance, ()).await;
            let root: DirOutput = structured(&call(&client, "list_dir", json!({})).await);
            let names: Vec<&str> = root
                .entries
                .iter()
                .map(|entry| entry.name.as_str())
                .collect();
            assert_eq!(names, vec!["README.md", "config", "docs", "logs", "src"]);

            let written: WriteOutput = structured(
                &call(
                    &client,
                    "write_file",
                    json!({ "path": "/notes/today.md", "content": "ship it" }),
                )
                .await,
            );
            assert!(written.created);
            let again: WriteOutput = structured(
                &call(
                    &client,
                    "write_file",
                    json!({ "path": "/notes//today.md", "content": "ship it" }),
                )
                .await,
            );
            assert!(!again.created, "writing again replaces the same file");
            let read: FileOutput =
                structured(&call(&client, "read_file", json!({ "path": "/notes/today.md" })).await);
            assert_eq!(read.content, "ship it");

            let missing = call(&client, "read_file", json!({ "path": "/nope.txt" })).await;
            assert_eq!(missing.is_error, Some(true));
            assert_eq!(text_of(&missing), "no such file /nope.txt");
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }
}
