//! Progress for long work (many namespaces): one line rewritten in place on a terminal,
//! nothing when stderr is piped or redirected.

use std::io::{IsTerminal, Write};

pub struct Progress {
    total: usize,
    done: usize,
    enabled: bool,
}

impl Progress {
    pub fn new(total: usize, wanted: bool) -> Self {
        Self {
            total,
            done: 0,
            // Small labs finish before a progress line would be readable.
            enabled: wanted && total >= 8 && std::io::stderr().is_terminal(),
        }
    }

    pub fn step(&mut self, what: &str) {
        self.done += 1;
        if self.enabled {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K[{}/{}] {what}", self.done, self.total);
            let _ = err.flush();
        }
    }

    pub fn finish(&mut self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.enabled = false;
        }
    }
}
