//! Middleware: a request body must arrive within `server.body_timeout_sec` of its
//! headers. actix-web bounds the wait for the headers (`client_request_timeout`) but not
//! for the body, so a client that sends headers and then trickles (or never sends) the
//! body would hold a connection and a worker's buffer for as long as it likes.
//!
//! The body stream is wrapped: once the deadline passes, reading it fails with a
//! `TimedOut` I/O error, which the extractors' error mapping answers as 408
//! `REQUEST_TIMEOUT` (crate::errors). WebSocket upgrades are left alone: their "body" is
//! the socket for the life of the connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage;
use tokio_stream::Stream;

use crate::state::AppState;

/// Wraps the request's body in [`Deadline`].
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map(|s| Duration::from_secs(s.settings.server.body_timeout_sec));
    if let Some(timeout) = timeout {
        if !req.headers().contains_key(header::UPGRADE) {
            // Requests without a body (most GETs, the probes) cost nothing here.
            match req.take_payload() {
                Payload::None => {}
                body => req.set_payload(Payload::Stream {
                    payload: Box::pin(Deadline::new(body, timeout)),
                }),
            }
        }
    }
    next.call(req).await
}

/// A body stream that fails with `TimedOut` once its deadline has passed.
pub struct Deadline<S> {
    inner: S,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl<S> Deadline<S> {
    /// `inner`, to be read completely within `timeout` from now.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            expired: false,
        }
    }
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired = true;
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[actix_web::test]
    async fn a_body_that_never_ends_times_out_and_one_that_arrives_does_not() {
        let never = tokio_stream::pending::<Result<Bytes, PayloadError>>();
        let mut stalled = Deadline::new(never, Duration::from_millis(50));
        match stalled.next().await {
            Some(Err(PayloadError::Io(e))) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut)
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(stalled.next().await.is_none(), "nothing after the timeout");

        let body = tokio_stream::iter([Ok(Bytes::from_static(b"{}"))]);
        let mut arrived = Deadline::new(body, Duration::from_millis(50));
        assert_eq!(
            arrived.next().await.unwrap().unwrap(),
            Bytes::from_static(b"{}")
        );
        assert!(arrived.next().await.is_none());
    }
}
