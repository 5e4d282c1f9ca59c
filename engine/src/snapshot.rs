//! Engine state to bytes and back: what the session store (memory or Redis) holds.
//!
//! Format: the magic `STEN`, a little-endian `u16` format version, then the engine
//! state in postcard (compact, deterministic). A snapshot of another version is refused
//! with [`SnapshotError::UnsupportedVersion`] rather than misread.

use super::{Engine, Scratch};

const MAGIC: &[u8; 4] = b"STEN";
/// Bumped whenever the serialized state changes shape.
pub const FORMAT_VERSION: u16 = 3;

/// A snapshot that cannot be restored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not an engine snapshot.
    #[error("not an engine snapshot")]
    BadMagic,
    /// Written by another format version.
    #[error("snapshot format version {found} is not supported (expected {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version in the snapshot.
        found: u16,
    },
    /// Truncated or corrupt body.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
}

impl Engine {
    /// The complete state as bytes; [`Engine::restore`] continues the run identically.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        // Serializing plain owned data into a Vec cannot fail.
        match postcard::to_extend(self, buf) {
            Ok(b) => b,
            Err(e) => unreachable!("postcard into Vec failed: {e}"),
        }
    }

    /// Rebuilds an engine from [`Engine::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let found = u16::from_le_bytes([bytes[4], bytes[5]]);
        if found != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { found });
        }
        let (mut engine, rest): (Engine, &[u8]) = postcard::take_from_bytes(&bytes[6..])
            .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        if !rest.is_empty() {
            return Err(SnapshotError::Corrupt(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        engine
            .config
            .validate()
            .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        let n = engine.config.symbols.len();
        let consistent = engine.portfolio.positions.len() == n
            && engine.orders.is_consistent()
            && engine.orders.iter().all(|o| (o.symbol as usize) < n)
            && engine.trades.iter().all(|t| (t.symbol as usize) < n)
            && engine.metrics.symbol_count() == n
            && engine.periods.is_valid()
            && engine.curve.is_valid();
        if !consistent {
            return Err(SnapshotError::Corrupt("inconsistent state".into()));
        }
        engine.scratch = Scratch::new(n);
        Ok(engine)
    }
}
