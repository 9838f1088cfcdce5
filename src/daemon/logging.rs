//! Diagnostics through `tracing`, on stderr, as text or JSON lines.

use super::config::{LogFormat, LoggingConfig};

/// Installs the global subscriber. Fails if the level is not a filter or a
/// subscriber is already installed (a second daemon in one process).
pub fn init(config: &LoggingConfig) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.level)
        .map_err(|e| format!("logging.level: not a tracing filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
    .map_err(|e| format!("cannot set up logging: {e}"))
}
