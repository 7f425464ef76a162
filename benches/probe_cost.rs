//! Benchmark: per-packet cost of the attached programs (BPF_PROG_TEST_RUN).

fn main() {}
