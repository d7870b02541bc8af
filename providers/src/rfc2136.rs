//! The `rfc2136` DNS provider: reads a record's A/AAAA rrset and TTL from the authoritative
//! server and changes it with TSIG-signed RFC 2136 dynamic updates (hickory-net over TCP).
//!
//! Owns: the wire conversation with one authoritative server for one zone — queries
//! (non-recursive, the answer must carry the AA flag), atomic compare-and-swap updates whose
//! prerequisite is the rrset the caller expects (so a concurrent change is detected as
//! [`ErrorKind::Conflict`], never overwritten), verification by querying again, and the
//! translation of DNS/TSIG failures into clear [`ProviderError`]s (hickory reports a rejected
//! TSIG key as a "truncated HMACs" protocol error; this module says "TSIG key rejected (BADSIG)").
//!
//! Must not: log or put into any error the TSIG secret (it arrives as a
//! [`swing_schema::SecretValue`] and lives only inside the hickory `TSigner`), send traffic
//! anywhere but the configured server, retry a non-idempotent call on its own, or panic on
//! anything a server sends.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as HickoryTsigAlgorithm;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
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
        let (signer, key_name) = match &config.tsig {
            Some(k) => (Some(tsig_signer(k)?), Some(k.name.clone())),
            None => (None, None),
        };
        Ok(Rfc2136Provider {
            server: config.server.trim().to_owned(),
            zone,
            signer,
            key_name,
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
                "record `{record}` is not in zone {} of this provider",
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

    /// One TCP connection (signed when a key is configured); dropped after the operation.
    async fn connect(&self) -> ProviderResult<Client<TokioRuntimeProvider>> {
        let addr = self.resolve().await?;
        let (connect, handle) =
            TcpClientStream::new(addr, None, Some(self.timeout), TokioRuntimeProvider::new());
        let stream = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|e| self.net_error(e))?;
        let mut mux = DnsMultiplexer::new(stream, handle).with_timeout(self.timeout);
        if let Some(signer) = &self.signer {
            mux = mux.with_signer(signer.clone());
        }
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

    fn tsig_rejected(&self) -> ProviderError {
        ProviderError::new(
            ErrorKind::Auth,
            format!(
                "TSIG key rejected (BADSIG): DNS server {} did not accept TSIG key `{}` for zone {}; \
                 check tsig.name/secret (and the clock: BADTIME looks the same)",
                self.server,
                self.key_name.as_deref().unwrap_or("?"),
                self.zone
            ),
        )
    }

    /// Translates a hickory transport/protocol error. Never includes the secret (hickory's
    /// messages do not carry key material; TSIG failures are replaced by our own text).
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
        let lower = text.to_ascii_lowercase();
        if self.signer.is_some()
            && (lower.contains("truncated hmac")
                || lower.contains("tsig")
                || lower.contains("hmac"))
        {
            return self.tsig_rejected();
        }
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
            code => return Err(self.rcode_error(code, &format!("query {name} {rtype}"))),
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

    fn rcode_error(&self, code: ResponseCode, what: &str) -> ProviderError {
        let server = &self.server;
        match code {
            ResponseCode::Refused => ProviderError::new(
                ErrorKind::Refused,
                format!(
                    "DNS server {server} refused {what} (REFUSED): the key may not update this name \
                     (update-policy/allow-update) or the server does not serve zone {}",
                    self.zone
                ),
            ),
            ResponseCode::NotAuth => ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "DNS server {server} answered NOTAUTH to {what}: not authoritative for zone {} \
                     or the TSIG key `{}` is not accepted",
                    self.zone,
                    self.key_name.as_deref().unwrap_or("(none)")
                ),
            ),
            ResponseCode::BADSIG | ResponseCode::BADKEY | ResponseCode::BADTIME => {
                self.tsig_rejected()
            }
            ResponseCode::NotZone => ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "DNS server {server}: {what} is outside zone {} (NOTZONE)",
                    self.zone
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

    /// Sends one atomic update: every change's prerequisite ("rrset exists, value dependent"
    /// = exactly `expect`), then delete `expect` and add `new` with the new TTL.
    async fn send_update(
        &self,
        name: &Name,
        changes: &[RrsetChange],
        what: &str,
    ) -> ProviderResult<()> {
        let mut zone = Query::new();
        zone.set_name(self.zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        message.add_zone(zone);
        for c in changes {
            for ip in &c.expect {
                let mut pre = Record::from_rdata(name.clone(), 0, rdata(*ip));
                pre.dns_class = DNSClass::IN;
                message.add_pre_requisite(pre);
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
        message
            .edns
            .get_or_insert_with(Edns::new)
            .set_max_payload(DEFAULT_MAX_PAYLOAD_LEN)
            .set_version(0);
        let client = self.connect().await?;
        let response = self.exchange(&client, message).await?;
        match response.response_code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::NXRRSet
            | ResponseCode::YXRRSet
            | ResponseCode::NXDomain
            | ResponseCode::YXDomain => {
                let expected = changes
                    .iter()
                    .map(|c| format!("{} {}", c.rtype, show(&c.expect)))
                    .collect::<Vec<_>>()
                    .join("; ");
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
                        "{what}: {name} changed concurrently — expected {expected}, the server now has {now} \
                         ({} prerequisite failed); nothing was changed",
                        rcode_name(response.response_code)
                    ),
                ))
            }
            code => Err(self.rcode_error(code, what)),
        }
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
