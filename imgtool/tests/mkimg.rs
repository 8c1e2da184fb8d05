//! `imgtool mkimg` end to end: images read back by the standard tools (sfdisk, fsck.vfat,
//! mtools, unsquashfs, e2fsck, openssl), mounted by the running Linux kernel, and refused
//! inputs that leave nothing behind.

mod common;

use common::*;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// The full default image: rustkrazy's own programs (built with cargo) plus a user program.
#[test]
fn image_is_read_back_by_standard_tools() {
    let s = Scratch::new("readback");
    let image = s.path("a.img");
    tiny_static_elf(&s.path("hello"), 5000, 3);
    let out = run_ok(&mut mkimg_cmd(
        &s,
        &image,
        &[
            "--size",
            "2G",
            "--hostname",
            "box",
            "--bin",
            &s.path("hello").display().to_string(),
        ],
    ));
    assert_eq!(
        stdout(&out).trim(),
        image.display().to_string(),
        "stdout names the image"
    );

    // Partition table.
    let dump = stdout(&run_ok(Command::new("sfdisk").arg("--dump").arg(&image)));
    let sig = std::fs::read_to_string(s.path("instance/instance.toml")).unwrap();
    let sig = sig
        .lines()
        .find_map(|l| l.strip_prefix("disk_signature = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    assert!(dump.contains(&format!("label-id: 0x{sig}")), "{dump}");
    let expect = [
        "a.img1 : start=        2048, size=      524288, type=c, bootable",
        "a.img2 : start=      526336, size=      524288, type=83",
        "a.img3 : start=     1050624, size=      524288, type=83",
        // 2 GiB - 769 MiB = 1279 MiB = 2619392 sectors
        "a.img4 : start=     1574912, size=     2619392, type=83",
    ];
    let parts: Vec<&str> = dump
        .lines()
        .filter(|l| l.contains(" : start="))
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(parts, expect, "{dump}");

    // Boot partition: clean, files byte-identical, cmdline names root A by PARTUUID.
    let p1 = s.path("p1");
    extract(&image, BOOT_OFFSET, 256 * MIB, &p1);
    let fsck = run_ok(Command::new("fsck.vfat").arg("-n").arg(&p1));
    assert!(
        !stdout(&fsck).contains("uninitialized"),
        "{}",
        stdout(&fsck)
    );
    let listing = stdout(&run_ok(Command::new("mdir").arg("-i").arg(&p1).arg("::")));
    for name in [
        "slot-a-vmlinuz",
        "slot-b-vmlinuz",
        "slot-a-cmdline.txt",
        "slot-b-cmdline.txt",
    ] {
        assert!(listing.contains(name), "{name} missing:\n{listing}");
    }
    // The UEFI boot program, in the removable-media path, is the one boot/uefi builds, with
    // the keys the instance's roots trust in its key table (boot::uefi_keys).
    let efi = run_ok(
        Command::new("mtype")
            .arg("-i")
            .arg(&p1)
            .arg("::EFI/BOOT/BOOTX64.EFI"),
    )
    .stdout;
    let built = imgtool::cargo_build::workspace_dir()
        .join("target/uefi/x86_64-unknown-uefi/release/rustkrazy-uefi.efi");
    let built = std::fs::read(&built).unwrap();
    let at = boot::uefi_keys::find(&built).expect("the built program has a key table");
    let end = at + boot::uefi_keys::TABLE_BYTES;
    assert!(
        efi.len() == built.len() && efi[..at] == built[..at] && efi[end..] == built[end..],
        "/boot/EFI/BOOT/BOOTX64.EFI differs from the built program outside its key table"
    );
    let table: &[u8; boot::uefi_keys::TABLE_BYTES] = efi[at..end].try_into().unwrap();
    let (_, held) = boot::uefi_keys::newest(boot::uefi_keys::copies(table)).unwrap();
    let slot_keys = std::fs::read_to_string(s.path("instance/slot-keys")).unwrap();
    let trusted = admin_api::seal::trusted_keys(&slot_keys).unwrap();
    assert_eq!(trusted.len(), 1, "{slot_keys}");
    assert_eq!(
        held.as_slice(),
        trusted.as_slice(),
        "the program holds the instance's key"
    );
    // Each slot's kernel file is its whole region: the kernel, then zeros.
    let kernel = std::fs::read(s.path("bzImage")).unwrap();
    for name in ["::slot-a-vmlinuz", "::slot-b-vmlinuz"] {
        let back = run_ok(Command::new("mtype").arg("-i").arg(&p1).arg(name)).stdout;
        assert_eq!(back.len() as u64, boot::slot::KERNEL_REGION_BYTES, "{name}");
        assert!(
            back[..kernel.len()] == kernel[..],
            "{name} differs from the kernel given"
        );
        assert!(
            back[kernel.len()..].iter().all(|&b| b == 0),
            "{name}: zeros after the kernel"
        );
    }
    let mtype = |name: &str| {
        let raw = run_ok(Command::new("mtype").arg("-i").arg(&p1).arg(name)).stdout;
        String::from_utf8_lossy(boot::slot::cmdline_text(&raw)).into_owned()
    };
    // Each slot boots its root through dm-verity, and veritysetup accepts each root with
    // the root hash from its command line (and refuses it once a byte changes).
    let cmdline = mtype("::slot-a-cmdline.txt");
    let cmdline_b = mtype("::slot-b-cmdline.txt");
    assert!(
        cmdline.contains(&format!("verity 1 PARTUUID={sig}-02 PARTUUID={sig}-02 "))
            && cmdline.contains(" root=/dev/dm-0 "),
        "{cmdline}"
    );
    assert!(
        cmdline_b.contains(&format!("verity 1 PARTUUID={sig}-03 PARTUUID={sig}-03 ")),
        "slot B boots root B: {cmdline_b}"
    );
    assert!(
        cmdline.contains("init=/bin/init") && cmdline.contains("rootwait"),
        "{cmdline}"
    );
    veritysetup_verify(&image, ROOT_A_OFFSET, &cmdline).unwrap();
    veritysetup_verify(&image, ROOT_B_OFFSET, &cmdline_b).unwrap();
    let flipped = s.path("flipped.img");
    std::fs::copy(&image, &flipped).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&flipped)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, ROOT_A_OFFSET + 5000).unwrap();
    file.write_all_at(&[byte[0] ^ 1], ROOT_A_OFFSET + 5000)
        .unwrap();
    let refused = veritysetup_verify(&flipped, ROOT_A_OFFSET, &cmdline);
    assert!(
        refused.is_err(),
        "veritysetup accepted a root with a changed byte"
    );

    // Both roots: programs 0755, mount points, /etc.
    for offset in [ROOT_A_OFFSET, ROOT_B_OFFSET] {
        let list = squashfs_list(&image, offset);
        for program in ["init", "link", "admind", "hello"] {
            let line = list
                .lines()
                .find(|l| l.ends_with(&format!("squashfs-root/bin/{program}")));
            let line = line.unwrap_or_else(|| panic!("/bin/{program} missing:\n{list}"));
            assert!(line.starts_with("-rwxr-xr-x 0/0"), "{line}");
        }
        for dir in ["boot", "data", "dev", "proc", "sys", "tmp", "run"] {
            assert!(
                list.lines()
                    .any(|l| l.starts_with("drwxr-xr-x")
                        && l.ends_with(&format!("squashfs-root/{dir}"))),
                "/{dir} missing:\n{list}"
            );
        }
        assert!(
            list.contains("squashfs-root/etc/resolv.conf -> /run/resolv.conf"),
            "{list}"
        );
        // Root's alone: the password hash, and the programs' settings (environments may
        // hold secrets; programs run as users of their own).
        for secret in ["etc/admind/password.hash", "etc/rustkrazy/services"] {
            assert!(
                list.lines()
                    .any(|l| l.starts_with("-rw------- 0/0") && l.ends_with(secret)),
                "{secret}: {list}"
            );
        }
        assert!(
            !list.contains("key.pem") && !list.contains("cert.pem"),
            "no TLS key in an image: each device makes its own\n{list}"
        );
    }
    let cat = |path: &str| squashfs_cat(&image, ROOT_A_OFFSET, path);
    assert_eq!(cat("etc/hostname"), "box\n");

    // /data.
    let fsck = e2fsck_data(&image);
    assert!(fsck.contains("11/"), "{fsck}");

    // Sparse: a 2 GiB image allocates only what was written (kernel, programs, metadata).
    let allocated = std::fs::metadata(&image).unwrap().blocks() * 512;
    assert!(
        allocated < 32 * MIB,
        "a 2 GiB image allocates {allocated} bytes"
    );
}

#[test]
fn instance_holds_the_secrets_and_keeps_them() {
    let s = Scratch::new("instance");
    let image = s.path("a.img");
    small_image(&s, &image, "800M");
    let dir = s.path("instance");
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("password"), 0o600);
    let password = std::fs::read_to_string(dir.join("password")).unwrap();
    assert!(
        password.len() >= 20 && password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{password:?}"
    );

    // Devices make their own TLS keys: the instance holds none.
    for old in ["admind-key.pem", "admind-cert.pem"] {
        assert!(!dir.join(old).exists(), "{old} made");
    }

    // The device gets the password through PBKDF2-HMAC-SHA256, not the password: check it
    // with openssl's own PBKDF2.
    let line = squashfs_cat(&image, ROOT_A_OFFSET, "etc/admind/password.hash");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (words.len(), words[0], words[1], words[2].len()),
        (4, "pbkdf2-sha256", "100000", 32),
        "{line}"
    );
    let password = std::fs::read_to_string(dir.join("password")).unwrap();
    let derived = stdout(&run_ok(Command::new("openssl").args([
        "kdf",
        "-keylen",
        "32",
        "-kdfopt",
        "digest:SHA256",
        "-kdfopt",
        &format!("pass:{password}"),
        "-kdfopt",
        &format!("hexsalt:{}", words[2]),
        "-kdfopt",
        &format!("iter:{}", words[1]),
        "PBKDF2",
    ])));
    assert_eq!(words[3], derived.trim().replace(':', "").to_lowercase());
    assert!(!line.contains(
        std::fs::read_to_string(dir.join("password"))
            .unwrap()
            .trim()
    ));

    // The slot-signing key stays in the instance: every root carries the keys it trusts
    // (the instance's, as openssl reads its public half), never the private key.
    let trusted = squashfs_cat(&image, ROOT_A_OFFSET, "etc/rustkrazy/slot-keys");
    assert_eq!(
        trusted,
        std::fs::read_to_string(dir.join("slot-keys")).unwrap()
    );
    let public = stdout(&run_ok(Command::new("sh").arg("-c").arg(format!(
        "openssl pkey -pubout -outform DER -in {} | tail -c 65 | openssl base64 -A",
        dir.join("slot-signing-key.pem").display()
    ))));
    assert!(
        trusted.contains(&format!("trust {}\n", public.trim())),
        "{trusted}"
    );
    let secret = std::fs::read_to_string(dir.join("slot-signing-key.pem")).unwrap();
    let secret_line = secret.lines().nth(2).unwrap();
    let bytes = std::fs::read(&image).unwrap();
    assert!(
        !bytes
            .windows(secret_line.len())
            .any(|w| w == secret_line.as_bytes()),
        "the slot-signing key is in the image"
    );
    // sealed_slots = false: roots without the trust file (the device then takes unsealed
    // slots).
    let unsealed = image_with(&s, "unsealed.img", &[], Some("sealed_slots = false\n"));
    let listing = squashfs_list(&unsealed, ROOT_A_OFFSET);
    assert!(listing.contains("etc/admind"), "{listing}");
    assert!(!listing.contains("slot-keys"), "{listing}");

    // A second build keeps every secret.
    let before: Vec<Vec<u8>> = ["password", "slot-signing-key.pem", "slot-keys"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    small_image(&s, &s.path("b.img"), "800M");
    let after: Vec<Vec<u8>> = ["password", "slot-signing-key.pem", "slot-keys"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);

    // The instance remembers its arch and refuses another.
    let out = mkimg_cmd(&s, &s.path("c.img"), &["--arch", "rpi"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("belongs to a x86_64 appliance"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn same_inputs_and_instance_give_identical_images() {
    let s = Scratch::new("repro");
    // The slots' seals carry a version: the build time, or SOURCE_DATE_EPOCH.
    tiny_static_elf(&s.path("app"), 1000, 1);
    let image = |name: &str| {
        let app = format!("{}=init", s.path("app").display());
        let args = [
            "--size",
            "1G",
            "--no-system-programs",
            "--bin",
            &app,
            "--init",
            "init",
        ];
        run_ok(mkimg_cmd(&s, &s.path(name), &args).env("SOURCE_DATE_EPOCH", "1800000000"));
    };
    image("a.img");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    image("b.img");
    let hash = |p: &Path| {
        stdout(&run_ok(Command::new("sha256sum").arg(p)))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(hash(&s.path("a.img")), hash(&s.path("b.img")));
}

/// /data at the sizes the issue names: the smallest, 1 GiB, 100 GiB (sparse) and a size that
/// is not a whole number of block groups; and the largest disk an MBR describes.
#[test]
fn data_partition_is_clean_at_many_sizes() {
    let s = Scratch::new("sizes");
    for (size, data_blocks) in [
        ("785M", 4096u64),
        ("1793M", 262144),
        ("103169M", 26214400),
        ("1000M", 59136),
        ("2047G", 0),
    ] {
        let image = s.path("x.img");
        small_image(&s, &image, size);
        let fsck = e2fsck_data(&image);
        if data_blocks > 0 {
            assert!(
                fsck.contains(&format!("/{data_blocks} blocks")),
                "{size}: {fsck}"
            );
        }
        std::fs::remove_file(&image).unwrap();
    }
}

/// The running kernel mounts /data read-write, takes files, and e2fsck is clean after.
#[test]
fn data_partition_mounts_and_takes_writes() {
    let s = Scratch::new("mount");
    let image = s.path("a.img");
    small_image(&s, &image, "1G");
    let mnt = s.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let opts = format!("loop,offset={DATA_OFFSET}");
    let mount = Command::new("mount")
        .args(["-t", "ext4", "-o", &opts])
        .arg(&image)
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(
        mount.status.success(),
        "mounting /data failed (this test needs root and loop devices): {}",
        String::from_utf8_lossy(&mount.stderr)
    );
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(mnt.join("a/b"))?;
        for i in 0..500 {
            std::fs::write(mnt.join(format!("a/b/f{i}")), format!("file {i}\n"))?;
        }
        std::fs::write(mnt.join("big"), pseudo_random(64 << 20, 5))?;
        Ok(())
    };
    let wrote = write();
    let umount = Command::new("umount").arg(&mnt).output().unwrap();
    wrote.unwrap();
    assert!(
        umount.status.success(),
        "{}",
        String::from_utf8_lossy(&umount.stderr)
    );
    let fsck = e2fsck_data(&image);
    // 11 reserved inodes + a, a/b, 500 files, big.
    assert!(fsck.contains("514/"), "{fsck}");
    let listing = stdout(&run_ok(
        Command::new("debugfs")
            .arg("-R")
            .arg("cat /a/b/f499")
            .arg(format!("{}?offset={DATA_OFFSET}", image.display())),
    ));
    assert_eq!(listing, "file 499\n");
}

#[test]
fn appliance_file_settings_reach_the_image() {
    let s = Scratch::new("config");
    tiny_static_elf(&s.path("web"), 10, 4);
    tiny_static_elf(&s.path("myinit"), 10, 5);
    std::fs::write(
        s.path("appliance.toml"),
        r#"
hostname = "thermostat"
size = "900M"
init = "myinit"
system_programs = false
compression = "lz4"
[[programs]]
bin = "web"
args = ["--listen", "[::]:80"]
env = { RUST_LOG = "debug" }
caps = ["net_bind_service"]
memory = "64M"
tasks = 16
[[programs]]
bin = "myinit"
[[programs]]
bin = "web"
name = "batch"
autostart = false
"#,
    )
    .unwrap();
    let image = s.path("a.img");
    let mut cmd = mkimg_cmd(
        &s,
        &image,
        &[
            "--config",
            &s.path("appliance.toml").display().to_string(),
            "--size",
            "1G",
        ],
    );
    run_ok(&mut cmd);
    assert_eq!(
        std::fs::metadata(&image).unwrap().len(),
        1 << 30,
        "--size overrides the file"
    );
    let cat = |path: &str| squashfs_cat(&image, ROOT_A_OFFSET, path);
    assert_eq!(cat("etc/hostname"), "thermostat\n");
    let services = cat("etc/rustkrazy/services");
    assert!(
        services.contains("web arg --listen\nweb arg [::]:80\nweb env RUST_LOG=debug\n"),
        "{services}"
    );
    assert!(services.contains("batch autostart no\n"), "{services}");
    assert!(
        services.contains("web caps net_bind_service\nweb memory 67108864\nweb tasks 16\n"),
        "{services}"
    );
    assert!(
        !services.contains("batch user"),
        "its own user by default: {services}"
    );
    assert_eq!(
        cat("bin/init"),
        String::from_utf8_lossy(&std::fs::read(s.path("myinit")).unwrap())
    );
    let list = squashfs_list(&image, ROOT_A_OFFSET);
    assert!(
        !list.contains("bin/myinit") && !list.contains("bin/admind"),
        "{list}"
    );
    assert!(
        squashfs_superblock(&image, ROOT_A_OFFSET).contains("Compression lz4"),
        "compression = \"lz4\" reaches the root"
    );

    // A user id given to one program that is another's own: refused, nothing written.
    let taken = boot::sandbox::default_uid(b"web");
    let appliance = std::fs::read_to_string(s.path("appliance.toml")).unwrap();
    let shared = appliance.replace(
        "name = \"batch\"\n",
        &format!("name = \"batch\"\nuser = {taken}\n"),
    );
    std::fs::write(s.path("appliance.toml"), shared).unwrap();
    let refused_image = s.path("shared.img");
    let out = mkimg_cmd(
        &s,
        &refused_image,
        &["--config", &s.path("appliance.toml").display().to_string()],
    )
    .output()
    .unwrap();
    let said = text(&out);
    assert!(
        !out.status.success() && said.contains(&format!("would both run as user {taken}")),
        "{said}"
    );
    assert!(
        !refused_image.exists(),
        "nothing is written for a refused image"
    );
}

/// Either compressor gives a root the standard tools read back byte for byte, through the
/// blocks compressed ahead on every core: a program of several blocks with an all-zero
/// block (a hole) and a short last block, next to a program small enough for a fragment.
#[test]
fn roots_in_either_compression_read_back_byte_for_byte() {
    let s = Scratch::new("compression");
    let big = s.path("big");
    tiny_static_elf(&big, 300_000, 9);
    let mut bytes = std::fs::read(&big).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 3 << 17));
    bytes.extend(pseudo_random(200_000, 10));
    std::fs::write(&big, &bytes).unwrap();
    tiny_static_elf(&s.path("small"), 100, 11);
    for compression in ["gzip", "lz4"] {
        let image = s.path(&format!("{compression}.img"));
        let bins: Vec<String> = ["big", "small"]
            .iter()
            .map(|p| s.path(p).display().to_string())
            .collect();
        run_ok(&mut mkimg_cmd(
            &s,
            &image,
            &[
                "--size",
                "1G",
                "--no-system-programs",
                "--compression",
                compression,
                "--bin",
                &bins[0],
                "--bin",
                &bins[1],
                "--init",
                "small",
            ],
        ));
        let superblock = squashfs_superblock(&image, ROOT_A_OFFSET);
        assert!(
            superblock.contains(&format!("Compression {compression}")),
            "{superblock}"
        );
        for (path, file) in [("bin/big", "big"), ("bin/init", "small")] {
            let out = run_ok(
                Command::new("unsquashfs")
                    .arg("-o")
                    .arg(ROOT_A_OFFSET.to_string())
                    .arg("-cat")
                    .arg(&image)
                    .arg(path),
            );
            assert!(
                out.stdout == std::fs::read(s.path(file)).unwrap(),
                "{compression}: {path} differs from {file}"
            );
        }
    }
}

/// A block device is sized with BLKGETSIZE64 and written in place.
#[test]
fn block_device_is_written_in_place() {
    let s = Scratch::new("blockdev");
    let backing = s.path("disk");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(900 * MIB)
        .unwrap();
    let losetup = run_ok(
        Command::new("losetup")
            .arg("--find")
            .arg("--show")
            .arg(&backing),
    );
    let device = stdout(&losetup).trim().to_string();
    let app = s.path("app");
    tiny_static_elf(&app, 10, 1);
    let bin = format!("{}=init", app.display());
    let result = mkimg_cmd(
        &s,
        Path::new(&device),
        &["--no-system-programs", "--bin", &bin, "--init", "init"],
    )
    .output();
    let _ = Command::new("losetup").arg("-d").arg(&device).output();
    let result = result.unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let dump = stdout(&run_ok(Command::new("sfdisk").arg("--dump").arg(&backing)));
    // 900 MiB - 769 MiB = 131 MiB = 268288 sectors
    assert!(
        dump.contains("start=     1574912, size=      268288, type=83"),
        "{dump}"
    );
    e2fsck_data(&backing);
}

/// Each bad input is refused with a message naming the problem, and no image (or partial
/// file) is left behind.
#[test]
fn bad_inputs_are_refused_cleanly() {
    let s = Scratch::new("bad");
    let app = s.path("app");
    tiny_static_elf(&app, 10, 1);
    let big = s.path("big");
    tiny_static_elf(&big, 270 << 20, 9);
    std::fs::write(s.path("notakernel"), pseudo_random(1 << 20, 3)).unwrap();
    std::fs::write(s.path("script"), "#!/bin/sh\necho hi\n").unwrap();
    fake_bzimage(&s.path("bzImage"), 1 << 20);
    let app_init = format!("{}=init", app.display());
    let base = [
        "--no-system-programs",
        "--bin",
        app_init.as_str(),
        "--init",
        "init",
    ];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--kernel".into(), s.path("missing").display().to_string()],
            "cannot read kernel",
        ),
        (
            vec![
                "--kernel".into(),
                s.path("notakernel").display().to_string(),
            ],
            "is not an x86 Linux kernel",
        ),
        (
            vec!["--size".into(), "700M".into()],
            "too small for the layout",
        ),
        (vec!["--size".into(), "2X".into()], "unknown unit"),
        (
            vec!["--bin".into(), big.display().to_string()],
            "drop or shrink programs",
        ),
        (
            vec!["--bin".into(), format!("{}=init", app.display())],
            "two programs are named \"init\"",
        ),
        (
            vec!["--bin".into(), s.path("script").display().to_string()],
            "is not an ELF executable",
        ),
        (vec!["--bin".into(), "/bin/ls".into()], "dynamically linked"),
        (
            vec!["--kernel-arg".into(), format!("x={}", "y".repeat(300))],
            "longer than the 511 a slot holds; shorten kernel_args",
        ),
        (
            vec!["--kernel-arg".into(), "two words".into()],
            "must be one word of printable ASCII",
        ),
    ];
    for (extra, expect) in cases {
        let image = s.path("out.img");
        let mut cmd = imgtool();
        cmd.arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(base);
        if !extra.contains(&"--kernel".to_string()) {
            cmd.arg("--kernel").arg(s.path("bzImage"));
        }
        let out = cmd.args(&extra).arg(&image).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} was accepted");
        assert!(
            err.contains(expect),
            "{extra:?}: expected {expect:?} in:\n{err}"
        );
        assert!(!image.exists(), "{extra:?} left an image behind");
        let leftovers: Vec<_> = std::fs::read_dir(&s.0)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.contains("partial").then_some(name)
            })
            .collect();
        assert!(leftovers.is_empty(), "{extra:?} left {leftovers:?}");
    }

    // --init naming nothing.
    let out = mkimg_cmd(
        &s,
        &s.path("out.img"),
        &[
            "--no-system-programs",
            "--bin",
            &app.display().to_string(),
            "--init",
            "nosuch",
        ],
    )
    .output()
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--init \"nosuch\" names no program"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!s.path("out.img").exists());

    // An unwritable target.
    let out = mkimg_cmd(&s, Path::new("/proc/rustkrazy.img"), &base)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("choose a writable target"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A directory as target.
    let out = mkimg_cmd(&s, &s.0, &base).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--path` builds a local crate with cargo for the musl target and installs its binary.
#[test]
fn local_crates_are_built_static_for_the_target() {
    let s = Scratch::new("path");
    let krate = s.path("greeter");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"greeter\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        krate.join("src/main.rs"),
        "fn main() { println!(\"hello from greeter\"); }\n",
    )
    .unwrap();
    let image = s.path("a.img");
    let app = s.path("init");
    tiny_static_elf(&app, 10, 1);
    let mut cmd = mkimg_cmd(
        &s,
        &image,
        &[
            "--size",
            "800M",
            "--no-system-programs",
            "--bin",
            &app.display().to_string(),
            "--init",
            "init",
            "--path",
            &krate.display().to_string(),
        ],
    );
    run_ok(&mut cmd);
    let list = squashfs_list(&image, ROOT_A_OFFSET);
    assert!(
        list.lines()
            .any(|l| l.starts_with("-rwxr-xr-x 0/0") && l.ends_with("bin/greeter")),
        "{list}"
    );
    // The binary is the static musl build: it runs here without any loader.
    let built = krate.join("target/x86_64-unknown-linux-musl/release/greeter");
    let file = stdout(&run_ok(Command::new("file").arg(&built)));
    assert!(
        file.contains("statically linked") || file.contains("static-pie"),
        "{file}"
    );
    assert_eq!(
        stdout(&run_ok(&mut Command::new(&built))),
        "hello from greeter\n"
    );
}

/// `--arch rpi`: programs are built for aarch64 (linked without a C cross compiler), the boot
/// partition says so, and rustkrazy's init for aarch64 runs (under qemu-aarch64-static it
/// refuses to start, since it is not PID 1 there).
#[test]
fn rpi_images_carry_aarch64_programs() {
    let s = Scratch::new("rpi");
    let mut kernel = vec![0u8; 1 << 20];
    kernel[0x38..0x3c].copy_from_slice(b"ARM\x64");
    std::fs::write(s.path("Image"), kernel).unwrap();
    let image = s.path("a.img");
    let mut cmd = imgtool();
    cmd.arg("mkimg")
        .arg("--instance")
        .arg(s.path("instance"))
        .args(["--arch", "rpi", "--size", "1G", "--kernel"]);
    run_ok(cmd.arg(s.path("Image")).arg(&image));

    let mtype = |name: &str| {
        run_ok(
            Command::new("mtype")
                .arg("-i")
                .arg(format!("{}@@1M", image.display()))
                .arg(format!("::{name}")),
        )
        .stdout
    };
    // The console is the device tree's (no console= of ours), the root slot A's.
    let cmdline = String::from_utf8(mtype("slot-a-cmdline.txt")).unwrap();
    assert!(
        cmdline.starts_with("dm-mod.create=\"rustkrazy-root,,0,ro,0 ")
            && cmdline.contains(" verity 1 PARTUUID=")
            && !cmdline.contains("console="),
        "{cmdline}"
    );
    // Golden: config.txt boots slot A, tryboot.txt slot B, one sector each.
    assert_eq!(
        mtype("config.txt"),
        boot::rpi::settings(boot::layout::Slot::A)
    );
    assert_eq!(
        mtype("tryboot.txt"),
        boot::rpi::settings(boot::layout::Slot::B)
    );
    let config = String::from_utf8(mtype("config.txt")).unwrap();
    for line in [
        "arm_64bit=1",
        "upstream_kernel=1",
        "os_prefix=slot-a-",
        "kernel=vmlinuz",
        "cmdline=cmdline.txt",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "{line:?} missing:\n{config}"
        );
    }
    // Debian's firmware, with its version and licence.
    let listing = stdout(&run_ok(
        Command::new("mdir")
            .arg("-i")
            .arg(format!("{}@@1M", image.display()))
            .arg("-b")
            .arg("::"),
    ));
    for name in [
        "bootcode.bin",
        "start.elf",
        "fixup.dat",
        "start4.elf",
        "fixup4.dat",
    ] {
        assert!(listing.contains(name), "{name} missing:\n{listing}");
    }
    let version = String::from_utf8(mtype("raspi-firmware.version")).unwrap();
    assert!(version.starts_with("Debian raspi-firmware 1."), "{version}");
    let licence = String::from_utf8_lossy(&mtype("raspi-firmware.copyright")).into_owned();
    assert!(licence.contains("Broadcom"), "{licence}");
    assert_boot_partition_clean(&s, &image);

    // A firmware folder of one's own may not bring a config.txt: it would choose the slot.
    let firmware = s.path("fw");
    std::fs::create_dir_all(&firmware).unwrap();
    std::fs::write(firmware.join("start.elf"), b"firmware").unwrap();
    std::fs::write(firmware.join("config.txt"), b"arm_64bit=1\n").unwrap();
    let out = imgtool()
        .arg("mkimg")
        .arg("--instance")
        .arg(s.path("instance"))
        .args(["--arch", "rpi", "--size", "1G", "--kernel"])
        .arg(s.path("Image"))
        .arg("--firmware")
        .arg(&firmware)
        .arg(s.path("b.img"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("holds config.txt, which rustkrazy writes itself"),
        "{err}"
    );
    assert!(!s.path("b.img").exists());

    let init = s.path("init");
    let bytes = run_ok(
        Command::new("unsquashfs")
            .arg("-o")
            .arg(ROOT_A_OFFSET.to_string())
            .arg("-cat")
            .arg(&image)
            .arg("bin/init"),
    )
    .stdout;
    std::fs::write(&init, bytes).unwrap();
    set_executable(&init);
    let file = stdout(&run_ok(Command::new("file").arg(&init)));
    assert!(
        file.contains("ARM aarch64") && file.contains("statically linked"),
        "{file}"
    );
    let out = Command::new("qemu-aarch64-static")
        .arg(&init)
        .output()
        .expect("qemu-aarch64-static (qemu-user-static)");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be the first process (PID 1)"),
        "{out:?}"
    );
}
