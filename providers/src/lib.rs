//! swing-providers: the concrete providers behind the engine's traits
//! (`swing_engine::provider`): `beyondtrust` (appliance vendor APIs and operator bridges),
//! `rfc2136` (DNS dynamic update) with an embedded authoritative server, `nftables` and
//! `iptables` (NAT; `gateway` runs their tools and flushes conntrack for both), `exec` (a
//! site's own command speaking JSON over stdio) and `notify` (webhook and command notifiers),
//! with `process` running every such command (timeout, process-group kill, capped output).
//! Secret and CA files are read through
//! `swing_engine::input_file` (regular files only, capped), like plan files.
//!
//! Must not: depend on the simulator (`swing-sim` is a dev-dependency for tests only), decide
//! exit codes, or print to the terminal.

pub mod beyondtrust;
pub mod conformance;
pub mod dns_server;
pub mod exec;
pub mod gateway;
pub mod iptables;
pub mod nftables;
pub mod notify;
pub mod operator;
pub mod pg_state;
pub mod probe;
pub mod process;
pub mod rfc2136;
