//! The narrow traits every side effect goes through. The engine never sees these; the
//! control loops call them, adapters implement them, and tests and the simulator fake them.

pub mod mysql;
