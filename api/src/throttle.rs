//! Rate limits on the calls that guess passwords or tokens, hash passwords
//! or send mail. Each such resolver asks once per call, so a request of a
//! hundred aliased `login`s counts a hundred times.
//!
//! Two counts: per client address, in this process (governor's keyed GCRA:
//! cheap, and an address is what a flood comes from); and per account, in the
//! database (a fixed-window counter bumped with one upsert), so a guesser
//! spreading over addresses and server processes still meets one limit per
//! account. The account counts go through the database, not a process's
//! memory, because several processes share one PostgreSQL and a per-process
//! count would multiply the limit by the number of processes.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use entity::rate_limit_windows;
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use crate::{
    auth::tokens::token_hash,
    error::{ApiError, ApiResult},
};

/// What is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    Register,
    RefreshSession,
    ChangePassword,
    ClaimInvitation,
    InviteToMeet,
}

/// `count` calls per `window`.
#[derive(Clone, Copy)]
struct Rate {
    count: u32,
    window: Duration,
}

const fn per(count: u32, window_secs: u64) -> Rate {
    Rate {
        count,
        window: Duration::from_secs(window_secs),
    }
}

impl Action {
    const ALL: [Action; 6] = [
        Self::Login,
        Self::Register,
        Self::RefreshSession,
        Self::ChangePassword,
        Self::ClaimInvitation,
        Self::InviteToMeet,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::RefreshSession => "refresh",
            Self::ChangePassword => "password",
            Self::ClaimInvitation => "claim",
            Self::InviteToMeet => "invite",
        }
    }

    /// Calls from one client address.
    fn per_address(self) -> Rate {
        match self {
            Self::Login => per(30, 60),
            Self::Register => per(10, 3_600),
            Self::RefreshSession => per(60, 60),
            Self::ChangePassword => per(10, 900),
            Self::ClaimInvitation => per(30, 60),
            Self::InviteToMeet => per(60, 60),
        }
    }

    /// Calls about one account (the e-mail tried, or the signed-in user).
    fn per_account(self) -> Option<Rate> {
        match self {
            Self::Login => Some(per(10, 900)),
            Self::ChangePassword => Some(per(5, 900)),
            Self::ClaimInvitation => Some(per(30, 3_600)),
            Self::InviteToMeet => Some(per(100, 3_600)),
            Self::Register | Self::RefreshSession => None,
        }
    }
}

/// The limits of one process, and the database that holds the account counts.
pub struct Throttle {
    addresses: Vec<(Action, DefaultKeyedRateLimiter<IpAddr>)>,
    db: DatabaseConnection,
    /// Every limit times this (`TWEETMEET_RATE_LIMIT_FACTOR`, 1).
    factor: u32,
}

impl Throttle {
    pub fn new(db: DatabaseConnection, factor: u32) -> Self {
        let factor = Ord::max(factor, 1);
        let addresses = Action::ALL
            .iter()
            .map(|&action| {
                let rate = action.per_address();
                let count = rate.count.saturating_mul(factor);
                let quota = Quota::with_period(rate.window / count)
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN));
                (action, RateLimiter::keyed(quota))
            })
            .collect();
        Self {
            addresses,
            db,
            factor,
        }
    }

    /// Counts one call of `action` from `address` about `account` (an e-mail
    /// or a user id; `None` when the call names none). `RATE_LIMITED` with
    /// the seconds to wait when either count is over its limit.
    pub async fn check(
        &self,
        action: Action,
        address: Option<IpAddr>,
        account: Option<&str>,
    ) -> ApiResult<()> {
        if let (Some(address), Some((_, limiter))) = (
            address,
            self.addresses
                .iter()
                .find(|(limited, _)| *limited == action),
        ) && let Err(not_until) = limiter.check_key(&address)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::rate_limited(wait));
        }
        let (Some(account), Some(rate)) = (account, action.per_account()) else {
            return Ok(());
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let window = Ord::max(rate.window.as_secs(), 1);
        let window_start = now - now % window;
        // Hashed: the key holds client input (an e-mail, NUL bytes and all),
        // which is neither stored as such nor trusted to fit a column.
        let hits = self
            .count(
                &format!("{}:{}", action.name(), token_hash(account)),
                i64::try_from(window_start).unwrap_or(i64::MAX),
            )
            .await?;
        if hits > i64::from(rate.count.saturating_mul(self.factor)) {
            return Err(ApiError::rate_limited(Duration::from_secs(
                window_start + window - now,
            )));
        }
        Ok(())
    }

    /// One more hit for `key` in the window; the hits so far, this one included.
    async fn count(&self, key: &str, window_start: i64) -> ApiResult<i64> {
        use rate_limit_windows::Column;
        let counted = rate_limit_windows::Entity::insert(rate_limit_windows::ActiveModel {
            key: Set(key.to_owned()),
            window_start: Set(window_start),
            hits: Set(1),
        })
        .on_conflict(
            OnConflict::columns([Column::Key, Column::WindowStart])
                .value(
                    Column::Hits,
                    Expr::col((rate_limit_windows::Entity, Column::Hits)).add(1),
                )
                .to_owned(),
        )
        .exec_with_returning(&self.db)
        .await?;
        Ok(i64::from(counted.hits))
    }

    /// Forgets what no limit looks at any more: address states that are full
    /// again, and account windows older than a day.
    pub async fn prune(&self) -> ApiResult<()> {
        for (_, limiter) in &self.addresses {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let day_ago = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .saturating_sub(86_400);
        rate_limit_windows::Entity::delete_many()
            .filter(
                rate_limit_windows::Column::WindowStart
                    .lt(i64::try_from(day_ago).unwrap_or(i64::MAX)),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
