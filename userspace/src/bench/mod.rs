//! `vethscope bench`: throughput, latency and CPU of each wiring, side by side.
