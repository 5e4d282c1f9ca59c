//! The session actor, which runs the pure deterministic simulation engine (the `engine`
//! crate, re-exported as [`engine`]), and the session store.

pub mod actor;
pub mod store;

pub use ::engine;
pub use engine::{Engine, EngineConfig};
