//! Guard that brings a scenario's lab down however the demo leaves it.

use std::path::Path;

use anyhow::Result;

use super::{Scenario, vethscope};
use crate::util;

pub struct Lab<'a> {
    vethscope: &'a Path,
    scenario: Scenario,
    down: bool,
}

impl<'a> Lab<'a> {
    pub fn new(vethscope: &'a Path, scenario: Scenario) -> Self {
        Lab {
            vethscope,
            scenario,
            down: false,
        }
    }

    /// Brings the lab down, reporting failure (the normal path).
    pub fn down(mut self) -> Result<()> {
        self.down = true;
        self.run_down()
    }

    fn run_down(&self) -> Result<()> {
        util::run(&mut vethscope(
            self.vethscope,
            &["down", self.scenario.name()],
        ))
    }
}

impl Drop for Lab<'_> {
    /// After a failed step: bring the lab down anyway; drop cannot fail, so only report.
    fn drop(&mut self) {
        if self.down {
            return;
        }
        println!(
            "demo: bringing {} down after the failure",
            self.scenario.name()
        );
        if let Err(err) = self.run_down() {
            eprintln!(
                "demo: could not bring {} down: {err:#}",
                self.scenario.name()
            );
        }
    }
}
