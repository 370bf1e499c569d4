//! Upstream pools: servers with live state, and how one is chosen for a request.

pub mod balance;
pub mod breaker;
pub mod health;
pub mod pool;
pub mod server;

pub use balance::{Balancer, PickInput, Tried};
pub use server::{InFlightGuard, Server, ServerKey, ServerStats};
