//! Why the device refused an operation, in the disk layer's own terms ([`device`] and
//! [`pi_settings`] answer with these); the HTTP layer maps each kind to a status
//! (`http::Refusal`).
//!
//! [`device`]: crate::device
//! [`pi_settings`]: crate::pi_settings

/// What kind of refusal: what the client can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The request itself is wrong: fix it and send it again.
    Invalid,
    /// This device's policy forbids it (it arms only sealed slots).
    Forbidden,
    /// The device's state forbids it now (a trial running, a slot incomplete).
    Conflict,
    /// The disk or the system failed.
    Failed,
    /// Not known yet or not set up: init has not reported how it booted, or the disk
    /// holds no table of slot files.
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: Kind,
    pub reason: String,
}

pub fn fault(kind: Kind, reason: impl Into<String>) -> Fault {
    Fault {
        kind,
        reason: reason.into(),
    }
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Fault {
        fault(Kind::Failed, format!("I/O error: {e}"))
    }
}

/// Where only the reason is kept (the channel follower's messages).
impl From<Fault> for String {
    fn from(f: Fault) -> String {
        f.reason
    }
}
