//! Parameter tables and their validation. Each strategy has one table; the same entry
//! gives `GET /api/strategies` its description and [`resolve`] its checks, so a bound
//! is written once.

use model::fixed::SCALE;
use model::{FixedError, Price};
use protocol::{ParamDescription, ParamType};
use serde_json::{Map, Value};

use super::ParamError;

/// A parameter's type, default and inclusive bounds.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// A whole number.
    Integer {
        /// Used when the request leaves the parameter out.
        default: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// An exact decimal of at most 8 places, held as the fixed-point [`Price`] holds
    /// its value (a plain number here, not a price).
    Decimal {
        /// Used when the request leaves the parameter out.
        default: Price,
        /// Smallest accepted value.
        min: Price,
        /// Largest accepted value.
        max: Price,
    },
}

/// One row of a strategy's parameter table.
#[derive(Clone, Copy, Debug)]
pub(super) struct Param {
    /// The JSON key in `params`.
    pub name: &'static str,
    /// A short label for a form.
    pub label: &'static str,
    /// Type, default and bounds.
    pub kind: Kind,
    /// One sentence: what it does and its unit.
    pub description: &'static str,
}

/// `n` tenths as an exact decimal (for bounds like 0.1 in a `const` table).
pub(super) const fn tenths(n: i64) -> Price {
    Price::from_raw(n * (SCALE / 10))
}

/// A resolved parameter value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    Integer(i64),
    Decimal(Price),
}

impl Resolved {
    /// The canonical JSON encoding: integers as numbers, decimals as normalised strings.
    fn to_json(self) -> Value {
        match self {
            Resolved::Integer(i) => Value::from(i),
            Resolved::Decimal(d) => Value::String(decimal_text(d)),
        }
    }

    fn text(self) -> String {
        match self {
            Resolved::Integer(i) => i.to_string(),
            Resolved::Decimal(d) => decimal_text(d),
        }
    }
}

/// Every parameter of one strategy with its value (given or default), in table order.
#[derive(Clone, Debug)]
pub(super) struct Values {
    values: Vec<(&'static str, Resolved)>,
}

impl Values {
    fn get(&self, name: &str) -> Option<Resolved> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The integer parameter `name`.
    pub fn integer(&self, name: &str) -> Result<i64, ParamError> {
        match self.get(name) {
            Some(Resolved::Integer(i)) => Ok(i),
            _ => Err(ParamError::new(format!(
                "the strategy's table has no integer parameter `{name}`"
            ))),
        }
    }

    /// The integer parameter `name` as a bar count or other size.
    pub fn count(&self, name: &str) -> Result<usize, ParamError> {
        let i = self.integer(name)?;
        usize::try_from(i)
            .map_err(|_| ParamError::new(format!("parameter `{name}` must not be negative")))
    }

    /// The integer parameter `name` as a threshold on the 0-100 RSI scale.
    pub fn level(&self, name: &str) -> Result<u32, ParamError> {
        let i = self.integer(name)?;
        u32::try_from(i)
            .map_err(|_| ParamError::new(format!("parameter `{name}` must not be negative")))
    }

    /// The decimal parameter `name`.
    pub fn decimal(&self, name: &str) -> Result<Price, ParamError> {
        match self.get(name) {
            Some(Resolved::Decimal(d)) => Ok(d),
            _ => Err(ParamError::new(format!(
                "the strategy's table has no decimal parameter `{name}`"
            ))),
        }
    }

    /// Refuses unless parameter `low` is strictly less than parameter `high`.
    pub fn require_less(&self, low: &str, high: &str) -> Result<(), ParamError> {
        match (self.get(low), self.get(high)) {
            (Some(a), Some(b)) if a < b => Ok(()),
            (Some(a), Some(b)) => Err(ParamError::new(format!(
                "parameter `{low}` ({}) must be less than `{high}` ({})",
                a.text(),
                b.text()
            ))),
            _ => Err(ParamError::new(format!(
                "the strategy's table has no parameters `{low}` and `{high}`"
            ))),
        }
    }

    /// Every parameter in its canonical JSON encoding.
    pub fn to_json(&self) -> Map<String, Value> {
        self.values
            .iter()
            .map(|(name, v)| (name.to_string(), v.to_json()))
            .collect()
    }
}

impl PartialOrd for Resolved {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Resolved::Integer(a), Resolved::Integer(b)) => a.partial_cmp(b),
            (Resolved::Decimal(a), Resolved::Decimal(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

/// A decimal as the wire writes it: no exponent, no trailing zeros, no trailing point
/// (`2.50` -> `2.5`, `4.00` -> `4`).
pub(super) fn decimal_text(d: Price) -> String {
    // `Price` displays at least two decimals, so the text always has a point.
    let text = d.to_string();
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The row as `GET /api/strategies` lists it.
pub(super) fn describe(p: &Param) -> ParamDescription {
    let (kind, default, min, max) = match p.kind {
        Kind::Integer { default, min, max } => (
            ParamType::Integer,
            Resolved::Integer(default),
            Resolved::Integer(min),
            Resolved::Integer(max),
        ),
        Kind::Decimal { default, min, max } => (
            ParamType::Decimal,
            Resolved::Decimal(default),
            Resolved::Decimal(min),
            Resolved::Decimal(max),
        ),
    };
    ParamDescription {
        name: p.name.to_string(),
        label: p.label.to_string(),
        kind,
        default: default.to_json(),
        min: min.to_json(),
        max: max.to_json(),
        description: p.description.to_string(),
    }
}

/// Text from a request as an error message quotes it: cut after 40 characters, so a
/// hostile request cannot make the message large.
pub(super) fn cut(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// A JSON value as an error message shows it: compact, [`cut`].
fn shown(v: &Value) -> String {
    cut(&v.to_string())
}

fn out_of_bounds(p: &Param, got: &Value) -> ParamError {
    let (min, max) = match p.kind {
        Kind::Integer { min, max, .. } => (min.to_string(), max.to_string()),
        Kind::Decimal { min, max, .. } => (decimal_text(min), decimal_text(max)),
    };
    ParamError::new(format!(
        "parameter `{}` must be between {min} and {max}, got {}",
        p.name,
        shown(got)
    ))
}

/// Reads one given value: its type first, then its bounds.
fn read(p: &Param, v: &Value) -> Result<Resolved, ParamError> {
    match p.kind {
        Kind::Integer { min, max, .. } => {
            let i = match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64(),
                _ => {
                    return Err(ParamError::new(format!(
                        "parameter `{}` must be an integer, got {}",
                        p.name,
                        shown(v)
                    )))
                }
            };
            // A u64 beyond i64 is out of every bound.
            match i {
                Some(i) if (min..=max).contains(&i) => Ok(Resolved::Integer(i)),
                _ => Err(out_of_bounds(p, v)),
            }
        }
        Kind::Decimal { min, max, .. } => {
            // A JSON number arrives as an integer or as the f64 nearest to what was
            // written; the shortest text that round-trips that f64 is the decimal the
            // client wrote (`0.1` stays exactly 0.1), and is parsed exactly from there.
            let parsed = match v {
                Value::String(s) => s.parse::<Price>(),
                Value::Number(n) => n.to_string().parse::<Price>(),
                _ => {
                    return Err(ParamError::new(format!(
                        "parameter `{}` must be a decimal string or number, got {}",
                        p.name,
                        shown(v)
                    )))
                }
            };
            match parsed {
                Ok(d) if (min..=max).contains(&d) => Ok(Resolved::Decimal(d)),
                Ok(_) | Err(FixedError::OutOfRange(_)) => Err(out_of_bounds(p, v)),
                Err(FixedError::TooPrecise(_)) => Err(ParamError::new(format!(
                    "parameter `{}` takes at most 8 decimal places, got {}",
                    p.name,
                    shown(v)
                ))),
                Err(_) => Err(ParamError::new(format!(
                    "parameter `{}` must be a decimal string or number, got {}",
                    p.name,
                    shown(v)
                ))),
            }
        }
    }
}

/// Checks `given` against `table`: every key must be a parameter of `strategy`, every
/// value of its type and within its bounds; parameters left out take their defaults.
pub(super) fn resolve(
    strategy: &str,
    table: &[Param],
    given: &Map<String, Value>,
) -> Result<Values, ParamError> {
    if let Some(unknown) = given.keys().find(|k| table.iter().all(|p| p.name != *k)) {
        let names: Vec<&str> = table.iter().map(|p| p.name).collect();
        return Err(ParamError::new(format!(
            "unknown parameter `{}` for strategy `{strategy}`; its parameters: {}",
            cut(unknown),
            names.join(", ")
        )));
    }
    let mut values = Vec::with_capacity(table.len());
    for p in table {
        let value = match given.get(p.name) {
            Some(v) => read(p, v)?,
            None => match p.kind {
                Kind::Integer { default, .. } => Resolved::Integer(default),
                Kind::Decimal { default, .. } => Resolved::Decimal(default),
            },
        };
        values.push((p.name, value));
    }
    Ok(Values { values })
}
