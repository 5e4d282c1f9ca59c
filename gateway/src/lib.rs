//! The SimuTrador gateway: REST and WebSocket front end over the session actors.

pub mod app;
pub mod backup;
pub mod bootstrap;
pub mod config;
pub mod control;
pub mod errors;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod ratelimit;
pub mod redis_link;
pub mod registry;
pub mod results;
pub mod revocation;
pub mod routes;
pub mod secrets;
pub mod ws;
