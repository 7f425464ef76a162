//! Running programs inside a lab namespace: `vethscope exec LAB NS -- CMD…` and the
//! per-namespace `exec:` commands of a topology file, run after `up`.
//!
//! The child enters the namespace between fork and exec (as `ip netns exec` does):
//! it joins the network namespace, gets a private mount namespace and a sysfs of that
//! network namespace mounted on /sys, so `ip`, `ethtool` and /sys/class/net all see
//! the lab namespace. vethscope itself never changes namespace.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};

use crate::netns;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no lab named {lab} is up (labs: {known})")]
    NoSuchLab { lab: String, known: String },
    #[error(
        "namespace {netns} is not a namespace of lab {lab} (its namespaces: {known}; fix: pick one of them)"
    )]
    NotLabNamespace {
        lab: String,
        netns: String,
        known: String,
    },
    #[error("cannot run `{command}` in namespace {netns}")]
    Spawn {
        command: String,
        netns: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    StartupFailed(Box<StartupFailure>),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
}

/// A startup command that failed; the lab stays up.
#[derive(Debug, thiserror::Error)]
#[error(
    "lab {lab} is up, but its startup command `{command}` in namespace {netns} ({file}:{line}:{col}) failed with exit code {exit_code}{}\n(the lab stays up as made; fix: correct the command and run it with `vethscope exec {lab} {netns} -- sh -c '…'`, or `vethscope down {lab}`)",
    if output.trim().is_empty() { String::new() } else { format!(":\n{}", output.trim_end()) }
)]
pub struct StartupFailure {
    pub lab: String,
    pub netns: String,
    pub command: String,
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub exit_code: i32,
    pub output: String,
}

/// Runs every namespace's `exec:` lines, namespaces in file order, lines in order,
/// after `up` made the lab; `report` sees each result as it comes. The first failing
/// command stops the run and is the error. The lab is not removed: what `up` made is
/// complete and correct, and the user may want to look at why the command failed.
pub fn run_startup_commands(
    t: &crate::topology::Topology,
    mut report: impl FnMut(&ExecReport),
) -> Result<usize, ExecError> {
    let mut ran = 0;
    for ns in &t.namespaces {
        for line in &ns.exec {
            let r = run_startup(&ns.name, &line.command)?;
            report(&r);
            ran += 1;
            if !r.success() {
                return Err(ExecError::StartupFailed(Box::new(StartupFailure {
                    lab: t.name.clone(),
                    netns: ns.name.clone(),
                    command: line.command.clone(),
                    file: t.source.clone(),
                    line: line.pos.line,
                    col: line.pos.col,
                    exit_code: r.exit_code,
                    output: r.output,
                })));
            }
        }
    }
    Ok(ran)
}

/// A command that, when spawned, runs inside network namespace `ns` (a lab namespace
/// the caller has checked; its name is a directory entry of /run/netns).
pub fn command_in(ns: &str, program: &str, args: &[String]) -> Result<Command, ExecError> {
    let fd = netns::open(ns)?;
    let sysfs_source = CString::new(ns).map_err(|_| ExecError::Spawn {
        command: program.to_string(),
        netns: ns.to_string(),
        source: std::io::Error::other("namespace name contains a NUL byte"),
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe system calls on values prepared before the fork.
    unsafe {
        cmd.pre_exec(move || enter(fd.as_raw_fd(), &sysfs_source));
    }
    Ok(cmd)
}

/// In the child: join the network namespace, then give it its own /sys (sysfs shows
/// the interfaces of the network namespace of whoever mounts it).
fn enter(fd: i32, sysfs_source: &CString) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain system calls with valid, NUL-terminated arguments.
    unsafe {
        check(libc::setns(fd, libc::CLONE_NEWNET))?;
        check(libc::unshare(libc::CLONE_NEWNS))?;
        // Our mounts must not propagate back to the host's mount namespace.
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_SLAVE | libc::MS_REC,
            std::ptr::null(),
        ))?;
        // /sys may be busy or absent; a fresh sysfs on top is what matters.
        libc::umount2(c"/sys".as_ptr(), libc::MNT_DETACH);
        check(libc::mount(
            sysfs_source.as_ptr(),
            c"/sys".as_ptr(),
            c"sysfs".as_ptr(),
            0,
            std::ptr::null(),
        ))?;
    }
    Ok(())
}

/// The process exit code a shell would report for `status` (128 + signal when killed).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Runs `program args…` in `ns` with the terminal (stdin, stdout, stderr) passed
/// through, and returns its exit code. While it runs, Ctrl-C and Ctrl-\ go to the
/// child alone (as with any shell), not to vethscope.
pub fn run_interactive(ns: &str, program: &str, args: &[String]) -> Result<i32, ExecError> {
    let mut cmd = command_in(ns, program, args)?;
    let shown = shown(program, args);
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        command: shown.clone(),
        netns: ns.to_string(),
        source,
    })?;
    // After the spawn, so the child keeps the default dispositions.
    // SAFETY: changing signal dispositions of our own process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let status = child.wait().map_err(|source| ExecError::Spawn {
        command: shown,
        netns: ns.to_string(),
        source,
    })?;
    Ok(exit_code(status))
}

/// One startup command's result.
#[derive(Debug, Clone)]
pub struct ExecReport {
    pub netns: String,
    pub command: String,
    pub exit_code: i32,
    /// stdout and stderr, interleaved as the command wrote them.
    pub output: String,
}

impl ExecReport {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// Runs one `exec:` line of a topology file (`/bin/sh -c LINE`) in `ns`, stdin closed,
/// and collects its output.
pub fn run_startup(ns: &str, line: &str) -> Result<ExecReport, ExecError> {
    let mut cmd = command_in(ns, "/bin/sh", &["-c".to_string(), line.to_string()])?;
    // One pipe for both streams keeps the order the command wrote them in.
    let (reader, writer) = std::io::pipe().map_err(|source| ExecError::Spawn {
        command: line.to_string(),
        netns: ns.to_string(),
        source,
    })?;
    let writer2 = writer.try_clone().map_err(|source| ExecError::Spawn {
        command: line.to_string(),
        netns: ns.to_string(),
        source,
    })?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        command: line.to_string(),
        netns: ns.to_string(),
        source,
    })?;
    // The Command still holds the write ends: drop it so the read sees EOF.
    drop(cmd);
    let mut output = String::new();
    let mut reader = reader;
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = reader.read_to_end(&mut bytes);
    let status = child.wait().map_err(|source| ExecError::Spawn {
        command: line.to_string(),
        netns: ns.to_string(),
        source,
    })?;
    read.map_err(|source| ExecError::Spawn {
        command: line.to_string(),
        netns: ns.to_string(),
        source,
    })?;
    output.push_str(&String::from_utf8_lossy(&bytes));
    Ok(ExecReport {
        netns: ns.to_string(),
        command: line.to_string(),
        exit_code: exit_code(status),
        output,
    })
}

fn shown(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lab namespace `ns` of `lab`, checked: the lab must be known and `ns` one of its
/// namespaces (by the state file's plan or the ownership mark on the namespace's lo).
/// Only names found in /run/netns are ever used to build a path.
pub async fn lab_namespace(lab: &str, ns: &str) -> Result<String, ExecError> {
    let labs = crate::wire::known_labs().await;
    if !labs.contains(lab) {
        return Err(ExecError::NoSuchLab {
            lab: lab.to_string(),
            known: join_or_none(labs.iter().cloned()),
        });
    }
    let plan = crate::wire::state::read(lab);
    let mut ours = Vec::new();
    for name in netns::list() {
        let planned = plan
            .as_ref()
            .is_some_and(|p| p.topology.netns_names().any(|n| n == name));
        if planned || crate::wire::owner_of_netns(&name).await.as_deref() == Some(lab) {
            ours.push(name);
        }
    }
    match ours.iter().find(|n| *n == ns) {
        Some(n) => Ok(n.clone()),
        None => Err(ExecError::NotLabNamespace {
            lab: lab.to_string(),
            netns: ns.escape_debug().to_string(),
            known: join_or_none(ours.into_iter()),
        }),
    }
}

fn join_or_none(names: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = names.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
