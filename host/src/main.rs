//! The `switchyard` binary; everything lives in the library.

/// mimalloc: the request path allocates many small short-lived buffers (JSON, canonical
/// records, hyper frames); glibc malloc showed ~8% of gateway CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
