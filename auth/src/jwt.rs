//! Access tokens: HS256 JWTs with the claims PROTOCOL.md §1 names.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use protocol::Plan;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, TokenRejection};
use crate::secret::Secret;

/// The only algorithm we sign with and the only one verification accepts.
pub const ALGORITHM: Algorithm = Algorithm::HS256;
/// The shortest signing secret accepted (the HS256 output size).
pub const MIN_SECRET_LEN: usize = 32;

/// Settings for issuing and verifying tokens.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// HMAC key; at least [`MIN_SECRET_LEN`] bytes. Shared by every gateway node.
    pub secret: Secret<String>,
    /// `iss` we write and require.
    pub issuer: String,
    /// `aud` we write and require.
    pub audience: String,
    /// How long a token is valid after issue.
    pub lifetime: Duration,
    /// Clock skew tolerated between the nodes that issue and verify tokens.
    pub leeway: Duration,
}

impl JwtConfig {
    /// A config with a one-hour lifetime and no leeway.
    pub fn new(
        secret: Secret<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            secret,
            issuer: issuer.into(),
            audience: audience.into(),
            lifetime: Duration::from_secs(3600),
            leeway: Duration::ZERO,
        }
    }
}

/// The claims of our access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// The user's plan when the token was issued.
    pub plan: Plan,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Unique token id, for revocation lists and audit.
    pub jti: Uuid,
    /// The API key the token was exchanged for, so revoking the key refuses the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<Uuid>,
    /// The login session the token belongs to (human logins), so ending the session
    /// refuses the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

/// A freshly issued token and what the `/auth/token` response needs about it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The encoded JWT.
    pub access_token: Secret<String>,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// What it says.
    pub claims: Claims,
}

/// Issues and verifies access tokens.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    lifetime_secs: i64,
    leeway_secs: i64,
    clock: Arc<dyn Clock>,
}

impl Jwt {
    /// A token service on the system clock.
    pub fn new(config: JwtConfig) -> Result<Self, AuthError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A token service whose notion of "now" comes from `clock`.
    pub fn with_clock(config: JwtConfig, clock: Arc<dyn Clock>) -> Result<Self, AuthError> {
        let secret = config.secret.expose().as_bytes();
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::Config("jwt secret must be at least 32 bytes"));
        }
        if config.issuer.is_empty() || config.audience.is_empty() {
            return Err(AuthError::Config(
                "jwt issuer and audience must not be empty",
            ));
        }
        let lifetime_secs = i64::try_from(config.lifetime.as_secs())
            .ok()
            .filter(|&secs| secs > 0)
            .ok_or(AuthError::Config(
                "jwt lifetime must be at least one second",
            ))?;
        let leeway_secs = i64::try_from(config.leeway.as_secs())
            .map_err(|_| AuthError::Config("jwt leeway is too large"))?;

        // Pinning the algorithm here is what refuses `alg: none`, HS512 and the
        // RS256-with-HMAC-key confusion attack.
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        // Expiry is checked below against the injected clock instead.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;

        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.issuer,
            audience: config.audience,
            lifetime_secs,
            leeway_secs,
            clock,
        })
    }

    /// Issues a token for `user_id` on `plan`, exchanged for API key `key_id`.
    pub fn issue(
        &self,
        user_id: Uuid,
        plan: Plan,
        key_id: Option<Uuid>,
    ) -> Result<IssuedToken, AuthError> {
        self.issue_with(user_id, plan, key_id, None, self.lifetime_secs)
    }

    /// Issues a token of login session `session_id`, living `lifetime_secs` (capped
    /// by the configured lifetime).
    pub fn issue_for_session(
        &self,
        user_id: Uuid,
        plan: Plan,
        session_id: Uuid,
        lifetime_secs: i64,
    ) -> Result<IssuedToken, AuthError> {
        let lifetime = lifetime_secs.clamp(1, self.lifetime_secs.max(1));
        self.issue_with(user_id, plan, None, Some(session_id), lifetime)
    }

    fn issue_with(
        &self,
        user_id: Uuid,
        plan: Plan,
        key_id: Option<Uuid>,
        session_id: Option<Uuid>,
        lifetime_secs: i64,
    ) -> Result<IssuedToken, AuthError> {
        let iat = self.clock.now().timestamp();
        let claims = Claims {
            sub: user_id,
            plan,
            exp: iat.saturating_add(lifetime_secs),
            iat,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
            kid: key_id,
            sid: session_id,
        };
        let token = jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding)
            .map_err(AuthError::TokenEncoding)?;
        Ok(IssuedToken {
            access_token: Secret::new(token),
            expires_in: lifetime_secs.unsigned_abs(),
            claims,
        })
    }

    /// Checks signature, algorithm, issuer, audience and time, and returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::InvalidToken(rejection(e.kind())))?;
        let claims = data.claims;
        let now = self.clock.now().timestamp();
        if now >= claims.exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::InvalidToken(TokenRejection::Expired));
        }
        if claims.iat > now.saturating_add(self.leeway_secs) {
            return Err(AuthError::InvalidToken(TokenRejection::IssuedInFuture));
        }
        Ok(claims)
    }
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("secret", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime_secs", &self.lifetime_secs)
            .field("leeway_secs", &self.leeway_secs)
            .finish_non_exhaustive()
    }
}

fn rejection(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => TokenRejection::WrongAlgorithm,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        _ => TokenRejection::Malformed,
    }
}
