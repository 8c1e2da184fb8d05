//! What an image is made of: the appliance file (`--config appliance.toml`) merged with the
//! command line, flags winning.
//!
//! ```toml
//! hostname = "thermostat"
//! arch = "x86_64"            # or "aarch64" (arm64 UEFI machines), "rpi" (64-bit Pi 3/4)
//! size = "2G"
//! kernel = "vmlinuz"         # paths are relative to this file
//! init = "init"              # which program becomes /bin/init (default: rustkrazy's init)
//! system_programs = true     # include link and admind
//! compression = "gzip"      # the roots' SquashFS compressor: "gzip" (default) or "lz4"
//! firmware = "rpi-firmware"  # a folder whose files are copied into /boot
//! kernel_args = ["rustkrazy.trial_timeout=120"]  # appended to the kernel command line
//!
//! [[programs]]
//! crate = "ripgrep@14.1.0"   # or git = "URL%CRATE", path = "DIR", bin = "FILE"
//! name = "rg"                # only with bin: the name in /bin
//! args = ["--version"]
//! env = { RUST_LOG = "info" }
//! autostart = true
//! user = "root"              # or a user id; default: a user of its own (boot::sandbox)
//! caps = ["net_bind_service"] # capabilities it keeps as that user; default: none
//! memory = "256M"            # memory limit; default: half the RAM
//! tasks = 64                 # processes and threads at once; default: 1024
//! ready = "http 80 /"        # or "tcp 80", "running 10": when a trial may commit (boot::readiness)
//!
//! [update]                   # follow a release channel (imgtool publish; boot::channel)
//! channel = "https://192.0.2.7:8443/stable"  # an IP address: the device has no DNS resolver
//! pin = "sha256//..."        # the server's key (curl --pinnedpubkey spelling)
//! poll = 3600                # seconds between checks; jitter = up to this many more
//! jitter = 600
//! window = "02:00-05:00"     # optional: reboot into an update only then (UTC)
//! ```

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The machines an image can be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    #[value(name = "x86_64")]
    X86_64,
    /// arm64 machines that boot through UEFI (servers, QEMU's `virt`, many boards).
    #[serde(rename = "aarch64")]
    #[value(name = "aarch64")]
    Aarch64,
    #[serde(rename = "rpi")]
    #[value(name = "rpi")]
    Rpi,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Rpi => "rpi",
        }
    }

    pub fn parse(name: &str) -> Result<Arch> {
        match name {
            "x86_64" => Ok(Arch::X86_64),
            "aarch64" => Ok(Arch::Aarch64),
            "rpi" => Ok(Arch::Rpi),
            _ => bail!("unknown arch {name:?}; use x86_64, aarch64 or rpi"),
        }
    }

    /// What a slot's seal names (`boot::seal`).
    pub fn seal_arch(self) -> boot::seal::Arch {
        match self {
            Arch::X86_64 => boot::seal::Arch::X86_64,
            Arch::Aarch64 => boot::seal::Arch::Aarch64,
            Arch::Rpi => boot::seal::Arch::Rpi,
        }
    }

    /// The Rust target programs are built for.
    pub fn target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 | Arch::Rpi => "aarch64-unknown-linux-musl",
        }
    }

    /// The Rust target and `/boot` path of rustkrazy's UEFI boot program (`boot/uefi`), for
    /// the architectures whose machines boot through UEFI (the Raspberry Pi does not).
    pub fn uefi(self) -> Option<(&'static str, &'static str)> {
        match self {
            Arch::X86_64 => Some(("x86_64-unknown-uefi", "EFI/BOOT/BOOTX64.EFI")),
            Arch::Aarch64 => Some(("aarch64-unknown-uefi", "EFI/BOOT/BOOTAA64.EFI")),
            Arch::Rpi => None,
        }
    }

    /// ELF `e_machine` of that target.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 | Arch::Rpi => 183,
        }
    }

    /// Kernel console arguments for the serial port and the screen.
    pub fn console_args(self) -> &'static str {
        match self {
            Arch::X86_64 => "console=tty1 console=ttyS0,115200",
            // The PL011 of QEMU's virt machine and of most arm64 servers.
            Arch::Aarch64 => "console=ttyAMA0,115200",
            // None: the kernel then takes the device tree's stdout-path, the UART on the
            // GPIO header (the mini UART on the Pi 3 and 4), which is also where
            // `console=serial0` points under the Foundation's kernels.
            Arch::Rpi => "",
        }
    }
}

/// The roots' SquashFS compressor; both are pure Rust here and built into our kernels.
/// Measured: LZ4 builds faster and the device reads it faster (init to admind listening
/// 0.27 s against 0.31 s under QEMU, `ci/bench-boot`), gzip roots are a fifth smaller
/// (23.3 MB against 29.5 MB for `ci/bench-mkimg`'s realistic payload). gzip stays the
/// default: a root partition holds a fixed 256 MiB and every push uploads the whole root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Lz4,
}

/// Where a program comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--crate NAME[@VERSION]`: from crates.io.
    Crate {
        name: String,
        version: Option<String>,
    },
    /// `--git URL[%CRATE]`: from a git repository, optionally one crate of a workspace.
    Git { url: String, krate: Option<String> },
    /// `--path DIR`: a local crate or workspace.
    Path(PathBuf),
    /// `--bin FILE[=NAME]`: a prebuilt static binary.
    Bin { file: PathBuf, name: Option<String> },
}

impl Source {
    pub fn parse_crate(spec: &str) -> Result<Source> {
        let (name, version) = match spec.split_once('@') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (spec, None),
        };
        if name.is_empty() || version.as_deref() == Some("") {
            bail!("--crate {spec:?}: write NAME or NAME@VERSION");
        }
        Ok(Source::Crate {
            name: name.to_string(),
            version,
        })
    }

    pub fn parse_git(spec: &str) -> Result<Source> {
        let (url, krate) = match spec.rsplit_once('%') {
            Some((u, c)) => (u, Some(c.to_string())),
            None => (spec, None),
        };
        if url.is_empty() || krate.as_deref() == Some("") {
            bail!("--git {spec:?}: write URL or URL%CRATE");
        }
        Ok(Source::Git {
            url: url.to_string(),
            krate,
        })
    }

    pub fn parse_bin(spec: &str) -> Result<Source> {
        let (file, name) = match spec.rsplit_once('=') {
            Some((f, n)) => (f, Some(n.to_string())),
            None => (spec, None),
        };
        if file.is_empty() || name.as_deref() == Some("") {
            bail!("--bin {spec:?}: write FILE or FILE=NAME");
        }
        Ok(Source::Bin {
            file: PathBuf::from(file),
            name,
        })
    }

    fn relative_to(self, base: &Path) -> Source {
        match self {
            Source::Path(p) => Source::Path(base.join(p)),
            Source::Bin { file, name } => Source::Bin {
                file: base.join(file),
                name,
            },
            other => other,
        }
    }
}

/// Per-program settings written into the image for init (see `boot::services`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub autostart: bool,
    /// `None`: the program's own user ([`boot::sandbox::default_uid`]); `Some(0)`: root.
    pub user: Option<u32>,
    pub caps: Vec<String>,
    pub memory_bytes: Option<u64>,
    pub tasks: Option<u32>,
    pub oom: Option<i16>,
    /// A readiness check as `boot::readiness` writes it.
    pub ready: Option<String>,
}

/// `user = "root"` or `user = 12345`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum User {
    Name(String),
    Id(u32),
}

/// A program to build and install, with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSpec {
    pub source: Source,
    pub settings: Settings,
}

/// The appliance file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplianceFile {
    hostname: Option<String>,
    arch: Option<Arch>,
    size: Option<String>,
    kernel: Option<PathBuf>,
    init: Option<String>,
    system_programs: Option<bool>,
    compression: Option<Compression>,
    firmware: Option<PathBuf>,
    sealed_slots: Option<bool>,
    #[serde(default)]
    kernel_args: Vec<String>,
    #[serde(default)]
    programs: Vec<ProgramEntry>,
    network: Option<NetworkTable>,
    update: Option<UpdateTable>,
}

/// `[update]`: the release channel the device follows (`boot::channel`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTable {
    pub channel: String,
    pub pin: String,
    pub poll: Option<u32>,
    pub jitter: Option<u32>,
    pub window: Option<String>,
}

impl UpdateTable {
    /// The file admind reads, checked with admind's parser.
    pub fn render(&self) -> Result<String> {
        let mut text = String::from(
            "# Written by imgtool mkimg; read by admind. Format: see boot::channel.\n",
        );
        text.push_str(&format!("url {}\npin {}\n", self.channel, self.pin));
        for (key, value) in [("poll", self.poll), ("jitter", self.jitter)] {
            if let Some(v) = value {
                text.push_str(&format!("{key} {v}\n"));
            }
        }
        if let Some(w) = &self.window {
            text.push_str(&format!("window {w}\n"));
        }
        if let Err(e) = boot::channel::parse(&text) {
            let what = match e.line {
                0 => String::new(),
                n => format!(" ({:?})", text.lines().nth(n - 1).unwrap_or("")),
            };
            bail!("[update]{what}: {}", e.reason);
        }
        Ok(text)
    }
}

/// `[network]`: what `link` configures (see `boot::network`). Without it, DHCP on every
/// Ethernet interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkTable {
    /// Interfaces to configure; empty: every Ethernet interface.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Static IPv4 address with prefix, e.g. "192.168.1.10/24", instead of DHCP.
    pub address: Option<String>,
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// Time servers (names or addresses); `[]` turns time synchronisation off. Without it:
    /// DHCP's time servers, else `boot::network::NTP_DEFAULT`.
    pub ntp: Option<Vec<String>>,
}

impl NetworkTable {
    /// The file `link` reads, checked with the parser `link` uses, so a mistake is reported
    /// here rather than on the device.
    pub fn render(&self) -> Result<String> {
        let mut text =
            String::from("# Written by imgtool mkimg; read by link. Format: see boot::network.\n");
        let mut add = |key: &str, value: &str| {
            if value.contains(['\n', '\0']) {
                bail!("[network] {key} {value:?}: no newlines");
            }
            text.push_str(&format!("{key} {value}\n"));
            Ok(())
        };
        for name in &self.interfaces {
            add("interface", name)?;
        }
        if let Some(a) = &self.address {
            add("address", a)?;
        }
        if let Some(g) = &self.gateway {
            add("gateway", g)?;
        }
        for d in &self.dns {
            add("dns", d)?;
        }
        match self.ntp.as_deref() {
            Some([]) => add("ntp", "off")?,
            Some(servers) => servers.iter().try_for_each(|n| add("ntp", n))?,
            None => {}
        }
        if let Err(e) = boot::network::parse(text.as_bytes()) {
            let what = match e.line {
                0 => String::new(),
                n => format!(" ({:?})", text.lines().nth(n - 1).unwrap_or("")),
            };
            bail!("[network]{what}: {}", e.reason);
        }
        Ok(text)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramEntry {
    #[serde(rename = "crate")]
    krate: Option<String>,
    git: Option<String>,
    path: Option<PathBuf>,
    bin: Option<PathBuf>,
    name: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    autostart: Option<bool>,
    user: Option<User>,
    #[serde(default)]
    caps: Vec<String>,
    memory: Option<String>,
    tasks: Option<u32>,
    ready: Option<String>,
}

impl ProgramEntry {
    fn into_spec(self, index: usize) -> Result<ProgramSpec> {
        let which = format!("programs[{index}]");
        let source = match (self.krate, self.git, self.path, self.bin) {
            (Some(c), None, None, None) => Source::parse_crate(&c)?,
            (None, Some(g), None, None) => Source::parse_git(&g)?,
            (None, None, Some(p), None) => Source::Path(p),
            (None, None, None, Some(file)) => Source::Bin {
                file,
                name: self.name.clone(),
            },
            _ => bail!("{which}: give exactly one of crate, git, path, bin"),
        };
        if self.name.is_some() && !matches!(source, Source::Bin { .. }) {
            bail!("{which}: name is only for bin (crates are named by their binaries)");
        }
        let user = match self.user {
            None => None,
            Some(User::Name(name)) if name == "root" => Some(0),
            Some(User::Name(name)) => bail!(
                "{which}: user {name:?}: give \"root\" or a user id (a number); the default is a user of the program's own"
            ),
            Some(User::Id(u32::MAX)) => bail!("{which}: user 4294967295 is no user (it is -1)"),
            Some(User::Id(id)) => Some(id),
        };
        let memory_bytes = match &self.memory {
            Some(text) => Some(
                crate::size::parse(text).with_context(|| format!("{which}: memory {text:?}"))?,
            ),
            None => None,
        };
        if self.tasks == Some(0) || memory_bytes == Some(0) {
            bail!("{which}: a limit of 0 would stop the program from starting");
        }
        if let Some(n @ 1..) = self.tasks.filter(|&n| n > boot::sandbox::TASKS_MAX) {
            bail!(
                "{which}: tasks = {n} is more than the kernel allows ({})",
                boot::sandbox::TASKS_MAX
            );
        }
        if self.ready.is_some() && self.autostart == Some(false) {
            bail!("{which}: a program that is not started on boot (autostart = false) can never be ready; remove one of the two");
        }
        for cap in &self.caps {
            if boot::sandbox::capability_set(cap.as_bytes())
                .map_or(true, |set| set.count_ones() != 1)
            {
                bail!(
                    "{which}: {cap:?} is not a capability; use lower-case names without CAP_ (e.g. \"net_bind_service\")"
                );
            }
        }
        if let Some(check) = &self.ready {
            if boot::readiness::parse(check).is_none() {
                bail!(
                    "{which}: ready {check:?} is not a check; use \"tcp PORT\", \"http PORT /PATH\" or \"running SECONDS\" (1-3600)"
                );
            }
        }
        let settings = Settings {
            args: self.args,
            env: self.env,
            autostart: self.autostart.unwrap_or(true),
            user,
            caps: self.caps,
            memory_bytes,
            tasks: self.tasks,
            oom: None,
            ready: self.ready,
        };
        Ok(ProgramSpec { source, settings })
    }
}

/// Everything `mkimg` needs to know, after merging file and flags.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub hostname: Option<String>,
    pub arch: Option<Arch>,
    pub size: Option<String>,
    pub kernel: Option<PathBuf>,
    pub init: Option<String>,
    pub system_programs: Option<bool>,
    pub compression: Option<Compression>,
    pub firmware: Option<PathBuf>,
    /// `Some(false)`: roots carry no trust file, and the device arms unsealed slots (for the
    /// original rustkrazy's curl calls). Default: sealed slots only.
    pub sealed_slots: Option<bool>,
    /// Words appended to the kernel command line of both roots.
    pub kernel_args: Vec<String>,
    pub programs: Vec<ProgramSpec>,
    /// From the appliance file only.
    pub network: Option<NetworkTable>,
    pub update: Option<UpdateTable>,
    /// Tests only: make /boot/vmlinuz fragmented, to prove mkimg refuses such an image.
    pub fragment_kernel_for_tests: bool,
}

impl Plan {
    /// Reads an appliance file; relative paths in it are taken from its folder.
    pub fn from_file(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: ApplianceFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid appliance file", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let programs = file
            .programs
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.into_spec(i).map(|s| ProgramSpec {
                    source: s.source.relative_to(base),
                    ..s
                })
            })
            .collect::<Result<_>>()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(Plan {
            hostname: file.hostname,
            arch: file.arch,
            size: file.size,
            kernel: file.kernel.map(|k| base.join(k)),
            init: file.init,
            system_programs: file.system_programs,
            compression: file.compression,
            firmware: file.firmware.map(|f| base.join(f)),
            sealed_slots: file.sealed_slots,
            kernel_args: file.kernel_args,
            programs,
            network: file.network,
            update: file.update,
            fragment_kernel_for_tests: false,
        })
    }

    /// Applies command-line values on top: set scalars replace, programs are added.
    pub fn override_with(mut self, flags: Plan) -> Plan {
        self.hostname = flags.hostname.or(self.hostname);
        self.arch = flags.arch.or(self.arch);
        self.size = flags.size.or(self.size);
        self.kernel = flags.kernel.or(self.kernel);
        self.init = flags.init.or(self.init);
        self.system_programs = flags.system_programs.or(self.system_programs);
        self.compression = flags.compression.or(self.compression);
        self.firmware = flags.firmware.or(self.firmware);
        self.sealed_slots = flags.sealed_slots.or(self.sealed_slots);
        self.kernel_args.extend(flags.kernel_args);
        self.network = flags.network.or(self.network);
        self.update = flags.update.or(self.update);
        self.programs.extend(flags.programs);
        self.fragment_kernel_for_tests |= flags.fragment_kernel_for_tests;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_program_specs() {
        assert_eq!(
            Source::parse_crate("ripgrep@14.1.0").unwrap(),
            Source::Crate {
                name: "ripgrep".into(),
                version: Some("14.1.0".into())
            }
        );
        assert_eq!(
            Source::parse_crate("hello").unwrap(),
            Source::Crate {
                name: "hello".into(),
                version: None
            }
        );
        assert_eq!(
            Source::parse_git("https://example.org/r.git%tool").unwrap(),
            Source::Git {
                url: "https://example.org/r.git".into(),
                krate: Some("tool".into())
            }
        );
        assert_eq!(
            Source::parse_bin("out/app=web").unwrap(),
            Source::Bin {
                file: "out/app".into(),
                name: Some("web".into())
            }
        );
        for bad in ["", "@1", "x@"] {
            assert!(Source::parse_crate(bad).is_err(), "{bad}");
        }
        assert!(Source::parse_bin("app=").is_err());
        assert!(Source::parse_git("u%").is_err());
    }

    #[test]
    fn reads_an_appliance_file_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("rk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("appliance.toml");
        std::fs::write(
            &path,
            r#"
hostname = "box"
arch = "rpi"
size = "4G"
kernel = "k/Image"
[[programs]]
bin = "out/app"
name = "web"
args = ["-v", "a b"]
env = { K = "v" }
autostart = false
user = "root"
[[programs]]
crate = "hello@1"
caps = ["net_bind_service"]
memory = "64M"
tasks = 32
ready = "http 8080 /healthz"
"#,
        )
        .unwrap();
        let plan = Plan::from_file(&path).unwrap();
        assert_eq!(plan.arch, Some(Arch::Rpi));
        assert_eq!(plan.kernel, Some(dir.join("k/Image")));
        assert_eq!(
            plan.programs[0].source,
            Source::Bin {
                file: dir.join("out/app"),
                name: Some("web".into())
            }
        );
        assert_eq!(plan.programs[0].settings.args, ["-v", "a b"]);
        assert!(!plan.programs[0].settings.autostart);
        assert!(plan.programs[1].settings.autostart);
        assert_eq!(plan.programs[0].settings.user, Some(0));
        let confined = &plan.programs[1].settings;
        assert_eq!(confined.user, None, "its own user by default");
        assert_eq!(confined.caps, ["net_bind_service"]);
        assert_eq!(
            (confined.memory_bytes, confined.tasks),
            (Some(64 << 20), Some(32))
        );
        assert_eq!(confined.ready.as_deref(), Some("http 8080 /healthz"));
        for (bad, says) in [
            ("user = \"nobody\"", "give \"root\" or a user id"),
            ("caps = [\"CAP_NET_RAW\"]", "is not a capability"),
            ("caps = [\"net_raw kill\"]", "is not a capability"),
            ("memory = \"lots\"", "memory \"lots\""),
            ("tasks = 0", "a limit of 0"),
            ("ready = \"tcp eighty\"", "is not a check"),
            (
                "ready = \"tcp 80\"\nautostart = false",
                "can never be ready",
            ),
            ("tasks = 4194305", "more than the kernel allows"),
            ("user = 4294967295", "is no user"),
        ] {
            std::fs::write(&path, format!("[[programs]]\ncrate = \"x\"\n{bad}\n")).unwrap();
            let e = format!("{:#}", Plan::from_file(&path).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }

        let flags = Plan {
            size: Some("8G".into()),
            programs: vec![plan.programs[1].clone()],
            ..Plan::default()
        };
        let merged = plan.override_with(flags);
        assert_eq!(merged.size.as_deref(), Some("8G"));
        assert_eq!(merged.hostname.as_deref(), Some("box"));
        assert_eq!(merged.programs.len(), 3);

        std::fs::write(
            &path,
            "[network]\ninterfaces = [\"eth0\"]\naddress = \"10.1.2.3/16\"\ndns = [\"10.1.0.1\"]\n",
        )
        .unwrap();
        let text = Plan::from_file(&path)
            .unwrap()
            .network
            .unwrap()
            .render()
            .unwrap();
        assert!(
            text.ends_with("interface eth0\naddress 10.1.2.3/16\ndns 10.1.0.1\n"),
            "{text}"
        );
        for (ntp, rendered) in [
            ("ntp = []", "ntp off\n"),
            (
                "ntp = [\"pool.ntp.org\", \"10.0.0.1\"]",
                "ntp pool.ntp.org\nntp 10.0.0.1\n",
            ),
        ] {
            std::fs::write(&path, format!("[network]\n{ntp}\n")).unwrap();
            let text = Plan::from_file(&path)
                .unwrap()
                .network
                .unwrap()
                .render()
                .unwrap();
            assert!(text.ends_with(rendered), "{ntp}: {text}");
        }
        for (bad, says) in [
            ("address = \"10.1.2.3/16\"", "exactly one interface"),
            (
                "interfaces = [\"eth0\"]\naddress = \"10.1.2.3\"",
                "a.b.c.d/prefix",
            ),
            ("dns = [\"1.1.1.1\"]", "only go with a static address"),
            ("gateway = \"1.1.1.1\\naddress x\"", "no newlines"),
            ("ntp = [\"bad name\"]", "a time server is a host name"),
            (
                "ntp = [\"a\", \"b\", \"c\", \"d\"]",
                "at most 3 time servers",
            ),
        ] {
            std::fs::write(&path, format!("[network]\n{bad}\n")).unwrap();
            let err = format!(
                "{:#}",
                Plan::from_file(&path)
                    .unwrap()
                    .network
                    .unwrap()
                    .render()
                    .unwrap_err()
            );
            assert!(err.contains(says), "{bad}: {err}");
        }

        std::fs::write(&path, "hostnme = \"typo\"\n").unwrap();
        let err = format!("{:#}", Plan::from_file(&path).unwrap_err());
        assert!(err.contains("hostnme"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
