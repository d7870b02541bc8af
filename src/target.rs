//! What a command is pointed at: the plan files of `swing plan`, the saved plan or plan file
//! of `swing apply` (or the unfinished apply `--resume` continues), with the directories their
//! relative paths and their state resolve from.
//!
//! Owns: turning command-line paths into plans and directories. Must not: observe or change
//! the world, or resolve secrets (`wiring` does).

use std::path::{Path, PathBuf};

use swing_engine::planfile::SavedPlan;

/// What apply was pointed at.
pub struct Target {
    /// The plan to apply.
    pub plan: swing_engine::validate::ValidPlan,
    /// The saved plan it came from (`None`: a plan file).
    pub saved: Option<SavedPlan>,
    /// The path as given (shown in messages and the resume command).
    pub source: String,
    /// The directory the plan's relative paths resolve from.
    pub base_dir: PathBuf,
    /// Journal and lock directory.
    pub state_dir: PathBuf,
}

/// Where a command keeps or reads a change's state: `--state` (`local`, a `postgres://` URL,
/// or a secret reference to one such as `${env:SWING_STATE_URL}`; overrides the plan's
/// `state`) and `--state-dir` (the local journal directory).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StateArgs {
    /// Where lock, journal and saved-plan records live: `local`, `postgres://user@host/db`,
    /// or a secret reference to the URL (`${env:SWING_STATE_URL}`: keeps a password out of the
    /// process list). Overrides `state` in the plan.
    #[arg(long, value_name = "URL")]
    pub state: Option<String>,
    /// Journal directory of the local state. Default: `.swing/` next to the plan (site locks
    /// are host-wide).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// [`locate`] for a named file (status, report, unlock).
pub fn locate_file(file: &Path, state_dir: Option<&Path>) -> Result<Target, String> {
    locate(Some(file), false, state_dir, |_| {
        Ok((String::new(), Vec::new()))
    })
}

/// Finds what to apply: `file`, or with `resume` and no file the one unfinished apply in the
/// state (`unfinished` lists them from the store `--state` names, or `.swing/` here).
pub fn locate(
    file: Option<&Path>,
    resume: bool,
    state_dir: Option<&Path>,
    unfinished: impl FnOnce(&Path) -> Result<(String, Vec<(String, Option<String>)>), String>,
) -> Result<Target, String> {
    let file = match (file, resume) {
        (Some(f), _) => f.to_path_buf(),
        (None, true) => {
            let state = state_dir.map_or_else(|| PathBuf::from(".swing"), Path::to_path_buf);
            let (at, open) = unfinished(&state)?;
            match open.as_slice() {
                [(_, Some(src))] => PathBuf::from(src),
                [] => return Err(format!("nothing to resume in {at}")),
                [(change, None)] => {
                    return Err(format!(
                        "the journal of {change} does not name its plan file"
                    ));
                }
                _ => {
                    let names: Vec<&str> = open.iter().map(|(c, _)| c.as_str()).collect();
                    return Err(format!(
                        "several unfinished applies in {at}: {}; name the plan file",
                        names.join(", ")
                    ));
                }
            }
        }
        (None, false) => {
            return Err("name a saved plan (swing plan --out FILE) or a plan file".into());
        }
    };
    let state_dir = state_dir.map_or_else(
        || swing_engine::apply::default_state_dir(&file),
        Path::to_path_buf,
    );
    let source = file.display().to_string();
    if SavedPlan::sniff(&file) {
        let saved = SavedPlan::read(&file).map_err(|e| e.to_string())?;
        let plan = saved.valid_plan().map_err(|c| {
            format!(
                "the plan embedded in {source} is not valid ({} problem(s)); make the saved plan again",
                c.diagnostics.len()
            )
        })?;
        return Ok(Target {
            plan,
            base_dir: saved.base_dir.clone(),
            saved: Some(saved),
            source,
            state_dir,
        });
    }
    let checked = swing_engine::validate::check_file(&file);
    let Some(plan) = checked.plan else {
        let n = checked.diagnostics.len();
        return Err(format!(
            "{source} is not a valid plan ({n} problem(s)); run `swing validate {source}`"
        ));
    };
    let base_dir = std::path::absolute(
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .map_err(|e| e.to_string())?;
    Ok(Target {
        plan,
        saved: None,
        source,
        base_dir,
        state_dir,
    })
}

/// The directory a plan file's relative paths (backups, `${file:…}`, CA files) resolve from.
pub fn base_dir(origin: &str) -> Result<PathBuf, String> {
    let dir = Path::new(origin)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// The host-wide directory of site locks: `$XDG_STATE_HOME/swing/locks`, or
/// `$HOME/.local/state/swing/locks` (relative values are ignored, as the XDG spec says). One
/// lock per site for the whole host, wherever its plan lives.
pub fn lock_dir() -> Result<PathBuf, String> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let home = std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local").join("state"))
        })
        .ok_or("cannot find where to keep site locks: set XDG_STATE_HOME or HOME")?;
    Ok(home.join("swing").join("locks"))
}

/// Refuses an `--out` that is one of the input plan files (the same file, also through a
/// symlink or another name): saving would overwrite the plan with JSON.
pub fn refuse_overwriting_an_input(out: &Path, files: &[PathBuf]) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(o) = std::fs::metadata(out) else {
        return Ok(()); // Does not exist yet: it cannot be an input.
    };
    for f in files {
        if let Ok(m) = std::fs::metadata(f)
            && (m.dev(), m.ino()) == (o.dev(), o.ino())
        {
            return Err(format!(
                "--out {} is the plan file {}; saving would overwrite it. Name another file, e.g. --out change.plan",
                out.display(),
                f.display()
            ));
        }
    }
    Ok(())
}
