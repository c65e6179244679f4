//! The site's static assets (`/pkg/`: the wasm, its JS glue, the stylesheet) and how they
//! are cached and compressed.
//!
//! A release bundle (`make release`) has hashed names (`fleetdeck.<hash>.wasm`, listed in
//! the site root's `hash.txt`) and precompressed `.br` and `.gz` files beside each asset:
//! those are served as they are, to clients that accept them, and cached for a year
//! (`immutable`: a new build has new names). A debug build's assets keep their plain names
//! and are revalidated on every load (`no-cache`). Everything else the dashboard sends
//! (pages, server functions, charts) is compressed on the fly by the router's gzip layer,
//! and is `no-cache` unless its handler says otherwise.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use axum::middleware::Next;
use axum::response::Response;
use std::path::{Path, PathBuf};
use tower_http::services::ServeDir;

/// The name of the file that lists the hashed assets' hashes, in the site root.
pub const HASH_FILE: &str = "hash.txt";
/// How long browsers keep a hashed asset: a year, without asking again.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Revalidate before each use: pages, data, and assets whose names do not change.
const NO_CACHE: &str = "no-cache";

/// What the site root holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteAssets {
    /// The site root.
    pub root: PathBuf,
    /// The hash file, if the assets have hashed names.
    pub hash_file: Option<PathBuf>,
    /// The stylesheet's URL.
    pub stylesheet: String,
}

impl SiteAssets {
    /// Reads the site root: hashed names when it holds a [`HASH_FILE`] naming the CSS.
    /// A hash file that cannot be read or lacks the CSS is an error (the pages would link
    /// to assets that are not there).
    pub fn read(root: &Path, output_name: &str) -> Result<SiteAssets, String> {
        let hash_path = root.join(HASH_FILE);
        if !hash_path.is_file() {
            return Ok(SiteAssets {
                root: root.to_path_buf(),
                hash_file: None,
                stylesheet: format!("/pkg/{output_name}.css"),
            });
        }
        let text = std::fs::read_to_string(&hash_path)
            .map_err(|e| format!("cannot read {}: {e}", hash_path.display()))?;
        let css = hash_of(&text, "css")
            .ok_or_else(|| format!("{} names no css hash", hash_path.display()))?;
        Ok(SiteAssets {
            root: root.to_path_buf(),
            hash_file: Some(std::fs::canonicalize(&hash_path).unwrap_or(hash_path)),
            stylesheet: format!("/pkg/{output_name}.{css}.css"),
        })
    }

    /// Whether the assets have hashed names.
    pub fn hashed(&self) -> bool {
        self.hash_file.is_some()
    }

    /// `/pkg/`: the assets, precompressed where the build made `.br`/`.gz` files, with the
    /// cache policy their names allow.
    pub fn pkg_routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let files = ServeDir::new(self.root.join("pkg"))
            .precompressed_br()
            .precompressed_gzip();
        let policy = if self.hashed() { IMMUTABLE } else { NO_CACHE };
        Router::new()
            .nest_service("/pkg", files)
            .layer(axum::middleware::from_fn(move |request, next| {
                cache_for(policy, request, next)
            }))
    }
}

/// The hash of `kind` (`js`, `wasm`, `css`) in a hash file's `kind: hash` lines.
fn hash_of<'a>(text: &'a str, kind: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (name, hash) = line.split_once(':')?;
        let hash = hash.trim();
        // Hashes are URL-safe base64: anything else would make a broken or unsafe URL.
        (name.trim() == kind
            && !hash.is_empty()
            && hash
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then_some(hash)
    })
}

/// Sets `policy` on successful answers.
async fn cache_for(policy: &'static str, request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status().as_u16() == 304 {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// Every other answer of the dashboard: `no-cache` unless its handler chose a policy.
pub async fn revalidate_by_default(request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(NO_CACHE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_file_gives_hashed_names() {
        let dir = tempfile::tempdir().unwrap();
        let plain = SiteAssets::read(dir.path(), "fleetdeck").unwrap();
        assert_eq!(
            (plain.hashed(), plain.stylesheet.as_str()),
            (false, "/pkg/fleetdeck.css")
        );
        std::fs::write(
            dir.path().join(HASH_FILE),
            "js: MC2_Zl_2kFE42xbjU2eOjQ\nwasm: lTE4k8vB5QWIlt1-sMjPOg\ncss: W7UHuQdx0STGE9F1bY9Zbg\n",
        )
        .unwrap();
        let hashed = SiteAssets::read(dir.path(), "fleetdeck").unwrap();
        assert!(hashed.hashed());
        assert_eq!(
            hashed.stylesheet,
            "/pkg/fleetdeck.W7UHuQdx0STGE9F1bY9Zbg.css"
        );
        std::fs::write(dir.path().join(HASH_FILE), "css: ../../etc\n").unwrap();
        assert!(
            SiteAssets::read(dir.path(), "fleetdeck").is_err(),
            "not a hash"
        );
        std::fs::write(dir.path().join(HASH_FILE), "js: abc\n").unwrap();
        assert!(SiteAssets::read(dir.path(), "fleetdeck").is_err(), "no css");
    }
}
