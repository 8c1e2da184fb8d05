//! `imgtool`: builds rustkrazy appliance images. A thin command line over the library.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{
    Cli, Command, ForgetArgs, KernelArgs, KeyAction, KeyArgs, LogsArgs, MkimgArgs, PublishArgs,
    PushArgs, QemuArgs, RemoteArgs, SealArgs,
};
use imgtool::size;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mkimg(args) => mkimg(args),
        Command::Kernel(args) => kernel(args),
        Command::Push(args) => push(args),
        Command::Publish(args) => publish(args),
        Command::Status(args) => status(args),
        Command::Logs(args) => logs(args),
        Command::Reboot(args) => reboot(args),
        Command::Qemu(args) => qemu(args),
        Command::Key(args) => key(args),
        Command::Seal(args) => seal(args),
        Command::Forget(args) => forget(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imgtool: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn seal(args: SealArgs) -> Result<()> {
    let dir = args
        .instance
        .unwrap_or_else(|| imgtool::instance::default_dir("rustkrazy"));
    let seal = imgtool::slot_keys::seal_files(
        &dir,
        &args.root,
        &args.kernel,
        &args.cmdline,
        args.allow_older,
    )?;
    println!("{seal}");
    Ok(())
}

fn forget(args: ForgetArgs) -> Result<()> {
    let dir = args
        .instance
        .unwrap_or_else(|| imgtool::instance::default_dir("rustkrazy"));
    let instance = imgtool::instance::Instance::open_existing(&dir)?;
    let address = imgtool::client::address(&instance, Some(&args.to));
    let mut known = imgtool::known_devices::KnownDevices::open(&dir)?;
    anyhow::ensure!(
        known.forget(&address)?,
        "{} pins no key for {address}",
        known.path().display()
    );
    eprintln!("imgtool: forgot the key of {address}; the next contact pins the key it shows then");
    Ok(())
}

fn key(args: KeyArgs) -> Result<()> {
    let dir = args
        .instance
        .unwrap_or_else(|| imgtool::instance::default_dir("rustkrazy"));
    match args.action {
        KeyAction::List => print!("{}", imgtool::slot_keys::list(&dir)?),
        KeyAction::New => eprintln!("key: {}", imgtool::slot_keys::new_key(&dir)?),
        KeyAction::Rotate => eprintln!("key: {}", imgtool::slot_keys::rotate(&dir)?),
    }
    Ok(())
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

fn publish(args: PublishArgs) -> Result<()> {
    let mut plan = args.build.plan()?;
    let dir = args.build.instance.clone().unwrap_or_else(|| {
        imgtool::instance::default_dir(plan.hostname.as_deref().unwrap_or("rustkrazy"))
    });
    let instance = imgtool::instance::Instance::open_existing(&dir)?;
    if plan.kernel_args.is_empty() {
        plan.kernel_args = instance.kernel_args.clone();
    }
    let options = imgtool::publish::Options {
        channel: args.channel.clone(),
        rollout: args.rollout,
        keep: args.keep.map(|k| k as usize),
    };
    let r = imgtool::publish::publish(&plan, &instance, &options)?;
    let share = |n: u64| 100.0 * n as f64 / (r.root_bytes + r.kernel_bytes) as f64;
    eprintln!(
        "publish: release {}: root {} bytes, kernel {} bytes, {} chunks, {} new ({} bytes, {:.1}% of the slot); indexes {} bytes ({:.2}% of the slot); in {}",
        r.version,
        r.root_bytes,
        r.kernel_bytes,
        r.chunks,
        r.new_chunks,
        r.new_bytes,
        share(r.new_bytes),
        r.index_bytes,
        share(r.index_bytes),
        args.channel.display()
    );
    if let Some(p) = &r.pruned {
        eprintln!(
            "publish: pruned {} releases and {} files ({} bytes) no kept release names",
            p.releases, p.files, p.bytes
        );
    }
    Ok(())
}

fn push(args: PushArgs) -> Result<()> {
    if args.release.is_some() && args.build.describes_a_slot() {
        anyhow::bail!("--release pushes a published slot as it is: program flags, --kernel, --kernel-arg and --config do not apply (publish with them instead)");
    }
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
        allow_older: args.allow_older,
        release: args.release.clone(),
    };
    let started = std::time::Instant::now();
    let t = imgtool::push::push(&plan, &instance, &options)?;
    if options.release.is_none() {
        instance.set_kernel_args(&plan.kernel_args)?;
    }
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
    let answer = args.client()?.get(admin_api::endpoints::STATUS)?;
    if args.json {
        println!("{}", answer.json()?);
    } else {
        print!("{}", imgtool::status_text::render(&answer.document()?));
    }
    Ok(())
}

fn logs(args: LogsArgs) -> Result<()> {
    let client = args.remote.client()?;
    let stream = if args.stderr { "stderr" } else { "stdout" };
    let answer = client.get(&format!(
        "{}?service={}&stream={stream}",
        admin_api::endpoints::LOGS,
        args.service
    ))?;
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
    client.post(admin_api::endpoints::REBOOT, b"")?.json()?;
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
            Machine::Arm64Virt | Machine::Raspi => imgtool::qemu::AAVMF,
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
        board: args.board,
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
    if machine == Machine::Raspi {
        let status = imgtool::qemu::run_raspi(&args.image, &options)?;
        anyhow::ensure!(
            status.success(),
            "qemu exited with {status}{}",
            match args.board {
                imgtool::qemu::Board::Pi4B =>
                    " (if QEMU does not know raspi4b: it needs QEMU 9.0 or later, which \
                     ci/install-deps installs; --board 3b runs on older ones)",
                imgtool::qemu::Board::Pi3B => "",
            }
        );
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
