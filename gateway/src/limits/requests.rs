//! Request rate limits (PROTOCOL.md section 7): fixed windows of `period_sec`
//! seconds, each starting with a key's first request, counted per client IP (`auth`, `ws_connect`, `health`) or per user
//! (`api`). Every refused request is a 429 carrying `Retry-After` and the
//! `X-RateLimit-*` headers; allowed requests (except health probes) carry
//! `X-RateLimit-Limit`, `-Remaining` and `-Reset` too.
//!
//! With Redis configured, the `auth`, `ws_connect` and `api` windows are counted in
//! Redis (one Lua script per request, windows on Redis's clock), so they hold across
//! the cluster. `health` protects each node and is counted in the node's memory. When
//! Redis cannot answer, this node's own counts apply until it can.
//!
//! Behind a load balancer, the client is the address in `X-Forwarded-For` when the peer
//! is one of `rate_limits.trusted_proxies`; otherwise the peer itself.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::config::{RateLimitSettings, RateRule};
use crate::errors::{HttpError, LimitPeriod, RateLimited};
use crate::metrics::RateLimit;

/// The request limits, by `X-RateLimit-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `/auth/*`, per IP.
    Auth,
    /// `/ws/simulate` handshakes, per IP.
    WsConnect,
    /// `/health`, `/ready`, `/ws/health`, per IP, per node.
    Health,
    /// `/api/*`, `/admin/*`, per user.
    Api,
}

impl Bucket {
    /// The `X-RateLimit-Type` value (and metric label).
    pub fn as_str(self) -> &'static str {
        self.metric().as_str()
    }

    /// The metrics label of refusals.
    pub fn metric(self) -> RateLimit {
        match self {
            Bucket::Auth => RateLimit::Auth,
            Bucket::WsConnect => RateLimit::WsConnect,
            Bucket::Health => RateLimit::Health,
            Bucket::Api => RateLimit::Api,
        }
    }

    /// Which limit a path falls under, if any (`/metrics` is for the scraper).
    pub fn of_path(path: &str) -> Option<Bucket> {
        match path {
            "/health" | "/ready" | "/ws/health" => Some(Bucket::Health),
            "/ws/simulate" => Some(Bucket::WsConnect),
            p if p.starts_with("/auth/") => Some(Bucket::Auth),
            p if p.starts_with("/api/") || p.starts_with("/admin/") || p == "/admin" => {
                Some(Bucket::Api)
            }
            _ => None,
        }
    }
}

/// The outcome of counting one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in this window after this one.
    pub remaining: u32,
    /// When the window ends, in seconds since the Unix epoch.
    pub reset: i64,
    /// Window length in seconds.
    pub period_sec: u64,
}

impl Decision {
    fn new(rule: &RateRule, count: u64, window_end_ms: i64) -> Decision {
        Decision {
            allowed: count <= u64::from(rule.requests),
            limit: rule.requests,
            remaining: u64::from(rule.requests).saturating_sub(count) as u32,
            // Rounded up: the window is over at this second.
            reset: (window_end_ms + 999).div_euclid(1000),
            period_sec: rule.period_sec,
        }
    }

    /// Seconds until the window ends (at least 1), for `Retry-After`.
    pub fn retry_after(&self, now_ms: i64) -> i64 {
        // `reset` is rounded up to a second, so this may exceed the period by one.
        ((self.reset * 1000 - now_ms + 999) / 1000).clamp(1, self.period_sec as i64)
    }
}

/// Whom a window counts: a client network, or a user for the `api` limit. Small and
/// `Copy`, so counting in memory neither formats nor allocates; the text form names the
/// window in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// An IPv4 client (IPv4-mapped IPv6 peers included).
    V4(Ipv4Addr),
    /// An IPv6 client's /64 (one subscriber's network, which can hold any number of
    /// addresses): the address's upper 64 bits.
    V6Net(u64),
    /// A client whose address is not known.
    Unknown,
    /// A user, for the `api` limit with a valid token.
    User(Uuid),
}

impl RateKey {
    /// The per-IP key of a client address.
    pub fn client(ip: Option<IpAddr>) -> RateKey {
        match ip {
            Some(IpAddr::V4(v4)) => RateKey::V4(v4),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => RateKey::V4(v4),
                None => RateKey::V6Net((u128::from(v6) >> 64) as u64),
            },
            None => RateKey::Unknown,
        }
    }
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateKey::V4(v4) => write!(f, "{v4}"),
            RateKey::V6Net(net) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*net) << 64)),
            RateKey::Unknown => f.write_str("unknown"),
            RateKey::User(id) => write!(f, "user:{id}"),
        }
    }
}

const SHARDS: usize = 16;

/// The shard of a window: a multiplicative hash of the key's bits, so each request
/// hashes with SipHash once (in the shard's map, which is what resists flooding;
/// a client who steers its keys into one shard only shares that shard's lock).
fn shard_of(bucket: Bucket, key: RateKey) -> usize {
    let bits = match key {
        RateKey::V4(v4) => u64::from(u32::from(v4)),
        RateKey::V6Net(net) => net,
        RateKey::Unknown => 0,
        RateKey::User(id) => {
            let (high, low) = id.as_u64_pair();
            high ^ low
        }
    };
    let mixed = (bits ^ bucket as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> (64 - SHARDS.trailing_zeros())) as usize
}

#[derive(Clone, Copy)]
struct Window {
    /// When the window ends (ms since the epoch).
    end: i64,
    count: u64,
}

/// Fixed windows in this process's memory, sharded to keep lock hold times short.
struct LocalWindows {
    /// Per shard, a map per bucket.
    shards: Vec<Mutex<[HashMap<RateKey, Window>; 4]>>,
}

impl LocalWindows {
    fn new() -> Self {
        LocalWindows {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Default::default()))
                .collect(),
        }
    }

    fn count(&self, bucket: Bucket, key: RateKey, period_ms: i64, now_ms: i64) -> (u64, i64) {
        let fresh = Window {
            end: now_ms + period_ms,
            count: 0,
        };
        let shard = &self.shards[shard_of(bucket, key)];
        // One statement per update: a poisoned lock still holds consistent counts.
        let mut maps = shard.lock().unwrap_or_else(|p| p.into_inner());
        let map = &mut maps[bucket as usize];
        let window = map.entry(key).or_insert(fresh);
        if window.end <= now_ms {
            *window = fresh;
        }
        window.count += 1;
        (window.count, window.end)
    }

    /// Drops windows that have ended, so memory follows the active clients.
    fn sweep(&self, now_ms: i64) {
        for shard in &self.shards {
            let mut maps = shard.lock().unwrap_or_else(|p| p.into_inner());
            for map in maps.iter_mut() {
                map.retain(|_, w| w.end > now_ms);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let maps = s.lock().unwrap_or_else(|p| p.into_inner());
                maps.iter().map(HashMap::len).sum::<usize>()
            })
            .sum()
    }
}

/// KEYS: the window's counter. ARGV: period ms. Counts one request (the first starts
/// the window, which ends when the counter expires) and returns {count, ms left}.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if n == 1 or left < 0 then
  left = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], left)
end
return {n, left}
";

/// The Redis counter of a window: `<prefix>:rl:<type>:<key>`, where an `api` window
/// without a user reads `ip:<address>`.
fn redis_key(prefix: &str, bucket: Bucket, key: RateKey) -> String {
    let ip = if bucket == Bucket::Api && !matches!(key, RateKey::User(_)) {
        "ip:"
    } else {
        ""
    };
    format!("{prefix}:rl:{}:{ip}{key}", bucket.as_str())
}

/// Fixed windows in Redis, shared by every node.
struct RedisWindows {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisWindows {
    async fn count(
        &self,
        bucket: Bucket,
        key: RateKey,
        period_ms: i64,
    ) -> Result<(u64, i64), String> {
        let mut conn = self.conn.clone();
        let (n, left): (i64, i64) = redis::cmd("EVAL")
            .arg(HIT)
            .arg(1)
            .arg(redis_key(&self.prefix, bucket, key))
            .arg(period_ms)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok((n.max(0) as u64, now_ms() + left.max(0)))
    }
}

/// Counts requests against the configured limits.
pub struct RateLimiter {
    settings: RateLimitSettings,
    local: LocalWindows,
    redis: Option<RedisWindows>,
    /// When the Redis fallback was last logged (ms), to log it once per 10 seconds.
    fallback_logged: AtomicI64,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RateLimiter {
    /// Limits counted in this process only.
    pub fn local(settings: RateLimitSettings) -> Arc<RateLimiter> {
        Arc::new(RateLimiter {
            settings,
            local: LocalWindows::new(),
            redis: None,
            fallback_logged: AtomicI64::new(i64::MIN),
        })
    }

    /// Limits counted in Redis (except `health`), falling back to this process's counts
    /// while Redis cannot answer.
    pub async fn with_redis(
        settings: RateLimitSettings,
        url: &str,
        prefix: &str,
    ) -> Result<Arc<RateLimiter>, String> {
        let conn = crate::redis_link::connect(url, Duration::from_millis(500)).await?;
        Ok(Arc::new(RateLimiter {
            settings,
            local: LocalWindows::new(),
            redis: Some(RedisWindows {
                conn,
                prefix: prefix.to_string(),
            }),
            fallback_logged: AtomicI64::new(i64::MIN),
        }))
    }

    /// Whether request limits are on.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The rule of a bucket.
    pub fn rule(&self, bucket: Bucket) -> &RateRule {
        let s = &self.settings;
        match bucket {
            Bucket::Auth => &s.auth,
            Bucket::WsConnect => &s.ws_connect,
            Bucket::Health => &s.health,
            Bucket::Api => &s.api,
        }
    }

    fn period_ms(&self, bucket: Bucket) -> i64 {
        (self.rule(bucket).period_sec as i64).saturating_mul(1000)
    }

    /// Counts one request of `key` against `bucket`.
    pub async fn hit(&self, bucket: Bucket, key: RateKey) -> Decision {
        let rule = self.rule(bucket);
        let period = self.period_ms(bucket);
        if bucket != Bucket::Health {
            if let Some(redis) = &self.redis {
                match redis.count(bucket, key, period).await {
                    Ok((n, end)) => return Decision::new(rule, n, end),
                    Err(e) => {
                        let now = now_ms();
                        let last = self.fallback_logged.load(Ordering::Relaxed);
                        if now.saturating_sub(last) > 10_000
                            && self
                                .fallback_logged
                                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                                .is_ok()
                        {
                            tracing::warn!(error = %e, "rate limits cannot reach Redis; this node's counts apply");
                        }
                    }
                }
            }
        }
        let (n, end) = self.local.count(bucket, key, period, now_ms());
        Decision::new(rule, n, end)
    }

    /// Drops ended windows; run for the life of the node.
    pub async fn sweep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.local.sweep(now_ms());
        }
    }

    /// The client address: the peer, or with a trusted proxy as the peer, the last
    /// address in `X-Forwarded-For` that is not a trusted proxy.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self
            .settings
            .trusted_proxies
            .iter()
            .any(|n| n.contains(peer))
        {
            return Some(peer);
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        // From the nearest hop outwards: the first address that is not a trusted proxy.
        // Anything unreadable stops the walk at the last trusted hop, so a value the
        // client wrote further left is never believed.
        let mut client = peer;
        for entry in forwarded.into_iter().rev() {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.settings.trusted_proxies.iter().any(|n| n.contains(ip)) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }
}

/// Adds the `X-RateLimit-Limit`, `-Remaining` and `-Reset` headers of an allowed
/// request's `decision` (a refusal carries them all: [`refusal`]).
pub fn add_headers(headers: &mut HeaderMap, decision: &Decision) {
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    headers.insert(LIMIT, HeaderValue::from(decision.limit));
    headers.insert(REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(RESET, HeaderValue::from(decision.reset));
}

/// The 429 for a refused request.
pub fn refusal(bucket: Bucket, decision: &Decision, now_ms: i64) -> HttpError {
    HttpError::rate_limited(RateLimited {
        kind: bucket.as_str(),
        limit: decision.limit.into(),
        remaining: decision.remaining.into(),
        reset: decision.reset,
        retry_after: decision.retry_after(now_ms) as u64,
        period: LimitPeriod::Seconds(decision.period_sec),
        message: format!(
            "at most {} {} requests per {} s; retry after the time in Retry-After",
            decision.limit,
            bucket.as_str(),
            decision.period_sec
        ),
    })
}

/// What the `api` limit counted for this request (read by `GET /api/limits`).
#[derive(Clone, Copy, Debug)]
pub struct Counted(pub Decision);

pub(crate) fn display_ip(ip: Option<IpAddr>) -> String {
    match ip {
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        Some(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::ResponseError;

    fn settings() -> RateLimitSettings {
        let rule = |requests| RateRule {
            requests,
            period_sec: 60,
        };
        RateLimitSettings {
            enabled: true,
            trusted_proxies: Default::default(),
            auth: rule(3),
            ws_connect: rule(5),
            health: rule(2),
            api: rule(10),
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let key = |s: &str| RateKey::client(Some(s.parse::<IpAddr>().unwrap()));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(RateKey::client(None).to_string(), "unknown");
        let user = Uuid::nil();
        assert_eq!(
            RateKey::User(user).to_string(),
            "user:00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn redis_keys_name_the_type_and_the_client() {
        let v4 = RateKey::client(Some(IpAddr::from([192, 0, 2, 1])));
        assert_eq!(redis_key("p", Bucket::Auth, v4), "p:rl:auth:192.0.2.1");
        assert_eq!(redis_key("p", Bucket::Api, v4), "p:rl:api:ip:192.0.2.1");
        let user = RateKey::User(Uuid::nil());
        assert_eq!(
            redis_key("p", Bucket::Api, user),
            "p:rl:api:user:00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn windows_spread_over_the_shards() {
        let mut used = [0usize; SHARDS];
        for last in 0..=255u8 {
            let key = RateKey::client(Some(IpAddr::from([192, 0, 2, last])));
            used[shard_of(Bucket::Auth, key)] += 1;
        }
        for n in 0..=255u64 {
            used[shard_of(Bucket::Api, RateKey::V6Net(0x2001_0db8_0000_0000 | n))] += 1;
            used[shard_of(Bucket::Api, RateKey::User(Uuid::new_v4()))] += 1;
        }
        // 768 keys: every shard gets some, none more than three times its share.
        assert!(
            used.iter().all(|&n| n > 0 && n < 3 * 768 / SHARDS),
            "{used:?}"
        );
    }

    #[test]
    fn paths_map_to_buckets() {
        assert_eq!(Bucket::of_path("/health"), Some(Bucket::Health));
        assert_eq!(Bucket::of_path("/ready"), Some(Bucket::Health));
        assert_eq!(Bucket::of_path("/auth/login"), Some(Bucket::Auth));
        assert_eq!(Bucket::of_path("/auth/token"), Some(Bucket::Auth));
        assert_eq!(Bucket::of_path("/ws/simulate"), Some(Bucket::WsConnect));
        assert_eq!(Bucket::of_path("/api/limits"), Some(Bucket::Api));
        assert_eq!(Bucket::of_path("/admin/users"), Some(Bucket::Api));
        assert_eq!(Bucket::of_path("/metrics"), None);
        assert_eq!(Bucket::of_path("/authx"), None);
    }

    #[test]
    fn local_windows_count_and_reset() {
        let w = LocalWindows::new();
        let a = RateKey::client(Some(IpAddr::from([192, 0, 2, 1])));
        let b = RateKey::client(Some(IpAddr::from([192, 0, 2, 2])));
        let period = 60_000;
        let t0 = 1_800_000_000_000;
        assert_eq!(w.count(Bucket::Auth, a, period, t0), (1, t0 + 60_000));
        assert_eq!(
            w.count(Bucket::Auth, a, period, t0 + 59_999),
            (2, t0 + 60_000)
        );
        // Other keys and buckets are separate.
        assert_eq!(w.count(Bucket::Auth, b, period, t0 + 1).0, 1);
        assert_eq!(w.count(Bucket::Api, a, period, t0).0, 1);
        // The window ends a period after its first request; the next starts at one.
        assert_eq!(
            w.count(Bucket::Auth, a, period, t0 + 60_000),
            (1, t0 + 120_000)
        );
        assert_eq!(w.len(), 3);
        w.sweep(t0 + 60_001);
        assert_eq!(w.len(), 1, "ended windows are dropped");
    }

    #[test]
    fn decisions_carry_the_numbers_of_the_headers() {
        let rule = RateRule {
            requests: 3,
            period_sec: 60,
        };
        let d = Decision::new(&rule, 3, 1_800_000_060_000);
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining, d.reset), (3, 0, 1_800_000_060));
        let refused = Decision::new(&rule, 4, 1_800_000_060_000);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after(1_800_000_030_500), 30);
        assert_eq!(refused.retry_after(1_800_000_070_000), 1);
        let answer = refusal(Bucket::Auth, &refused, 1_800_000_030_500).error_response();
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = answer.headers();
        assert_eq!(headers.get("retry-after").unwrap(), "30");
        for name in [
            "retry-after",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-period",
            "x-ratelimit-type",
        ] {
            assert!(headers.contains_key(name), "{name}");
        }
        assert_eq!(headers.get("x-ratelimit-type").unwrap(), "auth");
        assert_eq!(headers.get("x-ratelimit-period").unwrap(), "60");
    }

    #[actix_web::test]
    async fn local_limiter_refuses_past_the_limit() {
        let limiter = RateLimiter::local(settings());
        let key = |last| RateKey::client(Some(IpAddr::from([10, 0, 0, last])));
        for _ in 0..3 {
            assert!(limiter.hit(Bucket::Auth, key(1)).await.allowed);
        }
        let refused = limiter.hit(Bucket::Auth, key(1)).await;
        assert!(!refused.allowed);
        assert!(limiter.hit(Bucket::Auth, key(2)).await.allowed);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut with_proxies = settings();
        with_proxies.trusted_proxies = "10.0.0.0/8, ::1".parse().unwrap();
        let limiter = RateLimiter::local(with_proxies);
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("1.2.3.4, 203.0.113.9, 10.1.1.1"),
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From the proxy: the last untrusted address (a client cannot forge past it).
        assert_eq!(
            limiter.client_ip(Some(ip("10.2.3.4")), &headers),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            limiter.client_ip(Some(ip("::1")), &headers),
            Some(ip("203.0.113.9"))
        );
        // From anyone else: the peer.
        assert_eq!(
            limiter.client_ip(Some(ip("198.51.100.7")), &headers),
            Some(ip("198.51.100.7"))
        );
        // An unreadable hop stops the walk: what the client wrote left of it is not
        // believed.
        let mut spoofed = HeaderMap::new();
        spoofed.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("1.2.3.4, unknown"),
        );
        assert_eq!(
            limiter.client_ip(Some(ip("10.2.3.4")), &spoofed),
            Some(ip("10.2.3.4"))
        );
        // Only trusted hops: the farthest one.
        let mut internal = HeaderMap::new();
        internal.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("10.9.9.9"),
        );
        assert_eq!(
            limiter.client_ip(Some(ip("10.2.3.4")), &internal),
            Some(ip("10.9.9.9"))
        );
        // A proxy without the header: the proxy.
        assert_eq!(
            limiter.client_ip(Some(ip("10.2.3.4")), &HeaderMap::new()),
            Some(ip("10.2.3.4"))
        );
    }
}
