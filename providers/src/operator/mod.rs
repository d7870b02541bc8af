//! Operator bridges: carry out operator steps without a person. `exec` runs the site's own
//! command with a JSON description of the step on stdin; `sim` drives the simulator's `/_sim`
//! automation. Both implement [`swing_engine::provider::OperatorBridge`].
//!
//! Must not: verify outcomes themselves (the engine verifies through the vendor APIs after
//! every operator step) or be used by the appliance provider's production path.

pub mod exec;
pub mod sim;

pub use exec::{ExecOperator, OPERATOR_PROTOCOL, OperatorRequest, OperatorResponse};
pub use sim::{SimOperator, SimTarget};
