// admind aborts on panic and never unwinds, so the unwinder's lookup table
// (.eh_frame_hdr, 14 KB) is dead weight in its size budget.
fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("musl") {
        return;
    }
    // Through a C compiler driver the flag is passed on with -Wl; rust-lld takes it as is.
    let direct = std::env::var("RUSTC_LINKER").is_ok_and(|l| l.ends_with("rust-lld"));
    let flag = if direct {
        "--no-eh-frame-hdr"
    } else {
        "-Wl,--no-eh-frame-hdr"
    };
    println!("cargo:rustc-link-arg-bin=admind={flag}");
}
