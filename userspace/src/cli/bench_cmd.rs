//! Handler of `bench`.

use std::process::ExitCode;

use super::BenchArgs;

pub async fn bench(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`vethscope bench` is being written (issue 5)")
}
