//! Handler of `fastpath`.

use std::process::ExitCode;

use super::FastpathAction;

pub async fn fastpath(_action: FastpathAction) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`vethscope fastpath` is being written (issue 5)")
}

pub async fn enable(_lab: &str) -> anyhow::Result<()> {
    anyhow::bail!("`vethscope fastpath` is being written (issue 5)")
}
