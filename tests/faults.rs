//! Crash safety and races (issue 8): `up` and `down` killed with SIGKILL at every fault
//! point (`VETHSCOPE_FAULT_AFTER=N`, see userspace/src/fault.rs); afterwards `down`
//! removes exactly the lab's objects — decoys that look like the lab's but are not
//! marked stay — and a second `up` succeeds. Then commands racing each other.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use common::{assert_clean, bin, ok, prefix, vethscope};

fn with_fault(args: &[&str], n: usize) -> Output {
    Command::new(bin())
        .args(args)
        .env("VETHSCOPE_FAULT_AFTER", n.to_string())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run vethscope")
}

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(libc::SIGKILL)
}

/// Objects that are not the lab's: a veth pair in the root namespace and a named
/// namespace, both unmarked, with names next to the lab's.
struct Decoys {
    names: [String; 3],
}

impl Decoys {
    fn new(tag: &str) -> Self {
        let names = [
            format!("vsd{tag}-a"),
            format!("vsd{tag}-b"),
            format!("vsd{tag}-ns"),
        ];
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = Command::new("ip").args(["link", "del", &names[0]]).output();
        let _ = Command::new("ip")
            .args(["netns", "del", &names[2]])
            .output();
        run(&[
            "link", "add", &names[0], "type", "veth", "peer", "name", &names[1],
        ]);
        run(&["netns", "add", &names[2]]);
        Decoys { names }
    }

    fn assert_intact(&self) {
        for n in &self.names[..2] {
            assert!(
                std::path::Path::new(&format!("/sys/class/net/{n}")).exists(),
                "decoy interface {n} was removed"
            );
        }
        assert!(
            std::path::Path::new(&format!("/run/netns/{}", self.names[2])).exists(),
            "decoy namespace {} was removed",
            self.names[2]
        );
    }
}

impl Drop for Decoys {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.names[0]])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.names[2]])
            .output();
    }
}

/// Kills `up` at every fault point in turn, then `down` at every point of its own.
/// Returns (kill points of up, kill points of down).
fn kill_everywhere(spec: &str, tag: &str) -> (usize, usize) {
    let prefix = prefix(tag);
    let lab = format!("{prefix}{spec}");
    let decoys = Decoys::new(tag);
    let up = ["up", spec, "--prefix", prefix.as_str()];
    let mut up_points = 0;
    for n in 1.. {
        assert!(n < 200, "more fault points than expected");
        let out = with_fault(&up, n);
        if !killed(&out) {
            assert!(
                out.status.success(),
                "up with fault point {n} beyond the last: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ok(&["down", &lab]);
            assert_clean(&prefix);
            break;
        }
        up_points = n;
        // The killed `up` leaves a lab that `down` removes, exactly.
        let down = vethscope(&["down", &lab]);
        assert!(
            down.status.success(),
            "down after up was killed at point {n}: {}",
            String::from_utf8_lossy(&down.stderr)
        );
        assert_clean(&prefix);
        decoys.assert_intact();
        // And a second `up` then succeeds.
        ok(&up);
        ok(&["down", &lab]);
        assert_clean(&prefix);
    }
    let mut down_points = 0;
    for n in 1.. {
        assert!(n < 200, "more fault points than expected");
        ok(&up);
        let out = with_fault(&["down", &lab], n);
        let was_killed = killed(&out);
        if !was_killed {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Whatever a killed `down` left, the next one removes.
        ok(&["down", &lab]);
        assert_clean(&prefix);
        decoys.assert_intact();
        if !was_killed {
            break;
        }
        down_points = n;
    }
    assert!(
        up_points >= 4,
        "up of {spec} passed only {up_points} points"
    );
    assert!(
        down_points >= 2,
        "down of {spec} passed only {down_points} points"
    );
    println!("{spec}: up killed at {up_points} points, down at {down_points}; nothing left");
    (up_points, down_points)
}

#[test]
fn direct_survives_kills_at_every_point() {
    kill_everywhere("direct", "fd");
}

#[test]
fn bridge_survives_kills_at_every_point() {
    kill_everywhere("bridge", "fb");
}

#[test]
fn same_ns_survives_kills_at_every_point() {
    kill_everywhere("same-ns", "fs");
}

#[test]
fn ovs_survives_kills_at_every_point() {
    kill_everywhere("ovs", "fo");
}

#[test]
fn ovs_internal_survives_kills_at_every_point() {
    kill_everywhere("ovs-internal", "fi");
}

/// Runs the commands at the same time; returns their outputs in order.
fn at_once(commands: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<_> = commands
        .iter()
        .map(|args| {
            Command::new(bin())
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn vethscope")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect()
}

fn assert_ok(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

#[test]
fn two_ups_of_different_labs_at_once() {
    for spec in ["bridge", "ovs"] {
        for round in 0..3 {
            let (p1, p2) = (prefix("r1"), prefix("r2"));
            let outs = at_once(&[
                vec!["up".into(), spec.into(), "--prefix".into(), p1.clone()],
                vec!["up".into(), spec.into(), "--prefix".into(), p2.clone()],
            ]);
            for (i, out) in outs.iter().enumerate() {
                assert_ok(out, &format!("{spec} round {round} up {i}"));
            }
            // Both labs really work.
            assert!(common::ping(&format!("{p1}ns1"), "10.1.1.3", &[]));
            assert!(common::ping(&format!("{p2}ns1"), "10.1.1.3", &[]));
            let outs = at_once(&[
                vec!["down".into(), format!("{p1}{spec}")],
                vec!["down".into(), format!("{p2}{spec}")],
            ]);
            for (i, out) in outs.iter().enumerate() {
                assert_ok(out, &format!("{spec} round {round} down {i}"));
            }
            assert_clean(&p1);
            assert_clean(&p2);
        }
    }
}

#[test]
fn up_and_down_of_the_same_lab_at_once() {
    let p = prefix("ud");
    let lab = format!("{p}bridge");
    for round in 0..10 {
        let outs = at_once(&[
            vec!["up".into(), "bridge".into(), "--prefix".into(), p.clone()],
            vec!["down".into(), lab.clone()],
        ]);
        // Serialised by the lab lock: either order is fine, neither fails.
        assert_ok(&outs[0], &format!("round {round} up"));
        assert_ok(&outs[1], &format!("round {round} down"));
        // Whichever ran last, the lab is whole or gone: never half.
        let state = std::path::Path::new("/run/vethscope/labs").join(format!("{lab}.json"));
        if state.exists() {
            assert!(common::ping(&format!("{p}ns1"), "10.1.1.3", &[]));
        }
        ok(&["down", &lab]);
        assert_clean(&p);
    }
}

/// Before and after of a structural change (namespaces, a bridge, links and a port
/// moving between bridges, addresses and routes).
const CHANGE_A: &str = "name: chg\nnamespaces:\n  - name: ns1\n  - name: ns2\n  - name: ns9\nbridges:\n  - {name: br0, kind: linux}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth0, addresses: [10.1.1.2/24]}\n      - {bridge: br0, name: br0-ns1}\n  - kind: veth\n    ends:\n      - {ns: ns2, name: eth0, addresses: [10.1.1.3/24]}\n      - {bridge: br0, name: br0-ns2}\n  - kind: veth\n    ends:\n      - {ns: ns2, name: eth9, addresses: [10.1.9.1/24]}\n      - {ns: ns9, name: eth0, addresses: [10.1.9.2/24]}\n";
const CHANGE_B: &str = "name: chg\nnamespaces:\n  - name: ns1\n    routes: [{to: 10.1.7.0/24, via: 10.1.1.3}]\n  - name: ns2\n  - name: ns3\nbridges:\n  - {name: br0, kind: linux}\n  - {name: br1, kind: linux}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth0, addresses: [10.1.1.2/24, 10.1.1.12/24]}\n      - {bridge: br1, name: br0-ns1}\n  - kind: veth\n    ends:\n      - {ns: ns2, name: eth0, addresses: [10.1.1.3/24]}\n      - {bridge: br1, name: br0-ns2}\n  - kind: veth\n    ends:\n      - {ns: ns3, name: eth0, addresses: [10.1.1.4/24]}\n      - {bridge: br1, name: br1-ns3}\n";

fn drift_free(lab: &str) -> bool {
    vethscope(&["show", lab, "--drift"]).status.success()
}

/// `up FILE` changing a running lab, killed at every fault point of the change: then
/// `up` with the same file finishes it, `up` with the old file goes back, and `down`
/// removes the lab — exactly, decoys stay.
#[test]
fn a_change_survives_kills_at_every_point() {
    let prefix = prefix("fc");
    let lab = format!("{prefix}chg");
    let decoys = Decoys::new("fc");
    let a = common::topology_file("fc-a", CHANGE_A);
    let b = common::topology_file("fc-b", CHANGE_B);
    let (a, b) = (
        a.to_str().unwrap_or_default(),
        b.to_str().unwrap_or_default(),
    );
    let up_a = ["up", a, "--prefix", prefix.as_str()];
    let up_b = ["up", b, "--prefix", prefix.as_str()];
    let mut points = 0;
    for n in 1.. {
        assert!(n < 200, "more fault points than expected");
        for way_out in ["finish", "back", "down"] {
            ok(&up_a);
            let out = with_fault(&up_b, n);
            if !killed(&out) {
                assert!(
                    out.status.success(),
                    "change with fault point {n} beyond the last: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(drift_free(&lab));
                ok(&["down", &lab]);
                assert_clean(&prefix);
                decoys.assert_intact();
                assert!(points >= 8, "the change passed only {points} points");
                println!("change killed at {points} points; finished, reverted and removed");
                return;
            }
            points = n;
            match way_out {
                "finish" => {
                    ok(&up_b);
                    assert!(drift_free(&lab), "up finished the change killed at {n}");
                    assert!(common::ping(&format!("{prefix}ns1"), "10.1.1.4", &[]));
                }
                "back" => {
                    ok(&up_a);
                    assert!(drift_free(&lab), "up went back after a kill at {n}");
                    assert!(common::ping(&format!("{prefix}ns9"), "10.1.9.1", &[]));
                }
                _ => {}
            }
            let down = vethscope(&["down", &lab]);
            assert!(
                down.status.success(),
                "down after the change was killed at point {n}: {}",
                String::from_utf8_lossy(&down.stderr)
            );
            assert_clean(&prefix);
            decoys.assert_intact();
        }
    }
}
