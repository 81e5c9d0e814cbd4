//! One LISTEN connection per process (not per subscription: each would hold a
//! database connection), fanned out through the in-process broadcast.

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;

use super::{CHANNEL, Event, EventBus};
use crate::outage::Outage;

pub async fn spawn_listener(db: &DatabaseConnection, bus: EventBus) -> anyhow::Result<()> {
    let pool = db.get_postgres_connection_pool().clone();
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    tokio::spawn(async move {
        // Down while sqlx cannot re-establish the connection; its return is
        // announced once, as what was NOTIFYed meanwhile is gone.
        let mut outage = Outage::new("the database's event stream (LISTEN)");
        loop {
            match listener.try_recv().await {
                Ok(notification) => {
                    if outage.is_down() {
                        outage.recovered();
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
                    if !outage.is_down() {
                        bus.deliver(Event::Missed);
                    }
                    let wait = outage.failed(&err);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    });
    Ok(())
}
