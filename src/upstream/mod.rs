//! The upstream core: pools of servers with live state, and how one is chosen for an attempt.
//!
//! Pure logic with an injected clock (`now` is always passed in): balancers, breakers, the
//! retry budget, health counting and plain atomic counters. Nothing here knows about the
//! request path, the runtime store, the admin API or Prometheus; those read and drive it.

pub mod balance;
pub mod breaker;
pub mod counters;
pub mod hash_ring;
pub mod health;
pub mod pool;
pub mod server;
pub mod shard;
pub mod tried;

pub use balance::{Balancer, PickInput};
pub use pool::{Attempt, Choice, InPool, Pool, PoolStats};
pub use server::{InFlightGuard, Server, ServerKey, ServerStats};
pub use tried::Tried;
