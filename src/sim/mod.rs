//! A deterministic, seeded simulation of MySQL sites on a fake clock that drives the real
//! decision core and checks safety invariants on every step.
