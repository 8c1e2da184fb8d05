//! `imgtool qemu`: boots an image in QEMU without `-kernel`: the image's own boot code loads
//! the slot's kernel. x86_64 images boot in qemu-system-x86_64 as a BIOS machine (SeaBIOS
//! runs the MBR code) or as a UEFI machine (OVMF runs `\EFI\BOOT\BOOTX64.EFI`, our UEFI
//! boot program); aarch64 images in qemu-system-aarch64's `virt` machine under AAVMF, which
//! runs `\EFI\BOOT\BOOTAA64.EFI`; Raspberry Pi images in the `raspi4b` or `raspi3b` machine,
//! with the kernel, device tree and command line the Pi firmware would choose (`qemu_raspi`).

use anyhow::Context;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

pub use crate::qemu_raspi::Board;

/// OVMF for `-bios` (code and variables in one file; variables do not persist), from
/// Debian's ovmf package.
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// AAVMF for `-bios` on the arm64 `virt` machine, from Debian's qemu-efi-aarch64 package.
pub const AAVMF: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";

/// The kind of machine an image's kernel runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    /// QEMU's arm64 `virt` machine, always UEFI.
    Arm64Virt,
    /// A Raspberry Pi (no UEFI program on /boot): the card image (an SD card on the Pi 3, a
    /// USB stick on the Pi 4), its firmware's choices played by `crate::qemu_raspi`; which
    /// board is [`Options::board`].
    Raspi,
}

impl Machine {
    /// The machine slot A's kernel is built for, found where the MBR table says it lies.
    pub fn of_image(image: &Path) -> std::io::Result<Machine> {
        let file = std::fs::File::open(image)?;
        let mut mbr = [0u8; 512];
        file.read_exact_at(&mut mbr, 0)?;
        let unknown = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {what}; was it made by imgtool mkimg?", image.display()),
            )
        };
        let table = boot::mbr::Table::read(&mbr).ok_or_else(|| unknown("no slot table"))?;
        let mut header = [0u8; 0x240];
        file.read_exact_at(&mut header, u64::from(table.kernel_lba[0]) * 512)?;
        if &header[0x202..0x206] == b"HdrS" {
            Ok(Machine::X86_64)
        } else if &header[0x38..0x3c] == b"ARM\x64" {
            if crate::qemu_raspi::has_file(image, "EFI/BOOT/BOOTAA64.EFI") {
                Ok(Machine::Arm64Virt)
            } else {
                Ok(Machine::Raspi)
            }
        } else {
            Err(unknown("slot A holds neither an x86 nor an arm64 kernel"))
        }
    }
}

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
    pub machine: Machine,
    /// For x86_64; the arm64 machine is always UEFI.
    pub firmware: Firmware,
    /// For a Raspberry Pi image.
    pub board: Board,
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
/// For a Raspberry Pi image the slot's files are extracted first (into a folder of the
/// temporary directory named after the image).
pub fn command(image: &Path, options: &Options) -> anyhow::Result<Command> {
    command_for(image, options, false)
}

/// [`command`], for a Raspberry Pi image booting from tryboot.txt when `tryboot`.
pub fn command_for(image: &Path, options: &Options, tryboot: bool) -> anyhow::Result<Command> {
    let mut cmd = Command::new(options.machine.qemu());
    match (options.machine, options.firmware) {
        (Machine::X86_64, Firmware::Bios) => cmd.args(["-machine", "pc", "-vga", "none"]),
        (Machine::X86_64, Firmware::Uefi) => {
            cmd.args(["-machine", "q35", "-vga", "none", "-bios", OVMF])
        }
        (Machine::Arm64Virt, _) => {
            cmd.args(["-machine", "virt", "-cpu", "cortex-a57", "-bios", AAVMF])
        }
        (Machine::Raspi, _) => {
            let slot =
                crate::qemu_raspi::prepare(image, options.board, tryboot, &raspi_dir(image))?;
            cmd.args(["-machine", options.board.machine()])
                .arg("-kernel")
                .arg(&slot.kernel)
                .arg("-dtb")
                .arg(&slot.device_tree)
                .arg("-append")
                // QEMU's Pis reset at once when the SoC watchdog is started (they model the
                // reset, not the timer): init is told to leave it alone.
                .arg(format!(
                    "{} rustkrazy.watchdog=off{}",
                    slot.cmdline,
                    options.board.console_arg()
                ))
        }
    };
    let memory_mib = match options.machine {
        Machine::Raspi => options.board.memory_mib(),
        _ => options.memory_mib,
    };
    cmd.arg("-m").arg(memory_mib.to_string());
    cmd.args(["-display", "none"]);
    // On the Pi 3, the console is the GPIO header's UART (the mini UART, as the device tree
    // says), QEMU's second serial port; the Pi 4's is the PL011, its first (console_arg).
    if options.machine == Machine::Raspi && options.board == Board::Pi3B {
        cmd.args(["-serial", "null"]);
    }
    if options.interactive {
        cmd.args(["-serial", "mon:stdio"]);
    } else {
        cmd.args(["-serial", "stdio", "-monitor", "none"]);
    }
    // Networking on the Pis is USB (the CDC Ethernet driver on the SoC's dwc2 port: QEMU
    // models neither the Pi 3's USB hub chip nor the Pi 4's PCIe USB or GENET); the SoC has
    // its RNG.
    let (drive, nic, rng) = match (options.machine, options.board) {
        (Machine::Raspi, Board::Pi3B) => ("if=sd", "usb-net,netdev=net0", None),
        // QEMU's raspi4b wires its SD card to the Arasan controller, which the Pi 4's device
        // tree gives to the WiFi chip (and its power sequence to GPIOs on the firmware's
        // expander, which QEMU lacks): the card is never seen. The image is a USB stick
        // instead (the Pi 4 boots from USB too), beside the network, behind a hub.
        (Machine::Raspi, Board::Pi4B) => {
            cmd.args(["-device", "usb-hub,bus=usb-bus.0,port=1"]);
            cmd.args(["-device", "usb-storage,drive=disk,bus=usb-bus.0,port=1.1"]);
            (
                "if=none,id=disk",
                "usb-net,netdev=net0,bus=usb-bus.0,port=1.2",
                None,
            )
        }
        _ => (
            "if=virtio",
            "virtio-net-pci,netdev=net0",
            Some("virtio-rng-pci"),
        ),
    };
    cmd.arg("-drive").arg(format!(
        "file={},format=raw,{drive},cache=unsafe",
        image.display()
    ));
    let netdev = match &options.tap {
        Some(tap) => format!("tap,id=net0,ifname={tap},script=no,downscript=no"),
        None => {
            let mut user = format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:{}",
                options.admind_host_port,
                admin_api::PORT
            );
            for (host, guest) in &options.forwards {
                user.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
            }
            user
        }
    };
    cmd.arg("-netdev").arg(netdev);
    cmd.arg("-device").arg(nic);
    if let Some(rng) = rng {
        cmd.arg("-device").arg(rng);
    }
    if options.no_reboot {
        cmd.arg("-no-reboot");
    }
    Ok(cmd)
}

/// Where a Raspberry Pi image's slot files are extracted for QEMU: one folder per image.
fn raspi_dir(image: &Path) -> std::path::PathBuf {
    use sha2::Digest;
    let name = image.canonicalize().unwrap_or_else(|_| image.to_path_buf());
    let digest = sha2::Sha256::digest(name.as_os_str().as_encoded_bytes());
    std::env::temp_dir().join(format!(
        "imgtool-raspi-{}",
        boot::encoding::Hex(&digest[..8])
    ))
}

impl Machine {
    /// The QEMU program, and the Debian package that has it.
    pub fn qemu(self) -> &'static str {
        match self {
            Machine::X86_64 => "qemu-system-x86_64",
            Machine::Arm64Virt | Machine::Raspi => "qemu-system-aarch64",
        }
    }

    /// What to install when [`Machine::qemu`] or its firmware is missing.
    pub fn packages(self) -> &'static str {
        match self {
            Machine::X86_64 => "qemu-system-x86 ovmf",
            Machine::Arm64Virt => "qemu-system-arm qemu-efi-aarch64",
            Machine::Raspi => "qemu-system-arm",
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; another process may take it later).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs the Pi in QEMU as its firmware would, until QEMU ends other than by a guest restart
/// (or, with `no_reboot`, at the first restart). A restart after init's
/// [`boot::rpi::TRYBOOT_RESTART_LINE`] boots from tryboot.txt, any other from config.txt.
/// The console passes through to stdout.
pub fn run_raspi(image: &Path, options: &Options) -> anyhow::Result<ExitStatus> {
    let marker = boot::rpi::TRYBOOT_RESTART_LINE.as_bytes();
    let mut tryboot = false;
    loop {
        let mut cmd = command_for(image, options, tryboot)?;
        if !options.no_reboot {
            cmd.arg("-no-reboot");
        }
        cmd.stdout(Stdio::piped());
        // QEMU must not outlive us (tests kill this process to pull the power).
        // SAFETY: prctl(PR_SET_PDEATHSIG) in the child before exec; async-signal-safe, no
        // memory shared with the parent.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .context("cannot run qemu-system-aarch64 (apt-get install qemu-system-arm)")?;
        let mut console = child.stdout.take().context("QEMU's console is piped")?;
        let mut out = std::io::stdout();
        let mut seen = Vec::new();
        let mut asked_tryboot = false;
        let mut buf = [0u8; 4096];
        loop {
            let n = console.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
            // The tail of what came before, so a line split across reads is still found.
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(marker.len()).any(|w| w == marker) {
                asked_tryboot = true;
            }
            let keep = seen.len().saturating_sub(marker.len());
            seen.drain(..keep);
        }
        let status = child.wait()?;
        if !status.success() || options.no_reboot {
            return Ok(status);
        }
        tryboot = asked_tryboot;
        eprintln!(
            "imgtool qemu: the Pi restarted; starting it from {} as its firmware would",
            if tryboot {
                boot::rpi::TRYBOOT_TXT
            } else {
                boot::rpi::CONFIG_TXT
            }
        );
    }
}
