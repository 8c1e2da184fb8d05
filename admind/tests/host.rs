//! admind on the host, with a plain file standing in for the disk, checked with curl and
//! openssl: uploads read back, authentication, hash mismatches, TLS 1.2 refused, limits,
//! slow and garbage clients, crowds of them held open, an upload beside /status, /data,
//! logs, processes, reboot, and the original rustkrazy's calls.

// A test crate: its helpers, not only its #[test]s, unwrap (clippy.toml covers the latter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use boot::layout::{Slot, ROOT_A, ROOT_B, SECTOR_BYTES};
use boot::record::{Record, State};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DISK_BYTES: u64 = 1 << 30;
/// Where the slot files lie on the test disk (inside /boot, as mkimg would put them).
const SLOT_FILES: boot::mbr::Table = boot::mbr::Table {
    kernel_lba: [4096, 4096 + 131_072],
    cmdline_lba: [2048 + 256, 2048 + 257],
};
/// The test kernels' length.
const KERNEL_BYTES: usize = 64 * 1024;

/// The MBR's four partition entries for `boot::layout` on a disk of DISK_BYTES (the
/// fields admind checks: type, first sector, sector count).
fn partition_entries() -> [u8; 64] {
    let mut out = [0u8; 64];
    for (entry, part) in out.chunks_mut(16).zip(boot::layout::PARTITIONS) {
        let sectors = part.size_on(DISK_BYTES).unwrap() / SECTOR_BYTES;
        entry[4] = part.mbr_type;
        entry[8..12].copy_from_slice(&(part.start_lba() as u32).to_le_bytes());
        entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    }
    out
}

/// A bzImage header (protocol 2.15, 4 setup sectors) describing `len` bytes of noise.
fn fake_bzimage(len: usize, seed: u64) -> Vec<u8> {
    let mut k = pseudo_random(len, seed + 1000);
    k[0x1f1] = 4;
    k[0x1f4..0x1f8].copy_from_slice(&((len as u32 - 5 * 512) / 16).to_le_bytes());
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    k[0x20e..0x210].copy_from_slice(&0x0100u16.to_le_bytes()); // version string at 0x300
    k[0x300..0x310].copy_from_slice(b"6.12.0-test \0\0\0\0");
    k
}

struct Admind {
    dir: PathBuf,
    port: u16,
    child: Child,
    password: String,
    /// The pin of the certificate's key (`admin_api::cert::pin`).
    pin: [u8; 32],
}

fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (ci/install-deps installs it)"))
}

/// Waits (up to 10 s) until something listens on `port`.
/// A TCP connection to admind on 127.0.0.1:`port` from the local address `source` (any of
/// 127.0.0.0/8): a crowd from many places, as admind counts sources by address.
fn connect_from(source: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::os::fd::FromRawFd;
    let io = |e: rustix::io::Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).map_err(io)?;
    bind(&fd, &SocketAddrV4::new(source.into(), 0)).map_err(io)?;
    connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).map_err(io)?;
    let raw = rustix::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: `raw` is a connected TCP socket that nothing else owns (rustix gave it up).
    Ok(unsafe { TcpStream::from_raw_fd(raw) })
}

/// The `i`th address of a crowd: 127.2.0.1, 127.2.0.2, ...
fn crowd_address(i: usize) -> [u8; 4] {
    [127, 2, (i / 250) as u8, (i % 250 + 1) as u8]
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "admind did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// admind on `port` with everything in `dir`; `init_pid` gets the reboot signals. It serves
/// `dir`'s cert.pem and key.pem if there are any, else the device's own key in data/admind.
fn spawn(dir: &Path, port: u16, init_pid: Option<u32>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_admind"));
    cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
    if dir.join("cert.pem").exists() {
        cmd.arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"));
    }
    cmd.arg("--password-file")
        .arg(dir.join("password.hash"))
        .arg("--disk")
        .arg(dir.join("disk"))
        .arg("--boot-status")
        .arg(dir.join("boot-status"))
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--logs")
        .arg(dir.join("logs"))
        .arg("--slot-keys") // absent unless a test writes it: slots need no seal
        .arg(dir.join("slot-keys"))
        .arg("--channel") // absent unless a test writes it: no channel is followed
        .arg(dir.join("channel"))
        .stdout(std::fs::File::create(dir.join("admind.out")).unwrap())
        .stderr(Stdio::inherit());
    if let Some(pid) = init_pid {
        cmd.arg("--init-pid").arg(pid.to_string());
    }
    cmd.spawn().unwrap()
}

impl Admind {
    fn start(tag: &str) -> Admind {
        let dir = std::env::temp_dir().join(format!("admind-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["data", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // A sparse disk with a committed boot record, running from root slot 2.
        let disk = std::fs::File::create(dir.join("disk")).unwrap();
        disk.set_len(DISK_BYTES).unwrap();
        for at in boot::record::COPY_OFFSETS {
            disk.write_all_at(&Record::INITIAL.encode(1), at).unwrap();
        }
        // The MBR code's table and each slot's kernel and command line, as mkimg lays
        // them out on /boot.
        disk.write_all_at(&SLOT_FILES.patch(), 0).unwrap();
        disk.write_all_at(
            &partition_entries(),
            boot::layout::MBR_ENTRIES_OFFSET as u64,
        )
        .unwrap();
        for i in 0..2 {
            disk.write_all_at(
                &fake_bzimage(KERNEL_BYTES, i as u64),
                u64::from(SLOT_FILES.kernel_lba[i]) * 512,
            )
            .unwrap();
            let mut sector = format!("console=ttyS0 root=PARTUUID=0-0{}\n", i + 2).into_bytes();
            sector.resize(512, 0);
            disk.write_all_at(&sector, u64::from(SLOT_FILES.cmdline_lba[i]) * 512)
                .unwrap();
        }
        std::fs::write(dir.join("boot-status"), "committed slot=2\n").unwrap();
        // Certificate and key made by openssl, as an outsider would.
        let pin = openssl_pair(&dir);
        let password = "correct-horse-battery-staple".to_string();
        std::fs::write(
            dir.join("password.hash"),
            admin_api::password::stored(password.as_bytes(), [9; 16]).to_string(),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = spawn(&dir, port, None);
        let a = Admind {
            dir,
            port,
            child,
            password,
            pin,
        };
        wait_listening(port);
        a
    }

    /// What a reboot does to admind: init writes a new boot status, admind starts again
    /// and reads it (once).
    fn restart_after_boot(&mut self, boot_status: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::write(self.dir.join("boot-status"), boot_status).unwrap();
        self.child = spawn(&self.dir, self.port, None);
        wait_listening(self.port);
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// curl pinned to the certificate, as rustkrazy user; returns (status, body).
    fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = run(Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(self.dir.join("cert.pem"))
            .arg("--resolve")
            .arg(format!("localhost:{}:127.0.0.1", self.port))
            .args([
                "-u",
                &format!("rustkrazy:{}", self.password),
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .arg(self.url(path)));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        match code.trim().parse().unwrap_or(0) {
            // No answer: curl's own complaint is the body.
            0 => (0, String::from_utf8_lossy(&out.stderr).into_owned()),
            status => (status, body.to_string()),
        }
    }

    fn record_copies(&self) -> boot::record::Copies {
        let disk = std::fs::File::open(self.dir.join("disk")).unwrap();
        let mut sectors = [[0u8; 512]; 2];
        for (sector, at) in sectors.iter_mut().zip(boot::record::COPY_OFFSETS) {
            disk.read_exact_at(sector, at).unwrap();
        }
        boot::record::Copies::read([&sectors[0], &sectors[1]])
    }

    fn record(&self) -> Record {
        self.record_copies().record().expect("a valid copy")
    }

    /// What the boot code does with the record on the next boot.
    fn loader_boots(&self) {
        let choice = boot::record::choose(&self.record_copies(), |_| true);
        if let Some((copy, sector)) = choice.write {
            let disk = std::fs::OpenOptions::new()
                .write(true)
                .open(self.dir.join("disk"))
                .unwrap();
            disk.write_all_at(&sector, boot::record::COPY_OFFSETS[copy])
                .unwrap();
        }
    }

    fn root_trailer(&self) -> Option<boot::rootid::SlotId> {
        let mut sector = [0u8; 512];
        let at = ROOT_B.start_bytes + ROOT_B.size_bytes.unwrap() - SECTOR_BYTES;
        std::fs::File::open(self.dir.join("disk"))
            .unwrap()
            .read_exact_at(&mut sector, at)
            .unwrap();
        boot::rootid::decode(&sector)
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("admind.out")).unwrap_or_default()
    }

    /// A TLS connection made with the same pinned client imgtool uses.
    fn tls(&self) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let config = admin_api::pinning::pinned_client_config(admin_api::pinning::KeyPin::new(
            Some(self.pin),
        ))
        .unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    }

    fn basic(&self) -> String {
        let raw = format!("rustkrazy:{}", self.password);
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in raw.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

impl Drop for Admind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn root_update_reads_back_arms_and_commits() {
    let mut a = Admind::start("root");
    // The slot's kernel and command line first: each read back and hashed.
    let kernel = fake_bzimage(80 * 1024, 9);
    let kernel_file = a.dir.join("kernel");
    std::fs::write(&kernel_file, &kernel).unwrap();
    let kernel_sha = hex(&Sha256::digest(&kernel));
    let (status, body) = a.curl(
        &[
            "--data-binary",
            &format!("@{}", kernel_file.display()),
            "-H",
            &format!("X-Expected-SHA256: {kernel_sha}"),
        ],
        "/update/kernel",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!(
            "\"slot\":3,\"bytes\":{},\"sha256\":\"{kernel_sha}\"",
            kernel.len()
        )),
        "{body}"
    );
    let not_a_kernel = a.dir.join("junk");
    std::fs::write(&not_a_kernel, pseudo_random(4096, 2)).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", not_a_kernel.display())],
        "/update/kernel",
    );
    assert_eq!(status, 422, "{body}");
    let (status, _) = a.curl(
        &["--data-binary", &format!("@{}", kernel_file.display())],
        "/update/kernel",
    );
    assert_eq!(status, 200);
    let cmdline = "console=ttyS0 root=PARTUUID=0-03 panic=10 rk.test=1\n";
    let cmdline_file = a.dir.join("cmdline");
    std::fs::write(&cmdline_file, cmdline).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", cmdline_file.display())],
        "/update/cmdline",
    );
    assert_eq!(status, 200, "{body}");
    std::fs::write(a.dir.join("bad-cmdline"), "a\0b").unwrap();
    let bad = format!("@{}", a.dir.join("bad-cmdline").display());
    assert_eq!(a.curl(&["--data-binary", &bad], "/update/cmdline").0, 400);

    let image = pseudo_random(3 << 20, 1);
    let sha = hex(&Sha256::digest(&image));
    let file = a.dir.join("root.img");
    std::fs::write(&file, &image).unwrap();
    // The slot's build id covers root, kernel and command line.
    let build = hex(&Sha256::new()
        .chain_update(Sha256::digest(&image))
        .chain_update(Sha256::digest(&kernel))
        .chain_update(Sha256::digest(cmdline.as_bytes()))
        .finalize());

    // Streamed chunked, with the expected hash up front.
    let (status, body) = a.curl(
        &[
            "--data-binary",
            &format!("@{}", file.display()),
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            &format!("X-Expected-SHA256: {sha}"),
        ],
        "/update/root",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("\"sha256\":\"{sha}\""))
            && body.contains("\"slot\":3")
            && body.contains(&format!("\"build\":\"{build}\"")),
        "{body}"
    );
    let mut on_disk = vec![0u8; image.len()];
    std::fs::File::open(a.dir.join("disk"))
        .unwrap()
        .read_exact_at(&mut on_disk, ROOT_B.start_bytes)
        .unwrap();
    assert!(on_disk == image, "slot 3 holds the upload");
    assert_eq!(
        a.root_trailer().map(|t| t.root.bytes),
        Some(image.len() as u64)
    );
    let (_, status_json) = a.curl(&[], "/status");
    assert!(
        status_json.contains(&format!(
            "\"3\":{{\"build\":\"{build}\",\"root\":{{\"bytes\":{},\"sha256\":\"{sha}\"}}",
            image.len()
        )) && status_json.contains("\"kernel_version\":\"6.12.0-test \"")
            && status_json.contains("rk.test=1"),
        "{status_json}"
    );
    // A boot partition upload leaves the slot files alone, and may not carry them.
    let boot_image = a.dir.join("boot.img");
    std::fs::write(&boot_image, pseudo_random(64 << 10, 6)).unwrap();
    assert_eq!(
        a.curl(
            &["--data-binary", &format!("@{}", boot_image.display())],
            "/update/boot"
        )
        .0,
        200
    );
    let mut over_slots = vec![0u8; 3 << 20];
    over_slots[(2 << 20) + 7] = 1; // inside slot A's kernel region
    std::fs::write(&boot_image, &over_slots).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", boot_image.display())],
        "/update/boot",
    );
    assert_eq!(status, 400, "{body}");
    let mut kernel_back = vec![0u8; kernel.len()];
    std::fs::File::open(a.dir.join("disk"))
        .unwrap()
        .read_exact_at(&mut kernel_back, u64::from(SLOT_FILES.kernel_lba[1]) * 512)
        .unwrap();
    assert!(kernel_back == kernel, "slot B's kernel kept");

    // Arm the trial; the record says TRY slot 3.
    let (status, body) = a.curl(&["-X", "POST"], "/switch");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        a.record(),
        Record {
            state: State::Try,
            committed: Slot::A,
            trial: Slot::B,
            fallback_ok: false,
            ..Record::INITIAL
        }
    );
    // What the MBR code and init do on the next boot, then commit.
    a.loader_boots();
    a.restart_after_boot("trial slot=3 timeout_s=300\n");
    let (status, body) = a.curl(&["-X", "POST"], "/update/root");
    assert_eq!(
        status, 409,
        "no update while a trial is uncommitted: {body}"
    );
    let (status, body) = a.curl(&["-X", "POST"], "/commit");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        a.record(),
        Record {
            state: State::Committed,
            committed: Slot::B,
            trial: Slot::A,
            ..Record::INITIAL
        }
    );
    let (status, _) = a.curl(&["-X", "POST"], "/commit");
    assert_eq!(status, 200, "committing twice is harmless");
    assert!(a.alive());
}

#[test]
fn a_hash_mismatch_or_a_broken_upload_leaves_the_slot_unarmed() {
    let mut a = Admind::start("mismatch");
    let image = pseudo_random(1 << 20, 2);
    let file = a.dir.join("root.img");
    std::fs::write(&file, &image).unwrap();
    // A first good upload gives slot 3 a trailer...
    let (status, _) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/update/root",
    );
    assert_eq!(status, 200);
    assert!(a.root_trailer().is_some());
    // ...a mismatching one removes it, and /switch then refuses.
    let wrong = "00".repeat(32);
    let (status, body) = a.curl(
        &[
            "--data-binary",
            &format!("@{}", file.display()),
            "-H",
            &format!("X-Expected-SHA256: {wrong}"),
        ],
        "/update/root",
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("unarmed"), "{body}");
    assert_eq!(a.root_trailer(), None);
    let (status, body) = a.curl(&["-X", "POST"], "/switch");
    assert_eq!(status, 409, "{body}");
    // Unarmed, and (the slot rewritten) nothing falls back to it.
    assert_eq!(a.record(), Record::INITIAL.rewriting_trial_slot());

    // An upload that dies halfway (the client vanishes) arms nothing either.
    let mut tls = a.tls();
    let head = format!("POST /update/root HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nContent-Length: {}\r\n\r\n", a.basic(), 8 << 20);
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&pseudo_random(2 << 20, 3)).unwrap();
    tls.flush().unwrap();
    drop(tls);
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = a.curl(&[], "/status");
    assert_eq!(status, 200);
    assert_eq!(a.root_trailer(), None);
    assert_eq!(a.record(), Record::INITIAL.rewriting_trial_slot());
    assert!(a.log().contains("POST /update/root 400"), "{}", a.log());
    // And the next upload succeeds.
    let (status, _) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/update/root",
    );
    assert_eq!(status, 200);
    assert!(a.alive());
}

/// A chunked root update: the device's index of its running root is the host's, byte for
/// byte; a plan of the running root's chunks plus the changed ones rebuilds the new image
/// in the inactive slot; a chunk that does not match, a body cut short, garbage, a copy
/// past the running root, or no whole-image hash is refused, leaving the slot incomplete.
#[test]
fn a_chunked_root_update_takes_what_the_running_root_holds_and_refuses_bad_pieces() {
    let a = Admind::start("chunks");
    let (status, body) = a.curl(&[], "/root/index");
    assert_eq!(status, 409, "no trailer on the running root yet: {body}");
    assert!(body.contains("send the whole root"), "{body}");

    // The running root (slot 2) and its trailer, as mkimg writes them.
    let running = pseudo_random(5 << 20, 7);
    let part = |b: &[u8]| boot::rootid::Part {
        bytes: b.len() as u64,
        sha256: Sha256::digest(b).into(),
    };
    let id = boot::rootid::SlotId {
        root: part(&running),
        kernel: part(b"k"),
        cmdline: part(b"c"),
        build: [1; 32],
    };
    let disk = std::fs::OpenOptions::new()
        .write(true)
        .open(a.dir.join("disk"))
        .unwrap();
    disk.write_all_at(&running, ROOT_A.start_bytes).unwrap();
    disk.write_all_at(
        &boot::rootid::encode(&id, None),
        ROOT_A.start_bytes + ROOT_A.size_bytes.unwrap() - SECTOR_BYTES,
    )
    .unwrap();

    let index_file = a.dir.join("index");
    let (status, _) = a.curl(&["-o", &index_file.display().to_string()], "/root/index");
    assert_eq!(status, 200);
    let index = std::fs::read(&index_file).unwrap();
    let cut = imgtool::chunking::cut(&running);
    assert_eq!(
        index,
        imgtool::chunking::index(&cut),
        "device and host cut alike"
    );
    // Kept: the running root does not change while it runs.
    let (status, _) = a.curl(&["-o", &index_file.display().to_string()], "/root/index");
    assert_eq!(status, 200);
    assert!(std::fs::read(&index_file).unwrap() == index);

    // A new root: the running one with 40 KB replaced in the middle and 9 KB added.
    let mut image = running.clone();
    image.splice(2_000_000..2_040_000, pseudo_random(49_000, 8));
    let held = imgtool::chunking::offsets(&index).unwrap();
    let up = imgtool::chunking::upload(&image, &held);
    assert!(up.bytes_sent < 1 << 20, "sent {} bytes", up.bytes_sent);
    let sha = hex(&Sha256::digest(&image));
    let post = |body: &[u8], sha: Option<&str>| {
        let file = a.dir.join("plan");
        std::fs::write(&file, body).unwrap();
        let mut args = vec!["--data-binary".to_string(), format!("@{}", file.display())];
        if let Some(sha) = sha {
            args.extend(["-H".into(), format!("X-Expected-SHA256: {sha}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        a.curl(&args, "/update/root-chunks")
    };
    let (status, body) = post(&up.body, Some(&sha));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("\"sha256\":\"{sha}\"")), "{body}");
    let mut on_disk = vec![0u8; image.len()];
    std::fs::File::open(a.dir.join("disk"))
        .unwrap()
        .read_exact_at(&mut on_disk, ROOT_B.start_bytes)
        .unwrap();
    assert!(on_disk == image, "slot 3 holds the new image");
    assert_eq!(
        a.root_trailer().map(|t| t.root.bytes),
        Some(image.len() as u64)
    );

    // Refusals, each leaving slot 3 without a trailer.
    let plan_bytes = up.body.len() - up.bytes_sent as usize;
    let mut bad_chunk = up.body.clone();
    bad_chunk[plan_bytes + 100] ^= 1;
    let mut past_the_end = up.body.clone();
    let copy = (0..)
        .map(|i| 16 + 48 * i)
        .find(|&at| past_the_end[at + 4] == 1)
        .unwrap();
    past_the_end[copy + 8..copy + 16].copy_from_slice(&(running.len() as u64).to_le_bytes());
    let cases: [(&[u8], Option<&str>, u16, &str); 5] = [
        (&bad_chunk, Some(&sha), 422, "has SHA-256"),
        (
            &up.body[..up.body.len() - 1],
            Some(&sha),
            400,
            "the body ended inside piece",
        ),
        (
            b"garbage, not a plan",
            Some(&sha),
            400,
            "does not start with a chunk plan",
        ),
        (
            &past_the_end,
            Some(&sha),
            400,
            "of the running root, which has",
        ),
        (&up.body, None, 400, "needs X-Expected-SHA256"),
    ];
    for (body, sha, want, says) in cases {
        let (status, text) = post(body, sha);
        assert_eq!(status, want, "{says}: {text}");
        assert!(text.contains(says), "{says}: {text}");
        if sha.is_some() {
            assert_eq!(a.root_trailer(), None, "{says}: the slot stays incomplete");
        }
    }
    // A wrong whole-image hash: every piece fits, the image does not.
    let (status, text) = post(&up.body, Some(&"00".repeat(32)));
    assert_eq!(status, 422, "{text}");
    assert_eq!(a.root_trailer(), None);
    // And the good plan again.
    assert_eq!(post(&up.body, Some(&sha)).0, 200);

    // A running root whose trailer claims more than its slot holds is not read from.
    let huge = boot::rootid::SlotId {
        root: boot::rootid::Part {
            bytes: 1 << 40,
            ..id.root
        },
        ..id
    };
    disk.write_all_at(
        &boot::rootid::encode(&huge, None),
        ROOT_A.start_bytes + ROOT_A.size_bytes.unwrap() - SECTOR_BYTES,
    )
    .unwrap();
    let (status, body) = a.curl(&[], "/root/index");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("more than the"), "{body}");
    assert_eq!(post(&up.body, Some(&sha)).0, 409);
    assert!(a.log().contains("GET /root/index 200"), "{}", a.log());
}

/// With a trust file, `/switch` arms only a slot sealed for this build by a trusted key
/// that is not revoked, for this machine, not older than the committed slot; the seal goes
/// into the slot's trailer, and `/status` shows it.
#[test]
fn only_slots_sealed_by_a_trusted_key_are_armed() {
    use admin_api::seal::{public_key, sign, signer_id};
    use boot::seal::Arch;
    use p256::ecdsa::SigningKey;
    let a = Admind::start("seal");
    let key = |n: u8| SigningKey::from_slice(&[n; 32]).unwrap();
    let trust = |n: u8| format!("trust {}\n", boot::encoding::Base64(&public_key(&key(n))));
    let revoked = signer_id(&public_key(&key(3)));
    std::fs::write(
        a.dir.join("slot-keys"),
        trust(1) + &trust(2) + &trust(3) + &format!("revoke {}\n", hex(&revoked)),
    )
    .unwrap();
    assert!(a.curl(&[], "/status").1.contains("\"seals_required\":true"));
    // The committed slot 2 is sealed at version 100.
    let committed = boot::rootid::SlotId {
        root: boot::rootid::Part {
            bytes: 1,
            sha256: [1; 32],
        },
        kernel: boot::rootid::Part {
            bytes: 1,
            sha256: [2; 32],
        },
        cmdline: boot::rootid::Part {
            bytes: 1,
            sha256: [3; 32],
        },
        build: [4; 32],
    };
    let committed_seal = sign(&key(1), &committed.build, 100, Arch::X86_64, None);
    let a_trailer =
        boot::layout::ROOT_A.start_bytes + boot::layout::ROOT_A.size_bytes.unwrap() - SECTOR_BYTES;
    std::fs::OpenOptions::new()
        .write(true)
        .open(a.dir.join("disk"))
        .unwrap()
        .write_all_at(
            &boot::rootid::encode(&committed, Some(&committed_seal)),
            a_trailer,
        )
        .unwrap();

    let file = a.dir.join("root.img");
    std::fs::write(&file, pseudo_random(1 << 20, 21)).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/update/root",
    );
    assert_eq!(status, 200, "{body}");
    let build = a.root_trailer().unwrap().build;
    let switch = |seal: Option<String>| {
        let header = seal.map(|s| format!("X-Slot-Seal: {s}"));
        let mut args = vec!["-X", "POST"];
        if let Some(h) = &header {
            args.extend(["-H", h.as_str()]);
        }
        a.curl(&args, "/switch")
    };
    let sealed = |k: u8, build: &[u8; 32], version: u64, arch: Arch, back: Option<u64>| {
        Some(
            boot::encoding::Base64(&sign(&key(k), build, version, arch, back).encode()).to_string(),
        )
    };
    for (seal, status, why) in [
        (None, 403, "arms only sealed slots"),
        (Some("AAAA".to_string()), 400, "not a slot seal"),
        (
            sealed(9, &build, 200, Arch::X86_64, None),
            403,
            "does not trust",
        ),
        (sealed(3, &build, 200, Arch::X86_64, None), 403, "revokes"),
        (
            sealed(1, &[7; 32], 200, Arch::X86_64, None),
            403,
            "does not verify",
        ),
        (
            sealed(1, &build, 200, Arch::Aarch64, None),
            403,
            "is for aarch64",
        ),
        (
            sealed(2, &build, 99, Arch::X86_64, None),
            403,
            "older than the committed slot's 100",
        ),
        (
            sealed(2, &build, 99, Arch::X86_64, Some(98)),
            403,
            "older than the committed slot's 100",
        ),
    ] {
        let (got, body) = switch(seal);
        assert_eq!(got, status, "{body}");
        assert!(body.contains(why), "{why}: {body}");
        assert_eq!(
            a.record(),
            Record::INITIAL.rewriting_trial_slot(),
            "not armed: {why}"
        );
        assert!(a.log().contains("POST /switch 4"), "{}", a.log());
    }
    // An older version goes in with a seal that says so, for this committed version; the
    // seal lands in the trailer.
    let (got, body) = switch(sealed(2, &build, 99, Arch::X86_64, Some(100)));
    assert_eq!(got, 200, "{body}");
    assert_eq!(a.record().trial, Slot::B);
    let (_, status) = a.curl(&[], "/status");
    let signer = hex(&signer_id(&public_key(&key(2))));
    assert!(
        status.contains(&format!("\"seal\":{{\"signer\":\"{signer}\",\"version\":99,\"arch\":\"x86_64\",\"older_allowed\":true}}")),
        "{status}"
    );
    // Boot code carries no seal: while seals are required, it is refused.
    for (path, bytes) in [("/update/boot", 64 << 10), ("/update/mbr", 440)] {
        let file = a.dir.join("boot-code");
        std::fs::write(&file, vec![0u8; bytes]).unwrap();
        let arg = format!("@{}", file.display());
        let (got, body) = a.curl(&["--data-binary", &arg], path);
        assert_eq!(got, 403, "{path}: {body}");
        assert!(body.contains("requires sealed slots"), "{body}");
    }
    // Without the trust file, the device says it takes unsealed slots.
    std::fs::remove_file(a.dir.join("slot-keys")).unwrap();
    assert!(a
        .curl(&[], "/status")
        .1
        .contains("\"seals_required\":false"));
}

/// A boot partition whose FAT puts config.txt inside slot A's kernel: the Pi settings
/// writer that runs after a boot update refuses, and the kernel is left as it was.
#[test]
fn the_pi_settings_are_never_written_into_a_slot() {
    let a = Admind::start("pi-fat");
    // FAT32, 512-byte sectors, one sector per cluster, one reserved sector, one FAT of one
    // sector: cluster N lies at partition sector N. Root directory: cluster 2.
    let mut fat = vec![0u8; 64 << 10];
    fat[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
    fat[0x0d] = 1;
    fat[0x0e..0x10].copy_from_slice(&1u16.to_le_bytes());
    fat[0x10] = 1;
    fat[0x24..0x28].copy_from_slice(&1u32.to_le_bytes());
    fat[0x2c..0x30].copy_from_slice(&2u32.to_le_bytes());
    fat[510] = 0x55;
    fat[511] = 0xaa;
    fat[512 + 8..512 + 12].copy_from_slice(&0x0fff_ffffu32.to_le_bytes());
    // config.txt at slot A's kernel (disk sector 4096, partition sector 2048 = cluster 2048);
    // tryboot.txt at cluster 10.
    let kernel_cluster = SLOT_FILES.kernel_lba[0] - 2048;
    for (i, (name, cluster)) in [(b"CONFIG  TXT", kernel_cluster), (b"TRYBOOT TXT", 10)]
        .into_iter()
        .enumerate()
    {
        let entry = &mut fat[1024 + 32 * i..1024 + 32 * (i + 1)];
        entry[..11].copy_from_slice(name);
        entry[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
        entry[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
        entry[28..32].copy_from_slice(&(boot::rpi::SETTINGS_BYTES as u32).to_le_bytes());
    }
    let file = a.dir.join("boot.img");
    std::fs::write(&file, &fat).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/update/boot",
    );
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("inside a slot's kernel"), "{body}");
    let mut kernel = vec![0u8; KERNEL_BYTES];
    std::fs::File::open(a.dir.join("disk"))
        .unwrap()
        .read_exact_at(&mut kernel, u64::from(SLOT_FILES.kernel_lba[0]) * 512)
        .unwrap();
    assert!(
        kernel == fake_bzimage(KERNEL_BYTES, 0),
        "slot A's kernel is untouched"
    );
}

#[test]
fn a_disk_that_does_not_keep_an_upload_is_caught_by_the_read_back() {
    let mut a = Admind::start("scribbled");
    let image = pseudo_random(4 << 20, 11);
    let file = a.dir.join("root.img");
    std::fs::write(&file, &image).unwrap();
    let sha = hex(&Sha256::digest(&image));
    // Something else keeps writing over the slot's first sector while uploads run: what
    // admind reads back is not what it wrote, as with a failing disk.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scribbler = {
        let stop = Arc::clone(&stop);
        let disk = std::fs::OpenOptions::new()
            .write(true)
            .open(a.dir.join("disk"))
            .unwrap();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                disk.write_all_at(&[0xa5; 512], ROOT_B.start_bytes).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let upload = |a: &Admind, extra: &[&str]| {
        let mut args = vec!["--data-binary".to_string(), format!("@{}", file.display())];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        a.curl(&args, "/update/root")
    };
    // As curl sends it: the read-back's hash is not the stream's.
    let (status, body) = upload(&a, &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("read back differs"), "{body}");
    assert_eq!(a.root_trailer(), None);
    // As imgtool sends it (only the read-back is hashed): not the hash the client named.
    let expected = format!("X-Expected-SHA256: {sha}");
    let (status, body) = upload(&a, &["-H", &expected]);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("as the disk holds it"), "{body}");
    assert_eq!(a.root_trailer(), None);
    assert_eq!(a.curl(&["-X", "POST"], "/switch").0, 409);
    assert_eq!(a.record(), Record::INITIAL.rewriting_trial_slot());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    scribbler.join().unwrap();
    // The disk left alone, the same upload completes.
    let (status, body) = upload(&a, &["-H", &expected]);
    assert_eq!(status, 200, "{body}");
    assert!(a.root_trailer().is_some());
    assert!(a.alive());
}

impl Admind {
    /// `GET /status` with curl from the local address `source` (any of 127.0.0.0/8), with
    /// `user:password` when given; returns the status and how long the call took.
    fn status_from(&self, source: &str, credentials: Option<&str>) -> (String, Duration) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["--interface", source, "--cacert"])
        .arg(self.dir.join("cert.pem"))
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", self.port));
        if let Some(c) = credentials {
            cmd.args(["-u", c]);
        }
        let started = Instant::now();
        let out = run(cmd.arg(self.url("/status")));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            started.elapsed(),
        )
    }
}

#[test]
fn passwords_are_checked_and_failures_throttled_per_source() {
    let mut a = Admind::start("auth");
    let right = format!("rustkrazy:{}", a.password);
    assert_eq!(a.status_from("127.0.0.2", None).0, "401");
    assert_eq!(
        a.status_from("127.0.0.2", Some(&format!("admin:{}", a.password)))
            .0,
        "401",
        "right password, wrong user"
    );
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(a.status_from("127.0.0.2", Some("rustkrazy:guess")).0);
    }
    assert!(codes[..4].iter().all(|c| c == "401"), "{codes:?}");
    assert!(codes[5..].iter().all(|c| c == "429"), "{codes:?}");
    // The guessing source waits; every other source is checked at once.
    assert_eq!(a.status_from("127.0.0.2", Some("rustkrazy:guess")).0, "429");
    let (code, took) = a.status_from("127.0.0.1", Some(&right));
    assert_eq!(code, "200");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A password that already got in passes the throttle too (an administrator behind the
    // guesser's address); a first login from there still waits.
    assert_eq!(a.status_from("127.0.0.2", Some(&right)).0, "200");
    a.restart_after_boot("committed slot=2\n");
    for _ in 0..6 {
        a.status_from("127.0.0.2", Some("rustkrazy:guess"));
    }
    assert_eq!(a.status_from("127.0.0.2", Some(&right)).0, "429");
    assert_eq!(a.curl(&[], "/status").0, 200);
    let log = a.log();
    assert!(!log.contains(&a.password), "the password is never logged");
    // Request text in the log is escaped: no forged lines, no escape sequences.
    assert_eq!(a.curl(&["-g"], "/no%0aadmind:%20forged%1b[2J").0, 404);
    let log = a.log();
    assert!(log.contains("/no\\x0aadmind: forged\\x1b[2J"), "{log}");
    assert!(
        !log.contains('\x1b') && !log.contains("\nadmind: forged"),
        "{log}"
    );
}

/// Keeps 100 idle connections to 127.0.0.1:PORT open from 127.0.0.4 for 19 s, opening a new
/// one whenever it can; prints how many it opened.
const IDLER: &str = "
import collections, socket, sys, time
held, opened, end = collections.deque(), 0, time.time() + 19
while time.time() < end:
    s = socket.socket()
    s.bind(('127.0.0.4', 0))
    try:
        s.connect(('127.0.0.1', int(sys.argv[1])))
        opened += 1
        held.append(s)
    except OSError:
        s.close()
    while len(held) > 100:
        held.popleft().close()
print(opened)
";

/// A flood from two sources: from 127.0.0.1, processes doing full TLS handshakes back to
/// back (openssl s_time); from 127.0.0.4, a script that keeps 100 idle TCP connections open,
/// replacing each one admind closes (without the per-source cap they took every seat, and a
/// newcomer's handshake was dropped to make room before it finished). `/status` from a third
/// source answers within 2 s every time for 18 s.
#[test]
fn a_flood_from_one_source_does_not_starve_another() {
    let mut a = Admind::start("flood");
    let target = format!("127.0.0.1:{}", a.port);
    let handshakers: Vec<Child> = (0..3)
        .map(|_| {
            Command::new("openssl")
                .args(["s_time", "-connect", &target, "-new", "-time", "20"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let idler = Command::new("python3")
        .args(["-c", IDLER, &a.port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let right = format!("rustkrazy:{}", a.password);
    let (mut calls, mut worst) = (0, Duration::ZERO);
    let end = Instant::now() + Duration::from_secs(18);
    while Instant::now() < end {
        let (code, took) = a.status_from("127.0.0.3", Some(&right));
        assert_eq!(code, "200", "call {calls} after {took:?}");
        assert!(took < Duration::from_secs(2), "call {calls} took {took:?}");
        worst = worst.max(took);
        calls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let idled = idler.wait_with_output().unwrap();
    let opened = String::from_utf8_lossy(&idled.stdout).trim().to_string();
    let mut handshakes = Vec::new();
    for h in handshakers {
        let out = h.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // "N connections in T real seconds": the first such line is the -new run.
        handshakes.extend(
            text.lines()
                .find(|l| l.contains("connections in") && l.contains("real seconds"))
                .map(str::to_string),
        );
    }
    assert_eq!(handshakes.len(), 3, "s_time made no handshakes");
    assert!(opened.parse::<u64>().unwrap_or(0) > 100, "{opened:?}");
    println!(
        "flood: {handshakes:?}; {opened} idle connections opened; /status from another \
         source: {calls} calls, slowest {worst:?}"
    );
    assert!(a.alive());
}

#[test]
fn tls_1_2_is_refused_and_1_3_works() {
    let a = Admind::start("tls");
    let s_client = |version: &str| {
        let out = run(Command::new("openssl")
            .args([
                "s_client",
                version,
                "-connect",
                &format!("127.0.0.1:{}", a.port),
                "-servername",
                "localhost",
            ])
            .stdin(Stdio::null()));
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let old = s_client("-tls1_2");
    assert!(
        old.contains("alert protocol version") && old.contains("Cipher is (NONE)"),
        "{old}"
    );
    let new = s_client("-tls1_3");
    assert!(new.contains("New, TLSv1.3, Cipher is TLS_"), "{new}");
}

#[test]
fn limits_refuse_oversized_and_malformed_requests() {
    let mut a = Admind::start("limits");
    let big_header = format!("X-Big: {}", "a".repeat(10_000));
    assert_eq!(a.curl(&["-H", &big_header], "/status").0, 431);
    let many: Vec<String> = (0..40).map(|i| format!("X-{i}: y")).collect();
    let mut args: Vec<&str> = Vec::new();
    for h in &many {
        args.extend(["-H", h.as_str()]);
    }
    assert_eq!(a.curl(&args, "/status").0, 431);
    // Declared bodies over an endpoint's limit are refused before a byte is read.
    let mut tls = a.tls();
    let head = format!(
        "POST /update/root HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        300u64 << 20
    );
    tls.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A chunked body over the limit is cut off.
    let file = a.dir.join("mbr");
    std::fs::write(&file, vec![1u8; 8000]).unwrap();
    let (status, body) = a.curl(
        &[
            "--data-binary",
            &format!("@{}", file.display()),
            "-H",
            "Transfer-Encoding: chunked",
        ],
        "/update/mbr",
    );
    assert!(status == 413 || status == 400, "{status} {body}");
    assert_eq!(a.curl(&["-X", "DELETE"], "/status").0, 405);
    assert_eq!(a.curl(&[], "/nothing").0, 404);
    assert_eq!(a.curl(&["-X", "POST"], "/switch?mode=later").0, 400);
    assert!(a.alive());
}

#[test]
fn curl_is_asked_for_its_body_once_the_request_is_accepted() {
    let mut a = Admind::start("expect");
    // curl sends `Expect: 100-continue` with bodies over 1 MiB; unanswered, it waits a
    // second and then sends anyway. `-v` shows the interim answer when there is one.
    let file = a.dir.join("payload");
    let payload = pseudo_random(2 << 20, 5);
    std::fs::write(&file, &payload).unwrap();
    let upload = |a: &Admind, user: &str| {
        run(Command::new("curl")
            .args(["-sS", "-v", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg("--cacert")
            .arg(a.dir.join("cert.pem"))
            .arg("--resolve")
            .arg(format!("localhost:{}:127.0.0.1", a.port))
            .args(["-u", user, "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(a.url("/data/write?path=big")))
    };
    let out = upload(&a, &format!("rustkrazy:{}", a.password));
    let trace = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{trace}");
    assert!(trace.contains("> Expect: 100-continue"), "{trace}");
    assert!(trace.contains("< HTTP/1.1 100 Continue"), "{trace}");
    assert_eq!(std::fs::read(a.dir.join("data/big")).unwrap(), payload);
    // A refused request gets its final answer instead, and no invitation to send.
    let out = upload(&a, "rustkrazy:wrong");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401", "{trace}");
    assert!(!trace.contains("100 Continue"), "{trace}");
    // Expectations other than 100-continue are refused (RFC 9110 10.1.1).
    assert_eq!(a.curl(&["-H", "Expect: teapot"], "/status").0, 417);
    assert!(a.alive());
}

#[test]
fn slow_and_garbage_clients_do_not_hold_or_kill_the_server() {
    let mut a = Admind::start("slow");
    // One client trickles a request head, one byte a second, after a proper handshake.
    let mut slow = a.tls();
    let port = a.port;
    let basic = a.basic();
    let trickle = std::thread::spawn(move || {
        let head = format!("GET /status HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\r\n");
        for b in head.bytes() {
            if slow.write_all(&[b]).and_then(|_| slow.flush()).is_err() {
                return true; // cut off
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        false
    });
    std::thread::sleep(Duration::from_millis(300));
    // A second client is served at once, beside the slow one.
    let started = Instant::now();
    let (status, _) = a.curl(&["--max-time", "20"], "/status");
    let waited = started.elapsed();
    assert_eq!(status, 200);
    println!(
        "figure: second client served after {:.1} s behind a 1 byte/s client",
        waited.as_secs_f64()
    );
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    assert!(trickle.join().unwrap(), "the trickling client was cut off");

    // A TCP client that never speaks TLS is cut off by the handshake deadline.
    let silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    let (status, _) = a.curl(&["--max-time", "20"], "/status");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(silent);

    // Garbage: random bytes instead of TLS, and random bytes inside TLS.
    for i in 0..30 {
        if let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = tcp.write_all(&pseudo_random(1 + i * 97, i as u64 + 5));
        }
    }
    for i in 0..30 {
        let mut tls = a.tls();
        let mut junk = pseudo_random(50 + i * 31, i as u64 + 99);
        if i % 2 == 0 {
            junk.splice(0..0, b"POST /update/root HTTP/1.1\r\n".iter().copied());
        }
        let _ = tls.write_all(&junk);
        let _ = tls.write_all(b"\r\n\r\n");
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    assert!(a.alive(), "admind survived");
    assert_eq!(a.curl(&[], "/status").0, 200);
}

#[test]
fn data_files_logs_processes_and_reboot() {
    let mut a = Admind::start("data");
    let file = a.dir.join("payload");
    std::fs::write(&file, b"state of the appliance\n").unwrap();
    assert_eq!(a.curl(&["-X", "POST"], "/data/mkdir?path=conf").0, 200);
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/data/write?path=conf/app.toml",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read(a.dir.join("data/conf/app.toml")).unwrap(),
        b"state of the appliance\n"
    );
    assert_eq!(
        a.curl(&[], "/data/read?path=conf/app.toml").1,
        "state of the appliance\n"
    );
    let (_, list) = a.curl(&[], "/data/list?path=conf");
    assert_eq!(
        list.trim(),
        "[{\"name\":\"app.toml\",\"type\":\"file\",\"bytes\":23}]"
    );
    assert_eq!(a.curl(&[], "/data/read?path=../disk").0, 400);
    assert_eq!(
        a.curl(&["-X", "POST"], "/data/remove?path=conf/app.toml").0,
        200
    );
    // mkdir makes parents and removedir takes the folder with what is in it, as in the
    // original rustkrazy; neither touches a mount point.
    assert_eq!(a.curl(&["-X", "POST"], "/data/mkdir?path=conf/a/b").0, 200);
    assert!(a.dir.join("data/conf/a/b").is_dir());
    std::fs::write(a.dir.join("data/conf/a/b/f"), "x").unwrap();
    assert_eq!(a.curl(&["-X", "POST"], "/data/removedir?path=conf").0, 200);
    assert!(!a.dir.join("data/conf").exists());
    assert_eq!(a.curl(&["-X", "POST"], "/data/removedir?path=/proc").0, 403);
    // With the password, still no write where it could change what boots or reach the
    // kernel: device nodes (also through a link), /proc, /boot; reads go on as before.
    let outside = a.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink("/dev", outside.join("devices")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(outside.join("socket")).unwrap();
    let body = ["--data-binary", "h"];
    for path in [
        "/proc/sysrq-trigger".to_string(),
        format!("{}/devices/rustkrazy-test", outside.display()),
        format!("{}/socket", outside.display()),
    ] {
        let (status, answer) = a.curl(&body, &format!("/data/write?path={path}"));
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(answer.contains("file API does not write"), "{answer}");
    }
    assert!(!std::path::Path::new("/dev/rustkrazy-test").exists());
    for (call, path) in [("mkdir", "/boot/rustkrazy-test"), ("remove", "/dev/null")] {
        let status = a
            .curl(&["-X", "POST"], &format!("/data/{call}?path={path}"))
            .0;
        assert_eq!(status, 403, "{call} {path}");
    }
    assert_eq!(a.curl(&[], "/data/read?path=/proc/uptime").0, 200);
    // An interrupted write leaves neither the file nor a temporary behind.
    let mut tls = a.tls();
    let head = format!("POST /data/write?path=half HTTP/1.1\r\nAuthorization: Basic {}\r\nContent-Length: 100000\r\n\r\n", a.basic());
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&[7u8; 5000]).unwrap();
    tls.flush().unwrap();
    drop(tls);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.curl(&[], "/data/list").1.trim(), "[]");

    std::fs::write(a.dir.join("logs/link.log.1"), "older\n").unwrap();
    std::fs::write(a.dir.join("logs/link.log"), "newer\n").unwrap();
    assert_eq!(a.curl(&[], "/logs?service=link").1, "older\nnewer\n");
    assert_eq!(a.curl(&[], "/logs?service=../x").0, 400);
    assert_eq!(a.curl(&[], "/logs?service=nothing").0, 404);
    let (_, top) = a.curl(&[], "/proc/top");
    assert!(
        top.contains(&format!("\"pid\":{}", a.child.id())),
        "admind lists itself"
    );

    // /proc/kill signals a process by PID.
    let mut victim = Command::new("sleep").arg("60").spawn().unwrap();
    let (status, body) = a.curl(
        &["-X", "POST"],
        &format!("/proc/kill?process={}&signal=TERM", victim.id()),
    );
    assert_eq!(status, 200, "{body}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(victim.wait().unwrap().signal(), Some(15));
    assert_eq!(
        a.curl(&["-X", "POST"], "/proc/kill?process=1").0,
        404,
        "init is not fair game"
    );
    assert_eq!(
        a.curl(&["-X", "POST"], "/proc/kill?process=99999999&signal=BOGUS")
            .0,
        400
    );

    // /reboot signals "init": here a sleep process stands in for it.
    let mut init = Command::new("sleep").arg("60").spawn().unwrap();
    let port = a.port;
    let dir = a.dir.clone();
    let _ = a.child.kill();
    let _ = a.child.wait();
    a.child = spawn(&dir, port, Some(init.id()));
    wait_listening(port);
    assert_eq!(a.curl(&["-X", "POST"], "/reboot").0, 200);
    let status = init.wait().unwrap();
    assert_eq!(status.signal(), Some(10), "init got SIGUSR1");

    // /shutdown: SIGUSR2.
    let mut init = Command::new("sleep").arg("60").spawn().unwrap();
    let _ = a.child.kill();
    let _ = a.child.wait();
    a.child = spawn(&dir, port, Some(init.id()));
    wait_listening(port);
    assert_eq!(a.curl(&["-X", "POST"], "/shutdown").0, 200);
    assert_eq!(init.wait().unwrap().signal(), Some(12), "init got SIGUSR2");
    assert!(Path::new(&a.dir).exists());
}

#[test]
fn mbr_code_updates_keep_the_table_and_the_record_and_switch_now_commits() {
    let a = Admind::start("mbr");
    let disk = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(a.dir.join("disk"))
        .unwrap();
    // Disk signature, the partition table, the boot signature.
    let tail = [
        &[0x5a, 0x5b, 0x5c, 0x5d, 0, 0][..],
        &partition_entries(),
        &[0x55, 0xaa],
    ]
    .concat();
    disk.write_all_at(&tail, 440).unwrap();
    // New code with someone else's table is refused; with an empty table, the disk's stays.
    let mut code = pseudo_random(440 + boot::mbr::STAGE2.len(), 42);
    let file = a.dir.join("code");
    std::fs::write(&file, &code).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/update/mbr",
    );
    assert_eq!(status, 409, "{body}");
    code[boot::mbr::TABLE_OFFSET..440].fill(0);
    std::fs::write(&file, &code).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/update/mbr",
    );
    assert_eq!(status, 200, "{body}");
    // Each update puts the second stage where the running one is not, then names it in
    // sector 0: the two places take turns.
    for (round, place) in [(0, 24u32), (1, 16)] {
        if round == 1 {
            let (status, body) = a.curl(
                &["--data-binary", &format!("@{}", file.display())],
                "/update/mbr",
            );
            assert_eq!(status, 200, "{body}");
        }
        let mut sector = [0u8; 512];
        disk.read_exact_at(&mut sector, 0).unwrap();
        assert_eq!(
            &sector[..boot::mbr::STAGE2_FIELD_OFFSET],
            &code[..boot::mbr::STAGE2_FIELD_OFFSET]
        );
        assert_eq!(boot::mbr::stage2_lba(&sector), Some(place));
        assert_eq!(
            boot::mbr::Table::read(&sector),
            Some(SLOT_FILES),
            "the slot table kept"
        );
        assert_eq!(
            &sector[440..512],
            &tail[..],
            "disk signature and partition table kept"
        );
        let mut stage2 = vec![0u8; boot::mbr::STAGE2.len()];
        disk.read_exact_at(&mut stage2, u64::from(place) * 512)
            .unwrap();
        assert_eq!(stage2, code[440..], "the second stage in the gap");
    }
    assert_eq!(a.record(), Record::INITIAL, "boot record kept");
    // The first stage alone (what an older imgtool sends) would jump into whatever the gap
    // holds: refused, as is a short one.
    for cut in [440, 300] {
        std::fs::write(&file, &code[..cut]).unwrap();
        let (status, body) = a.curl(
            &["--data-binary", &format!("@{}", file.display())],
            "/update/mbr",
        );
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("send the boot code's two stages together"),
            "{body}"
        );
    }

    // mode=now: the uploaded root becomes the committed one without a trial.
    let image = pseudo_random(1 << 20, 43);
    std::fs::write(&file, &image).unwrap();
    assert_eq!(
        a.curl(
            &["--data-binary", &format!("@{}", file.display())],
            "/update/root"
        )
        .0,
        200
    );
    let (status, body) = a.curl(&["-X", "POST"], "/switch?mode=now");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        a.record(),
        Record {
            state: State::Committed,
            committed: Slot::B,
            trial: Slot::A,
            ..Record::INITIAL
        }
    );
    // Until the reboot, slot 3 is what the next boot starts: updating it now is refused.
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", file.display())],
        "/update/root",
    );
    assert_eq!(status, 409, "{body}");
}

#[test]
fn a_client_pinned_to_another_key_refuses_the_server() {
    let a = Admind::start("pin");
    let config =
        admin_api::pinning::pinned_client_config(admin_api::pinning::KeyPin::new(Some([0u8; 32])))
            .unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let err = tls
        .write_all(b"GET /status HTTP/1.1\r\n\r\n")
        .and_then(|_| tls.flush())
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("refusing to talk to it"), "{text}");
    assert!(
        text.contains(&admin_api::cert::Pin(&a.pin).to_string()),
        "names the key it got: {text}"
    );
}

/// A disk whose partition table is not the layout is never written: an upload is refused
/// saying why, and the slot, its trailer and the record stay as they were.
#[test]
fn a_disk_laid_out_otherwise_is_never_written() {
    let a = Admind::start("table");
    let before = a.record();
    let disk = std::fs::OpenOptions::new()
        .write(true)
        .open(a.dir.join("disk"))
        .unwrap();
    // Root B's entry one sector later than the layout has it.
    let mut entries = partition_entries();
    let start = u32::from_le_bytes(entries[40..44].try_into().unwrap()) + 1;
    entries[40..44].copy_from_slice(&start.to_le_bytes());
    disk.write_all_at(&entries, boot::layout::MBR_ENTRIES_OFFSET as u64)
        .unwrap();
    let root = pseudo_random(1 << 20, 31);
    std::fs::write(a.dir.join("root.img"), &root).unwrap();
    let (status, body) = a.curl(
        &[
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", a.dir.join("root.img").display()),
        ],
        "/update/root",
    );
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("partition 3 at sector") && body.contains("nothing is written"),
        "{body}"
    );
    let (status, body) = a.curl(&["-X", "POST"], "/switch?mode=now");
    assert_ne!(status, 200, "{body}");
    assert_eq!(a.record(), before);
    assert_eq!(a.root_trailer(), None);
}

/// A folder of more entries than one answer lists is refused, saying why; one of fewer is
/// listed whole.
#[test]
fn data_list_is_bounded() {
    let a = Admind::start("list");
    let many = a.dir.join("data/many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..4096 {
        std::fs::write(many.join(format!("f{i}")), "").unwrap();
    }
    let (status, body) = a.curl(&[], "/data/list?path=many");
    assert_eq!(status, 200);
    assert_eq!(body.matches("\"name\"").count(), 4096);
    std::fs::write(many.join("one-more"), "").unwrap();
    let (status, body) = a.curl(&[], "/data/list?path=many");
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("more than 4096 entries"), "{body}");
}

/// The pin admind's console line names (`sha256//` and 44 characters of base64).
fn pin_in(log: &str) -> String {
    let at = log
        .find("sha256//")
        .unwrap_or_else(|| panic!("no pin in: {log}"));
    log[at..at + 52].to_string()
}

/// What openssl says the pin of a certificate file's key is.
fn openssl_pin(cert: &Path) -> String {
    let public = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert));
    assert!(
        public.status.success(),
        "{}",
        String::from_utf8_lossy(&public.stderr)
    );
    let mut der = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "der"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    der.stdin.take().unwrap().write_all(&public.stdout).unwrap();
    let der = der.wait_with_output().unwrap();
    admin_api::cert::Pin(&Sha256::digest(&der.stdout).into()).to_string()
}

/// Without --cert and --key, admind serves the device's own key: made on first start into
/// /data/admind (readable by openssl, the key mode 0600), the same after a restart, replaced
/// and said so when damaged or half missing, and made for the run when /data cannot keep it
/// or the pair cannot be read.
#[test]
fn the_device_makes_its_own_key_keeps_it_and_replaces_a_damaged_one() {
    let mut a = Admind::start("identity");
    std::fs::remove_file(a.dir.join("cert.pem")).unwrap();
    std::fs::remove_file(a.dir.join("key.pem")).unwrap();
    let own = a.dir.join("data/admind");
    let restart = |a: &mut Admind| {
        a.restart_after_boot("committed slot=2\n");
        let log = a.log();
        let pin = pin_in(&log);
        a.pin = admin_api::cert::Pin::parse(&pin).unwrap();
        let curl = |pin: &str| {
            run(Command::new("curl")
                .args(["-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(["--pinnedpubkey", pin, "-u"])
                .arg(format!("rustkrazy:{}", a.password))
                .arg(a.url("/status")))
        };
        assert_eq!(stdout_of(&curl(&pin)), "200", "{log}");
        let other = admin_api::cert::Pin(&[1; 32]).to_string();
        assert_ne!(stdout_of(&curl(&other)), "200", "curl refuses another key");
        (log, pin)
    };
    let (log, first) = restart(&mut a);
    assert!(
        log.contains("no device key in") && log.contains("kept in"),
        "{log}"
    );
    assert_eq!(openssl_pin(&own.join("cert.pem")), first);
    let key_of_key = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(own.join("key.pem")));
    let key_of_cert = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(own.join("cert.pem")));
    assert_eq!(
        key_of_key.stdout, key_of_cert.stdout,
        "openssl: the key is the certificate's"
    );
    let verify = run(Command::new("openssl")
        .args(["verify", "-check_ss_sig", "-CAfile"])
        .arg(own.join("cert.pem"))
        .arg(own.join("cert.pem")));
    assert!(
        verify.status.success(),
        "openssl verifies the self-signature: {verify:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(own.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (log, again) = restart(&mut a);
    assert_eq!(again, first, "{log}");
    assert!(log.contains("from"), "{log}");
    let _ = a.tls(); // imgtool's client accepts it under the pin

    std::fs::write(
        own.join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\ngarbage\n",
    )
    .unwrap();
    let (log, replaced) = restart(&mut a);
    assert_ne!(replaced, first);
    assert!(
        log.contains("does not serve") && log.contains("kept as *.pem.damaged"),
        "{log}"
    );
    assert!(own.join("key.pem.damaged").exists() && own.join("cert.pem.damaged").exists());

    std::fs::remove_file(own.join("cert.pem")).unwrap();
    let (log, _) = restart(&mut a);
    assert!(
        log.contains("cert.pem is missing") && log.contains("kept as *.pem.damaged"),
        "{log}"
    );

    // A folder where the temporary file goes: the new key cannot be kept.
    for f in ["key.pem", "cert.pem"] {
        std::fs::remove_file(own.join(f)).unwrap();
    }
    std::fs::create_dir(own.join("key.pem.partial")).unwrap();
    let (log, _) = restart(&mut a);
    assert!(log.contains("lasts until admind restarts"), "{log}");

    std::fs::remove_dir_all(&own).unwrap();
    std::fs::write(&own, "a file where the folder should be").unwrap();
    let (log, _) = restart(&mut a);
    assert!(
        log.contains("cannot read") && log.contains("for this run only"),
        "{log}"
    );
    assert!(a.alive());
}

/// Kinds of slow client an attacker (or a flaky network) holds open.
#[derive(Clone, Copy, Debug)]
enum Slow {
    /// A TCP connection that never says anything.
    IdleTcp,
    /// Half a ClientHello, then silence.
    HalfHello,
    /// A TLS connection sending a request head one byte a second.
    TrickledHead,
    /// An authenticated upload whose body stops moving.
    StalledBody,
}

/// `n` slow clients of every kind, kept open by a background thread: each one the server
/// drops is opened again, as an attacker would. Stops when dropped.
struct Crowd {
    stop: Arc<std::sync::atomic::AtomicBool>,
    keeper: Option<std::thread::JoinHandle<usize>>,
}

enum Held {
    Tcp(TcpStream),
    Tls(
        Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
        usize,
    ),
}

impl Crowd {
    fn new(a: &Admind, n: usize) -> Crowd {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (port, pin, basic) = (a.port, a.pin, a.basic());
        let open = move |kind: Slow, i: usize| -> Option<Held> {
            let config = admin_api::pinning::pinned_client_config(admin_api::pinning::KeyPin::new(
                Some(pin),
            ))
            .unwrap();
            let tcp = connect_from(crowd_address(i), port).ok()?;
            tcp.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
            tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            match kind {
                Slow::IdleTcp => Some(Held::Tcp(tcp)),
                Slow::HalfHello => {
                    let mut client = rustls::ClientConnection::new(
                        Arc::new(config),
                        "localhost".try_into().unwrap(),
                    )
                    .ok()?;
                    let mut hello = Vec::new();
                    client.write_tls(&mut hello).ok()?;
                    let mut tcp = tcp;
                    tcp.write_all(&hello[..hello.len() / 2]).ok()?;
                    Some(Held::Tcp(tcp))
                }
                Slow::TrickledHead | Slow::StalledBody => {
                    let client = rustls::ClientConnection::new(
                        Arc::new(config),
                        "localhost".try_into().unwrap(),
                    )
                    .ok()?;
                    let mut tls = rustls::StreamOwned::new(client, tcp);
                    if let Slow::StalledBody = kind {
                        let head = format!("POST /data/write?path=stalled HTTP/1.1\r\nAuthorization: Basic {basic}\r\nContent-Length: 1000000\r\n\r\n");
                        tls.write_all(head.as_bytes()).ok()?;
                        tls.write_all(&[0u8; 4000]).ok()?;
                    } else {
                        tls.write_all(b"G").ok()?; // completes the handshake
                    }
                    tls.flush().ok()?;
                    Some(Held::Tls(Box::new(tls), 0))
                }
            }
        };
        let kinds = [
            Slow::IdleTcp,
            Slow::HalfHello,
            Slow::TrickledHead,
            Slow::StalledBody,
        ];
        let flag = Arc::clone(&stop);
        let keeper = std::thread::spawn(move || {
            let mut held: Vec<(Slow, Option<Held>)> =
                (0..n).map(|i| (kinds[i % 4], None)).collect();
            let mut reopened = 0;
            let mut tick = Instant::now();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, (kind, slot)) in held.iter_mut().enumerate() {
                    let alive = match slot {
                        None => false,
                        Some(Held::Tcp(tcp)) => {
                            let mut probe = [0u8; 1];
                            tcp.set_nonblocking(true).ok();
                            let r = tcp.peek(&mut probe);
                            tcp.set_nonblocking(false).ok();
                            matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
                        }
                        Some(Held::Tls(tls, sent)) => {
                            // One more head byte a second (the body ones stay stalled).
                            if matches!(kind, Slow::TrickledHead)
                                && tick.elapsed() >= Duration::from_secs(1)
                            {
                                let text = b"ET /status HTTP/1.1\r\nX: ";
                                let b = text.get(*sent).copied().unwrap_or(b'x');
                                *sent += 1;
                                tls.write_all(&[b]).and_then(|_| tls.flush()).is_ok()
                            } else {
                                let mut probe = [0u8; 1];
                                tls.sock.set_nonblocking(true).ok();
                                let r = tls.sock.peek(&mut probe);
                                tls.sock.set_nonblocking(false).ok();
                                matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
                                    || matches!(r, Ok(n) if n > 0 && !matches!(kind, Slow::StalledBody))
                            }
                        }
                    };
                    if !alive {
                        if slot.is_some() {
                            reopened += 1;
                        }
                        *slot = open(*kind, i);
                    }
                }
                if tick.elapsed() >= Duration::from_secs(1) {
                    tick = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            reopened
        });
        // Let the crowd gather before anyone measures.
        std::thread::sleep(Duration::from_millis(300 + 10 * n as u64));
        Crowd {
            stop,
            keeper: Some(keeper),
        }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(k) = self.keeper.take() {
            let reopened = k.join().unwrap_or(0);
            println!("figure: the crowd reopened {reopened} connections the server dropped");
        }
    }
}

/// Times `n` authenticated `GET /status` calls, one after another: (median, worst).
fn status_latency(a: &Admind, n: usize) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let (status, body) = a.curl(&["--max-time", "10"], "/status");
            assert_eq!(status, 200, "{body}");
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n - 1])
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// admind's memory after a storm of connections (named bound, see README).
const BURST_RSS_KB_MAX: u64 = 32 * 1024;

#[test]
fn no_crowd_of_slow_clients_stalls_the_administrator() {
    let mut a = Admind::start("crowd");
    for crowd_size in [0, 40, 200] {
        let crowd = Crowd::new(&a, crowd_size);
        let (median, worst) = status_latency(&a, 20);
        println!(
            "figure: /status with {crowd_size} slow clients held: median {:.0} ms, worst {:.0} ms of 20",
            median.as_secs_f64() * 1000.0,
            worst.as_secs_f64() * 1000.0
        );
        assert!(
            worst < Duration::from_secs(1),
            "a /status took {worst:?} with {crowd_size} slow clients"
        );
        drop(crowd);
    }
    println!(
        "figure: admind RSS after the crowds: {} kB",
        rss_kb(a.child.id())
    );

    // 64 connections open at once (the table's size), then a burst of 1,000, each from an
    // address of its own.
    let held: Vec<TcpStream> = (0..64)
        .filter_map(|i| connect_from(crowd_address(i), a.port).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "figure: admind RSS with {} connections open: {} kB",
        held.len(),
        rss_kb(a.child.id())
    );
    let burst: Vec<TcpStream> = (64..1064)
        .filter_map(|i| connect_from(crowd_address(i), a.port).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kb(a.child.id());
    println!(
        "figure: admind RSS after a burst of {} connections: {rss} kB",
        burst.len()
    );
    assert!(rss < BURST_RSS_KB_MAX, "RSS {rss} kB");
    assert_eq!(a.curl(&["--max-time", "5"], "/status").0, 200);
    drop((held, burst));
    assert!(a.alive());
}

#[test]
fn status_answers_while_an_upload_runs_and_a_second_update_waits() {
    let a = Admind::start("busy");
    // A 64 MiB root upload at about 16 MiB/s, from our own TLS client.
    let mut upload = a.tls();
    let total = 64usize << 20;
    let head = format!(
        "POST /update/root HTTP/1.1\r\nAuthorization: Basic {}\r\nContent-Length: {total}\r\n\r\n",
        a.basic()
    );
    let uploader = std::thread::spawn(move || {
        upload.write_all(head.as_bytes()).unwrap();
        let piece = pseudo_random(1 << 20, 77);
        for _ in 0..total >> 20 {
            upload.write_all(&piece).unwrap();
            std::thread::sleep(Duration::from_millis(60));
        }
        upload.flush().unwrap();
        let mut answer = String::new();
        let _ = upload.read_to_string(&mut answer);
        answer
    });
    std::thread::sleep(Duration::from_millis(500));
    let (median, worst) = status_latency(&a, 10);
    println!(
        "figure: /status during a root upload: median {:.0} ms, worst {:.0} ms of 10",
        median.as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0
    );
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    // One update at a time.
    let mbr = a.dir.join("mbr");
    std::fs::write(&mbr, vec![0x90u8; 440]).unwrap();
    let (status, body) = a.curl(
        &["--data-binary", &format!("@{}", mbr.display())],
        "/update/mbr",
    );
    assert_eq!(status, 409, "{body}");
    let answer = uploader.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(a.root_trailer().map(|t| t.root.bytes), Some(total as u64));
}

#[test]
fn a_megabyte_of_header_gets_its_431() {
    let a = Admind::start("bighead");
    // curl will not send a header this long ("out of memory"): our own TLS client does,
    // all of it, before it reads the answer.
    let mut tls = a.tls();
    let head = format!(
        "GET /status HTTP/1.1\r\nAuthorization: Basic {}\r\nX-Big: {}\r\n\r\n",
        a.basic(),
        "a".repeat(1 << 20)
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut answer = Vec::new();
    let read = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "the client saw the refusal, not a reset: {answer:?} ({read:?})"
    );
    assert_eq!(a.curl(&[], "/status").0, 200);
}

#[test]
fn the_original_rustkrazy_calls_work() {
    let a = Admind::start("original");
    // Its updater PUTs the images.
    let image = a.dir.join("root.img");
    std::fs::write(&image, pseudo_random(1 << 20, 5)).unwrap();
    let put = |path: &str, file: &Path| {
        a.curl(
            &[
                "-X",
                "PUT",
                "--data-binary",
                &format!("@{}", file.display()),
            ],
            path,
        )
    };
    let (status, body) = put("/update/root", &image);
    assert_eq!(status, 200, "{body}");
    assert!(a.root_trailer().is_some());
    let boot_image = a.dir.join("boot.img");
    std::fs::write(&boot_image, pseudo_random(64 << 10, 6)).unwrap();
    assert_eq!(put("/update/boot", &boot_image).0, 200);
    // The original's boot code is one sector; ours has a second stage, and a first stage
    // alone would jump into nothing: refused, saying what to send.
    let mbr = a.dir.join("mbr.bin");
    let mut code = vec![0xebu8; 440];
    code[boot::mbr::TABLE_OFFSET..].fill(0);
    std::fs::write(&mbr, &code).unwrap();
    let (status, body) = put("/update/mbr", &mbr);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("second stage"), "{body}");
    code.extend_from_slice(boot::mbr::STAGE2);
    std::fs::write(&mbr, &code).unwrap();
    assert_eq!(put("/update/mbr", &mbr).0, 200);
    assert_eq!(a.curl(&["-X", "PUT"], "/switch").0, 200);

    // Absolute paths: a service's log in /tmp, files anywhere on /data.
    let logs = a.dir.join("logs");
    std::fs::write(logs.join("app.log"), "hello from app\n").unwrap();
    let (status, body) = a.curl(&[], &format!("/data/read?path={}/app.log", logs.display()));
    assert_eq!((status, body.as_str()), (200, "hello from app\n"));
    let data = a.dir.join("data");
    let payload = a.dir.join("payload");
    std::fs::write(&payload, "new state\n").unwrap();
    let (status, body) = put(
        &format!("/data/write?path={}/update", data.display()),
        &payload,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read_to_string(data.join("update")).unwrap(),
        "new state\n"
    );
    let (status, list) = a.curl(&[], &format!("/data/list?path={}", data.display()));
    assert_eq!(status, 200);
    assert!(list.contains("\"name\":\"update\""), "{list}");
    let (status, _) = a.curl(
        &["-X", "PUT"],
        &format!("/data/mkdir?path={}/x/y", data.display()),
    );
    assert_eq!(status, 200);
    assert!(data.join("x/y").is_dir());
    assert_eq!(
        a.curl(&[], &format!("/data/read?path={}/../disk", data.display()))
            .0,
        400,
        "no .. even in absolute paths"
    );

    // Kill by name with a lower-case signal: a process with a name of its own.
    let victim = a.dir.join("rkvictim");
    std::fs::copy("/bin/sleep", &victim).unwrap();
    let mut child = Command::new(&victim).arg("60").spawn().unwrap();
    let (status, body) = a.curl(&["-X", "PUT"], "/proc/kill?process=rkvictim&signal=term");
    assert_eq!(status, 200, "{body}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(15));
}

/// nginx serving `root` over TLS with `tls`'s cert.pem and key.pem on 127.0.0.1:`port`, as
/// a channel's server; one process (`master_process off`), stopped on drop.
struct TlsNginx(Child);

impl TlsNginx {
    fn serve(prefix: &Path, root: &Path, tls: &Path, port: u16) -> TlsNginx {
        std::fs::create_dir_all(prefix).unwrap();
        let p = prefix.display();
        let (t, r) = (tls.display(), root.display());
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nuser root;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
                 fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
                 server {{ listen 127.0.0.1:{port} ssl; ssl_protocols TLSv1.3;\n\
                 ssl_certificate {t}/cert.pem; ssl_certificate_key {t}/key.pem; root {r};\n\
                 location /broken/ {{ return 500; }} }}\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .arg("-p")
            .arg(prefix)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run nginx: {e} (ci/install-deps installs nginx-light)")
            });
        let mut n = TlsNginx(child);
        for _ in 0..100 {
            if n.0.try_wait().unwrap().is_none() && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nginx did not listen: {}",
            std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        );
    }
}

impl Drop for TlsNginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// A P-256 certificate and key made by openssl in `dir`; returns the key's pin.
fn openssl_pair(dir: &Path) -> [u8; 32] {
    std::fs::create_dir_all(dir).unwrap();
    let out = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "30", "-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let der = CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap();
    admin_api::cert::certificate_pin(&der).unwrap()
}

/// The command line of root slot `partition` in the test disk's releases.
fn release_cmdline(partition: u8) -> String {
    format!("console=ttyS0 root=PARTUUID=0-0{partition} rustkrazy.release")
}

/// Writes a release of `kernel` and `root` into the channel `ch`, as `imgtool publish`
/// lays it out (`boot::release`), signed and sealed by `key`; returns the manifest.
fn publish(
    ch: &Path,
    key: &p256::ecdsa::SigningKey,
    version: u64,
    kernel: &[u8],
    root: &[u8],
) -> String {
    use p256::ecdsa::signature::Signer;
    let image = |bytes: &[u8]| {
        let cut = imgtool::chunking::cut(bytes);
        for (range, sha) in &cut {
            let path = ch.join(boot::release::ChunkPath(sha).to_string());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &bytes[range.clone()]).unwrap();
        }
        let index = imgtool::chunking::index(&cut);
        let index_sha: [u8; 32] = Sha256::digest(&index).into();
        let path = ch.join(boot::release::IndexPath(&index_sha).to_string());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &index).unwrap();
        boot::release::Image {
            bytes: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
            index: index_sha,
        }
    };
    let (kernel_image, root_image) = (image(kernel), image(root));
    let part = |i: &boot::release::Image| boot::rootid::Part {
        bytes: i.bytes,
        sha256: i.sha256,
    };
    let cmdlines = [release_cmdline(2), release_cmdline(3)];
    let builds = cmdlines.clone().map(|c| {
        let c = format!("{c}\n");
        let cmd = boot::rootid::Part {
            bytes: c.len() as u64,
            sha256: Sha256::digest(&c).into(),
        };
        boot::rootid::build_id(&part(&root_image), &part(&kernel_image), &cmd, |parts| {
            let mut h = Sha256::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().into()
        })
    });
    let seals = builds.map(|b| {
        let seal = admin_api::seal::sign(key, &b, version, boot::seal::Arch::X86_64, None);
        boot::encoding::Base64(&seal.encode()).to_string()
    });
    let slot = |i: usize| boot::release::Slot {
        build: builds[i],
        seal: &seals[i],
        cmdline: &cmdlines[i],
    };
    let manifest = boot::release::Manifest {
        version,
        arch: "x86_64",
        rollout: 100,
        signer: admin_api::seal::signer_id(&admin_api::seal::public_key(key)),
        kernel: kernel_image,
        root: root_image,
        slots: [slot(0), slot(1)],
    };
    let signed = manifest.to_string();
    let signature: p256::ecdsa::Signature = key.sign(signed.as_bytes());
    let text = format!(
        "{signed}signature {}\n",
        boot::encoding::Base64(signature.to_der().as_bytes())
    );
    std::fs::write(ch.join("manifest"), &text).unwrap();
    text
}

/// A device following a channel served by nginx over TLS: it takes a newer signed release
/// into its inactive slot from the chunks its running slot holds plus the ones it fetches,
/// arms it and signals init to reboot; after the reboot the trial commits itself and
/// `/status` says where it came from. Refused, the device staying on its slot and saying
/// why: a bad signature, an older release, a chunk whose hash does not match, a truncated
/// chunk, a server that answers 500 or stalls, a server whose key is not the pinned one.
/// Then a download that broke off at a missing chunk resumes there once it is back.
#[test]
fn a_device_following_a_channel_takes_only_signed_newer_releases_and_fetches_only_what_it_lacks() {
    use p256::ecdsa::SigningKey;
    let mut a = Admind::start("follow");
    let key = SigningKey::from_slice(&[5; 32]).unwrap();
    let trust = format!(
        "trust {}\n",
        boot::encoding::Base64(&admin_api::seal::public_key(&key))
    );
    std::fs::write(a.dir.join("slot-keys"), trust).unwrap();
    // The running slot 2: a root of 3 MiB and its trailer, sealed at version 100.
    let running = pseudo_random(3 << 20, 11);
    let running_kernel = fake_bzimage(KERNEL_BYTES, 0);
    let part = |b: &[u8]| boot::rootid::Part {
        bytes: b.len() as u64,
        sha256: Sha256::digest(b).into(),
    };
    let id = boot::rootid::SlotId {
        root: part(&running),
        kernel: part(&running_kernel),
        cmdline: part(b"c"),
        build: [1; 32],
    };
    let seal = admin_api::seal::sign(&key, &id.build, 100, boot::seal::Arch::X86_64, None);
    let disk = std::fs::OpenOptions::new()
        .write(true)
        .open(a.dir.join("disk"))
        .unwrap();
    disk.write_all_at(&running, ROOT_A.start_bytes).unwrap();
    let trailer_a = ROOT_A.start_bytes + ROOT_A.size_bytes.unwrap() - SECTOR_BYTES;
    disk.write_all_at(&boot::rootid::encode(&id, Some(&seal)), trailer_a)
        .unwrap();

    // The channel's server, its key pinned in the device's settings.
    let www = a.dir.join("www");
    let ch = www.join("ch");
    std::fs::create_dir_all(&ch).unwrap();
    let pin = openssl_pair(&a.dir.join("tls"));
    openssl_pair(&a.dir.join("other-tls"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = |path: &str| {
        format!(
            "url https://127.0.0.1:{port}/{path}\npin {}\npoll 10\n",
            admin_api::cert::Pin(&pin)
        )
    };
    std::fs::write(a.dir.join("channel"), settings("ch")).unwrap();
    let mut nginx = TlsNginx::serve(&a.dir.join("nginx"), &www, &a.dir.join("tls"), port);

    // Release 200: the running kernel (copied, not fetched) and the running root with
    // 100 KB changed in its middle.
    let mut root = running.clone();
    root.splice(1 << 20..(1 << 20) + 100_000, pseudo_random(100_000, 12));
    publish(&ch, &key, 200, &running_kernel, &root);
    // init: a sleep that SIGUSR1 (reboot) ends. Never PID 1 of the machine running the test.
    let mut init = Command::new("sleep").arg("600").spawn().unwrap();
    let restart = |a: &mut Admind, boot_status: &str, init: &Child| {
        let _ = a.child.kill();
        let _ = a.child.wait();
        std::fs::write(a.dir.join("boot-status"), boot_status).unwrap();
        a.child = spawn(&a.dir, a.port, Some(init.id()));
        wait_listening(a.port);
    };
    restart(&mut a, "committed slot=2\n", &init);
    let channel = |a: &Admind| {
        let (status, body) = a.curl(&[], "/status");
        assert_eq!(status, 200, "{body}");
        let s: admin_api::status::Status = serde_json::from_str(&body).unwrap();
        s.channel.expect("a channel in /status")
    };
    let wait_for = |a: &Admind, what: &str, ok: &dyn Fn(&admin_api::status::Channel) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = channel(a);
            if ok(&c) {
                return c;
            }
            assert!(Instant::now() < deadline, "{what}: {c:?}\n{}", a.log());
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let c = wait_for(&a, "armed", &|c| {
        c.state == "armed" || c.state == "rebooting"
    });
    assert_eq!(c.offered, Some(200));
    let root_bytes = root.len() as u64;
    println!(
        "release 200 (100 KB of a 3 MiB root changed): fetched {} of {root_bytes} bytes",
        c.fetched_bytes
    );
    assert!(c.fetched_bytes < root_bytes / 10, "{c:?}");
    let peak = std::fs::read_to_string(format!("/proc/{}/status", a.child.id())).unwrap();
    let peak = peak
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or_default();
    println!("admind's peak memory after applying release 200 (a debug build): {peak}");
    assert!(c.fetched_bytes >= 100_000, "{c:?}");
    let trailer = a.root_trailer().expect("slot 3 complete");
    assert_eq!(trailer.root.sha256, <[u8; 32]>::from(Sha256::digest(&root)));
    assert_eq!(a.record().trial, Slot::B);
    assert_eq!(a.record().state, State::Try);
    // init got SIGUSR1 (a sleep it ends).
    let deadline = Instant::now() + Duration::from_secs(10);
    while init.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "init was not signalled to reboot"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The reboot: the boot code takes the trial; the follower commits it.
    a.loader_boots();
    let _ = init.wait();
    init = Command::new("sleep").arg("600").spawn().unwrap();
    restart(&mut a, "trial slot=3 timeout=120\n", &init);
    let c = wait_for(&a, "committed", &|c| c.updated_from.is_some());
    assert!(
        c.updated_from
            .as_deref()
            .unwrap()
            .ends_with("/ch release 200"),
        "{c:?}"
    );
    assert_eq!(a.record().committed, Slot::B);
    assert_eq!(a.record().state, State::Committed);

    // Refusals: each leaves the device on its slot, saying why.
    let newer = pseudo_random(3 << 20, 13);
    let first = imgtool::chunking::cut(&newer)[0].clone();
    let first_path = ch.join(boot::release::ChunkPath(&first.1).to_string());
    let first_len = first.0.len();
    let refusals: [(String, Box<dyn Fn()>); 4] = [
        (
            "not signed by a key this root trusts".into(),
            Box::new(|| {
                let text = publish(&ch, &key, 300, &running_kernel, &newer)
                    .replace("version 300", "version 301");
                std::fs::write(ch.join("manifest"), text).unwrap();
            }),
        ),
        (
            "older than the committed one".into(),
            Box::new(|| {
                publish(&ch, &key, 150, &running_kernel, &newer);
            }),
        ),
        (
            format!("is {first_len} bytes with SHA-256"),
            Box::new(|| {
                // One chunk's bytes changed, its name kept.
                publish(&ch, &key, 300, &running_kernel, &newer);
                let mut bytes = std::fs::read(&first_path).unwrap();
                bytes[0] ^= 1;
                std::fs::write(&first_path, bytes).unwrap();
            }),
        ),
        (
            format!("is {} bytes with SHA-256", first_len / 2),
            Box::new(|| {
                publish(&ch, &key, 300, &running_kernel, &newer);
                let bytes = std::fs::read(&first_path).unwrap();
                std::fs::write(&first_path, &bytes[..first_len / 2]).unwrap();
            }),
        ),
    ];
    for (why, make) in refusals {
        make();
        let c = wait_for(&a, &why, &|c| c.result.contains(why.as_str()));
        assert_eq!(a.record().committed, Slot::B, "{c:?}");
        assert_ne!(a.record().state, State::Try, "{c:?}");
    }
    // A server that answers 500, then one that stalls, then one whose key is not pinned.
    std::fs::write(a.dir.join("channel"), settings("broken")).unwrap();
    restart(&mut a, "committed slot=3\n", &init);
    wait_for(&a, "500", &|c| c.result.contains("500"));
    let staller = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    drop(nginx);
    let stall_port = staller.local_addr().unwrap().port();
    std::fs::write(
        a.dir.join("channel"),
        settings("ch").replace(&port.to_string(), &stall_port.to_string()),
    )
    .unwrap();
    restart(&mut a, "committed slot=3\n", &init);
    let c = wait_for(&a, "stalled", &|c| c.result.contains("stalled"));
    println!("a stalled server: {}", c.result);
    drop(staller);
    nginx = TlsNginx::serve(&a.dir.join("nginx"), &www, &a.dir.join("other-tls"), port);
    std::fs::write(a.dir.join("channel"), settings("ch")).unwrap();
    restart(&mut a, "committed slot=3\n", &init);
    wait_for(&a, "another key", &|c| c.result.contains("is pinned"));
    // The server recovers (its own key again), but the last chunk of release 300 is
    // missing: the download stops there and resumes once it is back, fetching nothing
    // twice (every chunk of the random root once, and its index).
    drop(nginx);
    let _nginx = TlsNginx::serve(&a.dir.join("nginx"), &www, &a.dir.join("tls"), port);
    publish(&ch, &key, 300, &running_kernel, &newer);
    let cut = imgtool::chunking::cut(&newer);
    let last = ch.join(boot::release::ChunkPath(&cut.last().unwrap().1).to_string());
    let kept = a.dir.join("last-chunk");
    std::fs::rename(&last, &kept).unwrap();
    wait_for(&a, "a missing chunk", &|c| c.result.contains("404"));
    std::fs::rename(&kept, &last).unwrap();
    let c = wait_for(&a, "resumed", &|c| {
        c.state == "armed" || c.state == "rebooting"
    });
    assert_eq!(c.offered, Some(300));
    let index_bytes = (8 + 36 * cut.len()) as u64;
    assert_eq!(c.fetched_bytes, newer.len() as u64 + index_bytes, "{c:?}");
    assert_eq!(a.record().trial, Slot::A);
}
