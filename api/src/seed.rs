//! `tweetmeet seed`: realistic demo data for trying the API and for the
//! benchmarks. Users with profiles; meets at bars and restaurants around
//! Southern Ontario over the coming weeks; answers (with waitlists where a
//! meet is full), check-ins at past meets (veterans) and meets under way,
//! people here, gone home and on their way, every guest-list setting,
//! newcomers asking to be introduced, stories and invitations, invite links
//! per channel with the people they brought, and go / no-go meets waiting
//! for enough people (their deadlines scheduled).
//! Deterministic for a given `--seed` (the same handles, e-mails, names and
//! meets, up to ids and the current time); inserts in batches with a
//! progress bar, and ends by saying how to sign in.

use chrono::{Duration, DurationRound, Utc};
use entity::{
    attendances::{self, ArrivalState, RsvpStatus},
    invitations::{self, InvitationStatus},
    invite_links,
    meets::{self, AttendeeVisibility, MeetStatus, Visibility},
    scheduled_jobs::{self, JobKind},
    stories,
    users::{self, Role},
};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TransactionTrait,
};
use uuid::Uuid;

use crate::{
    auth::{
        password::PasswordHasherPool,
        tokens::{random_token, token_hash},
    },
    meets::rules,
    notices::preferences::DEFAULT_REMINDER_MINUTES,
};

/// Every demo account signs in with this password.
pub const DEMO_PASSWORD: &str = "tweetmeet-demo";
/// Rows per INSERT: under SQLite's bound-parameter limit for the widest table,
/// and small enough that a statement is not held back on the socket (500 took
/// PostgreSQL 20 s for 20,000 meets, mostly waiting; 100 took 13 s).
const BATCH: usize = 100;
/// Batches committed together.
const BATCHES_PER_TRANSACTION: usize = 100;

pub struct SeedOptions {
    pub users: usize,
    pub meets: usize,
    pub seed: u64,
}

/// (town, region, latitude, longitude)
/// Where hosts share their invite links.
const CHANNELS: &[&str] = &["tweet", "newsletter", "group chat"];

const TOWNS: &[(&str, &str, f64, f64)] = &[
    ("Toronto", "Toronto", 43.6532, -79.3832),
    ("Mississauga", "Peel", 43.5890, -79.6441),
    ("Hamilton", "Hamilton", 43.2557, -79.8711),
    ("Kitchener", "Waterloo Region", 43.4516, -80.4925),
    ("Waterloo", "Waterloo Region", 43.4643, -80.5204),
    ("Guelph", "Wellington", 43.5448, -80.2482),
    ("London", "London", 42.9849, -81.2453),
    ("Oakville", "Halton", 43.4675, -79.6877),
    ("Burlington", "Halton", 43.3255, -79.7990),
    ("St. Catharines", "Niagara", 43.1594, -79.2469),
    ("Oshawa", "Durham", 43.8971, -78.8658),
    ("Barrie", "Simcoe", 44.3894, -79.6903),
];
const VENUE_KINDS: &[&str] = &[
    "Tap House",
    "Brewing Co.",
    "Pub",
    "Bistro",
    "Tavern",
    "Social",
    "Kitchen & Bar",
    "Taproom",
    "Wine Bar",
];
const VENUE_NAMES: &[&str] = &[
    "Rose & Crown",
    "Red Lion",
    "Queen's Head",
    "Iron Horse",
    "Copper Kettle",
    "Black Sheep",
    "Wellington",
    "Lakeview",
    "Harbour",
    "Maple Leaf",
    "Union",
    "Foundry",
];
const STREETS: &[&str] = &[
    "King St W",
    "Queen St E",
    "Main St",
    "Dundas St",
    "Front St",
    "James St N",
    "Water St",
    "Victoria St",
    "Richmond St",
];
const TRADES: &[&str] = &[
    "broadcast engineers",
    "sound techs",
    "stagehands",
    "line cooks",
    "freight brokers",
    "structural engineers",
    "UX designers",
    "data engineers",
    "paralegals",
    "electricians",
    "court reporters",
    "translators",
];
const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kira", "Liam",
    "Maya", "Noor", "Owen", "Priya", "Quinn", "Ravi", "Sara", "Tom", "Uma", "Vic", "Wen", "Yusuf",
    "Zoe",
];
const LAST: &[&str] = &[
    "Singh",
    "Tremblay",
    "Nguyen",
    "Roy",
    "MacDonald",
    "Chen",
    "Wilson",
    "Patel",
    "Gagnon",
    "Smith",
    "Li",
    "Brown",
    "Martin",
    "Kaur",
    "Lee",
    "Campbell",
];
const HEADLINES: &[&str] = &[
    "20 years on the tools",
    "New in town, say hi",
    "Freelance and always up for a pint",
    "Ask me about the 2019 outage",
    "Hiring!",
    "Between gigs",
];

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

async fn insert_batched<A>(db: &DatabaseConnection, rows: Vec<A>, what: &str) -> anyhow::Result<()>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    let bar = progress(rows.len(), what);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        // Many batches to a transaction: one commit (one WAL flush on
        // PostgreSQL) per batch made seeding wait on the disk.
        let txn = db.begin().await?;
        for _ in 0..BATCHES_PER_TRANSACTION {
            let batch: Vec<A> = rows.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                break;
            }
            let count = batch.len();
            <A::Entity as EntityTrait>::insert_many(batch)
                .exec_without_returning(&txn)
                .await?;
            bar.inc(count as u64);
        }
        txn.commit().await?;
    }
    bar.finish();
    Ok(())
}

pub async fn run(db: &DatabaseConnection, options: SeedOptions) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let now = Utc::now().duration_trunc(Duration::minutes(15))?;
    // One hash for every demo account: hashing hundreds would take minutes.
    let password_hash = PasswordHasherPool::new(1)
        .hash(DEMO_PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The seed, in base 36, ends every handle and e-mail: the same seed
    // makes the same accounts, and another seed can go into the same
    // database beside them.
    let tag = base36(options.seed);

    let mut user_rows = Vec::with_capacity(options.users);
    let mut user_ids = Vec::with_capacity(options.users);
    let mut sign_in = None;
    for i in 0..options.users {
        let (first, last) = (
            FIRST.choose(&mut rng).copied().unwrap_or("Ada"),
            LAST.choose(&mut rng).copied().unwrap_or("Lee"),
        );
        let id = Uuid::now_v7();
        let town = TOWNS.choose(&mut rng).copied().unwrap_or(TOWNS[0]);
        user_ids.push(id);
        let email = format!(
            "{}.{}.{i}.{tag}@demo.tweetmeet.local",
            first.to_lowercase(),
            last.to_lowercase()
        );
        let handle = format!(
            "{}_{}{i}_{tag}",
            first.to_lowercase(),
            &last.to_lowercase()[..1]
        );
        if sign_in.is_none() {
            sign_in = Some(SignIn {
                email: email.clone(),
                handle: handle.clone(),
            });
        }
        user_rows.push(users::ActiveModel {
            id: Set(id),
            email: Set(email),
            handle: Set(handle),
            display_name: Set(format!("{first} {last}")),
            password_hash: Set(password_hash.clone()),
            role: Set(Role::Member),
            headline: Set(Some(format!(
                "{} — {}",
                HEADLINES.choose(&mut rng).copied().unwrap_or(""),
                TRADES.choose(&mut rng).copied().unwrap_or("")
            ))),
            bio: Set(None),
            avatar_url: Set(None),
            region: Set(Some(town.1.to_owned())),
            email_notices: Set(true),
            suspended_at: Set(None),
            suspension_reason: Set(None),
            reminder_minutes_before: Set(Some(DEFAULT_REMINDER_MINUTES)),
            calendar_feed_nonce: Set(None),
            calendar_feed_hash: Set(None),
            created_at: Set(now - Duration::days(rng.random_range(1..400))),
            updated_at: Set(now),
        });
    }
    let first = sign_in.ok_or_else(|| anyhow::anyhow!("seed makes at least one user"))?;
    if users::Entity::find()
        .filter(users::Column::Handle.eq(first.handle.as_str()))
        .one(db)
        .await?
        .is_some()
    {
        anyhow::bail!(
            "this database already holds seed {}'s accounts ({} among them); seed again with another --seed",
            options.seed,
            first.handle
        );
    }
    insert_batched(db, user_rows, "users").await?;

    let mut meet_rows = Vec::with_capacity(options.meets);
    let mut attendance_rows = Vec::new();
    let mut story_rows = Vec::new();
    let mut invitation_rows = Vec::new();
    let mut link_rows = Vec::new();
    let mut job_rows = Vec::new();
    // One meet in fifty (and at least two) is tonight, so a demo has people
    // on their way, here and gone home.
    let tonight = options.meets / 50 + 2;
    for i in 0..options.meets {
        let id = Uuid::now_v7();
        let host = *user_ids
            .choose(&mut rng)
            .ok_or_else(|| anyhow::anyhow!("no users to host"))?;
        let (town, region, lat, lon) = TOWNS.choose(&mut rng).copied().unwrap_or(TOWNS[0]);
        let venue = format!(
            "{} {}",
            VENUE_NAMES.choose(&mut rng).copied().unwrap_or(""),
            VENUE_KINDS.choose(&mut rng).copied().unwrap_or("")
        );
        let trade = TRADES.choose(&mut rng).copied().unwrap_or("people");
        // Mostly the coming weeks; a few under way now, a few past.
        let starts_at = if i < tonight {
            now + Duration::minutes(15 * rng.random_range(-4..10_i64))
        } else {
            now + Duration::minutes(15 * rng.random_range(-4 * 24 * 7..4 * 24 * 42_i64))
        };
        let ends_at = rng
            .random_bool(0.5)
            .then(|| starts_at + Duration::hours(rng.random_range(2..6)));
        let capacity = rng.random_bool(0.6).then(|| rng.random_range(8..80));
        let visibility = if rng.random_bool(0.15) {
            Visibility::InviteOnly
        } else {
            Visibility::Public
        };
        let cancelled = rng.random_bool(0.03);

        // Answers: the host, then a handful of others.
        let mut people = vec![host];
        for _ in 0..rng.random_range(0..16) {
            if let Some(&u) = user_ids.choose(&mut rng)
                && !people.contains(&u)
            {
                people.push(u);
            }
        }
        let effective_end = rules::effective_end(starts_at, ends_at);
        let underway = rules::check_in_open(starts_at, effective_end, now);
        let over = effective_end <= now;
        // On their way from three hours before until the end.
        let arriving = !cancelled && !over && now >= starts_at - rules::ON_MY_WAY_OPENS;
        // Who may see the guest list: mostly everyone, often only those
        // coming, sometimes a surprise until you arrive, now and then the
        // host alone.
        let attendee_visibility = match rng.random_range(0..20) {
            0..=10 => AttendeeVisibility::Public,
            11..=14 => AttendeeVisibility::Attendees,
            15..=17 => AttendeeVisibility::Arrived,
            _ => AttendeeVisibility::Host,
        };
        // Invite links: an upcoming meet shared on a channel or three.
        let mut links: Vec<invite_links::ActiveModel> = Vec::new();
        if !cancelled && starts_at > now && rng.random_bool(0.3) {
            for channel in CHANNELS.iter().take(rng.random_range(1..=CHANNELS.len())) {
                let token = random_token();
                links.push(invite_links::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    meet_id: Set(id),
                    created_by: Set(host),
                    channel: Set((*channel).to_owned()),
                    token_hash: Set(token_hash(&token)),
                    token: Set(token),
                    expires_at: Set(None),
                    max_uses: Set(None),
                    uses: Set(0),
                    opens: Set(0),
                    revoked_at: Set(None),
                    created_at: Set(now - Duration::days(2)),
                });
            }
        }
        let mut uses = vec![0; links.len()];
        let (mut going, mut checked_in_count, mut here_count, mut on_the_way_count) = (0, 0, 0, 0);
        for (n, &user_id) in people.iter().enumerate() {
            let status = if n == 0 {
                RsvpStatus::Going
            } else {
                match rng.random_range(0..10) {
                    0..=6 => RsvpStatus::Going,
                    7..=8 => RsvpStatus::Maybe,
                    _ => RsvpStatus::NotGoing,
                }
            };
            let status = match status {
                RsvpStatus::Going if capacity.is_some_and(|c| going >= c) => RsvpStatus::Waitlisted,
                other => other,
            };
            if status == RsvpStatus::Going {
                going += 1;
            }
            // Half of those who answered a shared meet came through a link.
            let via_link = (n > 0 && !links.is_empty() && rng.random_bool(0.5))
                .then(|| rng.random_range(0..links.len()));
            if let Some(link) = via_link {
                uses[link] += 1;
            }
            if (visibility == Visibility::InviteOnly || via_link.is_some()) && n > 0 {
                invitation_rows.push(invitations::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    meet_id: Set(id),
                    inviter_id: Set(host),
                    invitee_id: Set(Some(user_id)),
                    email: Set(None),
                    message: Set(Some(format!("Come meet the {trade}!"))),
                    status: Set(InvitationStatus::Accepted),
                    claim_token_hash: Set(None),
                    claim_expires_at: Set(None),
                    created_at: Set(now - Duration::days(2)),
                    responded_at: Set(Some(now - Duration::days(1))),
                    invite_link_id: Set(via_link.and_then(|link| match &links[link].id {
                        Set(id) => Some(*id),
                        _ => None,
                    })),
                });
            }
            // Past meets leave veterans behind (their check-ins); meets
            // under way have people here, some gone home, some on the way.
            let going_on_the_night = status == RsvpStatus::Going && !cancelled;
            let checked_in = going_on_the_night && (underway || over) && rng.random_bool(0.6);
            let checked_in_at = checked_in
                .then(|| (starts_at + Duration::minutes(rng.random_range(0..45))).min(now));
            let (arrival, eta_at, left_at) = match checked_in_at {
                Some(at) if !over && rng.random_bool(0.2) => (
                    ArrivalState::Left,
                    None,
                    Some((at + Duration::minutes(30)).min(now)),
                ),
                Some(_) if !over => (ArrivalState::Here, None, None),
                Some(_) => (ArrivalState::Left, None, Some(effective_end)),
                None if going_on_the_night && arriving && rng.random_bool(0.4) => (
                    ArrivalState::OnMyWay,
                    Some(now + Duration::minutes(rng.random_range(5..60))),
                    None,
                ),
                None => (ArrivalState::NotYet, None, None),
            };
            checked_in_count += i32::from(checked_in);
            here_count += i32::from(arrival == ArrivalState::Here);
            on_the_way_count += i32::from(arrival == ArrivalState::OnMyWay);
            let introduce_me = status != RsvpStatus::NotGoing && rng.random_bool(0.15);
            let attendance_id = Uuid::now_v7();
            // Everyone going to a meet ahead is reminded of it.
            let reminder_at = starts_at - Duration::minutes(i64::from(DEFAULT_REMINDER_MINUTES));
            if status == RsvpStatus::Going && !cancelled && reminder_at > now {
                job_rows.push(scheduled_jobs::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    kind: Set(JobKind::Remind),
                    subject_id: Set(attendance_id),
                    due_at: Set(reminder_at),
                    claimed_until: Set(None),
                    attempts: Set(0),
                    created_at: Set(now),
                });
            }
            attendance_rows.push(attendances::ActiveModel {
                id: Set(attendance_id),
                meet_id: Set(id),
                user_id: Set(user_id),
                status: Set(status),
                responded_at: Set(now - Duration::minutes(rng.random_range(10..10_000))
                    + Duration::seconds(n as i64)),
                checked_in_at: Set(checked_in_at),
                arrival: Set(arrival),
                eta_at: Set(eta_at),
                left_at: Set(left_at),
                introduce_me: Set(introduce_me),
                hoping_to_meet: Set(
                    introduce_me.then(|| format!("{} veterans", capitalized(trade)))
                ),
            });
        }
        // Each link was opened by more people than it brought.
        for (mut link, used) in links.into_iter().zip(uses) {
            link.uses = Set(used);
            link.opens = Set(used + rng.random_range(0..150));
            link_rows.push(link);
        }
        // Go / no-go: one upcoming meet in ten waits for enough people until
        // an hour before it starts (confirmed already if it has them).
        let tentative = !cancelled && starts_at > now + Duration::hours(2) && rng.random_bool(0.1);
        let (minimum_going, decide_by) = if tentative {
            let most = capacity.unwrap_or(rules::MAX_CAPACITY);
            let minimum = (going + rng.random_range(-2..6)).clamp(2, most);
            (Some(minimum), Some(starts_at - Duration::hours(1)))
        } else {
            (None, None)
        };
        let confirmed_at = minimum_going.filter(|m| going >= *m).map(|_| now);
        if let (Some(due_at), None) = (decide_by, confirmed_at) {
            job_rows.push(scheduled_jobs::ActiveModel {
                id: Set(Uuid::now_v7()),
                kind: Set(JobKind::DecideMeet),
                subject_id: Set(id),
                due_at: Set(due_at),
                claimed_until: Set(None),
                attempts: Set(0),
                created_at: Set(now),
            });
        }
        if starts_at < now && rng.random_bool(0.3) {
            story_rows.push(stories::ActiveModel {
                id: Set(Uuid::now_v7()),
                author_id: Set(*people.choose(&mut rng).unwrap_or(&host)),
                meet_id: Set(Some(id)),
                title: Set(format!("What the {trade} said at the {venue}")),
                body: Set(format!(
                    "Showed up not knowing who'd be there. Ended up trading war stories with {} {} until close.",
                    trade,
                    if rng.random_bool(0.5) { "veterans" } else { "newcomers" }
                )),
                published_at: Set(starts_at + Duration::hours(5)),
                updated_at: Set(starts_at + Duration::hours(5)),
            });
        }
        meet_rows.push(meets::ActiveModel {
            id: Set(id),
            host_id: Set(host),
            title: Set(format!("{trade} meet at the {venue}", trade = capitalized(trade))),
            description: Set(Some(format!("Drinks with {trade} in {town}: come meet the industry. Nobody knows who'll show up."))),
            venue_name: Set(venue),
            address: Set(Some(format!("{} {}, {town}, ON", rng.random_range(1..400), STREETS.choose(&mut rng).copied().unwrap_or("Main St")))),
            latitude: Set(Some(lat + rng.random_range(-0.05..0.05))),
            longitude: Set(Some(lon + rng.random_range(-0.07..0.07))),
            region_key: Set(rules::region_key(Some(region))),
            region: Set(Some(region.to_owned())),
            time_zone: Set(Some("America/Toronto".to_owned())),
            starts_at: Set(starts_at),
            ends_at: Set(ends_at),
            effective_end_at: Set(rules::effective_end(starts_at, ends_at)),
            capacity: Set(capacity),
            going_count: Set(going),
            checked_in_count: Set(checked_in_count),
            here_count: Set(here_count),
            on_the_way_count: Set(on_the_way_count),
            visibility: Set(visibility),
            attendee_visibility: Set(attendee_visibility),
            status: Set(if cancelled { MeetStatus::Cancelled } else { MeetStatus::Scheduled }),
            cancellation_reason: Set(cancelled.then(|| "Venue double-booked".to_owned())),
            cancelled_at: Set(cancelled.then_some(now)),
            minimum_going: Set(minimum_going),
            decide_by: Set(decide_by),
            confirmed_at: Set(confirmed_at),
            created_at: Set(now - Duration::days(3)),
            updated_at: Set(now - Duration::days(3)),
        });
    }
    insert_batched(db, meet_rows, "meets").await?;
    insert_batched(db, attendance_rows, "answers").await?;
    insert_batched(db, link_rows, "invite links").await?;
    insert_batched(db, invitation_rows, "invitations").await?;
    insert_batched(db, job_rows, "deadlines").await?;
    insert_batched(db, story_rows, "stories").await?;
    // Fresh statistics for the planner: without them PostgreSQL planned the
    // feed over 10,000 seeded meets at 120 requests/s instead of 1,800–2,000
    // (autovacuum analyses only later); SQLite reads them too.
    db.execute_unprepared("ANALYZE").await?;
    println!(
        "seeded {} users and {} meets (seed {})\n\
         sign in as:\n  \
         e-mail    {}\n  \
         handle    {}\n  \
         password  {DEMO_PASSWORD}\n\
         (every demo account has that password)",
        options.users, options.meets, options.seed, first.email, first.handle
    );
    Ok(())
}

/// An account `seed` made, as its summary shows it.
struct SignIn {
    handle: String,
    email: String,
}

/// `n` in base 36 (0-9, a-z): at most 13 characters for any `u64`, so a
/// handle stays within its 30.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::base36;

    #[test]
    fn seeds_tag_handles_in_base_36() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(42), "16");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(u64::MAX), "3w5e11264sgsf");
        // The longest handle: a five-letter name, an initial, a
        // seven-digit index and the longest tag.
        assert!("yusuf_m9999999_".len() + base36(u64::MAX).len() <= 30);
    }
}
