//! Free ports for daemons that must be given a port in their config (syslog-ng; rsyslog's
//! UDP listener; a daemon restarted on the same port). Everything else binds `127.0.0.1:0`.
//! A process-wide registry (Vector's `test_util/addr.rs` idea) keeps two tests of one binary
//! from being handed the same port; the kernel's ephemeral allocator keeps other processes
//! from picking it up right away. The port is free for TCP and UDP at reservation time.

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::{Mutex, OnceLock};

fn registry() -> &'static Mutex<HashSet<u16>> {
    static R: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// A reserved port; released (for this process) on drop.
#[derive(Debug)]
pub struct PortGuard {
    port: u16,
}

impl PortGuard {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        registry()
            .lock()
            .expect("port registry poisoned")
            .remove(&self.port);
    }
}

/// Reserves a port on 127.0.0.1 that is currently free for both TCP and UDP.
pub fn reserve_port() -> PortGuard {
    for _ in 0..200 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        if registry()
            .lock()
            .expect("port registry poisoned")
            .insert(port)
        {
            return PortGuard { port };
        }
    }
    panic!("could not reserve a free port on 127.0.0.1 after 200 tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_while_held() {
        let guards: Vec<_> = (0..20).map(|_| reserve_port()).collect();
        let set: HashSet<u16> = guards.iter().map(PortGuard::port).collect();
        assert_eq!(set.len(), 20);
        let p = guards[0].port();
        drop(guards);
        assert!(!registry().lock().unwrap().contains(&p));
    }
}
