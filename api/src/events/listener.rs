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
            // `recv` reconnects by itself after a lost connection; notifications
            // sent while it was down are lost, as PostgreSQL does not keep them.
            match listener.recv().await {
                Ok(notification) => match serde_json::from_str::<Event>(notification.payload()) {
                    Ok(event) => bus.deliver(event),
                    Err(err) => tracing::warn!(error = %err, "ignoring an unreadable event"),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "event listener lost its connection; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}
