//! Handler of `trace`.

use std::{process::ExitCode, time::Duration};

use super::TraceArgs;
use crate::{
    privileges::{self, Cap},
    probe::TargetFilter,
    trace::{self, TraceOptions},
};

pub async fn trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    privileges::require("trace", &[Cap::Bpf, Cap::NetAdmin, Cap::SysAdmin])?;
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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    trace::run(&opts, &mut out).await?;
    Ok(ExitCode::SUCCESS)
}

/// A number of seconds from the command line, or one clear error (never a panic).
fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        anyhow::anyhow!("{flag} {value}: give a number of seconds from 0 to about 10^19")
    })
}
