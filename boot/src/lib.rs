//! The on-disk contract of a rustkrazy appliance, shared by the host (`imgtool`) and the
//! device programs (`init`, `admind`), so it is written down exactly once.
//!
//! `no_std`, no allocation: device binaries link it without growing.
#![no_std]
#![forbid(unsafe_code)]

pub mod layout;
pub mod services;
