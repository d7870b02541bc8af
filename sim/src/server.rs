//! Sockets, TLS and connections.
//!
//! Owns: binding listeners (SO_REUSEADDR, so an appliance coming back after an install can
//! rebind its port), the accept loop, TLS with a swappable certificate, serving HTTP/1.1 per
//! connection, and closing connections: gracefully when a listener stops (in-flight responses
//! finish), with a TCP RST when the `reset` fault asks for it.
//!
//! Must not: know any route or appliance behaviour; disable or weaken TLS.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::SimError;
use crate::sim::Sim;

/// Serves whatever certificate is currently the appliance's default.
#[derive(Debug)]
pub(crate) struct CertResolver(RwLock<Arc<CertifiedKey>>);

impl CertResolver {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        CertResolver(RwLock::new(key))
    }
    pub fn set(&self, key: Arc<CertifiedKey>) {
        match self.0.write() {
            Ok(mut g) => *g = key,
            Err(p) => *p.into_inner() = key,
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.0.read() {
            Ok(g) => Some(g.clone()),
            Err(p) => Some(p.into_inner().clone()),
        }
    }
}

pub(crate) fn acceptor(resolver: Arc<CertResolver>) -> Result<tokio_rustls::TlsAcceptor, SimError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Per-connection control handed to handlers (request extension).
#[derive(Clone)]
pub(crate) struct ConnCtl {
    /// Cancel to reset the connection (TCP RST) instead of answering.
    pub reset: CancellationToken,
}

/// A running accept loop.
pub(crate) struct Listener {
    cancel: CancellationToken,
    join: JoinHandle<()>,
}

impl Listener {
    /// Stop accepting and close the socket; open connections finish their current response.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.join.await;
    }
}

/// The appliance's listeners.
#[derive(Default)]
pub(crate) struct Net {
    pub router: Option<Router>,
    pub main: Option<Listener>,
    pub shared: BTreeMap<IpAddr, Listener>,
}

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

pub(crate) fn spawn_listener(
    sim: &Arc<Sim>,
    listener: TcpListener,
    router: Option<Router>,
) -> Listener {
    let cancel = sim.root.child_token();
    let c = cancel.clone();
    let sim2 = sim.clone();
    let join = sim.tracker.spawn(async move {
        let Some(router) = router else { return };
        loop {
            tokio::select! {
                _ = c.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((tcp, _)) => {
                        let conn_cancel = c.child_token();
                        sim2.tracker.spawn(serve_conn(sim2.tls.clone(), tcp, router.clone(), conn_cancel));
                    }
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
            }
        }
        drop(listener);
    });
    Listener { cancel, join }
}

async fn serve_conn(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    router: Router,
    cancel: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    // A second handle on the socket so a reset can set SO_LINGER 0 after hyper owns the stream.
    let dup = tcp
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(socket2::Socket::from);
    let tls = tokio::select! {
        _ = cancel.cancelled() => return,
        r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)) => match r {
            Ok(Ok(s)) => s,
            _ => return,
        },
    };
    let reset = CancellationToken::new();
    let ctl = ConnCtl {
        reset: reset.clone(),
    };
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = reset.cancelled() => {
            if let Some(s) = &dup {
                let _ = s.set_linger(Some(Duration::ZERO));
            }
        }
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.as_mut()).await;
        }
    }
}
