//! Running commands and locating the workspace.

use std::{
    env,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use anyhow::{Context as _, Result, bail};

/// The workspace root: xtask/ sits directly under it.
pub fn repo_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`, relative to the root).
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target"),
    }
}

/// `cargo` (the rustup proxy, so `+nightly` works) running in the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(repo_root());
    cmd
}

/// A shell-like rendering of `cmd` for logs: `K=V prog args…`, paths under the root shortened.
pub fn describe(cmd: &Command) -> String {
    let envs = cmd
        .get_envs()
        .filter_map(|(key, value)| value.map(|value| format!("{}={}", show(key), show(value))));
    let program = Path::new(cmd.get_program());
    let program = program.strip_prefix(repo_root()).unwrap_or(program);
    envs.chain([show(program.as_os_str())])
        .chain(cmd.get_args().map(show))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if word.is_empty() || word.contains(char::is_whitespace) {
        format!("'{word}'")
    } else {
        word.into_owned()
    }
}

/// Prints `$ cmd`, runs it with inherited stdio and fails unless it succeeds.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly (stdin closed) and returns its output, whatever its exit status.
pub fn capture(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{}`", describe(cmd)))
}

/// Runs `cmd` quietly and returns its stdout; fails (with its stderr) unless it succeeds.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    let output = capture(cmd)?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether this process runs with effective uid 0 (read from /proc, no libc call needed).
pub fn is_root() -> Result<bool> {
    let status =
        fs::read_to_string("/proc/self/status").context("could not read /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no effective uid in /proc/self/status")?;
    Ok(euid == "0")
}
