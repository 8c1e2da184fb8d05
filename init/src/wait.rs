//! init's wait: on the signalfd and every service's output at once, until the next
//! restart is due; then what woke it (output, signals, exited children, restarts).

use crate::log;
use crate::services::{Supervisor, SERVICES_MAX};
use crate::sys::{self, now_ms, Console};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::system::RebootCommand;

impl Supervisor {
    /// Waits until `wake_ms` or an event (output, signal); handles it. Returns a shutdown
    /// request if a signal asked for one.
    pub fn wait_and_handle(
        &mut self,
        console: &Console,
        signals: Option<&OwnedFd>,
        wake_ms: u64,
    ) -> Option<RebootCommand> {
        // Slot 0: the signalfd; slot 1 + 2i + j: stream j (stdout, stderr) of service i.
        let mut slots: [Option<BorrowedFd<'_>>; 1 + 2 * SERVICES_MAX] =
            [None; 1 + 2 * SERVICES_MAX];
        slots[0] = signals.map(|fd| fd.as_fd());
        for (i, service) in self.services.iter().enumerate() {
            for (j, stream) in service.iter().flat_map(|s| s.streams.iter()).enumerate() {
                slots[1 + 2 * i + j] = stream.pipe.as_ref().map(|pipe| pipe.as_fd());
            }
        }
        // Without a signalfd, children are reaped by polling every second.
        let cap_ms = if signals.is_some() { u64::MAX } else { 1000 };
        let timeout_ms =
            Some(wake_ms.saturating_sub(now_ms()).min(cap_ms)).filter(|&ms| ms < i32::MAX as u64);
        let ready = match runtime::poll::wait_readable(&slots, timeout_ms) {
            Ok(ready) => ready,
            Err(e) => {
                log!(console, "init: poll failed: {}", e);
                [false; 1 + 2 * SERVICES_MAX]
            }
        };
        // Then what the wait found: output to drain, signals, exited children, restarts.
        for (k, _) in ready.iter().enumerate().skip(1).filter(|(_, &r)| r) {
            self.drain(console, (k - 1) / 2, (k - 1) % 2);
        }
        let mut request = None;
        if ready[0] || signals.is_none() {
            while let Some(sig) = signals.and_then(sys::next_signal) {
                request = request.or(match sig {
                    libc::SIGUSR1 | libc::SIGINT | libc::SIGTERM => Some(RebootCommand::Restart),
                    libc::SIGUSR2 | libc::SIGPWR => Some(RebootCommand::PowerOff),
                    _ => None,
                });
            }
            self.reap(console);
        }
        let now = now_ms();
        for i in 0..SERVICES_MAX {
            if self.services[i]
                .as_ref()
                .is_some_and(|s| s.restart_at_ms.is_some_and(|t| t <= now))
            {
                self.start(console, i);
            }
        }
        request
    }
}
