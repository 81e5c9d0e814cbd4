//! SeaORM entities: one module per table. Storage only: the GraphQL types live
//! in `api`, so the stored model and the public schema can change independently.

pub mod admin_audit;
pub mod attendances;
pub mod devices;
pub mod invitation_mails;
pub mod invitations;
pub mod invite_link_opens;
pub mod invite_links;
pub mod meet_activity_log;
pub mod meets;
pub mod notices;
pub mod notification_preferences;
pub mod push_notices;
pub mod rate_limit_windows;
pub mod refresh_tokens;
pub mod scheduled_jobs;
pub mod stories;
pub mod users;
