//! Running a program on a crafted frame with BPF_PROG_TEST_RUN: the parser tests and the
//! per-packet cost benchmark use this, against the real programs in the real kernel.

use std::time::Duration;

use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun, TestRunOptions},
};
use vethscope_common::{PacketEvent, names::map};

use super::{Probe, ProbeError};

impl Probe {
    /// Runs classifier `name` `repeat` times on `frame`; returns the kernel's mean
    /// time per run and the program's return value.
    pub fn test_run(
        &mut self,
        name: &'static str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(Duration, i32), ProbeError> {
        self.load_program(name)?;
        let prog = self.classifier(name)?;
        let res = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat: repeat.max(1),
                ..Default::default()
            })
            .map_err(|source| ProbeError::TestRun {
                program: name,
                source: Box::new(source),
            })?;
        Ok((res.duration, res.return_value as i32))
    }

    /// Takes every event waiting in the trace ring buffer.
    pub fn drain_trace_events(&mut self) -> Result<Vec<PacketEvent>, ProbeError> {
        let mut ring: RingBuf<&mut MapData> = self.map_mut(map::TRACE_EVENTS)?;
        let mut out = Vec::new();
        while let Some(item) = ring.next() {
            if let Some(ev) = crate::trace::event::parse_event(&item) {
                out.push(ev);
            }
        }
        Ok(out)
    }
}
