//! (rfc2136: not yet implemented — see docs/architecture.md)
