//! Kernel configuration fragments, merged by `imgtool kernel` onto `make tinyconfig`.
//! The files under `boot/kernel/` are commented per option group.

/// The x86_64 fragment (`boot/kernel/x86_64.config`).
pub const X86_64_FRAGMENT: &str = include_str!("../kernel/x86_64.config");

/// The arm64 fragment (`boot/kernel/arm64.config`): UEFI machines and the Raspberry Pi.
pub const ARM64_FRAGMENT: &str = include_str!("../kernel/arm64.config");

/// The fragment merged after either architecture's (`boot/kernel/programs.config`): what
/// ordinary programs expect of a Linux kernel (locks, inotify, madvise ...).
pub const PROGRAMS_FRAGMENT: &str = include_str!("../kernel/programs.config");

/// The fragment for verified roots, merged after the programs' (`boot/kernel/verity.config`):
/// device-mapper, dm-init and dm-verity.
pub const VERITY_FRAGMENT: &str = include_str!("../kernel/verity.config");

/// dm-init gives up on a device that does not appear (every architecture).
const DM_INIT_WAITFOR_TIMEOUT: (&str, &str) = (
    "dm-init-waitfor-timeout.patch",
    include_str!("../kernel/dm-init-waitfor-timeout.patch"),
);

/// Patches to the kernel source, applied in order: (file name, text).
pub const X86_64_PATCHES: &[(&str, &str)] = &[DM_INIT_WAITFOR_TIMEOUT];
pub const ARM64_PATCHES: &[(&str, &str)] = &[
    DM_INIT_WAITFOR_TIMEOUT,
    (
        "rpi-tryboot.patch",
        include_str!("../kernel/rpi-tryboot.patch"),
    ),
];

/// Device trees built with the arm64 kernel, under the names mainline gives them
/// (`arch/arm64/boot/dts/broadcom/`): Pi 3B, 3B+, 4B, CM3, Zero 2 W.
pub const RPI_DEVICE_TREES: [&str; 5] = [
    "bcm2837-rpi-3-b.dtb",
    "bcm2837-rpi-3-b-plus.dtb",
    "bcm2711-rpi-4-b.dtb",
    "bcm2837-rpi-cm3-io3.dtb",
    "bcm2837-rpi-zero-2-w.dtb",
];
