//! Prometheus exporter of per-link counters (`vethscope serve`).
