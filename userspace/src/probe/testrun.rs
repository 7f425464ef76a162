//! Running a program on a crafted frame with BPF_PROG_TEST_RUN: the parser tests and the
//! per-packet cost benchmark use this, against the real programs in the real kernel.

use std::time::Duration;

use aya::{
    maps::{MapData, RingBuf},
    programs::{SchedClassifier, TestRun, TestRunOptions},
};
use vethscope_common::PacketEvent;

use super::{Probe, ProbeError};

impl Probe {
    /// Runs classifier `name` `repeat` times on `frame`; returns the kernel's mean
    /// time per run and the program's return value.
    pub fn test_run(
        &mut self,
        name: &str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(Duration, i32), ProbeError> {
        self.load_program(name)?;
        let prog: &SchedClassifier = self
            .ebpf
            .program(name)
            .ok_or_else(|| ProbeError::NoProgram(name.to_string()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| ProbeError::Load(e.to_string()))?;
        let res = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat: repeat.max(1),
                ..Default::default()
            })
            .map_err(|e| ProbeError::Load(format!("test run of {name}: {e}")))?;
        Ok((res.duration, res.return_value as i32))
    }

    /// Takes every event waiting in the trace ring buffer.
    pub fn drain_trace_events(&mut self) -> Result<Vec<PacketEvent>, ProbeError> {
        let map = self
            .ebpf
            .map_mut("TRACE_EVENTS")
            .ok_or_else(|| ProbeError::Map {
                map: "TRACE_EVENTS".into(),
                message: "missing".into(),
            })?;
        let mut ring: RingBuf<&mut MapData> =
            RingBuf::try_from(map).map_err(|e| ProbeError::Map {
                map: "TRACE_EVENTS".into(),
                message: e.to_string(),
            })?;
        let mut out = Vec::new();
        while let Some(item) = ring.next() {
            if let Some(ev) = crate::trace::event::parse_event(&item) {
                out.push(ev);
            }
        }
        Ok(out)
    }
}
