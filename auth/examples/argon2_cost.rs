//! What one argon2id hash and one verification (the work of one `POST /auth/login`)
//! cost on this machine, for several cost settings, through auth's own
//! `PasswordHasher`. For choosing `accounts.argon2_*`; run it in release:
//!
//! ```sh
//! cargo run --release -p auth --example argon2_cost                 # the default sets
//! cargo run --release -p auth --example argon2_cost -- 19456:2:1 12288:3:1 --rounds 40
//! ```
//!
//! Each set is `memory_kib:iterations:parallelism`. The argon2 crate is built without
//! its `parallel` feature, so lanes (parallelism) run one after another: more lanes
//! cost as much as more memory.

use std::time::{Duration, Instant};

use auth::{PasswordHasher, PasswordParams, Secret};

/// OWASP's argon2id equivalents (46 MiB/1, 19 MiB/2, 12 MiB/3, 9 MiB/4, 7 MiB/5) and
/// heavier variants around them.
const DEFAULT_SETS: &[(u32, u32, u32)] = &[
    (47104, 1, 1),
    (19456, 2, 1),
    (12288, 3, 1),
    (9216, 4, 1),
    (7168, 5, 1),
    (19456, 3, 1),
    (19456, 4, 1),
    (32768, 2, 1),
    (47104, 2, 1),
    (65536, 1, 1),
    (65536, 2, 1),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rounds = 20usize;
    let mut sets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--rounds" {
            rounds = args
                .next()
                .ok_or("--rounds needs a number")?
                .parse::<usize>()?
                .clamp(1, 1000);
            continue;
        }
        let parts: Vec<u32> = arg
            .split(':')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| format!("`{arg}`: sets are memory_kib:iterations:parallelism"))?;
        let [m, t, p] = parts[..] else {
            return Err(format!("`{arg}`: sets are memory_kib:iterations:parallelism").into());
        };
        sets.push((m, t, p));
    }
    if sets.is_empty() {
        sets = DEFAULT_SETS.to_vec();
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; the numbers mean something only with --release");
    }
    println!(
        "rounds per set: {rounds} hashes and {rounds} verifications, after 2 of each to warm up"
    );
    println!(
        "{:>10} {:>4} {:>3} {:>8} | {:>9} {:>9} {:>9} | {:>11} {:>9}",
        "m_kib", "t", "p", "MiB", "hash min", "median", "mean", "verify med", "/s 1 core"
    );
    let password = Secret::new("correct horse battery staple".to_string());
    for (m_cost, t_cost, p_cost) in sets {
        let hasher = PasswordHasher::new(PasswordParams {
            m_cost,
            t_cost,
            p_cost,
        })?;
        let stored = hasher.hash(&password)?;
        for _ in 0..2 {
            hasher.hash(&password)?;
            assert!(hasher.verify(&password, &stored));
        }
        let mut hashes = Vec::with_capacity(rounds);
        let mut verifies = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            std::hint::black_box(hasher.hash(&password)?);
            hashes.push(started.elapsed());
            let started = Instant::now();
            let ok = hasher.verify(&password, &stored);
            verifies.push(started.elapsed());
            assert!(ok, "the password verifies");
        }
        hashes.sort();
        verifies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mean = hashes.iter().sum::<Duration>() / rounds as u32;
        let verify_median = verifies[rounds / 2];
        println!(
            "{m_cost:>10} {t_cost:>4} {p_cost:>3} {:>8.1} | {:>7.1}ms {:>7.1}ms {:>7.1}ms | {:>9.1}ms {:>9.1}",
            f64::from(m_cost) / 1024.0,
            ms(hashes[0]),
            ms(hashes[rounds / 2]),
            ms(mean),
            ms(verify_median),
            1.0 / verify_median.as_secs_f64(),
        );
    }
    Ok(())
}
