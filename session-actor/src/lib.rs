//! The session actor and, inside it, the pure deterministic simulation engine.

pub mod actor;
pub mod engine;
pub mod store;

pub use engine::{Engine, EngineConfig};
