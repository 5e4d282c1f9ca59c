//! What a test binary logs, captured as JSON lines through the gateway's own
//! subscriber (installed once per binary, with the first caller's directives).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use gateway::config::LogFormat;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Everything logged by this test binary from the first call on.
pub fn captured_logs(directives: &str) -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let writer = BoxMakeWriter::new(move || Capture(Arc::clone(&sink)));
        let sub = gateway::logging::subscriber(LogFormat::Json, directives, writer)
            .expect("valid log settings");
        tracing::subscriber::set_global_default(sub).expect("first subscriber");
        logs
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
