//! HTTP clients to instances, shared by every instance with the same settings rather than
//! built per instance. Each reqwest client reads and parses the system's root certificates
//! when it is built (rustls-platform-verifier) and keeps them with its own connection pool:
//! at a thousand instances, a client each held about 300 MB (`fleetdeck bench --dashboard`).
//! A shared client still pools connections per host, so instances do not queue behind
//! each other.

use super::{AddressPolicy, LinkLocalFilter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// What makes two instances' clients differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKind {
    /// Idle connections kept per host (0: a new connection per request).
    pub idle_per_host: usize,
    /// Which addresses may be reached.
    pub policy: AddressPolicy,
}

/// The process's client for `kind`, built on first use and shared afterwards.
pub fn shared(kind: ClientKind) -> Result<reqwest::Client, reqwest::Error> {
    static CLIENTS: OnceLock<ClientCache> = OnceLock::new();
    CLIENTS.get_or_init(ClientCache::default).get(kind)
}

/// Clients by kind.
#[derive(Default)]
struct ClientCache {
    clients: Mutex<HashMap<ClientKind, reqwest::Client>>,
}

impl ClientCache {
    fn get(&self, kind: ClientKind) -> Result<reqwest::Client, reqwest::Error> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&kind) {
            return Ok(client.clone());
        }
        let client = build(kind)?;
        clients.insert(kind, client.clone());
        Ok(client)
    }

    #[cfg(test)]
    fn built(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn build(kind: ClientKind) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        // An instance (or whoever answers at its address) cannot send the gateway
        // elsewhere: a redirect is an error, not a new destination.
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_max_idle_per_host(kind.idle_per_host);
    if kind.policy == AddressPolicy::NoLinkLocal {
        // No proxy either: it would resolve the name itself, past the filter.
        builder = builder.no_proxy().dns_resolver(Arc::new(LinkLocalFilter));
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_with_the_same_settings_share_one_client() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cache = ClientCache::default();
        let kind = ClientKind {
            idle_per_host: 7,
            policy: AddressPolicy::NoLinkLocal,
        };
        for _ in 0..1000 {
            cache.get(kind).unwrap();
        }
        assert_eq!(cache.built(), 1);
        cache
            .get(ClientKind {
                idle_per_host: 0,
                ..kind
            })
            .unwrap();
        assert_eq!(cache.built(), 2);
    }
}
