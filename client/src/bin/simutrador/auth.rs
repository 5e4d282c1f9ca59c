//! `auth login | status | logout`.

use simutrador_client::{now_unix, Client};

use crate::args::Args;
use crate::error::CliError;
use crate::output::{key_values, remaining};
use crate::settings::Settings;
use crate::token_cache;

pub async fn login(settings: &Settings, args: &Args) -> Result<(), CliError> {
    args.allow("auth login", &[])?;
    let client = Client::new(&settings.url);
    let token = token_cache::fresh(settings, &client).await?;
    let file = token_cache::path(settings);
    token_cache::save(&file, &settings.url, &token)?;
    let left = token.remaining_secs(now_unix());
    println!(
        "Logged in to {} as user {} (plan {}); token valid for {}, cached in {}",
        settings.url,
        token.user_id,
        token.plan,
        remaining(left),
        file.display()
    );
    Ok(())
}

pub fn status(settings: &Settings, args: &Args) -> Result<(), CliError> {
    args.allow("auth status", &[])?;
    let file = token_cache::path(settings);
    let Some(cached) = token_cache::load(&file)? else {
        return Err(CliError::Failed(format!(
            "not logged in (no token in {}); run `simutrador auth login`",
            file.display()
        )));
    };
    let left = cached.expires_at - now_unix();
    let state = if left <= 0 {
        "expired".to_string()
    } else if left <= token_cache::FRESH_MARGIN.as_secs() as i64 {
        format!(
            "expiring (in {}); the next command gets a new one",
            remaining(left)
        )
    } else {
        format!("valid for {}", remaining(left))
    };
    let mut lines = vec![
        ("Server", cached.url.clone()),
        ("User", cached.user_id.clone()),
        ("Plan", cached.plan.to_string()),
        (
            "Expires",
            format!(
                "{} ({state})",
                simutrador_client::format_wire_time(cached.expires_at)
            ),
        ),
    ];
    if cached.url != settings.url {
        lines.push((
            "Note",
            format!("the token is for {}, not {}", cached.url, settings.url),
        ));
    }
    print!("{}", key_values(&lines));
    Ok(())
}

pub fn logout(settings: &Settings, args: &Args) -> Result<(), CliError> {
    args.allow("auth logout", &[])?;
    let file = token_cache::path(settings);
    if token_cache::remove(&file)? {
        println!("Logged out (deleted {})", file.display());
    } else {
        println!("Not logged in");
    }
    Ok(())
}
