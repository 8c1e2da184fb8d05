//! imgtool's command line: the subcommands and their flags (clap), and the appliance plan
//! the build flags describe.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use imgtool::config::{Arch, Compression, Plan, ProgramSpec, Settings, Source};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "imgtool",
    version,
    about = "Turn Rust programs into appliance images"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Build an appliance disk image into a (sparse) file or onto a block device.
    Mkimg(MkimgArgs),
    /// Build (or find in the cache) a kernel with rustkrazy's config; prints its path.
    Kernel(KernelArgs),
    /// Update a running appliance over the network: build, upload, try, commit (or report
    /// the rollback).
    Push(PushArgs),
    /// Write a signed release into a channel folder that any static web server can serve:
    /// a manifest, and the slot's root and kernel as content-addressed chunks.
    Publish(PublishArgs),
    /// Show what a running appliance says about itself.
    Status(RemoteArgs),
    /// Print a service's log from a running appliance.
    Logs(LogsArgs),
    /// Reboot a running appliance.
    Reboot(RemoteArgs),
    /// Boot an image in QEMU (BIOS, virtio disk, serial console here, admind port forwarded).
    Qemu(QemuArgs),
    /// The instance's slot-signing keys: list them, make the next one, rotate to it.
    Key(KeyArgs),
    /// Print the seal (base64, for `X-Slot-Seal`) of a slot holding these files, for
    /// uploads made without `imgtool push` (curl).
    Seal(SealArgs),
    /// Forget the key pinned for a device (after it was reflashed or lost /data): the next
    /// contact pins the key it shows then.
    Forget(ForgetArgs),
}

#[derive(Args)]
pub(crate) struct ForgetArgs {
    /// Instance folder of the appliance [default: ~/.config/rustkrazy/rustkrazy].
    #[arg(long)]
    pub(crate) instance: Option<PathBuf>,
    /// The device, as given to --to when its key was pinned: HOST or HOST:PORT.
    #[arg(long)]
    pub(crate) to: String,
}

#[derive(Args)]
pub(crate) struct SealArgs {
    /// Instance folder of the appliance [default: ~/.config/rustkrazy/rustkrazy].
    #[arg(long)]
    pub(crate) instance: Option<PathBuf>,
    /// The root image uploaded to /update/root.
    #[arg(long)]
    pub(crate) root: PathBuf,
    /// The kernel uploaded to /update/kernel (or the one the slot holds).
    #[arg(long)]
    pub(crate) kernel: PathBuf,
    /// A file holding the command line uploaded to /update/cmdline (or the slot's).
    #[arg(long)]
    pub(crate) cmdline: PathBuf,
    /// The slot may replace a newer committed one, up to this version (the committed
    /// slot's, from `imgtool status`).
    #[arg(long, value_name = "VERSION")]
    pub(crate) allow_older: Option<u64>,
}

#[derive(Args)]
pub(crate) struct KeyArgs {
    #[command(subcommand)]
    pub(crate) action: KeyAction,
    /// Instance folder of the appliance [default: ~/.config/rustkrazy/rustkrazy].
    #[arg(long, global = true)]
    pub(crate) instance: Option<PathBuf>,
}

#[derive(clap::Subcommand, Clone, Copy)]
pub(crate) enum KeyAction {
    /// Each key the instance's roots trust or revoke, and which one seals now.
    List,
    /// Make the next key; roots from now on trust it beside the current one.
    New,
    /// Seal with the next key from now on; roots revoke the old one (push once between
    /// `new` and `rotate`).
    Rotate,
}

#[derive(Args)]
pub(crate) struct QemuArgs {
    /// The image to boot (its writes persist).
    pub(crate) image: PathBuf,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    pub(crate) memory: u32,
    /// Host port forwarded to admind (port 8443 in the guest) [default: a free port].
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Also forward 127.0.0.1:HOST to the guest's TCP port GUEST (repeatable).
    #[arg(long, value_name = "HOST:GUEST", value_parser = parse_forward)]
    pub(crate) forward: Vec<(u16, u16)>,
    /// Exit QEMU when the guest reboots.
    #[arg(long)]
    pub(crate) no_reboot: bool,
    /// The serial console alone on stdin/stdout, no QEMU monitor (for programs to drive).
    #[arg(long, hide = true)]
    pub(crate) serial_only: bool,
    /// Boot an x86_64 image as a UEFI machine (OVMF, q35), through the image's UEFI boot
    /// program, instead of as a BIOS machine through its MBR code (aarch64 images always
    /// boot through UEFI).
    #[arg(long)]
    pub(crate) uefi: bool,
    /// The Raspberry Pi to emulate for a Pi image (its memory is the board's: 1 or 2 GiB).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) board: imgtool::qemu::Board,
}

#[derive(Args)]
pub(crate) struct PushArgs {
    /// The device: HOST or HOST:PORT [default: the instance's hostname, port 8443].
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Seconds to wait for the device to come back after its reboot.
    #[arg(long, default_value_t = 300)]
    pub(crate) timeout: u64,
    /// Also replace the boot partition's shared files (config.txt, firmware) and the MBR
    /// code, after the slot is committed. Not A/B-safe: see README. (Kernel and command line
    /// go with every push, into the new slot.)
    #[arg(long)]
    pub(crate) boot: bool,
    /// Seal the slot so that it may replace a newer one (a downgrade), the one the device has
    /// committed now and no newer; without it the device refuses a slot older than its
    /// committed one.
    #[arg(long)]
    pub(crate) allow_older: bool,
    /// Push the newest release of this channel folder (`imgtool publish`) instead of
    /// building one: its manifest checked against the instance's key, its images against
    /// their hashes, sealed as published.
    #[arg(long, value_name = "CHANNEL_DIR")]
    pub(crate) release: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
}

#[derive(Args)]
pub(crate) struct PublishArgs {
    /// The channel folder (made if missing).
    #[arg(long)]
    pub(crate) channel: PathBuf,
    /// Percent of devices that should take this release, by a stable hash of their
    /// identity.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub(crate) rollout: u8,
    /// Then keep only this many newest releases, and the chunks they name (2 or more lets
    /// a client that read the previous manifest finish its download).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) keep: Option<u64>,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
}

#[derive(Args)]
pub(crate) struct RemoteArgs {
    /// Instance folder of the appliance [default: ~/.config/rustkrazy/rustkrazy].
    #[arg(long)]
    pub(crate) instance: Option<PathBuf>,
    /// The device: HOST or HOST:PORT [default: the instance's hostname, port 8443].
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Print admind's JSON as it is.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct LogsArgs {
    /// The program whose output to show (its name in /bin).
    pub(crate) service: String,
    /// Show stderr instead of stdout.
    #[arg(long)]
    pub(crate) stderr: bool,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
}

impl RemoteArgs {
    pub(crate) fn client(&self) -> Result<imgtool::client::Client> {
        let dir = self
            .instance
            .clone()
            .unwrap_or_else(|| imgtool::instance::default_dir("rustkrazy"));
        let instance = imgtool::instance::Instance::open_existing(&dir)?;
        imgtool::client::Client::new(&instance, self.to.as_deref())
    }
}

#[derive(Args)]
pub(crate) struct KernelArgs {
    /// Machine to build for.
    #[arg(long, value_enum, default_value = "x86_64")]
    pub(crate) arch: Arch,
    /// Kernel source: a tarball or an unpacked tree [default: Debian's /usr/src/linux-source-*.tar.xz].
    #[arg(long, value_name = "TARBALL_OR_DIR")]
    pub(crate) source: Option<PathBuf>,
    /// Also copy the kernel here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct MkimgArgs {
    /// Image file to create, or a block device to overwrite (e.g. /dev/sdb).
    pub(crate) target: PathBuf,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
}

/// What goes into an image: shared by mkimg and push.
#[derive(Args)]
pub(crate) struct BuildArgs {
    /// Appliance file (TOML); flags given here override it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Instance folder: secrets and identity kept across builds [default: ~/.config/rustkrazy/HOSTNAME]
    #[arg(long)]
    pub(crate) instance: Option<PathBuf>,
    /// Machine to build for.
    #[arg(long, value_enum)]
    pub(crate) arch: Option<Arch>,
    /// Image size with unit, e.g. 2G or 1536M [default: the instance's last size, else 2G; a block device's own size].
    #[arg(long)]
    pub(crate) size: Option<String>,
    /// Kernel image for both slots' /boot/slot-*-vmlinuz (x86_64 bzImage, or arm64 Image for rpi) [default: `imgtool kernel`'s].
    #[arg(long)]
    pub(crate) kernel: Option<PathBuf>,
    /// Hostname of the appliance [default: rustkrazy].
    #[arg(long)]
    pub(crate) hostname: Option<String>,
    /// Folder whose files are copied into /boot (e.g. Raspberry Pi firmware).
    #[arg(long)]
    pub(crate) firmware: Option<PathBuf>,
    /// Add a crate from crates.io: NAME or NAME@VERSION. Repeatable.
    #[arg(long = "crate", value_name = "NAME[@VERSION]")]
    pub(crate) crates: Vec<String>,
    /// Add a crate from git: URL or URL%CRATE. Repeatable.
    #[arg(long = "git", value_name = "URL[%CRATE]")]
    pub(crate) gits: Vec<String>,
    /// Add a local crate or workspace. Repeatable.
    #[arg(long = "path", value_name = "DIR")]
    pub(crate) paths: Vec<PathBuf>,
    /// Add a prebuilt static binary, optionally renamed. Repeatable.
    #[arg(long = "bin", value_name = "FILE[=NAME]")]
    pub(crate) bins: Vec<String>,
    /// Program that becomes /bin/init [default: rustkrazy's init].
    #[arg(long, value_name = "NAME")]
    pub(crate) init: Option<String>,
    /// Append a word to the kernel command line (e.g. rustkrazy.trial_timeout=120). Repeatable.
    #[arg(long = "kernel-arg", value_name = "ARG")]
    pub(crate) kernel_args: Vec<String>,
    /// Leave out rustkrazy's link (network) and admind (management) programs.
    #[arg(long)]
    pub(crate) no_system_programs: bool,
    /// The roots' SquashFS compressor [default: gzip].
    #[arg(long, value_enum)]
    pub(crate) compression: Option<Compression>,
    /// Tests only: write /boot/vmlinuz in fragments (mkimg must then refuse the image).
    #[arg(long, hide = true)]
    pub(crate) fragment_kernel_for_tests: bool,
}

impl BuildArgs {
    /// Whether any flag says what goes into a slot (rather than which instance).
    pub(crate) fn describes_a_slot(&self) -> bool {
        self.config.is_some()
            || self.kernel.is_some()
            || !self.crates.is_empty()
            || !self.gits.is_empty()
            || !self.paths.is_empty()
            || !self.bins.is_empty()
            || self.init.is_some()
            || !self.kernel_args.is_empty()
            || self.no_system_programs
            || self.compression.is_some()
    }

    pub(crate) fn plan(&self) -> Result<Plan> {
        let base = match &self.config {
            Some(path) => Plan::from_file(path)?,
            None => Plan::default(),
        };
        let mut programs = Vec::new();
        let spec = |source| ProgramSpec {
            source,
            settings: Settings {
                autostart: true,
                ..Settings::default()
            },
        };
        for c in &self.crates {
            programs.push(spec(Source::parse_crate(c)?));
        }
        for g in &self.gits {
            programs.push(spec(Source::parse_git(g)?));
        }
        for p in &self.paths {
            programs.push(spec(Source::Path(p.clone())));
        }
        for b in &self.bins {
            programs.push(spec(Source::parse_bin(b)?));
        }
        let flags = Plan {
            hostname: self.hostname.clone(),
            arch: self.arch,
            size: self.size.clone(),
            kernel: self.kernel.clone(),
            init: self.init.clone(),
            system_programs: self.no_system_programs.then_some(false),
            compression: self.compression,
            firmware: self.firmware.clone(),
            sealed_slots: None,
            kernel_args: self.kernel_args.clone(),
            programs,
            network: None,
            update: None,
            fragment_kernel_for_tests: self.fragment_kernel_for_tests,
        };
        Ok(base.override_with(flags))
    }
}

pub(crate) fn parse_forward(text: &str) -> Result<(u16, u16), String> {
    let (host, guest) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected HOST:GUEST, two port numbers"))?;
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{p:?} is not a port number (1-65535)"))
    };
    Ok((port(host)?, port(guest)?))
}
