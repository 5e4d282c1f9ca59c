//! The operator console (`simutrador-gateway admin ...`) against a real SQLite
//! database: every change it makes is written to the audit log, as the admin REST API's
//! are, marked `"via": "cli"`.

use std::path::Path;
use std::process::Command;

use auth::{
    AccountStore, AuditKind, AuditQuery, Plan, Secret, StoreOptions, UserStatus, UserStore,
};

/// Runs `simutrador-gateway admin ARGS` with its data in `dir`; its standard output.
fn admin(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_simutrador-gateway"))
        .arg("admin")
        .args(args)
        .env("SIMUTRADOR__DATA_DIR", dir)
        .env("SIMUTRADOR__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "admin {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn console_changes_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let email = "console@example.com";
    admin(
        dir.path(),
        &["create-user", "--email", email, "--plan", "professional"],
    );
    let out = admin(
        dir.path(),
        &[
            "create-key",
            "--email",
            email,
            "--plan",
            "enterprise",
            "--name",
            "bot",
        ],
    );
    let key = out.lines().last().unwrap();
    let prefix = key.strip_prefix("stk_").unwrap().split('_').next().unwrap();
    admin(
        dir.path(),
        &["revoke-key", "--email", email, "--prefix", prefix],
    );
    admin(dir.path(), &["disable-user", "--email", email]);
    // Disabling again changes nothing, and writes nothing.
    admin(dir.path(), &["disable-user", "--email", email]);

    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("simutrador.db").display()
    );
    let db = auth::connect(&url, StoreOptions::new(Secret::new(vec![0; 32])))
        .await
        .unwrap();
    let user = db.user_by_email(email).await.unwrap();
    assert_eq!(
        (user.plan, user.status),
        (Plan::Enterprise, UserStatus::Disabled)
    );
    let mut events = db
        .audit_events(AuditQuery {
            user_id: Some(user.id),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    events.retain(|e| e.detail["via"] == "cli");
    events.sort_by_key(|e| e.id);
    let kinds: Vec<AuditKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            AuditKind::AdminAction,
            AuditKind::PlanChanged,
            AuditKind::ApiKeyCreated,
            AuditKind::ApiKeyRevoked,
            AuditKind::StatusChanged,
        ],
        "{events:#?}"
    );
    assert_eq!(events[0].detail["action"], "create_user");
    assert_eq!(events[0].detail["plan"], "professional");
    assert_eq!(
        (&events[1].detail["from"], &events[1].detail["to"]),
        (&"professional".into(), &"enterprise".into())
    );
    assert_eq!(events[2].detail["prefix"], events[3].detail["prefix"]);
    assert_eq!(events[2].detail["name"], "bot");
    assert_eq!(events[4].detail["to"], "disabled");
    assert!(events
        .iter()
        .all(|e| e.subject_user_id == Some(user.id) && e.actor_user_id.is_none()));
}
