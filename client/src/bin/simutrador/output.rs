//! Terminal output: the progress bar, aligned tables, times and numbers.

use std::io::{IsTerminal, Write};

use simutrador_client::{format_wire_time, Timestamp};

/// A one-line progress bar on stderr, drawn only when stderr is a terminal and only
/// when the shown percentage changes.
pub struct ProgressBar {
    enabled: bool,
    last_pct: Option<u64>,
    drawn: bool,
}

/// Width of the bar between the brackets.
const BAR_WIDTH: u64 = 30;

impl ProgressBar {
    /// A bar that draws if stderr is a terminal.
    pub fn for_stderr() -> Self {
        ProgressBar {
            enabled: std::io::stderr().is_terminal(),
            last_pct: None,
            drawn: false,
        }
    }

    /// Shows `done` of `total`.
    pub fn update(&mut self, done: u64, total: u64) {
        if !self.enabled || total == 0 {
            return;
        }
        let pct = (done.min(total) * 100) / total;
        if self.last_pct == Some(pct) {
            return;
        }
        self.last_pct = Some(pct);
        let line = render(done, total);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Ends the line if anything was drawn.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

/// `[#####     ] 45% 1000/2148 ticks`
pub fn render(done: u64, total: u64) -> String {
    let done_c = done.min(total);
    // An empty run is complete.
    let pct = (done_c * 100).checked_div(total).unwrap_or(100);
    let filled = (done_c * BAR_WIDTH).checked_div(total).unwrap_or(BAR_WIDTH);
    format!(
        "[{}{}] {pct:>3}% {done}/{total} ticks",
        "#".repeat(filled as usize),
        " ".repeat((BAR_WIDTH - filled) as usize)
    )
}

/// Rows of cells printed with aligned columns; numeric columns align right.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, header first.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let numeric = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | '%' | ','))
        };
        // A column whose cells are all numbers aligns right, header included.
        let right: Vec<bool> = (0..cols)
            .map(|i| {
                !self.rows.is_empty()
                    && self
                        .rows
                        .iter()
                        .all(|r| r.get(i).is_none_or(|c| numeric(c)))
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate().take(cols) {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = width[i] - c.chars().count();
                if right[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Label/value lines with the values aligned.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

/// A float with `digits` decimals, or `n/a` when undefined.
pub fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "n/a".into()
    }
}

/// A percentage with two decimals.
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}%")
    } else {
        "n/a".into()
    }
}

/// A bar time: the date alone at midnight UTC, else the full RFC 3339 time.
pub fn time(ts: Timestamp) -> String {
    let s = format_wire_time(ts);
    match s.strip_suffix("T00:00:00Z") {
        Some(date) => date.to_string(),
        None => s,
    }
}

/// `3h 05m`, `12m 30s`, `45s` (negative: `expired`).
pub fn remaining(secs: i64) -> String {
    if secs <= 0 {
        return "expired".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_looks_like_the_spec() {
        assert_eq!(
            render(1000, 2148),
            format!(
                "[{}{}]  46% 1000/2148 ticks",
                "#".repeat(13),
                " ".repeat(17)
            )
        );
        assert!(render(2148, 2148).starts_with(&format!("[{}] 100%", "#".repeat(30))));
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["#", "Symbol", "PnL"]);
        t.row(vec!["1".into(), "GOOG".into(), "-12.50".into()]);
        t.row(vec!["10".into(), "AAPL".into(), "3.00".into()]);
        assert_eq!(
            t.render(),
            " #  Symbol     PnL\n 1  GOOG    -12.50\n10  AAPL      3.00\n"
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(time(86_400), "1970-01-02");
        assert_eq!(time(86_400 + 3600), "1970-01-02T01:00:00Z");
        assert_eq!(remaining(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(remaining(750), "12m 30s");
        assert_eq!(remaining(-1), "expired");
    }
}
