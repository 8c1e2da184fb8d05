//! `imgtool`: builds rustkrazy appliance images. A thin command line over the library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use imgtool::config::{Arch, Plan, ProgramSpec, Settings, Source};
use imgtool::size;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "imgtool",
    version,
    about = "Turn Rust programs into appliance images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an appliance disk image into a (sparse) file or onto a block device.
    Mkimg(MkimgArgs),
}

#[derive(Args)]
struct MkimgArgs {
    /// Image file to create, or a block device to overwrite (e.g. /dev/sdb).
    target: PathBuf,
    /// Appliance file (TOML); flags given here override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Instance folder: secrets and identity kept across builds [default: ~/.config/rustkrazy/HOSTNAME]
    #[arg(long)]
    instance: Option<PathBuf>,
    /// Machine to build for.
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// Image size with unit, e.g. 2G or 1536M [default: the instance's last size, else 2G; a block device's own size].
    #[arg(long)]
    size: Option<String>,
    /// Kernel image for /boot/vmlinuz (x86_64 bzImage, or arm64 Image for rpi).
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Hostname of the appliance [default: rustkrazy].
    #[arg(long)]
    hostname: Option<String>,
    /// Folder whose files are copied into /boot (e.g. Raspberry Pi firmware).
    #[arg(long)]
    firmware: Option<PathBuf>,
    /// Add a crate from crates.io: NAME or NAME@VERSION. Repeatable.
    #[arg(long = "crate", value_name = "NAME[@VERSION]")]
    crates: Vec<String>,
    /// Add a crate from git: URL or URL%CRATE. Repeatable.
    #[arg(long = "git", value_name = "URL[%CRATE]")]
    gits: Vec<String>,
    /// Add a local crate or workspace. Repeatable.
    #[arg(long = "path", value_name = "DIR")]
    paths: Vec<PathBuf>,
    /// Add a prebuilt static binary, optionally renamed. Repeatable.
    #[arg(long = "bin", value_name = "FILE[=NAME]")]
    bins: Vec<String>,
    /// Program that becomes /bin/init [default: rustkrazy's init].
    #[arg(long, value_name = "NAME")]
    init: Option<String>,
    /// Leave out rustkrazy's link (network) and admind (management) programs.
    #[arg(long)]
    no_system_programs: bool,
}

impl MkimgArgs {
    fn plan(&self) -> Result<Plan> {
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
            firmware: self.firmware.clone(),
            programs,
        };
        Ok(base.override_with(flags))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mkimg(args) => mkimg(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imgtool: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn mkimg(args: MkimgArgs) -> Result<()> {
    let plan = args.plan()?;
    let report = imgtool::mkimg::run(plan, &args.target, args.instance.clone())?;
    eprintln!(
        "wrote {}: {}, disk signature {:08x}, root image {}, /data {} in {} groups; programs: {}",
        args.target.display(),
        size::human(report.size_bytes),
        report.disk_signature,
        size::human(report.root_bytes),
        size::human(report.data.blocks * 4096),
        report.data.groups,
        report.programs.join(", ")
    );
    println!("{}", args.target.display());
    Ok(())
}
