//! Kernel configuration fragments, merged by `imgtool kernel` onto `make tinyconfig`.
//! The files under `boot/kernel/` are commented per option group.

/// The x86_64 fragment (`boot/kernel/x86_64.config`).
pub const X86_64_FRAGMENT: &str = include_str!("../kernel/x86_64.config");

/// The arm64 fragment for UEFI machines (`boot/kernel/aarch64.config`).
pub const AARCH64_FRAGMENT: &str = include_str!("../kernel/aarch64.config");
