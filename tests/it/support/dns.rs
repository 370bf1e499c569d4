//! A DNS server on 127.0.0.1 for the discovery tests: answers A, AAAA and SRV questions from a
//! table the test changes, NXDOMAIN for names it does not know, and can stop answering
//! (a resolver gone away). UDP only; stops when dropped.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Default)]
struct Zone {
    a: HashMap<String, Vec<Ipv4Addr>>,
    /// (priority, weight, port, target)
    srv: HashMap<String, Vec<(u16, u16, u16, String)>>,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    pub queries: Arc<AtomicUsize>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let silent = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (z, si, st, q) = (
            Arc::clone(&zone),
            Arc::clone(&silent),
            Arc::clone(&stop),
            Arc::clone(&queries),
        );
        thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                q.fetch_add(1, Ordering::Relaxed);
                if si.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let reply = answer(&query, &z.lock().unwrap());
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                }
            }
        });
        DnsServer {
            addr,
            zone,
            silent,
            stop,
            queries,
        }
    }

    /// `name` resolves to these IPv4 addresses (empty: the name exists with no A records).
    pub fn set_a(&self, name: &str, ips: &[&str]) {
        self.zone.lock().unwrap().a.insert(
            key(name),
            ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        );
    }

    /// SRV records of `name`: (priority, weight, port, target).
    pub fn set_srv(&self, name: &str, records: &[(u16, u16, u16, &str)]) {
        self.zone.lock().unwrap().srv.insert(
            key(name),
            records
                .iter()
                .map(|(p, w, port, t)| (*p, *w, *port, t.to_string()))
                .collect(),
        );
    }

    /// Forget `name`: NXDOMAIN from now on.
    pub fn remove(&self, name: &str) {
        let mut z = self.zone.lock().unwrap();
        z.a.remove(&key(name));
        z.srv.remove(&key(name));
    }

    /// Stop answering (as a resolver gone away), or answer again.
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Relaxed);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(query: &Message, zone: &Zone) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    let mut known = false;
    for q in query.queries() {
        reply.add_query(q.clone());
        let name = key(&q.name().to_utf8());
        let exists = zone.a.contains_key(&name) || zone.srv.contains_key(&name);
        known |= exists;
        match q.query_type() {
            RecordType::A => {
                for ip in zone.a.get(&name).into_iter().flatten() {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 1, RData::A(A(*ip))));
                }
            }
            RecordType::SRV => {
                for (p, w, port, t) in zone.srv.get(&name).into_iter().flatten() {
                    let target = Name::from_ascii(format!("{}.", key(t))).unwrap();
                    reply.add_answer(Record::from_rdata(
                        q.name().clone(),
                        1,
                        RData::SRV(SRV::new(*p, *w, *port, target)),
                    ));
                }
            }
            // AAAA and the rest: the name exists (or not) but has none of these.
            _ => {}
        }
    }
    reply.set_response_code(if known {
        ResponseCode::NoError
    } else {
        ResponseCode::NXDomain
    });
    reply
}
