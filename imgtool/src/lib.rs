//! imgtool's library: everything the `imgtool` command does, as modules tests can call.

pub mod boot_partition;
pub mod c_toolchain;
pub mod cargo_build;
pub mod client;
pub mod config;
pub mod crc32c;
pub mod elf;
pub mod ext4;
pub mod fat;
pub mod instance;
pub mod kernel;
pub mod kernel_build;
pub mod known_devices;
pub mod mbr_table;
pub mod mkimg;
pub mod output;
pub mod push;
pub mod qemu;
pub mod qemu_raspi;
pub mod root_image;
pub mod rootfs;
pub mod rpi_firmware;
pub mod size;
pub mod slot_keys;
pub mod squashfs_blocks;
pub mod status_text;
