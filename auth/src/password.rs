//! Password hashing: argon2id in PHC strings, with costs from configuration.
//!
//! A stored hash carries its own parameters, so raising the costs later keeps old
//! hashes verifiable; [`PasswordHasher::needs_rehash`] tells when one should be
//! replaced. Refusing an unknown email runs one verification against a dummy hash made
//! with the current costs, so it takes as long as refusing a wrong password.
//!
//! Each hash or verification needs argon2's working memory (38 MiB with the server's
//! defaults) for its duration, so a [`HashingLimit`] caps how many run at once: a
//! login flood then waits, and finally gets [`AuthError::Overloaded`], instead of
//! running the server out of memory. Each thread that hashes keeps one buffer of the
//! configured size and reuses it (see [`PasswordHasher::hash`]), so the memory held
//! is one buffer per hashing thread, whatever the number of logins.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AuthError;
use crate::secret::Secret;

/// Shortest accepted password, in characters (NIST SP 800-63B's floor).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes: enough for any passphrase, small enough that
/// hashing cannot be used to make the server do unbounded work.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Salt length in bytes (the PHC recommendation).
const SALT_LEN: usize = 16;

/// Argon2id costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for PasswordParams {
    /// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            m_cost: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
            p_cost: Params::DEFAULT_P_COST,
        }
    }
}

impl PasswordParams {
    fn argon2(self) -> Result<Params, AuthError> {
        Params::new(self.m_cost, self.t_cost, self.p_cost, None)
            .map_err(|_| AuthError::Config("password hashing parameters are out of range"))
    }
}

/// Hashes and verifies passwords with fixed argon2id costs. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    params: PasswordParams,
    argon: Argon2<'static>,
    // Made on first use: hashing at construction would slow every store connect.
    dummy: Arc<OnceLock<String>>,
    /// A moving average of how long a verification at the configured costs takes, in
    /// microseconds (0 until the first one).
    typical_us: Arc<AtomicU64>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with `params`; [`AuthError::Config`] if argon2 refuses them.
    pub fn new(params: PasswordParams) -> Result<Self, AuthError> {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.argon2()?);
        Ok(Self {
            params,
            argon,
            dummy: Arc::new(OnceLock::new()),
            typical_us: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The configured costs.
    pub fn params(&self) -> PasswordParams {
        self.params
    }

    /// Checks that `password` is acceptable as a new password.
    pub fn check_new(password: &str) -> Result<(), AuthError> {
        let invalid = |reason| AuthError::InvalidInput {
            field: "password",
            reason,
        };
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(invalid("must be at least 8 characters"));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(invalid("must be at most 1024 bytes"));
        }
        Ok(())
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
    ///
    /// argon2 runs in this thread's kept buffer ([`hash_into`]) rather than in memory
    /// allocated and freed per call: glibc's allocator keeps each thread's freed
    /// buffer in an arena of its own anyway, so per-call buffers held far more in
    /// total (about 50 MiB per thread that ever hashed) than one kept buffer does.
    pub fn hash(&self, password: &Secret<String>) -> Result<String, AuthError> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(AuthError::Random)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        hash_into(
            &self.argon,
            password.expose().as_bytes(),
            &salt,
            &mut out,
            self.kept_blocks(),
        )
        .map_err(|_| AuthError::PasswordHashing)?;
        fn failed<E>(_: E) -> AuthError {
            AuthError::PasswordHashing
        }
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.argon.params()).map_err(failed)?,
            salt: Some(Salt::new(&salt).map_err(failed)?),
            hash: Some(Output::new(&out).map_err(failed)?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches `stored`. A hash that does not parse never matches.
    /// The algorithm, version and costs come from `stored`, not from `self`.
    pub fn verify(&self, password: &Secret<String>, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return false;
        };
        let version = match parsed.version {
            Some(v) => match Version::try_from(v) {
                Ok(v) => v,
                Err(_) => return false,
            },
            None => Version::default(),
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let argon = Argon2::new(algorithm, version, params);
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let Some(out) = buffer.get_mut(..expected.len()) else {
            return false;
        };
        if hash_into(
            &argon,
            password.expose().as_bytes(),
            salt,
            out,
            self.kept_blocks(),
        )
        .is_err()
        {
            return false;
        }
        // `Output`'s comparison takes the same time wherever the outputs differ.
        Output::new(out).is_ok_and(|computed| &computed == expected)
    }

    /// The most argon2 blocks a thread keeps between hashes: the configured costs'.
    fn kept_blocks(&self) -> usize {
        self.argon.params().block_count()
    }

    /// Spends the time of one verification and refuses: for unknown emails and users
    /// without a password, so they cannot be told apart from a wrong password.
    pub fn verify_dummy(&self, password: &Secret<String>) -> bool {
        let dummy = self.dummy.get_or_init(|| {
            // A random password nobody knows; if hashing fails the verification below
            // still fails (closed), just faster.
            let mut random = [0u8; 32];
            let _ = getrandom::fill(&mut random);
            let secret = Secret::new(format!("{random:x?}"));
            self.hash(&secret).unwrap_or_default()
        });
        let started = Instant::now();
        let _ = self.verify(password, dummy);
        self.record(started.elapsed());
        false
    }

    /// [`verify`](Self::verify), and how much longer a verification at the
    /// configured costs would have taken. A hash made before the costs were raised
    /// verifies faster, which would tell its account apart from an unknown email
    /// (checked against the dummy hash, at the configured costs): the caller waits
    /// the returned time before answering, and the account's next login replaces the
    /// hash anyway ([`needs_rehash`](Self::needs_rehash)).
    pub fn verify_padded(&self, password: &Secret<String>, stored: &str) -> (bool, Duration) {
        let stale = self.needs_rehash(stored);
        if stale && self.typical_us.load(Ordering::Relaxed) == 0 {
            // Nothing to pad to yet: learn it from one verification of the dummy.
            self.verify_dummy(password);
        }
        let started = Instant::now();
        let matches = self.verify(password, stored);
        let took = started.elapsed();
        if !stale {
            self.record(took);
            return (matches, Duration::ZERO);
        }
        let typical = Duration::from_micros(self.typical_us.load(Ordering::Relaxed));
        (matches, typical.saturating_sub(took))
    }

    /// Folds one verification at the configured costs into the moving average.
    fn record(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .typical_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    took
                } else {
                    old.saturating_mul(7).saturating_add(took) / 8
                })
            });
    }

    /// Whether `stored` was made with other costs or another algorithm than the
    /// configured ones (so it should be replaced after the next successful login).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost
                    || p.t_cost() != self.params.t_cost
                    || p.p_cost() != self.params.p_cost
            }
            Err(_) => true,
        }
    }
}

thread_local! {
    /// argon2's working memory, kept by each thread that hashes for its lifetime.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `argon` into `out`, in this thread's kept memory when the costs need at most
/// `kept_blocks` blocks (always, for hashes made with the configured costs).
/// Dearer hashes (from costs since lowered) get memory for this call only, so one
/// old hash cannot make every thread keep a larger buffer. argon2 overwrites every
/// block on its first pass, so what the buffer held before does not matter.
fn hash_into(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    kept_blocks: usize,
) -> argon2::Result<()> {
    let blocks = argon.params().block_count();
    if blocks > kept_blocks {
        return argon.hash_password_into(password, salt, out);
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// Caps concurrent password hashing and verification across a process (one per
/// store). Cheap to clone; clones share the permits and the threads.
///
/// The work runs on threads of its own, one per permit (at most [`MAX_THREADS`]),
/// not on tokio's blocking pool: each hashing thread keeps one argon2 buffer, so
/// memory stays at one buffer per permit instead of growing with every blocking
/// thread that ever hashed (about 1 GiB after a few hundred logins).
#[derive(Debug, Clone)]
pub struct HashingLimit {
    permits: Arc<Semaphore>,
    wait: Duration,
    pool: Arc<Pool>,
}

/// The most hashing threads one limit starts; more permits queue on them.
pub const MAX_THREADS: usize = 32;

type Job = Box<dyn FnOnce() + Send>;

/// Threads running hashing jobs; they end when the last clone of the limit is dropped.
#[derive(Debug)]
struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Pool {
    fn start(threads: usize) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.clamp(1, MAX_THREADS) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job();
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Pool {
            jobs: Mutex::new(tx),
        }
    }

    fn submit(&self, job: Job) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.send(job).is_ok()
    }
}

/// The right to run one hash or verification; see [`HashingLimit::acquire`].
#[derive(Debug)]
pub struct HashingPermit {
    permit: OwnedSemaphorePermit,
    pool: Arc<Pool>,
}

impl HashingLimit {
    /// At most `permits` at once; a caller waits at most `wait` for one.
    pub fn new(permits: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            wait,
            pool: Arc::new(Pool::start(permits)),
        }
    }

    /// Twice the available parallelism: argon2 is CPU-bound, so more would only queue
    /// on the blocking pool while holding its memory.
    pub fn default_permits() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get().saturating_mul(2))
    }

    /// A permit, or [`AuthError::Overloaded`] if none frees up within the wait.
    pub async fn acquire(&self) -> Result<HashingPermit, AuthError> {
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(HashingPermit {
                permit,
                pool: Arc::clone(&self.pool),
            }),
            // Timed out (or closed, which this type never does).
            _ => Err(AuthError::Overloaded),
        }
    }

    /// A permit if one is free right now, for work that can be skipped.
    pub fn try_acquire(&self) -> Option<HashingPermit> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .ok()
            .map(|permit| HashingPermit {
                permit,
                pool: Arc::clone(&self.pool),
            })
    }

    /// [`acquire`](Self::acquire), then [`HashingPermit::run`].
    pub async fn run<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.acquire().await?.run(work).await
    }
}

impl HashingPermit {
    /// Runs `work` on the limit's threads. The permit is released when `work` ends,
    /// not when the caller stops waiting: a dropped request cannot free a slot whose
    /// argon2 memory is still in use.
    pub async fn run<T, F>(self, work: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let HashingPermit { permit, pool } = self;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // Free the slot before the caller hears of the result.
            drop(permit);
            let _ = tx.send(done);
        });
        if !pool.submit(job) {
            return Err(AuthError::PasswordHashing);
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            _ => Err(AuthError::PasswordHashing),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(PasswordParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        })
        .unwrap()
    }

    fn pw(s: &str) -> Secret<String> {
        Secret::new(s.to_owned())
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_with_the_configured_costs() {
        let hasher = fast();
        let hash = hasher.hash(&pw("correct horse")).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        // Random salts: the same password hashes differently each time.
        assert_ne!(hash, hasher.hash(&pw("correct horse")).unwrap());
    }

    #[test]
    fn verifies_only_the_right_password() {
        let hasher = fast();
        let hash = hasher.hash(&pw("correct horse")).unwrap();
        assert!(hasher.verify(&pw("correct horse"), &hash));
        assert!(!hasher.verify(&pw("correct horse "), &hash));
        assert!(!hasher.verify(&pw("Correct horse"), &hash));
        assert!(!hasher.verify(&pw(""), &hash));
        assert!(!hasher.verify(&pw("correct horse"), "not a hash"));
        assert!(!hasher.verify(&pw("correct horse"), ""));
    }

    #[test]
    fn old_hashes_verify_after_the_costs_change_and_ask_for_rehash() {
        let old = fast();
        let hash = old.hash(&pw("correct horse")).unwrap();
        let new = PasswordHasher::new(PasswordParams {
            m_cost: 128,
            t_cost: 2,
            p_cost: 1,
        })
        .unwrap();
        assert!(new.verify(&pw("correct horse"), &hash));
        assert!(new.needs_rehash(&hash));
        assert!(!old.needs_rehash(&hash));
        assert!(new.needs_rehash("garbage"));
    }

    /// The kept buffer changes nothing: hashes match argon2's own, in both directions,
    /// whatever ran in the buffer before and with costs other than the configured ones.
    #[test]
    fn hashes_match_argon2s_own_whatever_the_buffer_held() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(PasswordParams {
            m_cost: 256,
            t_cost: 2,
            p_cost: 1,
        })
        .unwrap();
        let ours = hasher.hash(&pw("first password")).unwrap();
        // Ours verifies with the reference implementation (fresh memory) ...
        let reference = Argon2::default();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(reference
            .verify_password(b"first password", &parsed)
            .is_ok());
        assert!(reference.verify_password(b"other", &parsed).is_err());
        // ... and the reference's verify with ours, after the buffer held other work,
        // for cheaper (reused slice), equal, dearer (memory of its own) costs and
        // two lanes.
        for (m, t, p) in [(64, 1, 1), (256, 2, 1), (1024, 1, 1), (512, 3, 2)] {
            let params = Params::new(m, t, p, None).unwrap();
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_with_salt(b"second password", b"saltsaltsalt")
                .unwrap()
                .to_string();
            assert!(hasher.verify(&pw("second password"), &theirs), "{theirs}");
            assert!(!hasher.verify(&pw("second passwore"), &theirs), "{theirs}");
            assert!(hasher.verify(&pw("first password"), &ours));
        }
        // argon2i and argon2d hashes still verify (the stored hash names them).
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let theirs = Argon2::new(
                algorithm,
                Version::V0x13,
                Params::new(64, 1, 1, None).unwrap(),
            )
            .hash_password_with_salt(b"third password", b"saltsaltsalt")
            .unwrap()
            .to_string();
            assert!(hasher.verify(&pw("third password"), &theirs), "{theirs}");
        }
        // The dearer costs did not grow what this thread keeps.
        assert_eq!(MEMORY.with_borrow(Vec::len), 256);
    }

    #[test]
    fn dummy_verification_always_refuses() {
        let hasher = fast();
        assert!(!hasher.verify_dummy(&pw("anything")));
        assert!(!hasher.verify_dummy(&pw("")));
        let dummy = hasher.dummy.get().unwrap();
        assert!(dummy.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
    }

    #[test]
    fn hashes_with_old_cheaper_costs_are_padded_to_the_configured_time() {
        let hasher = PasswordHasher::new(PasswordParams {
            m_cost: 4096,
            t_cost: 3,
            p_cost: 1,
        })
        .unwrap();
        let cheap = fast().hash(&pw("old password")).unwrap();
        // The first stale hash learns the configured time from the dummy first.
        let (matches, pad) = hasher.verify_padded(&pw("old password"), &cheap);
        assert!(matches);
        let typical = Duration::from_micros(hasher.typical_us.load(Ordering::Relaxed));
        assert!(typical > Duration::ZERO);
        assert!(
            pad > Duration::ZERO && pad <= typical,
            "{pad:?} of {typical:?}"
        );
        let (matches, pad) = hasher.verify_padded(&pw("wrong"), &cheap);
        assert!(!matches);
        assert!(pad > Duration::ZERO);
        // A hash at the configured costs takes its own time: nothing to pad.
        let current = hasher.hash(&pw("new password")).unwrap();
        assert_eq!(
            hasher.verify_padded(&pw("new password"), &current),
            (true, Duration::ZERO)
        );
    }

    #[test]
    fn new_password_rules_and_bad_params() {
        assert!(PasswordHasher::check_new("12345678").is_ok());
        assert!(PasswordHasher::check_new("1234567").is_err());
        assert!(PasswordHasher::check_new("ééééééé").is_err());
        assert!(PasswordHasher::check_new(&"x".repeat(1025)).is_err());
        assert!(matches!(
            PasswordHasher::new(PasswordParams {
                m_cost: 1,
                t_cost: 1,
                p_cost: 1
            }),
            Err(AuthError::Config(_))
        ));
        assert_eq!(
            PasswordParams::default(),
            PasswordParams {
                m_cost: 19 * 1024,
                t_cost: 2,
                p_cost: 1
            }
        );
    }

    /// Runs `n` jobs of `ms` milliseconds through `limit`; returns the most that ran
    /// at once and the results.
    async fn flood(limit: &HashingLimit, n: usize, ms: u64) -> (usize, Vec<Result<(), AuthError>>) {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..n).map(|_| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            let limit = limit.clone();
            tokio::spawn(async move {
                limit
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(ms));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            })
        });
        let mut results = Vec::new();
        for job in jobs.collect::<Vec<_>>() {
            results.push(job.await.unwrap());
        }
        (most.load(Ordering::SeqCst), results)
    }

    #[tokio::test]
    async fn hashing_limit_caps_concurrent_work() {
        let limit = HashingLimit::new(2, Duration::from_secs(30));
        let (most, results) = flood(&limit, 12, 20).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(most, 2, "never more than the permits, and they are used");

        let one = HashingLimit::new(1, Duration::from_secs(30));
        let started = Instant::now();
        let (most, results) = flood(&one, 4, 50).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(most, 1);
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "serialised"
        );
    }

    #[tokio::test]
    async fn hashing_runs_on_one_thread_per_permit() {
        let limit = HashingLimit::new(2, Duration::from_secs(30));
        let mut threads = std::collections::HashSet::new();
        for _ in 0..3 {
            let jobs: Vec<_> = (0..8)
                .map(|_| {
                    let limit = limit.clone();
                    tokio::spawn(async move {
                        limit
                            .run(|| {
                                std::thread::sleep(Duration::from_millis(5));
                                std::thread::current().id()
                            })
                            .await
                    })
                })
                .collect();
            for job in jobs {
                threads.insert(job.await.unwrap().unwrap());
            }
        }
        // Whatever the order, 24 jobs ran on the same two threads (the allocator keeps
        // one argon2 buffer per thread, so this is what bounds the memory).
        assert_eq!(threads.len(), 2, "{threads:?}");
        assert!(!threads.contains(&std::thread::current().id()));
    }

    #[tokio::test]
    async fn hashing_limit_refuses_after_the_wait() {
        let limit = HashingLimit::new(1, Duration::from_millis(50));
        let held = limit.acquire().await.unwrap();
        let started = Instant::now();
        assert!(matches!(limit.run(|| ()).await, Err(AuthError::Overloaded)));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        // The slot is held until the work ends, even once nobody waits for it.
        let busy = tokio::spawn(held.run(|| std::thread::sleep(Duration::from_millis(300))));
        tokio::time::sleep(Duration::from_millis(20)).await;
        busy.abort();
        assert!(matches!(limit.acquire().await, Err(AuthError::Overloaded)));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(limit.run(|| ()).await.is_ok());

        assert!(limit.try_acquire().is_some());
        let none = HashingLimit::new(0, Duration::from_millis(10));
        assert!(none.try_acquire().is_none());
        assert!(matches!(none.run(|| ()).await, Err(AuthError::Overloaded)));
    }
}
