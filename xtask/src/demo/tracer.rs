//! `vethscope trace <scenario> --duration 6` in the background: stdout goes straight to
//! ours, stderr is echoed live and kept, to recognise "trace is not implemented yet".

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, ChildStderr, Stdio},
    thread::{self, JoinHandle},
};

use anyhow::{Context as _, Result, anyhow, bail};

use super::{Scenario, vethscope};
use crate::util;

const DURATION_SECS: &str = "6";

pub enum TraceOutcome {
    Traced,
    Unimplemented,
}

pub struct Tracer {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    shown: String,
}

impl Tracer {
    pub fn start(binary: &Path, scenario: Scenario) -> Result<Self> {
        let mut cmd = vethscope(
            binary,
            &["trace", scenario.name(), "--duration", DURATION_SECS],
        );
        let shown = util::describe(&cmd);
        println!("$ {shown} &");
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{shown}`"))?;
        let stderr = child
            .stderr
            .take()
            .map(|stderr| thread::spawn(move || echo(stderr)));
        Ok(Tracer {
            child,
            stderr,
            shown,
        })
    }

    /// Waits for the trace to end.
    pub fn finish(&mut self) -> Result<TraceOutcome> {
        let status = self
            .child
            .wait()
            .with_context(|| format!("could not wait for `{}`", self.shown))?;
        let stderr = match self.stderr.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| anyhow!("the stderr reader of `{}` panicked", self.shown))?,
            None => String::new(),
        };
        if status.success() {
            Ok(TraceOutcome::Traced)
        } else if is_unimplemented(&stderr) {
            Ok(TraceOutcome::Unimplemented)
        } else {
            bail!("`{}` failed ({status})", self.shown)
        }
    }
}

impl Drop for Tracer {
    /// A step failed before `finish`: stop the trace we started.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies the child's stderr to ours line by line and returns what it read.
fn echo(stderr: ChildStderr) -> String {
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        eprintln!("{line}");
        seen.push_str(&line);
        seen.push('\n');
    }
    seen
}

/// An error saying trace is not there yet (ours, or clap's for an unknown subcommand).
fn is_unimplemented(stderr: &str) -> bool {
    let stderr = stderr.to_lowercase();
    [
        "not implemented",
        "not yet implemented",
        "unimplemented",
        "unrecognized subcommand",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}
