//! The integration test binary. One binary keeps link times down on small machines; each
//! area is a module.
mod sim_campaign;
