//! rustkrazy's management API — placeholder until its own issue lands (authenticated TLS
//! server for updates, status, logs).

fn main() {
    eprintln!("admind: management API not implemented yet");
}
