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
    // Watching a lab that is not up is allowed (it is picked up when it comes up),
    // but a typo in its name would otherwise serve nothing, silently.
    for lab in &args.labs {
        if crate::wire::state::read(lab).is_none() {
            eprintln!(
                "vethscope: warning: lab {lab} is not up; its links are served once it is (labs up: {})",
                up_labs()
            );
        }
    }
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

fn up_labs() -> String {
    let labs = crate::wire::state::labs();
    if labs.is_empty() {
        "none".into()
    } else {
        labs.join(", ")
    }
}
