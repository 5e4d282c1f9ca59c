//! `GET /api/strategies` body: the built-in strategies a server-side backtest
//! (`POST /api/backtests`) can run, each with the parameters it takes, so a form can be
//! generated from it. The engine's catalog (`engine::catalog`) produces it and
//! validates `params` against the same table.
//!
//! Parameter values travel in one encoding everywhere (defaults, bounds, the resolved
//! parameters a stored run records): an `integer` parameter is a JSON number, a
//! `decimal` one a decimal string (`"2.5"`; no exponent, no trailing zeros).

use serde::{Deserialize, Serialize};

/// `GET /api/strategies` 200 body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategiesResponse {
    /// Every built-in strategy, in a stable order.
    pub strategies: Vec<StrategyDescription>,
}

/// One built-in strategy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyDescription {
    /// The id a backtest request names (`sma_crossover`).
    pub id: String,
    /// A short human name (`SMA crossover`).
    pub name: String,
    /// How it trades, in a sentence or two.
    pub description: String,
    /// Its parameters, in form order.
    pub params: Vec<ParamDescription>,
}

/// One parameter of a strategy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamDescription {
    /// The JSON key in a request's `params`.
    pub name: String,
    /// A short human label for a form.
    pub label: String,
    /// `integer` or `decimal`.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The value used when the request leaves the parameter out (a number for an
    /// integer, a decimal string for a decimal).
    pub default: serde_json::Value,
    /// Smallest accepted value, inclusive, in the same encoding.
    pub min: serde_json::Value,
    /// Largest accepted value, inclusive, in the same encoding.
    pub max: serde_json::Value,
    /// One sentence: what it does and its unit.
    pub description: String,
}

/// The type of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A whole number, sent as a JSON integer.
    Integer,
    /// An exact decimal (at most 8 decimal places), sent as a decimal string or a JSON
    /// number.
    Decimal,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_wire_shape() {
        let body = json!({"strategies": [{
            "id": "breakout", "name": "Donchian breakout", "description": "Buys breakouts.",
            "params": [
                {"name": "lookback", "label": "Lookback", "type": "integer", "default": 20,
                 "min": 2, "max": 1000, "description": "Bars."},
                {"name": "stop_loss_pct", "label": "Stop-loss %", "type": "decimal",
                 "default": "2", "min": "0.1", "max": "50", "description": "Percent."}
            ]
        }]});
        let r: StrategiesResponse = serde_json::from_value(body.clone()).unwrap();
        let params = &r.strategies[0].params;
        assert_eq!(
            (params[0].kind, params[1].kind),
            (ParamType::Integer, ParamType::Decimal)
        );
        assert_eq!(params[1].min, json!("0.1"));
        assert_eq!(serde_json::to_value(&r).unwrap(), body);
        assert!(serde_json::from_value::<ParamType>(json!("float")).is_err());
    }
}
