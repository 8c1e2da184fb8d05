//! A network of the test's own for a VM: a network namespace holding a tap device at
//! 10.77.0.1/24, dnsmasq (DHCP with 2-minute leases, the shortest it grants, so renewals
//! happen within minutes; DNS; the NTP server option) and chronyd serving time from the
//! host's clock without setting it. Commands run inside with [`Lab::command`]. Everything
//! is torn down on drop. Needs root, `ip`, `dnsmasq` and `chronyd` (ci/install-deps).

use crate::LabLink;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The host side of the tap device: gateway, DNS, DHCP and time server for the VM.
pub const HOST_ADDRESS: &str = "10.77.0.1";
const TAP: &str = "tap0";

pub struct Lab {
    pub netns: String,
    dir: PathBuf,
    servers: Vec<Child>,
}

impl Lab {
    /// Creates the namespace and tap device and starts dnsmasq and chronyd.
    pub fn new(tag: &str) -> std::io::Result<Lab> {
        let id = std::process::id();
        let lab = Lab {
            netns: format!("rk-lab-{tag}-{id}"),
            dir: std::env::temp_dir().join(format!("rk-lab-{tag}-{id}")),
            servers: Vec::new(),
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir)?;
        run(Command::new("ip").args(["netns", "add", &lab.netns]))?;
        let mut lab = lab;
        for args in [
            &["link", "set", "lo", "up"][..],
            &["tuntap", "add", "dev", TAP, "mode", "tap"],
            &["addr", "add", &format!("{HOST_ADDRESS}/24"), "dev", TAP],
            &["link", "set", TAP, "up"],
        ] {
            run(Command::new("ip").args(["-n", &lab.netns]).args(args))?;
        }
        lab.start_dnsmasq()?;
        lab.start_chrony()?;
        Ok(lab)
    }

    /// How a VM plugs in (`harness::Options::lab`).
    pub fn link(&self) -> LabLink {
        LabLink {
            netns: self.netns.clone(),
            tap: TAP.into(),
        }
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn start_dnsmasq(&mut self) -> std::io::Result<()> {
        let child = self
            .command("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--no-ping",
            ])
            .arg(format!("--interface={TAP}"))
            .arg("--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,2m")
            .arg(format!("--dhcp-option=option:router,{HOST_ADDRESS}"))
            .arg(format!("--dhcp-option=option:dns-server,{HOST_ADDRESS}"))
            .arg(format!("--dhcp-option=option:ntp-server,{HOST_ADDRESS}"))
            .arg(format!(
                "--dhcp-leasefile={}",
                self.path("leases").display()
            ))
            .arg(format!(
                "--log-facility={}",
                self.path("dnsmasq.log").display()
            ))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.servers.push(child);
        Ok(())
    }

    fn start_chrony(&mut self) -> std::io::Result<()> {
        let conf = self.path("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "local stratum 3\nallow all\ncmdport 0\npidfile {}\ndriftfile {}\n",
                self.path("chronyd.pid").display(),
                self.path("chrony.drift").display()
            ),
        )?;
        let log = std::fs::File::create(self.path("chrony.log"))?;
        // -x: serve time, never set the host's clock.
        let child = self
            .command("chronyd")
            .args(["-x", "-d", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.servers.push(child);
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    )))
}
