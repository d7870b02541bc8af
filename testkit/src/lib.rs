//! What swing's demo, tests and benchmarks share: labs of simulated appliances on loopback
//! for every scenario of the guide ([`kit`]) and one whole change driven in such a lab
//! ([`demo`]); the twin of a real site ([`twin`]) and the rehearsal of a change on it
//! ([`rehearse`]); runs of the real binary against a lab ([`e2e`]); real DNS servers — BIND
//! `named` ([`named`]) and Knot DNS `knotd` ([`knot`]), sharing [`dns`]; network namespaces with real nftables ([`netns`], [`nat_net`],
//! [`nat_gateway`]); a webhook receiver for notifications ([`webhook`]); checkers from other ecosystems ([`tools`]); and, with the `plangen` feature, random valid plans (`plangen`).
//!
//! Must not: be a normal dependency of the engine, the providers or the schema (only their
//! tests and benchmarks use it; the binary reaches it only through its `demo` feature), or
//! talk to anything but loopback and the network namespaces it creates.

pub mod demo;
pub mod dns;
pub mod e2e;
pub mod kit;
pub mod knot;
pub mod named;
pub mod nat_gateway;
pub mod nat_net;
pub mod netns;
#[cfg(feature = "plangen")]
pub mod plangen;
pub mod postgres;
pub mod rehearse;
pub mod tools;
pub mod twin;
pub mod webhook;
