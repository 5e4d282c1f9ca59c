//! The SimuTrador gateway: REST and WebSocket front end over the session actors.
//!
//! Layers, each using only those above it (docs/ARCHITECTURE.md draws the graph):
//! `config`, `errors`, `secrets`, `logging`, `metrics`, `notify`, `translate`,
//! `redis_link`, `browser`; then `limits`; then `registry`; then `cluster`; then
//! `state`; then `extract`, `middleware`, `routes`, `ws` and `console`; `app` builds
//! and runs it all (`tests/structure.rs` fails on any import circle between them).

pub mod app;
pub mod backup;
pub mod bootstrap;
pub mod browser;
pub mod cluster;
pub mod config;
pub mod console;
pub mod errors;
pub mod extract;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod notify;
pub mod redis_link;
pub mod registry;
pub mod routes;
pub mod secrets;
pub mod state;
pub mod translate;
pub mod ws;
