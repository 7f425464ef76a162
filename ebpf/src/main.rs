//! vethscope's eBPF programs. Built for `bpfel-unknown-none` by `userspace/build.rs`
//! (aya-build) and embedded in the `vethscope` binary.
//!
//! Every entry point is a thin wrapper over a `try_*` function in its module; all packet
//! reads go through [`packet`], which bounds-checks against `data_end`.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

/// Fails the build when a `#[map]` static or a program function is not named as its
/// constant in `vethscope_common::names` (userspace finds them by those constants).
#[cfg(target_arch = "bpf")]
macro_rules! named {
    ($item:ident, $name:expr) => {
        const _: () = assert!(
            vethscope_common::names::same(stringify!($item), $name),
            concat!(
                stringify!($item),
                " is not named as its constant in vethscope_common::names"
            )
        );
    };
}

#[cfg(target_arch = "bpf")]
mod count;
#[cfg(target_arch = "bpf")]
mod drops;
#[cfg(target_arch = "bpf")]
mod dropwatch;
#[cfg(target_arch = "bpf")]
mod fastpath;
#[cfg(target_arch = "bpf")]
mod impair;
#[cfg(target_arch = "bpf")]
mod kernel;
#[cfg(target_arch = "bpf")]
mod packet;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod trace;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program with a reachable panic, so this is never called.
    loop {}
}

/// On the host this crate is an empty binary, so `cargo build --workspace` and
/// `cargo clippy --workspace` work; the programs only exist for the BPF target.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
