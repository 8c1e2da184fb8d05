//! The testable parts of rustkrazy's PID 1: kernel command line parsing, the restart
//! backoff schedule, services' argv, envp and confinement, log rotation and line formatting. `no_std`, no allocation, so the
//! binary links exactly this code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod backoff;
pub mod cmdline;
pub mod confinement;
pub mod exec_args;
pub mod logline;
