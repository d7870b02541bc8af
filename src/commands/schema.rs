//! `swing schema`: print the editor JSON schema of plan format v1 (the same text as the
//! committed `schema/plan.schema.json`: the shape and the cross-field rules JSON Schema can
//! state), e.g. for editors' `yaml-language-server` or CI tooling.
//!
//! Must not: build the schema itself — it comes from `swing_schema::editor_schema_pretty`.

use std::io::Write;

use crate::exit::{CliError, CliResult, Exit};

/// Arguments of `swing schema` (none yet).
#[derive(Debug, Clone, clap::Args)]
pub struct SchemaArgs {}

/// Prints the schema.
pub fn run(_args: &SchemaArgs) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(swing_schema::editor_schema_pretty().as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => Ok(Exit::Ok),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(e) => Err(CliError::prefixed(
            "swing schema",
            format!("cannot write: {e}"),
        )),
    }
}
