//! Questions asked on the terminal: approval to apply a plan file, and whether a step that
//! needs a person is done.
//!
//! Owns: the wording of the questions and reading the answers. Must not: decide what happens
//! with an answer (the engine does).

use std::io::{BufRead, Write};
use std::sync::Arc;

use swing_engine::apply::{Prompter, StepSpec};

use super::progress::Progress;

/// Asks whether to apply `plan` to `site`; true only for the answer `yes`.
pub fn approve(plan: &str, site: &str) -> bool {
    print!("Apply {plan} to {site}? Only 'yes' is accepted: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim() == "yes"
}

/// Asks on the terminal whether a step that needs a person is done, with the apply's
/// progress display out of the way meanwhile.
pub struct TtyPrompter {
    pub progress: Arc<Progress>,
}

#[async_trait::async_trait]
impl Prompter for TtyPrompter {
    async fn confirm(&self, step: &StepSpec) -> bool {
        let step = step.clone();
        let progress = self.progress.clone();
        tokio::task::spawn_blocking(move || {
            progress.asking(|| {
                println!("\n? {} — {}", step.id, step.title);
                for (i, line) in step.instructions.iter().enumerate() {
                    println!("  {}. {line}", i + 1);
                }
                print!(
                    "Type the step id ({}) when done, or press Enter to pause: ",
                    step.id
                );
                let _ = std::io::stdout().flush();
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                line.trim() == step.id
            })
        })
        .await
        .unwrap_or(false)
    }
}
