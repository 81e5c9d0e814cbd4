//! The per-process fan-out. Each event (ids only) is loaded once, here, into
//! a snapshot holding everything any subscriber may select and everything
//! visibility needs; every subscriber then filters and resolves from that
//! shared snapshot. The cost of an event does not grow with subscribers.

use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, Utc};
use entity::{attendances, invitations, meets, stories, users};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    events::{ActivityKind, Event, EventBus},
    meets::visibility,
};

/// How many snapshots a subscriber may fall behind before it is dropped.
const SUBSCRIBER_BUFFER: usize = 1024;

/// A meet as events show it, with who may see it.
#[derive(Debug)]
pub struct MeetView {
    pub meet: meets::Model,
    pub host: users::Model,
    /// Holders of a pending or accepted invitation (for INVITE_ONLY meets).
    pub invitees: HashSet<Uuid>,
}

// Always behind an Arc, made once per event: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Snapshot {
    MeetActivity {
        kind: ActivityKind,
        at: DateTime<Utc>,
        meet: MeetView,
        attendance: Option<(attendances::Model, users::Model)>,
        story: Option<(stories::Model, users::Model)>,
    },
    MeetAnnounced(MeetView),
    StoryPublished {
        story: stories::Model,
        author: users::Model,
        meet: Option<MeetView>,
    },
    InvitationReceived {
        invitation: invitations::Model,
        inviter: users::Model,
        meet: meets::Model,
    },
    /// The hub fell behind the event stream and skipped events: every
    /// subscription ends with an error, so that clients subscribe again and
    /// refetch what they show rather than miss changes without knowing.
    Missed,
}

/// Whose access changed, as open sockets hear of it.
#[derive(Clone, Copy, Debug)]
pub enum AccessChange {
    /// This user was suspended or changed role.
    User(Uuid),
    /// Changes may have been missed: every socket checks its viewer again.
    Unknown,
}

#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<Snapshot>>,
    /// Users suspended or re-roled, apart: every open socket listens for
    /// these, and should not be woken by every other event.
    access_changes: broadcast::Sender<AccessChange>,
}

impl Hub {
    /// Starts loading snapshots from `bus` in the background.
    pub fn start(db: DatabaseConnection, bus: &EventBus) -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        let (access_changes, _) = broadcast::channel(64);
        let hub = Self {
            sender,
            access_changes,
        };
        let mut events = bus.subscribe();
        let out = hub.sender.clone();
        let access_changed = hub.access_changes.clone();
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "live hub fell behind the event stream");
                        Arc::new(Event::Missed)
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                match *event {
                    Event::AccessChanged { user_id } => {
                        let _ = access_changed.send(AccessChange::User(user_id));
                        continue;
                    }
                    Event::Missed => {
                        let _ = access_changed.send(AccessChange::Unknown);
                        let _ = out.send(Arc::new(Snapshot::Missed));
                        continue;
                    }
                    _ => {}
                }
                // Nobody subscribed: nothing to load.
                if out.receiver_count() == 0 {
                    continue;
                }
                match load(&db, &event).await {
                    Ok(Some(snapshot)) => {
                        let _ = out.send(Arc::new(snapshot));
                    }
                    Ok(None) => {}
                    Err(err) => tracing::error!(error = %err, ?event, "loading a live event"),
                }
            }
        });
        hub
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Snapshot>> {
        self.sender.subscribe()
    }

    pub fn access_changes(&self) -> broadcast::Receiver<AccessChange> {
        self.access_changes.subscribe()
    }
}

async fn meet_view(
    db: &DatabaseConnection,
    meet_id: Uuid,
) -> Result<Option<MeetView>, sea_orm::DbErr> {
    let Some((meet, Some(host))) = meets::Entity::find_by_id(meet_id)
        .find_also_related(users::Entity)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let invitees = if meet.visibility == meets::Visibility::InviteOnly {
        visibility::invitees(db, meet_id).await?
    } else {
        HashSet::new()
    };
    Ok(Some(MeetView {
        meet,
        host,
        invitees,
    }))
}

async fn story_with_author(
    db: &DatabaseConnection,
    story_id: Uuid,
) -> Result<Option<(stories::Model, users::Model)>, sea_orm::DbErr> {
    let row = stories::Entity::find_by_id(story_id)
        .find_also_related(users::Entity)
        .one(db)
        .await?;
    Ok(row.and_then(|(story, author)| author.map(|a| (story, a))))
}

async fn load(db: &DatabaseConnection, event: &Event) -> Result<Option<Snapshot>, sea_orm::DbErr> {
    Ok(match *event {
        Event::MeetActivity {
            kind,
            meet_id,
            user_id,
            story_id,
            at,
        } => {
            let Some(meet) = meet_view(db, meet_id).await? else {
                return Ok(None);
            };
            let attendance = match (user_id, kind) {
                (Some(user_id), ActivityKind::RsvpChanged | ActivityKind::CheckedIn) => {
                    attendances::Entity::find()
                        .find_also_related(users::Entity)
                        .filter(attendances::Column::MeetId.eq(meet_id))
                        .filter(attendances::Column::UserId.eq(user_id))
                        .one(db)
                        .await?
                        .and_then(|(a, u)| u.map(|u| (a, u)))
                }
                _ => None,
            };
            let story = match story_id {
                Some(id) => story_with_author(db, id).await?,
                None => None,
            };
            Some(Snapshot::MeetActivity {
                kind,
                at,
                meet,
                attendance,
                story,
            })
        }
        Event::MeetAnnounced { meet_id } => {
            meet_view(db, meet_id).await?.map(Snapshot::MeetAnnounced)
        }
        Event::StoryPublished { story_id } => {
            let Some((story, author)) = story_with_author(db, story_id).await? else {
                return Ok(None);
            };
            let meet = match story.meet_id {
                Some(meet_id) => meet_view(db, meet_id).await?,
                None => None,
            };
            Some(Snapshot::StoryPublished {
                story,
                author,
                meet,
            })
        }
        Event::InvitationReceived { invitation_id } => {
            let Some((invitation, Some(meet))) = invitations::Entity::find_by_id(invitation_id)
                .find_also_related(meets::Entity)
                .one(db)
                .await?
            else {
                return Ok(None);
            };
            let Some(inviter) = users::Entity::find_by_id(invitation.inviter_id)
                .one(db)
                .await?
            else {
                return Ok(None);
            };
            Some(Snapshot::InvitationReceived {
                invitation,
                inviter,
                meet,
            })
        }
        Event::AccessChanged { .. } | Event::NoticesQueued | Event::Missed => None,
    })
}
