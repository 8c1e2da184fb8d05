//! admind: rustkrazy's management API on the device, a single-threaded HTTPS server on
//! one `poll(2)` loop (TLS 1.3 only, HTTP Basic for user `rustkrazy`).
//!
//! TLS, the port and the `/status` document come from `admin-api`, which imgtool shares.
//!
//! Modules in a line, each using only those above it:
//!
//! - [`fault`]: why the disk layer refused, in its own terms.
//! - [`http`]: request parsing with named limits, bodies, replies; faults as statuses.
//! - [`throttle`]: failed logins counted per source address.
//! - [`procs`]: processes, services, memory, signals.
//! - [`readiness`]: whether the programs that declared a readiness check pass it.
//! - [`identity`]: the device's own TLS key and certificate in /data.
//! - [`pi_settings`]: the Raspberry Pi's config.txt and tryboot.txt, in place.
//! - [`upload`]: uploads fed in pieces and verified in steps; one update at a time.
//! - [`device`]: the disk (boot record, root slots, boot partition, MBR), boot status.
//! - [`chunked_update`]: updates that move only the chunks the running slot lacks.
//! - [`api`]: authentication and the handlers.
//! - [`fetch`]: one HTTPS GET on a non-blocking socket, to a pinned server.
//! - [`follow`]: following a release channel: check, fetch, write, arm, reboot, commit.
//! - [`routes`]: every endpoint in one table (path, method, body limit, handler), and the
//!   dispatch to it.
//! - [`server`]: the event loop: connections, deadlines, lingering close.
pub mod api;
pub mod boot_program;
pub mod chunked_update;
pub mod device;
pub mod fault;
pub mod fetch;
pub mod follow;
pub mod http;
pub mod identity;
pub mod pi_settings;
pub mod procs;
pub mod readiness;
pub mod routes;
pub mod server;
pub mod throttle;
pub mod upload;
