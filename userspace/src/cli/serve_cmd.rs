//! Handler of `serve`.

use std::process::ExitCode;

use super::ServeArgs;

pub async fn serve(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`vethscope serve` is being written (issue 4)")
}
