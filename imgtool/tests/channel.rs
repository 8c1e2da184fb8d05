//! `imgtool publish` and a release channel served by a real web server (Debian's nginx),
//! fetched with curl as any client would: the manifest's signature checked by openssl, the
//! root rebuilt from its index and chunks and checked by veritysetup and unsquashfs. A
//! release with one program changed adds only a few chunks; one with only a command-line
//! change adds none; an older version is refused; pruning keeps what kept releases name.
//! Devices following a channel over HTTPS update themselves, and finish after a power cut.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// nginx serving `root` on a free port of 127.0.0.1 (which QEMU's guests reach at
/// 10.0.2.2), stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn serve(s: &Scratch, root: &Path) -> Nginx {
        Nginx::serve_tls(s, root, None)
    }

    /// Over TLS 1.3 with `tls`'s cert.pem and key.pem, if given.
    fn serve_tls(s: &Scratch, root: &Path, tls: Option<&Path>) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let prefix = s.path("nginx");
        std::fs::create_dir_all(&prefix).unwrap();
        let conf = prefix.join("nginx.conf");
        let p = prefix.display();
        let ssl = tls.map_or(String::new(), |t| {
            let t = t.display();
            format!(" ssl; ssl_protocols TLSv1.3; ssl_certificate {t}/cert.pem; ssl_certificate_key {t}/key.pem")
        });
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nuser root;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
                 events {{ worker_connections 512; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
                 fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
                 server {{ listen 127.0.0.1:{port}{ssl}; root {}; }}\n}}\n",
                root.display()
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run nginx: {e} (ci/install-deps installs nginx-light)")
            });
        let mut n = Nginx { child, port };
        for _ in 0..100 {
            let alive = n.child.try_wait().unwrap().is_none();
            if alive && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "nginx did not listen: {}",
            std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Fetches `paths` with one curl (failing on any HTTP error) into `dir`, each under
    /// its last path component; returns the files.
    fn fetch(&self, paths: &[String], dir: &Path) -> Result<Vec<PathBuf>, String> {
        std::fs::create_dir_all(dir).unwrap();
        let mut config = String::new();
        let mut files = Vec::new();
        for path in paths {
            let file = dir.join(path.rsplit('/').next().unwrap());
            config.push_str(&format!(
                "url = \"{}\"\noutput = \"{}\"\n",
                self.url(path),
                file.display()
            ));
            files.push(file);
        }
        let list = dir.join("curl.conf");
        std::fs::write(&list, config).unwrap();
        let out = Command::new("curl")
            .args(["-sSf", "-K"])
            .arg(&list)
            .output()
            .unwrap();
        match out.status.success() {
            true => Ok(files),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }
}

impl Drop for Nginx {
    /// SIGTERM: nginx stops (one process: `master_process off`).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// `imgtool publish` of the test programs at `version`; its report line.
fn publish(s: &Scratch, version: u64, tool_seed: u64, extra: &[&str]) -> Result<String, String> {
    let tool = s.path(&format!("tool-{tool_seed}"));
    tiny_static_elf(&tool, 20_000, tool_seed);
    let (app, big) = (s.path("app"), s.path("big"));
    let mut cmd = imgtool();
    cmd.env("SOURCE_DATE_EPOCH", version.to_string())
        .args(["publish", "--channel"])
        .arg(s.path("channel"))
        .arg("--instance")
        .arg(s.path("instance"))
        .arg("--kernel")
        .arg(s.path("bzImage"))
        .args(["--no-system-programs", "--init", "init", "--bin"])
        .arg(format!("{}=init", app.display()))
        .arg("--bin")
        .arg(&big)
        .arg("--bin")
        .arg(format!("{}=tool", tool.display()))
        .args(extra);
    let out = cmd.output().unwrap();
    let said = text(&out);
    match out.status.success() {
        true => Ok(said),
        false => Err(said),
    }
}

/// The line of `said` that starts with `prefix`.
fn line<'a>(said: &'a str, prefix: &str) -> &'a str {
    said.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in: {said}"))
}

/// The numbers in a report line, in order (up to the channel's path).
fn numbers(line: &str) -> Vec<u64> {
    let line = line.split("; in /").next().unwrap();
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// An image rebuilt from its index and chunks as served; checks its length and SHA-256.
fn rebuild(nginx: &Nginx, image: &boot::release::Image, dir: &Path) -> Result<Vec<u8>, String> {
    let index_path = boot::release::IndexPath(&image.index).to_string();
    let index = std::fs::read(&nginx.fetch(&[index_path], dir)?[0]).unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&index)), image.index);
    let chunks: Vec<_> = boot::chunks::index_chunks(&index)
        .expect("an index")
        .collect();
    let paths: Vec<String> = chunks
        .iter()
        .map(|c| boot::release::ChunkPath(&c.sha256).to_string())
        .collect();
    let mut out = Vec::new();
    for (file, chunk) in nginx.fetch(&paths, dir)?.iter().zip(&chunks) {
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), chunk.sha256);
        out.extend_from_slice(&bytes);
    }
    assert_eq!(out.len() as u64, image.bytes);
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&out)), image.sha256);
    Ok(out)
}

/// openssl's verdict on a manifest's signature, by the instance's slot-signing key.
fn openssl_verifies(s: &Scratch, manifest: &str) -> bool {
    let signed = boot::release::parse(manifest).expect("a manifest");
    let mut der = [0u8; 128];
    let n = boot::encoding::base64_decode(signed.signature.as_bytes(), &mut der).unwrap();
    std::fs::write(s.path("signed"), signed.signed).unwrap();
    std::fs::write(s.path("signature.der"), &der[..n]).unwrap();
    let public = s.path("public.pem");
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(s.path("instance").join("slot-signing-key.pem"))
            .arg("-out")
            .arg(&public),
    );
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(s.path("signature.der"))
        .arg(s.path("signed"))
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_channel_served_by_nginx_holds_signed_releases_that_add_only_what_changed() {
    let s = Scratch::new("channel");
    small_image(&s, &s.path("first.img"), "1G"); // the instance (and app, bzImage)
                                                 // A realistic program: an ELF with 1 MB of text and 1 MB of noise behind it.
    let big = s.path("big");
    tiny_static_elf(&big, 0, 3);
    let mut body = std::fs::read(&big).unwrap();
    while body.len() < 1 << 20 {
        body.extend_from_slice(include_bytes!("channel.rs"));
    }
    body.extend_from_slice(&pseudo_random(1 << 20, 4));
    std::fs::write(&big, body).unwrap();
    set_executable(&big);

    let first = publish(&s, 1000, 5, &[]).unwrap();
    let first = line(&first, "publish: release");
    let n = numbers(first);
    let (root_bytes, kernel_bytes, chunks, new_chunks) = (n[1], n[2], n[3], n[4]);
    assert_eq!(n[0], 1000, "{first}");
    assert_eq!(chunks, new_chunks, "a new channel holds nothing: {first}");
    println!("figure: {first}");

    // One program changed: only its chunks and the tables and hash tree after it.
    let second = publish(&s, 2000, 6, &[]).unwrap();
    let second = line(&second, "publish: release");
    let new_bytes = numbers(second)[5];
    println!("figure: one program changed: {second}");
    assert!(new_bytes * 5 < root_bytes, "{second}");
    // Only the command line changed: no new chunk at all.
    let third = publish(&s, 3000, 6, &["--kernel-arg", "rk.test=1"]).unwrap();
    let third = line(&third, "publish: release");
    println!("figure: command line changed: {third}");
    assert_eq!(numbers(third)[4], 0, "{third}");
    // Not newer than what the channel holds: refused, nothing written.
    let older = publish(&s, 2500, 7, &[]).unwrap_err();
    assert!(older.contains("already holds release 3000"), "{older}");

    let nginx = Nginx::serve(&s, &s.path("channel"));
    let got = nginx
        .fetch(&["manifest".to_string()], &s.path("fetched"))
        .unwrap();
    let manifest = std::fs::read_to_string(&got[0]).unwrap();
    let signed = boot::release::parse(&manifest).unwrap();
    let m = signed.manifest;
    assert_eq!((m.version, m.arch, m.rollout), (3000, "x86_64", 100));
    assert!(m.slots[0].cmdline.contains("rk.test=1"), "{manifest}");
    assert!(
        openssl_verifies(&s, &manifest),
        "openssl verifies the manifest"
    );
    let forged = manifest.replace("rollout 100", "rollout 10");
    assert!(!openssl_verifies(&s, &forged), "a changed manifest fails");

    // Rebuilt from what nginx serves: the kernel as given, the root as the kernel checks
    // it (dm-verity, slot 2's command line) and holding the programs.
    let kernel = rebuild(&nginx, &m.kernel, &s.path("kernel-chunks")).unwrap();
    assert!(kernel == std::fs::read(s.path("bzImage")).unwrap());
    assert_eq!(kernel.len() as u64, kernel_bytes);
    let root = rebuild(&nginx, &m.root, &s.path("root-chunks")).unwrap();
    let root_file = s.path("root.img");
    std::fs::write(&root_file, &root).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&root_file)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    veritysetup_verify(&root_file, 0, m.slots[0].cmdline).unwrap();
    let listing = squashfs_list(&root_file, 0);
    assert!(
        listing.contains("bin/tool") && listing.contains("bin/big"),
        "{listing}"
    );

    // Pruning to the newest release: the first two go, and the chunks only they name
    // (the first tool's); what the newest names is all still served.
    let old_manifest = format!("{}/1000/manifest", boot::release::RELEASES);
    assert!(nginx
        .fetch(std::slice::from_ref(&old_manifest), &s.path("old"))
        .is_ok());
    // What a publish that died would leave: a release folder without a manifest, and a
    // manifest never renamed into place. Pruning removes both.
    let leftover = s.path("channel").join(boot::release::RELEASES).join("3500");
    std::fs::create_dir_all(&leftover).unwrap();
    let partial = s.path("channel").join("manifest.partial-1");
    std::fs::write(&partial, "half").unwrap();
    let said = publish(&s, 4000, 6, &["--kernel-arg", "rk.test=1", "--keep", "1"]).unwrap();
    let fourth = line(&said, "publish: release");
    assert_eq!(numbers(fourth)[4], 0, "same slot as the third: {fourth}");
    let pruned = line(&said, "publish: pruned");
    println!("figure: {pruned}");
    assert!(pruned.starts_with("publish: pruned 3 releases"), "{pruned}");
    assert!(!leftover.exists() && !partial.exists(), "{pruned}");
    let err = nginx.fetch(&[old_manifest], &s.path("old2")).unwrap_err();
    assert!(err.contains("404"), "{err}");
    let manifest = std::fs::read_to_string(
        &nginx
            .fetch(&["manifest".to_string()], &s.path("fetched4"))
            .unwrap()[0],
    )
    .unwrap();
    let m = boot::release::parse(&manifest).unwrap().manifest;
    assert_eq!(m.version, 4000);
    rebuild(&nginx, &m.root, &s.path("root-chunks4")).unwrap();
    rebuild(&nginx, &m.kernel, &s.path("kernel-chunks4")).unwrap();
    let chunk_files = walk(&s.path("channel").join(boot::release::CHUNKS));
    let index = std::fs::read(
        s.path("root-chunks4").join(
            boot::release::IndexPath(&m.root.index)
                .to_string()
                .rsplit('/')
                .next()
                .unwrap(),
        ),
    )
    .unwrap();
    let kernel_index = std::fs::read(
        s.path("kernel-chunks4").join(
            boot::release::IndexPath(&m.kernel.index)
                .to_string()
                .rsplit('/')
                .next()
                .unwrap(),
        ),
    )
    .unwrap();
    let named: std::collections::HashSet<[u8; 32]> = boot::chunks::index_chunks(&index)
        .unwrap()
        .chain(boot::chunks::index_chunks(&kernel_index).unwrap())
        .map(|c| c.sha256)
        .collect();
    assert_eq!(
        chunk_files,
        named.len(),
        "exactly the chunks the kept release names"
    );

    // Read back for `push --release`: whole and checked; a damaged chunk and another
    // instance's key are refused, naming what is wrong.
    let instance = imgtool::instance::Instance::open_existing(&s.path("instance")).unwrap();
    let parts = imgtool::slot_parts::read_release(&s.path("channel"), &instance).unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&parts.root)), m.root.sha256);
    assert!(parts.cmdline(3).ends_with("rk.test=1\n"));
    let damaged = s.path("damaged");
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(s.path("channel"))
            .arg(&damaged),
    );
    let chunk = damaged.join(boot::release::ChunkPath(named.iter().next().unwrap()).to_string());
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&chunk, bytes).unwrap();
    let err = imgtool::slot_parts::read_release(&damaged, &instance)
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("does not hold the chunk its name says"),
        "{err:#}"
    );
    let other = Scratch::new("channel-other");
    small_image(&other, &other.path("o.img"), "1G");
    let stranger = imgtool::instance::Instance::open_existing(&other.path("instance")).unwrap();
    let err = imgtool::slot_parts::read_release(&s.path("channel"), &stranger)
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("not signed by this instance's slot-signing key"),
        "{err:#}"
    );
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A published release pushed to a device (`imgtool push --release`): its manifest checked
/// against the instance's key (a changed one is refused before anything is sent), its
/// images rebuilt from their chunks, its slot sealed as published. The device boots it,
/// commits, and runs the manifest's build.
#[test]
fn a_published_release_pushed_to_a_device_boots_and_commits() {
    use harness::{Options, Vm};
    let s = Scratch::new("channel-push");
    let image = s.path("c.img");
    default_image(&s, &image, 60);
    let extra = s.path("extra");
    tiny_static_elf(&extra, 4096, 21);
    // Newer than the image's seal, which mkimg made a moment ago.
    let version = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 10;
    let channel = s.path("channel");
    // Publishes the default programs and `extra` at `version`; the manifest's text and the
    // build id it gives root partition `partition`.
    let publish_extra = |version: u64, partition: usize| {
        publish_to(
            &s,
            &channel,
            version,
            &extra,
            &["--kernel-arg", "rustkrazy.trial_timeout=60"],
        );
        let manifest = std::fs::read_to_string(channel.join("manifest")).unwrap();
        let slot = boot::release::parse(&manifest).unwrap().manifest.slots[partition - 2];
        let build = boot::encoding::Hex(&slot.build).to_string();
        (manifest, build)
    };
    let (manifest, build) = publish_extra(version, 3);

    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    vm.wait_for(
        "admind: listening on",
        0,
        std::time::Duration::from_secs(180),
    )
    .unwrap_or_else(|c| panic!("admind did not start: {c}"));

    // A manifest changed after it was signed: refused, nothing sent.
    let forged = s.path("forged");
    std::fs::create_dir_all(&forged).unwrap();
    for dir in [boot::release::CHUNKS, boot::release::INDEXES] {
        run_ok(
            Command::new("cp")
                .arg("-r")
                .arg(channel.join(dir))
                .arg(&forged),
        );
    }
    std::fs::write(
        forged.join("manifest"),
        manifest.replace("rollout 100", "rollout 99"),
    )
    .unwrap();
    let push = |dir: &Path| {
        remote(&s, vm.admind_port, "push")
            .args(["--timeout", "150", "--release"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = push(&forged);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("not signed by this instance's slot-signing key"),
        "{said}"
    );
    assert!(!said.contains("push: sending"), "nothing sent: {said}");

    let out = push(&channel);
    let said = assert_push_committed(&out, 3, &vm.console());
    println!(
        "figure: {}",
        line(&said, "push: sending the root image to slot 3")
    );
    let status = common::status_when_up(&s, vm.admind_port, std::time::Duration::from_secs(90));
    let root3 = status
        .lines()
        .find(|l| l.starts_with("root 3"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        root3.contains(&build[..16]),
        "runs the manifest's build {build}: {status}"
    );
    assert!(status.contains("service   extra"), "{status}");

    // A newer release goes to the other slot, with that slot's command line and seal.
    tiny_static_elf(&extra, 8192, 22);
    let older = s.path("older");
    run_ok(Command::new("cp").arg("-r").arg(&channel).arg(&older));
    let (_, build2) = publish_extra(version + 10, 2);
    let out = push(&channel);
    assert_push_committed(&out, 2, &vm.console());
    let status = common::status_when_up(&s, vm.admind_port, std::time::Duration::from_secs(90));
    let root2 = status
        .lines()
        .find(|l| l.starts_with("root 2"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        root2.contains(&build2[..16]),
        "runs the manifest's build {build2}: {status}"
    );
    // The first release is now older than what the device committed: refused before
    // anything is sent.
    let out = push(&older);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("older than the device's committed slot"),
        "{said}"
    );
    assert!(!said.contains("push: sending"), "nothing sent: {said}");
    vm.kill();
}

/// `imgtool publish` of the default programs, `extra` and `args` into `channel` at
/// `version`; prints its report line as a figure.
fn publish_to(s: &Scratch, channel: &Path, version: u64, extra: &Path, args: &[&str]) {
    let said = text(&run_ok(
        imgtool()
            .env("SOURCE_DATE_EPOCH", version.to_string())
            .args(["publish", "--channel"])
            .arg(channel)
            .arg("--instance")
            .arg(s.path("instance"))
            .arg("--bin")
            .arg(extra)
            .args(args),
    ));
    println!("figure: {}", line(&said, "publish: release"));
}

/// A P-256 certificate and key made by openssl in `dir`, as a channel's server would have;
/// the key's pin as the appliance file writes it.
fn server_pair(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
            .args(["-subj", "/CN=channel", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")),
    );
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let der = CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap();
    let pin = admin_api::cert::certificate_pin(&der).unwrap();
    admin_api::cert::Pin(&pin).to_string()
}

/// `imgtool status` of the device on `port` once its line `channel ...` says `want`;
/// fails after `timeout`, with the device's console.
fn channel_status(
    s: &Scratch,
    vm: &harness::Vm,
    want: &str,
    timeout: std::time::Duration,
) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let out = remote(s, vm.admind_port, "status").output().unwrap();
        let said = stdout(&out);
        if out.status.success() && said.contains(want) {
            return said;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {want:?} in the status:\n{said}\n{}",
            vm.console()
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// Two QEMU devices follow a channel nginx serves over TLS (its key pinned in the appliance
/// file): each takes a release with one program added, fetching a share of the root,
/// reboots into it and commits it itself; a release changing only the command line fetches
/// only its indexes; a power cut while one device takes the next release leaves it on a
/// slot that boots, and it finishes the update after.
#[test]
fn devices_following_a_channel_update_themselves_and_finish_after_a_power_cut() {
    use harness::{Options, Vm};
    let s = Scratch::new("channel-follow");
    let pin = server_pair(&s.path("tls"));
    let www = s.path("www");
    let channel = www.join("ch");
    std::fs::create_dir_all(&channel).unwrap();
    let nginx = Nginx::serve_tls(&s, &www, Some(&s.path("tls")));
    let config = s.path("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "kernel_args = [\"rustkrazy.trial_timeout=90\"]\n[update]\nchannel = \"https://10.0.2.2:{}/ch\"\npin = \"{pin}\"\npoll = 10\n",
            nginx.port
        ),
    )
    .unwrap();
    let image = s.path("a.img");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--size", "1G", "--config"])
            .arg(&config)
            .arg(&image),
    );
    let second = s.path("b.img");
    std::fs::copy(&image, &second).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let extra = s.path("extra");
    // Publishes the default programs, `extra`, and `args` at `version`; the root's length.
    let publish_at = |version: u64, args: &[&str]| {
        let config = config.display().to_string();
        publish_to(
            &s,
            &channel,
            version,
            &extra,
            &[&["--config", &config], args].concat(),
        );
        let manifest = std::fs::read_to_string(channel.join("manifest")).unwrap();
        boot::release::parse(&manifest).unwrap().manifest.root.bytes
    };
    let fetched = |status: &str| -> u64 {
        let at = status.find("fetched ").unwrap() + "fetched ".len();
        let digits: String = status[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    let running = |v: u64| format!("running https://10.0.2.2:{}/ch release {v}", nginx.port);
    let minutes = |m: u64| std::time::Duration::from_secs(m * 60);

    // Release 1: one program added.
    tiny_static_elf(&extra, 40_000, 31);
    let root_bytes = publish_at(now + 10, &[]);
    let mut vms: Vec<Vm> = [&image, &second]
        .iter()
        .map(|i| Vm::boot(i, &Options::default()).unwrap())
        .collect();
    for vm in &vms {
        let status = channel_status(&s, vm, &running(now + 10), minutes(6));
        println!("figure: release 1 (one 40 KB program added): fetched {} bytes, the root is {root_bytes}", fetched(&status));
        assert!(fetched(&status) < root_bytes / 2, "{status}");
        assert!(status.contains("service   extra"), "{status}");
    }

    // Release 2: only the command line differs.
    publish_at(now + 20, &["--kernel-arg", "rustkrazy.release=2"]);
    for vm in &vms {
        let status = channel_status(&s, vm, &running(now + 20), minutes(6));
        println!(
            "figure: release 2 (command line only): fetched {} bytes",
            fetched(&status)
        );
        assert!(fetched(&status) < 16 * 1024, "{status}");
    }

    // Release 3, and the first device's power cut as it starts taking it.
    tiny_static_elf(&extra, 60_000, 32);
    publish_at(now + 30, &[]);
    let from = vms[0].position();
    vms[0]
        .wait_for("admind: channel: taking release", from, minutes(3))
        .unwrap_or_else(|c| panic!("the first device did not take release 3: {c}"));
    vms[0].kill();
    vms[0] = Vm::boot(&image, &Options::default()).unwrap();
    for vm in &vms {
        let status = channel_status(&s, vm, &running(now + 30), minutes(8));
        assert!(!status.contains("trial     uncommitted"), "{status}");
        println!(
            "figure: release 3 (one program grown to 60 KB): fetched {} bytes",
            fetched(&status)
        );
    }
    for vm in &mut vms {
        vm.kill();
    }
}
