//! Member card benchmark: throughput of the mini-program's hottest read, `GET /api/v1/member/me`
//! (the membership card, Bearer token, warm card cache), beside the trivial `GET /healthz` of the
//! same server in the same run, so the ratio compares across machines.
//!
//!   cargo bench --bench member_card
//!
//! S2a of performance.md section 7; aim: the card at 0.5x or better of /healthz. Each request
//! goes through the whole stack: middleware, the member extractor (the session and its account
//! from the database), then the member id and the card from the cache. Requests are spread
//! over MEMBERS members who joined through the WeChat sandbox (login, consent, phone, join)
//! and each have a consumption recorded, so there is no single hot key. To show where the time
//! goes, `GET /api/v1/member/referral` (the member extractor and nothing else) is measured too.
//! The routes are measured ROUNDS times, alternating, and the medians reported.
//!
//! Backends: SQLite (a temp-dir file) with the in-process cache; then PostgreSQL with Redis:
//! a fresh database under BENCH_DATABASE_URL (an admin URL, default
//! postgres://postgres:postgres@127.0.0.1:5432/test), dropped afterwards, and BENCH_REDIS_URL
//! (default redis://127.0.0.1:6379) under a unique key prefix, removed afterwards. That part is
//! skipped with a message when either does not answer. Client and server share the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memberhub::config::{LogSettings, Settings};
use memberhub::loyalty::calendar::Calendar;
use memberhub::loyalty::card;
use memberhub::loyalty::consumption::{record, Item, NewConsumption};
use memberhub::startup::Application;
use memberhub::state::AppState;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use secrecy::SecretString;
use serde_json::{json, Value};

const HTTP_SECONDS: u64 = 3;
const HTTP_CONCURRENCY: usize = 32;
const MEMBERS: usize = 50;
const ROUNDS: usize = 3;
const AIM: f64 = 0.5;

/// Requests per second of GET `url` over HTTP_SECONDS, each worker cycling through `tokens`
/// (None: no Authorization header) from its own starting point.
async fn http_rps(client: &reqwest::Client, url: &str, tokens: &Arc<Vec<Option<String>>>) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(HTTP_SECONDS);
    let started = Instant::now();
    let workers: Vec<_> = (0..HTTP_CONCURRENCY)
        .map(|w| {
            let (client, url, done, tokens) = (
                client.clone(),
                url.to_string(),
                done.clone(),
                tokens.clone(),
            );
            tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < deadline {
                    let mut req = client.get(&url);
                    if let Some(t) = &tokens[i % tokens.len()] {
                        req = req.bearer_auth(t);
                    }
                    i += 1;
                    let res = req.send().await.unwrap();
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

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Members who joined the way the mini-program does it, each with one consumption recorded
/// through the production code path; returns their tokens.
async fn members(client: &reqwest::Client, base: &str, state: &AppState) -> Vec<String> {
    let sandbox = state
        .sandbox
        .as_ref()
        .expect("the bench needs sandbox mode (no appid)");
    let now = chrono::Utc::now();
    let store = entity::store::ActiveModel {
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
    let today = Calendar::new(state.settings.loyalty.tz()).today();
    let mut tokens = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        let code = format!("bench-login-{i}");
        sandbox.add_login_code(&code, &format!("o-bench-{i}"), None, false);
        let (status, body) = post(
            client,
            format!("{base}/api/v1/member/auth/login"),
            None,
            json!({"code": code}),
        )
        .await;
        assert_eq!(status, 200, "login: {body}");
        let token = body["token"].as_str().unwrap().to_string();
        let (status, body) = post(
            client,
            format!("{base}/api/v1/member/consent"),
            Some(&token),
            json!({"policy_version": "2026-11", "marketing": true, "sensitive_health": false}),
        )
        .await;
        assert_eq!(status, 200, "consent: {body}");
        let code = format!("bench-phone-{i}");
        sandbox.add_phone_code(&code, &format!("1390000{i:04}"));
        let (status, body) = post(
            client,
            format!("{base}/api/v1/member/phone"),
            Some(&token),
            json!({"code": code}),
        )
        .await;
        assert_eq!(status, 200, "phone: {body}");
        let (status, card) = post(
            client,
            format!("{base}/api/v1/member/join"),
            Some(&token),
            json!({}),
        )
        .await;
        assert_eq!(status, 201, "join: {card}");

        let member_id = card["member_id"].as_i64().unwrap();
        let customer_id = entity::member::Entity::find_by_id(member_id)
            .one(&state.db)
            .await
            .unwrap()
            .unwrap()
            .customer_id;
        let paid_fen = 298_000 + 10_000 * i as i64;
        let input = NewConsumption {
            customer_id,
            store_id: store,
            order_no: format!("BENCH{i:04}"),
            items: vec![Item {
                name: "水光针".into(),
                quantity: 1,
                amount_fen: paid_fen,
            }],
            paid_fen,
            occurred_at: now,
        };
        let loyalty = state.settings.loyalty.clone();
        let recorded = memberhub::db::write(&state.db, move |txn| {
            Box::pin(async move { record(txn, &loyalty, input, None, today).await })
        })
        .await;
        match recorded {
            Ok(r) => card::invalidate_many(&state.cache, r.touched_members()).await,
            // The card is read the same way with or without it; say so and go on.
            Err(e) => {
                if i == 0 {
                    println!(
                        "  (recording consumptions failed, cards measured without them: {})",
                        e.describe()
                    );
                }
            }
        }
        tokens.push(token);
    }
    tokens
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

async fn run(label: &str, mut settings: Settings) {
    settings.server.port = 0;
    settings.jobs.enabled = false;
    settings.log.level = "warn".into();
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let tokens = members(&client, &base, &state).await;
    // Warm: every member's card built once and cached.
    for t in &tokens {
        let res = client
            .get(format!("{base}/api/v1/member/me"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let tokens: Arc<Vec<Option<String>>> = Arc::new(tokens.into_iter().map(Some).collect());
    let anonymous = Arc::new(vec![None]);
    let (mut b0, mut me, mut auth) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        b0.push(http_rps(&client, &format!("{base}/healthz"), &anonymous).await);
        me.push(http_rps(&client, &format!("{base}/api/v1/member/me"), &tokens).await);
        // The member extractor and nothing else: tells the sign-in's share of the card's cost
        // from the cache reads and the card's JSON.
        auth.push(http_rps(&client, &format!("{base}/api/v1/member/referral"), &tokens).await);
    }
    let rounds: Vec<String> = (0..ROUNDS)
        .map(|r| format!("{:.0}/{:.0}/{:.0}", b0[r], me[r], auth[r]))
        .collect();
    let (b0, me, auth) = (median(b0), median(me), median(auth));
    let ratio = me / b0;
    println!(
        "member_card {label}: GET /healthz {b0:.0} req/s | GET /member/me {me:.0} req/s | ratio {ratio:.2} (aim >= {AIM}){}",
        if ratio >= AIM { "" } else { "  MISSED" }
    );
    println!(
        "  GET /member/referral (member sign-in only) {auth:.0} req/s = {:.2} x healthz; rounds healthz/me/referral: {}",
        auth / b0,
        rounds.join("  ")
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
    println!(
        "memberhub member card benchmark ({HTTP_CONCURRENCY} concurrent clients, {HTTP_SECONDS}s per measurement, median of {ROUNDS}, {MEMBERS} members, same machine as the server)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.database.url = SecretString::from(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    run("sqlite", settings).await;
    common::with_postgres_and_redis("member_card", |settings, _| run("postgres+redis", settings))
        .await;
}
