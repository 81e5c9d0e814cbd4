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
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Event>(notification.payload()) {
                        Ok(event) => bus.deliver(event),
                        Err(err) => tracing::warn!(error = %err, "ignoring an unreadable event"),
                    }
                }
                // The connection was lost; the next call reconnects. What was
                // NOTIFYed meanwhile is gone, so say that something was missed.
                Ok(None) => {
                    tracing::warn!("event listener lost its connection; reconnecting");
                    bus.deliver(Event::Missed);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "event listener lost its connection; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}
