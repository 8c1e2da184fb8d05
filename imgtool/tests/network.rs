//! The booted appliance on QEMU's user-mode network: link gets 10.0.2.15 from QEMU's DHCP
//! server (on the interface the appliance file names), and a TCP service in the appliance
//! answers through a host port forward.

mod common;

use common::*;
use harness::{Options, Vm};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const GREETER_PORT: u16 = 7777;

/// Connects through the forward and reads what the greeter says; retries while the guest
/// is not listening yet (QEMU accepts on the host side, then closes).
fn greet(port: u16, deadline: Instant) -> String {
    loop {
        let attempt = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            Ok(text)
        });
        match attempt {
            Ok(text) if text.starts_with("hello from rustkrazy") => return text,
            other => assert!(
                Instant::now() < deadline,
                "no greeting through 127.0.0.1:{port}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn dhcp_from_qemu_and_a_tcp_service_reachable_through_a_port_forward() {
    let s = Scratch::new("network");
    let image = image_with(
        &s,
        "net.img",
        &["greeter"],
        Some("[network]\ninterfaces = [\"eth0\"]\n"),
    );
    let settings = squashfs_cat(&image, ROOT_A_OFFSET, "etc/rustkrazy/network");
    assert!(settings.ends_with("interface eth0\n"), "{settings}");

    let options = Options {
        forwards: vec![GREETER_PORT],
        ..Options::default()
    };
    let mut vm = Vm::boot(&image, &options).unwrap();
    let (start, t_init) = vm
        .wait_for("init: rustkrazy init starting", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("init did not start: {c}"));
    let marker = "link: eth0: lease 10.0.2.15/24 via 10.0.2.2 dns 10.0.2.3 from 10.0.2.2";
    let (_, t_lease) = vm
        .wait_for(marker, start, Duration::from_secs(60))
        .unwrap_or_else(|c| panic!("no lease from QEMU's DHCP server: {c}"));
    let (line, _) = vm
        .wait_line(marker, start, Duration::from_secs(10))
        .unwrap_or_else(|c| panic!("{c}"));
    println!(
        "figure: lease bound {:.2} s after init started ({line})",
        (t_lease - t_init).as_secs_f64()
    );
    let console = vm.console_from(start);
    assert!(
        console.contains("link: lo: up, 127.0.0.1/8 ::1/128"),
        "{console}"
    );
    assert!(
        console.contains("link: eth0: up (MAC 52:54:00:12:34:56), IPv4 by DHCP"),
        "{console}"
    );

    let port = vm.host_port(GREETER_PORT).unwrap();
    let text = greet(port, Instant::now() + Duration::from_secs(60));
    assert!(
        text.contains("nameserver 10.0.2.3\n"),
        "resolv.conf as musl reads it: {text}\n{}",
        vm.console_from(start)
    );
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("link-rss: "))
        .unwrap_or("?");
    println!("figure: link RSS in the appliance: {rss}");
    assert_ne!(rss, "?", "{text}");
    // IPv6 is the kernel's SLAAC from QEMU's router advertisements (prefix fec0::/64);
    // link reports the address once duplicate address detection is done.
    let (line, _) = vm
        .wait_line("link: eth0: IPv6 fec0:", start, Duration::from_secs(60))
        .unwrap_or_else(|c| panic!("no SLAAC address reported: {c}"));
    assert!(line.contains(":5054:ff:fe12:3456/64 (SLAAC)"), "{line}");
    vm.kill();
}
