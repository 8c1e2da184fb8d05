//! The checks, each what a common crate does the way programs use it. Each returns what it
//! saw, or the error (std's io errors name the errno: "(os error 13)").

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

type Check = fn() -> Result<String, String>;

pub const ALL: [(&str, Check); 7] = [
    ("sqlite", sqlite),
    ("tokio", tokio_runtime),
    ("notify", notify_watch),
    ("memmap2", memory_map),
    ("threads", threads),
    ("processes", processes),
    ("ring", ring_random),
];

/// Where the checks keep files that must outlive a boot: the program's folder on /data.
fn data_dir() -> Result<PathBuf, String> {
    let dir = Path::new("/data/compat");
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}

fn err(what: &str) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// SQLite (bundled, compiled by zig): a database on /data in WAL mode (fcntl locks and a
/// shared memory map of its -shm file), a row per run; a second process is refused the write
/// lock while this one holds it (SQLITE_BUSY), then reads every row.
fn sqlite() -> Result<String, String> {
    let path = data_dir()?.join("sq.db");
    let db = rusqlite::Connection::open(&path).map_err(err("open"))?;
    let mode: String = db
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(err("journal_mode=WAL"))?;
    if mode != "wal" {
        return Err(format!("journal mode is {mode}, not wal"));
    }
    db.execute_batch("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, at INTEGER)")
        .map_err(err("create table"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    db.execute("INSERT INTO runs (at) VALUES (?1)", [now])
        .map_err(err("insert"))?;
    let rows: i64 = db
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .map_err(err("count"))?;

    db.execute_batch("BEGIN IMMEDIATE").map_err(err("begin"))?;
    let locked_out = second(&["sqlite-write", &path.to_string_lossy()])?;
    db.execute_batch("COMMIT").map_err(err("commit"))?;
    if locked_out != "busy" {
        return Err(format!(
            "a second writer was not refused while this one wrote: {locked_out}"
        ));
    }
    let seen = second(&["sqlite-read", &path.to_string_lossy()])?;
    if seen != rows.to_string() {
        return Err(format!("a second process read {seen} rows, not {rows}"));
    }
    Ok(format!(
        "{} rows {rows}, WAL, a second writer refused while one wrote, a second reader saw {seen}",
        rusqlite::version()
    ))
}

/// tokio's multi-threaded runtime: TCP server and client, a timer, a signal, spawn_blocking,
/// files.
fn tokio_runtime() -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let io = |what: &'static str| move |e: std::io::Error| format!("{what}: {e}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("bind"))?;
        let addr = listener.local_addr().map_err(io("local_addr"))?;
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await?;
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await?;
            s.write_all(&buf).await
        });
        let mut client = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(io("connect"))?;
        client.write_all(b"hello").await.map_err(io("write"))?;
        let mut back = [0u8; 5];
        client.read_exact(&mut back).await.map_err(io("read"))?;
        server
            .await
            .map_err(|e| format!("server task: {e}"))?
            .map_err(io("server"))?;
        if &back != b"hello" {
            return Err("the echo came back changed".to_string());
        }
        let started = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let slept = started.elapsed();
        let blocking = tokio::task::spawn_blocking(|| 6 * 7)
            .await
            .map_err(|e| format!("spawn_blocking: {e}"))?;
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .map_err(io("signal"))?;
        // SAFETY: kill(2) on our own pid with SIGUSR1, which tokio has a handler for.
        if unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        tokio::time::timeout(Duration::from_secs(5), usr1.recv())
            .await
            .map_err(|_| "SIGUSR1 did not arrive within 5 s".to_string())?;
        let file = std::env::temp_dir().join("compat-tokio");
        tokio::fs::write(&file, b"tokio")
            .await
            .map_err(io("fs write"))?;
        let read = tokio::fs::read(&file).await.map_err(io("fs read"))?;
        let _ = tokio::fs::remove_file(&file).await;
        if read != b"tokio" {
            return Err("tokio::fs read back something else".to_string());
        }
        Ok(format!(
            "TCP echo, sleep 50 ms took {} ms, spawn_blocking {blocking}, SIGUSR1 received, fs",
            slept.as_millis()
        ))
    })
}

/// notify (inotify): a file created in a watched /data folder is reported.
fn notify_watch() -> Result<String, String> {
    use notify::Watcher;
    let dir = data_dir()?.join("watched");
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir: {e}"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .map_err(|e| format!("watcher: {e}"))?;
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .map_err(|e| format!("watch: {e}"))?;
    let file = dir.join(format!("file-{}", std::process::id()));
    std::fs::write(&file, b"x").map_err(|e| format!("write: {e}"))?;
    let event = rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| "no event within 5 s".to_string())?
        .map_err(|e| format!("event: {e}"))?;
    let _ = std::fs::remove_file(&file);
    Ok(format!("{:?} on {}", event.kind, file.display()))
}

/// memmap2: a shared, writable map of a /data file, advised (madvise), flushed (msync) and
/// read back through the file.
fn memory_map() -> Result<String, String> {
    let path = data_dir()?.join("mapped");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| format!("open: {e}"))?;
    const LEN: usize = 1 << 20;
    file.set_len(LEN as u64)
        .map_err(|e| format!("set_len: {e}"))?;
    // SAFETY: the file is ours alone (this process made it and nothing else writes it).
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(|e| format!("mmap: {e}"))?;
    map.advise(memmap2::Advice::Sequential)
        .map_err(|e| format!("madvise: {e}"))?;
    for (i, b) in map.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    map.flush().map_err(|e| format!("msync: {e}"))?;
    drop(map);
    let back = std::fs::read(&path).map_err(|e| format!("read: {e}"))?;
    let _ = std::fs::remove_file(&path);
    if back.len() != LEN || back.iter().enumerate().any(|(i, &b)| b != (i % 251) as u8) {
        return Err("the file does not hold what was written through the map".to_string());
    }
    Ok("1 MiB written through a shared map, madvise, msync, read back".to_string())
}

/// std threads: four, joined, with a shared counter.
fn threads() -> Result<String, String> {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "a thread panicked".to_string())?;
    }
    let n = counter.load(std::sync::atomic::Ordering::Relaxed);
    if n != 400_000 {
        return Err(format!("the threads counted {n}, not 400000"));
    }
    Ok("4 threads, 400000 increments".to_string())
}

/// A child process, its stdin and stdout through pipes: 64 KiB there and back.
fn processes() -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .arg("echo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let data: Vec<u8> = (0..65536u32).map(|i| (i % 253) as u8).collect();
    let mut stdin = child.stdin.take().ok_or("no stdin pipe")?;
    let sent = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&sent));
    let mut back = Vec::new();
    child
        .stdout
        .take()
        .ok_or("no stdout pipe")?
        .read_to_end(&mut back)
        .map_err(|e| format!("read: {e}"))?;
    writer
        .join()
        .map_err(|_| "writer panicked".to_string())?
        .map_err(|e| format!("write: {e}"))?;
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if !status.success() || back != data {
        return Err(format!(
            "the child ({status}) sent back {} bytes, not the same 65536",
            back.len()
        ));
    }
    Ok(format!("pid {} echoed 65536 bytes", child.id()))
}

/// ring (C and assembly compiled by zig): the kernel's random numbers (getrandom), a SHA-256.
fn ring_random() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut buf = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| "SystemRandom::fill failed".to_string())?;
    if buf == [0u8; 32] {
        return Err("32 random bytes were all zero".to_string());
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, b"abc");
    if digest.as_ref()[..4] != [0xba, 0x78, 0x16, 0xbf] {
        return Err("SHA-256(abc) is wrong".to_string());
    }
    Ok("32 random bytes, SHA-256".to_string())
}

/// Runs `compat ARGS` and returns what it printed, trimmed.
fn second(args: &[&str]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| format!("starting a second process: {e}"))?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!("the second process ({}) failed: {said}", args[0]));
    }
    Ok(said)
}

/// The modes the checks start as second processes; returns the exit code.
pub fn second_process(mode: &str, args: &[String]) -> i32 {
    let path = args.first().map(PathBuf::from).unwrap_or_default();
    let result = match mode {
        // Tries to take the write lock at once: "busy" while another process holds it.
        "sqlite-write" => rusqlite::Connection::open(&path).and_then(|db| {
            db.busy_timeout(Duration::ZERO)?;
            match db.execute_batch("BEGIN IMMEDIATE") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy =>
                {
                    Ok("busy".to_string())
                }
                Err(e) => Err(e),
                Ok(()) => Ok("got the lock".to_string()),
            }
        }),
        "sqlite-read" => rusqlite::Connection::open(&path).and_then(|db| {
            db.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
                .map(|n| n.to_string())
        }),
        "echo" => {
            let mut data = Vec::new();
            let copied = std::io::stdin()
                .read_to_end(&mut data)
                .and_then(|_| std::io::stdout().write_all(&data));
            return if copied.is_ok() { 0 } else { 1 };
        }
        _ => {
            eprintln!("compat: unknown mode {mode}");
            return 2;
        }
    };
    match result {
        Ok(said) => {
            println!("{said}");
            0
        }
        Err(e) => {
            println!("{e}");
            1
        }
    }
}
