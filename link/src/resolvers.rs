//! Name and time servers gathered from static settings and every lease: into resolv.conf,
//! and handed to the time client.

use crate::sys::{self, Text};
use crate::{time, Link};
use boot::network;
use core::fmt::Write;
use link::show::{Ip4, Shown};
use runtime::say;

impl Link {
    /// DNS servers (static settings first, then every lease's) or, with `ntp`, the time
    /// servers of every lease; at most three, no repeats.
    fn servers(&self, ntp: bool) -> ([[u8; 4]; network::DNS_MAX], usize) {
        let mut servers: [[u8; 4]; network::DNS_MAX] = [[0; 4]; network::DNS_MAX];
        let mut count = 0;
        let mut add = |s: &[u8; 4]| {
            if count < servers.len() && !servers[..count].contains(s) {
                servers[count] = *s;
                count += 1;
            }
        };
        if let (Some(st), false) = (&self.settings.ipv4_static, ntp) {
            st.dns[..st.dns_count].iter().for_each(&mut add);
        }
        for iface in self.interfaces.values() {
            if let Some(lease) = &iface.applied {
                let list = if ntp { lease.ntp() } else { lease.dns() };
                list.iter().for_each(&mut add);
            }
        }
        (servers, count)
    }

    /// Runs `f` on the time client with what it needs to know about the network.
    pub(crate) fn with_time(&mut self, f: impl FnOnce(&mut time::TimeSync, &time::Network<'_>)) {
        let (resolvers, resolver_count) = self.servers(false);
        let (ntp, ntp_count) = self.servers(true);
        let online = self
            .interfaces
            .values()
            .any(|i| i.applied.is_some() || (self.settings.ipv4_static.is_some() && i.carrier));
        let net = time::Network {
            online,
            resolvers: &resolvers[..resolver_count],
            dhcp_servers: &ntp[..ntp_count],
        };
        f(&mut self.time, &net);
    }

    /// Gathers DNS servers from static settings and every lease into resolv.conf.
    pub(crate) fn write_resolv_conf(&mut self) {
        let (servers, count) = self.servers(false);
        let mut text: Text<160> = Text::new();
        text.push(b"# Written by rustkrazy's link from DHCP or static settings.\n");
        for s in &servers[..count] {
            let _ = writeln!(text, "nameserver {}", Ip4(*s));
        }
        if text.as_bytes() == self.dns_written.as_bytes() {
            return;
        }
        match sys::replace_file(self.resolv_conf.as_bytes(), text.as_bytes()) {
            Ok(()) => self.dns_written = text,
            Err(e) => say!(
                "link: cannot write {} ({})",
                Shown(self.resolv_conf.as_bytes()),
                e
            ),
        }
    }
}
