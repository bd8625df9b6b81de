//! What the benchmarks share: a throwaway PostgreSQL database and Redis key namespace for the
//! "PostgreSQL + Redis" half of a run, removed afterwards even when the run panics.

use std::future::Future;
use std::time::Duration;

use memberhub::cache::Cache;
use memberhub::config::Settings;
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;

/// Runs `body` with settings for a fresh database under BENCH_DATABASE_URL (an admin URL,
/// default postgres://postgres:postgres@127.0.0.1:5432/test) and a unique key prefix on
/// BENCH_REDIS_URL (default redis://127.0.0.1:6379); `body` also gets the database's URL.
/// Prints why and returns when either does not answer. A panic in `body` is raised again after
/// the database is dropped and the keys removed, so a failed run leaves nothing behind.
pub async fn with_postgres_and_redis<F, Fut>(bench: &str, body: F)
where
    F: FnOnce(Settings, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/test".into());
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut options = sea_orm::ConnectOptions::new(admin_url.clone());
    // DROP DATABASE waits for a checkpoint; its duration is not a finding of a bench.
    options.sqlx_logging(false);
    let admin = match tokio::time::timeout(Duration::from_secs(5), Database::connect(options)).await
    {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => {
            return println!("{bench} postgres+redis: skipped, PostgreSQL does not answer: {e}")
        }
        Err(_) => {
            return println!(
                "{bench} postgres+redis: skipped, PostgreSQL does not answer (timeout)"
            )
        }
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("bench:{run_id}:");
    if let Err(e) = Cache::redis(&redis_url, &prefix, Duration::from_secs(1)).await {
        return println!("{bench} postgres+redis: skipped, Redis does not answer: {e}");
    }
    let name = format!("memberhub_bench_{run_id}");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let base = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(base, _)| base.to_string())
        .expect("BENCH_DATABASE_URL needs a /database part");
    let url = format!("{base}/{name}");

    let mut settings = Settings::default();
    settings.database.url = SecretString::from(url.clone());
    settings.redis.url = Some(SecretString::from(redis_url.clone()));
    settings.redis.key_prefix = prefix.clone();
    let outcome = tokio::spawn(body(settings, url)).await;

    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await.ok();
    if let Err(e) = remove_keys(&redis_url, &prefix).await {
        println!("  (could not remove the run's Redis keys under {prefix}: {e})");
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Deletes every key under `prefix` (the run's own namespace).
async fn remove_keys(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut conn = redis::aio::ConnectionManager::new(client).await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(500)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
