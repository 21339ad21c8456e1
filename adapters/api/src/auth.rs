//! Authentication: who is behind a request, as an [`Actor`] for the use cases.
//!
//! With `JWT_SECRET` set, every request carries `Authorization: Bearer <JWT>` signed
//! HS256 with that secret, with the claims `sub` (the user), `exp` (required), `roles`
//! and, for customers, `customerId`; a client-supplied `X-User-Id` is ignored. With
//! `JWT_JWKS_URL` set, the same tokens come from an identity provider, signed RS256 or
//! ES256 with the key of its published set named by the token's `kid` (see
//! [`crate::jwks`]). With `AUTH_MODE=none` (local development only) nobody is
//! authenticated, the actor is unrestricted and `X-User-Id` is trusted as the user.
//! HTTP and gRPC both go through [`Authenticator::authenticate`], so they accept and
//! refuse the same credentials.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use application::{Actor, Role};
use domain::CustomerId;
use http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::jwks::{KeySet, Lookup, REFETCH_EVERY};

/// The shortest accepted `JWT_SECRET`: HS256 needs a key as long as its hash (32 bytes).
pub const MIN_SECRET_LEN: usize = 32;

/// Clock skew tolerated on `exp`.
const LEEWAY: Duration = Duration::from_secs(30);

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// `AUTH_MODE=none`: nobody is authenticated; the user header is trusted.
    Off,
    /// `JWT_SECRET`: HS256 bearer tokens.
    Jwt(Box<JwtKeys>),
    /// `JWT_JWKS_URL`: RS256 or ES256 bearer tokens from an identity provider.
    Jwks(Arc<Jwks>),
}

/// The keys made from `JWT_SECRET`, and how tokens are checked.
#[derive(Clone)]
pub struct JwtKeys {
    decoding: DecodingKey,
    encoding: EncodingKey,
    checks: Checks,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").finish_non_exhaustive()
    }
}

/// An identity provider's key set (`JWT_JWKS_URL`), and how its tokens are checked.
#[derive(Debug)]
pub struct Jwks {
    keys: Arc<KeySet>,
    checks: Checks,
}

/// How a token's claims are checked, in either mode: `exp` and `sub` required, `nbf`
/// honoured, and `JWT_ISSUER` and `JWT_AUDIENCE` when set (also written into minted
/// tokens). One validation per accepted algorithm, made once: jsonwebtoken wants every
/// algorithm of a validation to fit the key's family.
#[derive(Clone)]
struct Checks {
    validations: Vec<Validation>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Checks {
    fn new(algorithms: &[Algorithm]) -> Self {
        let validation = |algorithm: &Algorithm| {
            let mut validation = Validation::new(*algorithm);
            validation.set_required_spec_claims(&["exp", "sub"]);
            validation.leeway = LEEWAY.as_secs();
            validation.validate_exp = true;
            // A token that says it is not valid yet is refused too.
            validation.validate_nbf = true;
            // Without JWT_AUDIENCE an `aud` claim is neither required nor checked.
            validation.validate_aud = false;
            validation
        };
        Self {
            validations: algorithms.iter().map(validation).collect(),
            issuer: None,
            audience: None,
        }
    }

    fn require(&mut self, issuer: Option<String>, audience: Option<String>) {
        let mut required = vec!["exp", "sub"];
        if issuer.is_some() {
            required.push("iss");
        }
        if audience.is_some() {
            required.push("aud");
        }
        for validation in &mut self.validations {
            if let Some(issuer) = &issuer {
                validation.set_issuer(&[issuer]);
            }
            if let Some(audience) = &audience {
                validation.set_audience(&[audience]);
                validation.validate_aud = true;
            }
            validation.set_required_spec_claims(&required);
        }
        self.issuer = issuer;
        self.audience = audience;
    }

    /// The actor of `token`, verified with `key` for `algorithm`.
    fn verify(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<Actor, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let validation = self
            .validations
            .iter()
            .find(|validation| validation.algorithms == [algorithm])
            .ok_or_else(|| {
                AuthError::Invalid(format!("the token is not signed with {algorithm:?}"))
            })?;
        let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|error| {
            AuthError::Invalid(match error.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                ErrorKind::InvalidSignature => "the signature does not match".to_owned(),
                ErrorKind::InvalidAlgorithm => {
                    format!("the token is not signed with {algorithm:?}")
                }
                ErrorKind::InvalidIssuer => "the token is from another issuer (iss)".to_owned(),
                ErrorKind::InvalidAudience => {
                    "the token is not meant for this service (aud)".to_owned()
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("the token lacks the required claim {claim}")
                }
                ErrorKind::Json(_) => "the token's claims have the wrong shape".to_owned(),
                _ => "the token is malformed".to_owned(),
            })
        })?;
        actor(data.claims)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user, recorded as the events' `metadata.userId`.
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// `customer`, `operator`, `admin`; names that are no role are ignored.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The customer a `customer` acts for.
    #[serde(
        default,
        rename = "customerId",
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_id: Option<String>,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: no credential where one is required.
    #[error("authentication required: send Authorization: Bearer <token>")]
    Missing,
    /// 401: a credential that is malformed, wrongly signed, expired or incomplete.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// 400: with authentication off, a malformed `X-User-Id`.
    #[error("X-User-Id must be 1 to 200 characters without control characters")]
    BadUserHeader,
    /// 503: the identity provider's key set (`JWT_JWKS_URL`) has not been fetched
    /// yet, so no token can be checked.
    #[error("the identity provider's keys have not been fetched yet; retry shortly")]
    KeysUnavailable,
}

impl Authenticator {
    /// HS256 tokens signed with `secret`.
    ///
    /// # Errors
    /// When the secret is shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn jwt(secret: &[u8]) -> anyhow::Result<Self> {
        if secret.len() < MIN_SECRET_LEN {
            anyhow::bail!(
                "JWT_SECRET must be at least {MIN_SECRET_LEN} bytes (it is {}): HS256 needs a key as long as its hash",
                secret.len()
            );
        }
        Ok(Self::Jwt(Box::new(JwtKeys {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            checks: Checks::new(&[Algorithm::HS256]),
        })))
    }

    /// RS256 and ES256 tokens verified with the keys published at `url` (a JWKS),
    /// refetched on an unknown `kid` at most once every 30 seconds. Nothing is
    /// fetched until [`Authenticator::start`] (or the first request).
    ///
    /// # Errors
    /// When `url` is not an `http` or `https` URL.
    pub fn jwks(url: &str) -> anyhow::Result<Self> {
        Self::jwks_refetching_every(url, REFETCH_EVERY)
    }

    /// [`Authenticator::jwks`] with another bound on refetches (tests shorten it).
    ///
    /// # Errors
    /// As [`Authenticator::jwks`].
    pub fn jwks_refetching_every(url: &str, refetch_every: Duration) -> anyhow::Result<Self> {
        Ok(Self::Jwks(Arc::new(Jwks {
            keys: Arc::new(KeySet::new(url, refetch_every)?),
            checks: Checks::new(&[Algorithm::RS256, Algorithm::ES256]),
        })))
    }

    /// Requires tokens from `issuer` (`iss` equal to it) and for `audience` (`aud`, a
    /// string or an array, containing it): `JWT_ISSUER` and `JWT_AUDIENCE`. `None`
    /// leaves that claim unchecked.
    ///
    /// # Errors
    /// When either is set with authentication off, or is empty.
    pub fn with_issuer_and_audience(
        self,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> anyhow::Result<Self> {
        if issuer.as_deref() == Some("") || audience.as_deref() == Some("") {
            anyhow::bail!("JWT_ISSUER and JWT_AUDIENCE must not be empty when set");
        }
        match self {
            Self::Off if issuer.is_some() || audience.is_some() => anyhow::bail!(
                "JWT_ISSUER and JWT_AUDIENCE check tokens: they need JWT_SECRET or JWT_JWKS_URL, not AUTH_MODE=none"
            ),
            Self::Off => Ok(Self::Off),
            Self::Jwt(mut keys) => {
                keys.checks.require(issuer, audience);
                Ok(Self::Jwt(keys))
            }
            Self::Jwks(jwks) => {
                let mut checks = jwks.checks.clone();
                checks.require(issuer, audience);
                Ok(Self::Jwks(Arc::new(Jwks {
                    keys: jwks.keys.clone(),
                    checks,
                })))
            }
        }
    }

    /// Whether requests must carry a bearer token.
    pub fn is_required(&self) -> bool {
        !matches!(self, Self::Off)
    }

    /// Starts what authentication needs in the background: with `JWT_JWKS_URL`, the
    /// first fetch of the key set (retried until it succeeds). Idempotent; does
    /// nothing in the other modes or outside a Tokio runtime.
    pub fn start(&self) {
        if let Self::Jwks(jwks) = self {
            jwks.keys.start();
        }
    }

    /// Whether tokens can be checked: false only until the identity provider's key
    /// set has been fetched once. `/readyz` and the gRPC health service ask it.
    pub fn is_ready(&self) -> bool {
        match self {
            Self::Off | Self::Jwt(_) => true,
            Self::Jwks(jwks) => jwks.keys.is_loaded(),
        }
    }

    /// The actor behind a request, from its `Authorization` value and, when
    /// authentication is off, its `X-User-Id` value (HTTP headers or gRPC metadata).
    /// Only a token naming a `kid` the key set lacks waits, for one refetch of the set.
    ///
    /// # Errors
    /// [`AuthError::Missing`] or [`AuthError::Invalid`] with authentication on,
    /// [`AuthError::KeysUnavailable`] before the key set has been fetched;
    /// [`AuthError::BadUserHeader`] with it off.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        user_header: Option<&[u8]>,
    ) -> Result<Actor, AuthError> {
        match self {
            Self::Off => {
                let user = user_header
                    .map(|raw| {
                        std::str::from_utf8(raw)
                            .ok()
                            .filter(|text| CustomerId::parse(*text).is_ok())
                            .map(str::to_owned)
                            .ok_or(AuthError::BadUserHeader)
                    })
                    .transpose()?;
                Ok(Actor::unrestricted(user))
            }
            Self::Jwt(keys) => {
                let token = bearer_token(authorization.ok_or(AuthError::Missing)?)?;
                keys.checks.verify(token, &keys.decoding, Algorithm::HS256)
            }
            Self::Jwks(jwks) => {
                let token = bearer_token(authorization.ok_or(AuthError::Missing)?)?;
                jwks.verify(token).await
            }
        }
    }

    /// The actor behind a request, from its `Authorization` and `X-User-Id` headers
    /// (gRPC metadata arrives as the same headers).
    ///
    /// # Errors
    /// As [`Authenticator::authenticate`].
    pub async fn authenticate_headers(&self, headers: &HeaderMap) -> Result<Actor, AuthError> {
        self.authenticate(
            headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
            headers.get("x-user-id").map(|v| v.as_bytes()),
        )
        .await
    }

    /// Signs an HS256 token for `claims` (the `token` subcommand, tests), with the
    /// configured issuer and audience as `iss` and `aud`, so it passes this
    /// authenticator.
    ///
    /// # Errors
    /// Without `JWT_SECRET` (an identity provider's tokens are minted by it), or when
    /// signing fails.
    pub fn mint(&self, claims: &Claims) -> anyhow::Result<String> {
        match self {
            Self::Off => anyhow::bail!("minting a token needs JWT_SECRET"),
            Self::Jwks(_) => anyhow::bail!(
                "minting a token needs JWT_SECRET: with JWT_JWKS_URL, tokens come from the identity provider"
            ),
            Self::Jwt(keys) => Ok(jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &Minted {
                    claims,
                    iss: keys.checks.issuer.as_deref(),
                    aud: keys.checks.audience.as_deref(),
                },
                &keys.encoding,
            )?),
        }
    }
}

/// A minted token's claims: [`Claims`] and the authenticator's `iss` and `aud`.
#[derive(Serialize)]
struct Minted<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

impl Jwks {
    /// Checks the header first (an RS256 or ES256 `alg`, a `kid`), then verifies with
    /// the key the `kid` names, which must be a key for that `alg`.
    async fn verify(&self, token: &str) -> Result<Actor, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            AuthError::Invalid(
                "the token's header is malformed or names an unsupported alg (none is refused)"
                    .to_owned(),
            )
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Invalid(format!(
                "the token is signed {:?}; only RS256 and ES256 tokens of the identity provider are accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token names no key (kid)".to_owned()))?;
        let key = match self.keys.lookup(&kid).await {
            Lookup::Known(key) => key,
            Lookup::NotLoaded => return Err(AuthError::KeysUnavailable),
            Lookup::Unknown => {
                return Err(AuthError::Invalid(format!(
                    "the token's key {kid:?} is not in the identity provider's key set"
                )))
            }
        };
        if key.algorithm != header.alg {
            return Err(AuthError::Invalid(format!(
                "the token says {:?} but its key {kid:?} is for {:?}",
                header.alg, key.algorithm
            )));
        }
        self.checks.verify(token, &key.decoding, key.algorithm)
    }
}

/// The actor a verified token's claims name.
fn actor(claims: Claims) -> Result<Actor, AuthError> {
    if CustomerId::parse(claims.sub.as_str()).is_err() {
        return Err(AuthError::Invalid(
            "sub must be 1 to 200 characters without control characters".to_owned(),
        ));
    }
    let roles: Vec<Role> = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
    let customer_id = claims
        .customer_id
        .map(|id| CustomerId::parse(id).map_err(|e| AuthError::Invalid(format!("customerId {e}"))))
        .transpose()?;
    Actor::authenticated(claims.sub, &roles, customer_id)
        .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// The token of `Bearer <token>` (the scheme is case-insensitive).
fn bearer_token(raw: &[u8]) -> Result<&str, AuthError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| AuthError::Invalid("the Authorization header is not text".to_owned()))?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(|| {
        AuthError::Invalid("the Authorization header must be `Bearer <token>`".to_owned())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid(format!(
            "the Authorization scheme must be Bearer, not {scheme:?}"
        )));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Invalid("the bearer token is empty".to_owned()));
    }
    Ok(token)
}

/// Seconds since the Unix epoch, `ttl` from now.
pub fn expiry_in(ttl: Duration) -> u64 {
    now_seconds().saturating_add(ttl.as_secs())
}

/// Seconds since the Unix epoch.
pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-for-hs256";

    fn claims(roles: &[&str], customer_id: Option<&str>) -> Claims {
        Claims {
            sub: "user-1".to_owned(),
            exp: expiry_in(Duration::from_secs(60)),
            iat: Some(now_seconds()),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            customer_id: customer_id.map(str::to_owned),
        }
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[tokio::test]
    async fn a_minted_token_authenticates_its_subject() {
        let auth = Authenticator::jwt(SECRET).unwrap();
        let token = auth.mint(&claims(&["customer"], Some("c-1"))).unwrap();
        let actor = auth
            .authenticate(Some(&bearer(&token)), None)
            .await
            .unwrap();
        assert_eq!(actor.user_id(), Some("user-1"));
        assert_eq!(actor.own_customer().map(CustomerId::as_str), Some("c-1"));
    }

    #[tokio::test]
    async fn the_user_header_is_ignored_when_tokens_are_required() {
        let auth = Authenticator::jwt(SECRET).unwrap();
        let token = auth.mint(&claims(&["operator"], None)).unwrap();
        let actor = auth
            .authenticate(Some(&bearer(&token)), Some(b"mallory"))
            .await
            .unwrap();
        assert_eq!(actor.user_id(), Some("user-1"));
    }

    #[tokio::test]
    async fn every_bad_credential_is_refused() {
        let auth = Authenticator::jwt(SECRET).unwrap();
        let other = Authenticator::jwt(b"another-secret-that-is-also-long-enough").unwrap();
        let mut expired = claims(&["operator"], None);
        expired.exp = now_seconds() - 3600;
        let cases: Vec<(&str, Option<Vec<u8>>)> = vec![
            ("missing", None),
            ("not bearer", Some(b"Basic dXNlcjpwYXNz".to_vec())),
            ("no token", Some(b"Bearer ".to_vec())),
            ("garbage", Some(bearer("not.a.jwt"))),
            (
                "wrong key",
                Some(bearer(&other.mint(&claims(&["operator"], None)).unwrap())),
            ),
            ("expired", Some(bearer(&auth.mint(&expired).unwrap()))),
            (
                "customer without customerId",
                Some(bearer(&auth.mint(&claims(&["customer"], None)).unwrap())),
            ),
        ];
        for (case, header) in cases {
            let refused = auth.authenticate(header.as_deref(), None).await;
            assert!(
                matches!(refused, Err(AuthError::Missing | AuthError::Invalid(_))),
                "{case}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(Authenticator::jwt(b"short").is_err());
    }

    #[tokio::test]
    async fn without_authentication_the_user_header_is_trusted() {
        let actor = Authenticator::Off
            .authenticate(None, Some(b"dev-user"))
            .await
            .unwrap();
        assert_eq!(actor.user_id(), Some("dev-user"));
        assert_eq!(
            Authenticator::Off
                .authenticate(None, Some(b"bad\x01"))
                .await,
            Err(AuthError::BadUserHeader)
        );
    }
}
