//! Access tokens: what `Jwt::verify` must refuse, with tokens forged by hand.

use std::sync::Arc;
use std::time::Duration;

use auth::{AuthError, Claims, Jwt, JwtConfig, ManualClock, Plan, Secret, TokenRejection};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{TimeDelta, TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use uuid::Uuid;

const SECRET: &str = "a jwt signing secret of at least thirty-two bytes";

fn config() -> JwtConfig {
    let mut config = JwtConfig::new(
        Secret::new(SECRET.to_owned()),
        "simutrador",
        "simutrador-api",
    );
    config.lifetime = Duration::from_secs(3600);
    config
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap(),
    ))
}

fn jwt_with(config: JwtConfig, clock: &Arc<ManualClock>) -> Jwt {
    Jwt::with_clock(config, Arc::clone(clock) as Arc<dyn auth::Clock>).unwrap()
}

fn rejection(result: Result<Claims, AuthError>) -> TokenRejection {
    match result {
        Err(AuthError::InvalidToken(reason)) => reason,
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

fn parts(token: &str) -> [String; 3] {
    let v: Vec<_> = token.split('.').map(str::to_owned).collect();
    assert_eq!(v.len(), 3, "{token}");
    [v[0].clone(), v[1].clone(), v[2].clone()]
}

fn b64_json(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn issue(jwt: &Jwt) -> (String, Claims) {
    let issued = jwt.issue(Uuid::new_v4(), Plan::Professional, None).unwrap();
    (issued.access_token.expose().clone(), issued.claims)
}

#[test]
fn round_trip_carries_the_protocol_claims() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    let user = Uuid::new_v4();
    let issued = jwt
        .issue(user, Plan::Professional, Some(Uuid::from_u128(7)))
        .unwrap();
    assert_eq!(issued.expires_in, 3600);
    let now = clock.now_secs();
    assert_eq!(issued.claims.sub, user);
    assert_eq!(issued.claims.plan, Plan::Professional);
    assert_eq!(issued.claims.iat, now);
    assert_eq!(issued.claims.exp, now + 3600);
    assert_eq!(issued.claims.iss, "simutrador");
    assert_eq!(issued.claims.aud, "simutrador-api");

    let verified = jwt.verify(issued.access_token.expose()).unwrap();
    assert_eq!(verified, issued.claims);

    // The wire form uses the names PROTOCOL.md lists (at least), plus `kid`, the API
    // key the token was exchanged for, and HS256.
    let [header, payload, _] = parts(issued.access_token.expose());
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let mut keys: Vec<_> = payload.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["aud", "exp", "iat", "iss", "jti", "kid", "plan", "sub"]
    );
    assert_eq!(payload["kid"], Uuid::from_u128(7).to_string());
    let keyless = jwt.issue(user, Plan::Free, None).unwrap();
    assert_eq!(keyless.claims.kid, None);
    let [_, keyless_payload, _] = parts(keyless.access_token.expose());
    let keyless_payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(keyless_payload).unwrap()).unwrap();
    assert!(keyless_payload.get("kid").is_none());
    assert_eq!(payload["plan"], "professional");
    assert_eq!(payload["sub"], user.to_string());

    let again = jwt
        .issue(user, Plan::Professional, Some(Uuid::from_u128(7)))
        .unwrap();
    assert_ne!(
        again.claims.jti, issued.claims.jti,
        "jti is unique per token"
    );
    assert!(!format!("{issued:?}").contains(issued.access_token.expose()));
}

#[test]
fn tampered_payload_is_refused() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    let (token, claims) = issue(&jwt);
    let [header, _, signature] = parts(&token);
    let mut forged = serde_json::to_value(&claims).unwrap();
    forged["plan"] = "enterprise".into();
    let tampered = format!("{header}.{}.{signature}", b64_json(&forged));
    assert_eq!(
        rejection(jwt.verify(&tampered)),
        TokenRejection::BadSignature
    );

    // Splicing another valid token's payload under this signature fails the same way.
    let (other, _) = issue(&jwt);
    let [_, other_payload, _] = parts(&other);
    assert_eq!(
        rejection(jwt.verify(&format!("{header}.{other_payload}.{signature}"))),
        TokenRejection::BadSignature
    );
}

#[test]
fn tampered_signature_is_refused() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    let (token, _) = issue(&jwt);
    let [header, payload, signature] = parts(&token);
    let mut bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
    bytes[7] ^= 0x01;
    let flipped = URL_SAFE_NO_PAD.encode(&bytes);
    assert_eq!(
        rejection(jwt.verify(&format!("{header}.{payload}.{flipped}"))),
        TokenRejection::BadSignature
    );
    assert_eq!(
        rejection(jwt.verify(&format!("{header}.{payload}."))),
        TokenRejection::BadSignature
    );

    // Same claims, different secret.
    let mut other = config();
    other.secret = Secret::new("another secret that is also long enough!!".to_owned());
    let (foreign, _) = issue(&jwt_with(other, &clock));
    assert_eq!(
        rejection(jwt.verify(&foreign)),
        TokenRejection::BadSignature
    );
}

#[test]
fn expiry_follows_the_injected_clock() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    let (token, _) = issue(&jwt);
    clock.advance(TimeDelta::seconds(3599));
    jwt.verify(&token).unwrap();
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(rejection(jwt.verify(&token)), TokenRejection::Expired);

    // Leeway tolerates skew between nodes, and no more.
    let mut lenient = config();
    lenient.leeway = Duration::from_secs(30);
    let lenient = jwt_with(lenient, &clock);
    lenient.verify(&token).unwrap();
    clock.advance(TimeDelta::seconds(30));
    assert_eq!(rejection(lenient.verify(&token)), TokenRejection::Expired);
}

#[test]
fn tokens_from_the_future_are_refused() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    let (token, _) = issue(&jwt);
    clock.advance(TimeDelta::seconds(-120));
    assert_eq!(
        rejection(jwt.verify(&token)),
        TokenRejection::IssuedInFuture
    );
}

#[test]
fn wrong_audience_or_issuer_is_refused() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);

    let mut other_aud = config();
    other_aud.audience = "someone-else".into();
    let (token, _) = issue(&jwt_with(other_aud, &clock));
    assert_eq!(rejection(jwt.verify(&token)), TokenRejection::WrongAudience);

    let mut other_iss = config();
    other_iss.issuer = "evil-issuer".into();
    let (token, _) = issue(&jwt_with(other_iss, &clock));
    assert_eq!(rejection(jwt.verify(&token)), TokenRejection::WrongIssuer);
}

#[test]
fn alg_none_is_refused() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    let (token, _) = issue(&jwt);
    let [_, payload, signature] = parts(&token);
    for alg in ["none", "None", "NONE"] {
        let header = b64_json(&serde_json::json!({"alg": alg, "typ": "JWT"}));
        for forged in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.{signature}"),
        ] {
            let reason = rejection(jwt.verify(&forged));
            assert!(
                matches!(
                    reason,
                    TokenRejection::WrongAlgorithm | TokenRejection::Malformed
                ),
                "{alg}: {reason:?}"
            );
        }
    }
}

#[test]
fn other_algorithms_are_refused() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    let (_, claims) = issue(&jwt);
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    for alg in [Algorithm::HS512, Algorithm::HS384] {
        let token = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
        assert_eq!(
            rejection(jwt.verify(&token)),
            TokenRejection::WrongAlgorithm,
            "{alg:?}"
        );
    }
    // Key confusion: an "RS256" header over an HMAC made with our secret.
    let (token, _) = issue(&jwt);
    let [_, payload, signature] = parts(&token);
    let header = b64_json(&serde_json::json!({"alg": "RS256", "typ": "JWT"}));
    assert_eq!(
        rejection(jwt.verify(&format!("{header}.{payload}.{signature}"))),
        TokenRejection::WrongAlgorithm
    );
}

#[test]
fn garbage_and_missing_claims_are_refused() {
    let clock = clock();
    let jwt = jwt_with(config(), &clock);
    for garbage in ["", "a", "a.b", "a.b.c", "...", "Bearer x.y.z"] {
        assert!(
            matches!(jwt.verify(garbage), Err(AuthError::InvalidToken(_))),
            "{garbage:?}"
        );
    }
    // Correctly signed, but without `jti` and with an unknown plan.
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let now = clock.now_secs();
    for claims in [
        serde_json::json!({"sub": Uuid::new_v4(), "plan": "free", "exp": now + 60, "iat": now,
                           "iss": "simutrador", "aud": "simutrador-api"}),
        serde_json::json!({"sub": Uuid::new_v4(), "plan": "gold", "exp": now + 60, "iat": now,
                           "iss": "simutrador", "aud": "simutrador-api", "jti": Uuid::new_v4()}),
        serde_json::json!({"sub": "not-a-uuid", "plan": "free", "exp": now + 60, "iat": now,
                           "iss": "simutrador", "aud": "simutrador-api", "jti": Uuid::new_v4()}),
    ] {
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert_eq!(
            rejection(jwt.verify(&token)),
            TokenRejection::Malformed,
            "{claims}"
        );
    }
}

#[test]
fn config_is_validated_and_secrets_redacted() {
    let short = JwtConfig::new(Secret::new("short".to_owned()), "i", "a");
    assert!(matches!(Jwt::new(short), Err(AuthError::Config(_))));
    let mut zero = config();
    zero.lifetime = Duration::ZERO;
    assert!(matches!(Jwt::new(zero), Err(AuthError::Config(_))));
    let mut empty = config();
    empty.audience.clear();
    assert!(matches!(Jwt::new(empty), Err(AuthError::Config(_))));

    let config = config();
    assert!(!format!("{config:?}").contains(SECRET));
    let jwt = Jwt::new(config).unwrap();
    assert!(!format!("{jwt:?}").contains(SECRET));
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for Arc<ManualClock> {
    fn now_secs(&self) -> i64 {
        auth::Clock::now(&**self).timestamp()
    }
}
