//! One LISTEN connection per process (not per subscription: each would hold a
//! database connection), fanned out through the in-process broadcast.

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;

use super::{CHANNEL, Event, EventBus};

pub async fn spawn_listener(db: &DatabaseConnection, bus: EventBus) -> anyhow::Result<()> {
    let pool = db.get_postgres_connection_pool().clone();
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    tokio::spawn(async move {
        // Set while the connection is down and sqlx cannot re-establish it;
        // its return is announced once, as what was NOTIFYed meanwhile is gone.
        let mut down = false;
        loop {
            match listener.try_recv().await {
                Ok(notification) => {
                    if down {
                        down = false;
                        tracing::info!("event listener reconnected");
                        bus.deliver(Event::Missed);
                    }
                    match notification {
                        Some(notification) => {
                            match serde_json::from_str::<Event>(notification.payload()) {
                                Ok(event) => bus.deliver(event),
                                Err(err) => {
                                    tracing::warn!(error = %err, "ignoring an unreadable event")
                                }
                            }
                        }
                        // The connection was lost and sqlx has already made a
                        // new one (listening again): what was NOTIFYed in
                        // between is gone, so say that something was missed.
                        None => {
                            tracing::warn!("event listener lost its connection and reconnected");
                            bus.deliver(Event::Missed);
                        }
                    }
                }
                // Could not reconnect: subscribers hear at once that events
                // may be lost, and again when the connection is back.
                Err(err) => {
                    tracing::warn!(error = %err, "event listener cannot reach the database; retrying");
                    if !down {
                        down = true;
                        bus.deliver(Event::Missed);
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}
