//! switchyard: a layer-7 HTTP reverse proxy and load balancer on pingora, configured by one
//! YAML file. The binary (`src/main.rs`) is a thin CLI over these modules; `tests/` and
//! `benches/` use them directly.

pub mod access_log;
pub mod admin;
pub mod config;
pub mod demo;
pub mod lifecycle;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod router;
pub mod run;
pub mod services;
pub mod state;
pub mod upstream;
