//! admind: rustkrazy's management API on the device, a single-threaded HTTPS server on
//! one `poll(2)` loop (TLS 1.3 only, HTTP Basic for user `rustkrazy`).
//!
//! TLS, the port and the `/status` document come from `admin-api`, which imgtool shares.
//!
//! - [`http`]: request parsing with named limits, bodies, responses.
//! - [`server`]: the event loop: connections, deadlines, lingering close.
//! - [`upload`]: uploads fed in pieces and verified in steps; one update at a time.
//! - [`routes`]: every endpoint in one table: path, method, body limit, handler.
//! - [`api`]: authentication and the handlers.
//! - [`throttle`]: failed logins counted per source address.
//! - [`device`]: the disk (boot record, root slots, boot partition, MBR), boot status.
//! - [`procs`]: processes, services, memory, signals.
pub mod api;
pub mod device;
pub mod http;
pub mod identity;
pub mod procs;
pub mod routes;
pub mod server;
pub mod throttle;
pub mod upload;
