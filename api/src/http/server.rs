//! The accept loop. axum's `serve` offers no header read timeout and no say
//! over who connects, so a thousand clients sending headers a byte at a time
//! held a thousand descriptors, and once the process ran out every other
//! client was refused. Here: hyper's HTTP/1 with a header read timeout, a cap
//! on the connections one client address holds, the soft open-file limit
//! raised to the hard one at start, and when descriptors run out anyway, new
//! connections are shed (accepted with a spare descriptor and closed) rather
//! than left to spin the loop.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tower::ServiceExt;

/// How the loop treats connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    /// 0: no limit.
    pub per_address: usize,
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime
/// and nginx do: each connection and socket is a descriptor, and the usual
/// soft limit of 1,024 is a few hundred clients. Returns the limit in effect.
pub fn raise_open_file_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// requests finish (upgraded WebSockets live on their own tasks, as with
/// axum's `serve`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let open = OpenConnections::default();
    let mut spare = SpareDescriptor::open();
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, address) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    spare.shed(&listener, &err).await;
                    continue;
                }
            },
        };
        let Some(slot) = open.admit(address.ip(), limits.per_address) else {
            tracing::debug!(%address, "connection refused: too many from this address");
            continue;
        };
        // No Nagle delay: live events are small writes that should leave now.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |mut request: hyper::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(address));
                router.clone().oneshot(request)
            }
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = outcome {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Open connections per client address.
#[derive(Clone, Default)]
struct OpenConnections(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl OpenConnections {
    /// A slot for one more connection from `address`, if it is under `limit`
    /// (0: no limit); the slot frees itself when dropped.
    fn admit(&self, address: IpAddr, limit: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(address).or_insert(0);
        if limit != 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            address,
        })
    }
}

struct Slot {
    open: OpenConnections,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// One descriptor held in reserve: when the process runs out, it is given
/// up to accept the waiting connection and close it at once (the client
/// hears "no" instead of waiting in the backlog), then taken again.
struct SpareDescriptor {
    file: Option<std::fs::File>,
    /// When running out was last logged: once every ten seconds is enough.
    warned_at: Option<tokio::time::Instant>,
}

impl SpareDescriptor {
    fn open() -> Self {
        Self {
            file: std::fs::File::open("/dev/null").ok(),
            warned_at: None,
        }
    }

    async fn shed(&mut self, listener: &TcpListener, err: &io::Error) {
        let out_of_descriptors = matches!(err.raw_os_error(), Some(23 | 24));
        if !out_of_descriptors {
            // Per-connection errors (a reset before accept): the next one may work.
            tracing::debug!(error = %err, "accept failed");
            return;
        }
        let now = tokio::time::Instant::now();
        if self
            .warned_at
            .is_none_or(|at| now - at > Duration::from_secs(10))
        {
            tracing::warn!("out of file descriptors: shedding new connections");
            self.warned_at = Some(now);
        }
        if self.file.take().is_some() {
            if let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
            self.file = std::fs::File::open("/dev/null").ok();
        }
        // Without a spare, wait for descriptors to come back rather than spin.
        if self.file.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_address_are_capped_and_freed() {
        let open = OpenConnections::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = open.admit(a, 2).expect("first");
        let _second = open.admit(a, 2).expect("second");
        assert!(open.admit(a, 2).is_none(), "third from the same address");
        assert!(open.admit(b, 2).is_some(), "another address");
        drop(first);
        assert!(open.admit(a, 2).is_some(), "a freed slot");
        assert!((0..1000).all(|_| open.admit(a, 0).is_some()), "no limit");
    }
}
