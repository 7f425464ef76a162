//! Builds the eBPF programs (ebpf/) for bpfel-unknown-none with nightly and embeds them:
//! the object lands in OUT_DIR and `probe` (its `EBPF_OBJECT`) includes it with
//! `include_bytes_aligned!`.
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let ebpf = Package {
        name: "vethscope-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../ebpf"),
        ..Default::default()
    };
    // The common crate is part of the ABI: a change there must rebuild the programs too.
    println!(
        "cargo:rerun-if-changed={}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../common")
    );
    aya_build::build_ebpf([ebpf], Toolchain::Nightly)
}
