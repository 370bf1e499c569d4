//! Mutated bytes at the PROXY protocol reader (SPEC §13). It must never panic, and what it
//! says must hold together: a header fits in the input and the limit, parses the same when cut
//! to its own length, and every shorter prefix of it is "incomplete" (a header split across
//! reads is waited for, never refused). A header naming a client survives a round trip through
//! the writer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::proxy_protocol::{MAX_HEADER, Parsed, Version, encode, parse};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Parsed::Header { len, source } => {
            assert!(len > 0 && len <= data.len() && len <= MAX_HEADER, "{len}");
            assert_eq!(parse(&data[..len]), Parsed::Header { len, source });
            for n in 0..len {
                assert_eq!(parse(&data[..n]), Parsed::Incomplete, "prefix {n} of {len}");
            }
            if let Some(client) = source {
                let dest = "192.0.2.1:443".parse().expect("an address");
                for v in [Version::V1, Version::V2] {
                    let again = encode(v, client, dest);
                    match parse(&again) {
                        Parsed::Header { source: Some(s), .. } => {
                            assert_eq!(s.port(), client.port());
                            let canon = |ip: std::net::IpAddr| match ip {
                                std::net::IpAddr::V6(v6) => v6
                                    .to_ipv4_mapped()
                                    .map_or(ip, std::net::IpAddr::V4),
                                v4 => v4,
                            };
                            assert_eq!(canon(s.ip()), canon(client.ip()));
                        }
                        other => panic!("{v:?} of {client}: {other:?}"),
                    }
                }
            }
        }
        Parsed::Incomplete => assert!(data.len() < MAX_HEADER),
        Parsed::Invalid => {}
    }
});
