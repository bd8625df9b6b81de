//! Foundation benchmark: HTTP and cache throughput, each beside a baseline measured in the same
//! run on the same machine, so the ratios compare across machines.
//!
//!   cargo bench --bench foundation
//!
//! S0/B0 (performance.md section 7): `GET /healthz`, the cheapest route through the full
//! middleware stack (metrics, request span, error envelope). `GET /readyz` adds a database and a
//! cache round trip and is reported as a ratio of B0. Cache operations are reported per backend;
//! the Redis baseline is a raw GET on one connection manager, without our prefixing or scripts.
//! Redis parts use BENCH_REDIS_URL (default redis://127.0.0.1:6379) and are skipped if it does
//! not answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memberhub::cache::Cache;
use memberhub::config::Settings;
use memberhub::startup::Application;
use secrecy::SecretString;

const HTTP_SECONDS: u64 = 3;
const HTTP_CONCURRENCY: usize = 32;
const CACHE_OPS: u64 = 20_000;
const CACHE_CONCURRENCY: u64 = 16;

async fn http_rps(client: &reqwest::Client, url: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(HTTP_SECONDS);
    let started = Instant::now();
    let workers: Vec<_> = (0..HTTP_CONCURRENCY)
        .map(|_| {
            let (client, url, done) = (client.clone(), url.to_string(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let res = client.get(&url).send().await.unwrap();
                    assert!(res.status().is_success(), "{url}: {}", res.status());
                    res.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn ops_per_sec<F, Fut>(op: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let per_task = CACHE_OPS / CACHE_CONCURRENCY;
    let tasks: Vec<_> = (0..CACHE_CONCURRENCY)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    op(t * per_task + i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (per_task * CACHE_CONCURRENCY) as f64 / started.elapsed().as_secs_f64()
}

async fn cache_figures(name: &str, cache: Cache) -> f64 {
    let c = cache.clone();
    let set = ops_per_sec(move |i| {
        let c = c.clone();
        async move {
            c.set(&format!("k{}", i % 1000), "v", Duration::from_secs(60))
                .await
                .unwrap()
        }
    })
    .await;
    let c = cache.clone();
    let get = ops_per_sec(move |i| {
        let c = c.clone();
        async move {
            c.get(&format!("k{}", i % 1000)).await.unwrap();
        }
    })
    .await;
    let c = cache.clone();
    let incr = ops_per_sec(move |i| {
        let c = c.clone();
        async move {
            c.incr(&format!("n{}", i % 100), Duration::from_secs(60))
                .await
                .unwrap();
        }
    })
    .await;
    println!("cache {name:<10} set {set:>10.0}/s   get {get:>10.0}/s   incr {incr:>10.0}/s");
    get
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.database.url = SecretString::from(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    println!("memberhub foundation benchmark ({HTTP_CONCURRENCY} concurrent clients, {HTTP_SECONDS}s each, same machine as the server)");
    let b0 = http_rps(&client, &format!("{base}/healthz")).await;
    let ready = http_rps(&client, &format!("{base}/readyz")).await;
    println!("B0  GET /healthz  {b0:>10.0} req/s  (baseline)");
    println!(
        "S0  GET /readyz   {ready:>10.0} req/s  = {:.2} x B0 (SQLite ping + cache ping)",
        ready / b0
    );

    let mem_get = cache_figures("in-process", Cache::in_memory("bench:")).await;

    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    match Cache::redis(&redis_url, "bench:", Duration::from_secs(1)).await {
        Ok(cache) => {
            let ours = cache_figures("redis", cache).await;
            let client = redis::Client::open(redis_url.as_str()).unwrap();
            let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
            let raw = ops_per_sec(move |i| {
                let mut conn = conn.clone();
                async move {
                    let _: Option<String> = redis::cmd("GET")
                        .arg(format!("bench:k{}", i % 1000))
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
            })
            .await;
            println!(
                "raw redis-rs GET {raw:>10.0}/s  (baseline); ours = {:.2} x raw",
                ours / raw
            );
            println!("in-process get = {:.1} x Redis get", mem_get / ours);
        }
        Err(e) => println!("redis parts skipped: {e}"),
    }
}
