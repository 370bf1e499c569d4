//! Background services beside the proxy: thin network loops that read the live state and
//! feed results back into it (active health checks).

pub mod health;
