//! QEMU test harness for end-to-end tests: boots an image the way `imgtool qemu` does (BIOS
//! or UEFI, virtio disk, user networking), collects the serial console, waits for markers with a
//! deadline, and always kills the VM (on `kill`, on drop, and so on a failed assertion).

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod lab;
pub use lab::Lab;

/// Console bytes kept for error messages (the tail of the transcript).
const TRANSCRIPT_BYTES_MAX: usize = 256 << 10;

/// A running VM.
pub struct Vm {
    child: Child,
    console: Arc<(Mutex<Transcript>, Condvar)>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    /// Host port forwarded to admind inside the guest.
    pub admind_port: u16,
    /// (guest port, host port) for each of `Options::forwards`.
    forwards: Vec<(u16, u16)>,
}

/// The console text kept so far, and how many bytes were dropped from its front, so
/// positions stay absolute however long the VM talks.
#[derive(Default)]
struct Transcript {
    text: String,
    dropped: usize,
}

impl Transcript {
    /// Index into `text` of absolute position `from` (clamped, on a char boundary).
    fn local(&self, from: usize) -> usize {
        let local = from.saturating_sub(self.dropped).min(self.text.len());
        (local..=self.text.len())
            .find(|&i| self.text.is_char_boundary(i))
            .unwrap_or(self.text.len())
    }
}

/// Boot options; `Default` gives 512 MiB and reboots allowed.
#[derive(Clone, Debug)]
pub struct Options {
    /// BIOS (the MBR code boots) or UEFI (OVMF runs the UEFI boot program).
    pub firmware: imgtool::qemu::Firmware,
    /// The Raspberry Pi QEMU emulates, for a Pi image.
    pub board: imgtool::qemu::Board,
    pub memory_mib: u32,
    pub no_reboot: bool,
    /// Guest TCP ports to forward from free host ports (see `Vm::host_port`).
    pub forwards: Vec<u16>,
    /// More QEMU arguments (e.g. `-kernel` to measure the boot code's cost).
    pub extra_args: Vec<String>,
    /// Run QEMU inside this lab, on its tap device, instead of on QEMU's user network.
    pub lab: Option<LabLink>,
    /// The host port forwarded to admind [default: a free one] (e.g. another device at the
    /// address an earlier one had).
    pub admind_port: Option<u16>,
}

/// Where a VM plugs into a [`Lab`]: its network namespace and tap device.
#[derive(Clone, Debug)]
pub struct LabLink {
    pub netns: String,
    pub tap: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            firmware: imgtool::qemu::Firmware::Bios,
            board: imgtool::qemu::Board::default(),
            memory_mib: 512,
            no_reboot: false,
            forwards: Vec::new(),
            extra_args: Vec::new(),
            lab: None,
            admind_port: None,
        }
    }
}

impl Vm {
    /// Starts QEMU on `image`.
    pub fn boot(image: &Path, options: &Options) -> std::io::Result<Vm> {
        let admind_port = match options.admind_port {
            Some(port) => port,
            None => imgtool::qemu::free_port()?,
        };
        let mut forwards = Vec::new();
        for &guest in &options.forwards {
            forwards.push((guest, imgtool::qemu::free_port()?));
        }
        let machine = imgtool::qemu::Machine::of_image(image)?;
        let qemu_options = imgtool::qemu::Options {
            machine,
            firmware: options.firmware,
            board: options.board,
            memory_mib: options.memory_mib,
            admind_host_port: admind_port,
            forwards: forwards.iter().map(|&(g, h)| (h, g)).collect(),
            no_reboot: options.no_reboot,
            interactive: false,
            tap: options.lab.as_ref().map(|l| l.tap.clone()),
        };
        let qemu = if machine == imgtool::qemu::Machine::Raspi {
            // The Pi's firmware is played by `imgtool qemu`, which restarts QEMU on each
            // guest restart from the slot the firmware would choose.
            raspi_command(image, &qemu_options)
        } else {
            imgtool::qemu::command(image, &qemu_options)
                .map_err(|e| std::io::Error::other(format!("{e:#}")))?
        };
        let mut cmd = match &options.lab {
            Some(lab) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &lab.netns])
                    .arg(qemu.get_program())
                    .args(qemu.get_args());
                cmd
            }
            None => qemu,
        };
        cmd.args(&options.extra_args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd.spawn()?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let console = Arc::new((Mutex::new(Transcript::default()), Condvar::new()));
        let sink = Arc::clone(&console);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (transcript, wake) = &*sink;
                let mut t = transcript.lock().unwrap();
                t.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                if t.text.len() > TRANSCRIPT_BYTES_MAX {
                    let cut = t.text.len() - TRANSCRIPT_BYTES_MAX / 2;
                    let cut = (cut..t.text.len())
                        .find(|&i| t.text.is_char_boundary(i))
                        .unwrap_or(t.text.len());
                    t.text.drain(..cut);
                    t.dropped += cut;
                }
                wake.notify_all();
            }
            sink.1.notify_all();
        });
        Ok(Vm {
            child,
            console,
            reader: Some(reader),
            started,
            admind_port,
            forwards,
        })
    }

    /// The host port forwarded to `guest` (one of `Options::forwards`).
    pub fn host_port(&self, guest: u16) -> Option<u16> {
        self.forwards.iter().find(|f| f.0 == guest).map(|f| f.1)
    }

    /// Waits for a whole console line holding `marker` after `from`: returns the line from
    /// the marker on (without its end) and the position past the line's end.
    pub fn wait_line(
        &mut self,
        marker: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<(String, usize), String> {
        let start = self.wait_for(marker, from, timeout)?.0 - marker.len();
        let end = self.wait_for("\n", start, Duration::from_secs(10))?.0;
        let line = self.console_from(start);
        let line = line[..(end - start).min(line.len())].trim_end().to_string();
        Ok((line, end))
    }

    /// Waits for each marker in turn, each after the one before; returns the position past
    /// the last. Panics with the marker and the transcript when one does not come.
    pub fn expect_in_order(&mut self, markers: &[&str], timeout: Duration) -> usize {
        let mut at = 0;
        for marker in markers {
            at = self
                .wait_for(marker, at, timeout)
                .unwrap_or_else(|console| panic!("waiting for {marker:?}: {console}"))
                .0;
        }
        at
    }

    /// Waits until the console shows `marker` after position `from` (0, or a position an
    /// earlier call returned); returns the position just past it and the time since QEMU
    /// started. Positions count every byte ever printed, however much of the transcript is
    /// kept. On timeout the error holds the transcript.
    pub fn wait_for(
        &mut self,
        marker: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<(usize, Duration), String> {
        let deadline = Instant::now() + timeout;
        let (transcript, wake) = &*self.console;
        let mut guard = transcript.lock().unwrap();
        loop {
            let local = guard.local(from);
            if let Some(at) = guard.text[local..].find(marker) {
                return Ok((
                    guard.dropped + local + at + marker.len(),
                    self.started.elapsed(),
                ));
            }
            let now = Instant::now();
            let exited = self.child.try_wait().ok().flatten();
            if now >= deadline || exited.is_some() {
                let why = match exited {
                    Some(status) => format!("QEMU exited ({status})"),
                    None => format!("no {marker:?} within {timeout:?}"),
                };
                return Err(format!("{why}; console:\n{}", guard.text));
            }
            guard = wake
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(200)))
                .unwrap()
                .0;
        }
    }

    /// The console text from absolute position `from` on (as much of it as is kept).
    pub fn console_from(&self, from: usize) -> String {
        let t = self.console.0.lock().unwrap();
        t.text[t.local(from)..].to_string()
    }

    /// How many bytes the console has printed so far: a position for `wait_for` that
    /// skips everything already seen.
    pub fn position(&self) -> usize {
        let t = self.console.0.lock().unwrap();
        t.dropped + t.text.len()
    }

    /// Everything the console printed so far (its tail, if very long).
    pub fn console(&self) -> String {
        self.console_from(0)
    }

    /// Waits for QEMU to exit on its own (e.g. after a poweroff).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Kills the VM now (pulling the power) and waits for QEMU to go.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// `imgtool qemu` for a Raspberry Pi image, console on stdout: the imgtool binary beside
/// the test binaries (`target/debug/imgtool`), unless `RUSTKRAZY_IMGTOOL` names one.
fn raspi_command(image: &Path, options: &imgtool::qemu::Options) -> Command {
    let imgtool = std::env::var_os("RUSTKRAZY_IMGTOOL")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("imgtool"))
        })
        .unwrap_or_else(|| "imgtool".into());
    let mut cmd = Command::new(imgtool);
    cmd.args(["qemu", "--serial-only", "--port"])
        .arg(options.admind_host_port.to_string());
    cmd.arg("--board").arg(options.board.option());
    for (host, guest) in &options.forwards {
        cmd.arg("--forward").arg(format!("{host}:{guest}"));
    }
    if options.no_reboot {
        cmd.arg("--no-reboot");
    }
    cmd.arg(image);
    cmd
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}
