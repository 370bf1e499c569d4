//! switchyard: a layer-7 HTTP reverse proxy and load balancer on pingora, configured by one
//! YAML file. The binary (`src/main.rs`) is a thin CLI over these modules.
//!
//! Modules are crate-private unless the binary, `benches/` or `fuzz/` use them, so the compiler
//! reports code nothing uses. Public: `config` (the loader, `check`, the fuzz target), `server`
//! and `demo` (the binary), `upstream`, `state` and `policy` (the criterion benches of
//! selection, reload and route policies).

mod access_log;
mod admin;
mod changes;
pub mod config;
pub mod demo;
mod discovery;
mod edge;
pub mod files;
pub mod import_nginx;
mod lifecycle;
mod log_summary;
mod metrics;
pub mod policy;
mod proxy;
pub mod proxy_protocol;
mod reload;
pub mod router;
pub mod server;
mod services;
pub mod state;
mod tls;
pub mod upstream;
pub mod vars;

pub use access_log::AccessLogger;
pub use proxy::conns::raise_open_file_limit;
