//! `link`: rustkrazy's network bring-up, started by init like any program.
//!
//! 1. Reads the network settings ([`boot::network`]); without them, DHCP everywhere.
//! 2. Brings up loopback (127.0.0.1/8, ::1/128) and every Ethernet interface (or the named
//!    ones), also ones that appear later.
//! 3. Per interface: a static address, gateway and DNS servers, or a DHCPv4 client that
//!    applies its lease (address with the lease as its lifetime, default route) and renews,
//!    rebinds, and starts over on NAK, expiry or carrier loss.
//! 4. Writes the DNS servers to resolv.conf (default /run/resolv.conf, which the root's
//!    /etc/resolv.conf points to).
//! 5. Leaves IPv6 to the kernel's SLAAC and logs the global addresses it configures.
//!
//! Options (for tests and unusual images): `--config PATH`, `--resolv-conf PATH`,
//! `--clock-status PATH`, `--time off|observe`.
//! One log line per event on stdout. Nothing from the network can make it panic.
#![no_std]
#![no_main]

mod event_loop;
mod interfaces;
mod kernel;
mod leases;
mod options;
mod resolvers;
mod sys;
mod time;

use boot::network::{Name, Settings};
use core::ffi::{c_char, c_int};
use interfaces::Interface;
use link::netlink as nl;
use link::show::{Ip4, Shown};
use link::table::Table;
use runtime::say;
use rustix::fd::OwnedFd;
use sys::{now_ms, Text};

// musl's start-up code calls `main` below.
runtime::device_program!();

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    say!("link: internal error (panic); exiting so init restarts it");
    let _ =
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::ABORT);
    loop {
        core::hint::spin_loop();
    }
}

/// Interfaces handled at once (slots are reused when interfaces go away).
pub(crate) const INTERFACES_MAX: usize = 8;
/// Longest wait in poll, so a clock oddity cannot stall timers for long.
pub(crate) const POLL_MS_MAX: u64 = 60_000;
/// Largest packet read from a DHCP socket (an Ethernet frame's payload, with room).
pub(crate) const MTU_BYTES: usize = 1600;
/// Buffer for acknowledgements of our own requests (one small message each).
pub(crate) const ACK_BUFFER_BYTES: usize = 4096;
/// Buffer for dumps and events: the kernel sends netlink datagrams of up to 32 KiB.
pub(crate) const NETLINK_BUFFER_BYTES: usize = 32 * 1024;
/// Links collected from one dump (the rest are picked up by later events).
pub(crate) const DUMPED_LINKS_MAX: usize = 32;
/// Changes taken from one event datagram.
pub(crate) const CHANGES_PER_DATAGRAM_MAX: usize = 16;
/// DHCP packets handled per wake-up, so a flood on one socket cannot starve the others.
pub(crate) const PACKETS_PER_WAKE_MAX: usize = 64;
/// Poll slots: netlink events, a packet and a UDP socket per interface, the time client's.
pub(crate) const POLL_SLOTS: usize = 2 + 2 * INTERFACES_MAX;
pub(crate) const TIME_SLOT: usize = POLL_SLOTS - 1;

/// Everything link keeps between events.
struct Link {
    requests: OwnedFd,
    seq: u32,
    settings: Settings,
    hostname: Text<64>,
    resolv_conf: Text<128>,
    interfaces: Table<Interface, INTERFACES_MAX>,
    /// What resolv.conf holds now, to skip rewriting it unchanged.
    dns_written: Text<160>,
    time: time::TimeSync,
}

#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let Some(mut options) = options::parse(argc, argv) else {
        return 2;
    };
    let settings = options::read_settings(&mut options.config);
    let requests = match sys::netlink(0) {
        Ok(fd) => fd,
        Err(e) => {
            say!(
                "link: cannot open rtnetlink ({}); is this Linux with CONFIG_NET?",
                e
            );
            return 1;
        }
    };
    let events = match sys::netlink(nl::RTMGRP_LINK | nl::RTMGRP_IPV6_IFADDR) {
        Ok(fd) => fd,
        Err(e) => {
            say!("link: cannot subscribe to link changes ({})", e);
            return 1;
        }
    };
    let mut hostname = Text::new();
    let uname = rustix::system::uname();
    let node = uname.nodename().to_bytes();
    if !node.is_empty() && node != b"(none)" {
        hostname.push(node);
    }
    let mut link = Link {
        requests,
        seq: now_ms() as u32,
        time: time::TimeSync::new(&settings, options.time_mode, options.clock_status),
        settings,
        hostname,
        resolv_conf: options.resolv_conf,
        interfaces: Table::new(),
        dns_written: Text::new(),
    };
    link.loopback();
    if link.list_links().is_err() {
        return 1;
    }
    if let Some(st) = link.settings.ipv4_static {
        if !link
            .interfaces
            .values()
            .any(|i| link.settings.wants(i.name.as_bytes()))
        {
            say!(
                "link: waiting for interface {} (static address {}/{})",
                Shown(link.settings.interfaces()[0].as_bytes()),
                Ip4(st.address),
                st.prefix
            );
        }
    }
    link.write_resolv_conf();
    link.run(&events)
}
