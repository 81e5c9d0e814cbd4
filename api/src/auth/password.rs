//! Argon2id with OWASP's parameters (19 MiB, t=2, p=1). Hashing runs on the
//! blocking pool, and a semaphore bounds how many run at once, so a login
//! storm queues instead of exhausting memory or starving the executor. The
//! queue and the hashes running are gauges (`tweetmeet_password_hashes_*`).

use std::sync::{Arc, OnceLock};

use anyhow::anyhow;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
}

fn argon2() -> Argon2<'static> {
    // Constant, valid parameters: Params::new only fails on out-of-range values.
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody has, so that an unknown e-mail costs the same
/// verification work as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2()
            .hash_password(b"no account has this password", &salt)
            .expect("hashing a constant")
            .to_string()
    })
}

impl PasswordHasherPool {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Runs `work` once a permit is free. The permit and the "running"
    /// count go with the work onto the blocking thread: a request that gives
    /// up (its client went away) stops waiting, but a hash already started
    /// runs to its end, and keeps its permit until then, so no more than the
    /// configured number ever run at once.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let permit = {
            let _queued = Gauge::raise("tweetmeet_password_hashes_queued");
            self.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(ApiError::internal)?
        };
        let running = Gauge::raise("tweetmeet_password_hashes_running");
        tokio::task::spawn_blocking(move || {
            let _held = (permit, running);
            work()
        })
        .await
        .map_err(ApiError::internal)
    }

    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ApiError::internal(anyhow!("argon2: {e}")))
    }

    /// Verifies `password` against `hash`, or against a dummy hash when there
    /// is no account, so both failures take the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> ApiResult<bool> {
        let found = hash.is_some();
        let matches = self
            .run(move || {
                let stored = hash.unwrap_or_else(|| dummy_hash().to_owned());
                PasswordHash::new(&stored).map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
            })
            .await?
            .map_err(|e| ApiError::internal(anyhow!("stored password hash unreadable: {e}")))?;
        Ok(found && matches)
    }
}

/// One more on a gauge while this lives: dropped on every path out,
/// cancellation included, so the gauge never drifts.
struct Gauge(&'static str);

impl Gauge {
    fn raise(name: &'static str) -> Self {
        metrics::gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let pool = PasswordHasherPool::new(2);
        let a = pool.hash("correct horse battery".into()).await.unwrap();
        let b = pool.hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(a, b, "salted");
        assert!(
            pool.verify("correct horse battery".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(
            !pool
                .verify("wrong horse battery".into(), Some(a))
                .await
                .unwrap()
        );
        assert!(
            !pool
                .verify("no account has this password".into(), None)
                .await
                .unwrap()
        );
    }
}
