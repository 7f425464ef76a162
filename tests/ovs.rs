//! Integration tests of `vethscope::ovs` against REAL Open vSwitch daemons.
//!
//! Needs root, the openvswitch-switch package (ovsdb-server, ovs-vswitchd,
//! ovsdb-tool, ovs-ofctl), `ip` and /dev/net/tun. Every test uses unique names
//! (`vso` + random hex) and cleans up what it made (veths, bridges, daemons,
//! run dir) from a Drop guard, so a failing assertion still leaves the host
//! clean. Tests take a global lock: only one ovs-vswitchd may run per host.
//!
//! Each test serialises on one lock: only one ovs-vswitchd may run per host.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vethscope::ovs::{self, OvsEndpoint, OvsError, Ovsdb};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MARK: &str = "vethscope.test";

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:06x}", (nanos ^ (std::process::id() << 8)) & 0xff_ffff)
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Pids of live ovsdb-server / ovs-vswitchd processes whose command line
/// mentions `dir`.
fn daemons_using(dir: &Path) -> Vec<i32> {
    let marker = dir.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s == "Z");
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !zombie
            && matches!(comm.trim(), "ovs-vswitchd" | "ovsdb-server")
            && cmdline.contains(&marker)
        {
            pids.push(pid);
        }
    }
    pids
}

fn count_vswitchd() -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "ovs-vswitchd")
                && !std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, r)| r.split_whitespace().next())
                        .is_some_and(|st| st == "Z")
                })
        })
        .count()
}

/// Everything a test made; removed on drop, whatever happened.
struct Lab {
    id: String,
    run_dir: PathBuf,
    ep: Option<OvsEndpoint>,
    bridges: Vec<String>,
    veths: Vec<String>,
    extra_dirs: Vec<PathBuf>,
}

impl Lab {
    fn new() -> Self {
        let id = unique();
        let run_dir = std::env::temp_dir().join(format!("vso-{id}")).join("ovs");
        Self {
            id,
            run_dir,
            ep: None,
            bridges: Vec::new(),
            veths: Vec::new(),
            extra_dirs: Vec::new(),
        }
    }

    fn name(&self, suffix: &str) -> String {
        let n = format!("vso{}{suffix}", self.id);
        assert!(n.len() <= 15, "{n} too long");
        n
    }

    fn start(&mut self) -> OvsEndpoint {
        let t = Instant::now();
        let ep = ovs::ensure_running(&self.run_dir).expect("ensure_running");
        eprintln!("ensure_running took {:?}: {ep:?}", t.elapsed());
        self.ep = Some(ep.clone());
        ep
    }

    fn bridge(&mut self, db: &mut Ovsdb, suffix: &str) -> String {
        let br = self.name(suffix);
        self.bridges.push(br.clone());
        db.add_bridge(&br, ovs::DATAPATH_NETDEV, &[(MARK, &self.id)])
            .expect("add_bridge");
        br
    }

    fn veth(&mut self, a: &str, b: &str) {
        self.veths.push(a.to_string());
        assert!(sh(&[
            "ip", "link", "add", a, "type", "veth", "peer", "name", b
        ]));
        assert!(sh(&["ip", "link", "set", a, "up"]));
        assert!(sh(&["ip", "link", "set", b, "up"]));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(ep) = &self.ep
            && let Ok(mut db) = Ovsdb::connect(ep)
        {
            for br in &self.bridges {
                let _ = db.del_bridge(br);
            }
        }
        for v in &self.veths {
            if link_exists(v) {
                let _ = sh(&["ip", "link", "del", v]);
            }
        }
        let _ = ovs::stop_ours(&self.run_dir);
        if let Some(top) = self.run_dir.parent() {
            let _ = std::fs::remove_dir_all(top);
        }
        for d in &self.extra_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Some tests must start, kill and stop daemons of their own, which they cannot do
/// beside a system Open vSwitch (one netdev ovs-vswitchd per network namespace, and the
/// system's is not ours to kill). When `lab.start()` found a system OVS, such a test
/// runs again in a simulated host of its own (`common::run_in_own_host`: private
/// /run/openvswitch, /var/run/openvswitch, sysfs, …) where no other OVS exists, and this
/// run passes only if that one passes. (`VETHSCOPE_OVS_TEST_ISOLATE=1` forces this path,
/// to test it.)
fn run_in_own_host(test: &str) {
    assert!(
        !common::in_own_host(),
        "{test}: even in its own simulated host another Open vSwitch answers"
    );
    eprintln!(
        "{test}: a system Open vSwitch runs here; running the test in its own simulated host"
    );
    common::run_in_own_host(test);
}

/// True when this test must leave the host's OVS alone and run in its own host.
fn foreign_ovs(ep: &OvsEndpoint) -> bool {
    !ep.started_by_us
        || (std::env::var_os("VETHSCOPE_OVS_TEST_ISOLATE").is_some() && !common::in_own_host())
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn flows_with_cookie(ep: &OvsEndpoint, bridge: &str, cookie: &str) -> usize {
    let dir = ep
        .run_dir
        .clone()
        .or_else(|| ep.socket.parent().map(PathBuf::from))
        .expect("rundir");
    let out = Command::new("ovs-ofctl")
        .arg("dump-flows")
        .arg(format!(
            "unix:{}",
            dir.join(format!("{bridge}.mgmt")).display()
        ))
        .output()
        .expect("ovs-ofctl dump-flows");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("cookie={cookie}")))
        .count()
}

#[test]
fn lifecycle_bridge_ports_flows_and_teardown() {
    let _g = lock();
    let mut lab = Lab::new();
    let ep = lab.start();
    let ours = ep.started_by_us;
    if ours {
        assert_eq!(ep.socket, lab.run_dir.join("db.sock"));
        assert_eq!(ep.run_dir.as_deref(), Some(lab.run_dir.as_path()));
        assert!(!daemons_using(&lab.run_dir).is_empty());
    }
    assert_eq!(count_vswitchd(), 1, "exactly one ovs-vswitchd on the host");

    // Idempotent: a second call reuses what runs.
    let t = Instant::now();
    let again = ovs::ensure_running(&lab.run_dir).expect("ensure_running again");
    eprintln!("ensure_running (reuse) took {:?}", t.elapsed());
    assert_eq!(again, ep);
    assert_eq!(count_vswitchd(), 1);

    let mut db = Ovsdb::connect(&ep).expect("connect");
    let br = lab.bridge(&mut db, "br");
    assert!(db.bridge_exists(&br).expect("bridge_exists"));
    match db.add_bridge(&br, ovs::DATAPATH_NETDEV, &[]) {
        Err(OvsError::BridgeExists(name)) => assert_eq!(name, br),
        other => panic!("expected BridgeExists, got {other:?}"),
    }

    // A veth end as a system port.
    let (va, vb) = (lab.name("a"), lab.name("b"));
    lab.veth(&va, &vb);
    db.add_port(&br, &va, "", &[(MARK, &lab.id)])
        .expect("add_port veth");
    let t = Instant::now();
    let ofport = db.wait_ofport(&va).expect("wait_ofport veth");
    eprintln!("wait_ofport(veth) = {ofport} after {:?}", t.elapsed());
    assert!(ofport > 0);
    assert!(db.port_exists(&va).expect("port_exists"));
    match db.add_port(&br, &va, "", &[]) {
        Err(e @ OvsError::PortExists(_)) => assert!(e.to_string().contains(&va)),
        other => panic!("expected PortExists, got {other:?}"),
    }
    let nobr = lab.name("nb");
    match db.add_port(&nobr, &lab.name("x"), "", &[]) {
        Err(e @ OvsError::NoSuchBridge(_)) => assert!(e.to_string().contains(&nobr)),
        other => panic!("expected NoSuchBridge, got {other:?}"),
    }

    // An internal port: vswitchd creates a TAP device in the root namespace.
    let int = lab.name("i");
    db.add_port(&br, &int, "internal", &[(MARK, &lab.id)])
        .expect("add_port internal");
    let t = Instant::now();
    let ofport_int = db.wait_ofport(&int).expect("wait_ofport internal");
    eprintln!(
        "wait_ofport(internal) = {ofport_int} after {:?}",
        t.elapsed()
    );
    assert!(ofport_int > 0 && ofport_int != ofport);
    assert!(link_exists(&int), "internal port {int} is a kernel device");

    // Ownership marks.
    let owned = db.owned(MARK, &lab.id).expect("owned");
    assert_eq!(owned.bridges, vec![br.clone()]);
    let mut want = vec![(br.clone(), va.clone()), (br.clone(), int.clone())];
    want.sort();
    assert_eq!(owned.ports, want);
    assert_eq!(
        db.owned(MARK, "someone-else").expect("owned").bridges.len(),
        0
    );
    assert!(db.any_owned(MARK).expect("any_owned"));
    assert!(!db.any_owned("vethscope.no-such-key").expect("any_owned"));

    // Live view.
    let all = db.bridges().expect("bridges");
    let info = all
        .iter()
        .find(|b| b.name == br)
        .expect("bridge in bridges()");
    assert_eq!(info.datapath_type, "netdev");
    assert_eq!(info.external_ids.get(MARK), Some(&lab.id));
    let names: Vec<&str> = info.ports.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&br.as_str())
            && names.contains(&va.as_str())
            && names.contains(&int.as_str())
    );
    let port = info.ports.iter().find(|p| p.name == va).expect("veth port");
    assert_eq!(port.external_ids.get(MARK), Some(&lab.id));
    assert_eq!(port.interfaces.len(), 1);
    assert_eq!(port.interfaces[0].iface_type, "");
    assert_eq!(port.interfaces[0].ofport, Some(ofport));
    assert_eq!(port.interfaces[0].error, None);
    let iport = info
        .ports
        .iter()
        .find(|p| p.name == int)
        .expect("internal port");
    assert_eq!(iport.interfaces[0].iface_type, "internal");

    // OpenFlow by cookie.
    let flows = vec![
        format!("cookie=0x5eed01,priority=100,in_port={ofport},actions=output:{ofport_int}"),
        format!("cookie=0x5eed01,priority=100,in_port={ofport_int},actions=output:{ofport}"),
    ];
    ovs::ofctl_add_flows(&ep, &br, &flows).expect("ofctl_add_flows");
    assert_eq!(flows_with_cookie(&ep, &br, "0x5eed01"), 2);
    ovs::ofctl_del_flows_cookie(&ep, &br, 0x5eed01).expect("ofctl_del_flows_cookie");
    assert_eq!(flows_with_cookie(&ep, &br, "0x5eed01"), 0);
    assert!(
        flows_with_cookie(&ep, &br, "0x0") >= 1,
        "the NORMAL flow survives"
    );
    match ovs::ofctl_add_flows(&ep, &br, &["cookie=0x1,actions=bogus_action".to_string()]) {
        Err(e @ OvsError::Command { .. }) => eprintln!("bad flow: {e}"),
        other => panic!("expected Command error, got {other:?}"),
    }

    // Deletion: wrong bridge refused, then idempotent.
    match db.del_port(&nobr, &int) {
        Err(OvsError::PortOnOtherBridge { actual, .. }) => assert_eq!(actual, br),
        other => panic!("expected PortOnOtherBridge, got {other:?}"),
    }
    db.del_port(&br, &va).expect("del_port");
    assert!(!db.port_exists(&va).expect("port_exists"));
    db.del_port(&br, &va).expect("del_port again");
    db.del_port(&nobr, &va).expect("del_port on absent bridge");
    db.del_bridge(&br).expect("del_bridge");
    assert!(!db.bridge_exists(&br).expect("bridge_exists"));
    assert!(
        !db.port_exists(&int)
            .expect("internal port gone with bridge")
    );
    assert!(!link_exists(&int), "internal TAP removed by vswitchd");
    db.del_bridge(&br).expect("del_bridge again");
    assert!(
        link_exists(&va),
        "a system port's device is not ours to delete"
    );
    drop(db);

    ovs::stop_ours(&lab.run_dir).expect("stop_ours");
    if ours {
        assert!(
            daemons_using(&lab.run_dir).is_empty(),
            "our daemons stopped"
        );
        assert!(!lab.run_dir.exists(), "run dir removed");
    }
    ovs::stop_ours(&lab.run_dir).expect("stop_ours again is a no-op");
}

#[test]
fn nonexistent_device_fails_with_ovs_text() {
    let _g = lock();
    let mut lab = Lab::new();
    let ep = lab.start();
    let mut db = Ovsdb::connect(&ep).expect("connect");
    let br = lab.bridge(&mut db, "br");
    let ghost = lab.name("gh");
    db.add_port(&br, &ghost, "", &[(MARK, &lab.id)])
        .expect("add_port is accepted by the db");
    let t = Instant::now();
    match db.wait_ofport(&ghost) {
        Err(e @ OvsError::InterfaceFailed { .. }) => {
            eprintln!("after {:?}: {e}", t.elapsed());
            let OvsError::InterfaceFailed { iface, error } = &e else {
                unreachable!()
            };
            assert_eq!(iface, &ghost);
            assert!(error.contains(&ghost), "OVS names the device: {error}");
            assert!(error.contains("No such device"), "OVS's reason: {error}");
            assert!(e.to_string().contains(&ghost));
        }
        other => panic!("expected InterfaceFailed, got {other:?}"),
    }
    match db.wait_ofport(&lab.name("nx")) {
        Err(OvsError::NoSuchInterface(_)) => {}
        other => panic!("expected NoSuchInterface, got {other:?}"),
    }
    match db.add_bridge("this-name-is-too-long", ovs::DATAPATH_NETDEV, &[]) {
        Err(OvsError::InvalidName { .. }) => {}
        other => panic!("expected InvalidName, got {other:?}"),
    }
    db.del_port(&br, &ghost).expect("del_port of a failed port");
}

#[test]
fn restarts_after_our_daemons_were_killed() {
    let _g = lock();
    let mut lab = Lab::new();
    let ep = lab.start();
    if foreign_ovs(&ep) {
        drop(lab);
        return run_in_own_host("restarts_after_our_daemons_were_killed");
    }
    let mut db = Ovsdb::connect(&ep).expect("connect");
    let br = lab.bridge(&mut db, "br");
    drop(db);
    for pid in daemons_using(&lab.run_dir) {
        assert!(sh(&["kill", "-9", &pid.to_string()]));
    }
    let t = Instant::now();
    while !daemons_using(&lab.run_dir).is_empty() && t.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(daemons_using(&lab.run_dir).is_empty());
    // Stale pidfiles and db.sock remain; ensure_running must cope.
    let ep2 = lab.start();
    assert_eq!(ep2, ep);
    let mut db = Ovsdb::connect(&ep2).expect("connect after restart");
    assert!(db.bridge_exists(&br).expect("conf.db kept the bridge"));
    let int = lab.name("i");
    db.add_port(&br, &int, "internal", &[])
        .expect("add_port after restart");
    assert!(db.wait_ofport(&int).expect("ofport after restart") > 0);
}

#[test]
fn second_run_dir_reuses_the_running_vswitchd() {
    let _g = lock();
    let mut lab = Lab::new();
    let ep = lab.start();
    let other = std::env::temp_dir().join(format!("vso-{}-other", lab.id));
    lab.extra_dirs.push(other.clone());
    let ep2 = ovs::ensure_running(&other).expect("ensure_running in a second run dir");
    assert_eq!(ep2.socket, ep.socket, "reuses the running daemons");
    assert!(!ep2.started_by_us);
    assert_eq!(count_vswitchd(), 1, "never a second ovs-vswitchd");
    ovs::stop_ours(&other).expect("stop_ours on a dir with nothing of ours");
    assert!(
        Ovsdb::connect(&ep).is_ok(),
        "the first run's daemons still run"
    );
}

#[test]
fn stop_ours_leaves_foreign_dirs_alone() {
    let _g = lock();
    let dir = std::env::temp_dir().join(format!("vso-{}-foreign", unique()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("keep.txt"), "not ours").expect("write");
    ovs::stop_ours(&dir).expect("stop_ours");
    assert!(dir.join("keep.txt").exists());
    ovs::stop_ours(&dir.join("missing")).expect("stop_ours on a missing dir");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kernel_datapath_probe_matches_the_kernel() {
    let available = ovs::kernel_datapath_available();
    eprintln!("kernel datapath available: {available}");
    // The family can only resolve when the module is loaded (or built in).
    if available {
        assert!(Path::new("/sys/module/openvswitch").exists());
    }
    assert_eq!(
        ovs::genl_family_id("nlctrl").expect("genl works"),
        Some(0x10)
    );
    let expected = if available { "system" } else { "netdev" };
    assert_eq!(ovs::preferred_datapath_type(), expected);
}

#[test]
fn recovers_when_only_one_daemon_died() {
    let _g = lock();
    let mut lab = Lab::new();
    let ep = lab.start();
    if foreign_ovs(&ep) {
        drop(lab);
        return run_in_own_host("recovers_when_only_one_daemon_died");
    }
    let run_dir = lab.run_dir.clone();
    let pid_of = |daemon: &str| -> String {
        std::fs::read_to_string(run_dir.join(format!("{daemon}.pid")))
            .expect("pidfile")
            .trim()
            .to_string()
    };
    let wait_gone = |pid: &str| {
        let t = Instant::now();
        while Path::new(&format!("/proc/{pid}/cmdline")).exists()
            && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
            && t.elapsed().as_secs() < 5
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };

    // vswitchd died, ovsdb-server lives: restart vswitchd only.
    let vs = pid_of("ovs-vswitchd");
    let db_pid = pid_of("ovsdb-server");
    assert!(sh(&["kill", "-9", &vs]));
    wait_gone(&vs);
    let again = lab.start();
    assert_eq!(again, ep);
    assert_eq!(pid_of("ovsdb-server"), db_pid, "ovsdb-server kept");
    assert_ne!(pid_of("ovs-vswitchd"), vs, "ovs-vswitchd restarted");
    assert_eq!(count_vswitchd(), 1);

    // ovsdb-server died, vswitchd lives: ours, so it is restarted with the db.
    let db_pid = pid_of("ovsdb-server");
    assert!(sh(&["kill", "-9", &db_pid]));
    wait_gone(&db_pid);
    let again = lab.start();
    assert_eq!(again, ep);
    assert_eq!(count_vswitchd(), 1);
    let mut db = Ovsdb::connect(&again).expect("connect");
    let br = lab.bridge(&mut db, "br");
    let int = lab.name("i");
    db.add_port(&br, &int, "internal", &[]).expect("add_port");
    assert!(db.wait_ofport(&int).expect("ofport") > 0);
}

#[test]
fn refuses_to_start_beside_a_foreign_vswitchd() {
    let _g = lock();
    let mut lab = Lab::new();
    // A stand-in process named ovs-vswitchd whose database does not answer:
    // a copy of `sleep`, so nothing real is disturbed.
    let fake_dir = std::env::temp_dir().join(format!("vso-{}-fake", lab.id));
    lab.extra_dirs.push(fake_dir.clone());
    std::fs::create_dir_all(&fake_dir).expect("mkdir");
    let fake = fake_dir.join("ovs-vswitchd");
    std::fs::copy("/bin/sleep", &fake).expect("copy sleep");
    let mut child = Command::new(&fake)
        .arg("30")
        .spawn()
        .expect("start fake ovs-vswitchd");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let result = ovs::ensure_running(&lab.run_dir);
    let _ = child.kill();
    let _ = child.wait();
    match result {
        Err(e @ OvsError::ForeignVswitchd { .. }) => eprintln!("refused: {e}"),
        other => {
            lab.ep = other.as_ref().ok().cloned();
            panic!("expected ForeignVswitchd, got {other:?}")
        }
    }
    assert!(daemons_using(&lab.run_dir).is_empty(), "started nothing");
}

/// netdev TAP devices are persistent: stop_ours must have vswitchd remove
/// them, also when vswitchd had crashed before.
#[test]
fn stop_ours_removes_datapath_devices_even_after_a_crash() {
    let _g = lock();
    for crash in [false, true] {
        let mut lab = Lab::new();
        let ep = lab.start();
        if foreign_ovs(&ep) {
            drop(lab);
            return run_in_own_host("stop_ours_removes_datapath_devices_even_after_a_crash");
        }
        let mut db = Ovsdb::connect(&ep).expect("connect");
        let br = lab.bridge(&mut db, "br");
        let int = lab.name("i");
        db.add_port(&br, &int, "internal", &[]).expect("add_port");
        assert!(db.wait_ofport(&int).expect("ofport") > 0);
        drop(db);
        assert!(link_exists(&br) && link_exists(&int) && link_exists("ovs-netdev"));
        if crash {
            let pid =
                std::fs::read_to_string(lab.run_dir.join("ovs-vswitchd.pid")).expect("pidfile");
            assert!(sh(&["kill", "-9", pid.trim()]));
            let t = Instant::now();
            while std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
                .is_ok_and(|c| !c.is_empty())
                && t.elapsed().as_secs() < 5
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(
                link_exists(&int),
                "a crashed vswitchd leaves its TAPs behind"
            );
        }
        let t = Instant::now();
        ovs::stop_ours(&lab.run_dir).expect("stop_ours");
        eprintln!("stop_ours (crash={crash}) took {:?}", t.elapsed());
        assert!(!link_exists(&br), "bridge TAP {br} removed");
        assert!(!link_exists(&int), "internal TAP {int} removed");
        assert!(!link_exists("ovs-netdev"), "datapath TAP removed");
        assert!(daemons_using(&lab.run_dir).is_empty());
        assert!(!lab.run_dir.exists());
    }
}
