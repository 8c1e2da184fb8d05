//! A service's command line and environment, built from the services file into fixed
//! buffers (init has no allocator): each string copied in with its NUL, and the
//! NULL-terminated pointer arrays execve wants pointing into them.

use boot::services::Setting;
use core::ffi::c_char;

/// Most arguments after the program's path, and most variables after `PATH`.
pub const ARGS_MAX: usize = 32;
pub const ENVS_MAX: usize = 32;
/// Bytes of all strings together, NULs included.
pub const STRINGS_BYTES_MAX: usize = 8192;

pub struct ExecArgs {
    strings: [u8; STRINGS_BYTES_MAX],
    used: usize,
    /// Where each argument (the path first) and each variable starts in `strings`.
    args: [usize; ARGS_MAX + 1],
    nargs: usize,
    envs: [usize; ENVS_MAX + 1],
    nenvs: usize,
    /// Arguments and variables left out: over a limit, or holding a NUL.
    pub dropped: usize,
}

impl ExecArgs {
    /// `/bin/NAME` with `PATH=/bin` and service `name`'s `arg` and `env` settings from
    /// `config` (the services file), in order; `None` if the name does not fit.
    pub fn for_service(name: &[u8], config: &[u8]) -> Option<ExecArgs> {
        let mut e = ExecArgs {
            strings: [0; STRINGS_BYTES_MAX],
            used: 0,
            args: [0; ARGS_MAX + 1],
            nargs: 1,
            envs: [0; ENVS_MAX + 1],
            nenvs: 1,
            dropped: 0,
        };
        e.args[0] = e.copy(&[b"/bin/", name])?;
        e.envs[0] = e.copy(&[b"PATH=/bin"])?;
        let settings = boot::services::parse(config).flatten();
        for entry in settings.filter(|s| s.service == name) {
            let added = match entry.setting {
                Setting::Arg(text) if e.nargs <= ARGS_MAX => e.copy(&[text]).map(|start| {
                    e.args[e.nargs] = start;
                    e.nargs += 1;
                }),
                Setting::Env(text) if e.nenvs <= ENVS_MAX => e.copy(&[text]).map(|start| {
                    e.envs[e.nenvs] = start;
                    e.nenvs += 1;
                }),
                Setting::Arg(_) | Setting::Env(_) => None,
                _ => Some(()),
            };
            if added.is_none() {
                e.dropped += 1;
            }
        }
        Some(e)
    }

    /// Copies the concatenation of `parts` with a NUL; where it starts, or `None` if it
    /// does not fit or holds a NUL.
    fn copy(&mut self, parts: &[&[u8]]) -> Option<usize> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.used + len + 1 > self.strings.len() || parts.iter().any(|p| p.contains(&0)) {
            return None;
        }
        let start = self.used;
        for p in parts {
            self.strings[self.used..self.used + p.len()].copy_from_slice(p);
            self.used += p.len();
        }
        self.strings[self.used] = 0;
        self.used += 1;
        Some(start)
    }

    fn pointer(&self, start: usize) -> *const c_char {
        self.strings[start..].as_ptr().cast()
    }

    /// Pointers to the strings at `starts`, then NULLs (`N` is larger than their number).
    fn pointers<const N: usize>(&self, starts: &[usize]) -> [*const c_char; N] {
        let mut out = [core::ptr::null(); N];
        for (o, &start) in out.iter_mut().zip(starts) {
            *o = self.pointer(start);
        }
        out
    }

    /// The program's path as a C string.
    pub fn path(&self) -> *const c_char {
        self.pointer(self.args[0])
    }

    /// argv, NULL-terminated; valid while `self` is neither moved nor dropped.
    pub fn argv(&self) -> [*const c_char; ARGS_MAX + 2] {
        self.pointers(&self.args[..self.nargs])
    }

    /// envp, NULL-terminated; valid while `self` is neither moved nor dropped.
    pub fn envp(&self) -> [*const c_char; ENVS_MAX + 2] {
        self.pointers(&self.envs[..self.nenvs])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ExecArgs {
        fn text(&self, start: usize) -> &[u8] {
            let rest = &self.strings[start..];
            &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
        }

        /// The arguments (the path first) as bytes.
        pub fn args(&self) -> impl Iterator<Item = &[u8]> {
            self.args[..self.nargs].iter().map(|&s| self.text(s))
        }

        /// The environment as bytes.
        pub fn envs(&self) -> impl Iterator<Item = &[u8]> {
            self.envs[..self.nenvs].iter().map(|&s| self.text(s))
        }
    }

    fn lists(e: &ExecArgs) -> (Vec<&[u8]>, Vec<&[u8]>) {
        (e.args().collect(), e.envs().collect())
    }

    #[test]
    fn builds_argv_and_envp_from_the_services_file_in_order() {
        let config =
            b"web arg --port\nweb env LANG=C\nother arg -x\nweb arg 8080\nweb autostart no\n";
        let e = ExecArgs::for_service(b"web", config).unwrap();
        let (args, envs) = lists(&e);
        assert_eq!(args, [&b"/bin/web"[..], b"--port", b"8080"]);
        assert_eq!(envs, [&b"PATH=/bin"[..], b"LANG=C"]);
        assert_eq!(e.dropped, 0);
        let argv = e.argv();
        assert_eq!(argv[0], e.path());
        assert!(!argv[2].is_null() && argv[3].is_null(), "NULL-terminated");
        assert!(e.envp()[2].is_null());
    }

    #[test]
    fn leaves_out_what_is_over_the_limits() {
        let mut config = Vec::new();
        for i in 0..ARGS_MAX + 3 {
            config.extend_from_slice(format!("svc arg a{i}\n").as_bytes());
        }
        let e = ExecArgs::for_service(b"svc", &config).unwrap();
        assert_eq!(
            e.args().count(),
            ARGS_MAX + 1,
            "the path and ARGS_MAX arguments"
        );
        assert_eq!(e.dropped, 3);
        assert!(e.argv()[ARGS_MAX + 1].is_null());
        let long = format!(
            "svc env X={}\nsvc arg last\n",
            "x".repeat(STRINGS_BYTES_MAX)
        );
        let e = ExecArgs::for_service(b"svc", long.as_bytes()).unwrap();
        assert_eq!(lists(&e).0, [&b"/bin/svc"[..], b"last"]);
        assert_eq!(e.dropped, 1);
    }
}
