//! The SimuTrador gateway: REST and WebSocket front end over the session actors.

pub mod app;
pub mod config;
pub mod registry;
pub mod routes;
