//! Where init keeps each service's output and admind reads it: in [`DIR`], `NAME.log`
//! (stdout) and `NAME.err` (stderr), each renamed once to `NAME.log.1` / `NAME.err.1` when
//! it is full, so that the older part is read first.

/// In /run, a RAM file system: logs never wear the disk, and a reboot clears them. Not /tmp,
/// which every program may write: there a program could fill the space the logs need, or
/// plant a link where init is about to open another program's log. Only root may enter it
/// (mode 0700): programs read logs through admind, which asks for the password.
pub const DIR: &str = "/run/log";
/// After the service's name.
pub const STDOUT_SUFFIX: &str = ".log";
pub const STDERR_SUFFIX: &str = ".err";
/// After a full log's name once it is rotated.
pub const ROTATED_SUFFIX: &str = ".1";
