//! The conformance suite every provider passes: generic async checks written against the
//! engine's provider traits, called from each provider's integration tests with a real
//! backend (simulator, `named`, nftables and iptables in a namespace, an exec script).
//!
//! Must not: know a concrete provider type.

pub mod appliance;
pub mod dns;
pub mod nat;
pub mod store;
