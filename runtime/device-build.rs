// Build script shared by the device programs (init, link, admind): link flags that shrink a
// static binary that aborts on panic and never unwinds.
// - no .eh_frame_hdr: the unwinder's lookup table is dead weight (14 KB in admind);
// - no separate-code: GNU ld otherwise pads code and read-only data to their own pages
//   (about 4 KB per program: the difference between init fitting its budget or not);
// - packed relative relocations (RELR, which musl's static-PIE start-up applies since
//   1.2.4): admind's 23 KB of vtable relocations shrink to a few hundred bytes.
fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("musl") {
        return;
    }
    let bin = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    // Through a C compiler driver the flags are passed on with -Wl; rust-lld takes them as
    // they are (and does not separate code by default).
    let direct = std::env::var("RUSTC_LINKER").is_ok_and(|l| l.ends_with("rust-lld"));
    let flags: &[&str] = if direct {
        &["--no-eh-frame-hdr", "-zpack-relative-relocs"]
    } else {
        &[
            "-Wl,--no-eh-frame-hdr",
            "-Wl,-z,noseparate-code",
            "-Wl,-z,pack-relative-relocs",
        ]
    };
    for flag in flags {
        println!("cargo:rustc-link-arg-bin={bin}={flag}");
    }
}
