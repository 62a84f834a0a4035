//! The local host: what AWS would provide around the Lambda handlers, played on loopback.
//!
//! It provisions the emulated resources from the same definitions the store uses, seeds a
//! demo, mints HS256 tokens for the demo users, and serves the API through a gateway that
//! verifies `Authorization: Bearer` like API Gateway's JWT authorizer and hands the handler the
//! same payload-v2 event AWS sends.

pub mod gateway;
pub mod notifier_host;
pub mod provision;
pub mod relay_host;
pub mod run_pipe;
pub mod scheduler_host;
pub mod seed;
pub mod stream;
pub mod template;
pub mod tokens;
pub mod worker_host;
