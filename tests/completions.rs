//! `swing completions bash|zsh|fish`, `swing man` and the examples in every `--help`: the bash
//! script loads in a real bash and registers the completion, and the manual page is roff with
//! a page for every subcommand the clap definition has.
//!
//! Must not: install anything or write outside the test's own processes.

use std::process::Command;

use clap::CommandFactory;

fn swing(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(args)
        .output()
        .expect("swing runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn subcommands() -> Vec<String> {
    swing::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .collect()
}

#[test]
fn bash_completion_loads_and_registers_swing() {
    let script = format!(
        "source <('{}' completions bash) && complete -p swing",
        env!("CARGO_BIN_EXE_swing")
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("complete") && stdout.trim_end().ends_with(" swing"),
        "{stdout}"
    );
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let (code, zsh, err) = swing(&["completions", "zsh"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        zsh.starts_with("#compdef swing"),
        "{}",
        &zsh[..zsh.len().min(200)]
    );
    let (code, fish, err) = swing(&["completions", "fish"]);
    assert_eq!(code, 0, "{err}");
    for sub in subcommands() {
        assert!(zsh.contains(&format!("'{sub}:")), "zsh lacks {sub}");
        assert!(fish.contains(&format!("-a \"{sub}\"")), "fish lacks {sub}");
    }
    let (code, _, err) = swing(&["completions", "tcsh"]);
    assert_eq!(code, 1, "an unknown shell is a usage error");
    assert!(err.contains("bash") && err.contains("fish"), "{err}");
}

#[test]
fn the_manual_is_roff_with_a_page_per_subcommand() {
    let (code, man, err) = swing(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        man.starts_with('.'),
        "roff starts with a request: {}",
        &man[..man.len().min(300)]
    );
    assert!(man.contains(".TH swing 1"), "the page of swing itself");
    for sub in subcommands() {
        assert!(
            man.contains(&format!(".TH swing-{sub} 1")),
            "no page for {sub}"
        );
    }
    assert!(man.contains(".SH OPTIONS") && man.contains(".SH SUBCOMMANDS"));
}

#[test]
fn every_subcommand_help_shows_examples() {
    for sub in subcommands() {
        let (code, help, err) = swing(&[&sub, "--help"]);
        assert_eq!(code, 0, "{sub}: {err}");
        assert!(
            help.contains("Examples:\n  "),
            "swing {sub} --help has no examples:\n{help}"
        );
        assert!(help.contains("swing "), "{sub}");
    }
}
