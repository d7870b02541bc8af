//! `swing schema`: print the JSON schema of plan format v1 (the same text as the committed
//! `schema/plan.schema.json`), e.g. for editors' `yaml-language-server` or CI tooling.
//!
//! Must not: build the schema itself — it comes from `swing_schema::plan_schema_pretty`.

use std::io::Write;

/// Arguments of `swing schema` (none yet).
#[derive(Debug, Clone, clap::Args)]
pub struct SchemaArgs {}

/// Prints the schema; returns the exit code.
pub fn run(_args: &SchemaArgs) -> i32 {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(swing_schema::plan_schema_pretty().as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("swing schema: cannot write: {e}");
            1
        }
    }
}
