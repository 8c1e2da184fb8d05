//! The start-up glue every `no_std`, `no_main` device program needs.

/// Links musl's C library, whose start-up code calls the program's `extern "C" fn main`
/// (the libc crate links it only for std), and defines the personality routine the
/// precompiled core library names in unoptimised builds although nothing unwinds
/// (panic=abort). Each program still writes its own `#[panic_handler]`: what a panic means
/// differs (init reboots, link exits to be restarted).
#[macro_export]
macro_rules! device_program {
    () => {
        #[cfg_attr(
            target_env = "musl",
            link(name = "c", kind = "static", modifiers = "-bundle")
        )]
        #[cfg_attr(not(target_env = "musl"), link(name = "c"))]
        extern "C" {}

        #[no_mangle]
        pub extern "C" fn rust_eh_personality() {}
    };
}
