//! Upstream pools: servers with live state, and how one is chosen for a request.

pub mod balance;
pub mod breaker;
pub mod hash_ring;
pub mod health;
pub mod pool;
pub mod server;
pub mod tried;

pub use balance::{Balancer, PickInput};
pub use server::{InFlightGuard, Server, ServerKey, ServerStats};
pub use tried::Tried;
