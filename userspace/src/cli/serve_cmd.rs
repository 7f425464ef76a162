//! Handler of `serve`.

use std::{process::ExitCode, time::Duration};

use super::ServeArgs;
use crate::{
    metrics::{self, Scope, ServeOptions},
    privileges::{self, Cap},
};

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    privileges::require("serve", &[Cap::Bpf, Cap::NetAdmin, Cap::SysAdmin])?;
    if args.labs.is_empty() && !args.all {
        anyhow::bail!(
            "name the labs to watch (e.g. `vethscope serve bridge`) or pass --all for every veth of this host"
        );
    }
    let refresh = match Duration::try_from_secs_f64(args.refresh) {
        Ok(d) if !d.is_zero() => d,
        _ => anyhow::bail!(
            "--refresh must be a positive number of seconds (got {})",
            args.refresh
        ),
    };
    let opts = ServeOptions {
        scope: if args.all {
            Scope::All
        } else {
            Scope::Labs(args.labs)
        },
        listen: args.listen,
        refresh,
    };
    metrics::serve(&opts).await?;
    Ok(ExitCode::SUCCESS)
}
