//! What one service is confined to: its settings from the services file over the defaults of
//! `boot::sandbox`. Applying them is the binary's (`sandbox.rs`, and `sys::spawn` in the
//! child).

use boot::sandbox;
use boot::services::Setting;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confinement {
    /// User and group id; 0 is root.
    pub uid: u32,
    /// Capabilities kept after leaving root (ignored for root, which keeps all).
    pub caps: u64,
    pub memory_bytes: u64,
    pub tasks: u32,
    pub oom: i16,
}

impl Confinement {
    /// Service `name`'s confinement on a machine with `ram_bytes` of memory; the last
    /// setting of each kind wins.
    pub fn for_service(name: &[u8], config: &[u8], ram_bytes: u64) -> Confinement {
        let (share, of) = sandbox::MEMORY_SHARE_DEFAULT;
        let mut c = Confinement {
            uid: sandbox::default_uid(name),
            caps: 0,
            memory_bytes: ram_bytes / of * share,
            tasks: sandbox::TASKS_DEFAULT,
            oom: 0,
        };
        let settings = boot::services::parse(config).flatten();
        for entry in settings.filter(|s| s.service == name) {
            match entry.setting {
                Setting::User(uid) => c.uid = uid,
                Setting::Caps(caps) => c.caps = caps,
                Setting::MemoryBytes(bytes) => c.memory_bytes = bytes,
                Setting::Tasks(n) => c.tasks = n,
                Setting::Oom(adj) => c.oom = adj,
                Setting::Arg(_) | Setting::Env(_) | Setting::Autostart(_) | Setting::Ready(_) => {}
            }
        }
        c
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_a_user_of_its_own_and_limits() {
        let c = Confinement::for_service(b"web", b"other user root\n", 512 << 20);
        assert_eq!(
            c,
            Confinement {
                uid: sandbox::default_uid(b"web"),
                caps: 0,
                memory_bytes: 256 << 20,
                tasks: sandbox::TASKS_DEFAULT,
                oom: 0,
            }
        );
        assert!(!c.is_root());
    }

    #[test]
    fn settings_override_the_defaults() {
        let config = b"web user 20000\nweb user root\nweb caps net_bind_service\nweb memory 1048576\nweb tasks 8\nweb oom -900\nweb arg x\n";
        let c = Confinement::for_service(b"web", config, 512 << 20);
        assert_eq!(
            c,
            Confinement {
                uid: 0,
                caps: 1 << 10,
                memory_bytes: 1 << 20,
                tasks: 8,
                oom: -900,
            }
        );
        assert!(c.is_root());
    }
}
