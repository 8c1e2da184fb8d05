//! What rustkrazy's `no_std` device programs (init, link) run on, written once: the start-up
//! glue for musl ([`device_program!`]), line output, small whole-file I/O, the clocks, a
//! fixed poll set and a fixed text buffer. Blocking, no allocation, no panics on input.
//!
//! The contract both sides of the disk share lives in `boot`, which does no I/O.
#![cfg_attr(not(test), no_std)]

pub mod clock;
pub mod file;
pub mod output;
pub mod poll;
pub mod program;
pub mod text;

pub use text::Text;
