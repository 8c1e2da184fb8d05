//! Stands in for a third-party init (`mkimg --init bareinit`): mounts nothing and relies on
//! the kernel having mounted /dev (CONFIG_DEVTMPFS_MOUNT). Opens the console and every
//! partition of the boot disk, says what it found, then idles (PID 1 must not exit).
use std::io::{Read, Write};

fn main() {
    let mut console = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/console")
        .expect("bareinit: /dev/console must exist in the kernel-mounted /dev");
    let _ = writeln!(console, "bareinit: pid {} opened /dev/console", std::process::id());
    for n in 1..=4 {
        let path = format!("/dev/vda{n}");
        let mut sector = [0u8; 512];
        let said = match std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut sector)) {
            Ok(()) => format!("bareinit: read {path}"),
            Err(e) => format!("bareinit: cannot read {path}: {e}"),
        };
        let _ = writeln!(console, "{said}");
    }
    let _ = writeln!(console, "bareinit: done");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
