//! The demo chain loaded by `memberhub demo` or `--demo`. (Being written.)

use sea_orm::DatabaseConnection;

use crate::cache::Cache;
use crate::config::Settings;

/// Loads the demo chain unless the database already holds customers; returns what it printed
/// about (None when it left existing data alone).
pub async fn load(
    _db: &DatabaseConnection,
    _cache: &Cache,
    _settings: &Settings,
) -> anyhow::Result<Option<String>> {
    anyhow::bail!("the demo loader is not written yet")
}
