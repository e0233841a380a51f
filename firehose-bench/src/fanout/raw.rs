//! The raw broadcaster behind [`super::Target::Raw`]: a bare tokio-tungstenite server that
//! sends every message to every connection (batched flushes, no logs, no auth, no queues), on
//! two workers of its own so that its CPU time can be told from the collectors'. The loopback
//! limit the distributor is compared with.

use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// The raw broadcaster's worker threads (their CPU time is the server's).
pub const THREAD_NAME: &str = "raw-server";

/// The broadcaster's own runtime: two workers, like the distributor's, so that its CPU
/// can be told from the collectors'. Stopped when dropped.
pub struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts it on loopback; returns its runtime, its URL and the sender every connection
/// listens to.
pub async fn start() -> anyhow::Result<(Runtime, String, broadcast::Sender<Message>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()?;
    let (tx, _) = broadcast::channel::<Message>(1 << 16);
    let sender = tx.clone();
    let (bound_tx, bound) = tokio::sync::oneshot::channel();
    rt.spawn(async move {
        let listener = match firehose_distributor::server::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                let _ = bound_tx.send(Err(e));
                return;
            }
        };
        let _ = bound_tx.send(listener.local_addr());
        while let Ok((sock, _)) = listener.accept().await {
            let mut rx = sender.subscribe();
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
                    return;
                };
                let (mut out, mut incoming) = ws.split();
                loop {
                    tokio::select! {
                        m = rx.recv() => {
                            // Everything already queued goes out in one flush.
                            let Ok(mut m) = m else { return };
                            loop {
                                if out.feed(m).await.is_err() {
                                    return;
                                }
                                match rx.try_recv() {
                                    Ok(next) => m = next,
                                    Err(broadcast::error::TryRecvError::Empty) => break,
                                    Err(_) => return,
                                }
                            }
                            if out.flush().await.is_err() {
                                return;
                            }
                        }
                        m = incoming.next() => if !matches!(m, Some(Ok(_))) { return },
                    }
                }
            });
        }
    });
    let url = format!("ws://{}", bound.await??);
    Ok((Runtime(Some(rt)), url, tx))
}
