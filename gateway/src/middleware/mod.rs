//! What wraps every request before and after its handler: request logging and
//! metrics ([`observe`]), request rate limits ([`ratelimit`]), the body deadline
//! ([`deadline`]) and the browser security headers ([`security`]). The JSON error
//! shape is [`crate::errors::json_errors`].

pub mod deadline;
pub mod observe;
pub mod ratelimit;
pub mod security;
