//! The integration tests, in one test executable: one link of the crate and its
//! dependencies (with the release profile's fat LTO, each of the 18 executables there were
//! took most of a minute to link), and one pool of test threads for the whole suite.
//!
//! Each module is one area of the product; `support` has the mocks, the raw HTTP/1.1 client
//! and the proxy under test.

mod support;

mod admin;
mod balancing;
mod buffering;
mod check_cli;
mod conformance;
mod deploy;
mod discovery;
mod failures_and_shutdown;
mod grpc;
mod hostile;
mod import_nginx;
mod limits;
mod locations;
mod operations;
mod policies;
mod resilience;
mod routing_headers;
mod schema;
mod static_files;
mod status_page;
mod tls;
mod transports;
mod upgrade;
mod variables;
