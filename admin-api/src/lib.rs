//! rustkrazy's management API as both ends speak it, so admind (the server, on the device)
//! and imgtool (the client, on the host) cannot drift apart:
//!
//! - [`PORT`]: where admind listens.
//! - [`tls`]: TLS 1.3 with our own small RustCrypto provider, which both ends use; the
//!   server configuration.
//! - [`pinning`]: the client's side: trust in one pinned key (imgtool, and admind following a
//!   channel).
//! - [`cert`]: a device's identity: its self-signed certificate and key files, and pins.
//! - [`endpoints`]: every endpoint's path, the headers, the user, and the upload answers.
//! - [`json`]: the JSON writer admind answers with (no serde on the device).
//! - [`status`]: the `GET /status` document, encoded by admind and decoded by imgtool.
//! - [`password`]: the password's derivation (PBKDF2-HMAC-SHA256) and admind's check.
//! - [`seal`]: slot seals signed (imgtool) and checked against a root's trust file (admind).

pub mod cert;
pub mod endpoints;
pub mod json;
mod key;
pub mod password;
pub mod pinning;
pub mod seal;
pub mod status;
pub mod tls;

/// The TCP port admind listens on (HTTPS).
pub const PORT: u16 = 8443;
