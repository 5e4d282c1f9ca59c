//! `simutrador-gateway`: `serve` (the default) runs the gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use gateway::app::Application;
use gateway::config::Settings;

const USAGE: &str = "\
usage: simutrador-gateway [--config FILE] [serve]

Settings come from built-in defaults, then FILE (TOML), then SIMUTRADOR__* environment
variables, e.g. SIMUTRADOR__SERVER__PORT=9000.
";

#[actix_web::main]
async fn main() -> ExitCode {
    let mut config_file: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(f) => config_file = Some(PathBuf::from(f)),
                None => return usage_error("--config needs a file"),
            },
            "serve" => {}
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage_error(&format!("unknown argument `{other}`")),
        }
    }
    let settings = match Settings::load(config_file.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("simutrador-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = settings.server.host.clone();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("simutrador-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "SimuTrador gateway listening on http://{host}:{}",
        app.port()
    );
    if let Some(p) = app.compat_port() {
        println!("Python SDK compatibility port: http://{host}:{p}");
    }
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simutrador-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("simutrador-gateway: {message}\n{USAGE}");
    ExitCode::from(2)
}
