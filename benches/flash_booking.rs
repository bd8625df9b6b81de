//! Flash booking benchmark: a member day (会员日) opens and FLASH_MEMBERS members race for its
//! FLASH_CAPACITY places through the HTTP API, `POST /api/v1/member/bookings` with a Bearer
//! token, an `Idempotency-Key` and `{"slot_id": N}`, beside a baseline measured in the same run
//! against the same database: the bare conditional UPDATE + INSERT transaction a booking
//! needs, without HTTP, sign-in, gate, idempotency record or outbox message.
//!
//!   cargo bench --bench flash_booking
//!
//! Aim: bookings per second at 0.5x or better of the baseline's transactions per second.
//! Members, the event and its slots are created directly in the database (customer, `enrol`,
//! a WeChat account with consent linked to the customer, a session opened with
//! `open_session`), so every request still goes through the real member sign-in. Member i asks
//! for slot i % FLASH_SLOTS (each slot gets about FLASH_MEMBERS / FLASH_SLOTS members for its
//! FLASH_CAPACITY / FLASH_SLOTS places). Duplicates as phones produce them: every tenth member
//! resends the same request with the same key (a client retry, sent about FLASH_CONCURRENCY / 2
//! requests later, while the first is usually still in flight) and every twentieth sends a
//! second request with a fresh key (a double tap, sent 2 x FLASH_CONCURRENCY requests later).
//! All requests are queued at once and sent by FLASH_CONCURRENCY client tasks sharing one
//! reqwest client (connections warmed first). Figures: bookings/s = first-time 201s (not
//! replays) / time from the start to the last of them (the sell-out); rejections/s = 409s /
//! wall time of the whole race; p50/p99 = latency of every request. The sell-out takes well
//! under a second with the defaults, so bookings/s moves by a third between runs on a busy
//! machine; raise FLASH_MEMBERS and FLASH_CAPACITY together for a steadier figure.
//!
//! Always checked (the bench panics otherwise): no 5xx and no answer but 201 or 409
//! (`slot_full`, `already_booked`); one first-time 201 per place, at most one per member, a
//! replay carries the first answer's booking; in the database the event's live bookings equal
//! its capacity, each slot's `booked` equals its bookings, and no member holds two.
//!
//! Baseline, on its own slots (FLASH_SLOTS of them, capacity large enough that every
//! transaction succeeds, spread like the race): SQLite: FLASH_MEMBERS transactions `BEGIN
//! IMMEDIATE; UPDATE event_slot SET booked = booked + 1 WHERE id = ? AND booked < capacity;
//! INSERT INTO booking (...); COMMIT` from FLASH_CONCURRENCY tasks through the app's own
//! connection pool, one per member on a baseline event. PostgreSQL: `pgbench -n -M prepared
//! -c FLASH_CONCURRENCY -j 2 -T 5` with the same two statements; each transaction inserts a
//! `booked` booking of a random bench member with a fresh random `event_id` (not a foreign
//! key; it keeps the partial unique index on (event_id, member_id) maintained and checked as
//! in a real booking without two transactions colliding), so all indexes, both foreign keys
//! and the CHECK are paid for. pgbench uses its own FLASH_CONCURRENCY connections, the app
//! its pool (database.max_connections, 10), so the in-process loop through that pool is
//! printed for PostgreSQL too, for reference.
//!
//! Knobs: FLASH_MEMBERS (2000), FLASH_CAPACITY (200), FLASH_SLOTS (10), FLASH_CONCURRENCY
//! (64). Backends as in `member_card`: SQLite (a temp-dir file) with the in-process cache;
//! then PostgreSQL with Redis: a fresh database under BENCH_DATABASE_URL (an admin URL, default
//! postgres://postgres:postgres@127.0.0.1:5432/test), dropped afterwards, and BENCH_REDIS_URL
//! (default redis://127.0.0.1:6379) under a unique key prefix, removed afterwards; skipped with
//! a message when either does not answer. Client, server and database share the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{booking, customer, event_slot, member_event, wechat_account};
use memberhub::config::{LogSettings, Settings};
use memberhub::startup::Application;
use memberhub::state::AppState;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, Set, Statement,
};
use secrecy::SecretString;
use serde_json::{json, Value};

const AIM: f64 = 0.5;
const PGBENCH: &str = "/usr/bin/pgbench";
const PGBENCH_SECONDS: u64 = 5;
/// Members created per write transaction while seeding.
const SEED_CHUNK: usize = 250;

#[derive(Clone, Copy)]
struct Knobs {
    members: usize,
    capacity: usize,
    slots: usize,
    concurrency: usize,
}

fn knob(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name} must be a positive integer, not {v:?}"),
        },
        Err(_) => default,
    }
}

impl Knobs {
    fn from_env() -> Self {
        let k = Self {
            members: knob("FLASH_MEMBERS", 2000),
            capacity: knob("FLASH_CAPACITY", 200),
            slots: knob("FLASH_SLOTS", 10),
            concurrency: knob("FLASH_CONCURRENCY", 64),
        };
        assert!(
            k.capacity >= k.slots,
            "FLASH_CAPACITY ({}) must be at least FLASH_SLOTS ({})",
            k.capacity,
            k.slots
        );
        for j in 0..k.slots {
            let askers = (k.members + k.slots - 1 - j) / k.slots;
            assert!(
                askers >= k.slot_capacity(j),
                "slot {j} gets {askers} members for {} places: raise FLASH_MEMBERS (the race must sell out)",
                k.slot_capacity(j)
            );
        }
        k
    }

    /// Places of slot `j`; the remainder of the division goes to the first slots.
    fn slot_capacity(&self, j: usize) -> usize {
        self.capacity / self.slots + usize::from(j < self.capacity % self.slots)
    }
}

struct Member {
    id: i64,
    customer_id: i64,
    token: String,
}

struct Seeded {
    event_id: i64,
    slots: Vec<(i64, usize)>,
    members: Vec<Member>,
    baseline_event_id: i64,
    baseline_slots: Vec<i64>,
}

async fn create_event(
    db: &DatabaseConnection,
    store_id: i64,
    title: &str,
    capacities: &[usize],
) -> (i64, Vec<i64>) {
    let now = Utc::now();
    let event = member_event::ActiveModel {
        store_id: Set(store_id),
        event_date: Set((now + chrono::Duration::days(7)).date_naive()),
        title: Set(title.into()),
        description: Set("限时会员日预约".into()),
        opens_at: Set(now - chrono::Duration::hours(1)),
        closes_at: Set(now + chrono::Duration::days(6)),
        cancel_deadline: Set(now + chrono::Duration::days(5)),
        min_tier_id: Set(None),
        points_bonus: Set(true),
        status: Set("published".into()),
        cancel_reason: Set(None),
        created_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        published_at: Set(Some(now)),
        cancelled_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let mut slots = Vec::with_capacity(capacities.len());
    for (j, cap) in capacities.iter().enumerate() {
        let starts_at = now + chrono::Duration::days(7) + chrono::Duration::hours(j as i64);
        let slot = event_slot::ActiveModel {
            event_id: Set(event.id),
            starts_at: Set(starts_at),
            ends_at: Set(starts_at + chrono::Duration::hours(1)),
            service: Set("水光针".into()),
            capacity: Set(i32::try_from(*cap).unwrap()),
            booked: Set(0),
            status: Set("open".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        slots.push(slot.id);
    }
    (event.id, slots)
}

/// The event, its slots, the baseline's event and slots, and the members with their tokens.
async fn seed(state: &AppState, k: Knobs) -> Seeded {
    let now = Utc::now();
    let store_id = entity::store::ActiveModel {
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
    let capacities: Vec<usize> = (0..k.slots).map(|j| k.slot_capacity(j)).collect();
    let (event_id, slot_ids) = create_event(&state.db, store_id, "会员日快闪", &capacities).await;
    let (baseline_event_id, baseline_slots) =
        create_event(&state.db, store_id, "基线", &vec![1_000_000_000; k.slots]).await;

    let appid = state.wechat.appid().to_string();
    let mut members = Vec::with_capacity(k.members);
    for chunk in (0..k.members).collect::<Vec<_>>().chunks(SEED_CHUNK) {
        let txn = memberhub::db::begin_write(&state.db).await.unwrap();
        for &i in chunk {
            let c = customer::ActiveModel {
                name: Set(Some(format!("会员{i}"))),
                home_store_id: Set(Some(store_id)),
                source: Set("wechat".into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .unwrap();
            let (m, _) = memberhub::loyalty::membership::enrol(&txn, c.id, "desk")
                .await
                .unwrap();
            let account = wechat_account::ActiveModel {
                appid: Set(appid.clone()),
                openid: Set(format!("o-flash-{i}")),
                unionid: Set(None),
                session_key_enc: Set(None),
                customer_id: Set(Some(c.id)),
                referral_code: Set(format!("F{i:07}")),
                consent_policy_version: Set(Some("2026-11".into())),
                consent_marketing: Set(false),
                consent_sensitive_health: Set(false),
                consent_at: Set(Some(now)),
                created_at: Set(now),
                last_login_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .unwrap();
            let (token, _) = memberhub::auth::member::open_session(&txn, account.id)
                .await
                .unwrap();
            members.push(Member {
                id: m.id,
                customer_id: c.id,
                token,
            });
        }
        txn.commit().await.unwrap();
    }
    Seeded {
        event_id,
        slots: slot_ids.into_iter().zip(capacities).collect(),
        members,
        baseline_event_id,
        baseline_slots,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    First,
    /// The same request with the same key.
    Retry,
    /// A second request with a fresh key.
    DoubleTap,
}

struct Job {
    member: usize,
    slot_id: i64,
    key: String,
    kind: Kind,
}

struct Outcome {
    job: usize,
    status: u16,
    replayed: bool,
    /// `error.code` of a refusal.
    code: Option<String>,
    booking_id: Option<i64>,
    latency: Duration,
    /// When the answer arrived, from the start of the race.
    at: Duration,
    body: Value,
}

/// Every request of the race, in the order they are sent.
fn jobs(k: Knobs, s: &Seeded) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut later: VecDeque<(usize, Job)> = VecDeque::new();
    for i in 0..k.members {
        let slot_id = s.slots[i % k.slots].0;
        let key = uuid::Uuid::new_v4().to_string();
        if i % 10 == 3 {
            later.push_back((
                i + k.concurrency / 2,
                Job {
                    member: i,
                    slot_id,
                    key: key.clone(),
                    kind: Kind::Retry,
                },
            ));
        }
        if i % 20 == 7 {
            later.push_back((
                i + 2 * k.concurrency,
                Job {
                    member: i,
                    slot_id,
                    key: uuid::Uuid::new_v4().to_string(),
                    kind: Kind::DoubleTap,
                },
            ));
        }
        jobs.push(Job {
            member: i,
            slot_id,
            key,
            kind: Kind::First,
        });
        // Retries are due before double taps, so `later` stays nearly ordered; release
        // whatever is due.
        let mut keep = VecDeque::new();
        while let Some((due, job)) = later.pop_front() {
            if due <= i {
                jobs.push(job);
            } else {
                keep.push_back((due, job));
            }
        }
        later = keep;
    }
    jobs.extend(later.into_iter().map(|(_, job)| job));
    jobs
}

async fn race(
    client: &reqwest::Client,
    base: &str,
    k: Knobs,
    s: &Seeded,
) -> (Vec<Job>, Vec<Outcome>, Duration) {
    let jobs = Arc::new(jobs(k, s));
    let tokens: Arc<Vec<String>> = Arc::new(s.members.iter().map(|m| m.token.clone()).collect());
    // Warm the client's connections so the race does not pay for them.
    let warm: Vec<_> = (0..k.concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/healthz"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().bytes().await })
        })
        .collect();
    for w in warm {
        w.await.unwrap().unwrap();
    }

    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}/api/v1/member/bookings");
    let started = Instant::now();
    let tasks: Vec<_> = (0..k.concurrency)
        .map(|_| {
            let (client, url, next, jobs, tokens) = (
                client.clone(),
                url.clone(),
                next.clone(),
                jobs.clone(),
                tokens.clone(),
            );
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(j) else { break };
                    let sent = Instant::now();
                    let res = client
                        .post(&url)
                        .bearer_auth(&tokens[job.member])
                        .header("Idempotency-Key", &job.key)
                        .json(&json!({"slot_id": job.slot_id}))
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("booking request failed to complete: {e}"));
                    let status = res.status().as_u16();
                    let replayed = res
                        .headers()
                        .get("idempotent-replayed")
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    let done = Instant::now();
                    out.push(Outcome {
                        job: j,
                        status,
                        replayed,
                        code: body["error"]["code"].as_str().map(str::to_string),
                        booking_id: body["booking"]["id"].as_i64(),
                        latency: done - sent,
                        at: done - started,
                        body,
                    });
                }
                out
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(jobs.len());
    for t in tasks {
        outcomes.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    outcomes.sort_by_key(|o| o.job);
    let jobs = Arc::try_unwrap(jobs).ok().unwrap();
    (jobs, outcomes, wall)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// The HTTP side of the checks; returns the first-time bookings' ids. Panics with every
/// violation found.
fn check_answers(k: Knobs, jobs: &[Job], outcomes: &[Outcome]) -> HashSet<i64> {
    let mut problems = Vec::new();
    let server_errors: Vec<_> = outcomes.iter().filter(|o| o.status >= 500).collect();
    if !server_errors.is_empty() {
        problems.push(format!(
            "{} answers were 5xx, e.g. {} {}",
            server_errors.len(),
            server_errors[0].status,
            server_errors[0].body
        ));
    }
    for o in outcomes {
        let fine = match o.status {
            201 => o.booking_id.is_some(),
            409 => matches!(o.code.as_deref(), Some("slot_full" | "already_booked")),
            _ => o.status >= 500, // counted above
        };
        if !fine && problems.len() < 20 {
            problems.push(format!(
                "{:?} request of member {}: unexpected {} {}",
                jobs[o.job].kind, jobs[o.job].member, o.status, o.body
            ));
        }
    }
    // Per key: at most one first-time 201; a replay carries that booking.
    let mut by_key: HashMap<&str, Vec<&Outcome>> = HashMap::new();
    for o in outcomes {
        by_key.entry(&jobs[o.job].key).or_default().push(o);
    }
    for answers in by_key.values() {
        let firsts: Vec<_> = answers
            .iter()
            .filter(|o| o.status == 201 && !o.replayed)
            .collect();
        for o in answers.iter().filter(|o| o.replayed) {
            let original = firsts.first().map(|f| (f.status, f.booking_id));
            if original.is_some_and(|f| f != (o.status, o.booking_id)) {
                problems.push(format!(
                    "member {}: a replay answered {} {} unlike the first answer {:?}",
                    jobs[o.job].member, o.status, o.body, original
                ));
            }
        }
    }
    let mut per_member: HashMap<usize, usize> = HashMap::new();
    let mut ids = HashSet::new();
    for o in outcomes.iter().filter(|o| o.status == 201 && !o.replayed) {
        *per_member.entry(jobs[o.job].member).or_default() += 1;
        if !ids.insert(o.booking_id.unwrap_or_default()) {
            problems.push(format!("booking {:?} answered as new twice", o.booking_id));
        }
    }
    for (m, n) in &per_member {
        if *n > 1 {
            problems.push(format!(
                "member {m} got {n} first-time 201s (one member, two places)"
            ));
        }
    }
    if ids.len() != k.capacity {
        problems.push(format!(
            "{} first-time 201s for a capacity of {}",
            ids.len(),
            k.capacity
        ));
    }
    assert!(
        problems.is_empty(),
        "flash booking answers are wrong:\n  {}",
        problems.join("\n  ")
    );
    ids
}

/// The database side of the checks.
async fn check_database(db: &DatabaseConnection, k: Knobs, s: &Seeded, answered: &HashSet<i64>) {
    let mut problems = Vec::new();
    let bookings = booking::Entity::find()
        .filter(booking::Column::EventId.eq(s.event_id))
        .all(db)
        .await
        .unwrap();
    let live: Vec<_> = bookings
        .iter()
        .filter(|b| b.status != "cancelled")
        .collect();
    if live.len() != k.capacity {
        problems.push(format!(
            "{} live bookings for a capacity of {}",
            live.len(),
            k.capacity
        ));
    }
    let mut members = HashMap::new();
    for b in &bookings {
        *members.entry(b.member_id).or_insert(0) += 1;
    }
    let twice = members.values().filter(|n| **n > 1).count();
    if twice > 0 {
        problems.push(format!("{twice} members hold two bookings of the event"));
    }
    let stored: HashSet<i64> = live.iter().map(|b| b.id).collect();
    if &stored != answered {
        problems.push(format!(
            "the bookings answered 201 ({}) are not the stored ones ({})",
            answered.len(),
            stored.len()
        ));
    }
    let slots = event_slot::Entity::find()
        .filter(event_slot::Column::EventId.eq(s.event_id))
        .all(db)
        .await
        .unwrap();
    for slot in &slots {
        let n = live.iter().filter(|b| b.slot_id == slot.id).count();
        if usize::try_from(slot.booked).ok() != Some(n) || slot.booked != slot.capacity {
            problems.push(format!(
                "slot {}: booked {} / capacity {} but {n} live bookings",
                slot.id, slot.booked, slot.capacity
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "flash booking left the database wrong:\n  {}",
        problems.join("\n  ")
    );
}

/// The bare booking transaction from FLASH_CONCURRENCY tasks through the app's pool: each
/// member books once on the baseline event. Returns transactions per second.
async fn loop_baseline(db: &DatabaseConnection, k: Knobs, s: &Seeded) -> f64 {
    let backend = db.get_database_backend();
    let (update, insert) = match backend {
        DbBackend::Postgres => (
            "UPDATE event_slot SET booked = booked + 1 WHERE id = $1 AND booked < capacity",
            "INSERT INTO booking (code, event_id, slot_id, member_id, customer_id, status, via, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'booked', 'member', $6)",
        ),
        _ => (
            "UPDATE event_slot SET booked = booked + 1 WHERE id = ? AND booked < capacity",
            "INSERT INTO booking (code, event_id, slot_id, member_id, customer_id, status, via, created_at) \
             VALUES (?, ?, ?, ?, ?, 'booked', 'member', ?)",
        ),
    };
    let work: Arc<Vec<(String, i64, i64, i64)>> = Arc::new(
        s.members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    format!("L{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
                    s.baseline_slots[i % k.slots],
                    m.id,
                    m.customer_id,
                )
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let event_id = s.baseline_event_id;
    let started = Instant::now();
    let tasks: Vec<_> = (0..k.concurrency)
        .map(|_| {
            let (db, work, next) = (db.clone(), work.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((code, slot_id, member_id, customer_id)) = work.get(i) else {
                        break;
                    };
                    let txn = memberhub::db::begin_write(&db).await.unwrap();
                    let taken = txn
                        .execute_raw(Statement::from_sql_and_values(
                            backend,
                            update,
                            [(*slot_id).into()],
                        ))
                        .await
                        .unwrap();
                    assert_eq!(taken.rows_affected(), 1, "baseline slot full");
                    txn.execute_raw(Statement::from_sql_and_values(
                        backend,
                        insert,
                        [
                            code.clone().into(),
                            event_id.into(),
                            (*slot_id).into(),
                            (*member_id).into(),
                            (*customer_id).into(),
                            Utc::now().into(),
                        ],
                    ))
                    .await
                    .unwrap();
                    txn.commit().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    work.len() as f64 / started.elapsed().as_secs_f64()
}

/// pgbench's transactions per second on the bench's database, or why there are none.
async fn pgbench_baseline(url: &str, k: Knobs, s: &Seeded) -> Result<f64, String> {
    if !std::path::Path::new(PGBENCH).exists() {
        return Err(format!("{PGBENCH} is missing"));
    }
    let ids: Vec<i64> = s.members.iter().map(|m| m.id).collect();
    let (m0, m1) = (ids[0], ids[ids.len() - 1]);
    let offset = s.members[0].customer_id - m0;
    if m1 - m0 + 1 != ids.len() as i64 || s.members.iter().any(|m| m.customer_id - m.id != offset) {
        return Err("member or customer ids are not contiguous".into());
    }
    let (s0, s1) = (s.baseline_slots[0], s.baseline_slots[k.slots - 1]);
    if s1 - s0 + 1 != k.slots as i64 {
        return Err("baseline slot ids are not contiguous".into());
    }
    let script = format!(
        "\\set s random({s0}, {s1})\n\
         \\set m random({m0}, {m1})\n\
         \\set c :m + {offset}\n\
         \\set e random(1000000000000, 999999999999999)\n\
         BEGIN;\n\
         UPDATE event_slot SET booked = booked + 1 WHERE id = :s AND booked < capacity;\n\
         INSERT INTO booking (code, event_id, slot_id, member_id, customer_id, status, via, created_at) \
         VALUES ('P' || CAST(:e AS text), :e, :s, :m, :c, 'booked', 'member', now());\n\
         COMMIT;\n"
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("flash_booking.sql");
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(PGBENCH);
    command
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &k.concurrency.to_string()])
        .args(["-T", &PGBENCH_SECONDS.to_string()])
        .arg("-f")
        .arg(&path)
        .arg(url);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .map_err(|e| format!("cannot run {PGBENCH}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench failed ({}): {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if let Some(failed) = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"))
    {
        if !failed.contains(": 0 ") {
            return Err(format!("pgbench had failures: {failed}"));
        }
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no tps line in pgbench's output: {stdout}"))
}

/// One backend: seed, race, check, baseline, print.
async fn run(label: &str, mut settings: Settings, k: Knobs, pg_url: Option<String>) {
    settings.server.port = 0;
    settings.jobs.enabled = false;
    settings.log.level = "warn".into();
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(k.concurrency)
        .build()
        .unwrap();

    let seeding = Instant::now();
    let s = seed(&state, k).await;
    let seeding = seeding.elapsed();

    let (jobs, outcomes, wall) = race(&client, &base, k, &s).await;
    let firsts: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status == 201 && !o.replayed)
        .collect();
    let sold_out = firsts.iter().map(|o| o.at).max().unwrap_or(wall);
    let rejections = outcomes.iter().filter(|o| o.status == 409).count();
    let replays = outcomes.iter().filter(|o| o.replayed).count();
    let fivexx = outcomes.iter().filter(|o| o.status >= 500).count();
    let count = |kind: Kind, code: &str| {
        outcomes
            .iter()
            .filter(|o| jobs[o.job].kind == kind && o.code.as_deref() == Some(code))
            .count()
    };
    let mut all: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    all.sort();
    let mut booked: Vec<Duration> = firsts.iter().map(|o| o.latency).collect();
    booked.sort();
    let mut refused: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == 409)
        .map(|o| o.latency)
        .collect();
    refused.sort();
    let bookings_per_s = firsts.len() as f64 / sold_out.as_secs_f64();
    let rejections_per_s = rejections as f64 / wall.as_secs_f64();

    // Baselines after the race, on their own slots of the same database.
    let looped = loop_baseline(&state.db, k, &s).await;
    let baseline = match &pg_url {
        None => Ok((looped, "BEGIN IMMEDIATE; UPDATE; INSERT; COMMIT loop")),
        Some(url) => pgbench_baseline(url, k, &s)
            .await
            .map(|tps| (tps, "pgbench, BEGIN; UPDATE; INSERT; COMMIT")),
    };

    println!(
        "flash_booking {label}: {} requests ({} members, {} retries, {} double taps) for {} places in {} slots, {} clients; seeded in {:.1}s",
        outcomes.len(),
        k.members,
        jobs.iter().filter(|j| j.kind == Kind::Retry).count(),
        jobs.iter().filter(|j| j.kind == Kind::DoubleTap).count(),
        k.capacity,
        k.slots,
        k.concurrency,
        seeding.as_secs_f64()
    );
    println!(
        "  {:<30} {:>12} {:>14} {:>7}  aim",
        "figure", "bench", "baseline", "ratio"
    );
    match &baseline {
        Ok((tps, how)) => {
            let ratio = bookings_per_s / tps;
            println!(
                "  {:<30} {:>12.0} {:>14.0} {:>7.2}  >= {AIM}{}   (baseline: {how})",
                "bookings/s (201, to sell-out)",
                bookings_per_s,
                tps,
                ratio,
                if ratio >= AIM { " met" } else { " MISSED" }
            );
        }
        Err(why) => println!(
            "  {:<30} {:>12.0} {:>14} {:>7}  (baseline skipped: {why})",
            "bookings/s (201, to sell-out)", bookings_per_s, "-", "-"
        ),
    }
    println!(
        "  {:<30} {:>12.0}",
        "rejections/s (409, whole race)", rejections_per_s
    );
    println!(
        "  {:<30} {:>9.1} ms {:>11.1} ms   (201: {:.1}/{:.1} ms, 409: {:.1}/{:.1} ms)",
        "latency p50 / p99, all",
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&booked, 0.50),
        percentile(&booked, 0.99),
        percentile(&refused, 0.50),
        percentile(&refused, 0.99)
    );
    if pg_url.is_some() {
        println!(
            "  {:<30} {:>12} {:>14.0}   (in-process BEGIN; UPDATE; INSERT; COMMIT loop, app pool)",
            "reference loop tx/s", "", looped
        );
    }
    println!(
        "  sold out after {:.2}s, race {:.2}s ({:.0} answers/s); 201 {} + {} replayed, 409 {} (slot_full {}, already_booked {}), 5xx {}; retries: {} replayed, double taps: {} already_booked",
        sold_out.as_secs_f64(),
        wall.as_secs_f64(),
        outcomes.len() as f64 / wall.as_secs_f64(),
        firsts.len(),
        replays,
        rejections,
        outcomes.iter().filter(|o| o.code.as_deref() == Some("slot_full")).count(),
        outcomes.iter().filter(|o| o.code.as_deref() == Some("already_booked")).count(),
        fivexx,
        outcomes
            .iter()
            .filter(|o| jobs[o.job].kind == Kind::Retry && o.replayed)
            .count(),
        count(Kind::DoubleTap, "already_booked"),
    );

    let answered = check_answers(k, &jobs, &outcomes);
    check_database(&state.db, k, &s, &answered).await;
    println!(
        "  checks: {} booked == capacity {}, no member twice, per-slot counts match, no 5xx: ok",
        answered.len(),
        k.capacity
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
        "memberhub flash booking benchmark ({} members, {} places in {} slots, {} concurrent clients, aim: bookings/s >= {AIM} x the bare transaction's rate; same machine as the server)",
        k.members, k.capacity, k.slots, k.concurrency
    );
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.database.url = SecretString::from(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    run("sqlite", settings, k, None).await;
    common::with_postgres_and_redis("flash_booking", move |settings, url| {
        run("postgres+redis", settings, k, Some(url))
    })
    .await;
}
