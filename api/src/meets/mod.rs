//! Meets: hosting and go / no-go (`lifecycle`), answers with a waitlist,
//! arrivals and check-ins (`attendance`), the lists (`discovery`, with
//! full-text `search`), who may see, answer and edit a meet and see its
//! guest list (`visibility`), reminders (`reminders`) and calendar files
//! (`calendar`).

pub mod attendance;
pub mod calendar;
pub mod discovery;
pub mod lifecycle;
pub mod loaders;
pub mod reminders;
mod resolvers;
pub mod rules;
mod search;
pub mod types;
pub mod visibility;

use entity::scheduled_jobs::{self, JobKind};
use futures::future::BoxFuture;

use crate::{error::ApiResult, state::Services};

pub use resolvers::{MeetsMutation, MeetsQuery};

/// The meets' timed work, as `jobs::run` calls it: go / no-go deadlines and
/// reminders.
pub fn timed_work<'a>(
    services: &'a Services,
    job: &'a scheduled_jobs::Model,
) -> BoxFuture<'a, ApiResult<()>> {
    Box::pin(async move {
        match job.kind {
            JobKind::DecideMeet => lifecycle::decide(services, job).await,
            JobKind::Remind => reminders::remind(services, job).await,
        }
    })
}
