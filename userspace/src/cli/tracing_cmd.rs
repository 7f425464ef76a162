//! Handler of `trace`, and of the command it traces (`trace LAB -- CMD…`).

use std::{
    os::{fd::AsFd as _, unix::fs::PermissionsExt as _},
    path::{Path, PathBuf},
    process::{ExitCode, ExitStatus, Stdio},
    time::Duration,
};

use tokio::signal::unix::{SignalKind, signal};

use super::TraceArgs;
use crate::{
    privileges::{self, Cap},
    probe::TargetFilter,
    trace::{self, Session, TraceOptions},
};

pub async fn trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    privileges::require("trace", &[Cap::Bpf, Cap::NetAdmin, Cap::SysAdmin])?;
    // Before attaching anything: a command that cannot run fails at once.
    let command = match args.command.split_first() {
        Some((program, rest)) => match find_program(program) {
            Ok(path) => Some(Traced {
                shown: program.clone(),
                path,
                args: rest.to_vec(),
            }),
            Err(refusal) => return Ok(refusal.report()),
        },
        None => None,
    };
    let opts = TraceOptions {
        lab: args.lab,
        json: args.json,
        pcap: args.pcap,
        duration: args
            .duration
            .map(|d| seconds("--duration", d))
            .transpose()?,
        count: args.count,
        proto_mask: trace::Proto::mask_of(&args.proto),
        filter: TargetFilter {
            netns: args.netns,
            ifname: args.iface,
        },
        ebpf_log: args.ebpf_log,
        reply_timeout: seconds("--reply-timeout", args.reply_timeout.max(0.01))?,
        hops: !args.paths_only,
        metrics: args.metrics,
    };
    // Handlers before anything is attached: a Ctrl-C or SIGTERM from now on stops the
    // trace the orderly way (programs detached, summary written), even one sent while
    // attaching or right after the "tracing" line; with a command, it is passed on.
    let mut signals = Signals::register()?;
    let session = Session::start(opts.clone()).await?;
    announce(&session, &opts, command.as_ref());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let Some(command) = command else {
        session.run(&mut out, signals.first()).await?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut child = match command.spawn() {
        Ok(c) => c,
        // Dropping the session detaches everything: nothing was traced.
        Err(e) => return Ok(Refusal::spawn(&command.shown, &e).report()),
    };
    let mut status = None;
    // The trace ends when the command does; if the trace fails first, dropping the
    // child (kill_on_drop) ends the command.
    session
        .run(&mut out, async {
            status = Some(signals.wait(&mut child).await);
        })
        .await?;
    match status {
        Some(Ok(st)) => Ok(exit_code_of(st)),
        Some(Err(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot wait for {}", command.shown)))
        }
        None => Err(anyhow::anyhow!(
            "the trace stopped before {} exited",
            command.shown
        )),
    }
}

/// The line that says every program is attached: from here on, packets are traced.
fn announce(session: &Session, opts: &TraceOptions, command: Option<&Traced>) {
    eprintln!(
        "vethscope: tracing {} interfaces ({} TC programs){}{} — {}",
        session.interfaces(),
        session.programs(),
        opts.lab
            .as_ref()
            .map(|l| format!(" of lab {l}"))
            .unwrap_or_default(),
        opts.metrics
            .map(|a| format!(", counters on http://{a}/metrics"))
            .unwrap_or_default(),
        match command {
            Some(c) => format!("running {} until it exits", c.shown),
            None => "Ctrl-C to stop".to_string(),
        }
    );
}

/// The command `trace` runs, as found on the host.
struct Traced {
    /// As the user wrote it (its argv[0]).
    shown: String,
    path: PathBuf,
    args: Vec<String>,
}

impl Traced {
    /// Starts the command directly (no shell: its arguments reach it as given). Its
    /// stdout goes to our stderr so that our stdout is the trace alone.
    fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        tokio::process::Command::new(&self.path)
            .arg0(&self.shown)
            .args(&self.args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::from(stderr))
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
    }
}

/// Ctrl-C and SIGTERM. Without a command, the first one stops the trace. While a traced
/// command runs, each is passed on to it (from a terminal it gets Ctrl-C itself too: a
/// second SIGINT does no harm), and the trace goes on until it has exited.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Completes on the first Ctrl-C or SIGTERM (also one that came before the call).
    async fn first(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }

    async fn wait(&mut self, child: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
        loop {
            let sig = tokio::select! {
                st = child.wait() => return st,
                _ = self.int.recv() => nix::sys::signal::Signal::SIGINT,
                _ = self.term.recv() => nix::sys::signal::Signal::SIGTERM,
            };
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                // The child may have exited meanwhile: then there is nobody left to tell.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        }
    }
}

/// The command's status as ours: its code, or 128+N for a signal N, as shells do.
fn exit_code_of(st: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt as _;
    let code = st
        .code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Why the command cannot run, with the shell's exit status for it.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    code: u8,
    message: String,
}

impl Refusal {
    fn not_found(message: String) -> Self {
        Refusal { code: 127, message }
    }

    fn cannot_run(message: String) -> Self {
        Refusal { code: 126, message }
    }

    fn spawn(shown: &str, e: &std::io::Error) -> Self {
        let message = format!("cannot run {shown}: {e}");
        if e.kind() == std::io::ErrorKind::NotFound {
            Refusal::not_found(message)
        } else {
            Refusal::cannot_run(message)
        }
    }

    fn report(self) -> ExitCode {
        eprintln!("vethscope: {} (nothing traced)", self.message);
        ExitCode::from(self.code)
    }
}

/// The executable `program` names: a path when it has a `/`, else the first match in
/// `$PATH` (as a shell would look it up, without running a shell).
fn find_program(program: &str) -> Result<PathBuf, Refusal> {
    if program.is_empty() {
        return Err(Refusal::not_found(
            "the command after `--` is empty: give a program to run".into(),
        ));
    }
    if program.contains('/') {
        let path = Path::new(program);
        return match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path.into()),
            Ok(_) => Err(Refusal::cannot_run(format!(
                "{program} is not an executable file"
            ))),
            Err(e) => Err(Refusal::not_found(format!("{program}: {e}"))),
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| {
            Refusal::not_found(format!(
                "{program}: command not found in PATH (give its path, or check the spelling)"
            ))
        })
}

/// A number of seconds from the command line, or one clear error (never a panic).
fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        anyhow::anyhow!("{flag} {value}: give a number of seconds from 0 to about 10^19")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_like_a_shell_finds_them() {
        assert!(find_program("sh").is_ok_and(|p| p.is_absolute()));
        assert_eq!(find_program("/bin/sh").ok(), Some(PathBuf::from("/bin/sh")));
        assert_eq!(
            find_program("no-such-program-vethscope").map_err(|r| r.code),
            Err(127)
        );
        assert_eq!(find_program("/etc/passwd").map_err(|r| r.code), Err(126));
        assert_eq!(find_program("/nonexistent/x").map_err(|r| r.code), Err(127));
        assert_eq!(find_program("").map_err(|r| r.code), Err(127));
        // A directory is not a program, even with x bits.
        assert_eq!(find_program("/tmp").map_err(|r| r.code), Err(126));
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(
            exit_code_of(ExitStatus::from_raw(3 << 8)),
            ExitCode::from(3)
        );
        // Killed by SIGTERM (15).
        assert_eq!(exit_code_of(ExitStatus::from_raw(15)), ExitCode::from(143));
    }
}
