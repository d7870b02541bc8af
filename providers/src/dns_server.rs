//! (dns_server: not yet implemented — see docs/architecture.md)
