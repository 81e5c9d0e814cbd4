//! Live events: what changed, as ids only. Published only after the change
//! commits. On PostgreSQL each event is NOTIFYed inside the writing
//! transaction (so it is delivered on commit, to every process sharing the
//! database, this one included, through one LISTEN connection per process);
//! on SQLite it goes straight into this process's broadcast after commit.

mod listener;
pub mod log;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::ApiResult;

pub use listener::spawn_listener;

/// The PostgreSQL channel events travel on.
pub const CHANNEL: &str = "tweetmeet_events";

pub use entity::meet_activity_log::ActivityKind;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// Something happened to a meet; `user_id` names the attendee whose
    /// answer or arrival it was, `story_id` the story published about it.
    /// `seq` numbers it among the meet's events: given by [`EventBus::commit`]
    /// when it writes the event to the meet's activity log.
    MeetActivity {
        seq: i64,
        kind: ActivityKind,
        meet_id: Uuid,
        user_id: Option<Uuid>,
        story_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    MeetAnnounced {
        meet_id: Uuid,
    },
    StoryPublished {
        story_id: Uuid,
    },
    InvitationReceived {
        invitation_id: Uuid,
    },
    /// The user was suspended or changed role: its open WebSocket
    /// connections, which hold the viewer they were opened as, must close.
    AccessChanged {
        user_id: Uuid,
    },
    /// Notices were written to the outbox: delivery workers look now rather
    /// than at their next safety poll.
    NoticesQueued,
    /// Events may have been lost (the LISTEN connection dropped, and
    /// PostgreSQL keeps no notifications for the absent): whoever follows the
    /// stream must assume it missed anything. Only ever delivered in-process.
    Missed,
}

impl Event {
    /// The event's type, as metrics label it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MeetActivity { .. } => "meet_activity",
            Self::MeetAnnounced { .. } => "meet_announced",
            Self::StoryPublished { .. } => "story_published",
            Self::InvitationReceived { .. } => "invitation_received",
            Self::AccessChanged { .. } => "access_changed",
            Self::NoticesQueued => "notices_queued",
            Self::Missed => "missed",
        }
    }

    /// Something happened to a meet (not a story: see `StoryPublished`).
    pub fn meet_activity(
        kind: ActivityKind,
        meet_id: Uuid,
        user_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Self {
        Self::MeetActivity {
            seq: 0,
            kind,
            meet_id,
            user_id,
            story_id: None,
            at,
        }
    }
}

/// This process's event stream.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    backend: DbBackend,
}

impl EventBus {
    pub fn new(backend: DbBackend) -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self { sender, backend }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    fn deliver(&self, event: Event) {
        // No receivers is fine: nobody is listening.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Commits `txn` with `events`: meet activity is written to the meet's
    /// activity log inside it (where resuming subscribers read it back), and
    /// every event is NOTIFYed inside it on PostgreSQL, or broadcast here after
    /// the commit on SQLite. Nothing is announced for a change that did not
    /// commit.
    pub async fn commit(&self, txn: DatabaseTransaction, mut events: Vec<Event>) -> ApiResult<()> {
        for event in &mut events {
            metrics::counter!("tweetmeet_events_published_total", "type" => event.name())
                .increment(1);
            if let Event::MeetActivity {
                seq,
                kind,
                meet_id,
                user_id,
                story_id,
                at,
            } = event
            {
                *seq = log::append(&txn, *meet_id, *kind, *user_id, *story_id, *at).await?;
            }
        }
        if self.backend == DbBackend::Postgres {
            for event in &events {
                let payload =
                    serde_json::to_string(event).map_err(crate::error::ApiError::internal)?;
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [CHANNEL.into(), payload.into()],
                ))
                .await?;
            }
            txn.commit().await?;
        } else {
            txn.commit().await?;
            for event in events {
                self.deliver(event);
            }
        }
        Ok(())
    }

    /// Starts the PostgreSQL LISTEN bridge for this process (no-op on SQLite).
    pub async fn start(&self, db: &DatabaseConnection) -> anyhow::Result<()> {
        if self.backend == DbBackend::Postgres {
            spawn_listener(db, self.clone()).await?;
        }
        Ok(())
    }
}
