//! `simutrador`: the SimuTrador command-line client.

mod args;
mod auth;
mod bench;
mod error;
mod output;
mod params;
mod run;
mod session;
mod settings;
mod token_cache;

use std::process::ExitCode;

use args::Args;
use error::CliError;
use settings::Settings;

const USAGE: &str = "\
usage: simutrador [--url URL] [--api-key KEY] COMMAND [options]

commands:
  auth login                 exchange the API key for a token and cache it (0600)
  auth status                show the cached token's user, plan and expiry
  auth logout                delete the cached token
  config                     show the effective settings and where they come from
  session create [SESSION]   create a session without starting it (--session-id ID)
  session list               list your sessions
  session status ID          state and progress of a session
  session close ID           drop a session
  run [STRATEGY] [SESSION]   run a strategy in lock-step and print its results
                             (--json: one JSON document with the results and trades)
  bench [SESSION]            load generator: --sessions N (1-1000) --bars M
                             --mode lockstep|stream --duration SECS (default 120)
                             [--threads T] [--busy-poll] [--json]

STRATEGY: --strategy sma-cross|buy-and-hold (default sma-cross) --fast 10 --slow 20
          --quantity 100
SESSION:  --start DATE --end DATE (required) --symbols GOOG[,MSFT...] (default GOOG)
          --timeframe 1min|5min|15min|30min|1h|2h|4h|daily (default daily)
          --capital 100000 --commission PER_SHARE --slippage BPS --warmup BARS
          --allow-short

Settings: --url/--api-key, then SIMUTRADOR_URL/SIMUTRADOR_API_KEY, then `url` and
`api_key` in $XDG_CONFIG_HOME/simutrador/config.toml (default ~/.config/simutrador);
the URL defaults to http://127.0.0.1:8003. Commands reuse the cached token while it is
valid for more than 5 minutes, else they exchange the API key for a new one.
";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    if args.flag("help") || args.words.is_empty() {
        print!("{USAGE}");
        return if args.words.is_empty() && !args.flag("help") {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: CliError) -> ExitCode {
    eprintln!("simutrador: {e}");
    if matches!(e, CliError::Usage(_)) {
        eprintln!("run `simutrador --help` for usage");
    }
    e.exit_code()
}

fn dispatch(args: &Args) -> Result<(), CliError> {
    let settings = Settings::resolve(args, |k| std::env::var(k).ok())?;
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    let block_on = |fut: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), CliError>> + '_>,
    >| { actix_rt::System::new().block_on(fut) };
    match words.as_slice() {
        ["auth", "login"] => block_on(Box::pin(auth::login(&settings, args))),
        ["auth", "status"] => auth::status(&settings, args),
        ["auth", "logout"] => auth::logout(&settings, args),
        ["config"] => show_config(&settings, args),
        ["session", ..] => block_on(Box::pin(session::command(&settings, args))),
        ["run"] => block_on(Box::pin(run::run(&settings, args))),
        ["bench"] => {
            let plan = bench::Plan::from_args(args)?;
            let token = actix_rt::System::new().block_on(async {
                let client = simutrador_client::Client::new(&settings.url);
                token_cache::token(&settings, &client).await.map(|(t, _)| t)
            })?;
            let summary = bench::execute(&settings.url, &token, &plan)?;
            if plan.json {
                let text = serde_json::to_string_pretty(&summary)
                    .map_err(|e| CliError::Failed(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", bench::report(&summary, &plan));
            }
            if summary.sessions_ok == 0 {
                return Err(CliError::Failed("every bench session failed".into()));
            }
            Ok(())
        }
        _ => Err(CliError::Usage(format!(
            "unknown command `{}`",
            args.words.join(" ")
        ))),
    }
}

fn show_config(settings: &Settings, args: &Args) -> Result<(), CliError> {
    args.allow("config", &[])?;
    let key = match &settings.api_key {
        Some((k, source)) => format!("{} ({source})", settings::masked(k)),
        None => "not set".into(),
    };
    print!(
        "{}",
        output::key_values(&[
            ("URL", format!("{} ({})", settings.url, settings.url_source)),
            ("API key", key),
            ("Config file", settings.config_file().display().to_string()),
            (
                "Token cache",
                token_cache::path(settings).display().to_string()
            ),
        ])
    );
    Ok(())
}
