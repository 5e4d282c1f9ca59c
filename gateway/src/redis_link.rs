//! The gateway's Redis plumbing shared by the cluster features (counts, rate limits,
//! revocations, operator control): one way to open a self-healing connection, and one
//! way to follow a pub/sub channel across Redis restarts.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::de::DeserializeOwned;

/// A multiplexed connection that reconnects by itself; each command gives up after
/// `response_timeout` (callers fall back or report), connecting after 2 s.
pub async fn connect(url: &str, response_timeout: Duration) -> Result<ConnectionManager, String> {
    let client = redis::Client::open(url).map_err(|e| e.category().to_string())?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| e.to_string())
}

/// Hands every JSON message of type `T` published on `channel` to `handle`, for the
/// life of the node: resubscribes a second after Redis drops, and skips (with a
/// warning naming `what`) messages that do not parse.
pub async fn follow<T, F, Fut>(url: String, channel: String, what: &'static str, mut handle: F)
where
    T: DeserializeOwned,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = ()>,
{
    use tokio_stream::StreamExt;
    loop {
        let subscribed = async {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
            pubsub
                .subscribe(&channel)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(pubsub)
        }
        .await;
        match subscribed {
            Ok(mut pubsub) => {
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    match serde_json::from_str::<T>(&payload) {
                        Ok(m) => handle(m).await,
                        Err(e) => {
                            tracing::warn!(error = %e, channel = what, "ignoring a malformed message")
                        }
                    }
                }
                tracing::warn!(channel = what, "channel closed; resubscribing");
            }
            Err(e) => tracing::debug!(error = %e, channel = what, "cannot subscribe yet"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
