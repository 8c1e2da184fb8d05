//! Where init keeps each service's output and admind reads it: in [`DIR`], `NAME.log`
//! (stdout) and `NAME.err` (stderr), each renamed once to `NAME.log.1` / `NAME.err.1` when
//! it is full, so that the older part is read first.

/// A RAM file system: logs never wear the disk, and a reboot clears them.
pub const DIR: &str = "/tmp";
/// After the service's name.
pub const STDOUT_SUFFIX: &str = ".log";
pub const STDERR_SUFFIX: &str = ".err";
/// After a full log's name once it is rotated.
pub const ROTATED_SUFFIX: &str = ".1";
