//! `imgtool`: builds rustkrazy appliance images. A thin command line over the library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use imgtool::config::{Arch, Plan, ProgramSpec, Settings, Source};
use imgtool::size;
use std::path::{Path, PathBuf};
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
    /// Build (or find in the cache) a kernel with rustkrazy's config; prints its path.
    Kernel(KernelArgs),
    /// Update a running appliance over the network: build, upload, try, commit (or report
    /// the rollback).
    Push(PushArgs),
    /// Show what a running appliance says about itself.
    Status(RemoteArgs),
    /// Print a service's log from a running appliance.
    Logs(LogsArgs),
    /// Reboot a running appliance.
    Reboot(RemoteArgs),
    /// Boot an image in QEMU (BIOS, virtio disk, serial console here, admind port forwarded).
    Qemu(QemuArgs),
}

#[derive(Args)]
struct QemuArgs {
    /// The image to boot (its writes persist).
    image: PathBuf,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    memory: u32,
    /// Host port forwarded to admind (port 8443 in the guest) [default: a free port].
    #[arg(long)]
    port: Option<u16>,
    /// Also forward 127.0.0.1:HOST to the guest's TCP port GUEST (repeatable).
    #[arg(long, value_name = "HOST:GUEST", value_parser = parse_forward)]
    forward: Vec<(u16, u16)>,
    /// Exit QEMU when the guest reboots.
    #[arg(long)]
    no_reboot: bool,
    /// The serial console alone on stdin/stdout, no QEMU monitor (for programs to drive).
    #[arg(long, hide = true)]
    serial_only: bool,
    /// Boot an x86_64 image as a UEFI machine (OVMF, q35), through the image's UEFI boot
    /// program, instead of as a BIOS machine through its MBR code (aarch64 images always
    /// boot through UEFI).
    #[arg(long)]
    uefi: bool,
}

#[derive(Args)]
struct PushArgs {
    /// The device: HOST or HOST:PORT [default: the instance's hostname, port 8443].
    #[arg(long)]
    to: Option<String>,
    /// Seconds to wait for the device to come back after its reboot.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Also replace the boot partition's shared files (config.txt, firmware) and the MBR
    /// code, after the slot is committed. Not A/B-safe: see README. (Kernel and command line
    /// go with every push, into the new slot.)
    #[arg(long)]
    boot: bool,
    #[command(flatten)]
    build: BuildArgs,
}

#[derive(Args)]
struct RemoteArgs {
    /// Instance folder of the appliance [default: ~/.config/rustkrazy/rustkrazy].
    #[arg(long)]
    instance: Option<PathBuf>,
    /// The device: HOST or HOST:PORT [default: the instance's hostname, port 8443].
    #[arg(long)]
    to: Option<String>,
    /// Print admind's JSON as it is.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LogsArgs {
    /// The program whose output to show (its name in /bin).
    service: String,
    /// Show stderr instead of stdout.
    #[arg(long)]
    stderr: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

impl RemoteArgs {
    fn client(&self) -> Result<imgtool::client::Client> {
        let dir = self
            .instance
            .clone()
            .unwrap_or_else(|| imgtool::instance::default_dir("rustkrazy"));
        let instance = imgtool::instance::Instance::open_existing(&dir)?;
        imgtool::client::Client::new(&instance, self.to.as_deref())
    }
}

#[derive(Args)]
struct KernelArgs {
    /// Machine to build for.
    #[arg(long, value_enum, default_value = "x86_64")]
    arch: Arch,
    /// Kernel source: a tarball or an unpacked tree [default: Debian's /usr/src/linux-source-*.tar.xz].
    #[arg(long, value_name = "TARBALL_OR_DIR")]
    source: Option<PathBuf>,
    /// Also copy the kernel here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct MkimgArgs {
    /// Image file to create, or a block device to overwrite (e.g. /dev/sdb).
    target: PathBuf,
    #[command(flatten)]
    build: BuildArgs,
}

/// What goes into an image: shared by mkimg and push.
#[derive(Args)]
struct BuildArgs {
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
    /// Kernel image for both slots' /boot/slot-*-vmlinuz (x86_64 bzImage, or arm64 Image for rpi) [default: `imgtool kernel`'s].
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
    /// Append a word to the kernel command line (e.g. rustkrazy.trial_timeout=120). Repeatable.
    #[arg(long = "kernel-arg", value_name = "ARG")]
    kernel_args: Vec<String>,
    /// Leave out rustkrazy's link (network) and admind (management) programs.
    #[arg(long)]
    no_system_programs: bool,
    /// Tests only: write /boot/vmlinuz in fragments (mkimg must then refuse the image).
    #[arg(long, hide = true)]
    fragment_kernel_for_tests: bool,
}

impl BuildArgs {
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
            kernel_args: self.kernel_args.clone(),
            programs,
            network: None,
            fragment_kernel_for_tests: self.fragment_kernel_for_tests,
        };
        Ok(base.override_with(flags))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mkimg(args) => mkimg(args),
        Command::Kernel(args) => kernel(args),
        Command::Push(args) => push(args),
        Command::Status(args) => status(args),
        Command::Logs(args) => logs(args),
        Command::Reboot(args) => reboot(args),
        Command::Qemu(args) => qemu(args),
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
    let plan = args.build.plan()?;
    let report = imgtool::mkimg::run(plan, &args.target, args.build.instance.clone())?;
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

fn push(args: PushArgs) -> Result<()> {
    let mut plan = args.build.plan()?;
    let dir = args.build.instance.clone().unwrap_or_else(|| {
        imgtool::instance::default_dir(plan.hostname.as_deref().unwrap_or("rustkrazy"))
    });
    let mut instance = imgtool::instance::Instance::open_existing(&dir)?;
    // Without --kernel-arg (or kernel_args in the appliance file), the new slot boots with
    // the arguments the device boots with now.
    if plan.kernel_args.is_empty() {
        plan.kernel_args = instance.kernel_args.clone();
    }
    let options = imgtool::push::Options {
        to: args.to.clone(),
        timeout: std::time::Duration::from_secs(args.timeout),
        boot: args.boot,
    };
    let started = std::time::Instant::now();
    let t = imgtool::push::push(&plan, &instance, &options)?;
    instance.set_kernel_args(&plan.kernel_args)?;
    eprintln!(
        "push: done in {:.1} s: build {:.1} s, upload {:.1} s ({:.1} MB/s), reboot {:.1} s, wait for the new boot {:.1} s, commit {:.2} s",
        started.elapsed().as_secs_f64(),
        t.build.as_secs_f64(),
        t.upload.as_secs_f64(),
        t.bytes as f64 / 1e6 / t.upload.as_secs_f64().max(0.001),
        t.reboot.as_secs_f64(),
        t.wait.as_secs_f64(),
        t.commit.as_secs_f64()
    );
    if options.boot {
        eprintln!(
            "push: boot update: upload {:.1} s, reboot and wait {:.1} s",
            t.boot_upload.as_secs_f64(),
            t.boot_reboot_and_wait.as_secs_f64()
        );
    }
    Ok(())
}

fn status(args: RemoteArgs) -> Result<()> {
    let client = args.client()?;
    let answer = client.get("/status")?;
    if args.json {
        println!("{}", answer.json()?);
        return Ok(());
    }
    let v: admin_api::status::Status = answer.document()?;
    let shown = |n: Option<u8>| n.map_or("?".to_string(), |n| n.to_string());
    println!("hostname  {}", v.hostname);
    println!("uptime    {} s", v.uptime_s);
    println!("clock     {}", describe_clock(&v.clock));
    if let Some(boot) = &v.boot {
        let from = boot.from.map(|f| format!(" (from root {f})"));
        println!(
            "boot      root {}, {}{}",
            shown(v.active_slot),
            boot.state,
            from.unwrap_or_default()
        );
    }
    if v.uncommitted_trial {
        println!("trial     uncommitted: it rolls back unless committed");
    }
    if let Some(r) = &v.record {
        println!(
            "record    committed root {}, next boot root {} ({})",
            r.committed, r.next_boot, r.state
        );
    }
    for (slot, root) in &v.roots {
        let build = root
            .build
            .as_deref()
            .unwrap_or("none (incomplete: no verified root, kernel and command line)");
        let mark = if Some(*slot) == v.active_slot {
            " (running)"
        } else {
            ""
        };
        println!("root {slot}    build {build}{mark}");
        println!(
            "  kernel  {}",
            root.kernel_version.as_deref().unwrap_or("none")
        );
        println!(
            "  cmdline {}",
            root.cmdline_text.as_deref().unwrap_or("?").trim_end()
        );
    }
    println!(
        "memory    {} kB available of {} kB",
        v.memory.available_kb, v.memory.total_kb
    );
    for s in &v.services {
        println!(
            "service   {} pid {} {} rss {} kB restarts {}",
            s.name,
            s.pid.map_or("null".into(), |p| p.to_string()),
            s.state,
            s.rss_kb,
            s.restarts.map_or("null".into(), |r| r.to_string())
        );
    }
    Ok(())
}

/// One line about the device's clock from `/status`.
fn describe_clock(c: &admin_api::status::Clock) -> String {
    let now = boot::clock::Utc(c.now_s).to_string();
    match c.synchronised {
        Some(true) => format!(
            "{now}, synchronised with {} (stratum {}, offset {} ms at the last poll)",
            c.server.as_deref().unwrap_or("?"),
            c.stratum.map_or("?".into(), |s| s.to_string()),
            c.offset_ms.map_or("?".into(), |o| o.to_string())
        ),
        Some(false) => format!("{now}, not synchronised yet"),
        None => format!("{now}, not kept by a time server"),
    }
}

fn logs(args: LogsArgs) -> Result<()> {
    let client = args.remote.client()?;
    let stream = if args.stderr { "stderr" } else { "stdout" };
    let answer = client.get(&format!("/logs?service={}&stream={stream}", args.service))?;
    anyhow::ensure!(
        answer.status == 200,
        "admind answered {}: {}",
        answer.status,
        answer.error_text()
    );
    use std::io::Write;
    std::io::stdout().write_all(&answer.body)?;
    Ok(())
}

fn reboot(args: RemoteArgs) -> Result<()> {
    let client = args.client()?;
    client.post("/reboot", b"")?.json()?;
    eprintln!("{} is rebooting", client.target);
    Ok(())
}

fn kernel(args: KernelArgs) -> Result<()> {
    let built = imgtool::kernel_build::build(
        args.arch,
        args.source.as_deref(),
        &imgtool::cargo_build::cache_dir(),
    )?;
    let path = match args.out {
        Some(out) => {
            std::fs::copy(&built, &out)
                .map_err(|e| anyhow::anyhow!("cannot copy the kernel to {}: {e}", out.display()))?;
            out
        }
        None => built,
    };
    println!("{}", path.display());
    Ok(())
}

fn parse_forward(text: &str) -> Result<(u16, u16), String> {
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

fn qemu(args: QemuArgs) -> Result<()> {
    use anyhow::Context;
    anyhow::ensure!(args.image.is_file(), "no image at {}", args.image.display());
    let port = match args.port {
        Some(p) => p,
        None => imgtool::qemu::free_port()?,
    };
    use imgtool::qemu::{Firmware, Machine};
    let machine = Machine::of_image(&args.image)?;
    let firmware = if args.uefi || machine == Machine::Arm64Virt {
        let file = match machine {
            Machine::X86_64 => imgtool::qemu::OVMF,
            Machine::Arm64Virt | Machine::Raspi3b => imgtool::qemu::AAVMF,
        };
        anyhow::ensure!(
            Path::new(file).is_file(),
            "booting through UEFI needs {file}: apt-get install {}",
            machine.packages()
        );
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let options = imgtool::qemu::Options {
        machine,
        firmware,
        memory_mib: args.memory,
        admind_host_port: port,
        forwards: args.forward.clone(),
        no_reboot: args.no_reboot,
        interactive: !args.serial_only,
        tap: None,
    };
    eprintln!("qemu: admind is forwarded to https://127.0.0.1:{port}/ ; quit with ctrl-a x");
    for (host, guest) in &args.forward {
        eprintln!("qemu: 127.0.0.1:{host} is forwarded to the guest's port {guest}");
    }
    if machine == Machine::Raspi3b {
        let status = imgtool::qemu_raspi::run(&args.image, &options)?;
        anyhow::ensure!(status.success(), "qemu exited with {status}");
        return Ok(());
    }
    let status = imgtool::qemu::command(&args.image, &options)?
        .status()
        .with_context(|| {
            format!(
                "cannot run {} (apt-get install {})",
                machine.qemu(),
                machine.packages()
            )
        })?;
    anyhow::ensure!(status.success(), "qemu exited with {status}");
    Ok(())
}
