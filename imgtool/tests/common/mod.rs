//! Helpers for imgtool's end-to-end tests: scratch folders, fake inputs, running tools.
#![allow(dead_code)]

use boot::layout::Slot;
use boot::record::{Copies, Record, COPY_OFFSETS};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const MIB: u64 = 1 << 20;
/// Byte offsets of the partitions, as documented in boot::layout.
pub const BOOT_OFFSET: u64 = MIB;
pub const ROOT_A_OFFSET: u64 = 257 * MIB;
pub const ROOT_B_OFFSET: u64 = 513 * MIB;
pub const DATA_OFFSET: u64 = 769 * MIB;

/// A scratch folder removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("imgtool-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Something shaped like an x86 bzImage (boot signature, "HdrS", protocol 2.15, loaded high,
/// a header that describes its length) with about `len` bytes of pseudo-random payload;
/// enough for mkimg's checks, not for booting.
pub fn fake_bzimage(path: &Path, len: usize) {
    let mut data = pseudo_random(len, 7);
    data[0x1f1] = 4;
    data[0x1fe] = 0x55;
    data[0x1ff] = 0xaa;
    data[0x202..0x206].copy_from_slice(b"HdrS");
    data[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    data[0x211] = 1;
    // Lengths in whole 16-byte paragraphs after 5 sectors, as the header describes them.
    let len = 5 * 512 + (len.saturating_sub(5 * 512) / 16) * 16;
    data.truncate(len);
    data[0x1f4..0x1f8].copy_from_slice(&((len as u32 - 5 * 512) / 16).to_le_bytes());
    std::fs::write(path, data).unwrap();
}

/// A minimal static x86_64 ELF executable (one PT_LOAD, no PT_INTERP) that exits 0, followed
/// by `padding` bytes of pseudo-random data.
pub fn tiny_static_elf(path: &Path, padding: usize, seed: u64) {
    tiny_static_elf_for(path, padding, seed, "x86_64");
}

/// [`tiny_static_elf`] for `arch` ("x86_64" or "aarch64").
pub fn tiny_static_elf_for(path: &Path, padding: usize, seed: u64, arch: &str) {
    let (machine, code): (u16, &[u8]) = match arch {
        // mov eax, 60; xor edi, edi; syscall
        "x86_64" => (
            62,
            &[0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05, 0x90, 0x90, 0x90],
        ),
        // mov x8, #93; mov x0, #0; svc #0
        "aarch64" => (
            183,
            &[
                0xa8, 0x0b, 0x80, 0xd2, 0x00, 0x00, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
            ],
        ),
        other => panic!("no tiny ELF for {other}"),
    };
    let mut elf = vec![0u8; 120];
    elf[0..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1; // version
    elf[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
    elf[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    elf[0x18..0x20].copy_from_slice(&(0x400000u64 + 120).to_le_bytes()); // entry
    elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // phoff
    elf[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // phentsize
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // phnum
    let ph = &mut elf[64..120];
    ph[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    ph[4..8].copy_from_slice(&5u32.to_le_bytes()); // R+X
    ph[16..24].copy_from_slice(&0x400000u64.to_le_bytes()); // vaddr
    ph[32..40].copy_from_slice(&(132u64).to_le_bytes()); // filesz
    ph[40..48].copy_from_slice(&(132u64).to_le_bytes()); // memsz
    elf.extend_from_slice(code);
    elf.extend(pseudo_random(padding, seed));
    std::fs::write(path, elf).unwrap();
    set_executable(path);
}

pub fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Deterministic incompressible bytes (xorshift64).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn imgtool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imgtool"))
}

/// Runs a command and returns its output; panics with its stderr if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed? see .ci/run)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mkimg` with a fake kernel and only the given extra arguments (no cargo builds unless the
/// arguments ask for them).
pub fn mkimg_cmd(scratch: &Scratch, image: &Path, extra: &[&str]) -> Command {
    let kernel = scratch.path("bzImage");
    if !kernel.exists() {
        fake_bzimage(&kernel, 3 << 20);
    }
    let mut cmd = imgtool();
    cmd.arg("mkimg")
        .arg("--instance")
        .arg(scratch.path("instance"))
        .arg("--kernel")
        .arg(&kernel);
    cmd.args(extra).arg(image);
    cmd
}

/// A small image with tiny programs only: fast, no cargo builds.
pub fn small_image(scratch: &Scratch, image: &Path, size: &str) {
    let app = scratch.path("app");
    if !app.exists() {
        tiny_static_elf(&app, 1000, 1);
    }
    let bin = format!("{}=init", app.display());
    run_ok(&mut mkimg_cmd(
        scratch,
        image,
        &[
            "--size",
            size,
            "--no-system-programs",
            "--bin",
            &bin,
            "--init",
            "init",
        ],
    ));
}

/// Copies `len` bytes at `offset` of `image` into a new file (for tools without an offset option).
pub fn extract(image: &Path, offset: u64, len: u64, out: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    let mut src = std::fs::File::open(image).unwrap();
    src.seek(SeekFrom::Start(offset)).unwrap();
    let mut dst = std::fs::File::create(out).unwrap();
    std::io::copy(&mut src.take(len), &mut dst).unwrap();
}

/// e2fsck -fn on the /data partition of an image; returns its output.
pub fn e2fsck_data(image: &Path) -> String {
    let spec = format!("{}?offset={DATA_OFFSET}", image.display());
    let out = run_ok(Command::new("e2fsck").arg("-fn").arg(&spec));
    format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr))
}

/// `fsck.vfat -n` on the boot partition of an image must find nothing to fix.
pub fn assert_boot_partition_clean(scratch: &Scratch, image: &Path) {
    let p1 = scratch.path("p1");
    extract(image, BOOT_OFFSET, 256 * MIB, &p1);
    let fsck = Command::new("fsck.vfat")
        .arg("-n")
        .arg(&p1)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

/// `unsquashfs -cat` of one file in the root image at `offset`.
pub fn squashfs_cat(image: &Path, offset: u64, path: &str) -> String {
    stdout(&run_ok(
        Command::new("unsquashfs")
            .arg("-o")
            .arg(offset.to_string())
            .arg("-cat")
            .arg(image)
            .arg(path),
    ))
}

/// `unsquashfs -s` (the superblock, compressor included) of the root image at `offset`.
pub fn squashfs_superblock(image: &Path, offset: u64) -> String {
    stdout(&run_ok(
        Command::new("unsquashfs")
            .arg("-s")
            .arg("-o")
            .arg(offset.to_string())
            .arg(image),
    ))
}

/// `unsquashfs -lln` of the root image at `offset`.
pub fn squashfs_list(image: &Path, offset: u64) -> String {
    stdout(&run_ok(
        Command::new("unsquashfs")
            .arg("-o")
            .arg(offset.to_string())
            .arg("-lln")
            .arg(image),
    ))
}

/// The test programs, built once for the appliance's target.
pub fn testsvc() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/testsvc/Cargo.toml");
        run_ok(
            Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--release",
                    "--target",
                    "x86_64-unknown-linux-musl",
                    "--manifest-path",
                ])
                .arg(&manifest),
        );
        manifest
            .parent()
            .unwrap()
            .join("target/x86_64-unknown-linux-musl/release")
    })
}

/// The default kernel (`imgtool kernel`: built once, then cached outside the checkout).
pub fn default_kernel() -> &'static PathBuf {
    static KERNEL: OnceLock<PathBuf> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let out = run_ok(imgtool().arg("kernel"));
        PathBuf::from(stdout(&out).trim())
    })
}

/// The default kernel made into another one without a second build: its version string
/// says `tag` instead of its first characters, and 4 KiB of zeros (declared in `syssize`,
/// past the compressed payload the decompressor is told about) change its length.
pub fn retagged_kernel(tag: &str, out: &Path) {
    let mut k = std::fs::read(default_kernel()).unwrap();
    let at = u16::from_le_bytes([k[0x20e], k[0x20f]]) as usize + 0x200;
    k[at..at + tag.len()].copy_from_slice(tag.as_bytes());
    let syssize = u32::from_le_bytes(k[0x1f4..0x1f8].try_into().unwrap()) + 4096 / 16;
    k[0x1f4..0x1f8].copy_from_slice(&syssize.to_le_bytes());
    k.extend_from_slice(&[0u8; 4096]);
    std::fs::write(out, k).unwrap();
}

/// The default appliance (rustkrazy's programs, the default kernel) in a 1 GiB image whose
/// trial boots end after `trial_s` seconds unless committed.
pub fn default_image(scratch: &Scratch, image: &Path, trial_s: u32) {
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(scratch.path("instance"))
            .args(["--size", "1G", "--kernel-arg"])
            .arg(format!("rustkrazy.trial_timeout={trial_s}"))
            .arg(image),
    );
}

/// `imgtool COMMAND` for the scratch instance's device, reached on 127.0.0.1:`port`.
pub fn remote(scratch: &Scratch, port: u16, command: &str) -> Command {
    let mut cmd = imgtool();
    cmd.arg(command)
        .arg("--instance")
        .arg(scratch.path("instance"))
        .arg("--to")
        .arg(format!("127.0.0.1:{port}"));
    cmd
}

/// The key imgtool pinned for the device at `address` (HOST:PORT), as curl takes it.
pub fn pinned_key(scratch: &Scratch, address: &str) -> Option<String> {
    let known = std::fs::read_to_string(scratch.path("instance/known-devices")).ok()?;
    let prefix = format!("{address} ");
    known
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|pin| pin.trim().to_string())
}

/// curl's arguments that trust exactly the key of the device on 127.0.0.1:`port`, as imgtool
/// pinned it (`imgtool status` pins it first if nothing has yet).
pub fn curl_trust(scratch: &Scratch, port: u16) -> [String; 3] {
    let address = format!("127.0.0.1:{port}");
    if pinned_key(scratch, &address).is_none() {
        run_ok(&mut remote(scratch, port, "status"));
    }
    let pin = pinned_key(scratch, &address).expect("imgtool status pins the device's key");
    ["-k".into(), "--pinnedpubkey".into(), pin]
}

/// An image with rustkrazy's init (and link, admind) plus the named test programs.
pub fn image_with(s: &Scratch, name: &str, programs: &[&str], config: Option<&str>) -> PathBuf {
    let image = s.path(name);
    let mut cmd = imgtool();
    cmd.arg("mkimg")
        .arg("--instance")
        .arg(s.path("instance"))
        .args(["--size", "1G"]);
    for p in programs {
        cmd.arg("--bin").arg(testsvc().join(p));
    }
    if let Some(text) = config {
        std::fs::write(s.path("appliance.toml"), text).unwrap();
        cmd.arg("--config").arg(s.path("appliance.toml"));
    }
    run_ok(cmd.arg(&image));
    image
}

/// Every process from admind's `/proc/top` on 127.0.0.1:`port`, fetched with curl:
/// name -> (CPU ticks, RSS kB).
pub fn top(s: &Scratch, port: u16) -> std::collections::HashMap<String, (u64, u64)> {
    let password = std::fs::read_to_string(s.path("instance/password")).unwrap();
    let out = run_ok(
        Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "30"])
            .args(curl_trust(s, port))
            .arg("-u")
            .arg(format!("rustkrazy:{password}"))
            .arg(format!("https://127.0.0.1:{port}/proc/top")),
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_string();
            let figures = (
                p["cpu_ticks"].as_u64().unwrap(),
                p["rss_kb"].as_u64().unwrap(),
            );
            (name, figures)
        })
        .collect()
}

/// A finished command's stdout then stderr, for messages and for checking what it said.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Checks that `imgtool push` succeeded and committed root `slot`; returns what it said.
/// `console` (the device's) goes into the message when it did not.
pub fn assert_push_committed(out: &Output, slot: u8, console: &str) -> String {
    let said = text(out);
    assert!(out.status.success(), "push failed:\n{said}\n{console}");
    assert!(
        said.contains(&format!("push: root {slot} committed")),
        "{said}"
    );
    said
}

/// `imgtool status` for the device on 127.0.0.1:`port`, asked each second until admind
/// answers; fails after `timeout`.
pub fn status_when_up(scratch: &Scratch, port: u16, timeout: std::time::Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let out = remote(scratch, port, "status").output().unwrap();
        if out.status.success() {
            return stdout(&out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "admind never answered: {}",
            text(&out)
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The dm-verity parameters a slot's command line gives its root: (data blocks, root hash).
pub fn verity_params(cmdline: &str) -> (u64, String) {
    let table = cmdline
        .split_once(" verity 1 ")
        .unwrap_or_else(|| panic!("no dm-verity table in {cmdline:?}"))
        .1;
    let words: Vec<&str> = table.split_whitespace().collect();
    // data_dev hash_dev data_block hash_block data_blocks hash_start algorithm root salt
    assert_eq!((words[2], words[3], words[6]), ("4096", "4096", "sha256"));
    assert_eq!(words[4], words[5], "the tree follows the data: {table}");
    (words[4].parse().unwrap(), words[7].to_string())
}

/// `veritysetup verify` (Debian's cryptsetup-bin) of the root partition at `offset` of
/// `image`, against the root hash its slot's command line carries: the kernel's own format,
/// checked by a tool we did not write. Err: what veritysetup said.
pub fn veritysetup_verify(image: &Path, offset: u64, cmdline: &str) -> Result<(), String> {
    let (blocks, hash) = verity_params(cmdline);
    let part = image.with_extension(format!("root-{offset}"));
    extract(image, offset, 256 * MIB, &part);
    let out = Command::new("veritysetup")
        .args(["verify", "--no-superblock", "--hash=sha256", "--salt=-"])
        .arg(format!("--data-blocks={blocks}"))
        .arg(format!("--hash-offset={}", blocks * 4096))
        .arg(&part)
        .arg(&part)
        .arg(&hash)
        .output()
        .unwrap_or_else(|e| panic!("cannot run veritysetup: {e} (see .ci/run)"));
    let _ = std::fs::remove_file(&part);
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// How a power cut can leave the copy being written.
#[derive(Clone, Copy, Debug)]
pub enum Torn {
    /// The new sector's first half over the old one's second.
    FirstHalf,
    /// The old sector's first half, the new one's second.
    SecondHalf,
    Zeros,
}

/// Leaves copy 1 of the record as a write of a newer record (slot A armed) torn `how`.
pub fn tear_copy_1(image: &std::path::Path, how: Torn) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut old = [0u8; 512];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut old, boot::record::COPY_OFFSETS[0])
        .unwrap();
    let new = boot::record::Record::INITIAL.arm().encode(1000);
    let mut torn = old;
    match how {
        Torn::FirstHalf => torn[..256].copy_from_slice(&new[..256]),
        Torn::SecondHalf => torn[256..].copy_from_slice(&new[256..]),
        Torn::Zeros => torn = [0; 512],
    }
    std::os::unix::fs::FileExt::write_all_at(&file, &torn, boot::record::COPY_OFFSETS[0]).unwrap();
}

/// Both copies of the boot record in `image`.
pub fn read_copies(image: &Path) -> Copies {
    let file = std::fs::File::open(image).unwrap();
    let mut sectors = [[0u8; 512]; 2];
    for (sector, at) in sectors.iter_mut().zip(COPY_OFFSETS) {
        file.read_exact_at(sector, at).unwrap();
    }
    Copies::read([&sectors[0], &sectors[1]])
}

/// Writes `record` into both copies, newer than what they held.
pub fn write_record(image: &Path, record: Record) {
    let sequence = read_copies(image).newest.map_or(0, |(_, _, s)| s) + 1;
    let file = std::fs::OpenOptions::new().write(true).open(image).unwrap();
    for at in COPY_OFFSETS {
        file.write_all_at(&record.encode(sequence), at).unwrap();
    }
}

/// Where slot `slot`'s command line lies, as the MBR table of `image` says.
pub fn cmdline_at(image: &std::fs::File, slot: Slot) -> u64 {
    let mut mbr = [0u8; 512];
    image.read_exact_at(&mut mbr, 0).unwrap();
    let table = boot::mbr::Table::read(&mbr).expect("a filled MBR table");
    u64::from(table.cmdline_lba[slot.index()]) * 512
}

/// Adds `word` to slot `partition`'s command line, in place, where the MBR table says it is.
pub fn add_to_cmdline(image: &Path, slot: Slot, word: &str) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let at = cmdline_at(&file, slot);
    let mut sector = [0u8; 512];
    file.read_exact_at(&mut sector, at).unwrap();
    let text = String::from_utf8_lossy(boot::slot::cmdline_text(&sector)).into_owned();
    let mut new = format!("{} {word}\n", text.trim_end()).into_bytes();
    new.resize(512, 0);
    file.write_all_at(&new, at).unwrap();
}
