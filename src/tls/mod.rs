//! TLS at the edge (SPEC §6). Groundwork so far: the certificate store (`certs`), loaded and
//! checked from PEM files and chosen by SNI, and the handshake and the stream pingora is given
//! (`acceptor`). The TLS listeners themselves (config, front door) are still to come.

pub mod acceptor;
pub mod certs;
