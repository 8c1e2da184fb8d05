//! The on-disk contract of a rustkrazy appliance, shared by the host (`imgtool`) and the
//! device programs (`init`, `link`, `admind`), so it is written down exactly once.
//!
//! `no_std`, no allocation: device binaries link it without growing.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod boot_status;
pub mod channel;
pub mod chunks;
pub mod clock;
pub mod encoding;
pub mod fat32;
pub mod kernel;
pub mod layout;
pub mod logs;
pub mod mbr;
pub mod network;
pub mod password;
pub mod readiness;
pub mod record;
pub mod release;
pub mod rootid;
pub mod rpi;
pub mod sandbox;
pub mod seal;
pub mod service_list;
pub mod services;
pub mod slot;
pub mod uefi_keys;
