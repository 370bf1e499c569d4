//! TLS at the edge (SPEC §6): certificates read from PEM files, checked, and chosen by SNI
//! (`certs`); the handshake of a client connection and the stream pingora is then given
//! (`acceptor`); TLS to upstream servers as pingora's connector takes it (`upstream`).
//!
//! Written on rustls + tokio-rustls rather than pingora's own rustls listener, which takes one
//! certificate, panics on a bad file and cannot change certificates without a restart.

pub mod acceptor;
pub mod certs;
pub mod upstream;
