//! rustkrazy's PID 1 — placeholder until its own issue lands (mount, supervise, log, reap,
//! shut down). Until then it only announces itself, so an image boots to a recognisable line
//! instead of a kernel panic, and then sleeps: PID 1 must never exit.

fn main() {
    println!("rustkrazy init: placeholder, supervision not implemented yet");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
