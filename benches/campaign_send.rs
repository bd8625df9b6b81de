//! Campaign send benchmark: a recall campaign to CAMPAIGN_RECIPIENTS dormant customers, of
//! whom CAMPAIGN_QUOTA_PCT percent accepted the recall template once, sent by the server's own
//! outbox sender (the background workers `messaging.enabled` starts) to the built-in sandbox.
//!
//!   cargo bench --bench campaign_send
//!
//! Figures, side by side: messages sent per second (sent / time from `POST .../start` until the
//! campaign's last row is final, the skips included), the configured `messaging.rate_per_second`
//! (CAMPAIGN_RATE) that caps it, and the sandbox's own capacity measured in the same run (the
//! same `subscribe/send` calls fired straight at it by CAPACITY_CLIENTS concurrent clients,
//! CAPACITY_CALLS of them, for users with quota); then the WeChat calls the campaign made and
//! its outcome counts.
//!
//! Always checked (the bench panics otherwise): one call per customer with quota and none for
//! the others; `sent` equals the customers with quota, `skipped / no_quota` the rest; no
//! customer got two messages; the campaign ends `completed`.
//!
//! Seeding goes straight to the database (store, customers last seen 400 days ago, consenting
//! mini-program accounts, quota rows) and to the sandbox (users and their accepts), as the
//! campaign tests do. The campaign is created and started through the staff API. Knobs:
//! CAMPAIGN_RECIPIENTS (20000), CAMPAIGN_QUOTA_PCT (60), CAMPAIGN_RATE (500),
//! CAMPAIGN_WORKERS (sender workers on PostgreSQL, 4; SQLite runs one), CAPACITY_CALLS (3000),
//! CAPACITY_CLIENTS (32). Backends as in the other benchmarks: SQLite (a temp-dir file) with
//! the in-process cache, then PostgreSQL with Redis (see `benches/common`). Client, server,
//! sandbox and database share the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{customer, store, subscription_quota, wechat_account};
use memberhub::auth::staff::Role;
use memberhub::config::{LogSettings, Settings};
use memberhub::staff::accounts::{create_account, NewAccount, Username};
use memberhub::startup::{Application, SANDBOX_SCOPE};
use memberhub::state::AppState;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use secrecy::SecretString;
use serde_json::{json, Value};

const RECALL: &str = "SBX-RECALL";
const SEND: &str = "/cgi-bin/message/subscribe/send";
const PASSWORD: &str = "bench-Password-2026";
/// Customers created per write transaction while seeding.
const SEED_CHUNK: usize = 500;
/// Longest a campaign may take before the bench gives up.
const TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Clone, Copy)]
struct Knobs {
    recipients: usize,
    quota_pct: usize,
    rate: u32,
    workers: u32,
    capacity_calls: usize,
    capacity_clients: usize,
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

impl Knobs {
    fn from_env() -> Self {
        Self {
            recipients: knob("CAMPAIGN_RECIPIENTS", 20_000),
            quota_pct: knob("CAMPAIGN_QUOTA_PCT", 60).min(100),
            rate: u32::try_from(knob("CAMPAIGN_RATE", 500)).unwrap(),
            workers: u32::try_from(knob("CAMPAIGN_WORKERS", 4)).unwrap(),
            capacity_calls: knob("CAPACITY_CALLS", 3_000),
            capacity_clients: knob("CAPACITY_CLIENTS", 32),
        }
    }

    fn with_quota(&self) -> usize {
        self.recipients * self.quota_pct / 100
    }
}

/// The store and the campaign's audience: customer i has quota when i < with_quota.
async fn seed(state: &AppState, k: Knobs) -> i64 {
    let now = Utc::now();
    let sandbox = state.sandbox.as_ref().expect("the bench needs the sandbox");
    let store = store::ActiveModel {
        name: Set("静安店".into()),
        city: Set(Some("上海".into())),
        address: Set(None),
        phone: Set(None),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&state.db)
    .await
    .unwrap()
    .id;
    create_account(
        &state.db,
        NewAccount {
            username: Username::parse("bench-hq").unwrap(),
            display_name: "总部".into(),
            role: Role::parse("admin").unwrap(),
            store_id: None,
            password: Some(PASSWORD.into()),
        },
        None,
    )
    .await
    .unwrap();
    let appid = state.wechat.appid().to_string();
    for start in (0..k.recipients).step_by(SEED_CHUNK) {
        let txn = memberhub::db::begin_write(&state.db).await.unwrap();
        for i in start..(start + SEED_CHUNK).min(k.recipients) {
            let id = customer::Entity::insert(customer::ActiveModel {
                name: Set(Some(format!("顾客{i}"))),
                source: Set("wechat".into()),
                home_store_id: Set(Some(store)),
                last_visit_at: Set(Some(now - chrono::Duration::days(400))),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .exec(&txn)
            .await
            .unwrap()
            .last_insert_id;
            let openid = format!("o-bench-{i}");
            sandbox.add_login_code(&format!("code-{openid}"), &openid, None, false);
            let account = wechat_account::ActiveModel {
                appid: Set(appid.clone()),
                openid: Set(openid.clone()),
                unionid: Set(None),
                session_key_enc: Set(None),
                customer_id: Set(Some(id)),
                referral_code: Set(format!("B{i:07}")),
                consent_policy_version: Set(Some("2026-11".into())),
                consent_marketing: Set(true),
                consent_sensitive_health: Set(false),
                consent_at: Set(Some(now)),
                created_at: Set(now),
                last_login_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .unwrap();
            if i < k.with_quota() {
                subscription_quota::ActiveModel {
                    wechat_account_id: Set(account.id),
                    template_id: Set(RECALL.into()),
                    remaining: Set(1),
                    last_status: Set("accept".into()),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await
                .unwrap();
                sandbox.record_subscriptions(&openid, &[(RECALL.into(), "accept".into())]);
            }
        }
        txn.commit().await.unwrap();
    }
    store
}

/// Calls per second the sandbox itself takes: `calls` valid sends by `clients` concurrent
/// clients, for users of its own with quota, straight to its endpoint (no sender in between).
async fn sandbox_capacity(state: &AppState, base: &str, client: &reqwest::Client, k: Knobs) -> f64 {
    let sandbox = state.sandbox.as_ref().unwrap();
    for i in 0..k.capacity_calls {
        let openid = format!("o-probe-{i}");
        sandbox.add_login_code(&format!("code-{openid}"), &openid, None, false);
        sandbox.record_subscriptions(&openid, &[(RECALL.into(), "accept".into())]);
    }
    let token = state.wechat.access_token().await.unwrap();
    let url = format!("{base}{SANDBOX_SCOPE}{SEND}?access_token={token}");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..k.capacity_clients)
        .map(|_| {
            let (client, url, next) = (client.clone(), url.clone(), next.clone());
            let calls = k.capacity_calls;
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= calls {
                        return;
                    }
                    let body = json!({"touser": format!("o-probe-{i}"), "template_id": RECALL,
                        "data": {"thing1": {"value": "顾客，好久不见"}, "thing2": {"value": "静安店想念您"}}});
                    let answer: Value = client
                        .post(&url)
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(answer["errcode"], 0, "{answer}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    k.capacity_calls as f64 / started.elapsed().as_secs_f64()
}

async fn run(label: &str, mut settings: Settings, k: Knobs) {
    settings.server.port = 0;
    settings.jobs.enabled = false;
    settings.log.level = "warn".into();
    settings.messaging.enabled = true;
    settings.messaging.rate_per_second = k.rate;
    settings.messaging.workers = k.workers;
    settings.messaging.batch = 100;
    settings.messaging.poll_ms = 100;
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let workers = match state.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => k.workers,
        _ => 1,
    };

    let seeding = Instant::now();
    let store = seed(&state, k).await;
    let seeding = seeding.elapsed();

    let login: Value = client
        .post(format!("{base}/api/v1/staff/auth/login"))
        .json(&json!({"username": "bench-hq", "password": PASSWORD, "session": "bearer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("staff login").to_string();
    let staff = |req: reqwest::RequestBuilder| req.bearer_auth(&token);
    let created: Value = staff(client.post(format!("{base}/api/v1/staff/campaigns")))
        .json(&json!({"kind": "recall", "name": "回店关怀", "store_id": store, "audience": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().expect("campaign created");
    let calls_before = state.sandbox.as_ref().unwrap().calls(SEND);

    let started = Instant::now();
    let start: Value = staff(client.post(format!("{base}/api/v1/staff/campaigns/{id}/start")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let queued = started.elapsed();
    assert_eq!(start["progress"]["total"], k.recipients, "{start}");
    let detail = loop {
        let d: Value = staff(client.get(format!("{base}/api/v1/staff/campaigns/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["status"] == "completed" {
            break d;
        }
        assert!(started.elapsed() < TIMEOUT, "campaign not done: {d}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let took = started.elapsed();
    let calls = state.sandbox.as_ref().unwrap().calls(SEND) - calls_before;

    let sent = detail["progress"]["by_status"]["sent"]
        .as_i64()
        .unwrap_or(0);
    let per_second = sent as f64 / took.as_secs_f64();
    let capacity = sandbox_capacity(&state, &base, &client, k).await;

    println!(
        "campaign_send {label}: {} recipients, {} with quota ({}%), {} sender worker(s); seeded in {:.1}s, {} rows queued by start in {:.2}s",
        k.recipients,
        k.with_quota(),
        k.quota_pct,
        workers,
        seeding.as_secs_f64(),
        k.recipients,
        queued.as_secs_f64()
    );
    println!("  {:<38} {:>10}", "figure", "value");
    println!(
        "  {:<38} {:>10.0}",
        "messages sent/s (start to completed)", per_second
    );
    println!(
        "  {:<38} {:>10}",
        "configured rate (calls/s, all instances)", k.rate
    );
    println!(
        "  {:<38} {:>10.0}   ({} calls, {} clients, straight to the sandbox)",
        "sandbox capacity (calls/s)", capacity, k.capacity_calls, k.capacity_clients
    );
    println!(
        "  {:<38} {:>10.2}",
        "sent/s as a share of the configured rate",
        per_second / f64::from(k.rate)
    );
    println!("  {:<38} {:>10}", "WeChat send calls made", calls);
    println!(
        "  {:<38} {:>10.1}s",
        "campaign duration",
        took.as_secs_f64()
    );
    let outcomes: Vec<String> = detail["progress"]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}{} {}",
                o["status"].as_str().unwrap_or_default(),
                o["reason"]
                    .as_str()
                    .map(|r| format!("/{r}"))
                    .unwrap_or_default(),
                o["count"]
            )
        })
        .collect();
    println!("  outcomes: {}", outcomes.join(", "));

    // The checks.
    let with_quota = i64::try_from(k.with_quota()).unwrap();
    let without = i64::try_from(k.recipients).unwrap() - with_quota;
    assert_eq!(sent, with_quota, "{detail}");
    assert_eq!(
        calls,
        k.with_quota() as u64,
        "one call per customer with quota"
    );
    let no_quota = detail["progress"]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["status"] == "skipped" && o["reason"] == "no_quota")
        .map_or(0, |o| o["count"].as_i64().unwrap());
    assert_eq!(no_quota, without, "{detail}");
    let campaign_sends: Vec<String> = state
        .sandbox
        .as_ref()
        .unwrap()
        .sent()
        .iter()
        .filter_map(|m| m["touser"].as_str().map(str::to_string))
        .filter(|u| u.starts_with("o-bench-"))
        .collect();
    let distinct: HashSet<&String> = campaign_sends.iter().collect();
    assert_eq!(
        distinct.len(),
        campaign_sends.len(),
        "a customer got two messages"
    );
    assert_eq!(campaign_sends.len(), k.with_quota());
    println!(
        "  checks: {sent} sent == customers with quota, {calls} calls, {no_quota} skipped no_quota, nobody twice: ok"
    );

    handle.stop(true).await;
    let _ = server.await;
    state.db.close_by_ref().await.ok();
}

#[tokio::main]
async fn main() {
    memberhub::telemetry::init(&LogSettings {
        level: "warn".into(),
        ..Default::default()
    })
    .unwrap();
    let k = Knobs::from_env();
    println!(
        "memberhub campaign send benchmark ({} recipients, {}% with quota, configured rate {} calls/s; server, sandbox and database share the machine)",
        k.recipients, k.quota_pct, k.rate
    );
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.database.url = SecretString::from(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    run("sqlite", settings, k).await;
    common::with_postgres_and_redis("campaign_send", move |settings, _url| {
        run("postgres+redis", settings, k)
    })
    .await;
}
