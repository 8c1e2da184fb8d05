//! The saved clock (`boot::clock::SAVED_PATH` on /data): a board without a real-time clock
//! starts at 1970, so init sets the clock forward to the last saved time before any service
//! starts, and saves the time every few minutes and at shutdown.

use crate::log;
use crate::sys::{read_file, Console, Text};
use boot::clock::{self, Utc};
use core::fmt::Write;
use rustix::fs::Mode;
use rustix::time::{ClockId, Timespec};

fn now_s() -> u64 {
    let t = rustix::time::clock_gettime(ClockId::Realtime);
    u64::try_from(t.tv_sec).unwrap_or(0)
}

/// Moves a clock that is behind the saved one forward to it; says so in one line.
pub fn restore(console: &Console) {
    let mut buf = [0u8; 32];
    let saved = match read_file(clock::SAVED_PATH, &mut buf) {
        Ok(text) => clock::parse_saved(text),
        Err(_) => return, // first boot, or no /data: nothing saved
    };
    let Some(saved) = saved else {
        return log!(
            console,
            "init: {:?} does not hold a time; ignoring it",
            clock::SAVED_PATH
        );
    };
    let now = now_s();
    let Some(to) = clock::restore_to(now, saved) else {
        return;
    };
    let time = Timespec {
        tv_sec: to as i64,
        tv_nsec: 0,
    };
    match rustix::time::clock_settime(ClockId::Realtime, time) {
        Ok(()) => log!(
            console,
            "init: clock set forward from {} to the saved {}",
            Utc(now),
            Utc(to)
        ),
        Err(e) => log!(
            console,
            "init: cannot set the clock to the saved time: {}",
            e
        ),
    }
}

/// Saves the current time (atomically, synced); quiet when /data is not there.
pub fn save(console: &Console) {
    let mut text: Text<32> = Text::new();
    let _ = writeln!(text, "{}", now_s());
    let _ = rustix::fs::mkdir(clock::SAVED_DIR, Mode::from_raw_mode(0o755));
    let result = runtime::file::replace_file_durably(
        clock::SAVED_TEMP_PATH,
        clock::SAVED_PATH,
        text.as_bytes(),
    );
    // EROFS/ENOENT: /data is not mounted (the root is read-only) or was remounted read-only.
    if let Err(e) = result {
        if e != rustix::io::Errno::ROFS && e != rustix::io::Errno::NOENT {
            log!(console, "init: cannot save the clock: {}", e);
        }
    }
}
