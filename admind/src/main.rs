//! `admind`: see the library's documentation. Options (defaults are the device's paths):
//!
//! ```text
//! --listen ADDR          [::]:8443 (0.0.0.0:8443 if IPv6 is off)
//! --cert PEM --key PEM   the device's own pair in /data/admind, made on first boot (identity.rs)
//! --password-file PATH   /etc/admind/password.hash
//! --disk PATH            the disk init reported in its boot status
//! --boot-status PATH     /run/rustkrazy/boot-status
//! --data DIR --logs DIR --proc DIR   /data, /tmp, /proc
//! --init-pid PID         1 (who gets SIGUSR1 to reboot, SIGUSR2 to power off)
//! --slot-keys PATH       /etc/rustkrazy/slot-keys (the keys that seal slots; boot::seal)
//! ```
use admind::api::Api;
use admind::device::{Device, Paths};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

fn main() {
    if let Err(e) = run() {
        eprintln!("admind: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut paths = Paths::default();
    let mut listen: Option<String> = None;
    let mut cert: Option<PathBuf> = None;
    let mut key: Option<PathBuf> = None;
    let mut password_file = PathBuf::from(boot::password::PATH);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?),
            "--cert" => cert = Some(value()?.into()),
            "--key" => key = Some(value()?.into()),
            "--password-file" => password_file = value()?.into(),
            "--disk" => paths.disk = Some(value()?.into()),
            "--boot-status" => paths.boot_status = value()?.into(),
            "--clock-status" => paths.clock = value()?.into(),
            "--data" => paths.data = value()?.into(),
            "--logs" => paths.logs = value()?.into(),
            "--proc" => paths.proc = value()?.into(),
            "--slot-keys" => paths.trust = value()?.into(),
            "--init-pid" => {
                paths.init_pid = value()?.parse().map_err(|_| "--init-pid takes a number")?
            }
            _ => {
                return Err(format!(
                    "unknown option {flag} (see the top of admind/src/main.rs)"
                ))
            }
        }
    }
    let read =
        |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let served = match (cert, key) {
        (Some(c), Some(k)) => admind::identity::Served {
            config: admin_api::tls::server_config(&read(&c)?, &read(&k)?)
                .map_err(|e| format!("{} / {}: {e}", c.display(), k.display()))?,
            note: format!("certificate {}", c.display()),
        },
        (None, None) => {
            let hostname = std::fs::read_to_string(paths.proc.join("sys/kernel/hostname"))
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            let name = if hostname.is_empty() {
                "rustkrazy"
            } else {
                &hostname
            };
            admind::identity::load_or_make(&paths.data.join(admind::identity::DIR), name)?
        }
        _ => return Err("give both --cert and --key, or neither".into()),
    };
    let password = String::from_utf8_lossy(&read(&password_file)?).into_owned();
    let device = Device::new(paths);
    // A commit cut short (power lost between the record and config.txt) left the Pi's
    // firmware naming the old slot: name the committed one again.
    if let Ok(Some(slot)) = device.repair_pi_settings() {
        println!("admind: config.txt did not name committed root {slot}; it does now");
    }
    let mut api =
        Api::new(device, &password).map_err(|e| format!("{}: {e}", password_file.display()))?;
    // Addresses are parsed, never resolved: no DNS resolver in the binary.
    let listener = match &listen {
        Some(addr) => {
            let parsed: std::net::SocketAddr = addr
                .parse()
                .map_err(|_| format!("--listen {addr}: expected IP:PORT"))?;
            TcpListener::bind(parsed).map_err(|e| format!("cannot listen on {addr}: {e}"))?
        }
        None => {
            let any6 =
                std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, admin_api::PORT));
            let any4 =
                std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, admin_api::PORT));
            TcpListener::bind(any6)
                .or_else(|_| TcpListener::bind(any4))
                .map_err(|e| format!("cannot listen on port {}: {e}", admin_api::PORT))?
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("admind: {}", served.note);
    println!("admind: listening on {addr} (TLS 1.3)");
    admind::server::serve(listener, Arc::new(served.config), &mut api);
    Ok(())
}
