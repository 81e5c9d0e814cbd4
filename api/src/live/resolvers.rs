//! The Subscription root. Each stream filters the process's shared snapshots
//! by the one visibility rule, per subscriber, at delivery. A subscriber that
//! falls too far behind gets an error and its stream ends (it can resubscribe);
//! nothing is buffered without limit.

use std::sync::Arc;

use async_graphql::{Context, ID, Subscription};
use entity::invitations::InvitationStatus;
use futures::stream::BoxStream;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    hub::{self, MeetView, Snapshot},
    types::{MeetActivity, activity_after, activity_cursor},
};
use crate::{
    auth::Viewer,
    error::{ApiError, FieldResult},
    events::log,
    graphql::{ContextExt, parse_id},
    invitations::types::Invitation,
    meets::{
        rules,
        types::{Attendance, Meet},
        visibility,
    },
    stories::types::Story,
    validate,
};

fn sees(view: &MeetView, viewer: Viewer) -> bool {
    visibility::can_see(&view.meet, viewer, &view.invitees)
}

fn meet(view: &MeetView) -> Meet {
    Meet::from(view.meet.clone())
        .with_host(view.host.clone())
        .with_guest_list(view.attendee_seers.clone(), view.newcomer_count)
}

/// Refuses a subscription to a meet the viewer may not see. The query runs in
/// its own allocation: async-graphql keeps a subscription resolver's future
/// inline in the stream it returns for as long as the subscription lives, and
/// a database query's future would make every idle subscriber kilobytes larger.
async fn require_visible(ctx: &Context<'_>, viewer: Viewer, meet_id: Uuid) -> FieldResult<()> {
    Box::pin(visibility::find_visible(ctx.db(), viewer, meet_id))
        .await?
        .ok_or_else(|| ApiError::not_found("meet"))?;
    Ok(())
}

/// What a subscription resolver returns. Boxed, stream and items alike:
/// async-graphql keeps a subscription's stream, and room for one item, inline
/// in per-subscription state for as long as the subscription lives, so with
/// tens of thousands of idle subscribers every byte of them counts.
type LiveStream<T> = BoxStream<'static, FieldResult<Box<T>>>;

/// What the hub broadcasts, as `snapshots` needs it.
trait Broadcast {
    /// Whether events were skipped before this one.
    fn is_missed(&self) -> bool;
}

impl Broadcast for Snapshot {
    fn is_missed(&self) -> bool {
        matches!(self, Snapshot::Missed)
    }
}

/// The hub's snapshots as a stream of `T`, ending with an error when the
/// subscriber lags too far behind (its buffer is the broadcast's, bounded)
/// or the hub itself skipped events: the client subscribes again.
fn snapshots<S: Broadcast + Send + Sync + 'static, T: Send + 'static>(
    mut receiver: broadcast::Receiver<Arc<S>>,
    pick: impl Fn(&S) -> Option<T> + Send + 'static,
) -> LiveStream<T> {
    Box::pin(async_stream::stream! {
        loop {
            match receiver.recv().await {
                Ok(snapshot) if snapshot.is_missed() => {
                    yield Err(ApiError::EventsMissed.into());
                    break;
                }
                Ok(snapshot) => {
                    // Boxed before the `yield`: what lives across it is
                    // kept in the stream's state between events.
                    let item = pick(&snapshot).map(Box::new);
                    drop(snapshot);
                    if let Some(item) = item {
                        yield Ok(item);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    yield Err(ApiError::EventsMissed.into());
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

/// Logged events read per query while catching up.
const CATCH_UP_BATCH: u64 = 100;

/// A meet's event as `meetActivity` shows it to `viewer`, if it may.
fn activity_item(snapshot: &Snapshot, meet_id: Uuid, viewer: Viewer) -> Option<MeetActivity> {
    match snapshot {
        Snapshot::MeetActivity {
            seq,
            kind,
            at,
            meet: view,
            attendance,
            story,
        } if view.meet.id == meet_id && sees(view, viewer) => Some(MeetActivity {
            cursor: activity_cursor(meet_id, *seq),
            kind: (*kind).into(),
            at: *at,
            meet: meet(view),
            // Someone's own attendance is theirs to see; other people's
            // follow the guest list's rule.
            attendance: attendance
                .as_ref()
                .filter(|(a, _, _)| {
                    viewer.user_id() == Some(a.user_id)
                        || visibility::sees_attendees_among(
                            &view.meet,
                            viewer,
                            &view.attendee_seers,
                        )
                })
                .map(|(a, u, record)| {
                    Attendance::from(a.clone())
                        .with_user(u.clone())
                        .with_meet(view.meet.clone())
                        .with_record(*record)
                }),
            story: story.as_ref().map(|(s, author)| {
                Story::from(s.clone())
                    .with_author(author.clone())
                    .with_meet(view.meet.clone())
            }),
        }),
        _ => None,
    }
}

/// The number of a snapshot that is an event on `meet_id`.
fn activity_seq(snapshot: &Snapshot, meet_id: Uuid) -> Option<i64> {
    match snapshot {
        Snapshot::MeetActivity { seq, meet, .. } if meet.meet.id == meet_id => Some(*seq),
        _ => None,
    }
}

/// Logged events on a meet after number `last` (and before `until`, when
/// given), as snapshots. `EVENTS_MISSED` when the log no longer holds the
/// next one (pruned past its retention).
async fn logged_after(
    db: &DatabaseConnection,
    meet_id: Uuid,
    last: i64,
    until: Option<i64>,
) -> Result<Vec<Snapshot>, ApiError> {
    let mut logged = log::after(db, meet_id, last, CATCH_UP_BATCH).await?;
    match logged.first() {
        Some(first) if first.seq != last + 1 => return Err(ApiError::EventsMissed),
        None if log::head(db, meet_id).await? > last => return Err(ApiError::EventsMissed),
        _ => {}
    }
    if let Some(until) = until {
        logged.retain(|event| event.seq < until);
    }
    Ok(hub::replay(db, meet_id, &logged).await?)
}

/// `meetActivity`'s stream: after event number `last` of the meet, replayed
/// from the log first when `resume`, then live. Events arrive numbered
/// without gaps per meet, so a gap (this process heard a later event first,
/// or the subscriber lagged past its buffer) is filled from the log rather
/// than the subscriber dropped, and a repeat is skipped. Only what the log no
/// longer holds, or what the event stream itself lost, ends it with
/// `EVENTS_MISSED`.
fn meet_activity(
    db: DatabaseConnection,
    mut receiver: broadcast::Receiver<Arc<Snapshot>>,
    meet_id: Uuid,
    mut last: i64,
    resume: bool,
    pick: impl Fn(&Snapshot) -> Option<MeetActivity> + Send + 'static,
) -> LiveStream<MeetActivity> {
    Box::pin(async_stream::stream! {
        let mut catch_up = resume;
        // A live event that arrived ahead of a gap, delivered once it is filled.
        let mut held: Option<Arc<Snapshot>> = None;
        loop {
            if catch_up {
                let until = held.as_deref().and_then(|snapshot| activity_seq(snapshot, meet_id));
                loop {
                    let batch = match Box::pin(logged_after(&db, meet_id, last, until)).await {
                        Ok(batch) => batch,
                        Err(err) => {
                            yield Err(err.into());
                            return;
                        }
                    };
                    let done = (batch.len() as u64) < CATCH_UP_BATCH
                        || batch.last().and_then(|s| activity_seq(s, meet_id)).map(|seq| seq + 1) == until;
                    for snapshot in batch {
                        last = activity_seq(&snapshot, meet_id).unwrap_or(last);
                        if let Some(item) = pick(&snapshot).map(Box::new) {
                            yield Ok(item);
                        }
                    }
                    if done {
                        break;
                    }
                }
                catch_up = false;
                if let Some(snapshot) = held.take()
                    && let Some(seq) = activity_seq(&snapshot, meet_id).filter(|seq| *seq > last)
                {
                    last = seq;
                    let item = pick(&snapshot).map(Box::new);
                    drop(snapshot);
                    if let Some(item) = item {
                        yield Ok(item);
                    }
                }
                continue;
            }
            match receiver.recv().await {
                Ok(snapshot) if snapshot.is_missed() => {
                    yield Err(ApiError::EventsMissed.into());
                    break;
                }
                Ok(snapshot) => {
                    let Some(seq) = activity_seq(&snapshot, meet_id) else {
                        continue;
                    };
                    if seq <= last {
                        continue;
                    }
                    if seq > last + 1 {
                        held = Some(snapshot);
                        catch_up = true;
                        continue;
                    }
                    last = seq;
                    // Boxed before the `yield`: what lives across it is kept
                    // in the stream's state between events.
                    let item = pick(&snapshot).map(Box::new);
                    drop(snapshot);
                    if let Some(item) = item {
                        yield Ok(item);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => catch_up = true,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// Every change to a meet as it happens. Refused for a meet the viewer may
    /// not see. With `after` (an event's `cursor`), first every later event on
    /// the meet in order, from the activity log, then live ones.
    async fn meet_activity(
        &self,
        ctx: &Context<'_>,
        meet_id: ID,
        after: Option<String>,
    ) -> FieldResult<LiveStream<MeetActivity>> {
        let viewer = ctx.viewer();
        let meet_id = parse_id(&meet_id, "meet")?;
        let after = after
            .map(|cursor| activity_after(&cursor, meet_id))
            .transpose()?;
        require_visible(ctx, viewer, meet_id).await?;
        // Subscribed before the log is read: what commits in between arrives
        // live as well, and the numbers drop the repeats at the seam.
        let receiver = ctx.live().subscribe();
        let db = ctx.db().clone();
        let head = Box::pin(log::head(ctx.db(), meet_id)).await?;
        let start = match after {
            Some(after) if after > head => {
                return Err(
                    ApiError::bad_input("after", "not a cursor of this meet's activity").into(),
                );
            }
            Some(after) => after,
            None => head,
        };
        Ok(meet_activity(
            db,
            receiver,
            meet_id,
            start,
            after.is_some(),
            move |snapshot| activity_item(snapshot, meet_id, viewer),
        ))
    }

    /// The signed-in user's new invitations.
    async fn invitation_received(&self, ctx: &Context<'_>) -> FieldResult<LiveStream<Invitation>> {
        let user_id: Uuid = ctx.viewer().require()?;
        Ok(snapshots(
            ctx.live().subscribe(),
            move |snapshot| match snapshot {
                Snapshot::InvitationReceived {
                    invitation,
                    inviter,
                    meet,
                } if invitation.invitee_id == Some(user_id)
                    && invitation.status == InvitationStatus::Pending =>
                {
                    Some(
                        Invitation::from(invitation.clone())
                            .with_inviter(inviter.clone())
                            .with_meet(meet.clone()),
                    )
                }
                _ => None,
            },
        ))
    }

    /// New meets the viewer may see, optionally in one region (case-insensitive).
    async fn meet_announced(
        &self,
        ctx: &Context<'_>,
        region: Option<String>,
    ) -> FieldResult<LiveStream<Meet>> {
        let viewer = ctx.viewer();
        let region = match region {
            Some(raw) => Some(validate::lookup("region", &raw, rules::REGION_MAX)?),
            None => None,
        };
        let region = rules::region_key(region.as_deref());
        Ok(snapshots(
            ctx.live().subscribe(),
            move |snapshot| match snapshot {
                Snapshot::MeetAnnounced(view)
                    if sees(view, viewer)
                        && region
                            .as_ref()
                            .is_none_or(|r| view.meet.region_key.as_ref() == Some(r)) =>
                {
                    Some(meet(view))
                }
                _ => None,
            },
        ))
    }

    /// New stories the viewer may see; with `meetId`, about that meet only.
    async fn story_published(
        &self,
        ctx: &Context<'_>,
        meet_id: Option<ID>,
    ) -> FieldResult<LiveStream<Story>> {
        let viewer = ctx.viewer();
        let meet_id = match meet_id {
            Some(id) => {
                let id = parse_id(&id, "meet")?;
                require_visible(ctx, viewer, id).await?;
                Some(id)
            }
            None => None,
        };
        Ok(snapshots(
            ctx.live().subscribe(),
            move |snapshot| match snapshot {
                Snapshot::StoryPublished {
                    story,
                    author,
                    meet,
                } => {
                    let visible = meet.as_ref().is_none_or(|view| sees(view, viewer));
                    let wanted = meet_id.is_none_or(|id| story.meet_id == Some(id));
                    (visible && wanted).then(|| {
                        let story = Story::from(story.clone()).with_author(author.clone());
                        match meet {
                            Some(view) => story.with_meet(view.meet.clone()),
                            None => story,
                        }
                    })
                }
                _ => None,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::StreamExt;
    use tokio::sync::broadcast;

    use super::{Broadcast, snapshots};

    /// Test events: 0 stands for "events were skipped".
    impl Broadcast for u32 {
        fn is_missed(&self) -> bool {
            *self == 0
        }
    }

    fn code(error: async_graphql::Error) -> Option<async_graphql::Value> {
        error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .cloned()
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_dropped_not_buffered() {
        let (sender, receiver) = broadcast::channel::<Arc<u32>>(4);
        let mut stream = snapshots(receiver, |n: &u32| n.is_multiple_of(2).then_some(*n));
        sender.send(Arc::new(2)).unwrap();
        sender.send(Arc::new(3)).unwrap();
        assert_eq!(
            stream.next().await.map(|r| r.ok().map(|n| *n)),
            Some(Some(2)),
            "picked in order"
        );
        // Ten more while it does not read: more than its buffer holds.
        for n in 10..20 {
            sender.send(Arc::new(n)).unwrap();
        }
        let lagged = stream.next().await.expect("an error, then the end");
        let error = lagged.expect_err("lagging is an error").into();
        assert_eq!(
            code(error),
            Some(async_graphql::Value::from("EVENTS_MISSED"))
        );
        assert!(
            stream.next().await.is_none(),
            "the subscription ends; the client may subscribe again"
        );
    }

    #[tokio::test]
    async fn events_the_hub_skipped_end_every_subscription() {
        let (sender, receiver) = broadcast::channel::<Arc<u32>>(4);
        let mut stream = snapshots(receiver, |n: &u32| Some(*n));
        sender.send(Arc::new(7)).unwrap();
        sender.send(Arc::new(0)).unwrap();
        sender.send(Arc::new(8)).unwrap();
        assert_eq!(
            stream.next().await.map(|r| r.ok().map(|n| *n)),
            Some(Some(7))
        );
        let missed = stream.next().await.expect("an error, then the end");
        let error = missed.expect_err("skipped events are an error").into();
        assert_eq!(
            code(error),
            Some(async_graphql::Value::from("EVENTS_MISSED"))
        );
        assert!(stream.next().await.is_none());
    }
}
