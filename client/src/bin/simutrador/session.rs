//! `session create | list | status | close`.

use simutrador_client::Client;

use crate::args::Args;
use crate::error::CliError;
use crate::output::{self, key_values, Table};
use crate::params::{session_params, SESSION_OPTIONS};
use crate::settings::Settings;
use crate::token_cache;

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Failed(format!("cannot encode the answer: {e}")))?;
    println!("{text}");
    Ok(())
}

/// The one session id after `session <verb>`.
fn session_id<'a>(args: &'a Args, verb: &str) -> Result<&'a str, CliError> {
    match args.words.as_slice() {
        [_, _, id] => Ok(id),
        _ => Err(CliError::Usage(format!(
            "usage: simutrador session {verb} SESSION_ID"
        ))),
    }
}

pub async fn command(settings: &Settings, args: &Args) -> Result<(), CliError> {
    let verb = args.words.get(1).map(String::as_str).unwrap_or("");
    let json = args.flag("json");
    match verb {
        "create" => {
            let mut allowed = vec!["session-id", "json"];
            allowed.extend_from_slice(SESSION_OPTIONS);
            args.allow("session create", &allowed)?;
            if args.words.len() > 2 {
                return Err(CliError::Usage(
                    "usage: simutrador session create [options]".into(),
                ));
            }
            let params = session_params(args)?;
            let client = Client::new(&settings.url);
            let mut conn = token_cache::connect(settings, &client).await?;
            let created = conn
                .create_session(params, args.value("session-id").map(String::from))
                .await?;
            let _ = conn.close().await;
            if json {
                return print_json(&created);
            }
            print!(
                "{}",
                key_values(&[
                    ("Session", created.session_id.clone()),
                    ("State", format!("{:?}", created.state).to_lowercase()),
                    ("Symbols", created.symbols.join(",")),
                    (
                        "Range",
                        format!(
                            "{} .. {}",
                            output::time(created.start_date),
                            output::time(created.end_date)
                        )
                    ),
                    ("Ticks", created.estimated_ticks.to_string()),
                    ("Capital", created.initial_capital.to_string()),
                    ("Commission/share", created.commission_per_share.to_string()),
                    ("Slippage", format!("{} bps", created.slippage_bps)),
                ])
            );
            Ok(())
        }
        "list" => {
            args.allow("session list", &["json"])?;
            if args.words.len() > 2 {
                return Err(CliError::Usage("usage: simutrador session list".into()));
            }
            let client = Client::new(&settings.url);
            let mut conn = token_cache::connect(settings, &client).await?;
            let sessions = conn.list_sessions().await?;
            let _ = conn.close().await;
            if json {
                return print_json(&sessions);
            }
            if sessions.is_empty() {
                println!("No sessions");
                return Ok(());
            }
            let mut t = Table::new(&["Session", "State", "Symbols", "Timeframe", "Range", "Ticks"]);
            for s in &sessions {
                t.row(vec![
                    s.session_id.clone(),
                    format!("{:?}", s.state).to_lowercase(),
                    s.symbols.join(","),
                    s.timeframe.to_string(),
                    format!(
                        "{} .. {}",
                        output::time(s.start_date),
                        output::time(s.end_date)
                    ),
                    format!("{}/{}", s.sequence_id, s.ticks_total),
                ]);
            }
            print!("{}", t.render());
            Ok(())
        }
        "status" => {
            args.allow("session status", &["json"])?;
            let id = session_id(args, "status")?;
            let client = Client::new(&settings.url);
            let mut conn = token_cache::connect(settings, &client).await?;
            let state = conn.state(id).await?;
            let _ = conn.close().await;
            if json {
                return print_json(&state);
            }
            print!(
                "{}",
                key_values(&[
                    ("Session", state.session_id.clone()),
                    ("State", format!("{:?}", state.state).to_lowercase()),
                    (
                        "Progress",
                        format!(
                            "{}/{} ticks ({})",
                            state.sequence_id,
                            state.ticks_total,
                            output::pct(state.progress_pct)
                        )
                    ),
                    ("Sim time", state.sim_time.map_or("-".into(), output::time)),
                ])
            );
            Ok(())
        }
        "close" => {
            args.allow("session close", &[])?;
            let id = session_id(args, "close")?;
            let client = Client::new(&settings.url);
            let mut conn = token_cache::connect(settings, &client).await?;
            conn.close_session(id).await?;
            let _ = conn.close().await;
            println!("Closed session {id}");
            Ok(())
        }
        _ => Err(CliError::Usage(
            "usage: simutrador session create|list|status|close".into(),
        )),
    }
}
