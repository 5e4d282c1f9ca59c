//! Where the server is and which API key to use: `--url` / `--api-key`, then
//! `SIMUTRADOR_URL` / `SIMUTRADOR_API_KEY`, then `config.toml` in the config directory
//! (`$XDG_CONFIG_HOME/simutrador`, else `~/.config/simutrador`), then the default URL.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::args::Args;
use crate::error::CliError;

/// The server a fresh install talks to: the gateway's default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8003";

/// Where a setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    File,
    /// Built in.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "environment",
            Source::File => "config file",
            Source::Default => "default",
        })
    }
}

/// `config.toml`; unknown keys are ignored.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    url: Option<String>,
    api_key: Option<String>,
}

/// The effective settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Server base URL.
    pub url: String,
    /// Where `url` came from.
    pub url_source: Source,
    /// API key and where it came from, if any.
    pub api_key: Option<(String, Source)>,
    /// The config directory (token cache lives here too).
    pub config_dir: PathBuf,
}

impl Settings {
    /// The config file's path.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// Resolves the settings from `args`, the environment `env` and the config file.
    pub fn resolve(
        args: &Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, CliError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let config_dir = config_dir(&env)?;
        let file = read_file(&config_dir.join("config.toml"))?;
        let pick = |flag: Option<&str>, var: &str, from_file: Option<String>| {
            flag.map(|v| (v.to_string(), Source::Flag))
                .or_else(|| env(var).map(|v| (v, Source::Env)))
                .or_else(|| {
                    from_file
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| (v, Source::File))
                })
        };
        let (url, url_source) = pick(args.value("url"), "SIMUTRADOR_URL", file.url)
            .unwrap_or_else(|| (DEFAULT_URL.to_string(), Source::Default));
        let api_key = pick(args.value("api-key"), "SIMUTRADOR_API_KEY", file.api_key)
            .map(|(k, s)| (k.trim().to_string(), s));
        Ok(Settings {
            url: url.trim().to_string(),
            url_source,
            api_key,
            config_dir,
        })
    }
}

/// `$XDG_CONFIG_HOME/simutrador` when that is an absolute path (the XDG spec says to
/// ignore relative ones), else `$HOME/.config/simutrador`.
fn config_dir(env: &impl Fn(&str) -> Option<String>) -> Result<PathBuf, CliError> {
    if let Some(xdg) = env("XDG_CONFIG_HOME").map(PathBuf::from) {
        if xdg.is_absolute() {
            return Ok(xdg.join("simutrador"));
        }
    }
    match env("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("simutrador")),
        None => Err(CliError::Config(
            "cannot find the config directory: set HOME or XDG_CONFIG_HOME".into(),
        )),
    }
}

fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(CliError::io(format!("reading {}", path.display()))(e)),
    };
    toml::from_str(&text)
        .map_err(|e| CliError::Config(format!("{}: {}", path.display(), e.message())))
}

/// The key with all but its first 8 characters hidden, for display.
pub fn masked(key: &str) -> String {
    let shown: String = key.chars().take(8).collect();
    if key.chars().count() > 8 {
        format!("{shown}...")
    } else {
        "********".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(argv: &str, vars: &[(&str, &str)]) -> Result<Settings, CliError> {
        let args = Args::parse(argv.split_whitespace().map(String::from)).unwrap();
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(&args, |k| vars.get(k).cloned())
    }

    #[test]
    fn flags_beat_env_beat_file_beat_default() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_str().unwrap();
        let s = resolve("run", &[("HOME", h)]).unwrap();
        assert_eq!(
            (s.url.as_str(), s.url_source),
            (DEFAULT_URL, Source::Default)
        );
        assert!(s.api_key.is_none());
        assert_eq!(s.config_dir, home.path().join(".config/simutrador"));

        std::fs::create_dir_all(&s.config_dir).unwrap();
        std::fs::write(
            s.config_file(),
            "url = \"http://file:1\"\napi_key = \"file-key\"\nother = 1\n",
        )
        .unwrap();
        let s = resolve("run", &[("HOME", h)]).unwrap();
        assert_eq!(
            (s.url.as_str(), s.url_source),
            ("http://file:1", Source::File)
        );
        assert_eq!(s.api_key, Some(("file-key".into(), Source::File)));

        let env = [
            ("HOME", h),
            ("SIMUTRADOR_URL", "http://env:2"),
            ("SIMUTRADOR_API_KEY", "env-key"),
        ];
        let s = resolve("run", &env).unwrap();
        assert_eq!(
            (s.url.as_str(), s.url_source),
            ("http://env:2", Source::Env)
        );
        assert_eq!(s.api_key, Some(("env-key".into(), Source::Env)));

        let s = resolve("run --url http://flag:3 --api-key flag-key", &env).unwrap();
        assert_eq!(
            (s.url.as_str(), s.url_source),
            ("http://flag:3", Source::Flag)
        );
        assert_eq!(s.api_key, Some(("flag-key".into(), Source::Flag)));
        // An empty variable counts as unset.
        let s = resolve("run", &[("HOME", h), ("SIMUTRADOR_URL", "")]).unwrap();
        assert_eq!(s.url_source, Source::File);
    }

    #[test]
    fn xdg_config_home_wins_when_absolute() {
        let s = resolve("x", &[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]).unwrap();
        assert_eq!(s.config_dir, PathBuf::from("/x/simutrador"));
        let s = resolve("x", &[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel")]).unwrap();
        assert_eq!(s.config_dir, PathBuf::from("/h/.config/simutrador"));
        assert!(matches!(resolve("x", &[]), Err(CliError::Config(_))));
    }

    #[test]
    fn a_broken_file_names_itself() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".config/simutrador");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), "url = [").unwrap();
        let err = resolve("x", &[("HOME", home.path().to_str().unwrap())]).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
    }

    #[test]
    fn keys_are_masked() {
        assert_eq!(masked("stk_abcdefghijkl"), "stk_abcd...");
        assert_eq!(masked("short"), "********");
    }
}
