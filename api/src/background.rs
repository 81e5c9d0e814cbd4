//! How background workers (the e-mail and push outboxes, the timed-work
//! runner) share their tables between processes and wait between looks:
//! claims are leases, and an idle worker rests until its next row falls due
//! or an event wakes it, never longer than `SAFETY_POLL`.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::events::Event;

/// The longest a worker rests without looking: a safety net for work
/// written with no event to wake it.
pub const SAFETY_POLL: Duration = Duration::from_secs(30);

/// The end of a lease taken or renewed now.
pub fn lease_until(lease: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(lease.as_millis().min(i64::MAX as u128) as i64)
}

/// How long a background worker rests before it looks at its table again:
/// until `next` (when its next piece of work falls due), and `SAFETY_POLL`
/// at most.
pub fn rest_until(next: Option<DateTime<Utc>>) -> Duration {
    next.map_or(SAFETY_POLL, |at| {
        (at - Utc::now())
            .to_std()
            .unwrap_or_default()
            .min(SAFETY_POLL)
    })
}

/// Rests for `rest`, or until an event `wakes` accepts arrives (from any
/// process on PostgreSQL), or the stream lagged (an event that would wake
/// the worker may be among those missed). How the e-mail and push workers
/// and the timed-work runner wait between looks.
pub async fn rest(
    rest: Duration,
    events: &mut broadcast::Receiver<Arc<Event>>,
    wakes: impl Fn(&Event) -> bool,
) {
    let sleep = tokio::time::sleep(rest);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return,
            event = events.recv() => match event {
                Ok(event) if wakes(&event) => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    (&mut sleep).await;
                    return;
                }
            },
        }
    }
}
