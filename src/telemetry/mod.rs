//! Tracing set-up and Prometheus metrics with bounded labels.
