//! `link` against a DHCP server nobody here wrote: dnsmasq in one network namespace, link in
//! another, a veth pair between them. Needs root, `ip` and dnsmasq (ci/install-deps).

// A test crate: its helpers, not only its #[test]s, unwrap (clippy.toml covers the latter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Two namespaces joined by a veth pair; everything is removed on drop.
struct Net {
    server: String,
    client: String,
    dir: PathBuf,
    children: Vec<Child>,
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?} ({e}); ci/install-deps installs it"));
    assert!(
        out.status.success(),
        "{args:?} failed (root is needed for network namespaces): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Net {
    /// Server side `vs` at 192.168.77.1/24; client side `vc`, unconfigured.
    fn new(tag: &str) -> Net {
        let id = std::process::id();
        let net = Net {
            server: format!("rk-{tag}-s-{id}"),
            client: format!("rk-{tag}-c-{id}"),
            dir: std::env::temp_dir().join(format!("link-test-{tag}-{id}")),
            children: Vec::new(),
        };
        let _ = fs::remove_dir_all(&net.dir);
        fs::create_dir_all(&net.dir).unwrap();
        run(&["ip", "netns", "add", &net.server]);
        run(&["ip", "netns", "add", &net.client]);
        // Create the pair inside the server namespace so host names never clash.
        run(&[
            "ip",
            "-n",
            &net.server,
            "link",
            "add",
            "vs",
            "type",
            "veth",
            "peer",
            "name",
            "vc",
            "netns",
            &net.client,
        ]);
        run(&[
            "ip",
            "-n",
            &net.server,
            "addr",
            "add",
            "192.168.77.1/24",
            "dev",
            "vs",
        ]);
        run(&["ip", "-n", &net.server, "link", "set", "vs", "up"]);
        net
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// dnsmasq without DNS, handing out two DNS servers that do not exist.
    fn dnsmasq(&mut self) {
        self.dnsmasq_with(&[
            "--port=0",
            "--dhcp-option=option:dns-server,192.168.77.53,192.168.77.54",
        ]);
    }

    fn dnsmasq_with(&mut self, extra: &[&str]) {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server,
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
            ])
            .args(extra)
            .args([
                "--interface=vs",
                "--bind-interfaces",
                "--no-ping",
                "--log-dhcp",
            ])
            .arg("--dhcp-range=192.168.77.50,192.168.77.60,255.255.255.0,2m")
            .arg("--dhcp-option=option:router,192.168.77.1")
            .arg(format!(
                "--dhcp-leasefile={}",
                self.path("leases").display()
            ))
            .arg(format!("--pid-file={}", self.path("dnsmasq.pid").display()))
            .arg(format!(
                "--log-facility={}",
                self.path("dnsmasq.log").display()
            ))
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian: dnsmasq-base; ci/install-deps installs it)");
        self.children.push(child);
    }

    /// Starts link in the client namespace; its output goes to `link.out`.
    fn link(&mut self, config: Option<&str>) {
        let config_path = self.path("network");
        match config {
            Some(text) => fs::write(&config_path, text).unwrap(),
            None => {
                let _ = fs::remove_file(&config_path);
            }
        }
        let out = fs::File::create(self.path("link.out")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.client, env!("CARGO_BIN_EXE_link")])
            .arg("--config")
            .arg(&config_path)
            .arg("--resolv-conf")
            .arg(self.path("resolv.conf"))
            .arg("--clock-status")
            .arg(self.path("clock"))
            // Tests run on a host whose clock is not ours to set.
            .args(["--time", "observe"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(self.path("link.out")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits until link's output holds `count` lines containing `needle`; returns the last.
    fn wait_line(&self, needle: &str, count: usize, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let out = self.output();
            let hits: Vec<&str> = out.lines().filter(|l| l.contains(needle)).collect();
            if hits.len() >= count {
                return hits[count - 1].to_string();
            }
            assert!(
                start.elapsed() < timeout,
                "no {count}x {needle:?} from link within {timeout:?}; it said:\n{out}\ndnsmasq said:\n{}",
                fs::read_to_string(self.path("dnsmasq.log")).unwrap_or_default()
            );
            sleep(Duration::from_millis(100));
        }
    }

    fn client_ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "-n", &self.client];
        all.extend_from_slice(args);
        run(&all)
    }

    fn link_pid(&self) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.client])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .map(str::to_string)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(pid) = fs::read_to_string(self.path("dnsmasq.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.server])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.client])
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The address dnsmasq wrote into its lease file for the client.
fn leased_address(leases: &Path) -> String {
    let text = fs::read_to_string(leases).unwrap_or_default();
    let line = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no lease in {leases:?}"));
    line.split_whitespace().nth(2).unwrap().to_string()
}

/// Sends `count` datagrams of junk (random bytes, and BOOTREPLY-shaped packets with broken
/// options) to the broadcast address, port 68, from the server side.
fn flood_garbage(net: &Net, count: usize) {
    let script = format!(
        r#"
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"vs")
for i in range({count}):
    n = i % 600
    junk = os.urandom(n)
    if i % 3 == 0 and n > 240:
        junk = bytes([2, 1, 6, 0]) + junk[4:236] + bytes([99, 130, 83, 99]) + junk[240:]
    s.sendto(junk, ("255.255.255.255", 68))
"#
    );
    run(&["ip", "netns", "exec", &net.server, "python3", "-c", &script]);
}

#[test]
fn dhcp_lease_renewal_garbage_and_carrier_loss_against_dnsmasq() {
    let mut net = Net::new("dhcp");
    net.dnsmasq();
    sleep(Duration::from_millis(300));
    net.link(None);

    // The lease as dnsmasq assigned it: address, route and DNS servers.
    let bound = net.wait_line(": lease 192.168.77.", 1, Duration::from_secs(20));
    let address = leased_address(&net.path("leases"));
    assert!(
        bound.contains(&format!(
            "vc: lease {address}/24 via 192.168.77.1 dns 192.168.77.53,192.168.77.54"
        )),
        "{bound}"
    );
    let addr = net.client_ip(&["-4", "addr", "show", "dev", "vc"]);
    assert!(
        addr.contains(&format!("inet {address}/24 brd 192.168.77.255")),
        "{addr}"
    );
    assert!(
        addr.contains("valid_lft 1") && !addr.contains("forever"),
        "the lease is the address's lifetime: {addr}"
    );
    let route = net.client_ip(&["-4", "route", "show", "default"]);
    assert!(
        route.contains("default via 192.168.77.1 dev vc proto dhcp"),
        "{route}"
    );
    let resolv = fs::read_to_string(net.path("resolv.conf")).unwrap();
    assert!(
        resolv.contains("nameserver 192.168.77.53\nnameserver 192.168.77.54\n"),
        "{resolv}"
    );
    let lo = net.client_ip(&["addr", "show", "dev", "lo"]);
    assert!(
        lo.contains("inet 127.0.0.1/8") && lo.contains("inet6 ::1/128") && lo.contains("UP"),
        "{lo}"
    );
    let pid = net.link_pid().expect("link runs");
    let rss = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = rss
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("VmRSS: ?")
        .to_string();
    println!("figure: link {rss} (host build, bound)");

    // Garbage on the wire changes nothing.
    flood_garbage(&net, 3000);

    // dnsmasq's 2-minute lease has T1 at 60 s: link renews by unicast to the server.
    let renewed = net.wait_line("renewed for 120 s", 1, Duration::from_secs(80));
    assert!(
        renewed.contains(&format!("vc: lease {address}/24 renewed")),
        "{renewed}"
    );
    let log = fs::read_to_string(net.path("dnsmasq.log")).unwrap();
    assert!(
        log.matches(&format!("DHCPACK(vs) {address}")).count() >= 2,
        "{log}"
    );
    assert_eq!(
        net.link_pid().as_deref(),
        Some(pid.as_str()),
        "link still runs after the garbage"
    );

    // Carrier loss drops the lease; carrier back brings a new one.
    run(&["ip", "-n", &net.server, "link", "set", "vs", "down"]);
    let lost = net.wait_line("lost (carrier lost)", 1, Duration::from_secs(10));
    assert!(lost.contains(&address), "{lost}");
    let addr = net.client_ip(&["-4", "addr", "show", "dev", "vc"]);
    assert!(!addr.contains("inet "), "address removed: {addr}");
    let resolv = fs::read_to_string(net.path("resolv.conf")).unwrap();
    assert!(!resolv.contains("nameserver"), "{resolv}");
    run(&["ip", "-n", &net.server, "link", "set", "vs", "up"]);
    // Only a new lease's line says "bound after" (renewals and losses also say "lease").
    net.wait_line(", bound after ", 2, Duration::from_secs(20));
    assert!(net
        .client_ip(&["-4", "route", "show", "default"])
        .contains("via 192.168.77.1"));
}

#[test]
fn static_settings_instead_of_dhcp() {
    let mut net = Net::new("static");
    net.link(Some(
        "# test\ninterface vc\naddress 10.9.8.7/24\ngateway 10.9.8.1\ndns 10.9.8.53\n",
    ));
    let line = net.wait_line("vc: static", 1, Duration::from_secs(10));
    assert!(
        line.contains("static 10.9.8.7/24 via 10.9.8.1 dns 10.9.8.53"),
        "{line}"
    );
    let addr = net.client_ip(&["-4", "addr", "show", "dev", "vc"]);
    assert!(
        addr.contains("inet 10.9.8.7/24") && addr.contains("valid_lft forever"),
        "{addr}"
    );
    let route = net.client_ip(&["-4", "route", "show", "default"]);
    assert!(
        route.contains("default via 10.9.8.1 dev vc proto static"),
        "{route}"
    );
    let resolv = fs::read_to_string(net.path("resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 10.9.8.53\n"), "{resolv}");
    assert!(
        !net.output().contains("DHCP"),
        "no DHCP with static settings: {}",
        net.output()
    );
}

#[test]
fn a_broken_settings_file_is_reported_and_dhcp_keeps_the_device_reachable() {
    let mut net = Net::new("broken");
    net.dnsmasq();
    sleep(Duration::from_millis(300));
    net.link(Some("interface vc\naddress 10.9.8.7\n"));
    let complaint = net.wait_line("line 2", 1, Duration::from_secs(10));
    assert!(
        complaint.contains("a.b.c.d/prefix") && complaint.contains("using DHCP"),
        "{complaint}"
    );
    net.wait_line(": lease 192.168.77.", 1, Duration::from_secs(20));
}

/// chronyd serving time in the server namespace without touching the host's clock (`-x`),
/// as a local stratum 3 clock; logs to `chrony.log`.
fn chrony(net: &mut Net) {
    let conf = net.path("chrony.conf");
    fs::write(
        &conf,
        format!(
            "local stratum 3\nallow all\ncmdport 0\npidfile {}\ndriftfile {}\n",
            net.path("chronyd.pid").display(),
            net.path("chrony.drift").display()
        ),
    )
    .unwrap();
    let log = fs::File::create(net.path("chrony.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &net.server, "chronyd", "-x", "-d", "-f"])
        .arg(&conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("chronyd (Debian: chrony; ci/install-deps installs it)");
    net.children.push(child);
}

/// The clock status link published, once it says synchronised.
fn wait_synchronised(net: &Net, timeout: Duration) -> boot::clock::Sync {
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(net.path("clock")).unwrap_or_default();
        if let Some(boot::clock::Status::Synchronised(s)) = boot::clock::parse_status(&text) {
            return s;
        }
        assert!(
            start.elapsed() < timeout,
            "not synchronised within {timeout:?} (status {text:?}); link said:\n{}\nchrony said:\n{}",
            net.output(),
            fs::read_to_string(net.path("chrony.log")).unwrap_or_default()
        );
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn time_from_chrony_by_name_through_dns_and_by_dhcp_option_42() {
    let mut net = Net::new("time");
    // Two server addresses, so the status says which way link found the server.
    run(&[
        "ip",
        "-n",
        &net.server,
        "addr",
        "add",
        "192.168.77.2/24",
        "dev",
        "vs",
    ]);
    net.dnsmasq_with(&[
        "--port=53",
        "--no-resolv",
        "--no-hosts",
        "--address=/time.test/192.168.77.1",
        "--dhcp-option=option:dns-server,192.168.77.1",
        "--dhcp-option=option:ntp-server,192.168.77.2",
    ]);
    chrony(&mut net);
    sleep(Duration::from_millis(500));

    // 1. A name from the settings, looked up with dnsmasq's DNS.
    net.link(Some("ntp time.test\n"));
    let started = Instant::now();
    let sync = wait_synchronised(&net, Duration::from_secs(30));
    println!(
        "figure: SNTP by name, start of link to synchronised: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(sync.server, [192, 168, 77, 1], "{sync:?}");
    assert_eq!(sync.stratum, 3, "chrony serves as its `local stratum 3`");
    assert!(
        sync.offset_ms.abs() < 1_000,
        "same host, same clock: {sync:?}"
    );
    for child in net.children.drain(2..) {
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = fs::remove_file(net.path("clock"));

    // 2. No settings: the server DHCP named (option 42).
    net.link(None);
    let sync = wait_synchronised(&net, Duration::from_secs(30));
    assert_eq!(sync.server, [192, 168, 77, 2], "{sync:?}");
}
