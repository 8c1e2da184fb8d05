//! `imgtool qemu`: boots an image in qemu-system-x86_64, as a BIOS machine (SeaBIOS runs
//! the MBR boot code) or as a UEFI machine (OVMF runs `\EFI\BOOT\BOOTX64.EFI`, our UEFI
//! boot program). No `-kernel`: the image's own boot code loads the slot's kernel.

use std::path::Path;
use std::process::Command;

/// Port admind listens on inside the appliance.
pub const ADMIND_PORT: u16 = 8443;

/// OVMF for `-bios` (code and variables in one file; variables do not persist), from
/// Debian's ovmf package.
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// The machine's firmware.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS on the `pc` machine: the MBR code boots.
    #[default]
    Bios,
    /// OVMF on the `q35` machine: the UEFI boot program boots.
    Uefi,
}

/// How to start the VM.
#[derive(Clone, Debug)]
pub struct Options {
    pub firmware: Firmware,
    pub memory_mib: u32,
    /// Host port forwarded to admind's port in the guest (on 127.0.0.1).
    pub admind_host_port: u16,
    /// More forwards: (host port on 127.0.0.1, guest port), for programs of one's own.
    pub forwards: Vec<(u16, u16)>,
    /// Exit instead of rebooting (tests that expect a reboot leave this off).
    pub no_reboot: bool,
    /// Serial console and QEMU monitor multiplexed on the terminal (ctrl-a c, ctrl-a x);
    /// otherwise the serial console alone on stdin/stdout, for programs to drive.
    pub interactive: bool,
    /// A tap device to attach the network to instead of QEMU's user-mode network (the
    /// forwards above then do not apply): tests put the VM on a network of their own.
    pub tap: Option<String>,
}

/// The qemu command line; stdin/stdout are left for the caller to wire to the serial port.
pub fn command(image: &Path, options: &Options) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    match options.firmware {
        Firmware::Bios => cmd.args(["-machine", "pc"]),
        Firmware::Uefi => cmd.args(["-machine", "q35", "-bios", OVMF]),
    };
    cmd.arg("-m").arg(options.memory_mib.to_string());
    cmd.args(["-display", "none", "-vga", "none"]);
    if options.interactive {
        cmd.args(["-serial", "mon:stdio"]);
    } else {
        cmd.args(["-serial", "stdio", "-monitor", "none"]);
    }
    cmd.arg("-drive").arg(format!(
        "file={},format=raw,if=virtio,cache=unsafe",
        image.display()
    ));
    let netdev = match &options.tap {
        Some(tap) => format!("tap,id=net0,ifname={tap},script=no,downscript=no"),
        None => {
            let mut user = format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:{ADMIND_PORT}",
                options.admind_host_port
            );
            for (host, guest) in &options.forwards {
                user.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
            }
            user
        }
    };
    cmd.arg("-netdev").arg(netdev);
    cmd.args([
        "-device",
        "virtio-net-pci,netdev=net0",
        "-device",
        "virtio-rng-pci",
    ]);
    if options.no_reboot {
        cmd.arg("-no-reboot");
    }
    cmd
}

/// A free TCP port on 127.0.0.1 (free when asked; another process may take it later).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
