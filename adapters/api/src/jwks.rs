//! The public keys of an identity provider, from its JWKS (`JWT_JWKS_URL`).
//!
//! The set is fetched once at start, retried with a back-off capped at
//! [`MAX_BACKOFF`] until it succeeds, and again when a token names a `kid` the set
//! does not hold (at most once every [`REFETCH_EVERY`]), so a rotated key works
//! without a restart. Each fetch is bounded by [`FETCH_TIMEOUT`]. A request whose key
//! is known never waits for a fetch: only a request naming an unknown `kid` waits for
//! the refetch it asked for (or for the one already under way).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// How long one fetch of the set may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The cap of the back-off between failed fetches at start.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The shortest time between two fetches asked for by unknown `kid`s.
pub const REFETCH_EVERY: Duration = Duration::from_secs(30);

/// The largest key set accepted (identity providers publish a few kilobytes).
const MAX_BODY: usize = 1 << 20;

/// The first delay of the back-off at start.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A verification key of the set: what it verifies, and how.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) decoding: DecodingKey,
}

/// The keys of one fetch of the set, by `kid`.
type Keys = Arc<HashMap<String, Arc<VerifyingKey>>>;

/// What the set says of a `kid`.
#[derive(Clone)]
pub(crate) enum Lookup {
    /// The set holds it.
    Known(Arc<VerifyingKey>),
    /// The set, fetched at least once, does not hold it (even after a refetch, when
    /// one was allowed).
    Unknown,
    /// The set has not been fetched yet.
    NotLoaded,
}

/// The identity provider's key set, shared by every request.
pub(crate) struct KeySet {
    url: reqwest::Url,
    client: reqwest::Client,
    refetch_every: Duration,
    /// `None` until the first fetch succeeded; replaced whole by each later one.
    keys: RwLock<Option<Keys>>,
    /// When the set was last fetched (or tried); held while a fetch runs, so
    /// requests with unknown `kid`s wait for one fetch instead of each making one.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    started: AtomicBool,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("url", &self.url.as_str())
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// The set published at `url` (`http` or `https`), not fetched yet.
    pub(crate) fn new(url: &str, refetch_every: Duration) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url)
            .with_context(|| format!("JWT_JWKS_URL {url:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "JWT_JWKS_URL must be an http or https URL, not {:?}",
            url.scheme()
        );
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .context("cannot build the JWKS client")?;
        Ok(Self {
            url,
            client,
            refetch_every,
            keys: RwLock::new(None),
            last_fetch: tokio::sync::Mutex::new(None),
            started: AtomicBool::new(false),
        })
    }

    /// Whether the set has been fetched at least once.
    pub(crate) fn is_loaded(&self) -> bool {
        self.current().is_some()
    }

    /// Starts fetching the set in the background, once: retried with back-off until
    /// it succeeds. Does nothing outside a Tokio runtime (the first request starts it
    /// then) or when already started.
    pub(crate) fn start(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.started.swap(true, Ordering::SeqCst) {
            runtime.spawn(self.clone().fetch_until_loaded());
        }
    }

    /// The key named `kid`; an unknown one refetches the set first when the last
    /// fetch is at least `refetch_every` old.
    pub(crate) async fn lookup(self: &Arc<Self>, kid: &str) -> Lookup {
        let Some(keys) = self.current() else {
            self.start();
            return Lookup::NotLoaded;
        };
        if let Some(key) = keys.get(kid) {
            return Lookup::Known(key.clone());
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // A fetch made while this request waited may have brought the key.
        if let Some(key) = self.find(kid) {
            return Lookup::Known(key);
        }
        if last_fetch.is_some_and(|at| at.elapsed() < self.refetch_every) {
            return Lookup::Unknown;
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(count) => tracing::info!(
                url = %self.url,
                keys = count,
                kid,
                "refetched the identity provider's key set for an unknown kid"
            ),
            Err(error) => tracing::warn!(
                url = %self.url,
                error = format!("{error:#}"),
                "cannot refetch the identity provider's key set; the keys fetched before stay in use"
            ),
        }
        drop(last_fetch);
        self.find(kid).map_or(Lookup::Unknown, Lookup::Known)
    }

    fn current(&self) -> Option<Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn find(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.current().and_then(|keys| keys.get(kid).cloned())
    }

    async fn fetch_until_loaded(self: Arc<Self>) {
        let mut delay = FIRST_BACKOFF;
        loop {
            let mut last_fetch = self.last_fetch.lock().await;
            *last_fetch = Some(Instant::now());
            match self.fetch().await {
                Ok(count) => {
                    tracing::info!(url = %self.url, keys = count, "fetched the identity provider's key set");
                    return;
                }
                Err(error) => tracing::warn!(
                    url = %self.url,
                    error = format!("{error:#}"),
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "cannot fetch the identity provider's key set; authenticated requests answer 503 until it is fetched"
                ),
            }
            drop(last_fetch);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Fetches the set and, when it holds at least one usable key, puts it in place
    /// of the one before. Returns how many keys it holds.
    async fn fetch(&self) -> anyhow::Result<usize> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .context("cannot reach the key set")?
            .error_for_status()
            .context("the key set's server refused")?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.context("cannot read the key set")? {
            anyhow::ensure!(
                body.len() + chunk.len() <= MAX_BODY,
                "the key set is larger than {MAX_BODY} bytes"
            );
            body.extend_from_slice(&chunk);
        }
        let keys = parse_key_set(&body)?;
        let count = keys.len();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(keys));
        Ok(count)
    }
}

/// The RS256 and ES256 signing keys of a JWKS document, by `kid`. Keys without a
/// `kid`, for encryption, of other types or curves, or whose `alg` is another one are
/// left out (identity providers publish such keys beside the signing ones).
///
/// # Errors
/// When the document is not a JWKS, or holds no usable key.
fn parse_key_set(body: &[u8]) -> anyhow::Result<HashMap<String, Arc<VerifyingKey>>> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).context("the key set is not a JWKS document")?;
    let keys: HashMap<_, _> = document
        .keys
        .into_iter()
        .filter_map(|value| {
            let jwk: Jwk = serde_json::from_value(value).ok()?;
            let kid = jwk.common.key_id.clone()?;
            Some((kid, Arc::new(verifying_key(&jwk)?)))
        })
        .collect();
    anyhow::ensure!(
        !keys.is_empty(),
        "the key set holds no RS256 or ES256 signing key with a kid"
    );
    Ok(keys)
}

/// The key `jwk` verifies with, when it is an RSA key for RS256 or a P-256 key for
/// ES256 (its `alg`, or its type when it names none).
fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, &jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey {
        algorithm,
        decoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rs256_and_es256_signing_keys_with_a_kid_are_kept() {
        let rsa = json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
        let ec =
            json!({"kty": "EC", "kid": "e", "crv": "P-256", "alg": "ES256", "x": "AA", "y": "AA"});
        let body = json!({"keys": [
            rsa,
            ec,
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "s", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AA"},
            {"what": "not a key"},
        ]});
        let keys = parse_key_set(body.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["e", "r"]);
        assert_eq!(keys["r"].algorithm, Algorithm::RS256);
        assert_eq!(keys["e"].algorithm, Algorithm::ES256);
    }

    #[test]
    fn a_set_without_a_usable_key_or_not_a_set_is_an_error() {
        for body in [
            json!({"keys": []}).to_string(),
            json!({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}).to_string(),
            json!({"not": "a set"}).to_string(),
            "<html>".to_owned(),
        ] {
            assert!(parse_key_set(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(KeySet::new("https://idp.example/keys", REFETCH_EVERY).is_ok());
        assert!(KeySet::new("ftp://idp.example/keys", REFETCH_EVERY).is_err());
        assert!(KeySet::new("not a url", REFETCH_EVERY).is_err());
    }
}
