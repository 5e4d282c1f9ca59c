//! Command-line words and `--options`, parsed by hand: `--name value`, `--name=value`
//! and bare `--flag`s; everything else is a positional word.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::error::CliError;

/// Options that take a value.
const VALUE_OPTIONS: &[&str] = &[
    "url",
    "api-key",
    "strategy",
    "fast",
    "slow",
    "quantity",
    "symbols",
    "timeframe",
    "start",
    "end",
    "capital",
    "commission",
    "slippage",
    "warmup",
    "session-id",
    "sessions",
    "bars",
    "mode",
    "duration",
    "threads",
    "order-every",
];

/// Options without a value.
const FLAG_OPTIONS: &[&str] = &["json", "help", "allow-short", "busy-poll"];

/// Parsed arguments.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional words, in order (command, subcommand, ids).
    pub words: Vec<String>,
    values: BTreeMap<String, String>,
    flags: BTreeSet<String>,
}

impl Args {
    /// Parses `argv` (without the program name).
    pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, CliError> {
        let mut args = Args::default();
        let mut it = argv.into_iter();
        while let Some(arg) = it.next() {
            if arg == "-h" {
                args.flags.insert("help".into());
                continue;
            }
            let Some(body) = arg.strip_prefix("--") else {
                args.words.push(arg);
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            if VALUE_OPTIONS.contains(&name.as_str()) {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| CliError::Usage(format!("--{name} needs a value")))?,
                };
                if args.values.insert(name.clone(), value).is_some() {
                    return Err(CliError::Usage(format!("--{name} given twice")));
                }
            } else if FLAG_OPTIONS.contains(&name.as_str()) {
                if inline.is_some() {
                    return Err(CliError::Usage(format!("--{name} takes no value")));
                }
                args.flags.insert(name);
            } else {
                return Err(CliError::Usage(format!("unknown option --{name}")));
            }
        }
        Ok(args)
    }

    /// Fails if an option outside `allowed` (and the global ones) was given.
    pub fn allow(&self, command: &str, allowed: &[&str]) -> Result<(), CliError> {
        const GLOBAL: &[&str] = &["url", "api-key", "help"];
        let given = self.values.keys().chain(self.flags.iter());
        for name in given {
            if !GLOBAL.contains(&name.as_str()) && !allowed.contains(&name.as_str()) {
                return Err(CliError::Usage(format!(
                    "`{command}` does not take --{name}"
                )));
            }
        }
        Ok(())
    }

    /// The value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// True when `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }

    /// `--name` parsed as `T`, or `default` when absent.
    pub fn parsed_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, CliError>
    where
        T::Err: std::fmt::Display,
    {
        match self.value(name) {
            None => Ok(default),
            Some(v) => parse_value(name, v),
        }
    }

    /// `--name` parsed as `T`, if given.
    pub fn parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>, CliError>
    where
        T::Err: std::fmt::Display,
    {
        self.value(name).map(|v| parse_value(name, v)).transpose()
    }

    /// `--name`, required.
    pub fn required(&self, name: &str) -> Result<&str, CliError> {
        self.value(name)
            .ok_or_else(|| CliError::Usage(format!("--{name} is required")))
    }
}

fn parse_value<T: FromStr>(name: &str, v: &str) -> Result<T, CliError>
where
    T::Err: std::fmt::Display,
{
    v.trim()
        .parse()
        .map_err(|e| CliError::Usage(format!("invalid --{name} `{v}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, CliError> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn words_values_and_flags() {
        let a = parse("run --fast 5 --slow=30 --json GOOG").unwrap();
        assert_eq!(a.words, ["run", "GOOG"]);
        assert_eq!(a.value("fast"), Some("5"));
        assert_eq!(a.parsed_or::<u32>("slow", 1).unwrap(), 30);
        assert_eq!(a.parsed_or::<u32>("quantity", 100).unwrap(), 100);
        assert!(a.flag("json"));
        assert!(a.allow("run", &["fast", "slow", "json"]).is_ok());
        assert!(a.allow("session list", &[]).is_err());
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for bad in ["--nope", "--fast", "--json=1", "--fast 1 --fast 2"] {
            assert!(matches!(parse(bad), Err(CliError::Usage(_))), "{bad}");
        }
        let a = parse("--fast x").unwrap();
        assert!(a.parsed_or::<u32>("fast", 1).is_err());
    }
}
