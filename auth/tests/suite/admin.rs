//! `AdminStore` tests of the shared suite (run on SQLite and Postgres by `store.rs`).

use auth::{
    AccountStore, AdminStore, AuditKind, AuditQuery, AuthError, NewApiKey, NewAuditEvent, NewUser,
    Page, Plan, ResultStore, Role, Secret, SimulationRecord, SimulationSummary, UsageQuery,
    UserQuery, UserStatus, UserStore,
};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use protocol::EndReason;
use serde_json::json;
use uuid::Uuid;

use crate::Ctx;

/// Text that would change a statement if it were pasted into SQL.
const INJECTIONS: [&str; 6] = [
    "' OR '1'='1",
    "x'); DROP TABLE users; --",
    "\" OR \"\"=\"",
    "%",
    "_",
    "\\",
];

async fn emails(ctx: &Ctx, query: UserQuery) -> Vec<String> {
    ctx.store
        .search_users(query)
        .await
        .unwrap()
        .accounts
        .into_iter()
        .map(|a| a.user.email)
        .collect()
}

pub async fn admin_user_search_filters_pages_and_counts(ctx: Ctx) {
    let store = &ctx.store;
    let mut created = Vec::new();
    for (email, plan, role) in [
        ("ann@example.com", Plan::Free, Role::User),
        ("bob@example.org", Plan::Professional, Role::User),
        ("Carol.Ops@Example.com", Plan::Enterprise, Role::Admin),
        ("dan@example.com", Plan::Professional, Role::User),
        ("o'brien%_x@example.net", Plan::Free, Role::User),
    ] {
        ctx.clock.advance(TimeDelta::seconds(1));
        let user = store
            .create_user(NewUser::new(email).plan(plan).role(role))
            .await
            .unwrap();
        created.push(user);
    }
    let (ann, bob, dan, obrien) = (&created[0], &created[1], &created[3], &created[4]);
    let until = ctx.now().trunc_subsecs(6) + TimeDelta::minutes(10);
    store
        .set_status(bob.id, UserStatus::Disabled)
        .await
        .unwrap();
    store
        .set_password(dan.id, Secret::new("correct horse battery".into()))
        .await
        .unwrap();
    store.lock_logins_until(ann.id, until, None).await.unwrap();

    // No filter: everyone in creation order, with the total.
    let all = store.search_users(UserQuery::default()).await.unwrap();
    assert_eq!(all.total, 5);
    let ids: Vec<Uuid> = all.accounts.iter().map(|a| a.user.id).collect();
    assert_eq!(ids, created.iter().map(|u| u.id).collect::<Vec<_>>());
    let dan_row = &all.accounts[3];
    assert!(dan_row.has_password && !all.accounts[0].has_password);
    assert_eq!(all.accounts[0].locked_until, Some(until));
    assert!(!dan_row.totp_enabled);

    // Email fragments match case-insensitively and literally.
    let q = |email: &str| UserQuery {
        email_contains: Some(email.to_owned()),
        ..UserQuery::default()
    };
    assert_eq!(
        emails(&ctx, q("EXAMPLE.COM")).await,
        [
            "ann@example.com",
            "carol.ops@example.com",
            "dan@example.com"
        ]
    );
    assert_eq!(emails(&ctx, q("  ops ")).await, ["carol.ops@example.com"]);
    assert_eq!(
        emails(&ctx, q("")).await.len(),
        5,
        "an empty fragment filters nothing"
    );
    // `%` and `_` are characters, not wildcards; a quote is a character too.
    for fragment in ["%", "_", "%_", "'", "o'brien"] {
        assert_eq!(
            emails(&ctx, q(fragment)).await,
            [obrien.email.as_str()],
            "{fragment:?}"
        );
    }
    for injection in INJECTIONS.iter().filter(|i| !["%", "_"].contains(i)) {
        let found = store.search_users(q(injection)).await.unwrap();
        assert_eq!(found.total, 0, "{injection:?}");
    }
    assert!(matches!(
        store.search_users(q("a\0b")).await,
        Err(AuthError::InvalidInput { field: "email", .. })
    ));
    assert!(matches!(
        store.search_users(q(&"a".repeat(321))).await,
        Err(AuthError::InvalidInput { field: "email", .. })
    ));

    // Plan, role, status and lockout filters, combined.
    let by = |f: fn(&mut UserQuery)| {
        let mut query = UserQuery::default();
        f(&mut query);
        query
    };
    assert_eq!(
        emails(&ctx, by(|q| q.plan = Some(Plan::Professional))).await,
        ["bob@example.org", "dan@example.com"]
    );
    assert_eq!(
        emails(&ctx, by(|q| q.role = Some(Role::Admin))).await,
        ["carol.ops@example.com"]
    );
    assert_eq!(
        emails(&ctx, by(|q| q.status = Some(UserStatus::Disabled))).await,
        ["bob@example.org"]
    );
    assert_eq!(
        emails(
            &ctx,
            by(|q| {
                q.plan = Some(Plan::Professional);
                q.status = Some(UserStatus::Active);
            })
        )
        .await,
        ["dan@example.com"]
    );
    assert_eq!(
        emails(&ctx, by(|q| q.locked = Some(true))).await,
        ["ann@example.com"]
    );
    assert_eq!(emails(&ctx, by(|q| q.locked = Some(false))).await.len(), 4);
    // A lockout lapses by itself.
    ctx.clock.advance(TimeDelta::minutes(11));
    assert!(emails(&ctx, by(|q| q.locked = Some(true))).await.is_empty());

    // Pages walk the same order; the total counts every page.
    let mut paged = Vec::new();
    for offset in [0, 2, 4, 6] {
        let page = store
            .search_users(UserQuery {
                page: Page::new(offset, 2),
                ..UserQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, 5);
        paged.extend(page.accounts.into_iter().map(|a| a.user.id));
    }
    assert_eq!(paged, ids);
    // Nothing was dropped or changed by the injection strings.
    assert_eq!(store.count_users().await.unwrap(), 5);

    // Roles change like plans.
    ctx.clock.advance(TimeDelta::minutes(1));
    let promoted = store.set_role(dan.id, Role::Admin).await.unwrap();
    assert_eq!(promoted.role, Role::Admin);
    assert_eq!(promoted.updated_at, ctx.now().trunc_subsecs(6));
    assert_eq!(store.user_by_id(dan.id).await.unwrap(), promoted);
    assert_eq!(
        emails(&ctx, by(|q| q.role = Some(Role::Admin))).await,
        ["carol.ops@example.com", "dan@example.com"]
    );
    assert!(matches!(
        store.set_role(Uuid::new_v4(), Role::Admin).await,
        Err(AuthError::NotFound)
    ));
}

pub async fn admin_audit_counts_and_ip_filter(ctx: Ctx) {
    let store = &ctx.store;
    let ann = Uuid::new_v4();
    let admin = Uuid::new_v4();
    let ips = ["10.0.0.1", "10.0.0.2", "2001:db8::1"];
    for i in 0..12usize {
        let kind = if i % 2 == 0 {
            AuditKind::LoginSucceeded
        } else {
            AuditKind::AdminAction
        };
        let actor = if i % 2 == 0 { ann } else { admin };
        store
            .append_audit(
                NewAuditEvent::new(kind)
                    .actor(actor)
                    .subject(ann)
                    .ip(Some(ips[i % 3]))
                    .detail(json!({ "i": i })),
            )
            .await
            .unwrap();
        ctx.clock.advance(TimeDelta::seconds(30));
    }
    for injection in INJECTIONS {
        store
            .append_audit(NewAuditEvent::new(AuditKind::LoginFailed).ip(Some(injection)))
            .await
            .unwrap();
    }
    let count = |q: AuditQuery| store.count_audit(q);
    assert_eq!(count(AuditQuery::default()).await.unwrap(), 18);
    let by_ip = AuditQuery {
        ip: Some("10.0.0.2".into()),
        ..AuditQuery::default()
    };
    assert_eq!(count(by_ip.clone()).await.unwrap(), 4);
    let events = store.audit_events(by_ip).await.unwrap();
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.ip.as_deref() == Some("10.0.0.2")));
    let admin_actions = AuditQuery {
        user_id: Some(admin),
        kind: Some(AuditKind::AdminAction),
        ip: Some("10.0.0.1".into()),
        ..AuditQuery::default()
    };
    // i = 3 and 9 are admin actions from 10.0.0.1.
    assert_eq!(count(admin_actions.clone()).await.unwrap(), 2);
    let found: Vec<i64> = store
        .audit_events(admin_actions)
        .await
        .unwrap()
        .iter()
        .map(|e| e.detail["i"].as_i64().unwrap())
        .collect();
    assert_eq!(found, [9, 3]);
    // The page does not change the count.
    assert_eq!(
        count(AuditQuery {
            user_id: Some(ann),
            page: Page::new(10, 1),
            ..AuditQuery::default()
        })
        .await
        .unwrap(),
        12
    );
    // Injection strings are addresses like any other: each matches itself only.
    for injection in INJECTIONS {
        let q = AuditQuery {
            ip: Some(injection.to_owned()),
            ..AuditQuery::default()
        };
        assert_eq!(count(q.clone()).await.unwrap(), 1, "{injection:?}");
        assert_eq!(
            store.audit_events(q).await.unwrap()[0].ip.as_deref(),
            Some(injection)
        );
    }
    let nul = AuditQuery {
        ip: Some("1\0".into()),
        ..AuditQuery::default()
    };
    assert!(matches!(
        count(nul.clone()).await,
        Err(AuthError::InvalidInput { field: "ip", .. })
    ));
    assert!(matches!(
        store.audit_events(nul).await,
        Err(AuthError::InvalidInput { field: "ip", .. })
    ));
}

pub async fn admin_finds_any_key_by_id(ctx: Ctx) {
    let store = &ctx.store;
    let user = store
        .create_user(NewUser::new("keys@example.com"))
        .await
        .unwrap();
    let created = store
        .create_api_key(user.id, NewApiKey::new("x'); DROP TABLE api_keys; --"))
        .await
        .unwrap();
    let found = store.api_key_by_id(created.key.id).await.unwrap();
    assert_eq!(found, created.key);
    assert_eq!(found.name, "x'); DROP TABLE api_keys; --");
    assert!(matches!(
        store.api_key_by_id(Uuid::new_v4()).await,
        Err(AuthError::NotFound)
    ));
    let revoked = store.revoke_api_key(user.id, found.id).await.unwrap();
    assert_eq!(
        store.api_key_by_id(found.id).await.unwrap().revoked_at,
        revoked.revoked_at
    );
}

fn run(
    user_id: Uuid,
    session_id: &str,
    finished_at: DateTime<Utc>,
    ticks: Option<u64>,
    trades: u64,
) -> SimulationRecord {
    let mut metrics = json!({"final_equity": "100100.00", "sharpe_ratio": 0.5});
    if let Some(ticks) = ticks {
        metrics["ticks_processed"] = json!(ticks);
    }
    SimulationRecord {
        summary: SimulationSummary {
            session_id: session_id.to_owned(),
            user_id,
            symbols: vec!["GOOG".into()],
            timeframe: "daily".into(),
            start_date: finished_at - TimeDelta::days(400),
            end_date: finished_at - TimeDelta::days(30),
            initial_capital: "100000".into(),
            final_equity: "100100.00".into(),
            total_return_pct: Some(0.1),
            total_trades: trades,
            reason: EndReason::Completed,
            created_at: finished_at - TimeDelta::seconds(5),
            finished_at,
        },
        params: json!({"symbols": ["GOOG"]}).to_string(),
        metrics: metrics.to_string(),
        trades: "[]".into(),
        equity_curve: "[]".into(),
        analytics: None,
    }
}

pub async fn admin_usage_per_user_and_plan(ctx: Ctx) {
    let store = &ctx.store;
    let t0 = ctx.now().trunc_subsecs(6);
    let h = |n: i64| t0 + TimeDelta::hours(n);
    let mk = |email: &str, plan| {
        let new = NewUser::new(email).plan(plan);
        async move { store.create_user(new).await.unwrap().id }
    };
    let ann = mk("ann@example.com", Plan::Free).await;
    let bob = mk("bob@example.com", Plan::Professional).await;
    let cy = mk("cy@example.com", Plan::Professional).await;
    let idle = mk("idle@example.com", Plan::Enterprise).await;
    // Ann: three runs (one without a tick count); Bob: two, one of them later; Cy: one
    // with an id made of injection text.
    for r in [
        run(ann, "a1", h(1), Some(100), 2),
        run(ann, "a2", h(2), Some(250), 3),
        run(ann, "a3", h(3), None, 0),
        run(bob, "b1", h(1), Some(1000), 7),
        run(bob, "b2", h(10), Some(5), 1),
        run(
            cy,
            "x'); DROP TABLE simulation_results; --",
            h(4),
            Some(40),
            4,
        ),
    ] {
        store.save_result(r).await.unwrap();
    }

    let all = store.usage_by_user(UsageQuery::default()).await.unwrap();
    assert_eq!(all.total, 3, "users without runs are not listed");
    let summary: Vec<(Uuid, u64, u64, u64)> = all
        .users
        .iter()
        .map(|u| (u.user_id, u.simulations, u.ticks, u.trades))
        .collect();
    // Most recently active first.
    assert_eq!(
        summary,
        [(bob, 2, 1005, 8), (cy, 1, 40, 4), (ann, 3, 350, 5)]
    );
    assert_eq!(all.users[0].last_finished_at, Some(h(10)));
    assert_eq!(all.users[0].email, "bob@example.com");
    assert_eq!(all.users[0].plan, Plan::Professional);
    assert_eq!(all.users[2].last_finished_at, Some(h(3)));

    // The time range is on the end of the run: [from, until).
    let window = store
        .usage_by_user(UsageQuery {
            from: Some(h(2)),
            until: Some(h(10)),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    let summary: Vec<(Uuid, u64, u64)> = window
        .users
        .iter()
        .map(|u| (u.user_id, u.simulations, u.ticks))
        .collect();
    assert_eq!(summary, [(cy, 1, 40), (ann, 2, 250)]);

    let only_ann = store
        .usage_by_user(UsageQuery {
            user_id: Some(ann),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((only_ann.total, only_ann.users[0].simulations), (1, 3));
    let idle_usage = store
        .usage_by_user(UsageQuery {
            user_id: Some(idle),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(idle_usage.total, 0);
    assert!(idle_usage.users.is_empty());

    // Pages.
    let second = store
        .usage_by_user(UsageQuery {
            page: Page::new(1, 1),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(second.total, 3);
    assert_eq!(second.users.len(), 1);
    assert_eq!(second.users[0].user_id, cy);

    // Per plan: the user's current plan.
    let plans = store.usage_by_plan(UsageQuery::default()).await.unwrap();
    let summary: Vec<(Plan, u64, u64, u64, u64)> = plans
        .iter()
        .map(|p| (p.plan, p.active_users, p.simulations, p.ticks, p.trades))
        .collect();
    assert_eq!(
        summary,
        [
            (Plan::Free, 1, 3, 350, 5),
            (Plan::Professional, 2, 3, 1045, 12)
        ]
    );
    assert_eq!(plans[1].last_finished_at, Some(h(10)));
    let pro_early = store
        .usage_by_plan(UsageQuery {
            until: Some(h(5)),
            plan: Some(Plan::Professional),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(pro_early.len(), 1);
    assert_eq!(
        (
            pro_early[0].active_users,
            pro_early[0].simulations,
            pro_early[0].ticks
        ),
        (2, 2, 1040)
    );
    // A plan change moves the user's history with them.
    store.set_plan(ann, Plan::Enterprise).await.unwrap();
    let plans = store.usage_by_plan(UsageQuery::default()).await.unwrap();
    assert_eq!(
        plans.iter().map(|p| p.plan).collect::<Vec<_>>(),
        [Plan::Professional, Plan::Enterprise]
    );
    assert_eq!(
        store.list_results(cy, Page::default()).await.unwrap()[0].session_id,
        "x'); DROP TABLE simulation_results; --"
    );
}
