//! REST bodies of PROTOCOL.md section 1 and the plan names.

use protocol::{ApiError, ErrorCode, Plan, TokenResponse, ValidateResponse};
use serde_json::json;

#[test]
fn token_response() {
    let body = json!({"access_token": "eyJ.x.y", "expires_in": 3600, "token_type": "Bearer",
                      "user_id": "u-1", "plan": "free"});
    let t: TokenResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(t, TokenResponse::bearer("eyJ.x.y", 3600, "u-1", Plan::Free));
    assert_eq!(serde_json::to_value(&t).unwrap(), body);
}

#[test]
fn validate_response() {
    let body = json!({"valid": true, "user_id": "u-1", "plan": "enterprise",
                      "expires_at": "2023-11-14T23:13:20Z"});
    let v: ValidateResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(v.plan, Plan::Enterprise);
    assert_eq!(v.expires_at, 1_700_003_600);
    assert_eq!(serde_json::to_value(&v).unwrap(), body);
}

#[test]
fn api_error() {
    let e = ApiError::new(ErrorCode::RateLimited, "slow down");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"error": "RATE_LIMITED", "message": "slow down"})
    );
    let e: ApiError =
        serde_json::from_value(json!({"error": "AUTH_FAILED", "message": "bad token"})).unwrap();
    assert_eq!(e.code(), Some(ErrorCode::AuthFailed));
    let newer: ApiError =
        serde_json::from_value(json!({"error": "SOMETHING_NEW", "message": "m"})).unwrap();
    assert_eq!((newer.code(), newer.message.as_str()), (None, "m"));
}

#[test]
fn plans() {
    for (p, name) in [
        (Plan::Free, "free"),
        (Plan::Professional, "professional"),
        (Plan::Enterprise, "enterprise"),
    ] {
        assert_eq!(serde_json::to_value(p).unwrap(), json!(name));
        assert_eq!(name.parse::<Plan>().unwrap(), p);
    }
    assert!(serde_json::from_value::<Plan>(json!("premium")).is_err());
}
