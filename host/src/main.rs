//! The `switchyard` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
