//! TLS at the edge (SPEC §6). Groundwork so far: the certificate store (`certs`), loaded and
//! checked from PEM files and chosen by SNI, which the TLS listeners will serve from.

pub mod certs;
