//! Conformance checks for the nat provider trait (not yet written).
