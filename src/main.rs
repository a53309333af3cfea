use std::process::ExitCode;

fn main() -> ExitCode {
    bloodraven::shells::cli::main()
}
