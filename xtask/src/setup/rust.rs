//! rustup components: rust-src for nightly (`-Z build-std=core`), rustfmt and clippy.

use std::process::Command;

use anyhow::{Context as _, Result};

use crate::util;

#[derive(Clone, Copy)]
pub struct Component {
    /// `Some("nightly")`, or `None` for the toolchain active in the workspace.
    toolchain: Option<&'static str>,
    name: &'static str,
}

pub const NIGHTLY_RUST_SRC: Component = Component {
    toolchain: Some("nightly"),
    name: "rust-src",
};
pub const NIGHTLY_CLIPPY: Component = Component {
    toolchain: Some("nightly"),
    name: "clippy",
};
pub const RUSTFMT: Component = Component {
    toolchain: None,
    name: "rustfmt",
};
pub const CLIPPY: Component = Component {
    toolchain: None,
    name: "clippy",
};

const ALL: [Component; 4] = [NIGHTLY_RUST_SRC, NIGHTLY_CLIPPY, RUSTFMT, CLIPPY];

impl Component {
    fn label(self) -> String {
        let toolchain = self.toolchain.unwrap_or("default toolchain");
        format!("{} ({toolchain})", self.name)
    }

    /// `rustup component …` on this component's toolchain.
    fn rustup(self, args: &[&str]) -> Command {
        let mut cmd = Command::new("rustup");
        cmd.current_dir(util::repo_root())
            .arg("component")
            .args(args);
        if let Some(toolchain) = self.toolchain {
            cmd.args(["--toolchain", toolchain]);
        }
        cmd
    }

    fn is_installed(self) -> Result<bool> {
        let list = util::stdout_of(&mut self.rustup(&["list", "--installed"])).with_context(
            || match self.toolchain {
                Some(toolchain) => {
                    format!("could not list the components of {toolchain} (is it installed?)")
                }
                None => "could not list the installed rustup components".to_owned(),
            },
        )?;
        // Lines look like `rust-src` or `clippy-x86_64-unknown-linux-gnu`.
        let suffixed = format!("{}-", self.name);
        Ok(list
            .lines()
            .any(|line| line == self.name || line.starts_with(&suffixed)))
    }
}

/// Labels of the given components that are not installed.
pub fn missing_names(components: &[Component]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for &component in components {
        if !component.is_installed()? {
            missing.push(component.label());
        }
    }
    Ok(missing)
}

/// Adds the missing components, skips when all are present.
pub fn ensure() -> Result<()> {
    let mut added = 0;
    for component in ALL {
        if !component.is_installed()? {
            println!("setup: rustup component {}: adding", component.label());
            util::run(&mut component.rustup(&["add", component.name]))?;
            added += 1;
        }
    }
    if added == 0 {
        let labels: Vec<_> = ALL.iter().map(|c| c.label()).collect();
        println!("setup: rustup components: present ({})", labels.join(", "));
    }
    Ok(())
}
