//! The embedded authoritative DNS server: one zone held in memory, served over UDP and TCP on
//! a loopback port (or an address the caller chooses), accepting TSIG-signed RFC 2136 dynamic
//! updates — for the demo and for users without a DNS server at hand. Built on hickory-server
//! (its `SqliteZoneHandler` without a journal is the in-memory zone that implements RFC 2136
//! prerequisites, updates and TSIG checks).
//!
//! Owns: starting and stopping the server inside the caller's tokio runtime, and making each
//! update atomic (hickory checks prerequisites and then applies the changes record by record;
//! this module runs an update exclusively — no other update can slip between its prerequisite
//! check and its changes, and no query sees a half-applied update, e.g. the record deleted but
//! the new address not yet added, which a client would see as an outage).
//!
//! The `dns-down` fault ([`EmbeddedDns::set_down`]): while it is on, every request — query
//! or update — is answered SERVFAIL, as a failed server answers, so a rehearsal can show
//! what a DNS outage during the change does.
//!
//! Must not: accept unsigned updates (hickory refuses updates without a valid TSIG), persist
//! anything to disk, print the TSIG secret, or outlive its [`EmbeddedDns`] handle (dropping
//! the handle stops the server).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RrKey};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::store::sqlite::SqliteZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponseBuilder, ZoneHandler, ZoneType,
};
use tokio::net::{TcpListener, UdpSocket};

use crate::rfc2136::{TsigKey, tsig_signer};
use swing_schema::SecretValue;

/// Why the embedded server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsServerError {
    #[error("invalid zone or record: {0}")]
    Invalid(String),
    #[error("invalid TSIG key: {0}")]
    Key(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// One address record to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedRecord {
    /// Absolute name inside the zone, e.g. `access.example.test`.
    pub name: String,
    pub address: IpAddr,
    pub ttl: u32,
}

impl EmbeddedRecord {
    pub fn new(name: impl Into<String>, address: IpAddr, ttl: u32) -> Self {
        EmbeddedRecord {
            name: name.into(),
            address,
            ttl,
        }
    }
}

/// A running embedded server. Dropping it stops the server.
pub struct EmbeddedDns {
    /// Where it listens (UDP and TCP on the same port).
    pub addr: SocketAddr,
    /// The zone it serves (absolute, with trailing dot).
    pub zone: String,
    server: Server<AtomicUpdates>,
    down: Arc<AtomicBool>,
}

impl std::fmt::Debug for EmbeddedDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDns")
            .field("addr", &self.addr)
            .field("zone", &self.zone)
            .finish()
    }
}

impl EmbeddedDns {
    /// The `dns-down` fault: while `down`, every request is answered SERVFAIL.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// A handle that switches the `dns-down` fault from elsewhere (e.g. an event hook).
    pub fn down_switch(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.down)
    }

    /// Stops the server and waits until its tasks have ended.
    pub async fn shutdown(mut self) {
        // An error here only reports how a listener task ended; the server is stopped either way.
        let _ = self.server.shutdown_gracefully().await;
    }
}

impl Drop for EmbeddedDns {
    fn drop(&mut self) {
        // Stop accepting; the JoinSet inside `Server` aborts its tasks when dropped.
        self.server.shutdown_token().cancel();
    }
}

/// Hands requests to the catalog; an update runs alone (write lock), queries share (read lock),
/// so each update is one atomic step for other updates and for readers.
struct AtomicUpdates {
    catalog: Catalog,
    zone_lock: tokio::sync::RwLock<()>,
    down: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl RequestHandler for AtomicUpdates {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        if self.down.load(Ordering::SeqCst) {
            let answer = MessageResponseBuilder::from_message_request(request)
                .error_msg(&request.metadata, ResponseCode::ServFail);
            return match response_handle.send_response(answer).await {
                Ok(info) => info,
                Err(_) => {
                    let mut metadata =
                        hickory_proto::op::Metadata::response_from_request(&request.metadata);
                    metadata.response_code = ResponseCode::ServFail;
                    ResponseInfo::from(hickory_proto::op::Header {
                        metadata,
                        counts: Default::default(),
                    })
                }
            };
        }
        if request.metadata.op_code == OpCode::Update {
            let _alone = self.zone_lock.write().await;
            self.catalog
                .handle_request::<R, T>(request, response_handle)
                .await
        } else {
            let _shared = self.zone_lock.read().await;
            self.catalog
                .handle_request::<R, T>(request, response_handle)
                .await
        }
    }
}

fn absolute(what: &str, s: &str) -> Result<Name, DnsServerError> {
    let mut n = Name::from_ascii(s.trim()).map_err(|e| {
        DnsServerError::Invalid(format!("{what} `{s}` is not a valid DNS name: {e}"))
    })?;
    n.set_fqdn(true);
    Ok(n)
}

fn build_zone(
    zone: &Name,
    records: &[EmbeddedRecord],
) -> Result<InMemoryZoneHandler, DnsServerError> {
    let child = |label: &str| -> Result<Name, DnsServerError> {
        Name::from_ascii(label)
            .and_then(|l| l.append_domain(zone))
            .map_err(|e| DnsServerError::Invalid(format!("zone {zone}: {e}")))
    };
    let ns = child("ns")?;
    let hostmaster = child("hostmaster")?;
    let serial = 1;
    let mut map = std::collections::BTreeMap::<RrKey, RecordSet>::new();
    let mut put = |record: Record| {
        let key = RrKey::new(LowerName::new(&record.name), record.record_type());
        map.entry(key)
            .or_insert_with(|| RecordSet::new(record.name.clone(), record.record_type(), serial))
            .insert(record, serial);
    };
    put(Record::from_rdata(
        zone.clone(),
        3600,
        RData::SOA(SOA::new(
            ns.clone(),
            hostmaster,
            serial,
            3600,
            600,
            86400,
            60,
        )),
    ));
    put(Record::from_rdata(zone.clone(), 3600, RData::NS(NS(ns))));
    for r in records {
        let name = absolute("record", &r.name)?;
        if !zone.zone_of(&name) {
            return Err(DnsServerError::Invalid(format!(
                "record {name} is not in zone {zone}"
            )));
        }
        let data = match r.address {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        put(Record::from_rdata(name, r.ttl, data));
    }
    InMemoryZoneHandler::new(zone.clone(), map, ZoneType::Primary, AxfrPolicy::Deny, None)
        .map_err(DnsServerError::Invalid)
}

/// A fresh random TSIG secret (32 bytes from the system's CSPRNG, base64 — what `tsig-keygen`
/// prints for hmac-sha256), for sites that have no key yet.
pub fn generate_tsig_secret() -> Result<SecretValue, DnsServerError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DnsServerError::Key("the system random generator failed".into()))?;
    let secret = SecretValue::new(base64::engine::general_purpose::STANDARD.encode(bytes));
    bytes.fill(0);
    Ok(secret)
}

/// Starts the embedded server on `127.0.0.1` with a free port (UDP and TCP).
pub async fn start_embedded(
    zone: &str,
    records: &[EmbeddedRecord],
    tsig_key: TsigKey,
) -> Result<EmbeddedDns, DnsServerError> {
    start_embedded_on(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, zone, records, tsig_key).await
}

/// Starts the embedded server on `ip:port` (`port` 0 picks a free port usable for both UDP
/// and TCP).
pub async fn start_embedded_on(
    ip: IpAddr,
    port: u16,
    zone: &str,
    records: &[EmbeddedRecord],
    tsig_key: TsigKey,
) -> Result<EmbeddedDns, DnsServerError> {
    let zone_name = absolute("zone", zone)?;
    let signer = tsig_signer(&tsig_key).map_err(|e| DnsServerError::Key(e.message))?;
    let in_memory = build_zone(&zone_name, records)?;
    let mut handler = SqliteZoneHandler::new(in_memory, AxfrPolicy::Deny, true, false);
    handler.set_tsig_signers(vec![signer]);
    let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&zone_name), vec![handler]);

    let (tcp, udp) = bind_pair(ip, port).await?;
    let addr = tcp.local_addr().map_err(|source| DnsServerError::Bind {
        addr: SocketAddr::new(ip, port),
        source,
    })?;
    let down = Arc::new(AtomicBool::new(false));
    let mut server = Server::new(AtomicUpdates {
        catalog,
        zone_lock: tokio::sync::RwLock::new(()),
        down: Arc::clone(&down),
    });
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(10), 32);
    Ok(EmbeddedDns {
        addr,
        zone: zone_name.to_string(),
        server,
        down,
    })
}

/// Binds TCP and UDP on the same port; with port 0, retries until a port free for both is found.
async fn bind_pair(ip: IpAddr, port: u16) -> Result<(TcpListener, UdpSocket), DnsServerError> {
    let mut last = None;
    for _ in 0..if port == 0 { 20 } else { 1 } {
        let want = SocketAddr::new(ip, port);
        let tcp = TcpListener::bind(want)
            .await
            .map_err(|source| DnsServerError::Bind { addr: want, source })?;
        let bound = tcp
            .local_addr()
            .map_err(|source| DnsServerError::Bind { addr: want, source })?;
        match UdpSocket::bind(bound).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(source) => {
                last = Some(DnsServerError::Bind {
                    addr: bound,
                    source,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| DnsServerError::Invalid("no port".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use swing_schema::TsigAlgorithm;

    fn key() -> TsigKey {
        TsigKey {
            name: "swing-key".into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: SecretValue::new("c3dpbmctdGVzdC1rZXktMzItYnl0ZXMtbG9uZy0xMjM="),
        }
    }

    #[test]
    fn generated_secrets_are_fresh_32_byte_keys() {
        use base64::Engine as _;
        let a = generate_tsig_secret().unwrap();
        let b = generate_tsig_secret().unwrap();
        assert_ne!(a.expose(), b.expose());
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.expose())
            .unwrap();
        assert_eq!(raw.len(), 32);
        let k = TsigKey {
            name: "k".into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: a,
        };
        assert!(tsig_signer(&k).is_ok());
    }

    #[tokio::test]
    async fn refuses_records_outside_the_zone() {
        let r = [EmbeddedRecord::new(
            "access.example.org",
            "10.0.0.11".parse().unwrap(),
            60,
        )];
        let err = start_embedded("example.test", &r, key()).await.unwrap_err();
        assert!(matches!(err, DnsServerError::Invalid(_)), "{err}");
    }

    #[tokio::test]
    async fn dns_down_answers_servfail_until_cleared() {
        use swing_engine::provider::DnsProvider as _;
        let r = [EmbeddedRecord::new(
            "access.example.test",
            "10.0.0.11".parse().unwrap(),
            60,
        )];
        let server = start_embedded("example.test", &r, key()).await.unwrap();
        let dns = crate::rfc2136::Rfc2136Provider::new(crate::rfc2136::Rfc2136Config {
            server: server.addr.to_string(),
            zone: "example.test".into(),
            tsig: Some(key()),
            timeout: Duration::from_secs(2),
        })
        .unwrap();
        assert!(dns.observe("access.example.test").await.is_ok());
        server.set_down(true);
        assert!(dns.observe("access.example.test").await.is_err());
        server.set_down(false);
        assert!(dns.observe("access.example.test").await.is_ok());
    }

    #[tokio::test]
    async fn binds_loopback_with_a_free_port() {
        let r = [EmbeddedRecord::new(
            "access.example.test",
            "10.0.0.11".parse().unwrap(),
            60,
        )];
        let a = start_embedded("example.test", &r, key()).await.unwrap();
        let b = start_embedded("example.test", &r, key()).await.unwrap();
        assert!(a.addr.ip().is_loopback());
        assert_ne!(a.addr.port(), 0);
        assert_ne!(a.addr, b.addr);
        assert_eq!(a.zone, "example.test.");
        b.shutdown().await;
    }
}
