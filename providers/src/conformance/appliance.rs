//! Conformance checks for the appliance provider trait (not yet written).
