//! What wraps every request before and after its handler: request logging and
//! metrics ([`observe`]), request rate limits ([`ratelimit`]) and the body deadline
//! ([`deadline`]). The JSON error shape is [`crate::errors::json_errors`].

pub mod deadline;
pub mod observe;
pub mod ratelimit;
