//! `signaller SIGNAL SECONDS`: writes a file to /data, waits, then sends SIGUSR1 or SIGUSR2
//! to init (reboot or power off).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let signal = match args.get(1).map(String::as_str) {
        Some("USR1") => libc::SIGUSR1,
        Some("USR2") => libc::SIGUSR2,
        _ => {
            eprintln!("usage: signaller USR1|USR2 SECONDS");
            std::process::exit(2);
        }
    };
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    match std::fs::write("/data/written-before-shutdown", "persisted\n") {
        Ok(()) => println!("signaller: wrote /data/written-before-shutdown"),
        Err(e) => println!("signaller: cannot write /data: {e}"),
    }
    std::thread::sleep(std::time::Duration::from_secs(seconds));
    println!("signaller: sending {} to init", args[1]);
    // SAFETY: kill(2) with a valid signal number; no memory is involved.
    unsafe { libc::kill(1, signal) };
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
