//! The `vethscope` binary: parse arguments, set up logging, run, report errors as one
//! clear message (never a panic or a backtrace).
#![allow(clippy::print_stderr, reason = "main reports the error on stderr")]

use std::process::ExitCode;

use clap::Parser;
use vethscope::cli::{Cli, run};

fn main() -> ExitCode {
    // Like other command-line tools: a closed pipe (`| head`) ends us quietly.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A bug must still read as one sentence, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("vethscope: internal error: {info} (please report this)");
    }));
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VETHSCOPE_LOG")
                // The eBPF programs' own messages (target vethscope_ebpf::…) reach userspace
                // only with `trace --ebpf-log`; when they do, show them.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,vethscope_ebpf=trace")
                }),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs captured in files or CI stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vethscope: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // One message: the error and its causes (no message repeats its source),
            // no backtrace.
            eprintln!("vethscope: {e:#}");
            ExitCode::FAILURE
        }
    }
}
