//! link's one loop: timers first (they may send), then a wait on every socket at once
//! (netlink events, each interface's DHCP sockets, the time client's), then what is ready.

use crate::sys::{now_ms, random};
use crate::{Link, INTERFACES_MAX, NETLINK_BUFFER_BYTES, POLL_MS_MAX, POLL_SLOTS, TIME_SLOT};
use core::ffi::c_int;
use runtime::say;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

impl Link {
    pub(crate) fn run(&mut self, events: &OwnedFd) -> c_int {
        let mut buf = [0u8; NETLINK_BUFFER_BYTES];
        loop {
            // Timers first: they may send.
            let now = now_ms();
            for slot in 0..INTERFACES_MAX {
                let Some(iface) = self.interfaces.get_mut(slot) else {
                    continue;
                };
                if iface.client.deadline_ms().is_some_and(|d| d <= now) {
                    let step = iface.client.on_timer(now, random());
                    self.handle(slot, step);
                }
            }
            let deadlines = self
                .interfaces
                .values()
                .filter_map(|i| i.client.deadline_ms());
            let mut next = deadlines.fold(now + POLL_MS_MAX, u64::min);

            self.with_time(|time, net| {
                time.network_changed(net);
                time.on_timer(net);
            });
            next = next.min(self.time.deadline_ms());

            // Wait for netlink events, DHCP replies, the time server or the next timer.
            let mut slots: [Option<BorrowedFd<'_>>; POLL_SLOTS] = [None; POLL_SLOTS];
            slots[0] = Some(events.as_fd());
            slots[TIME_SLOT] = self.time.socket().map(|fd| fd.as_fd());
            for (slot, iface) in self.interfaces.iter() {
                slots[1 + 2 * slot] = iface.packet.as_ref().map(|fd| fd.as_fd());
                slots[2 + 2 * slot] = iface.udp.as_ref().map(|fd| fd.as_fd());
            }
            let wait_ms = next.saturating_sub(now_ms());
            let ready = match runtime::poll::wait_readable(&slots, Some(wait_ms)) {
                Ok(ready) => ready,
                Err(e) => {
                    say!("link: poll failed ({}); exiting so init restarts it", e);
                    return 1;
                }
            };

            if ready[0] {
                self.read_events(events, &mut buf);
            }
            if ready[TIME_SLOT] {
                self.with_time(|time, net| time.on_readable(net, &mut buf));
            }
            for slot in 0..INTERFACES_MAX {
                for socket in [1 + 2 * slot, 2 + 2 * slot] {
                    if ready[socket] {
                        self.read_dhcp(slot, socket % 2 == 1, &mut buf);
                    }
                }
            }
        }
    }
}
