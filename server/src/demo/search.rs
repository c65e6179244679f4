//! The search demo server: a generated document corpus, its inverted index, and the
//! `query`, `lookup` and `reindex` tools.

use super::kind::DemoKind;
use super::server::{Backend, DemoServer, TEAMS};
use rmcp::{
    Json, RoleServer,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::ProgressNotificationParam,
    schemars::JsonSchema,
    service::RequestContext,
    tool, tool_router,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

const SEARCH_DOCUMENTS: usize = 200;
const SEARCH_TOPICS: [&str; 16] = [
    "gateway",
    "breaker",
    "cache",
    "retry",
    "latency",
    "quota",
    "audit",
    "token",
    "session",
    "replica",
    "index",
    "probe",
    "dashboard",
    "tenant",
    "webhook",
    "migration",
];
const SEARCH_ASPECTS: [&str; 10] = [
    "configuration",
    "troubleshooting",
    "limits",
    "metrics",
    "rollout",
    "security",
    "backups",
    "alerts",
    "capacity",
    "upgrades",
];
/// Words too common to rank by.
const STOP_WORDS: [&str; 12] = [
    "the", "of", "and", "for", "in", "to", "a", "an", "how", "with", "on", "is",
];

/// A document of the search corpus.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Document {
    /// The document's id, e.g. "doc-042".
    id: String,
    /// Its title.
    title: String,
    /// Its text.
    body: String,
}

/// One posting: a document and the weight of a term in it (title words count twice).
#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: usize,
    weight: f64,
}

/// An inverted index over the corpus.
#[derive(Debug)]
struct SearchIndex {
    generation: u64,
    postings: HashMap<String, Vec<Posting>>,
}

impl SearchIndex {
    fn add(&mut self, doc: usize, document: &Document) {
        let mut weights: HashMap<String, f64> = HashMap::new();
        for term in terms(&document.title) {
            *weights.entry(term).or_default() += 2.0;
        }
        for term in terms(&document.body) {
            *weights.entry(term).or_default() += 1.0;
        }
        for (term, weight) in weights {
            self.postings
                .entry(term)
                .or_default()
                .push(Posting { doc, weight });
        }
    }

    fn build(documents: &[Document], generation: u64) -> Self {
        let mut index = SearchIndex {
            generation,
            postings: HashMap::new(),
        };
        for (doc, document) in documents.iter().enumerate() {
            index.add(doc, document);
        }
        index
    }
}

/// Lower-cased words of `text`, without stop words.
fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 1)
        .map(str::to_lowercase)
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
}

pub(super) struct SearchBackend {
    documents: Vec<Document>,
    /// Swapped whole by `reindex`, so queries never see a half-built index.
    index: RwLock<Arc<SearchIndex>>,
    /// The newest generation handed out to a rebuild.
    last_generation: AtomicU64,
}

impl SearchBackend {
    fn index(&self) -> Arc<SearchIndex> {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Ranks documents by TF-IDF over the query's terms; ties go to the lower id.
    fn search(&self, query: &str, limit: usize) -> Vec<SearchHit> {
        let index = self.index();
        let total = self.documents.len() as f64;
        let mut scores: HashMap<usize, f64> = HashMap::new();
        for term in terms(query) {
            let Some(postings) = index.postings.get(&term) else {
                continue;
            };
            let idf = (1.0 + total / postings.len() as f64).ln();
            for posting in postings {
                *scores.entry(posting.doc).or_default() += posting.weight * idf;
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .take(limit)
            .map(|(doc, score)| SearchHit {
                id: self.documents[doc].id.clone(),
                title: self.documents[doc].title.clone(),
                // Three decimals keep the output stable and readable.
                score: (score * 1000.0).round() / 1000.0,
            })
            .collect()
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Backend for SearchBackend {
    const KIND: DemoKind = DemoKind::Search;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        let documents: Vec<Document> = (1..=SEARCH_DOCUMENTS)
            .map(|n| {
                let topic = SEARCH_TOPICS[rng.usize(..SEARCH_TOPICS.len())];
                let other = SEARCH_TOPICS[rng.usize(..SEARCH_TOPICS.len())];
                let aspect = SEARCH_ASPECTS[rng.usize(..SEARCH_ASPECTS.len())];
                let second_aspect = SEARCH_ASPECTS[rng.usize(..SEARCH_ASPECTS.len())];
                let team = TEAMS[rng.usize(..TEAMS.len())];
                let title = match rng.u8(..5) {
                    0 => format!("{} of the {topic}", capitalise(aspect)),
                    1 => format!("{} {aspect} checklist", capitalise(topic)),
                    2 => format!("Debugging {topic} {aspect}"),
                    3 => format!("How the {topic} handles {aspect}"),
                    _ => format!("{} and {other}: {aspect} notes", capitalise(topic)),
                };
                let body = format!(
                    "{} {aspect} guide for the {team} team. Covers how the {topic} interacts \
                     with the {other}, {second_aspect}, and the pitfalls seen in production. \
                     Last reviewed in 202{}-Q{}.",
                    capitalise(topic),
                    rng.u8(3..6),
                    rng.u8(1..5),
                );
                Document {
                    id: format!("doc-{n:03}"),
                    title,
                    body,
                }
            })
            .collect();
        let index = SearchIndex::build(&documents, 1);
        Self {
            documents,
            index: RwLock::new(Arc::new(index)),
            last_generation: AtomicU64::new(1),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct QueryArgs {
    /// The search terms.
    q: String,
    /// How many hits to return (1 to 50, default 10).
    #[schemars(range(min = 1, max = 50))]
    limit: Option<u32>,
}

/// One ranked hit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SearchHit {
    /// The document's id, for `lookup`.
    id: String,
    /// The document's title.
    title: String,
    /// Relevance (TF-IDF); higher is better.
    score: f64,
}

/// The result of `query`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct QueryOutput {
    /// Hits, best first.
    hits: Vec<SearchHit>,
}

/// Arguments of `lookup`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct LookupArgs {
    /// The document's id, e.g. "doc-042".
    id: String,
}

/// Arguments of `reindex`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ReindexArgs {
    /// How long the rebuild takes in milliseconds (0 to 60000, default 2000).
    #[schemars(range(min = 0, max = 60000))]
    duration_ms: Option<u64>,
    /// In how many shards the corpus is rebuilt, one progress notification each
    /// (1 to 100, default 10).
    #[schemars(range(min = 1, max = 100))]
    shards: Option<u32>,
}

/// The result of `reindex`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ReindexOutput {
    /// The new index's generation (the index built at start is 1).
    generation: u64,
    /// Documents indexed.
    documents: usize,
    /// Distinct terms in the new index.
    terms: usize,
    /// Shards rebuilt.
    shards: u32,
    /// How long the rebuild took.
    elapsed_ms: u64,
}

#[tool_router]
impl DemoServer<SearchBackend> {
    #[tool(
        description = "Full-text search over the document corpus; returns ranked hits.",
        annotations(
            title = "Search documents",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn query(
        &self,
        Parameters(args): Parameters<QueryArgs>,
    ) -> Result<Json<QueryOutput>, String> {
        let limit = args.limit.unwrap_or(10);
        if !(1..=50).contains(&limit) {
            return Err(format!("limit must be between 1 and 50, got {limit}"));
        }
        if terms(&args.q).next().is_none() {
            return Err("q must contain at least one search term".to_owned());
        }
        let hits = self.backend.search(&args.q, limit as usize);
        Ok(Json(QueryOutput { hits }))
    }

    #[tool(
        description = "Reads one document by id.",
        annotations(
            title = "Read a document",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn lookup(
        &self,
        Parameters(args): Parameters<LookupArgs>,
    ) -> Result<Json<Document>, String> {
        self.backend
            .documents
            .iter()
            .find(|document| document.id == args.id)
            .map(|document| Json(document.clone()))
            .ok_or_else(|| format!("no document {}", args.id))
    }

    #[tool(
        description = "Rebuilds the search index shard by shard (long-running: reports \
                       progress when the request carries a progress token, and stops early \
                       when cancelled, keeping the previous index).",
        annotations(
            title = "Rebuild the search index",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn reindex(
        &self,
        Parameters(args): Parameters<ReindexArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<ReindexOutput>, String> {
        let duration_ms = args.duration_ms.unwrap_or(2_000);
        let shards = args.shards.unwrap_or(10);
        if duration_ms > 60_000 {
            return Err(format!(
                "duration_ms must be at most 60000, got {duration_ms}"
            ));
        }
        if !(1..=100).contains(&shards) {
            return Err(format!("shards must be between 1 and 100, got {shards}"));
        }
        let started = Instant::now();
        let progress_token = context.meta.get_progress_token();
        let step = Duration::from_millis(duration_ms) / shards;
        let documents = &self.backend.documents;
        let per_shard = documents.len().div_ceil(shards as usize).max(1);
        // Taken up front so that concurrent rebuilds get distinct generations.
        let generation = self.backend.last_generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut next = SearchIndex {
            generation,
            postings: HashMap::new(),
        };
        for shard in 0..shards {
            tokio::select! {
                () = tokio::time::sleep(step) => {}
                () = context.ct.cancelled() => {
                    return Err(format!(
                        "reindex cancelled after {shard} of {shards} shards; \
                         the previous index stays in use"
                    ));
                }
            }
            let first = (shard as usize * per_shard).min(documents.len());
            let last = (first + per_shard).min(documents.len());
            for (doc, document) in documents.iter().enumerate().take(last).skip(first) {
                next.add(doc, document);
            }
            if let Some(token) = &progress_token {
                let mut progress =
                    ProgressNotificationParam::new(token.clone(), f64::from(shard + 1));
                progress.total = Some(f64::from(shards));
                progress.message = Some(format!(
                    "indexed shard {} of {shards} ({last} documents)",
                    shard + 1
                ));
                // A caller that went away cannot be told; the rebuild itself goes on until
                // the cancellation token says otherwise.
                if let Err(error) = context.peer.notify_progress(progress).await {
                    tracing::debug!(%error, "could not send a reindex progress notification");
                }
            }
        }
        let terms = next.postings.len();
        {
            let mut index = self
                .backend
                .index
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // A slower rebuild that started earlier must not replace a newer index.
            if index.generation < generation {
                *index = Arc::new(next);
            }
        }
        Ok(Json(ReindexOutput {
            generation,
            documents: documents.len(),
            terms,
            shards,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::serving::test_support::{
        bounded, call, call_params, connect, start, structured, text_of, wait_for_sample,
    };
    use rmcp::{
        ClientHandler, RoleClient,
        model::{CallToolRequest, ClientRequest},
        service::{NotificationContext, PeerRequestOptions},
    };
    use serde_json::{Value, json};
    use std::sync::Mutex;

    /// A client that records the progress notifications it receives.
    #[derive(Clone, Default)]
    struct ProgressRecorder {
        seen: Arc<Mutex<Vec<ProgressNotificationParam>>>,
        changed: Arc<tokio::sync::Notify>,
    }

    impl ProgressRecorder {
        fn seen(&self) -> Vec<ProgressNotificationParam> {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        async fn wait_for(&self, count: usize) {
            loop {
                // Registered before the check, so a notification in between is not lost.
                let changed = self.changed.notified();
                if self.seen().len() >= count {
                    return;
                }
                changed.await;
            }
        }
    }

    impl ClientHandler for ProgressRecorder {
        async fn on_progress(
            &self,
            params: ProgressNotificationParam,
            _context: NotificationContext<RoleClient>,
        ) {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(params);
            self.changed.notify_waiters();
        }
    }

    #[test]
    fn replicas_of_a_kind_share_their_data() {
        let one =
            SearchBackend::generate(&mut fastrand::Rng::with_seed(DemoKind::Search.data_seed()));
        let two =
            SearchBackend::generate(&mut fastrand::Rng::with_seed(DemoKind::Search.data_seed()));
        assert_eq!(one.documents.len(), SEARCH_DOCUMENTS);
        assert!(
            one.documents
                .iter()
                .zip(&two.documents)
                .all(|(a, b)| a.id == b.id && a.title == b.title && a.body == b.body)
        );
    }

    #[tokio::test]
    async fn query_returns_ranked_hits_as_text_and_structured_content() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let client = connect(&instance, ()).await;
            let result = call(
                &client,
                "query",
                json!({ "q": "gateway breaker", "limit": 5 }),
            )
            .await;
            let output: QueryOutput = structured(&result);
            assert!(!output.hits.is_empty() && output.hits.len() <= 5);
            assert!(
                output
                    .hits
                    .windows(2)
                    .all(|pair| pair[0].score >= pair[1].score),
                "hits are ranked best first"
            );
            assert!(output.hits.iter().all(|hit| hit.id.starts_with("doc-")));
            let text: Value = serde_json::from_str(&text_of(&result)).expect("the text is JSON");
            assert_eq!(
                Some(text),
                result.structured_content,
                "text mirrors the structure"
            );

            let default_limit: QueryOutput =
                structured(&call(&client, "query", json!({ "q": "cache" })).await);
            assert!(default_limit.hits.len() <= 10);

            let too_many = call(&client, "query", json!({ "q": "cache", "limit": 51 })).await;
            assert_eq!(too_many.is_error, Some(true));
            assert!(text_of(&too_many).contains("limit must be between 1 and 50"));

            let document: Document =
                structured(&call(&client, "lookup", json!({ "id": output.hits[0].id })).await);
            assert_eq!(document.id, output.hits[0].id);
            assert_eq!(document.title, output.hits[0].title);
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn lookup_of_a_missing_document_is_a_tool_error() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let client = connect(&instance, ()).await;
            let result = call(&client, "lookup", json!({ "id": "doc-999" })).await;
            assert_eq!(result.is_error, Some(true));
            assert_eq!(text_of(&result), "no document doc-999");
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reindex_reports_progress_to_the_caller() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let recorder = ProgressRecorder::default();
            let client = connect(&instance, recorder.clone()).await;
            let result = call(
                &client,
                "reindex",
                json!({ "duration_ms": 200, "shards": 4 }),
            )
            .await;
            let output: ReindexOutput = structured(&result);
            assert_eq!(output.generation, 2);
            assert_eq!(output.shards, 4);
            assert_eq!(output.documents, SEARCH_DOCUMENTS);
            assert!(output.terms > 20);
            recorder.wait_for(4).await;
            let seen = recorder.seen();
            let progress: Vec<f64> = seen.iter().map(|param| param.progress).collect();
            assert_eq!(progress, vec![1.0, 2.0, 3.0, 4.0]);
            assert!(seen.iter().all(|param| param.total == Some(4.0)));
            assert!(seen.iter().all(|param| param.message.is_some()));

            // The rebuilt index answers queries like the first one.
            let hits: QueryOutput =
                structured(&call(&client, "query", json!({ "q": "cache" })).await);
            assert!(!hits.hits.is_empty());
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reindex_stops_early_when_cancelled() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let recorder = ProgressRecorder::default();
            let client = connect(&instance, recorder.clone()).await;
            let started = Instant::now();
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(call_params(
                "reindex",
                json!({ "duration_ms": 30_000, "shards": 100 }),
            )));
            let handle = client
                .send_cancellable_request(request, PeerRequestOptions::no_options())
                .await
                .expect("the call is sent");
            recorder.wait_for(2).await;
            handle
                .cancel(Some("the test is done waiting".to_owned()))
                .await
                .expect("the cancellation is sent");
            wait_for_sample(
                &instance,
                "demo_tool_calls_total{tool=\"reindex\",outcome=\"cancelled\"}",
                1.0,
            )
            .await;
            wait_for_sample(&instance, "demo_in_flight", 0.0).await;
            assert!(started.elapsed() < Duration::from_secs(10), "stopped early");
            let sent = recorder.seen().len();
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert_eq!(
                recorder.seen().len(),
                sent,
                "no progress after the cancellation"
            );
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }
}
