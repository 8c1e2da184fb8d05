//! The root image of an appliance plan: its programs built (init picked among them), the
//! instance's /etc files, and the SquashFS image holding them (`rootfs`) with its dm-verity
//! hash tree behind it (`verity`), identical in both slots. What mkimg writes and push
//! uploads.

use crate::cargo_build::{self, Builder};
use crate::config::{Plan, Settings};
use crate::elf;
use crate::instance::Instance;
use crate::rootfs::{self, EtcFile, Program};
use anyhow::{bail, ensure, Result};
use boot::layout;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A root image and what went into it.
pub struct Root {
    /// The SquashFS image, padded to whole verity blocks, then its hash tree.
    pub image: Vec<u8>,
    /// The tree, as the slot's command line names it.
    pub verity: crate::verity::Tree,
    /// The image's SHA-256 (one part of the slot's build id, see `boot::rootid`).
    pub sha256: [u8; 32],
    pub init: Program,
    pub programs: Vec<Program>,
}

impl Root {
    /// The image as a part of a slot: length and SHA-256.
    pub fn part(&self) -> boot::rootid::Part {
        boot::rootid::Part {
            bytes: self.image.len() as u64,
            sha256: self.sha256,
        }
    }
}

/// Builds the programs of `plan` and the SquashFS root image holding them with the
/// instance's /etc files: what mkimg writes into both slots and push uploads.
pub fn build(plan: &Plan, instance: &Instance) -> Result<Root> {
    let arch = instance.arch;
    let network = plan.network.as_ref().map(|n| n.render()).transpose()?;
    let channel = plan.update.as_ref().map(|u| u.render()).transpose()?;
    ensure!(
        channel.is_none() || plan.sealed_slots != Some(false),
        "[update] with sealed_slots = false: a device checks a channel's manifests with the keys its root trusts, and this root trusts none; drop one of the two"
    );
    // 2. Programs.
    let builder = Builder {
        arch,
        cache: cargo_build::cache_dir(),
    };
    let (init, programs, settings) = gather_programs(plan, &builder)?;
    for p in std::iter::once(&init).chain(&programs) {
        elf::check_static_executable(&p.path, arch)?;
    }

    // 3. Root image contents and the root image itself.
    let mut etc = etc_files(instance, &programs, &init, &settings)?;
    if plan.sealed_slots != Some(false) {
        etc.push(EtcFile {
            path: boot::seal::TRUST_PATH.trim_start_matches('/').to_string(),
            data: instance.slot_keys.clone().into_bytes(),
            mode: 0o644,
        });
    }
    for (path, text) in [
        (boot::network::PATH, network),
        (boot::channel::PATH, channel),
    ] {
        if let Some(text) = text {
            etc.push(EtcFile {
                path: path.trim_start_matches('/').to_string(),
                data: text.into_bytes(),
                mode: 0o644,
            });
        }
    }
    let limit = boot::rootid::image_bytes_max(&layout::ROOT_A).unwrap_or(0);
    let mut root_image = rootfs::build(
        &rootfs::Contents {
            init: &init,
            programs: &programs,
            etc: &etc,
            symlinks: &[("etc/resolv.conf", "/run/resolv.conf")],
            time_unix: instance.created_unix,
            compression: plan.compression.unwrap_or_default(),
        },
        limit,
    )?;
    let verity = crate::verity::append_tree(&mut root_image);
    ensure!(
        root_image.len() as u64 <= limit,
        "the root image with its hash tree is {} but a root partition holds {}; drop or shrink programs",
        crate::size::human(root_image.len() as u64),
        crate::size::human(limit)
    );
    let sha256: [u8; 32] = Sha256::digest(&root_image).into();
    Ok(Root {
        image: root_image,
        verity,
        sha256,
        init,
        programs,
    })
}

/// Builds every program and picks init. Returns (init, other programs, settings by name).
fn gather_programs(
    plan: &Plan,
    builder: &Builder,
) -> Result<(Program, Vec<Program>, BTreeMap<String, Settings>)> {
    let with_system = plan.system_programs.unwrap_or(true);
    let default_init = plan.init.is_none();
    let mut system: Vec<&str> = Vec::new();
    if default_init {
        system.push(cargo_build::INIT);
    }
    if with_system {
        system.extend(cargo_build::SYSTEM_PROGRAMS);
    }
    // (program, where it came from) for error messages.
    let mut all: Vec<(Program, String)> = Vec::new();
    let mut settings = BTreeMap::new();
    if !system.is_empty() {
        for p in builder.build_system(&system)? {
            if system.contains(&p.name.as_str()) {
                // link and admind run the machine: root, and the last to go when memory
                // runs out.
                if cargo_build::SYSTEM_PROGRAMS.contains(&p.name.as_str()) {
                    settings.insert(p.name.clone(), system_settings());
                }
                all.push((p, "rustkrazy".into()));
            }
        }
    }
    for spec in &plan.programs {
        for p in builder.build(&spec.source)? {
            settings.insert(p.name.clone(), spec.settings.clone());
            all.push((p, format!("{:?}", spec.source)));
        }
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (p, origin) in &all {
        ensure!(
            boot::services::valid_service_name(p.name.as_bytes()),
            "program name {:?} is not usable in /bin (letters, digits, '.', '_', '-'; at most 64)",
            p.name
        );
        if let Some(first) = seen.insert(&p.name, origin) {
            bail!(
                "two programs are named {:?} ({first} and {origin}); give one another name with --bin FILE=NAME",
                p.name
            );
        }
    }
    let init_name = plan.init.as_deref().unwrap_or(cargo_build::INIT);
    let Some(index) = all.iter().position(|(p, _)| p.name == init_name) else {
        let names: Vec<&str> = all.iter().map(|(p, _)| p.name.as_str()).collect();
        bail!(
            "--init {init_name:?} names no program in the image (programs: {})",
            names.join(", ")
        );
    };
    let (init, _) = all.remove(index);
    let programs = all.into_iter().map(|(p, _)| p).collect();
    Ok((init, programs, settings))
}

/// What rustkrazy's own programs are given in the services file.
fn system_settings() -> Settings {
    Settings {
        autostart: true,
        user: Some(0),
        oom: Some(boot::sandbox::OOM_SYSTEM),
        ..Settings::default()
    }
}

/// The services file's lines for one program's confinement (`boot::services`).
fn confinement_lines(name: &str, s: &Settings) -> String {
    let mut lines = String::new();
    match s.user {
        Some(0) => lines.push_str(&format!("{name} user root\n")),
        Some(id) => lines.push_str(&format!("{name} user {id}\n")),
        None => {}
    }
    if !s.caps.is_empty() {
        lines.push_str(&format!("{name} caps {}\n", s.caps.join(" ")));
    }
    if let Some(bytes) = s.memory_bytes {
        lines.push_str(&format!("{name} memory {bytes}\n"));
    }
    if let Some(n) = s.tasks {
        lines.push_str(&format!("{name} tasks {n}\n"));
    }
    if let Some(adj) = s.oom {
        lines.push_str(&format!("{name} oom {adj}\n"));
    }
    if let Some(check) = &s.ready {
        lines.push_str(&format!("{name} ready {check}\n"));
    }
    lines
}

/// Refuses an image in which two programs would share a user without both asking for it:
/// they could signal each other and read each other's files.
fn check_users(programs: &[Program], settings: &BTreeMap<String, Settings>) -> Result<()> {
    let mut users: BTreeMap<u32, (&str, bool)> = BTreeMap::new();
    for program in programs {
        let given = settings.get(&program.name).and_then(|s| s.user);
        let uid = given.unwrap_or_else(|| boot::sandbox::default_uid(program.name.as_bytes()));
        if uid == 0 {
            continue;
        }
        if let Some((other, other_given)) = users.insert(uid, (&program.name, given.is_some())) {
            ensure!(
                other_given && given.is_some(),
                "programs {other:?} and {:?} would both run as user {uid}; give one of them `user = N` (another number) in the appliance file",
                program.name
            );
        }
    }
    Ok(())
}

/// /etc in the root image.
fn etc_files(
    instance: &Instance,
    programs: &[Program],
    init: &Program,
    settings: &BTreeMap<String, Settings>,
) -> Result<Vec<EtcFile>> {
    let mut services =
        String::from("# Written by imgtool mkimg; read by init. Format: see boot::services.\n");
    // By name: cargo reports programs in the order they finish building, and the same
    // source must make the same image.
    let mut by_name: Vec<&Program> = programs.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    for program in by_name {
        let Some(s) = settings.get(&program.name) else {
            continue;
        };
        for arg in &s.args {
            ensure!(
                boot::services::valid_value(arg.as_bytes()),
                "{}: argument {arg:?} holds a newline or NUL",
                program.name
            );
            services.push_str(&format!("{} arg {arg}\n", program.name));
        }
        for (key, value) in &s.env {
            ensure!(
                !key.is_empty()
                    && !key.contains('=')
                    && boot::services::valid_value(key.as_bytes())
                    && boot::services::valid_value(value.as_bytes()),
                "{}: environment variable {key:?} is not valid",
                program.name
            );
            services.push_str(&format!("{} env {key}={value}\n", program.name));
        }
        if !s.autostart {
            services.push_str(&format!("{} autostart no\n", program.name));
        }
        services.push_str(&confinement_lines(&program.name, s));
    }
    check_users(programs, settings)?;
    ensure!(
        services.len() <= boot::services::FILE_BYTES_MAX,
        "the programs' settings take {} bytes, more than the {} init reads ({}); give fewer arguments or shorter ones",
        services.len(),
        boot::services::FILE_BYTES_MAX,
        boot::services::PATH
    );
    // Read back with init's parser, so a line init would skip fails here instead.
    if let Some(Err(e)) = boot::services::parse(services.as_bytes()).find(|e| e.is_err()) {
        bail!("the services file would not be read as written ({e:?}):\n{services}");
    }
    if settings.contains_key(&init.name) && settings[&init.name] != Settings::default() {
        eprintln!(
            "note: settings for {} are ignored: it runs as /bin/init",
            init.name
        );
    }
    let file = |path: &str, data: Vec<u8>, mode: u16| EtcFile {
        path: path.to_string(),
        data,
        mode,
    };
    Ok(vec![
        file(
            "etc/hostname",
            format!("{}\n", instance.hostname).into_bytes(),
            0o644,
        ),
        // Root's alone (init and admind read it): programs' environments may hold secrets,
        // and each program runs as a user of its own.
        file(
            boot::services::PATH.trim_start_matches('/'),
            services.into_bytes(),
            0o600,
        ),
        file(
            boot::password::PATH.trim_start_matches('/'),
            instance.password_hash_line()?.into_bytes(),
            0o600,
        ),
    ])
}
