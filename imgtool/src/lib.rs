//! imgtool's library: everything the `imgtool` command does, as modules tests can call.

pub mod crc32c;
pub mod ext4;
