//! Waiting for any of a fixed set of descriptors, each known by its slot.

use rustix::event::{PollFd, PollFlags};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use rustix::time::Timespec;

/// Waits until a descriptor in `slots` is readable (or hung up) or `timeout_ms` passes
/// (`None`: no limit), and says which slots are ready. Empty slots are not watched; with
/// none at all it just sleeps. An interrupted wait returns with nothing ready.
pub fn wait_readable<const N: usize>(
    slots: &[Option<BorrowedFd<'_>>; N],
    timeout_ms: Option<u64>,
) -> Result<[bool; N], Errno> {
    let mut ready = [false; N];
    let timeout = timeout_ms.map(|ms| Timespec {
        tv_sec: (ms / 1000).min(i32::MAX as u64) as i64,
        tv_nsec: (ms % 1000 * 1_000_000) as i64,
    });
    let Some(filler) = slots.iter().flatten().next().copied() else {
        // poll with no descriptors sleeps (and spares rustix's thread module).
        return match rustix::event::poll(&mut [], timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => Ok(ready),
            Err(e) => Err(e),
        };
    };
    // A fixed array needs every entry filled: entries past `n` repeat a real descriptor and
    // are never passed to poll.
    let mut list: [PollFd<'_>; N] =
        core::array::from_fn(|_| PollFd::from_borrowed_fd(filler, PollFlags::IN));
    let mut slot_of = [0usize; N];
    let mut n = 0;
    for (slot, fd) in slots.iter().enumerate() {
        if let Some(fd) = fd {
            list[n] = PollFd::from_borrowed_fd(*fd, PollFlags::IN);
            slot_of[n] = slot;
            n += 1;
        }
    }
    match rustix::event::poll(&mut list[..n], timeout.as_ref()) {
        Ok(_) | Err(Errno::INTR) => {}
        Err(e) => return Err(e),
    }
    for (fd, &slot) in list[..n].iter().zip(&slot_of[..n]) {
        ready[slot] = !fd.revents().is_empty();
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::wait_readable;
    use rustix::fd::AsFd;

    #[test]
    fn says_which_slot_is_readable_and_times_out_on_none() {
        let (quiet_r, _quiet_w) = rustix::pipe::pipe().unwrap();
        let (ready_r, ready_w) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&ready_w, b"x").unwrap();
        let slots = [Some(quiet_r.as_fd()), None, Some(ready_r.as_fd())];
        assert_eq!(
            wait_readable(&slots, Some(1000)).unwrap(),
            [false, false, true]
        );
        let slots = [Some(quiet_r.as_fd()), None];
        assert_eq!(wait_readable(&slots, Some(10)).unwrap(), [false, false]);
        assert_eq!(
            wait_readable::<2>(&[None, None], Some(10)).unwrap(),
            [false, false]
        );
    }
}
