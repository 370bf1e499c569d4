//! Background services beside the proxy: thin network loops that read the live state and
//! feed results back into it (active health checks, total-outage probes) or ask its writer for
//! a change (DNS discovery).

pub mod dns;
pub mod health;
pub mod outage;
