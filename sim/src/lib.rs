//! swing-sim: a simulated BeyondTrust B Series appliance, usable in-process from tests and
//! as the `swing-sim` binary.
//!
//! Owns: the simulator's public API (this file), which the BeyondTrust client, the apply
//! engine and the demo start in-process. It serves the vendor wire formats of
//! `appliance-api.md` over HTTPS (a CA generated with rcgen, shared through `ca_dir`), pair
//! behaviour over real HTTP between two simulators, a real shared-IP listener, installs that
//! take (install time × time scale) with the appliance unreachable meanwhile, `/_sim/...`
//! automation endpoints for every operator action, and fault injection.
//!
//! Must not: be a dependency of production code (it is a dev-dependency only); ever disable
//! TLS verification; report or log the client secret or the inter-appliance key.
//!
//! # Public API (stable; other crates code against it)
//!
//! ```no_run
//! # async fn demo() -> Result<(), swing_sim::SimError> {
//! use swing_sim::{Fault, SimConfig, Simulator};
//! let dir = tempfile_dir();
//! let mut cfg = SimConfig::new("a", &dir);          // listen 127.0.0.1:0, version 24.3.1
//! cfg.update_to = Some("25.1.3".into());           // offers base-7.2.1 then pra-25.1.3
//! cfg.jump_clients = 20;
//! let sim = Simulator::start(cfg).await?;
//! let url: String = sim.url();                      // "https://127.0.0.1:PORT"
//! let ca = sim.ca_pem_path();                      // DIR/ca.pem, trust this (and only this)
//! let state = sim.state();                         // snapshot, same JSON as GET /_sim/state
//! assert_eq!(state.version, "24.3.1");
//! sim.set_fault(Fault::Http5xxRate(0.5));
//! sim.shutdown().await;                            // dropping the handle also stops it
//! # Ok(()) }
//! # fn tempfile_dir() -> std::path::PathBuf { std::path::PathBuf::from("/tmp/x") }
//! ```
//!
//! - [`Simulator::start`]`(SimConfig) -> Result<SimHandle, SimError>`
//! - [`SimHandle`]: `url()`, `addr()`, `name()`, `appliance_id()`, `ca_pem_path()`,
//!   `ca_pem()`, `state() -> SimState`, `faults()`, `set_fault(Fault)`, `set_faults(Faults)`,
//!   `shared_url(IpAddr)`, `shutdown().await`.
//! - [`Fault`] parses from the CLI syntax (`"http-5xx=0.5".parse()`), see [`FAULT_NAMES`].
//! - The JSON of every `/_sim` endpoint is documented in `docs/simulator.md`.
//!
//! Time: the simulated clock is the real clock plus the `clock-skew` fault; `time_scale`
//! compresses durations (install, sync, Jump Client upgrades): an operation of `d` simulated
//! seconds takes `d * time_scale` real seconds. Durations are reported in simulated seconds
//! (`sim_duration_s`) and real milliseconds (`real_ms`).

mod api;
mod automation;
mod ca;
mod config;
mod server;
mod sim;
mod state;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

pub use config::{
    Dialect, FAULT_NAMES, Fault, Faults, JumpClientGroup, JumpClientKind, Permissions, RateLimit,
    Role, SimConfig,
};
pub use state::{
    ActionRecord, ApplianceStatus, CertificateState, JumpClientState, PackageState, SimState,
};

/// Why the simulator could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration or a request is invalid.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Creating or loading the CA or a certificate failed.
    #[error("certificate authority: {0}")]
    Ca(String),
    /// Binding or serving a socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// TLS configuration failed.
    #[error("tls: {0}")]
    Tls(String),
}

/// Entry point: starts simulated appliances.
pub struct Simulator;

impl Simulator {
    /// Start a simulator: create or reuse the CA in `config.ca_dir`, issue the leaf, bind
    /// `config.listen` (and the shared IP on the same port if set) and serve. Returns once
    /// it accepts connections.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let sim = sim::Sim::start(config).await?;
        Ok(SimHandle { sim })
    }
}

/// A running simulator. Dropping it stops the simulator (listeners close, tasks end).
pub struct SimHandle {
    sim: Arc<sim::Sim>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("name", &self.sim.cfg.name)
            .field("addr", &self.sim.addr)
            .finish()
    }
}

impl SimHandle {
    /// `https://IP:PORT` of the appliance's own address (the bound port, also when 0 was asked).
    pub fn url(&self) -> String {
        format!("https://{}", self.sim.addr)
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.sim.addr
    }
    /// The configured name.
    pub fn name(&self) -> &str {
        &self.sim.cfg.name
    }
    /// The appliance id (GUID) reported by `check_health`.
    pub fn appliance_id(&self) -> &str {
        &self.sim.appliance_id
    }
    /// `https://IP:PORT` of a shared IP on this appliance's port.
    pub fn shared_url(&self, ip: IpAddr) -> String {
        format!("https://{}", SocketAddr::new(ip, self.sim.addr.port()))
    }
    /// Path of the CA certificate (PEM) that verifies this simulator (and every simulator
    /// sharing its `ca_dir`).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.sim.ca.pem_path.clone()
    }
    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.sim.ca.pem.clone()
    }
    /// A snapshot of the state (the same document as `GET /_sim/state`).
    pub fn state(&self) -> SimState {
        self.sim.snapshot()
    }
    /// The active fault knobs.
    pub fn faults(&self) -> Faults {
        self.sim.faults()
    }
    /// Change one fault knob (takes effect for the next request).
    pub fn set_fault(&self, fault: Fault) {
        self.sim.set_faults_with(|f| f.apply(fault));
    }
    /// Replace all fault knobs.
    pub fn set_faults(&self, faults: Faults) {
        self.sim.set_faults_with(|f| *f = faults);
    }
    /// Stop serving and wait (bounded) for the simulator's tasks to end.
    pub async fn shutdown(self) {
        self.sim.shutdown().await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.sim.root.cancel();
    }
}
