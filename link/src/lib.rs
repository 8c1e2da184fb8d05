//! The testable parts of `link`, rustkrazy's network bring-up: `no_std`, no allocation,
//! no I/O. The program (`main.rs`) does the system calls and feeds these.
//!
//! - [`dhcp`]: DHCPv4 messages, encoded and decoded with every length checked.
//! - [`client`]: the DHCPv4 client state machine and its timers.
//! - [`udp`]: IPv4 + UDP framing for the packet socket DHCP runs on.
//! - [`netlink`]: the rtnetlink requests `link` sends and a reader for the replies.
//! - [`show`]: addresses, names and lease details as log text.
//! - [`table`]: the fixed interface table.
//! - [`sntp`], [`dns`], [`timesync`]: the time client's messages, its one DNS query, and
//!   its schedule.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod client;
pub mod dhcp;
pub mod dns;
pub mod netlink;
pub mod show;
pub mod sntp;
pub mod table;
pub mod timesync;
pub mod udp;
