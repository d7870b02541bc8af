//! The HTTP client of one appliance: OAuth client credentials, per-call timeouts, retries,
//! connection closing and error classification.
//!
//! Owns: the single cached access token (reused until < 60 s remain, refreshed once on a 401,
//! fetched under a mutex so concurrent calls never fetch several), the reqwest client built on
//! the verifying TLS configuration from [`super::tls`], the per-account rate limiter (one
//! [`RateLimiter`] for every client of the same API account and appliance address in the
//! process: at most [`RateLimit`] requests in any second and any hour, with a margin, and a
//! pause for everyone after a 429's `Retry-After`), jittered exponential backoff for
//! idempotent reads only, and the mapping of transport/HTTP failures to
//! [`swing_engine::provider::ErrorKind`] (a 401 that a fresh token does not cure is named as
//! a permission or query-parameter problem).
//!
//! Must not: retry a state-changing call (only a 401 or a 429, which the appliance rejected
//! before acting, is repeated), put a secret (client secret, token, backup password) into an
//! error, a log or `Debug` output, or read response bodies without a limit.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, CONNECTION, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use swing_engine::provider::{ErrorKind, ProviderError, ProviderResult};
use swing_schema::SecretValue;
use tokio::sync::Mutex;

use super::tls;
use super::{BeyondTrustConfig, RetryPolicy};

/// Largest non-backup body read into memory (command XML, config API JSON, token).
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;

/// A token is refreshed when fewer than this many seconds of its lifetime remain.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Requests an API account may make (the vendor's limits by default: 20 a second and
/// 15,000 an hour, for every endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub per_hour: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20,
            per_hour: 15_000,
        }
    }
}

/// The windows the limiter keeps its counts in: a little longer than the appliance's, so
/// that requests sent within the limit still arrive within it despite varying latency.
const SECOND_WINDOW: Duration = Duration::from_millis(1_100);
const HOUR_WINDOW: Duration = Duration::from_secs(3_601);
/// Longest `Retry-After` waited for; a longer one fails the call (the hourly limit).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// 429 answers waited out per call before giving up.
const MAX_RATE_LIMITED: u32 = 5;

/// The sliding windows of one account: the send times of the last hour. Pure (the clock is
/// passed in), so it is tested without waiting.
#[derive(Debug)]
pub(crate) struct RateWindow {
    limit: RateLimit,
    sent: VecDeque<Instant>,
    /// No request before this (after a 429's `Retry-After`).
    paused_until: Option<Instant>,
}

impl RateWindow {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateWindow {
            limit: RateLimit {
                per_second: limit.per_second.max(1),
                per_hour: limit.per_hour.max(1),
            },
            sent: VecDeque::new(),
            paused_until: None,
        }
    }

    /// Takes a slot at `now` (`Ok`) or says how long to wait before asking again.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(until - now);
            }
            self.paused_until = None;
        }
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= HOUR_WINDOW)
        {
            self.sent.pop_front();
        }
        let per_hour = self.limit.per_hour as usize;
        if self.sent.len() >= per_hour {
            let oldest = self.sent[self.sent.len() - per_hour];
            return Err((oldest + HOUR_WINDOW).saturating_duration_since(now));
        }
        let per_second = self.limit.per_second as usize;
        let in_second = self
            .sent
            .iter()
            .rev()
            .take_while(|t| now.saturating_duration_since(**t) < SECOND_WINDOW)
            .count();
        if in_second >= per_second {
            let oldest = self.sent[self.sent.len() - per_second];
            return Err((oldest + SECOND_WINDOW).saturating_duration_since(now));
        }
        self.sent.push_back(now);
        Ok(())
    }

    /// No request before `until` (the appliance answered 429 with `Retry-After`).
    pub(crate) fn pause_until(&mut self, until: Instant) {
        if self.paused_until.is_none_or(|p| p < until) {
            self.paused_until = Some(until);
        }
    }
}

/// The rate limiter of one API account on one appliance address, shared in the process.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    window: std::sync::Mutex<RateWindow>,
}

impl RateLimiter {
    /// The limiter of `client_id` at `address:port`: the same one for every client of it.
    pub(crate) fn shared(client_id: &str, address: &str, port: u16, limit: RateLimit) -> Arc<Self> {
        static ALL: std::sync::Mutex<Option<HashMap<String, Weak<RateLimiter>>>> =
            std::sync::Mutex::new(None);
        let key = format!("{client_id}@{}:{port}", bracket(address));
        let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
        let map = all.get_or_insert_with(HashMap::new);
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(l) = map.get(&key).and_then(Weak::upgrade) {
            return l;
        }
        let l = Arc::new(RateLimiter {
            window: std::sync::Mutex::new(RateWindow::new(limit)),
        });
        map.insert(key, Arc::downgrade(&l));
        l
    }

    /// Waits for a slot.
    pub(crate) async fn acquire(&self) {
        loop {
            let wait = {
                let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
                match w.try_take(Instant::now()) {
                    Ok(()) => return,
                    Err(d) => d,
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    pub(crate) fn pause_for(&self, d: Duration) {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pause_until(Instant::now() + d);
    }
}

struct Token {
    value: SecretValue,
    /// Monotonic id, so a 401 invalidates only the token that was refused.
    serial: u64,
    refresh_at: Instant,
}

/// A fully read response: status, the appliance's `Date`, and the body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub date: Option<SystemTime>,
    /// Engine clock when the answer arrived.
    pub received: SystemTime,
    pub body: Vec<u8>,
    /// `X-BT-Pagination-Last-Page` (configuration API paging).
    pub last_page: Option<u64>,
    /// Whether a `Link` header was sent and names a `next` page (`None`: no `Link`).
    pub link_next: Option<bool>,
    /// `Retry-After` of a 429 (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// Every response header (name lower-case, value as text), for `swing doctor --capture`.
    pub headers: Vec<(String, String)>,
}

/// HTTP access to one appliance.
pub(crate) struct ApplianceClient {
    http: reqwest::Client,
    /// `https://host:port` with `host` the name certificates must match.
    base: reqwest::Url,
    /// Name certificates must match (site hostname or the address).
    pub(crate) host: String,
    pub(crate) tls_config: Arc<rustls::ClientConfig>,
    client_id: String,
    client_secret: SecretValue,
    token: Mutex<Option<Token>>,
    next_serial: std::sync::atomic::AtomicU64,
    limiter: Arc<RateLimiter>,
    pub(crate) cfg: ClientSettings,
}

/// The parts of the configuration the client needs after construction.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub address: String,
    pub port: u16,
    pub request_timeout: Duration,
    pub backup_timeout: Duration,
    pub close_connections: bool,
    pub retry: RetryPolicy,
}

/// Resolves every name to the configured appliance address, so the URL can carry the site
/// hostname (SNI and certificate check) while the connection goes to this appliance.
struct PinnedResolver {
    address: String,
    port: u16,
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let target = format!("{}:{}", bracket(&self.address), self.port);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target).await?.collect();
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

fn bracket(address: &str) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_owned()
    }
}

impl ApplianceClient {
    pub(crate) fn new(cfg: &BeyondTrustConfig) -> ProviderResult<Self> {
        if cfg.address.trim().is_empty() {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                "appliance address is empty",
            ));
        }
        let host = cfg
            .site_hostname
            .clone()
            .unwrap_or_else(|| cfg.address.clone());
        let tls_config = Arc::new(tls::client_config(cfg.ca_file.as_deref())?);
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls_config).clone())
            .https_only(true)
            .http1_only()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeouts.connect)
            .read_timeout(cfg.timeouts.read)
            .dns_resolver(Arc::new(PinnedResolver {
                address: cfg.address.clone(),
                port: cfg.port,
            }))
            .user_agent(concat!("swing/", env!("CARGO_PKG_VERSION")));
        if cfg.close_connections {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder.build().map_err(|e| {
            ProviderError::new(
                ErrorKind::Invalid,
                format!("cannot build the HTTP client: {e}"),
            )
        })?;
        let base = reqwest::Url::parse(&format!("https://{}:{}/", bracket(&host), cfg.port))
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!("invalid appliance host {host}: {e}"),
                )
            })?;
        Ok(ApplianceClient {
            http,
            base,
            host,
            tls_config,
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            token: Mutex::new(None),
            next_serial: std::sync::atomic::AtomicU64::new(1),
            limiter: RateLimiter::shared(&cfg.client_id, &cfg.address, cfg.port, cfg.rate_limit),
            cfg: ClientSettings {
                address: cfg.address.clone(),
                port: cfg.port,
                request_timeout: cfg.timeouts.request,
                backup_timeout: cfg.timeouts.backup,
                close_connections: cfg.close_connections,
                retry: cfg.retry.clone(),
            },
        })
    }

    pub(crate) fn url(&self, path: &str) -> ProviderResult<reqwest::Url> {
        self.base.join(path).map_err(|e| {
            ProviderError::new(ErrorKind::Invalid, format!("bad API path {path}: {e}"))
        })
    }

    /// The socket addresses of the appliance (for the TLS inspection handshake).
    pub(crate) async fn socket_addrs(&self) -> ProviderResult<Vec<SocketAddr>> {
        let target = format!("{}:{}", bracket(&self.cfg.address), self.cfg.port);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&target)
            .await
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Transient,
                    format!("cannot resolve {target}: {e}"),
                )
            })?
            .collect();
        if addrs.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::Transient,
                format!("{target} resolves to no address"),
            ));
        }
        Ok(addrs)
    }

    /// The current token, fetching one only when none is cached or it nears expiry. The mutex
    /// is held while fetching, so concurrent callers wait for the one fetch.
    async fn token(&self) -> ProviderResult<(SecretValue, u64)> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok((t.value.clone(), t.serial));
        }
        *slot = None;
        let fresh = self.fetch_token().await?;
        let out = (fresh.value.clone(), fresh.serial);
        *slot = Some(fresh);
        Ok(out)
    }

    /// Forgets the token with `serial` (not a newer one another call already fetched).
    async fn invalidate(&self, serial: u64) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.serial == serial) {
            *slot = None;
        }
    }

    async fn fetch_token(&self) -> ProviderResult<Token> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: String,
            #[serde(default)]
            token_type: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let url = self.url("oauth2/token")?;
        let mut attempt = 0;
        let answer = loop {
            let req = self
                .http
                .post(url.clone())
                .basic_auth(&self.client_id, Some(self.client_secret.expose()))
                .header(ACCEPT, "application/json")
                .form(&[("grant_type", "client_credentials")]);
            let res = self
                .execute(req, self.cfg.request_timeout, "POST /oauth2/token")
                .await;
            match res {
                Ok(a)
                    if a.status == StatusCode::TOO_MANY_REQUESTS
                        && attempt + 1 < MAX_RATE_LIMITED
                        && self.wait_out_429(&a) =>
                {
                    attempt += 1;
                }
                Err(f) if f.worth_retrying() && attempt + 1 < self.cfg.retry.attempts => {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                other => break other.map_err(|f| f.error)?,
            }
        };
        match answer.status {
            s if s.is_success() => {}
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(ProviderError::new(
                    ErrorKind::Auth,
                    format!(
                        "OAuth token request for API account {:?} refused by {} (HTTP {}): check client_id and client_secret and the account's API permissions",
                        self.client_id,
                        self.host,
                        answer.status.as_u16()
                    ),
                ));
            }
            s => return Err(status_error(s, "POST /oauth2/token", &self.host)),
        }
        // Never include the body in an error: it holds the token.
        let parsed: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|_| {
            ProviderError::new(
                ErrorKind::Failed,
                format!("{} sent an unreadable OAuth token answer", self.host),
            )
        })?;
        if parsed.access_token.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::Failed,
                format!("{} sent an empty access token", self.host),
            ));
        }
        if let Some(t) = parsed.token_type.as_deref()
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(ProviderError::new(
                ErrorKind::Failed,
                format!("{} sent an unsupported token type {t:?}", self.host),
            ));
        }
        // Capped at a day so a wild `expires_in` cannot overflow the clock arithmetic.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600).min(86_400));
        // Refresh 60 s before expiry; for very short lifetimes, halfway.
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        Ok(Token {
            value: SecretValue::new(parsed.access_token),
            serial: self
                .next_serial
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            refresh_at: Instant::now() + lifetime - margin,
        })
    }

    /// An authenticated call. `make` builds the request (it may be called again).
    /// Idempotent calls are retried on transient failures with jittered backoff; every call
    /// is repeated once with a fresh token after a 401.
    pub(crate) async fn call(
        &self,
        what: &str,
        idempotent: bool,
        timeout: Duration,
        make: impl Fn(&reqwest::Client) -> ProviderResult<RequestBuilder>,
    ) -> ProviderResult<Answer> {
        let mut attempt: u32 = 0;
        let mut reauthed = false;
        let mut rate_limited: u32 = 0;
        loop {
            let (token, serial) = self.token().await?;
            let req = make(&self.http)?.bearer_auth(token.expose());
            drop(token);
            match self.execute(req, timeout, what).await {
                Ok(a) if a.status == StatusCode::UNAUTHORIZED && !reauthed => {
                    self.invalidate(serial).await;
                    reauthed = true;
                }
                Ok(a) if a.status == StatusCode::UNAUTHORIZED => {
                    return Err(unauthorized_with_fresh_token(what, &self.host, &a.body));
                }
                // Refused before acting: safe to repeat for every call, after the wait asked.
                Ok(a)
                    if a.status == StatusCode::TOO_MANY_REQUESTS
                        && rate_limited + 1 < MAX_RATE_LIMITED
                        && self.wait_out_429(&a) =>
                {
                    // The limiter holds this and every other call back for the wait.
                    rate_limited += 1;
                }
                Ok(a) if a.status == StatusCode::TOO_MANY_REQUESTS => {
                    return Err(ProviderError::new(
                        ErrorKind::Transient,
                        format!(
                            "{what} on {}: the API account's rate limit is reached (HTTP 429{})",
                            self.host,
                            a.retry_after
                                .map(|d| format!(", retry after {} s", d.as_secs()))
                                .unwrap_or_default()
                        ),
                    ));
                }
                Ok(a)
                    if idempotent
                        && is_transient_status(a.status)
                        && attempt + 1 < self.cfg.retry.attempts =>
                {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                Ok(a) => return Ok(a),
                Err(f)
                    if idempotent
                        && f.worth_retrying()
                        && attempt + 1 < self.cfg.retry.attempts =>
                {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    /// A streamed authenticated call (backup download): never retried except once after a 401.
    pub(crate) async fn call_streaming(
        &self,
        what: &str,
        make: impl Fn(&reqwest::Client) -> ProviderResult<RequestBuilder>,
    ) -> ProviderResult<Response> {
        let mut reauthed = false;
        loop {
            let (token, serial) = self.token().await?;
            let req = self.prepare(
                make(&self.http)?.bearer_auth(token.expose()),
                self.cfg.backup_timeout,
            );
            drop(token);
            self.limiter.acquire().await;
            let res = req
                .send()
                .await
                .map_err(|e| self.transport_error(&e, what))?;
            if res.status() == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(res.headers()).unwrap_or(Duration::from_secs(1));
                self.limiter.pause_for(wait);
            }
            if res.status() == StatusCode::UNAUTHORIZED && !reauthed {
                self.invalidate(serial).await;
                reauthed = true;
                continue;
            }
            return Ok(res);
        }
    }

    fn prepare(&self, req: RequestBuilder, timeout: Duration) -> RequestBuilder {
        let req = req.timeout(timeout);
        if self.cfg.close_connections {
            req.header(CONNECTION, HeaderValue::from_static("close"))
        } else {
            req
        }
    }

    async fn execute(
        &self,
        req: RequestBuilder,
        timeout: Duration,
        what: &str,
    ) -> Result<Answer, CallFailed> {
        self.limiter.acquire().await;
        let mut res = self
            .prepare(req, timeout)
            .send()
            .await
            .map_err(|e| CallFailed {
                refused: connection_refused(&e),
                error: self.transport_error(&e, what),
            })?;
        let received = SystemTime::now();
        let status = res.status();
        let date = res
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| httpdate::parse_http_date(s).ok());
        let last_page = res
            .headers()
            .get("x-bt-pagination-last-page")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        let link_next = res
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(|l| link_rels(l).any(|r| r == "next"));
        let retry_after = retry_after(res.headers());
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e, what))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ProviderError::new(
                    ErrorKind::Failed,
                    format!(
                        "{what} on {}: answer larger than {} bytes",
                        self.host, MAX_BODY
                    ),
                )
                .into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            date,
            received,
            body,
            last_page,
            link_next,
            retry_after,
            headers,
        })
    }

    /// `bytes` with every occurrence of the client secret and of the cached token replaced
    /// by `[redacted]` (a raw answer should hold neither; this makes sure).
    pub(crate) async fn redact_secrets(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let token = self.token.lock().await.as_ref().map(|t| t.value.clone());
        let secrets = [Some(self.client_secret.clone()), token];
        for s in secrets.iter().flatten() {
            out = replace_all(&out, s.expose().as_bytes(), b"[redacted]");
        }
        out
    }

    /// After a 429: pause every call of the account for `Retry-After`; `false` when the
    /// appliance asks for longer than [`MAX_RETRY_AFTER`] (the call then fails).
    fn wait_out_429(&self, a: &Answer) -> bool {
        let wait = a.retry_after.unwrap_or(Duration::from_secs(1));
        if wait > MAX_RETRY_AFTER {
            return false;
        }
        self.limiter.pause_for(wait);
        true
    }

    /// Classifies a transport failure. reqwest errors name the URL, which holds no secret.
    pub(crate) fn transport_error(&self, e: &reqwest::Error, what: &str) -> ProviderError {
        if let Some(r) = tls::find_rustls_error(e) {
            return ProviderError::new(
                ErrorKind::Tls,
                format!("{what}: {}", tls::describe_tls_error(r, &self.host)),
            );
        }
        let detail = chain_text(e);
        if e.is_timeout() {
            ProviderError::new(
                ErrorKind::Transient,
                format!("{what} on {}: timed out ({detail})", self.host),
            )
        } else if e.is_connect() {
            ProviderError::new(
                ErrorKind::Transient,
                format!("{what}: cannot connect to {}: {detail}", self.host),
            )
        } else if e.is_builder() {
            ProviderError::new(ErrorKind::Invalid, format!("{what}: {detail}"))
        } else {
            ProviderError::new(
                ErrorKind::Transient,
                format!("{what} on {}: {detail}", self.host),
            )
        }
    }

    async fn backoff(&self, attempt: u32) {
        tokio::time::sleep(self.cfg.retry.delay(attempt)).await;
    }
}

/// A call that got no answer.
pub(crate) struct CallFailed {
    pub error: ProviderError,
    /// The appliance refused the TCP connection: nothing listens on the port (installing,
    /// restarting). That is an answer, not a blip: repeating the call at once only delays the
    /// caller, who observes again on its own schedule (the engine polls postconditions).
    pub refused: bool,
}

impl CallFailed {
    /// Worth repeating within the same call: retryable, and not a refused connection.
    fn worth_retrying(&self) -> bool {
        self.error.retryable() && !self.refused
    }
}

impl From<ProviderError> for CallFailed {
    fn from(error: ProviderError) -> Self {
        CallFailed {
            error,
            refused: false,
        }
    }
}

/// Whether the TCP connection was refused (an `io::Error` of kind `ConnectionRefused` in the
/// error's sources).
fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// An error's message with its sources, `a: b: c`.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The `rel` values of a `Link` header (`<url>; rel="next", <url>; rel="last"`).
fn link_rels(link: &str) -> impl Iterator<Item = &str> {
    link.split(',').filter_map(|part| {
        part.split(';')
            .skip(1)
            .filter_map(|p| p.trim().strip_prefix("rel="))
            .map(|r| r.trim_matches('"'))
            .next()
    })
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A 401 although the token was just issued: not a token problem. The vendor answers 401
/// to an unrecognised query parameter too, and to an account without the API's permission.
fn unauthorized_with_fresh_token(what: &str, host: &str, body: &[u8]) -> ProviderError {
    let said = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .map(|m| {
            let m: String = m.chars().filter(|c| !c.is_control()).take(200).collect();
            format!(" The appliance said: {m:?}.")
        })
        .unwrap_or_default();
    ProviderError::new(
        ErrorKind::Auth,
        format!(
            "{what} on {host}: HTTP 401 with a freshly issued access token, so not a token \
             problem: the API account lacks the permission for this API (/login > Management > \
             API Configuration), or the request has a query parameter the appliance does not \
             recognise.{said}"
        ),
    )
}

pub(crate) fn is_transient_status(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT
}

/// The error for an unexpected HTTP status.
pub(crate) fn status_error(s: StatusCode, what: &str, host: &str) -> ProviderError {
    let kind = match s {
        StatusCode::UNAUTHORIZED => ErrorKind::Auth,
        StatusCode::FORBIDDEN => ErrorKind::Refused,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        s if is_transient_status(s) => ErrorKind::Transient,
        _ => ErrorKind::Invalid,
    };
    let hint = match s {
        StatusCode::FORBIDDEN => " (the API account lacks the permission for this call)",
        _ => "",
    };
    ProviderError::new(kind, format!("{what} on {host}: HTTP {}{hint}", s.as_u16()))
}

/// `hay` with every non-overlapping occurrence of `needle` replaced (`needle` empty: unchanged).
fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beyondtrust::BeyondTrustConfig;

    /// A port on loopback nobody listens on (bound, then released).
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn a_refused_connection_is_reported_at_once_not_retried() {
        let mut c = BeyondTrustConfig::new("127.0.0.1", "id", SecretValue::new("secret"));
        c.port = closed_port();
        // Were a refused connection retried, these delays would take at least 2.5 s.
        c.retry = RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(5),
        };
        let client = ApplianceClient::new(&c).unwrap();
        let url = client.url("api/command").unwrap();
        let t = Instant::now();
        let r = client
            .call("check_health", true, Duration::from_secs(5), |http| {
                Ok(http.get(url.clone()))
            })
            .await;
        let Err(e) = r else { panic!("nothing listens") };
        assert_eq!(e.kind, ErrorKind::Transient, "{}", e.message);
        assert!(e.message.contains("cannot connect"), "{}", e.message);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "refused connection retried: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn the_rate_window_keeps_every_second_and_hour_under_the_limit() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(RateLimit {
            per_second: 20,
            per_hour: 50,
        });
        // A burst: 20 pass, the 21st waits until the first leaves the (padded) second.
        for _ in 0..20 {
            assert!(w.try_take(t0).is_ok());
        }
        let wait = w.try_take(t0).unwrap_err();
        assert_eq!(wait, SECOND_WINDOW);
        assert!(w.try_take(t0 + wait - Duration::from_millis(1)).is_err());
        // Simulate a client always taking the earliest slot: never more than 20 within any
        // 1.1 s, hence within any second the appliance counts.
        let mut now = t0 + wait;
        let mut sent = vec![t0; 20];
        while sent.len() < 50 {
            match w.try_take(now) {
                Ok(()) => sent.push(now),
                Err(d) => now += d,
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let within = sent[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(within <= 20, "{within} within a second");
        }
        // The hourly limit (50 here): the 51st waits for the first to be an hour old.
        let wait = w.try_take(now).unwrap_err();
        assert_eq!(t0 + HOUR_WINDOW, now + wait);
        // A Retry-After pause holds everyone back, then lifts.
        let later = t0 + HOUR_WINDOW + Duration::from_secs(10);
        w.pause_until(later + Duration::from_secs(3));
        assert_eq!(w.try_take(later), Err(Duration::from_secs(3)));
        assert!(w.try_take(later + Duration::from_secs(3)).is_ok());
    }

    #[test]
    fn one_limiter_per_account_and_address() {
        let l = RateLimit::default();
        let a = RateLimiter::shared("acct", "127.0.0.1", 443, l);
        let b = RateLimiter::shared("acct", "127.0.0.1", 443, l);
        let c = RateLimiter::shared("other", "127.0.0.1", 443, l);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn link_relations_retry_after_and_the_fresh_token_401() {
        let link = "<https://h/api/config/v1/jump-client?per_page=5&current_page=1>; rel=\"first\", \
                    <https://h/x?current_page=1>; rel=\"previous\", <https://h/x?current_page=3>; rel=\"next\", \
                    <https://h/x?current_page=9>; rel=\"last\"";
        let rels: Vec<&str> = link_rels(link).collect();
        assert_eq!(rels, ["first", "previous", "next", "last"]);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let e = unauthorized_with_fresh_token(
            "GET /api/config/v1/jump-client",
            "pra.example.com",
            br#"{"error":"Unauthorized","message":"Unrecognized query parameter: bogus"}"#,
        );
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("not a token problem"), "{}", e.message);
        assert!(e.message.contains("query parameter"), "{}", e.message);
        assert!(e.message.contains("API Configuration"), "{}", e.message);
        assert!(e.message.contains("bogus"), "{}", e.message);
    }

    #[test]
    fn refused_is_found_among_the_sources_only() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(connection_refused(&refused));
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert!(connection_refused(&Wrapper(refused)));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!connection_refused(&reset));
        let failed = CallFailed::from(ProviderError::new(ErrorKind::Transient, "reset"));
        assert!(failed.worth_retrying());
        let refused = CallFailed {
            refused: true,
            ..failed
        };
        assert!(!refused.worth_retrying());
    }
}
