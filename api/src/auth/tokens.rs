//! Access tokens (short-lived HS256 JWTs) and refresh tokens (random, opaque,
//! stored only as a SHA-256 hash).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

const ISSUER: &str = "tweetmeet";
const AUDIENCE: &str = "tweetmeet-api";
/// Marks a JWT as an access token, so no other token we might sign one day
/// can pass as one.
const ACCESS_TOKEN_USE: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    aud: String,
    sub: String,
    exp: i64,
    iat: i64,
    token_use: String,
}

/// What a verified access token says.
#[derive(Clone, Copy, Debug)]
pub struct AccessToken {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct TokenKeys {
    /// The secret, also keying addresses that must not be guessable
    /// (`derive`).
    secret: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        // HS256 pinned: a token naming any other algorithm (or none) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Self {
            secret: secret.to_vec(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    /// A keyed hash of `data` for `purpose` (HMAC-SHA256 under the server's
    /// secret), URL-safe: an address that proves the server made it, with
    /// nothing to store.
    pub fn derive(&self, purpose: &str, data: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, data).finalize().into_bytes())
    }

    /// Whether `token` is `derive(purpose, data)`, compared in constant time.
    pub fn verify(&self, purpose: &str, data: &str, token: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|bytes| self.mac(purpose, data).verify_slice(&bytes).is_ok())
    }

    fn mac(&self, purpose: &str, data: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(data.as_bytes());
        mac
    }

    pub fn issue_access(&self, user_id: Uuid) -> ApiResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at = now + self.access_ttl;
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user_id.to_string(),
            exp: expires_at.timestamp(),
            iat: now.timestamp(),
            token_use: ACCESS_TOKEN_USE.into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok((token, expires_at))
    }

    pub fn verify_access(&self, token: &str) -> ApiResult<AccessToken> {
        let invalid = || ApiError::Unauthenticated("invalid or expired access token".into());
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| invalid())?;
        let claims = data.claims;
        if claims.token_use != ACCESS_TOKEN_USE {
            return Err(invalid());
        }
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| invalid())?;
        Ok(AccessToken {
            user_id,
            expires_at: DateTime::from_timestamp(claims.exp, 0).ok_or_else(invalid)?,
        })
    }
}

/// A new random secret token (refresh or claim): 32 bytes, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a secret token: its SHA-256, hex. The tokens carry 256
/// random bits, so a fast hash is enough (no dictionary to attack).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(900),
        )
    }

    #[test]
    fn access_tokens_round_trip() {
        let user = Uuid::now_v7();
        let (token, expires_at) = keys().issue_access(user).unwrap();
        let verified = keys().verify_access(&token).unwrap();
        assert_eq!(verified.user_id, user);
        assert_eq!(verified.expires_at.timestamp(), expires_at.timestamp());
    }

    #[test]
    fn other_keys_and_garbage_are_refused() {
        let (token, _) = keys().issue_access(Uuid::now_v7()).unwrap();
        let other = TokenKeys::new(
            b"another secret of thirty-two chars!",
            Duration::from_secs(900),
        );
        assert!(other.verify_access(&token).is_err());
        assert!(keys().verify_access("not.a.jwt").is_err());
    }

    #[test]
    fn hashes_are_stable_and_tokens_random() {
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_eq!(token_hash("abc").len(), 64);
        assert_ne!(random_token(), random_token());
    }
}
