//! Hostile input (issue 8): topology files shared by someone else, and names given on
//! the command line. Each is rejected with one clear line naming file:line:col, a
//! non-zero exit, nothing created, and the host untouched (its sysctls, interfaces,
//! namespaces and vethscope's own state compared before and after).
//!
//! The static corpus is tests/hostile/*.yaml (the first line of each says what it
//! tries); files that are large or binary are generated here.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::vethscope;

/// The tests compare the host before and after; they must not see each other's work.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a hostile file could change: host sysctls it aims at, the host's interfaces,
/// named namespaces, lab state files and bpffs pins.
fn host_snapshot() -> BTreeMap<String, String> {
    let mut snap = BTreeMap::new();
    for f in [
        "/proc/sys/kernel/printk_ratelimit",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/net/ipv4/ip_forward",
    ] {
        snap.insert(
            f.to_string(),
            std::fs::read_to_string(f).unwrap_or_default(),
        );
    }
    for dir in [
        "/proc/sys/net/ipv4/conf/all",
        "/proc/sys/net/ipv4/conf/default",
        "/proc/sys/net/ipv6/conf/all",
    ] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if let Ok(v) = std::fs::read_to_string(&p) {
                snap.insert(p.display().to_string(), v);
            }
        }
    }
    for dir in [
        "/sys/class/net",
        "/run/netns",
        "/run/vethscope/labs",
        "/sys/fs/bpf/vethscope",
    ] {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        snap.insert(dir.to_string(), names.join(" "));
    }
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    // Counters and states of unrelated links may change; names and aliases may not.
    let links: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let name = l.split(':').nth(1).unwrap_or("").trim().to_string();
            let alias = l.split("alias ").nth(1).unwrap_or("").to_string();
            format!("{name} {alias}")
        })
        .collect();
    snap.insert("ip link".into(), links.join("\n"));
    snap
}

fn generated(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    };
    // 5 MiB: more than the 4 MiB limit.
    let mut huge = b"name: vsth-huge\n".to_vec();
    while huge.len() < 5 << 20 {
        huge.extend_from_slice(b"# padding padding padding padding padding padding padding\n");
    }
    add("huge.yaml", huge);
    // 10,000 levels of nesting.
    add(
        "deep.yaml",
        format!(
            "name: vsth-deep\nlinks: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
    );
    // Billion laughs: 10^9 nodes from a few hundred bytes.
    let mut bomb = String::from("name: vsth-bomb\nx0: &a0 [l, l, l, l, l, l, l, l, l, l]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    add("alias-bomb.yaml", bomb.into_bytes());
    // 10,000 links.
    let mut many = String::from("name: vsth-many\nnamespaces: [{name: vsth-ev1}]\nlinks:\n");
    for i in 0..10_000 {
        many.push_str(&format!(
            "  - {{kind: veth, ends: [{{ns: vsth-ev1, name: a{i}}}, {{ns: vsth-ev1, name: b{i}}}]}}\n"
        ));
    }
    add("ten-thousand-links.yaml", many.into_bytes());
    add(
        "nul-byte.yaml",
        b"name: vsth-nul\nnamespaces: [{name: vsth-ev\x001}]\n".to_vec(),
    );
    add(
        "not-utf8.yaml",
        b"name: vsth-latin1\nnamespaces: [{name: vsth-\xe9}]\n".to_vec(),
    );
    add("empty.yaml", Vec::new());
    files
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/hostile")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let gen_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-generated");
    std::fs::create_dir_all(&gen_dir).unwrap();
    files.extend(generated(&gen_dir));
    // An endless file: reading stops at the limit.
    files.push(PathBuf::from("/dev/zero"));
    files
}

/// One line, naming the file and a position, no panic, no colour, no backtrace.
fn assert_one_clear_line(args: &[&str], file: &Path) {
    let out = vethscope(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{args:?} was accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line:\n{stderr}");
    let line = lines[0];
    assert!(
        !line.contains("panicked") && !line.contains("internal error") && !line.contains('\x1b'),
        "{args:?}: {line}"
    );
    let shown = file.display().to_string();
    let rest = line
        .split_once(&format!("{shown}:"))
        .unwrap_or_else(|| panic!("{args:?}: the error does not name {shown}: {line}"))
        .1;
    let mut parts = rest.splitn(3, ':');
    let (l, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    assert!(
        l.parse::<usize>().is_ok_and(|n| n > 0) && c.parse::<usize>().is_ok_and(|n| n > 0),
        "{args:?}: no line:col after the file name: {line}"
    );
}

#[test]
fn hostile_topology_files_are_rejected_and_change_nothing() {
    let _serial = serial();
    let before = host_snapshot();
    let files = corpus();
    assert!(files.len() >= 45, "corpus has {} files", files.len());
    for file in &files {
        let f = file.to_str().unwrap();
        assert_one_clear_line(&["up", f], file);
        assert_one_clear_line(&["check", f], file);
    }
    let after = host_snapshot();
    for (k, v) in &before {
        assert_eq!(Some(v), after.get(k), "{k} changed");
    }
    // Nothing named by the corpus exists.
    common::assert_clean("vsth");
    println!("{} hostile files rejected, host unchanged", files.len());
}

#[test]
fn hostile_names_on_the_command_line_are_refused_before_anything_runs() {
    let _serial = serial();
    let before = host_snapshot();
    for args in [
        &["down", ".."][..],
        &["down", "."],
        &["down", "../../etc"],
        &["down", "a/b"],
        &["show", ".."],
        &["graph", "../x"],
        &["trace", "..", "--duration", "1"],
        &["trace", "--ns", "../x", "--duration", "1"],
        &["trace", "--iface", "a/b", "--duration", "1"],
        &["serve", ".."],
        &["fastpath", "enable", ".."],
        &["fastpath", "disable", ".."],
        &["fastpath", "status", "../x"],
        &["up", "bridge", "--prefix", "../"],
        &["up", "bridge", "--prefix", "a/"],
        &["bench", "--prefix", "../"],
        &["check", "bridge", "--prefix", ".x"],
    ] {
        let out = vethscope(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(
            stderr.contains("name") || stderr.contains("prefix"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(before, host_snapshot());
}

#[test]
fn huge_durations_are_a_clear_error_not_a_panic() {
    for args in [
        &["trace", "--duration", "1e19"][..],
        &["trace", "--duration=-1"],
        &["trace", "--reply-timeout", "NaN"],
        &["serve", "--all", "--refresh", "1e19"],
        &["serve", "--all", "--refresh", "0"],
        &["bench", "--duration", "1e300"],
    ] {
        let out = vethscope(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(
            stderr.contains("out of range") || stderr.contains("not a number"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_name_too_long_because_of_the_prefix_says_to_shorten_the_prefix() {
    // bridge.yaml's root-namespace names are up to 9 bytes (br-veth0): with an
    // 8-byte prefix they are 17.
    let out = vethscope(&["check", "bridge", "--prefix", "abcdefg-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("shorten the prefix"), "{stderr}");
    assert!(stderr.contains("builtin:bridge:"), "{stderr}");
}

#[test]
fn a_planted_state_symlink_is_not_followed() {
    let _serial = serial();
    // Someone with write access to our state directory (only root, since it is 0700)
    // or an older, world-readable layout: a state file that is a symlink to a file
    // elsewhere. `down` must neither read through it nor remove the target.
    let lab = "vsthsy-lab";
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-precious");
    std::fs::write(&target, "keep").unwrap();
    let _ = vethscope(&["list"]); // makes /run/vethscope exist with its final modes
    std::fs::create_dir_all("/run/vethscope/labs").unwrap();
    let link = format!("/run/vethscope/labs/{lab}.json");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = vethscope(&["down", lab]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    let _ = std::fs::remove_file(&link);
    // The lock of a lab that was only looked up is not left behind.
    assert!(
        !Path::new(&format!("/run/vethscope/locks/lab-{lab}.lock")).exists(),
        "lock file left behind"
    );
    use std::os::unix::fs::PermissionsExt;
    for dir in [
        "/run/vethscope",
        "/run/vethscope/labs",
        "/run/vethscope/locks",
    ] {
        if let Ok(m) = std::fs::metadata(dir) {
            assert_eq!(m.permissions().mode() & 0o077, 0, "{dir} is not private");
        }
    }
}

#[test]
fn serve_warns_when_a_named_lab_is_not_up() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(common::bin())
        .args(["serve", "vsthsv-nolab", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) if line.contains("lab vsthsv-nolab is not up") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no warning; stderr: {seen:?}");
}

#[test]
fn a_planted_bpffs_symlink_is_refused_and_its_target_kept() {
    let _serial = serial();
    // Issue 8: `vethscope/LAB -> /etc` in bpffs made `down LAB` remove files there.
    let lab = "vsthbp-lab";
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-bpf-target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("link-e0"), "keep").unwrap();
    std::fs::write(target.join("FASTPATH_FDB"), "keep").unwrap();
    let root = Path::new("/sys/fs/bpf/vethscope");
    let made_root = !root.exists();
    if made_root {
        std::fs::create_dir(root).unwrap();
    }
    let link = root.join(lab);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = vethscope(&["down", lab]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_file(&link);
    if made_root {
        let _ = std::fs::remove_dir(root);
    }
    assert_eq!(
        std::fs::read_to_string(target.join("link-e0")).unwrap(),
        "keep"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("FASTPATH_FDB")).unwrap(),
        "keep"
    );
    // Refused with a message that says what and why, not silently.
    assert!(
        !out.status.success(),
        "down followed or ignored the symlink"
    );
    assert!(
        stderr.contains("refusing") && stderr.contains("symlink"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_reports_every_error_of_a_file_in_one_run() {
    let file = common::topology_file(
        "hc",
        "name: vsthc-lab\nnamespaces: [{name: vsthc-a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: vsthc-a, name: averyveryverylongname}\n      - {ns: vsthc-b, name: y}\n  - kind: veth\n    ends:\n      - {ns: vsthc-a, name: \"x/y\", sysctls: {acept_local: 1}}\n      - {ns: vsthc-a, name: z}\n",
    );
    let out = vethscope(&["check", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let shown = file.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for (line, at) in lines.iter().zip([":6:", ":7:", ":10:"]) {
        assert!(line.contains(&format!("{shown}{at}")), "{stderr}");
    }
    // Every example is valid.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for e in std::fs::read_dir(examples).unwrap().flatten() {
        let out = vethscope(&["check", e.path().to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            e.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A misspelt sysctl in an otherwise valid file: did you mean.
    let file = common::topology_file(
        "hd",
        "name: vsthd-lab\nnamespaces: [{name: vsthd-a, sysctls: {net.ipv4.ip_forwrd: 1}}]\n",
    );
    let out = vethscope(&["check", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did you mean `net.ipv4.ip_forward`?"),
        "{stderr}"
    );
}

#[test]
fn a_failed_up_removes_everything_and_stops_the_ovs_daemons_it_started() {
    let _serial = serial();
    // Valid in every check, refused by the kernel half-way: a sysctl value that is
    // not a number, on an end whose peer sits on an OVS bridge made just before.
    let file = common::topology_file(
        "hf",
        "name: vsthf-lab\nbridges: [{name: vsthf-br, kind: ovs}]\nnamespaces: [{name: vsthf-a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: vsthf-a, name: e0, sysctls: {accept_local: notanumber}}\n      - {bridge: vsthf-br, name: vsthf-p0}\n",
    );
    let pidfile = Path::new("/run/vethscope/ovs/ovs-vswitchd.pid");
    let ours_before = pidfile.exists();
    let out = vethscope(&["up", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up succeeded");
    assert!(stderr.contains("accept_local"), "{stderr}");
    // The undo logs a warning: plain text when stderr is not a terminal.
    assert!(
        stderr.contains("WARN") && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    common::assert_clean("vsthf");
    if !ours_before {
        // Whether this run started daemons (no system OVS) or used the system's: none
        // of ours is left running.
        assert!(
            !pidfile.exists(),
            "the OVS daemons this up started still run"
        );
    }
    assert!(
        !Path::new("/run/vethscope/locks/lab-vsthf-lab.lock").exists(),
        "lock file left behind"
    );
}

#[test]
fn a_symlink_in_run_netns_is_removed_never_followed() {
    let _serial = serial();
    // Unmounting through a planted /run/netns/NAME -> /some/mount would detach a host
    // mount; deleting must remove the link only.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-netns-target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("keep"), "keep").unwrap();
    std::fs::create_dir_all("/run/netns").unwrap();
    let link = Path::new("/run/netns/vsthn-link");
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(&target, link).unwrap();
    assert!(!vethscope::netns::is_mounted("vsthn-link"));
    vethscope::netns::delete("vsthn-link").unwrap();
    assert!(std::fs::symlink_metadata(link).is_err(), "link still there");
    assert_eq!(
        std::fs::read_to_string(target.join("keep")).unwrap(),
        "keep"
    );
}
