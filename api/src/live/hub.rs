//! The per-process fan-out. Each event (ids only) is loaded once, here, into
//! a snapshot holding everything any subscriber may select and everything
//! visibility needs; every subscriber then filters and resolves from that
//! shared snapshot. The cost of an event does not grow with subscribers.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use entity::{attendances, invitations, meet_activity_log, meets, stories, users};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    events::{ActivityKind, Event, EventBus},
    meets::{
        loaders::{self, AttendanceRecord},
        visibility,
    },
};

/// A meet as events show it, with who may see it and its guest list.
#[derive(Clone, Debug)]
pub struct MeetView {
    // Behind Arcs: every subscriber's item shares them rather than copying.
    pub meet: Arc<meets::Model>,
    pub host: Arc<users::Model>,
    /// Holders of a pending or accepted invitation (for INVITE_ONLY meets).
    pub invitees: Arc<HashSet<Uuid>>,
    /// Who may see the guest list's names besides the host and
    /// administrators (`visibility::attendee_seers`); shared, not copied,
    /// by every subscriber's item.
    pub attendee_seers: Arc<HashSet<Uuid>>,
    pub newcomer_count: i64,
}

/// An attendance in an event, with its attendee and their record.
pub type AttendanceView = (Arc<attendances::Model>, Arc<users::Model>, AttendanceRecord);

// Always behind an Arc, made once per event: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Snapshot {
    MeetActivity {
        /// The event's number among the meet's (its activity log's).
        seq: i64,
        kind: ActivityKind,
        at: DateTime<Utc>,
        meet: MeetView,
        attendance: Option<AttendanceView>,
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
    /// Starts loading snapshots from `bus` in the background; a subscriber
    /// may fall `buffer` snapshots behind before it lags.
    pub fn start(db: DatabaseConnection, bus: &EventBus, buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer);
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
                metrics::gauge!("tweetmeet_live_hub_lag_events").set(events.len() as f64);
                match load(&db, &event).await {
                    Ok(Some(snapshot)) => {
                        let delivered = out.send(Arc::new(snapshot)).unwrap_or(0);
                        metrics::counter!("tweetmeet_events_fanned_out_total")
                            .increment(delivered as u64);
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
    let attendee_seers = Arc::new(visibility::attendee_seers(db, &meet).await?);
    let newcomer_count = loaders::newcomer_counts(db, &[meet_id])
        .await?
        .remove(&meet_id)
        .unwrap_or(0);
    Ok(Some(MeetView {
        meet: Arc::new(meet),
        host: Arc::new(host),
        invitees: Arc::new(invitees),
        attendee_seers,
        newcomer_count,
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

/// Attendances of `users` at a meet, with the users and their records, by
/// user: two statements.
async fn attendances_of(
    db: &DatabaseConnection,
    meet_id: Uuid,
    users: &[Uuid],
) -> Result<HashMap<Uuid, AttendanceView>, sea_orm::DbErr> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let mut records = loaders::attendance_records(db, users).await?;
    Ok(attendances::Entity::find()
        .find_also_related(users::Entity)
        .filter(attendances::Column::MeetId.eq(meet_id))
        .filter(attendances::Column::UserId.is_in(users.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(attendance, user)| {
            let record = records.remove(&attendance.user_id).unwrap_or_default();
            user.map(|user| {
                (
                    attendance.user_id,
                    (Arc::new(attendance), Arc::new(user), record),
                )
            })
        })
        .collect())
}

/// Whether an event of `kind` is about an attendance (its `user_id`'s).
fn about_attendance(kind: ActivityKind) -> bool {
    matches!(
        kind,
        ActivityKind::RsvpChanged | ActivityKind::CheckedIn | ActivityKind::ArrivalChanged
    )
}

/// Snapshots of logged events on one meet, for a subscriber replaying them
/// (after a cursor, or to catch up). Loaded as the meet stands now, like a
/// live event is at delivery: the meet once, then the attendances and the
/// stories of the whole batch in one query each. Empty if the meet is gone.
#[tracing::instrument(name = "live::replay", level = "debug", skip_all)]
pub async fn replay(
    db: &DatabaseConnection,
    meet_id: Uuid,
    logged: &[meet_activity_log::Model],
) -> Result<Vec<Snapshot>, sea_orm::DbErr> {
    if logged.is_empty() {
        return Ok(Vec::new());
    }
    let Some(meet) = meet_view(db, meet_id).await? else {
        return Ok(Vec::new());
    };
    let attendees: Vec<Uuid> = logged
        .iter()
        .filter(|event| about_attendance(event.kind))
        .filter_map(|event| event.user_id)
        .collect();
    let attendances = attendances_of(db, meet_id, &attendees).await?;
    let story_ids: Vec<Uuid> = logged.iter().filter_map(|event| event.story_id).collect();
    let stories: HashMap<Uuid, (stories::Model, users::Model)> = if story_ids.is_empty() {
        HashMap::new()
    } else {
        stories::Entity::find()
            .find_also_related(users::Entity)
            .filter(stories::Column::Id.is_in(story_ids))
            .all(db)
            .await?
            .into_iter()
            .filter_map(|(story, author)| author.map(|author| (story.id, (story, author))))
            .collect()
    };
    let mut snapshots = Vec::with_capacity(logged.len());
    for event in logged {
        let attendance = match event.user_id {
            Some(user_id) if about_attendance(event.kind) => attendances.get(&user_id).cloned(),
            _ => None,
        };
        snapshots.push(Snapshot::MeetActivity {
            seq: event.seq,
            kind: event.kind,
            at: event.at,
            // Each snapshot owns its view, as live ones do.
            meet: meet.clone(),
            attendance,
            story: event.story_id.and_then(|id| stories.get(&id).cloned()),
        });
    }
    Ok(snapshots)
}

async fn load(db: &DatabaseConnection, event: &Event) -> Result<Option<Snapshot>, sea_orm::DbErr> {
    Ok(match *event {
        Event::MeetActivity {
            seq,
            kind,
            meet_id,
            user_id,
            story_id,
            at,
        } => {
            let Some(meet) = meet_view(db, meet_id).await? else {
                return Ok(None);
            };
            let attendance = match user_id {
                Some(user_id) if about_attendance(kind) => attendances_of(db, meet_id, &[user_id])
                    .await?
                    .remove(&user_id),
                _ => None,
            };
            let story = match story_id {
                Some(id) => story_with_author(db, id).await?,
                None => None,
            };
            Some(Snapshot::MeetActivity {
                seq,
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
