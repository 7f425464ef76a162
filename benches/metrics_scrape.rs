//! Benchmark: /metrics scrape with 1,000 links (latency, size, RSS).

fn main() {}
