//! Integration tests against the local AWS stack. One binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod architecture;
mod backup;
mod bad_input;
mod cancel;
mod cli;
mod continuation;
mod dispatch;
mod drift;
mod events;
mod fairness;
mod faults;
mod gateway;
mod graph;
mod graph_queries;
mod hosts;
mod idempotency;
mod isolation;
mod listing;
mod openapi;
mod preview;
mod quotas;
mod reaper;
mod relay;
mod restore;
mod restore_cross;
mod scheduler;
mod schedules;
mod start;
mod store;
mod system;
mod tags;
mod template;
mod tidy;
mod worker;
