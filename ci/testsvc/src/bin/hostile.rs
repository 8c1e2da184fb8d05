//! A compromised program, run as a default one (no settings): tries to read admind's secrets,
//! forge init's boot status, write into admind's folder and log, leave its control group,
//! kill admind, write outside its own folder, fork 10,000 children, fill /tmp and allocate
//! 1 GiB. Each attempt prints `hostile: WHAT: refused (...)` or
//! `hostile: WHAT: done ...`; the test reads them and checks the device afterwards. Its first
//! run leaves a mark in its own folder on /data; a later run (after the kernel killed it at
//! its memory limit) only says so and idles.
use std::io::Write;
use std::time::Duration;

fn report(what: &str, result: std::io::Result<String>) {
    match result {
        Ok(how) => println!("hostile: {what}: done {how}"),
        Err(e) => println!("hostile: {what}: refused ({e})"),
    }
}

fn pid_of(name: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (comm.trim_end() == name).then(|| entry.file_name().to_str()?.parse().ok())?
    })
}

/// Forks children that sleep 5 s until the kernel refuses one; how many it made.
fn fork_bomb(tries: usize) -> std::io::Result<String> {
    let mut made = 0;
    for _ in 0..tries {
        // SAFETY: the child only sleeps and exits; no locks are taken after fork.
        match unsafe { libc::fork() } {
            // SAFETY: as above.
            0 => unsafe {
                libc::sleep(5);
                libc::_exit(0)
            },
            -1 => {
                let e = std::io::Error::last_os_error();
                return Err(std::io::Error::new(e.kind(), format!("after {made} children: {e}")));
            }
            _ => made += 1,
        }
    }
    Ok(format!("{made} children"))
}

fn fill_tmp() -> std::io::Result<String> {
    let chunk = vec![0x5a_u8; 1 << 20];
    let mut written = 0u64;
    let mut file = std::fs::File::create("/tmp/hostile-fill")?;
    loop {
        if let Err(e) = file.write_all(&chunk) {
            let e2 = std::io::Error::new(e.kind(), format!("at {} MiB: {e}", written >> 20));
            return Err(e2);
        }
        written += chunk.len() as u64;
        if written >= 4 << 30 {
            return Ok(format!("{} MiB", written >> 20));
        }
    }
}

fn main() {
    let mark = "/data/hostile/first-run-done";
    if std::fs::metadata(mark).is_ok() {
        println!("hostile: running again after the first run; idle");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    report("own folder", std::fs::write(mark, "x").map(|()| "(wrote /data/hostile)".into()));
    // admind makes its key folder at its first start; wait for it (anyone may see that it
    // exists, in /data).
    for _ in 0..120 {
        if std::fs::metadata("/data/admind").is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // SAFETY: getuid has no preconditions.
    println!("hostile: running as user {}", unsafe { libc::getuid() });
    for secret in ["/data/admind/key.pem", "/etc/admind/password.hash"] {
        report(&format!("read {secret}"), std::fs::read(secret).map(|b| format!("{} bytes", b.len())));
    }
    report(
        "write /run/rustkrazy/boot-status",
        std::fs::write("/run/rustkrazy/boot-status", "committed slot=2\n").map(|()| String::new()),
    );
    for (what, path) in [
        ("write /data/planted", "/data/planted"),
        ("write into admind's folder", "/data/admind/planted"),
        ("write admind's log", "/run/log/admind.log"),
        ("leave its control group", "/sys/fs/cgroup/cgroup.procs"),
    ] {
        let write = std::fs::OpenOptions::new().write(true).create(true).open(path);
        report(what, write.and_then(|mut f| f.write_all(b"0")).map(|()| String::new()));
    }
    report("kill admind", match pid_of("admind") {
        // SAFETY: kill with a pid and a signal number.
        Some(pid) => match unsafe { libc::kill(pid, libc::SIGKILL) } {
            0 => Ok(format!("pid {pid}")),
            _ => Err(std::io::Error::last_os_error()),
        },
        None => Err(std::io::Error::other("no admind found")),
    });
    report("fork 10000 children", fork_bomb(10_000));
    // Reap them all (they exit after 5 s).
    // SAFETY: wait with a null status pointer.
    while unsafe { libc::wait(std::ptr::null_mut()) } > 0 {}
    report("fill /tmp", fill_tmp());
    println!("hostile: allocating 1 GiB");
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    for mib in 1..=1024 {
        hoard.push(vec![1u8; 1 << 20]);
        if mib % 128 == 0 {
            println!("hostile: holding {mib} MiB");
        }
    }
    println!("hostile: allocate 1 GiB: done, holding {} MiB", hoard.len());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
