//! The end of a system: services stopped (SIGTERM, a bounded wait, then SIGKILL to every
//! process), their last output logged, the clock saved, the disk synced and unmounted,
//! then reboot(2) (with the Pi's tryboot flag when a trial is armed).

use crate::log;
use crate::services::{Supervisor, SERVICES_MAX};
use crate::sys::{now_ms, Console};
use rustix::fd::OwnedFd;
use rustix::process::{Signal, WaitOptions};
use rustix::system::RebootCommand;

/// How long services get to exit after SIGTERM at shutdown.
const SHUTDOWN_GRACE_MS: u64 = 5_000;

impl Supervisor {
    /// Stops every service and ends the system with `action`; a restart with `tryboot`
    /// asks the Raspberry Pi firmware for the trial slot. Never returns.
    pub fn shutdown(
        &mut self,
        console: &Console,
        signals: Option<&OwnedFd>,
        action: RebootCommand,
        tryboot: bool,
    ) -> ! {
        let what = if action == RebootCommand::PowerOff {
            "power off"
        } else {
            "reboot"
        };
        log!(console, "init: stopping services to {}", what);
        for service in self.services.iter_mut().flatten() {
            service.restart_at_ms = None;
            if let Some(pid) = service.pid {
                let _ = rustix::process::kill_process_group(pid, Signal::TERM);
            }
        }
        let deadline = now_ms() + SHUTDOWN_GRACE_MS;
        while self.services.iter().flatten().any(|s| s.pid.is_some()) && now_ms() < deadline {
            let _ = self.wait_and_handle(console, signals, deadline.min(now_ms() + 100));
            for service in self.services.iter_mut().flatten() {
                service.restart_at_ms = None;
            }
        }
        // Everything left, services and orphans alike.
        // SAFETY: kill(-1, SIGKILL) signals every process but init itself; no memory involved.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
        for i in 0..SERVICES_MAX {
            for j in 0..2 {
                self.drain(console, i, j);
            }
        }
        crate::clock::save(console);
        rustix::fs::sync();
        crate::mounts::unmount_disk(console);
        rustix::fs::sync();
        if tryboot {
            log!(console, "{}", boot::rpi::TRYBOOT_RESTART_LINE);
            crate::record::restart_with_tryboot();
            log!(
                console,
                "init: the kernel refused the tryboot restart; restarting plainly"
            );
        }
        log!(console, "init: {} now", what);
        let result = rustix::system::reboot(action);
        log!(
            console,
            "init: reboot(2) failed: {:?}; halting here",
            result
        );
        loop {
            let _ = rustix::event::poll(&mut [], None);
        }
    }
}
