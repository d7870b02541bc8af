//! swing-providers: the concrete providers behind the engine's traits
//! (`swing_engine::provider`): `beyondtrust` (appliance vendor APIs and operator bridges),
//! `rfc2136` (DNS dynamic update) with an embedded authoritative server, `nftables` (NAT),
//! and `exec` (a site's own command speaking JSON over stdio), with `process` running such
//! commands (timeout, process-group kill, capped output), and `input_file` reading the secret
//! and CA files a plan points at (regular files only, capped).
//!
//! Must not: depend on the simulator (`swing-sim` is a dev-dependency for tests only), decide
//! exit codes, or print to the terminal.

pub mod beyondtrust;
pub mod conformance;
pub mod dns_server;
pub mod exec;
pub mod input_file;
pub mod nftables;
pub mod operator;
pub mod probe;
pub mod process;
pub mod rfc2136;
