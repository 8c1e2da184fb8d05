//! rustkrazy's PID 1 — placeholder until its own issue lands (mount, supervise, log, reap,
//! shut down). Until then it announces itself on the console with the hostname of the root
//! it came from, so a boot test can tell the roots apart, and then sleeps: PID 1 must never
//! exit.

fn main() {
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    println!("rustkrazy init: placeholder up on {}", hostname.trim());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
