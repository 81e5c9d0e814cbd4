//! Web Push: RFC 8030 delivery to a subscription's endpoint, its payload
//! encrypted per RFC 8291 (`aes128gcm`), the server identified per RFC 8292
//! (VAPID: an ES256 JWT and the public key in `Authorization`).
//!
//! The encryption is written here on RustCrypto's `p256` and `ring` (both
//! already in the tree, under jsonwebtoken and rustls) rather than with the
//! `web-push` crate, which brings OpenSSL (through `ece`) and an HTTP client
//! of its own (isahc / curl) beside hyper.

use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::devices::{self, Platform};
use http_body_util::Full;
use hyper::{Request, body::Bytes};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
use ring::{aead, agreement, hkdf, rand::SecureRandom};

use super::{PushError, PushMessage, PushTransport, http};

/// How long a push service keeps a notice for a browser that is offline.
const TTL: Duration = Duration::from_secs(4 * 3600);
/// How long a VAPID token is good for (RFC 8292 allows up to 24 hours).
const VAPID_TTL_SECS: i64 = 12 * 3600;
/// The record size declared in the `aes128gcm` header (one record).
const RECORD_SIZE: u32 = 4096;

pub struct WebPush {
    signing: EncodingKey,
    public_key: Vec<u8>,
    subject: String,
    client: http::Client,
}

/// A VAPID private key: PEM (PKCS#8 or SEC1) or a base64url 32-byte scalar.
pub fn parse_private_key(text: &str) -> anyhow::Result<SecretKey> {
    let text = text.trim();
    if text.contains("-----BEGIN EC PRIVATE KEY-----") {
        return SecretKey::from_sec1_pem(text).context("not a P-256 SEC1 PEM key");
    }
    if text.contains("-----BEGIN") {
        return <SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(text)
            .context("not a P-256 PKCS#8 PEM key");
    }
    let raw = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .context("neither PEM nor base64url")?;
    SecretKey::from_slice(&raw).context("not a P-256 private key (32 bytes)")
}

/// A new VAPID private key, as its base64url scalar.
pub fn generate_private_key() -> anyhow::Result<String> {
    let rng = ring::rand::SystemRandom::new();
    loop {
        let mut raw = [0u8; 32];
        rng.fill(&mut raw)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        if SecretKey::from_slice(&raw).is_ok() {
            return Ok(URL_SAFE_NO_PAD.encode(raw));
        }
    }
}

impl WebPush {
    pub fn new(private_key: &str, subject: String) -> anyhow::Result<Self> {
        let key = parse_private_key(private_key).context("TWEETMEET_VAPID_PRIVATE_KEY")?;
        let der = key.to_pkcs8_der().context("encoding the VAPID key")?;
        Ok(Self {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            public_key: key.public_key().to_encoded_point(false).as_bytes().to_vec(),
            subject,
            client: http::client(false),
        })
    }

    /// The application server key browsers subscribe with (base64url).
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public_key)
    }

    /// `vapid t=…, k=…` for an endpoint (the token's audience is its origin).
    fn authorization(&self, endpoint: &hyper::Uri) -> anyhow::Result<String> {
        let scheme = endpoint.scheme_str().unwrap_or("https");
        let authority = endpoint.authority().context("the endpoint has no host")?;
        let claims = serde_json::json!({
            "aud": format!("{scheme}://{authority}"),
            "exp": chrono::Utc::now().timestamp() + VAPID_TTL_SECS,
            "sub": self.subject,
        });
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)
            .context("signing the VAPID token")?;
        Ok(format!("vapid t={token}, k={}", self.public_key()))
    }
}

/// An HKDF output length for `ring`.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], len: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![0u8; len];
    prk.expand(&[info], Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| anyhow::anyhow!("HKDF expand"))?;
    Ok(out)
}

/// The keys of RFC 8291 section 3.4, from the ECDH secret, the
/// subscription's `auth` secret and both public keys, and the salt.
pub fn content_keys(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(ecdh_secret);
    let ikm = expand(&prk_key, &key_info, 32)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let cek = expand(&prk, b"Content-Encoding: aes128gcm\0", 16)?;
    let nonce = expand(&prk, b"Content-Encoding: nonce\0", 12)?;
    Ok((cek, nonce))
}

/// `plaintext` encrypted for a subscription (`p256dh`, `auth`), as the
/// `aes128gcm` body: salt, record size, the server's ephemeral public key,
/// then one record (the plaintext, the last-record delimiter 0x02, sealed).
pub fn encrypt(plaintext: &[u8], p256dh: &[u8], auth: &[u8]) -> anyhow::Result<Vec<u8>> {
    if plaintext.len() + 1 + 16 > RECORD_SIZE as usize {
        bail!("the payload is too large for one record");
    }
    let rng = ring::rand::SystemRandom::new();
    let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| anyhow::anyhow!("generating an ephemeral key"))?;
    let as_public = ephemeral
        .compute_public_key()
        .map_err(|_| anyhow::anyhow!("the ephemeral public key"))?
        .as_ref()
        .to_vec();
    let ecdh_secret = agreement::agree_ephemeral(
        ephemeral,
        &agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, p256dh),
        |secret| secret.to_vec(),
    )
    .map_err(|_| anyhow::anyhow!("the subscription's p256dh is not a P-256 point"))?;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    let (cek, nonce) = content_keys(&ecdh_secret, auth, p256dh, &as_public, &salt)?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek)
            .map_err(|_| anyhow::anyhow!("the content key"))?,
    );
    let mut record = plaintext.to_vec();
    record.push(0x02);
    key.seal_in_place_append_tag(
        aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|_| anyhow::anyhow!("the nonce"))?,
        aead::Aad::empty(),
        &mut record,
    )
    .map_err(|_| anyhow::anyhow!("sealing the payload"))?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + as_public.len() + record.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

/// A device's stored key, decoded.
fn key_of(value: Option<&str>, name: &str) -> anyhow::Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(
            value
                .with_context(|| format!("no {name}"))?
                .trim_end_matches('='),
        )
        .with_context(|| format!("{name} is not base64url"))
}

#[async_trait]
impl PushTransport for WebPush {
    fn platform(&self) -> Platform {
        Platform::Web
    }

    async fn send(&self, device: &devices::Model, message: &PushMessage) -> Result<(), PushError> {
        let p256dh = key_of(device.web_push_p256dh.as_deref(), "p256dh")
            .map_err(|err| PushError::Gone(format!("{err:#}")))?;
        let auth = key_of(device.web_push_auth.as_deref(), "auth")
            .map_err(|err| PushError::Gone(format!("{err:#}")))?;
        let endpoint: hyper::Uri = device
            .token
            .parse()
            .map_err(|err| PushError::Gone(format!("the endpoint is not a URL: {err}")))?;
        let payload = serde_json::to_vec(&message.to_json()).map_err(anyhow::Error::from)?;
        let body = encrypt(&payload, &p256dh, &auth)?;
        let request = Request::post(endpoint.clone())
            .header("authorization", self.authorization(&endpoint)?)
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("ttl", TTL.as_secs().to_string())
            .header("urgency", "high")
            .body(Full::new(Bytes::from(body)))
            .map_err(anyhow::Error::from)?;
        let answer = http::send(&self.client, request).await?;
        match answer.status {
            200..=299 => Ok(()),
            404 | 410 => Err(PushError::Gone(format!(
                "the push service answered {}",
                answer.status
            ))),
            _ => Err(http::retry_or(&answer, "the Web Push service")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8291 appendix A: the keys derived from its example values.
    #[test]
    fn content_keys_match_rfc_8291() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap();
        let as_private = b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        let ua_public = b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let as_public = b64(
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
        );
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let salt = b64("DGv6ra1nlYgDCS1FRnbzlw");
        let secret = SecretKey::from_slice(&as_private).unwrap();
        let ua = p256::PublicKey::from_sec1_bytes(&ua_public).unwrap();
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), ua.as_affine());
        let (cek, nonce) = content_keys(
            &shared.raw_secret_bytes()[..],
            &auth,
            &ua_public,
            &as_public,
            &salt,
        )
        .unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(cek), "oIhVW04MRdy2XN9CiKLxTg");
        assert_eq!(URL_SAFE_NO_PAD.encode(nonce), "4h_95klXJ5E_qnoN");
    }

    #[test]
    fn keys_parse_as_pem_or_base64url() {
        let raw = generate_private_key().unwrap();
        let key = parse_private_key(&raw).unwrap();
        let pem = key.to_pkcs8_pem(Default::default()).unwrap();
        assert_eq!(parse_private_key(&pem).unwrap(), key);
        assert!(parse_private_key("not a key").is_err());
    }
}
