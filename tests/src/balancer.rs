//! A tiny round-robin HTTP/1.1 reverse proxy standing in for a load balancer in front of
//! several replicas: each request (not each connection) goes to the next backend, so one
//! keep-alive client's consecutive requests land on different replicas. Response bodies are
//! streamed as they arrive (server-sent events included). Stops when dropped.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Headers that belong to one hop (RFC 9110 §7.6.1), not forwarded either way.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// What the proxy shares between its connections.
struct Shared {
    backends: Vec<SocketAddr>,
    next: AtomicUsize,
    requests: Vec<AtomicUsize>,
    client: Client<HttpConnector, Incoming>,
}

/// A running round-robin proxy on a free loopback port.
pub struct Balancer {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Starts a proxy in front of `backends` (at least one), on 127.0.0.1 with a free port.
    pub async fn start(backends: Vec<SocketAddr>) -> Balancer {
        assert!(!backends.is_empty(), "a balancer needs a backend");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the balancer");
        let addr = listener.local_addr().expect("the balancer's address");
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let shared = Arc::new(Shared {
            requests: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            backends,
            next: AtomicUsize::new(0),
            client,
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set, so that aborting the accept loop ends them too.
            let mut connections = JoinSet::new();
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                };
                let _ = stream.set_nodelay(true);
                let shared = serving.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(forward(&shared, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Balancer { addr, shared, task }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests sent to each backend so far, in the order the backends were given.
    pub fn requests(&self) -> Vec<usize> {
        self.shared
            .requests
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Sends one request to the next backend and hands back its response, body streaming.
async fn forward(shared: &Shared, mut request: Request<Incoming>) -> Response<ProxyBody> {
    let index = shared.next.fetch_add(1, Ordering::Relaxed) % shared.backends.len();
    shared.requests[index].fetch_add(1, Ordering::Relaxed);
    let backend = shared.backends[index];
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let uri: Uri = match format!("http://{backend}{path}").parse() {
        Ok(uri) => uri,
        Err(error) => return bad_gateway(format!("bad target {path:?}: {error}")),
    };
    *request.uri_mut() = uri;
    strip_hop_by_hop(request.headers_mut());
    // The Host header stays the client's, as behind a real load balancer; say who asked.
    request.headers_mut().insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
    match shared.client.request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed_unsync())
        }
        Err(error) => bad_gateway(format!("backend {backend}: {error}")),
    }
}

/// A 502 naming what went wrong.
fn bad_gateway(why: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(why))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
