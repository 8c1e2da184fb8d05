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
//! --channel PATH         /etc/rustkrazy/channel (the release channel to follow; boot::channel)
//! ```
use admind::api::Api;
use admind::device::{Device, Paths};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn main() {
    if let Err(e) = run() {
        eprintln!("admind: {e}");
        std::process::exit(1);
    }
}

/// What the command line names.
struct Options {
    paths: Paths,
    listen: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    password_file: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        paths: Paths::default(),
        listen: None,
        cert: None,
        key: None,
        password_file: PathBuf::from(boot::password::PATH),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let paths = &mut o.paths;
        match flag.as_str() {
            "--listen" => o.listen = Some(value()?),
            "--cert" => o.cert = Some(value()?.into()),
            "--key" => o.key = Some(value()?.into()),
            "--password-file" => o.password_file = value()?.into(),
            "--disk" => paths.disk = Some(value()?.into()),
            "--boot-status" => paths.boot_status = value()?.into(),
            "--clock-status" => paths.clock = value()?.into(),
            "--data" => paths.data = value()?.into(),
            "--logs" => paths.logs = value()?.into(),
            "--proc" => paths.proc = value()?.into(),
            "--slot-keys" => paths.trust = value()?.into(),
            "--channel" => paths.channel = value()?.into(),
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
    Ok(o)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The TLS identity: the pair given, or the device's own (`admind::identity`).
fn identity(o: &Options) -> Result<admind::identity::Served, String> {
    match (&o.cert, &o.key) {
        (Some(c), Some(k)) => {
            let cert = read(c)?;
            Ok(admind::identity::Served {
                config: admin_api::tls::server_config(&cert, &read(k)?)
                    .map_err(|e| format!("{} / {}: {e}", c.display(), k.display()))?,
                note: format!("certificate {}", c.display()),
                pin: admind::identity::pin_of(&cert).unwrap_or_default(),
            })
        }
        (None, None) => {
            let hostname = std::fs::read_to_string(o.paths.proc.join("sys/kernel/hostname"))
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            let name = if hostname.is_empty() {
                "rustkrazy"
            } else {
                &hostname
            };
            admind::identity::load_or_make(&o.paths.data.join(admind::identity::DIR), name)
        }
        _ => Err("give both --cert and --key, or neither".into()),
    }
}

/// `--listen`'s address, or port [`admin_api::PORT`] on every IPv6 address (IPv4 only if
/// IPv6 is off). Addresses are parsed, never resolved: no DNS resolver in the binary.
fn listener(listen: Option<&str>) -> Result<TcpListener, String> {
    if let Some(addr) = listen {
        let parsed: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| format!("--listen {addr}: expected IP:PORT"))?;
        return TcpListener::bind(parsed).map_err(|e| format!("cannot listen on {addr}: {e}"));
    }
    let any6 = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, admin_api::PORT));
    let any4 = std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, admin_api::PORT));
    TcpListener::bind(any6)
        .or_else(|_| TcpListener::bind(any4))
        .map_err(|e| format!("cannot listen on port {}: {e}", admin_api::PORT))
}

fn run() -> Result<(), String> {
    let o = options()?;
    let served = identity(&o)?;
    let password = String::from_utf8_lossy(&read(&o.password_file)?).into_owned();
    let listener = listener(o.listen.as_deref())?;
    let device = Device::new(o.paths);
    // A commit cut short (power lost between the record and config.txt) left the Pi's
    // firmware naming the old slot: name the committed one again.
    if let Ok(Some(slot)) = device.repair_pi_settings() {
        println!(
            "admind: config.txt did not name committed root {}; it does now",
            slot.number()
        );
    }
    admind::api::report_boot_program_keys(device.sync_boot_program_keys());
    let mut api =
        Api::new(device, &password).map_err(|e| format!("{}: {e}", o.password_file.display()))?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("admind: {}", served.note);
    println!("admind: listening on {addr} (TLS 1.3)");
    let follower = admind::follow::Follower::start(&mut api, &served.pin).unwrap_or_else(|e| {
        println!("admind: channel: {e}");
        None
    });
    if let Some(channel) = &api.channel_url() {
        println!("admind: following {channel}");
    }
    admind::server::serve(listener, Arc::new(served.config), &mut api, follower);
    Ok(())
}
