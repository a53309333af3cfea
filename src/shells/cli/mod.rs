//! The `bloodraven` command line.

use std::process::ExitCode;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    for (name, crd) in crate::api::crd::all() {
        match crate::api::crd::to_yaml(&crd) {
            Ok(y) => println!("### {name}\n{y}"),
            Err(e) => eprintln!("{e}"),
        }
    }
    ExitCode::SUCCESS
}
