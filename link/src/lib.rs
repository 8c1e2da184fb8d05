//! The testable parts of `link`, rustkrazy's network bring-up. `no_std`, no allocation.
//!
//! So far: the DHCPv4 message codec and the lease timers. The program itself (rtnetlink,
//! sockets, the client state machine) is still a placeholder.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod dhcp;
