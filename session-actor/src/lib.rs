//! The session actor and, inside it, the pure deterministic simulation engine.

pub mod engine;

pub use engine::{Engine, EngineConfig};
