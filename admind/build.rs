// admind aborts on panic and never unwinds, so the unwinder's lookup table
// (.eh_frame_hdr, 14 KB) is dead weight in its size budget.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        println!("cargo:rustc-link-arg-bin=admind=-Wl,--no-eh-frame-hdr");
    }
}
