//! rustkrazy's network bring-up — placeholder until its own issue lands (loopback, Ethernet,
//! DHCPv4, SLAAC, static configuration).

fn main() {
    eprintln!("link: network bring-up not implemented yet");
}
