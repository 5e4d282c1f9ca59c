//! What nodes of a cluster tell each other through Redis: the operators' control
//! channel and index of live sessions ([`control`]) and revoked credentials
//! ([`revocation`]). Without Redis each node is the whole cluster.

pub mod control;
pub mod revocation;
