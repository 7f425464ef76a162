//! Find the running Open vSwitch daemons, or start our own under a run
//! directory, and stop only those we started.
//!
//! Only one ovs-vswitchd may run per host: with the userspace (netdev)
//! datapath two of them fight over the same datapath TAP device. So before
//! starting one we look for any process named ovs-vswitchd, not just pidfiles.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tracing::{debug, info};

use super::jsonrpc::JsonRpc;
use super::ovsdb::Ovsdb;
use super::{OvsEndpoint, OvsError};

/// Where the distribution's ovsdb-server listens (/var/run is usually a
/// symlink to /run; both are listed for systems where it is not).
const SYSTEM_SOCKETS: [&str; 2] = ["/var/run/openvswitch/db.sock", "/run/openvswitch/db.sock"];
const SCHEMA_DIRS: [&str; 2] = ["/usr/share/openvswitch", "/usr/local/share/openvswitch"];
const VSWITCHD: &str = "ovs-vswitchd";
const OVSDB_SERVER: &str = "ovsdb-server";
/// Whole budget of ensure_running.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an already running vswitchd gets to prove it serves a database.
const REUSE_PROBE: Duration = Duration::from_secs(3);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// The files of our own daemons inside `run_dir`.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(run_dir: &Path) -> Result<Self, OvsError> {
        // Absolute, because the daemons chdir to / when they detach.
        let dir = std::path::absolute(run_dir).map_err(|source| OvsError::RunDir {
            path: run_dir.to_path_buf(),
            source,
        })?;
        Ok(Self { dir })
    }
    fn db(&self) -> PathBuf {
        self.dir.join("conf.db")
    }
    fn sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }
    fn file(&self, daemon: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{daemon}.{ext}"))
    }
    fn run_dir_err(&self, source: std::io::Error) -> OvsError {
        OvsError::RunDir {
            path: self.dir.clone(),
            source,
        }
    }
    /// Pid from our pidfile, if that process is alive and really is our
    /// `daemon` (its command line names our run dir): a stale pidfile whose pid
    /// was reused must never make us signal a stranger.
    fn live_pid(&self, daemon: &str) -> Option<i32> {
        let pid: i32 = fs::read_to_string(self.file(daemon, "pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let proc = Proc::read(pid)?;
        let marker = format!("{}/", self.dir.display());
        (proc.comm == daemon && proc.cmdline.iter().any(|a| a.contains(&marker))).then_some(pid)
    }
}

/// Use the running Open vSwitch, or start ovsdb-server and ovs-vswitchd under
/// `run_dir`. See the module docs of `ovs` for the search order.
pub fn ensure_running(run_dir: &Path) -> Result<OvsEndpoint, OvsError> {
    let start = Instant::now();
    let deadline = start + START_TIMEOUT;
    let ours = Layout::new(run_dir)?;
    let vswitchds = processes(VSWITCHD);
    let our_vswitchd = ours.live_pid(VSWITCHD);

    for socket in candidates(&ours, &vswitchds) {
        let mut db = match Ovsdb::connect_path(&socket).and_then(|mut db| db.probe().map(|()| db)) {
            Ok(db) => db,
            Err(e) => {
                debug!(socket = %socket.display(), error = %e, "no usable ovsdb-server here");
                continue;
            }
        };
        let is_ours = socket == ours.sock();
        let endpoint = OvsEndpoint {
            socket: socket.clone(),
            started_by_us: is_ours,
            run_dir: is_ours.then(|| ours.dir.clone()),
        };
        db.init_root()?;
        if vswitchds.is_empty() {
            if !is_ours {
                return Err(OvsError::NoVswitchd { socket });
            }
            // Our ovsdb-server survived but our vswitchd did not.
            start_vswitchd(&ours, deadline)?;
            wait_vswitchd(&ours, &mut db, deadline)?;
            info!(socket = %socket.display(), elapsed_ms = start.elapsed().as_millis() as u64,
                  "restarted our ovs-vswitchd");
            return Ok(endpoint);
        }
        if db.vswitchd_applies(remaining(deadline).min(REUSE_PROBE))? {
            info!(socket = %socket.display(), started_by_us = is_ours, "using running Open vSwitch");
            return Ok(endpoint);
        }
        debug!(socket = %socket.display(), "ovsdb-server answers but no running ovs-vswitchd serves it");
    }

    if let Some(foreign) = vswitchds.iter().find(|p| Some(p.pid) != our_vswitchd) {
        return Err(OvsError::ForeignVswitchd {
            pid: foreign.pid,
            detail: format!(
                "none of the answering databases is served by it (tried {})",
                candidates(&ours, &vswitchds)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }

    // Leftovers of ours that no longer work (a dead or hung daemon): start over.
    stop_daemon(&ours, VSWITCHD)?;
    stop_daemon(&ours, OVSDB_SERVER)?;
    start_both(&ours, deadline)?;
    info!(run_dir = %ours.dir.display(), elapsed_ms = start.elapsed().as_millis() as u64,
          "started ovsdb-server and ovs-vswitchd");
    Ok(OvsEndpoint {
        socket: ours.sock(),
        started_by_us: true,
        run_dir: Some(ours.dir.clone()),
    })
}

/// The running Open vSwitch, if any answers (ours under `run_dir` or the system's),
/// without starting anything: for commands that only read or remove (`show`, `down`).
pub fn find_running(run_dir: &Path) -> Option<OvsEndpoint> {
    let ours = Layout::new(run_dir).ok()?;
    let vswitchds = processes(VSWITCHD);
    candidates(&ours, &vswitchds)
        .into_iter()
        .find_map(|socket| {
            Ovsdb::connect_path(&socket)
                .and_then(|mut db| db.probe())
                .ok()?;
            let is_ours = socket == ours.sock();
            Some(OvsEndpoint {
                run_dir: is_ours.then(|| ours.dir.clone()),
                started_by_us: is_ours,
                socket,
            })
        })
}

/// Stop the daemons whose pidfiles are in `run_dir` and remove the files we
/// put there, then the directory if nothing else is in it. No-op when
/// `run_dir` holds nothing of ours.
pub fn stop_ours(run_dir: &Path) -> Result<(), OvsError> {
    let ours = Layout::new(run_dir)?;
    let has_ours = [
        ours.file(VSWITCHD, "pid"),
        ours.file(OVSDB_SERVER, "pid"),
        ours.db(),
    ]
    .iter()
    .any(|p| p.exists());
    if !has_ours {
        debug!(run_dir = %ours.dir.display(), "no OVS daemons of ours to stop");
        return Ok(());
    }
    // The netdev datapath's TAP devices (ovs-netdev, one per bridge and
    // internal port) are persistent: only ovs-vswitchd removes them, on
    // `exit --cleanup`. After a crash we run it once more to do that, unless
    // another ovs-vswitchd now runs (never two at once).
    if ours.live_pid(VSWITCHD).is_none() && ours.db().exists() && processes(VSWITCHD).is_empty() {
        debug!("our ovs-vswitchd is gone; restarting it once to remove its devices");
        if let Err(e) = start_both(&ours, Instant::now() + START_TIMEOUT) {
            info!(error = %e, "could not restart ovs-vswitchd; its TAP devices may remain");
        }
    }
    if let Some(pid) = ours.live_pid(VSWITCHD) {
        exit_with_cleanup(&ours, pid);
    }
    // Whatever is still running now gets signals; vswitchd first, while its
    // database still answers.
    stop_daemon(&ours, VSWITCHD)?;
    stop_daemon(&ours, OVSDB_SERVER)?;
    remove_our_files(&ours)?;
    match fs::remove_dir(&ours.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Someone else's files are in there: leave them, and the directory.
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
            debug!(run_dir = %ours.dir.display(), "run dir holds other files; left in place");
        }
        Err(e) => return Err(ours.run_dir_err(e)),
    }
    info!(run_dir = %ours.dir.display(), "stopped our Open vSwitch daemons");
    Ok(())
}

/// Databases to try, in order: the distribution's, ours, then whatever each
/// running ovs-vswitchd was told to use (e.g. another vethscope run dir).
fn candidates(ours: &Layout, vswitchds: &[Proc]) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = SYSTEM_SOCKETS.iter().map(PathBuf::from).collect();
    all.push(ours.sock());
    all.extend(vswitchds.iter().filter_map(Proc::vswitchd_db));
    let mut seen = Vec::new();
    // Any user can name a process ovs-vswitchd and put any `unix:` path in its
    // command line: only sockets owned by root in root-owned directories that nobody
    // else can write to are ever connected to.
    all.retain(|p| match trusted_socket(p) {
        Ok(()) => true,
        Err(why) => {
            if p.exists() {
                info!(socket = %p.display(), "not using this OVSDB socket: {why}");
            }
            false
        }
    });
    all.retain(|p| {
        let key = fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    all
}

/// Why a database socket may not be trusted, if it may not: it must be a socket
/// owned by root (or by us), in a directory owned by root (or by us) that group and
/// others cannot write to.
fn trusted_socket(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let me = nix::unistd::geteuid().as_raw();
    let meta = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.file_type().is_socket() {
        return Err("not a socket".into());
    }
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!("owned by uid {}", meta.uid()));
    }
    let parent = path.parent().ok_or("no directory")?;
    // /var/run is usually a symlink to /run: judge the directory it leads to.
    let dir = fs::canonicalize(parent).map_err(|e| e.to_string())?;
    let dmeta = fs::metadata(&dir).map_err(|e| e.to_string())?;
    if dmeta.uid() != 0 && dmeta.uid() != me {
        return Err(format!("{} is owned by uid {}", dir.display(), dmeta.uid()));
    }
    if dmeta.mode() & 0o022 != 0 {
        return Err(format!("{} is writable by group or others", dir.display()));
    }
    Ok(())
}

/// Start ovsdb-server (unless ours answers already) and ovs-vswitchd in
/// `ours`, and wait until vswitchd has applied the database.
fn start_both(ours: &Layout, deadline: Instant) -> Result<(), OvsError> {
    let answers = Ovsdb::connect_path(&ours.sock())
        .and_then(|mut db| db.probe())
        .is_ok();
    if !answers {
        stop_daemon(ours, OVSDB_SERVER)?;
        start_ovsdb(ours, deadline)?;
    }
    crate::fault::point("ovsdb-server started");
    let mut db = Ovsdb::connect_path(&ours.sock())?;
    db.probe()?;
    db.init_root()?;
    // Look again right before starting: someone may have started one meanwhile.
    if let Some(other) = processes(VSWITCHD).first() {
        if !answers {
            stop_daemon(ours, OVSDB_SERVER)?;
        }
        return Err(OvsError::ForeignVswitchd {
            pid: other.pid,
            detail: "it appeared while we were starting ovsdb-server".into(),
        });
    }
    start_vswitchd(ours, deadline)?;
    crate::fault::point("ovs-vswitchd started");
    wait_vswitchd(ours, &mut db, deadline)
}

/// Ask our vswitchd over its control socket to exit and remove its datapath
/// devices (`ovs-appctl exit --cleanup`; unixctl is JSON-RPC too), then wait
/// for it to go. Failures only leave the job to the signals that follow.
fn exit_with_cleanup(ours: &Layout, pid: i32) {
    let ctl = ours.file(VSWITCHD, "ctl");
    match JsonRpc::connect(&ctl).and_then(|mut rpc| rpc.call("exit", json!(["--cleanup"]))) {
        Ok(_) => debug!(pid, "ovs-vswitchd accepted exit --cleanup"),
        // It may close the connection as it exits, before replying.
        Err(e) => debug!(pid, error = %e, "exit --cleanup via unixctl"),
    }
    let start = Instant::now();
    while start.elapsed() < STOP_TIMEOUT {
        if Proc::read(pid).is_none_or(|p| p.comm != VSWITCHD) {
            info!(pid, "ovs-vswitchd exited and removed its devices");
            return;
        }
        sleep(POLL);
    }
    debug!(pid, "ovs-vswitchd still runs after exit --cleanup");
}

fn start_ovsdb(ours: &Layout, deadline: Instant) -> Result<(), OvsError> {
    fs::create_dir_all(&ours.dir).map_err(|e| ours.run_dir_err(e))?;
    let schema = find_schema()?;
    let db = ours.db();
    if !db.exists() {
        run_tool(
            "ovsdb-tool",
            &["create".as_ref(), db.as_os_str(), schema.as_os_str()],
        )?;
    } else if run_tool(
        "ovsdb-tool",
        &[
            "needs-conversion".as_ref(),
            db.as_os_str(),
            schema.as_os_str(),
        ],
    )?
    .trim()
        == "yes"
    {
        // A database left by an older Open vSwitch: upgrade it in place.
        run_tool(
            "ovsdb-tool",
            &["convert".as_ref(), db.as_os_str(), schema.as_os_str()],
        )?;
    }
    // A socket file without a server behind it would make bind() fail.
    let sock = ours.sock();
    if sock.exists() {
        fs::remove_file(&sock).map_err(|e| ours.run_dir_err(e))?;
    }
    start_daemon(
        ours,
        OVSDB_SERVER,
        vec![
            format!("--remote=punix:{}", sock.display()),
            format!("--pidfile={}", ours.file(OVSDB_SERVER, "pid").display()),
            "--detach".into(),
            format!("--log-file={}", ours.file(OVSDB_SERVER, "log").display()),
            format!("--unixctl={}", ours.file(OVSDB_SERVER, "ctl").display()),
            db.display().to_string(),
        ],
        deadline,
    )
}

fn start_vswitchd(ours: &Layout, deadline: Instant) -> Result<(), OvsError> {
    start_daemon(
        ours,
        VSWITCHD,
        vec![
            format!("unix:{}", ours.sock().display()),
            format!("--pidfile={}", ours.file(VSWITCHD, "pid").display()),
            "--detach".into(),
            format!("--log-file={}", ours.file(VSWITCHD, "log").display()),
            format!("--unixctl={}", ours.file(VSWITCHD, "ctl").display()),
        ],
        deadline,
    )
}

/// vswitchd is up when its control socket exists and it has applied the
/// configuration (cur_cfg caught up with a next_cfg we bump).
fn wait_vswitchd(ours: &Layout, db: &mut Ovsdb, deadline: Instant) -> Result<(), OvsError> {
    let start = Instant::now();
    let ctl = ours.file(VSWITCHD, "ctl");
    while !ctl.exists() && Instant::now() < deadline {
        sleep(POLL);
    }
    if ctl.exists() && db.vswitchd_applies(remaining(deadline))? {
        debug!(
            waited_ms = start.elapsed().as_millis() as u64,
            "ovs-vswitchd is up"
        );
        return Ok(());
    }
    Err(OvsError::Timeout {
        what: format!(
            "ovs-vswitchd to come up (last log lines: {})",
            log_tail(&ours.file(VSWITCHD, "log"))
        ),
        waited: start.elapsed(),
    })
}

/// Run a daemon with `--detach`: the command returns once the daemon is ready
/// (or has failed). Its stderr goes to a file, not a pipe, so a daemon keeping
/// the descriptor can never block us.
fn start_daemon(
    ours: &Layout,
    daemon: &'static str,
    args: Vec<String>,
    deadline: Instant,
) -> Result<(), OvsError> {
    let startup = ours.file(daemon, "startup");
    let out = File::create(&startup).map_err(|e| ours.run_dir_err(e))?;
    let err = out.try_clone().map_err(|e| ours.run_dir_err(e))?;
    let shown = format!("{daemon} {}", args.join(" "));
    debug!(command = %shown, "starting");
    let mut child = Command::new(daemon)
        .args(&args)
        // Default locations (pidfiles, bridge .mgmt sockets) follow these.
        .env("OVS_RUNDIR", &ours.dir)
        .env("OVS_DBDIR", &ours.dir)
        .env("OVS_LOGDIR", &ours.dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| OvsError::Spawn {
            program: daemon.into(),
            source,
        })?;
    let status = wait_child(&mut child, deadline, daemon)?;
    let said = fs::read_to_string(&startup).unwrap_or_default();
    // Best effort: a leftover startup file is removed by stop_ours anyway.
    let _ = fs::remove_file(&startup);
    if status.success() {
        Ok(())
    } else {
        Err(OvsError::Command {
            command: shown,
            status: status.to_string(),
            stderr: said.trim().to_string(),
        })
    }
}

fn wait_child(child: &mut Child, deadline: Instant, daemon: &str) -> Result<ExitStatus, OvsError> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                // Best effort: we report the timeout either way.
                let _ = child.kill();
                let _ = child.wait();
                return Err(OvsError::Timeout {
                    what: format!("{daemon} to start"),
                    waited: start.elapsed(),
                });
            }
            Ok(None) => sleep(POLL),
            Err(source) => {
                return Err(OvsError::Spawn {
                    program: daemon.into(),
                    source,
                });
            }
        }
    }
}

/// A short-lived OVS tool (ovsdb-tool); returns its stdout.
fn run_tool(program: &str, args: &[&std::ffi::OsStr]) -> Result<String, OvsError> {
    let shown = format!(
        "{program} {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    debug!(command = %shown, "running");
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| OvsError::Spawn {
            program: program.into(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(OvsError::Command {
            command: shown,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn find_schema() -> Result<PathBuf, OvsError> {
    let dirs: Vec<PathBuf> = std::env::var_os("OVS_PKGDATADIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(SCHEMA_DIRS.iter().map(PathBuf::from))
        .collect();
    dirs.iter()
        .map(|d| d.join("vswitch.ovsschema"))
        .find(|p| p.exists())
        .ok_or_else(|| OvsError::NoSchema {
            looked: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// SIGTERM our `daemon` (if its pidfile names a live process of ours), wait,
/// then SIGKILL if it lingers.
fn stop_daemon(ours: &Layout, daemon: &'static str) -> Result<(), OvsError> {
    let Some(pid) = ours.live_pid(daemon) else {
        return Ok(());
    };
    for (signal, wait) in [
        (Signal::SIGTERM, STOP_TIMEOUT),
        (Signal::SIGKILL, Duration::from_secs(2)),
    ] {
        debug!(daemon, pid, ?signal, "stopping");
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Ok(()),
            Err(e) => {
                return Err(OvsError::Stop {
                    daemon,
                    pid,
                    detail: e.to_string(),
                });
            }
        }
        let start = Instant::now();
        while start.elapsed() < wait {
            if Proc::read(pid).is_none_or(|p| p.comm != daemon) {
                info!(daemon, pid, "stopped");
                return Ok(());
            }
            sleep(POLL);
        }
    }
    Err(OvsError::Stop {
        daemon,
        pid,
        detail: "still running after SIGKILL".into(),
    })
}

/// Delete what our daemons and we create in the run dir, and nothing else.
fn remove_our_files(ours: &Layout) -> Result<(), OvsError> {
    let entries = match fs::read_dir(&ours.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ours.run_dir_err(e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ours_by_name = matches!(name.as_str(), "conf.db" | ".conf.db.~lock~")
            || matches!(
                ext.as_str(),
                "pid" | "log" | "ctl" | "mgmt" | "snoop" | "sock" | "startup"
            );
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(true);
        if ours_by_name && !is_dir {
            match fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ours.run_dir_err(e)),
            }
        }
    }
    Ok(())
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines
        .get(lines.len().saturating_sub(3)..)
        .unwrap_or_default();
    if tail.is_empty() {
        format!("none in {}", path.display())
    } else {
        tail.join(" | ")
    }
}

/// A live (not exiting, not zombie) process, from /proc.
struct Proc {
    pid: i32,
    comm: String,
    cmdline: Vec<String>,
}

impl Proc {
    fn read(pid: i32) -> Option<Self> {
        let base = PathBuf::from(format!("/proc/{pid}"));
        let stat = fs::read_to_string(base.join("stat")).ok()?;
        // State follows the parenthesised command name, which may hold spaces.
        let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
        if state == "Z" || state == "X" {
            return None;
        }
        let comm = fs::read_to_string(base.join("comm"))
            .ok()?
            .trim_end()
            .to_string();
        let cmdline: Vec<String> = fs::read(base.join("cmdline"))
            .ok()?
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // An empty command line means a process that is exiting (its memory
        // is gone but it is not a zombie yet) or a kernel thread: not live.
        if cmdline.is_empty() {
            return None;
        }
        Some(Self { pid, comm, cmdline })
    }

    /// The database an ovs-vswitchd was started with, when it is a unix socket
    /// (its first non-option argument; none means the distribution default).
    fn vswitchd_db(&self) -> Option<PathBuf> {
        let remote = self.cmdline.iter().skip(1).find(|a| !a.starts_with('-'))?;
        remote.strip_prefix("unix:").map(PathBuf::from)
    }
}

/// Live processes whose command name is `name`, in our network namespace.
///
/// An ovs-vswitchd in another network namespace (a container's, a simulated host's)
/// manages that namespace's datapaths and ports and cannot serve ours — the kernel
/// keeps Open vSwitch datapaths per network namespace, and a netdev datapath lives
/// in its daemon — so it neither blocks starting one here nor is a daemon to use. A
/// process whose namespace cannot be read is counted (the conservative side).
fn processes(name: &str) -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let here = fs::read_link("/proc/self/ns/net").ok();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(Proc::read)
        .filter(|p| p.comm == name)
        .filter(|p| {
            let theirs = fs::read_link(format!("/proc/{}/ns/net", p.pid)).ok();
            here.is_none() || theirs.is_none() || theirs == here
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_private_sockets_are_trusted() {
        let dir = std::env::temp_dir().join(format!("vethscope-ovs-trust-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let sock = dir.join("db.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(trusted_socket(&sock), Ok(()));
        // A directory others may write to: they could have replaced the socket.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(trusted_socket(&sock).unwrap_err().contains("writable"));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        // A socket of another user.
        nix::unistd::chown(&sock, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert!(trusted_socket(&sock).unwrap_err().contains("uid 65534"));
        // Not a socket at all.
        fs::write(dir.join("file"), "").unwrap();
        assert!(trusted_socket(&dir.join("file")).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
