//! The TCP connector behind every client socket (token exchange and WebSocket): awc's
//! default one, with `TCP_NODELAY` set on each new connection.
//!
//! Without it, Nagle's algorithm holds a small frame (a `tick_ack` after an
//! `order_batch`) while an earlier one is unacknowledged, and the server's delayed ACK
//! turns that into a stall of up to 40 ms per bar.

use actix_rt::net::TcpStream;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, Connector, Resolver};
use awc::http::Uri;
use futures_util::future::{ready, AndThen, Ready, TryFutureExt};

type TcpConnection = Connection<Uri, TcpStream>;
type Ready2 = Ready<Result<TcpConnection, ConnectError>>;

/// awc's TCP connector with `TCP_NODELAY` on every connection it opens.
#[derive(Clone, Debug)]
pub(crate) struct NoDelayConnector<S> {
    inner: S,
}

/// The connector awc would use by default (system resolver), wrapped.
pub(crate) fn connector() -> NoDelayConnector<impl TcpService> {
    NoDelayConnector {
        inner: Connector::new(Resolver::default()).service(),
    }
}

/// What awc's custom connectors are: a service from a URI to a TCP connection.
pub(crate) trait TcpService:
    Service<ConnectInfo<Uri>, Response = TcpConnection, Error = ConnectError> + Clone
{
}

impl<S> TcpService for S where
    S: Service<ConnectInfo<Uri>, Response = TcpConnection, Error = ConnectError> + Clone
{
}

impl<S: TcpService> Service<ConnectInfo<Uri>> for NoDelayConnector<S> {
    type Response = TcpConnection;
    type Error = ConnectError;
    type Future = AndThen<S::Future, Ready2, fn(TcpConnection) -> Ready2>;

    actix_service::forward_ready!(inner);

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        self.inner.call(req).and_then(set_nodelay)
    }
}

/// A socket that refuses the option is reported as a connect error rather than
/// silently left slow.
fn set_nodelay(conn: TcpConnection) -> Ready2 {
    ready(
        conn.io_ref()
            .set_nodelay(true)
            .map(|()| conn)
            .map_err(ConnectError::Io),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn connections_have_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let conn = connector().call(ConnectInfo::new(uri)).await.unwrap();
        assert!(conn.io_ref().nodelay().unwrap());
    }
}
