//! Usage per plan and user.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageFilters {
    from: Option<String>,
    until: Option<String>,
    user: Option<String>,
    plan: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// Live sessions of one user, from the cluster listing.
#[derive(Default, Clone, Copy)]
struct Live {
    sessions: u64,
    ticks: u64,
}

/// `GET /admin/usage?from=&until=&user=&plan=&limit=&offset=`: per plan and per user,
/// finished simulations (runs, ticks, trades, last run) whose run ended in
/// `[from, until)`, and the live sessions running now. Users with finished runs come
/// first (most recently active first), then users who only have live sessions.
pub async fn usage(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: Operator,
) -> Result<HttpResponse, HttpError> {
    let f: UsageFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let (from, until) = time_range(f.from.as_deref(), f.until.as_deref())?;
    let user = f.user.as_deref().map(parse_user).transpose()?;
    let plan = f.plan.as_deref().map(parse_plan).transpose()?;
    let q = UsageQuery {
        from,
        until,
        user_id: user,
        plan,
        page: Page::new(offset, limit),
    };

    // Live sessions per user, with each user's current plan.
    let cluster = state.control.cluster().await;
    let mut live: HashMap<Uuid, Live> = HashMap::new();
    for s in &cluster.sessions {
        let Ok(id) = s.user_id.parse::<Uuid>() else {
            continue;
        };
        if user.is_some_and(|u| u != id) {
            continue;
        }
        let l = live.entry(id).or_default();
        l.sessions += 1;
        l.ticks += s.ticks;
    }
    let mut live_users: HashMap<Uuid, User> = HashMap::new();
    for id in live.keys() {
        match state.db.user_by_id(*id).await {
            Ok(u) if plan.is_none_or(|p| p == u.plan) => {
                live_users.insert(*id, u);
            }
            Ok(_) | Err(AuthError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    live.retain(|id, _| live_users.contains_key(id));

    let stored = state.db.usage_by_user(q.clone()).await?;
    let mut users: Vec<serde_json::Value> = stored
        .users
        .iter()
        .map(|u| {
            let l = live.get(&u.user_id).copied().unwrap_or_default();
            json!({
                "user_id": u.user_id.to_string(),
                "email": u.email,
                "plan": u.plan,
                "simulations": u.simulations,
                "ticks": u.ticks,
                "trades": u.trades,
                "last_finished_at": u.last_finished_at.map(rfc3339),
                "live_sessions": l.sessions,
                "live_ticks": l.ticks,
            })
        })
        .collect();
    // Users with live sessions and no finished run in the range follow the stored
    // ones, in a fixed order, so pages continue across both.
    let mut live_only: Vec<&User> = Vec::new();
    for (id, u) in &live_users {
        let probe = UsageQuery {
            user_id: Some(*id),
            page: Page::new(0, 1),
            ..q.clone()
        };
        if state.db.usage_by_user(probe).await?.total == 0 {
            live_only.push(u);
        }
    }
    live_only.sort_by_key(|u| (u.email.clone(), u.id));
    let stored_total = stored.total;
    let skip_live = offset.saturating_sub(stored_total);
    let room = (limit as usize).saturating_sub(users.len());
    for u in live_only
        .iter()
        .skip(usize::try_from(skip_live).unwrap_or(usize::MAX))
        .take(room)
    {
        let l = live.get(&u.id).copied().unwrap_or_default();
        users.push(json!({
            "user_id": u.id.to_string(),
            "email": u.email,
            "plan": u.plan,
            "simulations": 0,
            "ticks": 0,
            "trades": 0,
            "last_finished_at": null,
            "live_sessions": l.sessions,
            "live_ticks": l.ticks,
        }));
    }

    let per_plan = state.db.usage_by_plan(q).await?;
    let plans: Vec<serde_json::Value> = Plan::ALL
        .into_iter()
        .filter(|p| plan.is_none_or(|want| want == *p))
        .map(|p| {
            let s = per_plan.iter().find(|u| u.plan == p);
            let live_here: Vec<&Live> = live_users
                .iter()
                .filter(|(_, u)| u.plan == p)
                .filter_map(|(id, _)| live.get(id))
                .collect();
            json!({
                "plan": p,
                "active_users": s.map_or(0, |s| s.active_users),
                "simulations": s.map_or(0, |s| s.simulations),
                "ticks": s.map_or(0, |s| s.ticks),
                "trades": s.map_or(0, |s| s.trades),
                "last_finished_at": s.and_then(|s| s.last_finished_at).map(rfc3339),
                "live_users": live_here.len(),
                "live_sessions": live_here.iter().map(|l| l.sessions).sum::<u64>(),
                "live_ticks": live_here.iter().map(|l| l.ticks).sum::<u64>(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "from": from.map(rfc3339),
        "until": until.map(rfc3339),
        "plans": plans,
        "users": users,
        "total": stored_total + live_only.len() as u64,
        "limit": limit,
        "offset": offset,
        "live_complete": cluster.complete,
    })))
}
