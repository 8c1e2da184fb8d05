//! A steady talker: 60 lines of about 110 bytes every second, forever, so its log reaches
//! init's cap (256 KiB) within 40 s and keeps rotating.
use std::io::Write;

fn main() {
    let mut n: u64 = 0;
    loop {
        let mut out = std::io::stdout().lock();
        for _ in 0..60 {
            let _ = writeln!(out, "chatty: line {n:010} {}", "y".repeat(90));
            n += 1;
        }
        let _ = out.flush();
        drop(out);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
