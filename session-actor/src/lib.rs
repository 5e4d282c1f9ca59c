//! Session actor and engine.
