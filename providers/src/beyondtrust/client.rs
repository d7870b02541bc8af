//! The HTTP client of one appliance: OAuth client credentials, per-call timeouts, retries,
//! connection closing and error classification.
//!
//! Owns: the single cached access token (reused until < 60 s remain, refreshed once on a 401,
//! fetched under a mutex so concurrent calls never fetch several), the reqwest client built on
//! the verifying TLS configuration from [`super::tls`], jittered exponential backoff for
//! idempotent reads only, and the mapping of transport/HTTP failures to
//! [`swing_engine::provider::ErrorKind`].
//!
//! Must not: retry a state-changing call (only a 401, which the appliance rejected before
//! acting, is repeated once with a fresh token), put a secret (client secret, token, backup
//! password) into an error, a log or `Debug` output, or read response bodies without a limit.

use std::net::SocketAddr;
use std::sync::Arc;
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
                    return Err(ProviderError::new(
                        ErrorKind::Auth,
                        format!(
                            "{what} on {}: the access token was refused twice (HTTP 401)",
                            self.host
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
            let res = req
                .send()
                .await
                .map_err(|e| self.transport_error(&e, what))?;
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
        })
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
