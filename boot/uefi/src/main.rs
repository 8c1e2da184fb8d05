//! rustkrazy's UEFI boot program (`\EFI\BOOT\BOOTX64.EFI`, `BOOTAA64.EFI`): what the x86
//! MBR code does, for UEFI firmware. It reads both copies of the boot record from its own
//! disk, makes the record's choice (`boot::record::choose`: a trial once, an attempt
//! counted, a fall-back), writes it with one sector write and a flush, checks the chosen
//! slot's seal against the keys it holds (`verify`), and starts the slot's kernel (its EFI
//! stub) with the slot's command line; a refused slot counts as a failed boot, and the
//! record chooses again. The slot files are
//! found through the MBR code's table in sector 0, so both boot paths read the very same
//! bytes. On failure it says what failed, waits 5 s and resets: the record has counted the
//! attempt.
#![cfg_attr(target_os = "uefi", no_std, no_main)]

#[cfg(target_os = "uefi")]
extern crate alloc;

#[cfg(target_os = "uefi")]
mod program;
#[cfg(any(target_os = "uefi", test))]
mod verify;

/// A workspace member is built for the host too (`cargo test --workspace`): there it is
/// this. Being a member keeps its crates' hashes free of the checkout's path (cargo hashes
/// a path dependency outside the workspace by its absolute path, which changed the bytes).
#[cfg(not(target_os = "uefi"))]
fn main() {}
