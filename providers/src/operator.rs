//! (operator: not yet implemented — see docs/architecture.md)
