//! link's command line and its settings file.

use crate::sys::{self, Text};
use crate::time;
use boot::network::{self, Settings};
use core::ffi::{c_char, c_int, CStr};
use link::show::Shown;
use runtime::say;
use rustix::io::Errno;

const RESOLV_CONF_DEFAULT: &[u8] = b"/run/resolv.conf";
/// Largest settings file read; a larger one is refused.
const SETTINGS_BYTES_MAX: usize = 4096;

/// `--config PATH`, `--resolv-conf PATH`, `--clock-status PATH`, `--time off|observe`.
pub struct Options {
    pub config: Text<128>,
    pub resolv_conf: Text<128>,
    pub clock_status: Text<128>,
    pub time_mode: time::Mode,
}

/// The options in `argv`; `None` (said why) when they are wrong.
pub fn parse(argc: c_int, argv: *const *const c_char) -> Option<Options> {
    let mut config: Text<128> = Text::new();
    config.push(network::PATH.as_bytes());
    let mut resolv_conf: Text<128> = Text::new();
    resolv_conf.push(RESOLV_CONF_DEFAULT);
    let mut clock_status: Text<128> = Text::new();
    clock_status.push(boot::clock::STATUS_PATH.as_bytes());
    let mut time_mode = time::Mode::Keep;
    let mut args = (1..argc.max(1) as usize).map(|i| {
        // SAFETY: the C start-up code passes `argc` valid pointers to NUL-terminated
        // strings in `argv`, alive for the whole process.
        unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes()
    });
    while let Some(arg) = args.next() {
        let target = match arg {
            b"--config" => &mut config,
            b"--resolv-conf" => &mut resolv_conf,
            b"--clock-status" => &mut clock_status,
            b"--time" => {
                time_mode = match args.next() {
                    Some(b"off") => time::Mode::Off,
                    Some(b"observe") => time::Mode::Observe,
                    _ => {
                        say!("link: --time takes off or observe");
                        return None;
                    }
                };
                continue;
            }
            _ => {
                say!("link: unknown argument \"{}\"; usage: link [--config PATH] [--resolv-conf PATH] [--clock-status PATH] [--time off|observe]", Shown(arg));
                return None;
            }
        };
        let Some(value) = args.next() else {
            say!("link: {} needs a path", Shown(arg));
            return None;
        };
        *target = Text::new();
        target.push(value);
    }

    Some(Options {
        config,
        resolv_conf,
        clock_status,
        time_mode,
    })
}

/// The settings at `path`, or DHCP everywhere when there are none or they are wrong (said).
pub fn read_settings(path: &mut Text<128>) -> Settings {
    let mut buf = [0u8; SETTINGS_BYTES_MAX];
    let Some(cpath) = path.as_cstr() else {
        say!("link: settings path too long; using DHCP on every Ethernet interface");
        return Settings::default();
    };
    let read = sys::read_file(cpath, &mut buf);
    let shown = Shown(path.as_bytes());
    match read {
        Ok(text) if text.len() == SETTINGS_BYTES_MAX => {
            say!(
                "link: {} is larger than 4 KiB; using DHCP on every Ethernet interface",
                shown
            );
            Settings::default()
        }
        Ok(text) => match network::parse(text) {
            Ok(s) => s,
            Err(e) => {
                say!(
                    "link: {} line {}: {}; using DHCP on every Ethernet interface instead",
                    shown,
                    e.line,
                    e.reason
                );
                Settings::default()
            }
        },
        Err(Errno::NOENT) => Settings::default(),
        Err(e) => {
            say!(
                "link: cannot read {} ({}); using DHCP on every Ethernet interface",
                shown,
                e
            );
            Settings::default()
        }
    }
}
