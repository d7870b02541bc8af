//! The prober: measures what a client of the site experiences during a change.
//!
//! Every `interval` (default 50 ms) it starts one probe, as a client would: resolve the site
//! (a fixed address for shared-ip and NAT — the shared IP or the public VIP —, or through a
//! given DNS server with a TTL-honouring cache for dns), open a NEW verified TLS connection
//! with the site hostname as SNI (custom CA or system roots; verification is never
//! disabled), and `GET /check_health`. A healthy probe then asks the command API
//! `action=check_health` over the same route which appliance answered (`<appliance id=...>`),
//! with an OAuth token reused until a 401 (then exactly one new token is fetched: the vendor
//! caps live tokens at 30). Probes run concurrently, so a hanging connection never hides
//! the probes after it; each is bounded by `timeout`.
//!
//! The identification is a second connection right after the health call: at the instant of
//! a swing the two may reach different appliances. Downtime is measured from the health
//! calls alone, so this cannot hide an outage.
//!
//! Owns: [`Prober::start`], the [`ProbeHandle`], and the probe's network conversation.
//! Must not: send traffic anywhere but the site route and the given DNS server, log or
//! report the client secret or the token, disable TLS verification, or panic on anything
//! a server sends.

mod report;
mod site;
#[cfg(test)]
mod tests;

pub use report::{MAX_FAILURES_LISTED, Outage, ProbeRecord, ProbeReport, Served};
pub use site::{SiteProbe, SiteRoute, route_for};

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use swing_schema::SecretValue;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::beyondtrust::xml::parse_check_health;

/// Default time between probe starts.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);
/// Default bound on one probe (connect + TLS + answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How a client reaches the site.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// Connect to this address: the shared IP (shared-ip) or the public VIP (nat).
    Address(IpAddr),
    /// Resolve the site through this DNS server, caching answers for their TTL like a
    /// client's stub resolver does.
    Dns { server: SocketAddr },
    /// Resolve the site as this machine's programs do (the system resolver).
    System,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Address(ip) => write!(f, "address {ip}"),
            Route::Dns { server } => write!(f, "dns server {server}"),
            Route::System => f.write_str("the system resolver"),
        }
    }
}

/// The API account used to identify the answering appliance.
#[derive(Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretValue,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// The site hostname: the URL host, the TLS SNI and the name the certificate must match.
    pub site: String,
    pub port: u16,
    pub route: Route,
    /// CA certificate (PEM) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Identify the answering appliance through the command API (no identification without).
    pub credentials: Option<Credentials>,
    /// Appliance id → label (e.g. the plan's appliance name) for reports.
    pub labels: BTreeMap<String, String>,
}

impl ProbeConfig {
    /// A config with the default interval and timeout, system roots, no identification.
    pub fn new(site: impl Into<String>, port: u16, route: Route) -> ProbeConfig {
        ProbeConfig {
            site: site.into(),
            port,
            route,
            ca_file: None,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            credentials: None,
            labels: BTreeMap::new(),
        }
    }
}

/// Why the prober could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("the CA file: {0}")]
    CaFile(#[source] swing_engine::input_file::InputFileError),
    #[error("the CA file {0} holds no usable PEM certificate")]
    CaPem(PathBuf),
    #[error("invalid probe configuration: {0}")]
    Invalid(String),
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
    #[error("cannot build the DNS resolver: {0}")]
    Resolver(String),
}

/// Starts probers.
pub struct Prober;

impl Prober {
    /// Start probing in the background (needs a tokio runtime). Stop with
    /// [`ProbeHandle::stop`]; dropping the handle stops it too.
    pub fn start(config: ProbeConfig) -> Result<ProbeHandle, ProbeError> {
        if config.site.is_empty() || config.site.parse::<IpAddr>().is_ok() {
            return Err(ProbeError::Invalid(
                "site must be a hostname (it is the TLS server name the certificate must match)"
                    .into(),
            ));
        }
        if config.interval.is_zero() || config.timeout.is_zero() {
            return Err(ProbeError::Invalid(
                "interval and timeout must be above zero".into(),
            ));
        }
        let resolver = SiteResolver::new(&config)?;
        let mut builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // A new connection per call, as the vendor asks and as a fresh client would.
            .pool_max_idle_per_host(0)
            .connect_timeout(config.timeout)
            .timeout(config.timeout);
        if let Some(path) = &config.ca_file {
            let pem = swing_engine::input_file::read(path).map_err(ProbeError::CaFile)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem.bytes)
                .map_err(|_| ProbeError::CaPem(path.clone()))?;
            if certs.is_empty() {
                return Err(ProbeError::CaPem(path.clone()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ProbeError::Client(e.to_string()))?;
        let base = format!("https://{}:{}", config.site, config.port);
        let shared = Arc::new(Shared {
            http,
            base,
            timeout: config.timeout,
            credentials: config.credentials.clone(),
            token: tokio::sync::Mutex::new(TokenState::default()),
            tokens_fetched: Mutex::new(0),
            records: Mutex::new(Vec::new()),
            started: Instant::now(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(shared.clone(), config.interval, stop_rx));
        Ok(ProbeHandle {
            shared,
            config,
            started_unix_ms: unix_ms(),
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// A running prober.
pub struct ProbeHandle {
    shared: Arc<Shared>,
    config: ProbeConfig,
    started_unix_ms: i64,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for ProbeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeHandle")
            .field("site", &self.config.site)
            .finish_non_exhaustive()
    }
}

impl ProbeHandle {
    /// The report over the probes finished so far.
    pub fn report(&self) -> ProbeReport {
        let records = lock(&self.shared.records).clone();
        let tokens = *lock(&self.shared.tokens_fetched);
        ProbeReport::from_records(
            &self.config.site,
            &self.config.route.to_string(),
            self.config.interval,
            self.started_unix_ms,
            &records,
            &self.config.labels,
            tokens,
        )
    }

    /// Number of probes finished so far.
    pub fn finished(&self) -> usize {
        lock(&self.shared.records).len()
    }

    /// The last finished probe (by start order), if any.
    pub fn last(&self) -> Option<ProbeRecord> {
        lock(&self.shared.records)
            .iter()
            .max_by_key(|r| r.seq)
            .cloned()
    }

    /// Stop starting probes, wait for those in flight (each bounded by the timeout) and
    /// return the final report.
    pub async fn stop(mut self) -> ProbeReport {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.report()
    }
}

impl Drop for ProbeHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

struct Shared {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    credentials: Option<Credentials>,
    token: tokio::sync::Mutex<TokenState>,
    tokens_fetched: Mutex<u64>,
    records: Mutex<Vec<ProbeRecord>>,
    started: Instant,
}

#[derive(Default)]
struct TokenState {
    /// Generation of the current token (bumped on every fetch).
    generation: u64,
    token: Option<Arc<SecretValue>>,
}

async fn run(shared: Arc<Shared>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = JoinSet::new();
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let s = shared.clone();
                let n = seq;
                seq += 1;
                in_flight.spawn(async move {
                    let rec = probe_once(&s, n).await;
                    lock(&s.records).push(rec);
                });
            }
            _ = stop.changed() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    // Each probe is bounded by the client timeout; give them a little more than that.
    let deadline = tokio::time::Instant::now() + shared.timeout * 2 + Duration::from_secs(1);
    while !in_flight.is_empty() {
        match tokio::time::timeout_at(deadline, in_flight.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    in_flight.abort_all();
}

async fn probe_once(s: &Shared, seq: u64) -> ProbeRecord {
    let start = Instant::now();
    let at_ms = u64::try_from(start.duration_since(s.started).as_millis()).unwrap_or(u64::MAX);
    let unix = unix_ms();
    let health = s.http.get(format!("{}/check_health", s.base)).send().await;
    let latency_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (ok, error) = match health {
        Ok(resp) if resp.status() == reqwest::StatusCode::OK => (true, None),
        Ok(resp) => (
            false,
            Some(format!(
                "HTTP {} from /check_health",
                resp.status().as_u16()
            )),
        ),
        Err(e) => (false, Some(describe(&e))),
    };
    let mut rec = ProbeRecord {
        seq,
        at_ms,
        unix_ms: unix,
        ok,
        latency_ms,
        appliance: None,
        error,
    };
    if ok && s.credentials.is_some() {
        match identify(s).await {
            Ok(id) => rec.appliance = Some(id),
            Err(e) => rec.error = Some(format!("healthy, not identified: {e}")),
        }
    }
    rec
}

/// A short, secret-free description of a transport error (with its causes).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut msg = what.to_string();
    let mut src = e.source();
    let mut depth = 0;
    while let Some(cause) = src {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
        src = cause.source();
        depth += 1;
        if depth >= 4 {
            break;
        }
    }
    msg.chars().take(300).collect()
}

enum IdentifyError {
    Unauthorized,
    Other(String),
}

async fn identify(s: &Shared) -> Result<String, String> {
    let (generation, token) = current_token(s).await?;
    match command_check_health(s, &token).await {
        Ok(id) => Ok(id),
        Err(IdentifyError::Unauthorized) => {
            // The token is not (or no longer) valid where the site now points: forget it
            // (only if no other probe already replaced it) and fetch exactly one new one.
            {
                let mut st = s.token.lock().await;
                if st.generation == generation {
                    st.token = None;
                }
            }
            let (_, token) = current_token(s).await?;
            match command_check_health(s, &token).await {
                Ok(id) => Ok(id),
                Err(IdentifyError::Unauthorized) => Err("the API account was refused (401)".into()),
                Err(IdentifyError::Other(e)) => Err(e),
            }
        }
        Err(IdentifyError::Other(e)) => Err(e),
    }
}

async fn current_token(s: &Shared) -> Result<(u64, Arc<SecretValue>), String> {
    let mut st = s.token.lock().await;
    if let Some(t) = &st.token {
        return Ok((st.generation, t.clone()));
    }
    let token = Arc::new(fetch_token(s).await?);
    *lock(&s.tokens_fetched) += 1;
    st.generation += 1;
    st.token = Some(token.clone());
    Ok((st.generation, token))
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
}

async fn fetch_token(s: &Shared) -> Result<SecretValue, String> {
    let Some(c) = &s.credentials else {
        return Err("no credentials".into());
    };
    let resp = s
        .http
        .post(format!("{}/oauth2/token", s.base))
        .basic_auth(&c.client_id, Some(c.client_secret.expose()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|e| format!("token: {}", describe(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("token: HTTP {}", resp.status().as_u16()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("token: {}", describe(&e)))?;
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|_| "token: the answer is not the expected JSON".to_string())?;
    Ok(SecretValue::new(answer.access_token))
}

async fn command_check_health(s: &Shared, token: &SecretValue) -> Result<String, IdentifyError> {
    let resp = s
        .http
        .get(format!("{}/api/command?action=check_health", s.base))
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| IdentifyError::Other(describe(&e)))?;
    if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
        return Err(IdentifyError::Unauthorized);
    }
    if !resp.status().is_success() {
        return Err(IdentifyError::Other(format!(
            "command API: HTTP {}",
            resp.status().as_u16()
        )));
    }
    let body = resp
        .text()
        .await
        .map_err(|e| IdentifyError::Other(describe(&e)))?;
    let report = parse_check_health(&body).map_err(|e| IdentifyError::Other(e.to_string()))?;
    report
        .local()
        .and_then(|a| a.id.clone())
        .ok_or_else(|| IdentifyError::Other("check_health named no appliance id".into()))
}

/// reqwest's resolver for the probe client: the site goes through the route; nothing else
/// resolves (the prober talks to the site only).
struct SiteResolver {
    site: String,
    route: RouteResolver,
}

enum RouteResolver {
    Address(IpAddr),
    Dns(Box<TokioResolver>),
    System,
}

impl SiteResolver {
    fn new(config: &ProbeConfig) -> Result<SiteResolver, ProbeError> {
        let route = match &config.route {
            Route::Address(ip) => RouteResolver::Address(*ip),
            Route::System => RouteResolver::System,
            Route::Dns { server } => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for c in &mut ns.connections {
                    c.port = server.port();
                }
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = ResolveHosts::Never;
                opts.timeout = config.timeout;
                opts.attempts = 1;
                opts.cache_size = 64;
                let resolver = Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
                .with_options(opts)
                .build()
                .map_err(|e| ProbeError::Resolver(e.to_string()))?;
                RouteResolver::Dns(Box::new(resolver))
            }
        };
        Ok(SiteResolver {
            site: config.site.trim_end_matches('.').to_ascii_lowercase(),
            route,
        })
    }
}

impl reqwest::dns::Resolve for SiteResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let asked = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        if asked != self.site {
            let msg = format!("the prober resolves only the site, not {asked}");
            return Box::pin(async move { Err(msg.into()) });
        }
        match &self.route {
            RouteResolver::Address(ip) => {
                let addr = SocketAddr::new(*ip, 0);
                Box::pin(async move {
                    let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(addr));
                    Ok(addrs)
                })
            }
            RouteResolver::System => Box::pin(async move {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((asked.as_str(), 0))
                    .await
                    .map_err(|e| format!("resolving {asked}: {e}"))?
                    .collect();
                let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
                Ok(addrs)
            }),
            RouteResolver::Dns(resolver) => {
                let resolver = resolver.as_ref().clone();
                let fqdn = format!("{asked}.");
                Box::pin(async move {
                    let lookup = resolver
                        .lookup_ip(fqdn.as_str())
                        .await
                        .map_err(|e| format!("dns: {e}"))?;
                    let addrs: Vec<SocketAddr> =
                        lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
                    if addrs.is_empty() {
                        return Err(format!("dns: no address for {asked}").into());
                    }
                    let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
                    Ok(addrs)
                })
            }
        }
    }
}
