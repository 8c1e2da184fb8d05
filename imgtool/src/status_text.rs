//! `imgtool status`'s text: the device's `/status` document as aligned lines.

use admin_api::status::{Clock, Status};
use std::fmt::Write;

/// The lines `imgtool status` prints for `v`.
pub fn render(v: &Status) -> String {
    let mut out = String::new();
    let shown = |n: Option<u8>| n.map_or("?".to_string(), |n| n.to_string());
    let _ = writeln!(out, "hostname  {}", v.hostname);
    let _ = writeln!(out, "uptime    {} s", v.uptime_s);
    let _ = writeln!(out, "clock     {}", describe_clock(&v.clock));
    if let Some(boot) = &v.boot {
        let from = boot.from.map(|f| format!(" (from root {f})"));
        let _ = writeln!(
            out,
            "boot      root {}, {}{}",
            shown(v.active_slot),
            boot.state,
            from.unwrap_or_default()
        );
        if let Some(refused) = &boot.refused {
            let _ = writeln!(
                out,
                "          the UEFI boot program refused slot {refused} (partition:why) and booted this one"
            );
        }
        if let Some(copies) = &boot.record_damaged {
            let _ = writeln!(
                out,
                "          init found boot record copy {copies} damaged and rewrote it"
            );
        }
    }
    if v.uncommitted_trial {
        let _ = writeln!(out, "trial     uncommitted: it rolls back unless committed");
    }
    if let Some(r) = &v.record {
        let _ = writeln!(
            out,
            "record    committed root {}, next boot root {} ({}){}",
            r.committed,
            r.next_boot,
            r.state,
            r.attempts
                .map(|n| format!(", {n} boot(s) not reaching init"))
                .unwrap_or_default()
        );
        if let Some(copies) = &r.damaged {
            let _ = writeln!(
                out,
                "          copy {copies} damaged now: the next record write or a restart repairs it"
            );
        }
    }
    let _ = writeln!(
        out,
        "seals     {}",
        if v.seals_required {
            "required: slots are armed only when sealed by a key the running root trusts"
        } else {
            "not required: this root arms unsealed slots"
        }
    );
    if let Some(keys) = &v.boot_program_keys {
        let ids: Vec<&str> = keys.iter().map(|k| k.get(..16).unwrap_or(k)).collect();
        let _ = writeln!(
            out,
            "          the UEFI boot program boots slots sealed by {}",
            if ids.is_empty() {
                "anyone (it holds no keys)".to_string()
            } else {
                format!("key {}", ids.join(", "))
            }
        );
    }
    for (slot, root) in &v.roots {
        let build = root
            .build
            .as_deref()
            .unwrap_or("none (incomplete: no verified root, kernel and command line)");
        let mark = if Some(*slot) == v.active_slot {
            " (running)"
        } else {
            ""
        };
        let _ = writeln!(out, "root {slot}    build {build}{mark}");
        let _ = writeln!(
            out,
            "  kernel  {}",
            root.kernel_version.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            out,
            "  cmdline {}",
            root.cmdline_text.as_deref().unwrap_or("?").trim_end()
        );
        let _ = match &root.seal {
            Some(s) => writeln!(
                out,
                "  sealed  by key {}, version {}, {}{}",
                s.signer.get(..16).unwrap_or(&s.signer),
                s.version,
                s.arch,
                if s.older_allowed {
                    ", older allowed"
                } else {
                    ""
                }
            ),
            None => writeln!(out, "  sealed  no"),
        };
    }
    let _ = writeln!(
        out,
        "memory    {} kB available of {} kB",
        v.memory.available_kb, v.memory.total_kb
    );
    for s in &v.services {
        let _ = write!(
            out,
            "service   {} pid {} {} rss {} kB restarts {}",
            s.name,
            s.pid.map_or("null".into(), |p| p.to_string()),
            s.state,
            s.rss_kb,
            s.restarts.map_or("null".into(), |r| r.to_string())
        );
        match s.user {
            Some(0) => out.push_str(" user root"),
            Some(id) => {
                let _ = write!(out, " user {id}");
            }
            None => {}
        }
        for (count, what) in [
            (s.memory_kills, "killed at its memory limit"),
            (s.tasks_refused, "forks refused at its task limit"),
        ] {
            if let Some(n @ 1..) = count {
                let _ = write!(out, "; {what}: {n}");
            }
        }
        out.push('\n');
    }
    if let Some(c) = &v.channel {
        let _ = writeln!(out, "channel   {} ({}): {}", c.url, c.state, c.result);
        let _ = writeln!(
            out,
            "          offered {}, fetched {} bytes{}",
            c.offered
                .map_or("nothing yet".into(), |o| format!("release {o}")),
            c.fetched_bytes,
            c.updated_from
                .as_ref()
                .map(|f| format!(", running {f}"))
                .unwrap_or_default()
        );
    }
    out
}

/// One line about the device's clock from `/status`.
fn describe_clock(c: &Clock) -> String {
    let now = boot::clock::Utc(c.now_s).to_string();
    match c.synchronised {
        Some(true) => format!(
            "{now}, synchronised with {} (stratum {}, offset {} ms at the last poll)",
            c.server.as_deref().unwrap_or("?"),
            c.stratum.map_or("?".into(), |s| s.to_string()),
            c.offset_ms.map_or("?".into(), |o| o.to_string())
        ),
        Some(false) => format!("{now}, not synchronised yet"),
        None => format!("{now}, not kept by a time server"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use admin_api::status::{Boot, Root, Service};

    #[test]
    fn names_the_running_root_the_trial_and_each_service() {
        let v = Status {
            hostname: "thermo".into(),
            active_slot: Some(3),
            uncommitted_trial: true,
            boot: Some(Boot {
                state: "fell-back".into(),
                from: Some(2),
                record_damaged: Some("1".into()),
                refused: Some("3:unsealed".into()),
                timeout_s: None,
            }),
            roots: [
                (2, Root::default()),
                (
                    3,
                    Root {
                        build: Some("ab".repeat(32)),
                        seal: Some(admin_api::status::Seal {
                            signer: "5a".repeat(32),
                            version: 7,
                            arch: "x86_64".into(),
                            older_allowed: false,
                        }),
                        ..Root::default()
                    },
                ),
            ]
            .into(),
            services: vec![
                Service {
                    name: "link".into(),
                    pid: Some(7),
                    state: "S".into(),
                    rss_kb: 300,
                    restarts: None,
                    user: Some(0),
                    memory_kills: Some(0),
                    tasks_refused: None,
                },
                Service {
                    name: "web".into(),
                    pid: Some(9),
                    state: "S".into(),
                    rss_kb: 900,
                    restarts: Some(2),
                    user: Some(20_000),
                    memory_kills: Some(2),
                    tasks_refused: Some(5),
                },
            ],
            ..Status::default()
        };
        let text = render(&v);
        assert!(text.contains("hostname  thermo\n"), "{text}");
        assert!(
            text.contains("boot      root 3, fell-back (from root 2)\n"),
            "{text}"
        );
        assert!(text.contains("record copy 1 damaged and rewrote"), "{text}");
        assert!(text.contains("refused slot 3:unsealed"), "{text}");
        assert!(text.contains("trial     uncommitted"), "{text}");
        assert!(text.contains("root 2    build none (incomplete"), "{text}");
        assert!(text.contains("seals     not required"), "{text}");
        assert!(
            text.contains("  sealed  by key 5a5a5a5a5a5a5a5a, version 7, x86_64\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("root 3    build {} (running)", "ab".repeat(32))),
            "{text}"
        );
        assert!(
            text.contains("service   link pid 7 S rss 300 kB restarts null user root\n"),
            "{text}"
        );
        assert!(
            text.contains("service   web pid 9 S rss 900 kB restarts 2 user 20000; killed at its memory limit: 2; forks refused at its task limit: 5\n"),
            "{text}"
        );
        assert!(text.contains("not kept by a time server"), "{text}");
    }
}
