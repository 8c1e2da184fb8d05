//! After 20 s (when the other tests' events are over), writes 4 MiB of log lines quickly,
//! then idles: init's log files must stay capped.
fn main() {
    use std::io::Write;
    std::thread::sleep(std::time::Duration::from_secs(20));
    let mut out = std::io::stdout().lock();
    for i in 0..40_000u32 {
        let _ = writeln!(out, "logger: line {i:08} {}", "x".repeat(80));
    }
    let _ = out.flush();
    drop(out);
    eprintln!("logger: done");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
