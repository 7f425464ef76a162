//! `vethscope bench` against the real kernel: short runs (1 s per iperf3 run, one
//! round) that check the table, the JSON document and the SVG chart are complete for
//! every wiring asked for, and that nothing is left behind — also after Ctrl-C.
//! No timing is asserted.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn out_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Checks the document against docs/bench-json-schema.json (generated from the types).
fn assert_schema(doc: &Value) {
    assert_valid(
        &published_schema("bench-json-schema.json"),
        "bench --json",
        doc,
    );
}

fn median(v: &Value, key: &str) -> Option<f64> {
    v[key]["median"].as_f64()
}

/// Every wiring asked for must work and have every headline number: a failed wiring
/// is a failed test, never a pass.
fn check_result(r: &Value) {
    let name = r["wiring"].as_str().unwrap_or("?");
    let status = r["status"].as_str().unwrap_or("?");
    assert!(
        ["ok", "partial", "failed"].contains(&status),
        "{name}: status {status}"
    );
    assert_eq!(
        r["samples"].as_array().map(Vec::len),
        Some(1),
        "{name}: one round"
    );
    assert_eq!(status, "ok", "{name} did not work: {}", r["error"]);
    for key in [
        "tcp_1_gbps",
        "tcp_n_gbps",
        "cpu_percent_1",
        "cpu_percent_per_gbps_1",
    ] {
        let m = median(r, key).unwrap_or_else(|| panic!("{name}: {key} missing: {r}"));
        assert!(m > 0.0, "{name}: {key} = {m}");
    }
    for (key, pct) in [
        ("rtt_udp_us", "p50_us"),
        ("rtt_udp_us", "p99_us"),
        ("rtt_tcp_us", "p50_us"),
    ] {
        let m = r[key][pct]["median"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {key}.{pct} missing: {r}"));
        assert!(m > 0.0, "{name}: {key}.{pct} = {m}");
    }
    let s = &r["samples"][0];
    assert!(s["error"].is_null(), "{name}: {}", s["error"]);
    assert!(s["tcp_1"]["gbps"].as_f64().is_some(), "{name}: raw sample");
    assert!(s["rtt_udp"]["round_trips"].as_u64().is_some_and(|n| n > 0));
}

fn check_svg(svg: &str, wirings: &[&str]) {
    assert!(
        svg.starts_with("<svg"),
        "SVG starts with <svg: {}",
        &svg[..svg.len().min(80)]
    );
    assert!(svg.trim_end().ends_with("</svg>"), "SVG ends with </svg>");
    assert_eq!(svg.matches("<svg").count(), 1);
    assert_eq!(
        svg.matches(r#"<g class="wiring""#).count(),
        wirings.len(),
        "one bar group per wiring"
    );
    for w in wirings {
        assert!(
            svg.contains(&format!(r#"data-wiring="{w}""#)),
            "group for {w}"
        );
    }
    // XML-ish well-formedness: every opened element of these kinds is closed.
    for tag in ["g", "text", "title"] {
        let opened =
            svg.matches(&format!("<{tag} ")).count() + svg.matches(&format!("<{tag}>")).count();
        assert_eq!(
            opened,
            svg.matches(&format!("</{tag}>")).count(),
            "<{tag}> balanced"
        );
    }
    assert!(
        !svg.contains("NaN") && !svg.contains("inf"),
        "finite coordinates"
    );
}

#[test]
fn bench_writes_table_json_and_svg_for_every_wiring() {
    let prefix = prefix("bn");
    let json_path = out_file("bench-bn.json");
    let svg_path = out_file("bench-bn.svg");
    let _ = std::fs::remove_file(&json_path);
    let _ = std::fs::remove_file(&svg_path);
    let wirings = ["direct", "bridge", "fast-path"];
    let stdout = ok(&[
        "bench",
        "--wirings",
        &wirings.join(","),
        "--duration",
        "1",
        "--rounds",
        "1",
        "--streams",
        "2",
        "--prefix",
        &prefix,
        "--json",
        json_path.to_str().unwrap_or_default(),
        "--svg",
        svg_path.to_str().unwrap_or_default(),
    ]);
    assert_clean(&prefix);

    for w in wirings {
        assert!(
            stdout.lines().any(|l| l.starts_with(w)),
            "table row for {w}:\n{stdout}"
        );
    }
    assert!(stdout.contains("Gbit/s 2 streams"), "{stdout}");

    let text = std::fs::read_to_string(&json_path).expect("JSON written");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(doc["schema"], "vethscope-bench/1");
    assert_schema(&doc);
    let cfg = &doc["config"];
    assert_eq!(cfg["rounds"], 1);
    assert_eq!(cfg["streams"], 2);
    assert_eq!(cfg["prefix"], prefix.as_str());
    assert_eq!(cfg["order"], "interleaved");
    assert!(cfg["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(cfg["cpus"].as_u64().is_some_and(|n| n >= 1));
    assert!(doc["overhead"].is_null());
    let results = doc["results"].as_array().expect("results array");
    let names: Vec<&str> = results
        .iter()
        .filter_map(|r| r["wiring"].as_str())
        .collect();
    assert_eq!(names, wirings, "one result per wiring, in order");
    for r in results {
        check_result(r);
    }
    assert_eq!(results[0]["ratio_to_direct"]["tcp_1"].as_f64(), Some(1.0));
    assert!(
        results[1]["ratio_to_direct"]["tcp_1"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );
    assert!(
        !stdout.contains("failed:"),
        "no wiring failed in the table:\n{stdout}"
    );

    let svg = std::fs::read_to_string(&svg_path).expect("SVG written");
    check_svg(&svg, &wirings);
}

#[test]
fn bench_overhead_compares_bare_trace_and_count() {
    let prefix = prefix("bo");
    let json_path = out_file("bench-bo.json");
    let _ = std::fs::remove_file(&json_path);
    let stdout = ok(&[
        "bench",
        "--wirings",
        "direct",
        "--duration",
        "1",
        "--rounds",
        "1",
        "--overhead",
        "--prefix",
        &prefix,
        "--json",
        json_path.to_str().unwrap_or_default(),
    ]);
    assert_clean(&prefix);
    assert!(stdout.contains("Overhead on the bridge wiring"), "{stdout}");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    assert_schema(&doc);
    let o = &doc["overhead"];
    assert_eq!(o["wiring"], "bridge");
    let variants = o["variants"].as_array().expect("variants");
    let names: Vec<&str> = variants
        .iter()
        .filter_map(|v| v["variant"].as_str())
        .collect();
    assert_eq!(names, ["bare", "trace", "count"]);
    for v in &variants[..2] {
        assert_eq!(v["status"], "ok", "{v}");
        assert!(median(v, "tcp_1_gbps").is_some_and(|g| g > 0.0), "{v}");
        assert!(
            v["rtt_udp_us"]["p50_us"]["median"].as_f64().is_some(),
            "{v}"
        );
        assert!(v["ratio_to_bare"]["tcp_1"].as_f64().is_some(), "{v}");
    }
    assert_eq!(variants[0]["ratio_to_bare"]["tcp_1"].as_f64(), Some(1.0));
    // Counting runs `vethscope serve`, which this build has: it must be measured.
    let count = &variants[2];
    assert_eq!(count["status"], "ok", "{count}");
    assert!(count["skipped"].is_null(), "counting was skipped: {count}");
    assert!(
        median(count, "tcp_1_gbps").is_some_and(|g| g > 0.0),
        "{count}"
    );
}

#[test]
fn bench_interrupted_removes_its_lab() {
    let prefix = prefix("bi");
    let mut child = Command::new(bin())
        .args([
            "bench",
            "--wirings",
            "bridge",
            "--duration",
            "5",
            "--rounds",
            "1",
            "--prefix",
            &prefix,
        ])
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Once the lab is up and measuring, interrupt it as Ctrl-C would.
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("measuring") => break,
            Some(Ok(_)) => {}
            _ => {
                let _ = child.kill();
                panic!("bench ended before measuring");
            }
        }
        assert!(Instant::now() < deadline, "bench did not start measuring");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: sending a signal to our own child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "exit code after Ctrl-C: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert_clean(&prefix);
}

#[test]
fn bench_refuses_bad_settings_before_touching_anything() {
    let out = vethscope(&["bench", "--wirings", "direct,nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown wiring 'nope'"), "{err}");
    assert!(err.contains("fast-path"), "lists the known wirings: {err}");
    let out = vethscope(&["bench", "--duration", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration"));
    let out = vethscope(&["bench", "--prefix", "toolong-"]);
    assert!(!out.status.success());
}
