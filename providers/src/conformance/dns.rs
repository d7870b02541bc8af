//! Conformance checks for the dns provider trait (not yet written).
