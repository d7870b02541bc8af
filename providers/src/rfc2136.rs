//! The `rfc2136` DNS provider: reads a record's A/AAAA rrset and TTL from the authoritative
//! server and changes it with TSIG-signed RFC 2136 dynamic updates (hickory-net over TCP).
//!
//! Owns: the wire conversation with one authoritative server for one zone — queries
//! (non-recursive, the answer must carry the AA flag), atomic compare-and-swap updates whose
//! prerequisite is the rrset the caller expects (so a concurrent change is detected as
//! [`ErrorKind::Conflict`], never overwritten), the readiness check
//! ([`DnsProvider::check_update`]: a signed UPDATE made only of prerequisites, which the server
//! authenticates and applies as nothing), verification by querying again, and the translation
//! of DNS/TSIG failures into clear [`ProviderError`]s.
//!
//! TSIG: this module signs each UPDATE itself and checks the response itself, so that it sees
//! the response's TSIG record (a transport that verifies for the caller only reports "the
//! response did not verify"). A response carrying a TSIG error is a refusal and is reported by
//! that error — BADKEY (key name/algorithm unknown to the server or not allowed for the zone),
//! BADSIG (secret differs), BADTIME (clocks differ beyond the fudge) — each with its own hint;
//! BADKEY and BADSIG answers are unsigned by design (RFC 8945 §5.3.2) and a BADTIME answer's
//! time is outside our window, so an error answer is only ever used to explain a failure. Any other response to a signed update must carry a TSIG that verifies
//! with the key before a success is believed. Response codes without a TSIG error are worded
//! per code: REFUSED (the server's update policy/ACL), NOTZONE (`record` outside `zone`),
//! NOTAUTH (the server is not authoritative for `zone`).
//!
//! Must not: log or put into any error the TSIG secret (it arrives as a
//! [`swing_schema::SecretValue`] and lives only inside the hickory `TSigner`), send traffic
//! anywhere but the configured server, retry a non-idempotent call on its own, or panic on
//! anything a server sends.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::StreamExt as _;
use hickory_net::NetError;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::{DnsHandle, DnsMultiplexer};
use hickory_proto::op::{
    DEFAULT_MAX_PAYLOAD_LEN, DnsRequest, DnsResponse, Edns, Message, OpCode, Query, ResponseCode,
    UpdateMessage,
};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm as HickoryTsigAlgorithm, TsigError};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use swing_engine::provider::{
    DnsObservation, DnsProvider, ErrorKind, ProviderError, ProviderResult,
};
use swing_schema::{SecretValue, TsigAlgorithm};

/// Default time allowed for connecting and for each request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// TSIG fudge (allowed clock difference between us and the server), seconds.
pub const TSIG_FUDGE_S: u16 = 300;

/// A TSIG key: name, algorithm and the base64 secret.
#[derive(Clone)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: TsigAlgorithm,
    /// Base64 key material, exactly as `tsig-keygen` prints it.
    pub secret: SecretValue,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// How to reach the authoritative server.
#[derive(Debug, Clone)]
pub struct Rfc2136Config {
    /// `host:port` (or `host`, port 53). Resolved on every call.
    pub server: String,
    /// The zone the records live in (e.g. `example.com`).
    pub zone: String,
    /// Key for signed updates; `None` sends unsigned updates (most servers refuse them).
    pub tsig: Option<TsigKey>,
    /// Connect timeout and per-request timeout.
    pub timeout: Duration,
}

impl Rfc2136Config {
    /// The provider settings from a plan, with the TSIG secret already resolved by the engine.
    /// A plan that names a key but no secret given (or the reverse) is `Invalid`.
    pub fn from_plan(
        plan: &swing_schema::Rfc2136Provider,
        tsig_secret: Option<SecretValue>,
    ) -> ProviderResult<Self> {
        let tsig = match (&plan.tsig, tsig_secret) {
            (Some(t), Some(secret)) => Some(TsigKey {
                name: t.name.clone(),
                algorithm: t.algorithm,
                secret,
            }),
            (None, None) => None,
            (Some(t), None) => {
                return Err(invalid(format!(
                    "rfc2136: the TSIG secret {} for key `{}` was not resolved",
                    t.secret, t.name
                )));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "rfc2136: a TSIG secret was given but the plan names no tsig key",
                ));
            }
        };
        Ok(Rfc2136Config {
            server: plan.server.clone(),
            zone: plan.zone.clone(),
            tsig,
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

/// The RFC 2136 provider for one zone on one authoritative server.
#[derive(Clone)]
pub struct Rfc2136Provider {
    server: String,
    zone: Name,
    signer: Option<TSigner>,
    key_name: Option<String>,
    algorithm: Option<TsigAlgorithm>,
    timeout: Duration,
}

impl fmt::Debug for Rfc2136Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Provider")
            .field("server", &self.server)
            .field("zone", &self.zone.to_string())
            .field("tsig_key", &self.key_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorKind::Invalid, message)
}

fn hickory_algorithm(a: TsigAlgorithm) -> HickoryTsigAlgorithm {
    match a {
        TsigAlgorithm::HmacSha256 => HickoryTsigAlgorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => HickoryTsigAlgorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => HickoryTsigAlgorithm::HmacSha512,
    }
}

/// Builds the hickory signer from a key. The error never contains the secret.
pub(crate) fn tsig_signer(key: &TsigKey) -> ProviderResult<TSigner> {
    let secret = key.secret.expose().trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .map_err(|_| {
            invalid(format!(
                "TSIG key `{}`: the secret is not valid base64",
                key.name
            ))
        })?;
    if bytes.is_empty() {
        return Err(invalid(format!(
            "TSIG key `{}`: the secret is empty",
            key.name
        )));
    }
    let name = Name::from_ascii(&key.name).map_err(|_| {
        invalid(format!(
            "TSIG key name `{}` is not a valid DNS name",
            key.name
        ))
    })?;
    TSigner::new(bytes, hickory_algorithm(key.algorithm), name, TSIG_FUDGE_S)
        .map_err(|_| invalid(format!("TSIG key `{}`: algorithm not supported", key.name)))
}

/// Parses a DNS name as absolute (a trailing dot is optional).
fn absolute_name(what: &str, s: &str) -> ProviderResult<Name> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    let mut name = Name::from_ascii(trimmed)
        .map_err(|e| invalid(format!("{what} `{trimmed}` is not a valid DNS name: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

fn family(ip: &IpAddr) -> RecordType {
    match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

fn rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// RFC 2136 §2.4.2 "RRset exists (value dependent)": one record of the expected rrset, class
/// IN, TTL 0 (the server compares the whole rrset with all such records of its type).
fn rrset_exists_with(name: &Name, ip: IpAddr) -> Record {
    let mut pre = Record::from_rdata(name.clone(), 0, rdata(ip));
    pre.dns_class = DNSClass::IN;
    pre
}

/// RFC 2136 §2.4.3 "RRset does not exist": class NONE, type `rtype`, no rdata.
fn rrset_absent(name: &Name, rtype: RecordType) -> Record {
    let mut pre = Record::update0(name.clone(), 0, rtype);
    pre.dns_class = DNSClass::NONE;
    pre
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The server's time in a TSIG record's "other data" (RFC 8945 §5.2.3: a BADTIME response
/// carries the server's current time as 48 bits there).
fn server_time(other: &[u8]) -> Option<u64> {
    let bytes: [u8; 6] = other.try_into().ok()?;
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn algorithm_name(a: TsigAlgorithm) -> &'static str {
    match a {
        TsigAlgorithm::HmacSha256 => "hmac-sha256",
        TsigAlgorithm::HmacSha384 => "hmac-sha384",
        TsigAlgorithm::HmacSha512 => "hmac-sha512",
    }
}

/// The RFC mnemonic of a response code (hickory's `Display` is prose).
fn rcode_name(code: ResponseCode) -> String {
    let name = match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADSIG => "BADSIG",
        ResponseCode::BADKEY => "BADKEY",
        ResponseCode::BADTIME => "BADTIME",
        other => return format!("RCODE {}", u16::from(other)),
    };
    name.to_owned()
}

fn show(addrs: &BTreeSet<IpAddr>) -> String {
    if addrs.is_empty() {
        return "no address".to_owned();
    }
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One rrset change: prerequisite `expect` (exact set), replaced by `new` with `ttl`.
struct RrsetChange {
    rtype: RecordType,
    expect: BTreeSet<IpAddr>,
    new: BTreeSet<IpAddr>,
    ttl: u32,
}

/// An rrset as the server reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rrset {
    addrs: BTreeSet<IpAddr>,
    ttl: Option<u32>,
}

impl Rfc2136Provider {
    /// Checks the configuration (zone and key syntax); makes no network call.
    pub fn new(config: Rfc2136Config) -> ProviderResult<Self> {
        if config.server.trim().is_empty() {
            return Err(invalid("rfc2136: `server` is empty"));
        }
        let zone = absolute_name("zone", &config.zone)?;
        let (signer, key_name, algorithm) = match &config.tsig {
            Some(k) => (
                Some(tsig_signer(k)?),
                Some(k.name.clone()),
                Some(k.algorithm),
            ),
            None => (None, None, None),
        };
        Ok(Rfc2136Provider {
            server: config.server.trim().to_owned(),
            zone,
            signer,
            key_name,
            algorithm,
            timeout: config.timeout,
        })
    }

    /// The zone this provider updates (absolute, with trailing dot).
    pub fn zone(&self) -> String {
        self.zone.to_string()
    }

    fn record_name(&self, record: &str) -> ProviderResult<Name> {
        let name = absolute_name("record", record)?;
        if !self.zone.zone_of(&name) {
            return Err(invalid(format!(
                "record `{record}` is not inside zone {} of this provider (it would be answered \
                 NOTZONE); check `zone` and `record`",
                self.zone
            )));
        }
        Ok(name)
    }

    async fn resolve(&self) -> ProviderResult<SocketAddr> {
        if let Ok(sa) = self.server.parse::<SocketAddr>() {
            return Ok(sa);
        }
        if let Ok(ip) = self.server.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, 53));
        }
        let target = if self.server.contains(':') {
            self.server.clone()
        } else {
            format!("{}:53", self.server)
        };
        let mut addrs = tokio::time::timeout(self.timeout, tokio::net::lookup_host(target))
            .await
            .map_err(|_| {
                ProviderError::new(
                    ErrorKind::Transient,
                    format!("resolving DNS server `{}` timed out", self.server),
                )
            })?
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Transient,
                    format!("cannot resolve DNS server `{}`: {e}", self.server),
                )
            })?;
        addrs.next().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!("DNS server `{}` resolves to no address", self.server),
            )
        })
    }

    /// One TCP connection; dropped after the operation. Updates are signed by [`Self::sign`]
    /// before they are handed to it, never by the transport.
    async fn connect(&self) -> ProviderResult<Client<TokioRuntimeProvider>> {
        let addr = self.resolve().await?;
        let (connect, handle) =
            TcpClientStream::new(addr, None, Some(self.timeout), TokioRuntimeProvider::new());
        let stream = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|e| self.net_error(e))?;
        let mux = DnsMultiplexer::new(stream, handle).with_timeout(self.timeout);
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(mux);
        tokio::spawn(background);
        Ok(client)
    }

    fn timed_out(&self) -> ProviderError {
        ProviderError::new(
            ErrorKind::Transient,
            format!(
                "DNS server {} did not answer within {}s (timeout)",
                self.server,
                self.timeout.as_secs_f32()
            ),
        )
    }

    fn key_shown(&self) -> String {
        match (&self.key_name, self.algorithm) {
            (Some(name), Some(alg)) => format!("`{name}` ({})", algorithm_name(alg)),
            (Some(name), None) => format!("`{name}`"),
            _ => "(none)".to_owned(),
        }
    }

    /// A response whose TSIG record carries an error: the server refused the key. Each error
    /// says where to look. `skew_s` is the server's clock minus ours when the server told it
    /// (BADTIME responses carry the server's time).
    fn tsig_error(
        &self,
        error: TsigError,
        code: ResponseCode,
        skew_s: Option<i64>,
        what: &str,
    ) -> ProviderError {
        let server = &self.server;
        let key = self.key_shown();
        let zone = &self.zone;
        let rcode = rcode_name(code);
        let message = match error {
            TsigError::BadKey => format!(
                "TSIG key {key} not accepted for zone {zone} (BADKEY): DNS server {server} answered \
                 {rcode} with TSIG error BADKEY to {what} — it does not know a key of this name and \
                 algorithm, or does not allow it to update this zone; check tsig.name and \
                 tsig.algorithm against the server's key definition, and the zone's update \
                 ACL/update-policy on the server"
            ),
            TsigError::BadSig => format!(
                "TSIG signature rejected (BADSIG): DNS server {server} knows TSIG key {key} but the \
                 signature of {what} did not verify ({rcode}, TSIG error BADSIG) — the secret \
                 differs from the server's; check tsig.secret"
            ),
            TsigError::BadTime => {
                let skew = skew_s.map_or_else(String::new, |s| {
                    format!(" (the server's clock is {s:+}s from this host's)")
                });
                format!(
                    "TSIG time rejected (BADTIME): DNS server {server} answered {rcode} with TSIG \
                     error BADTIME to {what} signed with key {key} — this host's clock and the \
                     server's differ by more than the {TSIG_FUDGE_S}s fudge{skew}; check NTP on \
                     both"
                )
            }
            TsigError::BadTrunc => format!(
                "TSIG MAC rejected (BADTRUNC): DNS server {server} answered {rcode} with TSIG error \
                 BADTRUNC to {what} signed with key {key}; check the server's TSIG settings"
            ),
            TsigError::Unknown(n) => format!(
                "TSIG rejected: DNS server {server} answered {rcode} with TSIG error {n} to {what} \
                 signed with key {key}; check tsig.name/algorithm/secret and the server's log"
            ),
        };
        ProviderError::new(ErrorKind::Auth, message)
    }

    /// Translates a hickory transport/protocol error. Never includes the secret (hickory's
    /// messages do not carry key material, and TSIG is checked by this module, not there).
    fn net_error(&self, e: NetError) -> ProviderError {
        match &e {
            NetError::Timeout => return self.timed_out(),
            NetError::Io(io) => {
                return ProviderError::new(
                    ErrorKind::Transient,
                    format!("cannot reach DNS server {}: {io}", self.server),
                );
            }
            _ => {}
        }
        let text = e.to_string();
        if e.is_connection_closed() {
            return ProviderError::new(
                ErrorKind::Transient,
                format!("DNS server {} closed the connection: {text}", self.server),
            );
        }
        ProviderError::new(
            ErrorKind::Failed,
            format!("DNS exchange with {} failed: {text}", self.server),
        )
    }

    /// Signs an UPDATE with the configured key (now, as this host's clock says); the verifier
    /// checks the response. `None` without a key.
    fn sign(&self, message: &mut Message) -> ProviderResult<Option<TSigVerifier>> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let now = unix_now();
        message.finalize(signer, now).map_err(|e| {
            invalid(format!(
                "cannot sign the update with TSIG key {}: {e}",
                self.key_shown()
            ))
        })
    }

    /// Checks the TSIG side of a response to a signed update: a TSIG error is the refusal it
    /// names; otherwise a response claiming success must carry a TSIG that verifies with the
    /// key. Returns the response code to interpret when the TSIG side is in order.
    fn authenticate(
        &self,
        response: &DnsResponse,
        verifier: Option<TSigVerifier>,
        what: &str,
    ) -> ProviderResult<ResponseCode> {
        let code = response.response_code;
        let Some(mut verifier) = verifier else {
            return Ok(code);
        };
        let Some(tsig) = response.signature() else {
            if code == ResponseCode::NoError {
                return Err(ProviderError::new(
                    ErrorKind::Auth,
                    format!(
                        "DNS server {} answered {what} with NOERROR but without a TSIG signature; \
                         a signed update's answer must be signed with key {} — not believed",
                        self.server,
                        self.key_shown()
                    ),
                ));
            }
            // An unsigned refusal (e.g. for a zone the server does not serve): its code says why.
            return Ok(code);
        };
        if let Some(error) = tsig.data.error {
            let skew_s = server_time(&tsig.data.other).map(|t| {
                i64::try_from(t).unwrap_or(i64::MAX) - i64::try_from(unix_now()).unwrap_or(0)
            });
            return Err(self.tsig_error(error, code, skew_s, what));
        }
        match verifier.verify(response.as_buffer()) {
            Ok(_) => Ok(code),
            Err(_) => Err(ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "the answer to {what} from DNS server {} carries a TSIG signature that does not \
                     verify with key {} (or is outside the {TSIG_FUDGE_S}s fudge of this host's \
                     clock): it was not sent by a server holding this key, or the clocks differ; \
                     not believed",
                    self.server,
                    self.key_shown()
                ),
            )),
        }
    }

    async fn exchange(
        &self,
        client: &Client<TokioRuntimeProvider>,
        message: Message,
    ) -> ProviderResult<DnsResponse> {
        let mut responses = client.send(DnsRequest::from(message));
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), responses.next()).await {
            Err(_) | Ok(None) => Err(self.timed_out()),
            Ok(Some(Err(e))) => Err(self.net_error(e)),
            Ok(Some(Ok(r))) => Ok(r),
        }
    }

    async fn query_rrset(
        &self,
        client: &mut Client<TokioRuntimeProvider>,
        name: &Name,
        rtype: RecordType,
    ) -> ProviderResult<Rrset> {
        let mut query = Query::query(name.clone(), rtype);
        query.set_query_class(DNSClass::IN);
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(query);
        message
            .edns
            .get_or_insert_with(Edns::new)
            .set_max_payload(DEFAULT_MAX_PAYLOAD_LEN)
            .set_version(0);
        let response = self.exchange(client, message).await?;
        match response.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            code => return Err(self.rcode_error(code, &format!("query {name} {rtype}"), false)),
        }
        if !response.metadata.authoritative {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "DNS server {} is not authoritative for {name} (answer without AA flag); \
                     point `server` at the zone's primary",
                    self.server
                ),
            ));
        }
        let mut out = Rrset::default();
        for answer in &response.answers {
            if answer.name != *name {
                continue;
            }
            match &answer.data {
                RData::CNAME(target) => {
                    return Err(ProviderError::new(
                        ErrorKind::Invalid,
                        format!(
                            "{name} is a CNAME to {} — swing changes A/AAAA records only",
                            target.0
                        ),
                    ));
                }
                RData::A(a) if rtype == RecordType::A => {
                    out.addrs.insert(IpAddr::V4(a.0));
                    out.ttl = Some(out.ttl.map_or(answer.ttl, |t| t.min(answer.ttl)));
                }
                RData::AAAA(a) if rtype == RecordType::AAAA => {
                    out.addrs.insert(IpAddr::V6(a.0));
                    out.ttl = Some(out.ttl.map_or(answer.ttl, |t| t.min(answer.ttl)));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// A response code that is neither success nor a failed prerequisite, with no TSIG error.
    /// `update`: the exchange was an UPDATE (else a query).
    fn rcode_error(&self, code: ResponseCode, what: &str, update: bool) -> ProviderError {
        let server = &self.server;
        let zone = &self.zone;
        match code {
            ResponseCode::Refused if update => ProviderError::new(
                ErrorKind::Refused,
                format!(
                    "DNS server {server} refused {what} (REFUSED): it does not accept updates of \
                     zone {zone} from key {} or from this host's address; check the zone's \
                     allow-update/update-policy/ACL on the server",
                    self.key_shown()
                ),
            ),
            ResponseCode::Refused => ProviderError::new(
                ErrorKind::Refused,
                format!(
                    "DNS server {server} refused {what} (REFUSED): it does not serve zone {zone} or \
                     does not answer this host; check `server`, `zone` and the server's allow-query"
                ),
            ),
            ResponseCode::NotAuth => {
                let unsigned = if self.signer.is_none() {
                    "; the update was not signed, and some servers (e.g. Knot) answer an update \
                     without an allowed key this way: configure `tsig`"
                } else {
                    ""
                };
                ProviderError::new(
                    ErrorKind::Auth,
                    format!(
                        "DNS server {server} answered NOTAUTH (no TSIG error) to {what}: it is not \
                         authoritative for zone {zone}; check that `server` is the zone's primary \
                         and `zone` is the zone as the server serves it{unsigned}"
                    ),
                )
            }
            ResponseCode::BADSIG => self.tsig_error(TsigError::BadSig, code, None, what),
            ResponseCode::BADKEY => self.tsig_error(TsigError::BadKey, code, None, what),
            ResponseCode::BADTIME => self.tsig_error(TsigError::BadTime, code, None, what),
            ResponseCode::NotZone => ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "DNS server {server} answered NOTZONE to {what}: the record is not inside zone \
                     {zone} as the server serves it; check `zone` and `record`"
                ),
            ),
            ResponseCode::ServFail => ProviderError::new(
                ErrorKind::Transient,
                format!("DNS server {server} failed {what} (SERVFAIL)"),
            ),
            ResponseCode::NotImp => ProviderError::new(
                ErrorKind::Refused,
                format!("DNS server {server} does not implement {what} (NOTIMP)"),
            ),
            other => ProviderError::new(
                ErrorKind::Failed,
                format!(
                    "DNS server {server} answered {} to {what}",
                    rcode_name(other)
                ),
            ),
        }
    }

    /// Reads the A and AAAA rrsets of `record` (one connection).
    async fn read(&self, record: &str) -> ProviderResult<(Name, Rrset, Rrset)> {
        let name = self.record_name(record)?;
        let mut client = self.connect().await?;
        let a = self.query_rrset(&mut client, &name, RecordType::A).await?;
        let aaaa = self
            .query_rrset(&mut client, &name, RecordType::AAAA)
            .await?;
        Ok((name, a, aaaa))
    }

    /// An UPDATE for this provider's zone: header, zone section and EDNS; the caller adds the
    /// prerequisites and updates.
    fn update_message(&self) -> Message {
        let mut zone = Query::new();
        zone.set_name(self.zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        message.add_zone(zone);
        message
            .edns
            .get_or_insert_with(Edns::new)
            .set_max_payload(DEFAULT_MAX_PAYLOAD_LEN)
            .set_version(0);
        message
    }

    /// Signs and sends one UPDATE (`what` names it in errors) and interprets the answer:
    /// NOERROR is success; a failed prerequisite is `Conflict` (the message says what was
    /// `expected` and re-reads what the server has now); anything else is worded by
    /// [`Self::authenticate`] / [`Self::rcode_error`].
    async fn send_update_message(
        &self,
        name: &Name,
        mut message: Message,
        expected: &str,
        what: &str,
    ) -> ProviderResult<()> {
        let verifier = self.sign(&mut message)?;
        let client = self.connect().await?;
        let response = self.exchange(&client, message).await?;
        drop(client);
        match self.authenticate(&response, verifier, what)? {
            ResponseCode::NoError => Ok(()),
            code @ (ResponseCode::NXRRSet
            | ResponseCode::YXRRSet
            | ResponseCode::NXDomain
            | ResponseCode::YXDomain) => {
                let now = match self.read(&name.to_string()).await {
                    Ok((_, a, aaaa)) => {
                        let mut all = a.addrs;
                        all.extend(aaaa.addrs);
                        show(&all)
                    }
                    Err(_) => "unknown (re-read failed)".to_owned(),
                };
                Err(ProviderError::new(
                    ErrorKind::Conflict,
                    format!(
                        "{what}: {name} is not as expected (changed concurrently?) — expected \
                         {expected}, the server now has {now} ({} prerequisite failed); nothing \
                         was changed",
                        rcode_name(code)
                    ),
                ))
            }
            code => Err(self.rcode_error(code, what, true)),
        }
    }

    /// Sends one atomic update: every change's prerequisite ("rrset exists, value dependent"
    /// = exactly `expect`), then delete `expect` and add `new` with the new TTL.
    async fn send_update(
        &self,
        name: &Name,
        changes: &[RrsetChange],
        what: &str,
    ) -> ProviderResult<()> {
        let mut message = self.update_message();
        for c in changes {
            for ip in &c.expect {
                message.add_pre_requisite(rrset_exists_with(name, *ip));
            }
        }
        for c in changes {
            for ip in &c.expect {
                let mut del = Record::from_rdata(name.clone(), 0, rdata(*ip));
                del.dns_class = DNSClass::NONE;
                message.add_update(del);
            }
            for ip in &c.new {
                let mut add = Record::from_rdata(name.clone(), c.ttl, rdata(*ip));
                add.dns_class = DNSClass::IN;
                message.add_update(add);
            }
        }
        let expected = changes
            .iter()
            .map(|c| format!("{} {}", c.rtype, show(&c.expect)))
            .collect::<Vec<_>>()
            .join("; ");
        self.send_update_message(name, message, &expected, what)
            .await
    }

    /// Atomically replaces the rrset of `record` of one address family: succeeds only if the
    /// server's rrset is exactly `expected` (checked by the server as an RFC 2136 prerequisite),
    /// then holds exactly `new` with `ttl`. Verifies by querying again. `Conflict` when the
    /// rrset is not `expected` (nothing is changed then).
    pub async fn replace_rrset(
        &self,
        record: &str,
        expected: &[IpAddr],
        new: &[IpAddr],
        ttl: u32,
    ) -> ProviderResult<()> {
        let name = self.record_name(record)?;
        let expect: BTreeSet<IpAddr> = expected.iter().copied().collect();
        let new_set: BTreeSet<IpAddr> = new.iter().copied().collect();
        let Some(first) = expect.iter().chain(new_set.iter()).next() else {
            return Err(invalid("replace_rrset: no addresses given"));
        };
        let rtype = family(first);
        if expect.is_empty() || new_set.is_empty() {
            return Err(invalid(format!(
                "replace_rrset {name}: both the expected and the new {rtype} rrset must hold an address"
            )));
        }
        if expect
            .iter()
            .chain(new_set.iter())
            .any(|ip| family(ip) != rtype)
        {
            return Err(invalid(format!(
                "replace_rrset {name}: IPv4 and IPv6 addresses mixed; A and AAAA are separate rrsets"
            )));
        }
        let change = RrsetChange {
            rtype,
            expect,
            new: new_set.clone(),
            ttl,
        };
        self.send_update(&name, &[change], &format!("update of {name} {rtype}"))
            .await?;
        self.verify(&name, rtype, &new_set, ttl).await
    }

    async fn verify(
        &self,
        name: &Name,
        rtype: RecordType,
        want: &BTreeSet<IpAddr>,
        ttl: u32,
    ) -> ProviderResult<()> {
        let mut client = self.connect().await?;
        let got = self.query_rrset(&mut client, name, rtype).await?;
        if got.addrs == *want && got.ttl == Some(ttl) {
            Ok(())
        } else {
            Err(ProviderError::new(
                ErrorKind::Failed,
                format!(
                    "verification failed: the server accepted the update of {name} {rtype} but now reports \
                     {} (TTL {}), expected {} (TTL {ttl})",
                    show(&got.addrs),
                    got.ttl.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                    show(want)
                ),
            ))
        }
    }
}

#[async_trait]
impl DnsProvider for Rfc2136Provider {
    /// The A and AAAA addresses of `record` and their TTL (the A rrset's TTL when both exist).
    /// A record that does not exist is observed as no addresses with TTL 0.
    async fn observe(&self, record: &str) -> ProviderResult<DnsObservation> {
        let (name, a, aaaa) = self.read(record).await?;
        let ttl = a.ttl.or(aaaa.ttl).unwrap_or(0);
        let mut addresses: Vec<IpAddr> = a.addrs.into_iter().collect();
        addresses.extend(aaaa.addrs);
        let mut record = name.to_string();
        if record.len() > 1 && record.ends_with('.') {
            record.pop();
        }
        Ok(DnsObservation {
            record,
            addresses,
            ttl,
        })
    }

    /// Rewrites the observed rrset(s) with the same addresses and `ttl` in ONE update whose
    /// prerequisite is `expect.addresses`; `Conflict` if the addresses changed meanwhile.
    async fn set_ttl(&self, record: &str, expect: &DnsObservation, ttl: u32) -> ProviderResult<()> {
        let name = self.record_name(record)?;
        if expect.addresses.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                format!("{name} has no A/AAAA record to set the TTL of"),
            ));
        }
        let mut changes = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            let set: BTreeSet<IpAddr> = expect
                .addresses
                .iter()
                .copied()
                .filter(|ip| family(ip) == rtype)
                .collect();
            if !set.is_empty() {
                changes.push(RrsetChange {
                    rtype,
                    expect: set.clone(),
                    new: set,
                    ttl,
                });
            }
        }
        self.send_update(&name, &changes, &format!("TTL change of {name} to {ttl}s"))
            .await?;
        for c in &changes {
            self.verify(&name, c.rtype, &c.new, ttl).await?;
        }
        Ok(())
    }

    /// Moves `record` from `from` to `to` with one compare-and-swap (prerequisite: the rrset of
    /// that family is exactly `{from}`). Already exactly `{to}` counts as done (a resumed apply).
    async fn swing(&self, record: &str, from: IpAddr, to: IpAddr, ttl: u32) -> ProviderResult<()> {
        let name = self.record_name(record)?;
        let rtype = family(&from);
        if family(&to) != rtype {
            return Err(invalid(format!(
                "swing of {name}: from {from} and to {to} are of different address families"
            )));
        }
        if from == to {
            return Err(invalid(format!(
                "swing of {name}: from and to are both {from}"
            )));
        }
        let mut client = self.connect().await?;
        let current = self.query_rrset(&mut client, &name, rtype).await?;
        drop(client);
        let want_to = BTreeSet::from([to]);
        if current.addrs == want_to {
            return Ok(());
        }
        if current.addrs != BTreeSet::from([from]) {
            return Err(ProviderError::new(
                ErrorKind::Conflict,
                format!(
                    "swing of {name}: expected {rtype} {from}, the server has {}; nothing was changed",
                    show(&current.addrs)
                ),
            ));
        }
        let change = RrsetChange {
            rtype,
            expect: BTreeSet::from([from]),
            new: want_to.clone(),
            ttl,
        };
        self.send_update(&name, &[change], &format!("swing of {name} {from} → {to}"))
            .await?;
        self.verify(&name, rtype, &want_to, ttl).await
    }

    /// A signed UPDATE made only of prerequisites — the A and AAAA rrsets of `record` are
    /// exactly `expect.addresses` (RFC 2136 §2.4.2; a family without an expected address must
    /// not exist, §2.4.3) — and no update section: the server authenticates it and checks the
    /// prerequisites, and changes nothing (the zone's serial stays). NOERROR is `Ok`; a failed
    /// prerequisite is `Conflict`; a refused key or zone is worded as for a real update.
    ///
    /// What it proves depends on where the server decides: a message-level rule (TSIG keys,
    /// Knot's update ACL, BIND's `allow-update`) answers it as it would the real update; BIND's
    /// `update-policy` is applied per update record, and this message has none, so a key the
    /// policy grants nothing still passes here while its real update is REFUSED.
    async fn check_update(&self, record: &str, expect: &DnsObservation) -> ProviderResult<()> {
        let name = self.record_name(record)?;
        let mut message = self.update_message();
        let mut expected = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            let set: BTreeSet<IpAddr> = expect
                .addresses
                .iter()
                .copied()
                .filter(|ip| family(ip) == rtype)
                .collect();
            if set.is_empty() {
                message.add_pre_requisite(rrset_absent(&name, rtype));
            } else {
                for ip in &set {
                    message.add_pre_requisite(rrset_exists_with(&name, *ip));
                }
            }
            expected.push(format!("{rtype} {}", show(&set)));
        }
        self.send_update_message(
            &name,
            message,
            &expected.join("; "),
            &format!("update check of {name} (prerequisites only)"),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> TsigKey {
        TsigKey {
            name: "swing-key".into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: SecretValue::new(secret),
        }
    }

    fn config(tsig: Option<TsigKey>) -> Rfc2136Config {
        Rfc2136Config {
            server: "127.0.0.1:1".into(),
            zone: "example.test".into(),
            tsig,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn bad_base64_is_invalid_and_does_not_echo_the_secret() {
        let err = Rfc2136Provider::new(config(Some(key("not base64 !!hunter2")))).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(!err.message.contains("hunter2"), "{}", err.message);
        assert!(err.message.contains("swing-key"));
    }

    #[test]
    fn debug_output_redacts_the_key() {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
        let p = Rfc2136Provider::new(config(Some(key(secret)))).unwrap();
        let shown = format!("{p:?} {:?}", key(secret));
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("swing-key"));
    }

    #[test]
    fn records_outside_the_zone_are_rejected() {
        let p = Rfc2136Provider::new(config(None)).unwrap();
        assert!(p.record_name("access.example.test").is_ok());
        assert!(p.record_name("access.example.test.").is_ok());
        assert_eq!(
            p.record_name("access.example.org").unwrap_err().kind,
            ErrorKind::Invalid
        );
        assert_eq!(p.record_name("").unwrap_err().kind, ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn server_down_is_transient() {
        // Bind then drop a listener to get a loopback port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut c = config(None);
        c.server = format!("127.0.0.1:{port}");
        c.timeout = Duration::from_secs(2);
        let p = Rfc2136Provider::new(c).unwrap();
        let err = p.observe("access.example.test").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "{err}");
        assert!(err.retryable());
    }

    #[tokio::test]
    async fn a_silent_server_times_out_as_transient() {
        // Accepts the TCP connection, never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let mut c = config(None);
        c.server = addr.to_string();
        c.timeout = Duration::from_millis(500);
        let p = Rfc2136Provider::new(c).unwrap();
        let started = std::time::Instant::now();
        let err = p.observe("access.example.test").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "{err}");
        assert!(err.message.contains("timeout"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        hold.abort();
    }

    use hickory_proto::op::MessageType;
    use hickory_proto::rr::TSigResponseContext;
    use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";

    fn signed_provider() -> Rfc2136Provider {
        Rfc2136Provider::new(config(Some(key(SECRET)))).unwrap()
    }

    /// A signed UPDATE request as the provider sends it, with its verifier.
    fn signed_request(p: &Rfc2136Provider) -> (Message, TSigVerifier) {
        let mut m = p.update_message();
        let verifier = p.sign(&mut m).unwrap().expect("a key is configured");
        (m, verifier)
    }

    fn response_to(request: &Message, code: ResponseCode) -> Message {
        let mut r = Message::new(request.id, MessageType::Response, OpCode::Update);
        r.metadata.response_code = code;
        r
    }

    fn wire(m: &Message) -> DnsResponse {
        DnsResponse::from_buffer(m.to_vec().unwrap()).unwrap()
    }

    /// An unsigned TSIG record carrying `error` (as servers send for BADKEY/BADSIG), with
    /// `other` data.
    fn tsig_error_record(request: &Message, error: TsigError, other: Vec<u8>) -> Box<Record<TSIG>> {
        Box::new(make_tsig_record(
            Name::from_ascii("swing-key.").unwrap(),
            TSIG::new(
                HickoryTsigAlgorithm::HmacSha256,
                unix_now(),
                TSIG_FUDGE_S,
                Vec::new(),
                request.id,
                Some(error),
                other,
            ),
        ))
    }

    fn refusal(code: ResponseCode, error: Option<TsigError>, other: Vec<u8>) -> ProviderError {
        let p = signed_provider();
        let (request, verifier) = signed_request(&p);
        let mut r = response_to(&request, code);
        if let Some(e) = error {
            r.set_signature(tsig_error_record(&request, e, other));
        }
        let response = wire(&r);
        match p.authenticate(&response, Some(verifier), "the update") {
            Err(e) => e,
            Ok(code) => p.rcode_error(code, "the update", true),
        }
    }

    #[test]
    fn each_tsig_error_has_its_own_message_and_hint() {
        let e = refusal(ResponseCode::NotAuth, Some(TsigError::BadKey), vec![]);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("(BADKEY)"), "{e}");
        assert!(e.message.contains("NOTAUTH with TSIG error BADKEY"), "{e}");
        assert!(e.message.contains("`swing-key` (hmac-sha256)"), "{e}");
        assert!(e.message.contains("tsig.name and tsig.algorithm"), "{e}");
        assert!(e.message.contains("ACL/update-policy"), "{e}");
        assert!(!e.message.contains("tsig.secret"), "{e}");

        let e = refusal(ResponseCode::NotAuth, Some(TsigError::BadSig), vec![]);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("(BADSIG)"), "{e}");
        assert!(e.message.contains("check tsig.secret"), "{e}");
        assert!(!e.message.contains("BADKEY"), "{e}");

        // BADTIME carries the server's time (48 bits) in "other data": the skew is shown.
        let server = unix_now() + 3600;
        let other = server.to_be_bytes()[2..].to_vec();
        let e = refusal(ResponseCode::NotAuth, Some(TsigError::BadTime), other);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("(BADTIME)"), "{e}");
        assert!(e.message.contains("check NTP"), "{e}");
        assert!(e.message.contains("the server's clock is +360"), "{e}");
        let e = refusal(ResponseCode::NotAuth, Some(TsigError::BadTime), vec![1, 2]);
        assert!(e.message.contains("(BADTIME)") && !e.message.contains("server's clock is"));

        let e = refusal(ResponseCode::NotAuth, Some(TsigError::Unknown(420)), vec![]);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("TSIG error 420"), "{e}");
        assert!(!SECRET.is_empty() && !e.message.contains(SECRET));
    }

    #[test]
    fn each_refusal_code_has_its_own_message_and_hint() {
        let e = refusal(ResponseCode::Refused, None, vec![]);
        assert_eq!(e.kind, ErrorKind::Refused);
        assert!(e.message.contains("(REFUSED)"), "{e}");
        assert!(e.message.contains("allow-update/update-policy/ACL"), "{e}");

        let e = refusal(ResponseCode::NotZone, None, vec![]);
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("NOTZONE"), "{e}");
        assert!(e.message.contains("check `zone` and `record`"), "{e}");

        let e = refusal(ResponseCode::NotAuth, None, vec![]);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("NOTAUTH (no TSIG error)"), "{e}");
        assert!(
            e.message
                .contains("not authoritative for zone example.test."),
            "{e}"
        );
        assert!(!e.message.contains("configure `tsig`"), "signed: {e}");

        // The same code to an unsigned update also points at the missing key.
        let unsigned = Rfc2136Provider::new(config(None)).unwrap();
        let e = unsigned.rcode_error(ResponseCode::NotAuth, "the update", true);
        assert!(e.message.contains("configure `tsig`"), "{e}");

        // A query refused is about serving the zone, not the update policy.
        let e = signed_provider().rcode_error(ResponseCode::Refused, "query", false);
        assert_eq!(e.kind, ErrorKind::Refused);
        assert!(e.message.contains("allow-query"), "{e}");
    }

    #[test]
    fn a_success_must_carry_a_signature_that_verifies() {
        let p = signed_provider();

        // Unsigned NOERROR to a signed update: not believed.
        let (request, verifier) = signed_request(&p);
        let r = wire(&response_to(&request, ResponseCode::NoError));
        let e = p
            .authenticate(&r, Some(verifier), "the update")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("without a TSIG signature"), "{e}");

        // Signed by the server with the same key: believed.
        let (request, verifier) = signed_request(&p);
        let request_mac = request.signature().unwrap().data.mac.clone();
        let mut r = response_to(&request, ResponseCode::NoError);
        let bytes = r.to_vec().unwrap();
        let signer = p.signer.clone().unwrap();
        let tsig =
            TSigResponseContext::new(request.id, unix_now(), signer, request_mac.clone(), None)
                .sign(&bytes)
                .unwrap();
        r.set_signature(tsig);
        assert_eq!(
            p.authenticate(&wire(&r), Some(verifier), "the update")
                .unwrap(),
            ResponseCode::NoError
        );

        // Signed with another secret: not believed.
        let (request, verifier) = signed_request(&p);
        let request_mac = request.signature().unwrap().data.mac.clone();
        let mut r = response_to(&request, ResponseCode::NoError);
        let bytes = r.to_vec().unwrap();
        let other = tsig_signer(&key("b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==")).unwrap();
        let tsig = TSigResponseContext::new(request.id, unix_now(), other, request_mac, None)
            .sign(&bytes)
            .unwrap();
        r.set_signature(tsig);
        let e = p
            .authenticate(&wire(&r), Some(verifier), "the update")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("does not verify"), "{e}");

        // An unsigned refusal is still read by its code.
        let (request, verifier) = signed_request(&p);
        let r = wire(&response_to(&request, ResponseCode::Refused));
        assert_eq!(
            p.authenticate(&r, Some(verifier), "the update").unwrap(),
            ResponseCode::Refused
        );
    }

    #[test]
    fn server_time_reads_48_bits_only() {
        assert_eq!(server_time(&[0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(server_time(&[]), None);
        assert_eq!(server_time(&[0; 8]), None);
    }

    #[tokio::test]
    async fn mixed_families_are_invalid() {
        let p = Rfc2136Provider::new(config(None)).unwrap();
        let err = p
            .swing(
                "access.example.test",
                "10.0.0.11".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
                60,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
    }
}
