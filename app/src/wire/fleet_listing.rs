//! The Fleet and Breakers pages at fleet scale: which instances a page lists (the filters
//! its URL carries) and the summary row of every server. Plain data and matching, no I/O:
//! the server builds a [`FleetPageView`] from the whole fleet, the browser builds links
//! from a [`FleetQuery`].

use super::paging::{
    MAX_NAME_CHARS, MAX_SEARCH_CHARS, PagePosition, UrlQuery, check_page, check_text, clip,
    page_param, text_param,
};
use super::{FleetEventView, FleetView, InstanceView, ServerView};
use serde::{Deserialize, Serialize};

/// Instances a page lists at most; the rest are on further pages.
pub const PAGE_SIZE: usize = 50;
/// Servers that may be expanded by name at once.
const MAX_OPEN_SERVERS: usize = 100;

/// A closed set of values a filter takes, with the names the URL and the wire use.
macro_rules! filter_values {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the order the filter offers them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name in URLs and on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value named `text`, or an error that lists the names.
            fn parse(key: &str, text: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!("{key}: {:?} is not one of {}", clip(text), names.join(", "))
                    })
            }
        }
    };
}

filter_values! {
    /// Instances of one observed health.
    HealthFilter {
        /// Not probed yet.
        Unknown => "unknown",
        /// Answering.
        Healthy => "healthy",
        /// Answering with failures or slowly.
        Degraded => "degraded",
        /// Not answering.
        Unhealthy => "unhealthy",
    }
}

filter_values! {
    /// Instances in one admin state.
    AdminFilter {
        /// Taking calls.
        Active => "active",
        /// Taking no new calls, finishing its own.
        Draining => "draining",
        /// Out of service.
        Drained => "drained",
    }
}

filter_values! {
    /// Instances by their breaker.
    BreakerFilter {
        /// Closed.
        Closed => "closed",
        /// Open: routes no calls.
        Open => "open",
        /// Letting probe calls through.
        HalfOpen => "half_open",
        /// Open, half-open, or closed with failures counted: what an on-call engineer looks at.
        Attention => "attention",
    }
}

impl BreakerFilter {
    /// Whether an instance's breaker is one this filter selects.
    fn matches(self, instance: &InstanceView) -> bool {
        match self {
            BreakerFilter::Attention => {
                instance.breaker != "closed" || instance.consecutive_failures > 0
            }
            other => instance.breaker == other.as_str(),
        }
    }
}

/// Which servers show their instances without a filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpenServers {
    /// Every server while the fleet fits on one page (at most [`PAGE_SIZE`] instances),
    /// none beyond: a big fleet is one summary row per server.
    #[default]
    Auto,
    /// These, by name (`open=a,b`; `open=none`: none).
    Named(Vec<String>),
    /// Every server (`open=all`).
    All,
}

/// The order of listed instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstanceOrder {
    /// By server in fleet order, then as the fleet file lists them.
    #[default]
    Fleet,
    /// Breakers that need attention first: open, half-open, closed with failures counted,
    /// then the rest (each group in fleet order).
    Attention,
}

impl InstanceOrder {
    /// An instance's place in this order (lower first).
    fn rank(self, instance: &InstanceView) -> u8 {
        match self {
            InstanceOrder::Fleet => 0,
            InstanceOrder::Attention => match instance.breaker.as_str() {
                "open" => 0,
                "half_open" => 1,
                _ if instance.consecutive_failures > 0 => 2,
                _ => 3,
            },
        }
    }
}

/// What the Fleet page lists: filters, the servers expanded, the page. Every part is
/// optional and lives in the URL, so a view can be bookmarked and shared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetQuery {
    /// Only instances of this health.
    pub health: Option<HealthFilter>,
    /// Only instances in this admin state.
    pub admin: Option<AdminFilter>,
    /// Only instances whose breaker matches.
    pub breaker: Option<BreakerFilter>,
    /// Only this server's instances.
    pub server: Option<String>,
    /// Only instances whose id or endpoint contains this text (any case).
    pub search: Option<String>,
    /// Servers whose instances are shown when no filter is set.
    pub open: OpenServers,
    /// The order of the listed instances (`order=attention`).
    pub order: InstanceOrder,
    /// The page of listed instances, from 1.
    pub page: usize,
}

impl FleetQuery {
    /// Reads a query from URL parameters (`health`, `admin`, `breaker`, `server`, `q`,
    /// `open`, `page`). Empty values mean "not set" (that is what an empty form field
    /// sends); other parameters are ignored; a value out of range is an error that says so.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut query = FleetQuery::default();
        for (key, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key {
                "health" => query.health = Some(HealthFilter::parse(key, value)?),
                "admin" => query.admin = Some(AdminFilter::parse(key, value)?),
                "breaker" => query.breaker = Some(BreakerFilter::parse(key, value)?),
                "server" => query.server = text_param(key, value, MAX_NAME_CHARS)?,
                "q" => query.search = text_param(key, value, MAX_SEARCH_CHARS)?,
                "open" if value == "all" => query.open = OpenServers::All,
                "open" if value == "none" => query.open = OpenServers::Named(Vec::new()),
                "open" => {
                    query.open = OpenServers::Named(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|name| !name.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                "page" => query.page = page_param(key, value)?,
                "order" => {
                    query.order = match value {
                        "fleet" => InstanceOrder::Fleet,
                        "attention" => InstanceOrder::Attention,
                        other => {
                            return Err(format!(
                                "order: {:?} is not one of fleet, attention",
                                clip(other)
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        query.checked()
    }

    /// The query if every part is within bounds (the server checks what a browser sent
    /// with this too); the page is at least 1.
    pub fn checked(mut self) -> Result<Self, String> {
        check_text("server", self.server.as_ref(), MAX_NAME_CHARS)?;
        check_text("q", self.search.as_ref(), MAX_SEARCH_CHARS)?;
        if let OpenServers::Named(names) = &self.open {
            if names.len() > MAX_OPEN_SERVERS {
                return Err(format!("open: at most {MAX_OPEN_SERVERS} servers"));
            }
            if names.iter().any(|n| n.chars().count() > MAX_NAME_CHARS) {
                return Err(format!(
                    "open: server names of at most {MAX_NAME_CHARS} characters"
                ));
            }
        }
        self.page = check_page("page", self.page)?;
        Ok(self)
    }

    /// Whether any filter is set (then every matching instance is listed).
    pub fn is_filtered(&self) -> bool {
        self.health.is_some()
            || self.admin.is_some()
            || self.breaker.is_some()
            || self.server.is_some()
            || self.search.is_some()
    }

    /// Whether the instance passes every filter that is set.
    pub fn matches(&self, instance: &InstanceView) -> bool {
        self.health
            .is_none_or(|health| instance.health == health.as_str())
            && self
                .admin
                .is_none_or(|admin| instance.admin == admin.as_str())
            && self.breaker.is_none_or(|breaker| breaker.matches(instance))
            && self
                .server
                .as_ref()
                .is_none_or(|server| &instance.server == server)
            && self.search.as_ref().is_none_or(|text| {
                let text = text.to_lowercase();
                instance.id.to_lowercase().contains(&text)
                    || instance.endpoint.to_lowercase().contains(&text)
            })
    }

    /// Whether the server's matching instances are listed: under a filter, or expanded
    /// (`small_fleet`: the fleet fits on one page, so [`OpenServers::Auto`] opens all).
    pub fn lists(&self, server: &str, small_fleet: bool) -> bool {
        self.is_filtered()
            || match &self.open {
                OpenServers::Auto => small_fleet,
                OpenServers::All => true,
                OpenServers::Named(names) => names.iter().any(|name| name == server),
            }
    }

    /// The same query with `server` expanded or collapsed, from the first page (`every`:
    /// all servers' names, in fleet order).
    pub fn toggled(&self, server: &str, every: &[String], small_fleet: bool) -> FleetQuery {
        let open_now = |name: &String| self.lists(name, small_fleet) && !self.is_filtered();
        let opening = !every.iter().any(|name| name == server && open_now(name));
        let next: Vec<String> = every
            .iter()
            .filter(|name| {
                if *name == server {
                    opening
                } else {
                    open_now(name)
                }
            })
            .cloned()
            .collect();
        FleetQuery {
            page: 1,
            open: if next.len() == every.len() {
                OpenServers::All
            } else {
                OpenServers::Named(next)
            },
            ..self.clone()
        }
    }
}

impl UrlQuery for FleetQuery {
    fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(health) = self.health {
            pairs.push(("health", health.as_str().to_string()));
        }
        if let Some(admin) = self.admin {
            pairs.push(("admin", admin.as_str().to_string()));
        }
        if let Some(breaker) = self.breaker {
            pairs.push(("breaker", breaker.as_str().to_string()));
        }
        if let Some(server) = &self.server {
            pairs.push(("server", server.clone()));
        }
        if let Some(search) = &self.search {
            pairs.push(("q", search.clone()));
        }
        match &self.open {
            OpenServers::Auto => {}
            OpenServers::All => pairs.push(("open", "all".to_string())),
            OpenServers::Named(names) if names.is_empty() => {
                pairs.push(("open", "none".to_string()))
            }
            OpenServers::Named(names) => pairs.push(("open", names.join(","))),
        }
        if self.order == InstanceOrder::Attention {
            pairs.push(("order", "attention".to_string()));
        }
        pairs
    }

    fn page(&self) -> usize {
        self.page
    }

    fn with_page(&self, page: usize) -> Self {
        FleetQuery {
            page,
            ..self.clone()
        }
    }
}

/// A server as one row: its instances counted by health and admin state, and its load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerSummaryView {
    /// Unique name.
    pub name: String,
    /// Business domain, if the fleet file gives one.
    pub domain: Option<String>,
    /// Balancer strategy, e.g. `least-load`.
    pub strategy: String,
    /// Instances in all.
    pub instances: u32,
    /// Instances by health: healthy, degraded, unhealthy, unknown.
    pub healthy: u32,
    /// Answering with failures or slowly.
    pub degraded: u32,
    /// Not answering.
    pub unhealthy: u32,
    /// Not probed yet.
    pub unknown: u32,
    /// Draining or drained.
    pub out_of_service: u32,
    /// Breakers open or half-open.
    pub breakers_open: u32,
    /// Calls in flight now, over every instance.
    pub in_flight: u32,
    /// Calls per second over every instance.
    pub calls_per_s: f64,
    /// Calls that failed at an instance since this replica started.
    pub failures: u64,
    /// The slowest instance's 99th-percentile latency (ms), once any was called.
    pub p99_ms: Option<f64>,
    /// Instances the page's filters match.
    pub matched: u32,
    /// Whether its matching instances are listed on the page.
    pub listed: bool,
}

impl ServerSummaryView {
    /// The row for `server`, counting what `query` matches.
    fn of(server: &ServerView, query: &FleetQuery, small_fleet: bool) -> Self {
        let count = |pick: &dyn Fn(&InstanceView) -> bool| {
            u32::try_from(server.instances.iter().filter(|i| pick(i)).count()).unwrap_or(u32::MAX)
        };
        let instances = &server.instances;
        ServerSummaryView {
            name: server.name.clone(),
            domain: server.domain.clone(),
            strategy: server.strategy.clone(),
            instances: count(&|_| true),
            healthy: count(&|i| i.health == "healthy"),
            degraded: count(&|i| i.health == "degraded"),
            unhealthy: count(&|i| i.health == "unhealthy"),
            unknown: count(&|i| i.health == "unknown"),
            out_of_service: count(&|i| i.admin != "active"),
            breakers_open: count(&|i| i.breaker != "closed"),
            in_flight: instances.iter().map(|i| i.in_flight).sum(),
            calls_per_s: instances.iter().map(|i| i.calls_per_s).sum(),
            failures: instances.iter().map(|i| i.failures).sum(),
            p99_ms: instances
                .iter()
                .filter_map(|i| i.p99_ms)
                .max_by(f64::total_cmp),
            matched: count(&|i| query.matches(i)),
            listed: query.lists(&server.name, small_fleet),
        }
    }
}

/// One page of the Fleet (or Breakers) page: every server's summary row and the instances
/// the query lists, a page at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetPageView {
    /// Summary rows: every server, or under a filter the servers with a match.
    pub servers: Vec<ServerSummaryView>,
    /// This page's listed instances, by server in fleet order.
    pub instances: Vec<InstanceView>,
    /// Which page of the listed instances this is.
    pub position: PagePosition,
    /// Servers in the fleet.
    pub total_servers: usize,
    /// Instances in the fleet.
    pub total_instances: usize,
    /// Every server's name, for the filters and the add-instance form.
    pub server_names: Vec<String>,
    /// Instances added while running (admins may remove them).
    pub runtime: Vec<InstanceView>,
    /// Server time of this reading (Unix ms).
    pub now_ms: i64,
    /// Recent capacity advice, newest first.
    pub advice: Vec<FleetEventView>,
}

impl FleetPageView {
    /// The page `query` asks for, out of the whole fleet.
    pub fn of(fleet: FleetView, query: &FleetQuery) -> Self {
        let total_servers = fleet.servers.len();
        let total_instances = fleet.servers.iter().map(|s| s.instances.len()).sum();
        let small_fleet = total_instances <= PAGE_SIZE;
        let server_names = fleet.servers.iter().map(|s| s.name.clone()).collect();
        let runtime = fleet
            .servers
            .iter()
            .flat_map(|s| s.instances.iter().filter(|i| i.runtime).cloned())
            .collect();
        let servers: Vec<ServerSummaryView> = fleet
            .servers
            .iter()
            .map(|server| ServerSummaryView::of(server, query, small_fleet))
            .filter(|summary| !query.is_filtered() || summary.matched > 0)
            .collect();
        let mut listed: Vec<InstanceView> = fleet
            .servers
            .into_iter()
            .filter(|server| query.lists(&server.name, small_fleet))
            .flat_map(|server| server.instances)
            .filter(|instance| query.matches(instance))
            .collect();
        // Stable: each group keeps the fleet's order.
        listed.sort_by_key(|instance| query.order.rank(instance));
        let position = PagePosition::new(listed.len(), query.page, PAGE_SIZE);
        FleetPageView {
            servers,
            instances: position.cut(listed),
            position,
            total_servers,
            total_instances,
            server_names,
            runtime,
            now_ms: fleet.now_ms,
            advice: fleet.advice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(server: &str, n: usize, health: &str) -> InstanceView {
        InstanceView {
            id: format!("{server}-{n}"),
            server: server.into(),
            endpoint: format!("http://10.0.{n}.1:7001/mcp"),
            admin: "active".into(),
            health: health.into(),
            breaker: "closed".into(),
            consecutive_failures: 0,
            half_open_in_ms: None,
            in_flight: 1,
            max_in_flight: 64,
            calls: 10,
            failures: 1,
            p50_ms: Some(2.0),
            p99_ms: Some(n as f64),
            last_error: None,
            last_error_age_s: None,
            runtime: false,
            calls_per_s: 0.5,
            health_reason: "answering".into(),
            probe_ms: None,
            error_rate: None,
            utilisation: 0.0,
            scraped: None,
            scrape_error: None,
        }
    }

    /// `servers` servers of `each` instances; every seventh instance is unhealthy.
    fn fleet(servers: usize, each: usize) -> FleetView {
        FleetView {
            servers: (0..servers)
                .map(|s| {
                    let name = format!("srv{s}");
                    ServerView {
                        instances: (0..each)
                            .map(|n| {
                                let health = if (s * each + n).is_multiple_of(7) {
                                    "unhealthy"
                                } else {
                                    "healthy"
                                };
                                instance(&name, n, health)
                            })
                            .collect(),
                        name,
                        domain: None,
                        strategy: "least-load".into(),
                    }
                })
                .collect(),
            now_ms: 0,
            advice: Vec::new(),
        }
    }

    fn query(url: &str) -> Result<FleetQuery, String> {
        FleetQuery::from_pairs(url.split('&').filter_map(|pair| pair.split_once('=')))
    }

    #[test]
    fn queries_read_from_the_url_and_write_back_the_same() {
        let q = query("health=unhealthy&admin=draining&breaker=half_open&server=db&q=10.0&open=a,b&page=3&utm=x").unwrap();
        assert_eq!(q.health, Some(HealthFilter::Unhealthy));
        assert_eq!(q.admin, Some(AdminFilter::Draining));
        assert_eq!(q.breaker, Some(BreakerFilter::HalfOpen));
        assert_eq!(q.open, OpenServers::Named(vec!["a".into(), "b".into()]));
        assert_eq!(q.page, 3);
        assert_eq!(
            q.to_query_string(),
            "health=unhealthy&admin=draining&breaker=half_open&server=db&q=10.0&open=a%2Cb&page=3"
        );
        let empty = query("health=&server=&page=").unwrap();
        assert_eq!(
            empty,
            FleetQuery {
                page: 1,
                ..FleetQuery::default()
            }
        );
        assert_eq!(empty.href("/fleet"), "/fleet");
        assert_eq!(query("open=all").unwrap().href("/fleet"), "/fleet?open=all");
    }

    #[test]
    fn bad_values_are_refused_with_what_is_allowed() {
        assert_eq!(
            query("health=sick").unwrap_err(),
            "health: \"sick\" is not one of unknown, healthy, degraded, unhealthy"
        );
        assert_eq!(
            query("page=two").unwrap_err(),
            "page: \"two\" is not a page number"
        );
        assert!(query(&format!("q={}", "x".repeat(101))).is_err());
        assert!(query(&format!("server={}", "x".repeat(65))).is_err());
        assert!(query("page=100001").is_err());
        let many: Vec<String> = (0..101).map(|n| format!("s{n}")).collect();
        assert!(query(&format!("open={}", many.join(","))).is_err());
        // What a browser sends straight to the server function is held to the same bounds.
        let forged = FleetQuery {
            search: Some("y".repeat(500)),
            ..FleetQuery::default()
        };
        assert!(forged.checked().is_err());
    }

    #[test]
    fn servers_are_summary_rows_until_expanded() {
        let page = FleetPageView::of(fleet(50, 20), &query("").unwrap());
        assert_eq!((page.total_servers, page.total_instances), (50, 1000));
        assert_eq!(page.servers.len(), 50);
        assert!(page.instances.is_empty(), "nothing listed by default");
        let first = &page.servers[0];
        assert_eq!(
            (first.instances, first.unhealthy, first.healthy),
            (20, 3, 17)
        );
        assert_eq!(
            (first.in_flight, first.failures, first.p99_ms),
            (20, 20, Some(19.0))
        );
        assert!((first.calls_per_s - 10.0).abs() < 1e-9);

        let expanded = query("open=srv3").unwrap();
        let page = FleetPageView::of(fleet(50, 20), &expanded);
        assert_eq!(page.instances.len(), 20);
        assert!(page.instances.iter().all(|i| i.server == "srv3"));
        assert!(page.servers[3].listed && !page.servers[2].listed);
        let every = vec!["srv3".to_string(), "srv4".to_string(), "srv5".to_string()];
        assert_eq!(
            expanded.toggled("srv3", &every, false).open,
            OpenServers::Named(vec![])
        );
        assert_eq!(
            expanded.toggled("srv3", &every, false).href("/fleet"),
            "/fleet?open=none"
        );
        assert_eq!(
            expanded.toggled("srv4", &every, false).open,
            OpenServers::Named(vec!["srv3".into(), "srv4".into()])
        );
        let all = query("open=all").unwrap();
        assert_eq!(
            all.toggled("srv3", &every, false).open,
            OpenServers::Named(vec!["srv4".into(), "srv5".into()])
        );
        // Without `open`, a fleet that fits on a page shows every server, a bigger one none.
        let auto = query("").unwrap();
        assert_eq!(auto.open, OpenServers::Auto);
        let small = FleetPageView::of(fleet(3, 4), &auto);
        assert_eq!(small.instances.len(), 12);
        assert!(small.servers.iter().all(|s| s.listed));
        assert_eq!(
            auto.toggled("srv4", &every, true).open,
            OpenServers::Named(vec!["srv3".into(), "srv5".into()])
        );
        assert_eq!(
            auto.toggled("srv4", &every, false).open,
            OpenServers::Named(vec!["srv4".into()])
        );
        assert_eq!(
            query("open=none")
                .unwrap()
                .toggled("srv4", &every, true)
                .open,
            OpenServers::Named(vec!["srv4".into()])
        );
    }

    #[test]
    fn filters_find_exactly_the_matching_instances_a_page_at_a_time() {
        let unhealthy = query("health=unhealthy").unwrap();
        let page = FleetPageView::of(fleet(50, 20), &unhealthy);
        // Every seventh of 1,000: 0, 7, … 994.
        assert_eq!(page.position.listed, 143);
        assert_eq!((page.position.pages, page.instances.len()), (3, PAGE_SIZE));
        assert!(page.instances.iter().all(|i| i.health == "unhealthy"));
        assert!(page.servers.iter().all(|s| s.matched > 0));
        let last = FleetPageView::of(fleet(50, 20), &unhealthy.on_page(3));
        assert_eq!(last.instances.len(), 143 - 2 * PAGE_SIZE);
        let beyond = FleetPageView::of(fleet(50, 20), &unhealthy.on_page(9));
        assert_eq!(
            beyond.position.page, 3,
            "a page past the end shows the last"
        );

        let search = FleetPageView::of(fleet(50, 20), &query("q=SRV12-1").unwrap());
        let ids: Vec<&str> = search.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids.len(), 11, "srv12-1 and srv12-10 … srv12-19: {ids:?}");
        assert_eq!(search.servers.len(), 1);

        let mut tripped = fleet(2, 3);
        tripped.servers[1].instances[2].breaker = "open".into();
        tripped.servers[0].instances[1].consecutive_failures = 2;
        let attention = FleetPageView::of(tripped.clone(), &query("breaker=attention").unwrap());
        let ids: Vec<&str> = attention.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["srv0-1", "srv1-2"]);
        let ordered = FleetPageView::of(tripped, &query("open=all&order=attention").unwrap());
        let ids: Vec<&str> = ordered.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            ["srv1-2", "srv0-1", "srv0-0", "srv0-2", "srv1-0", "srv1-1"]
        );
        assert!(query("order=random").is_err());
    }
}
