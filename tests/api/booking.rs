//! Member days from the member's side: places that hold under a stampede, one booking per
//! member per event whatever the client sends, tier early access by the server's clock, the
//! waitlist and the promotions a cancellation makes (once, even when cancellations race),
//! other members' bookings out of reach, and bad requests that change nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, DurationRound, Utc};
use entity::{
    booking, customer, event_slot, idempotency_key, member, member_event, outbox_message, tier,
    waitlist_entry, wechat_account,
};
use futures_util::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::helpers::{create_store, spawn_app, MemberClient, Reply, TestApp};

// ---------------------------------------------------------------- fixtures

/// A member with a session, created straight in the database (customer, `enrol`, a WeChat
/// account linked to the customer, `open_session`); every request still signs in with the
/// bearer token through the real extractor.
#[derive(Clone)]
struct Booker {
    client: MemberClient,
    member_id: i64,
    customer_id: i64,
}

/// `n` members, created in a few write transactions (the sandbox sign-up flow costs four
/// requests a member, too slow for hundreds).
async fn members(app: &TestApp, prefix: &str, n: usize) -> Vec<Booker> {
    let now = Utc::now();
    let appid = app.state.wechat.appid().to_string();
    let mut out = Vec::with_capacity(n);
    let ids: Vec<usize> = (0..n).collect();
    for chunk in ids.chunks(100) {
        let txn = memberhub::db::begin_write(&app.state.db).await.unwrap();
        for &i in chunk {
            let customer_id = customer::Entity::insert(customer::ActiveModel {
                name: Set(Some(format!("{prefix}会员{i}"))),
                source: Set("wechat".into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .exec(&txn)
            .await
            .unwrap()
            .last_insert_id;
            let (m, created) = memberhub::loyalty::membership::enrol(&txn, customer_id, "wechat")
                .await
                .unwrap();
            assert!(created);
            let account = wechat_account::ActiveModel {
                appid: Set(appid.clone()),
                openid: Set(format!("o-{prefix}-{i}")),
                unionid: Set(None),
                session_key_enc: Set(None),
                customer_id: Set(Some(customer_id)),
                referral_code: Set(format!("{}{i:05}", prefix.to_uppercase())),
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
            out.push(Booker {
                client: MemberClient {
                    client: app.client.clone(),
                    base: app.url(""),
                    token,
                },
                member_id: m.id,
                customer_id,
            });
        }
        txn.commit().await.unwrap();
    }
    out
}

async fn one_member(app: &TestApp, prefix: &str) -> Booker {
    members(app, prefix, 1).await.pop().unwrap()
}

/// Gives `member_id` the tier `code` (normal, gold, platinum, diamond) in the database.
async fn set_tier(app: &TestApp, member_id: i64, code: &str) {
    let t = tier_by_code(app, code).await;
    member::Entity::update_many()
        .col_expr(member::Column::TierId, Expr::value(t.id))
        .filter(member::Column::Id.eq(member_id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn tier_by_code(app: &TestApp, code: &str) -> tier::Model {
    tier::Entity::find()
        .filter(tier::Column::Code.eq(code))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no tier {code}"))
}

/// A whole second, so that timestamps compare exactly after a round trip through either
/// database and JSON.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::seconds(1)).unwrap()
}

/// A member day: general opening `opens_at`; booking closes a day before the event, and
/// cancellation at the same time.
struct EventSpec {
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
    cancel_deadline: DateTime<Utc>,
    event_at: DateTime<Utc>,
    min_tier_id: Option<i64>,
    status: &'static str,
}

impl EventSpec {
    /// Open since an hour before `now`, closing in five days, the event in a week.
    fn open_at(now: DateTime<Utc>) -> Self {
        Self {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::days(5),
            cancel_deadline: now + Duration::days(5),
            event_at: now + Duration::days(7),
            min_tier_id: None,
            status: "published",
        }
    }
}

async fn create_event(app: &TestApp, store: i64, spec: &EventSpec) -> member_event::Model {
    let now = Utc::now();
    member_event::ActiveModel {
        store_id: Set(store),
        event_date: Set(app.state.settings.loyalty.calendar().date_of(spec.event_at)),
        title: Set("水光会员日".into()),
        description: Set(String::new()),
        opens_at: Set(spec.opens_at),
        closes_at: Set(spec.closes_at),
        cancel_deadline: Set(spec.cancel_deadline),
        min_tier_id: Set(spec.min_tier_id),
        points_bonus: Set(true),
        status: Set(spec.status.into()),
        cancel_reason: Set(None),
        created_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        published_at: Set((spec.status == "published").then_some(now)),
        cancelled_at: Set(None),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap()
}

async fn create_slot(
    app: &TestApp,
    event: &member_event::Model,
    starts_at: DateTime<Utc>,
    capacity: i32,
) -> i64 {
    let now = Utc::now();
    event_slot::ActiveModel {
        event_id: Set(event.id),
        starts_at: Set(starts_at),
        ends_at: Set(starts_at + Duration::hours(1)),
        service: Set("水光针".into()),
        capacity: Set(capacity),
        booked: Set(0),
        status: Set("open".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap()
    .id
}

/// A store, a published event open now (the clock pinned to a whole second) and one slot of
/// `capacity` places.
async fn open_slot(app: &TestApp, capacity: i32) -> (member_event::Model, i64) {
    let now = whole_second(Utc::now());
    app.state.clock.pin(now);
    let store = create_store(app, "静安店").await;
    let spec = EventSpec::open_at(now);
    let event = create_event(app, store, &spec).await;
    let slot = create_slot(app, &event, spec.event_at, capacity).await;
    (event, slot)
}

// ---------------------------------------------------------------- requests and reads

async fn book(m: &Booker, slot_id: i64) -> Reply {
    book_keyed(m, slot_id, &uuid::Uuid::new_v4().to_string()).await
}

async fn book_keyed(m: &Booker, slot_id: i64, key: &str) -> Reply {
    m.client
        .post_keyed("/api/v1/member/bookings", key, json!({"slot_id": slot_id}))
        .await
}

/// Books and asserts the 201; returns the booking.
async fn booked(m: &Booker, slot_id: i64) -> Value {
    let r = book(m, slot_id).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["booking"]["status"], "booked", "{r:?}");
    r.body["booking"].clone()
}

async fn cancel(m: &Booker, booking_id: i64) -> Reply {
    m.client
        .post(
            &format!("/api/v1/member/bookings/{booking_id}/cancel"),
            json!({}),
        )
        .await
}

async fn join_waitlist(m: &Booker, slot_id: i64) -> Reply {
    m.client
        .post("/api/v1/member/waitlist", json!({"slot_id": slot_id}))
        .await
}

async fn slot_row(app: &TestApp, slot_id: i64) -> event_slot::Model {
    event_slot::Entity::find_by_id(slot_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

async fn booking_row(app: &TestApp, id: i64) -> booking::Model {
    booking::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

/// The slot's bookings that hold a place (not cancelled).
async fn live_bookings(app: &TestApp, slot_id: i64) -> Vec<booking::Model> {
    booking::Entity::find()
        .filter(booking::Column::SlotId.eq(slot_id))
        .filter(booking::Column::Status.ne("cancelled"))
        .all(&app.state.db)
        .await
        .unwrap()
}

async fn entry_row(app: &TestApp, id: i64) -> waitlist_entry::Model {
    waitlist_entry::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

async fn outbox_of(app: &TestApp, kind: &str) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq(kind))
        .all(&app.state.db)
        .await
        .unwrap()
}

/// The slot's counter equals its live bookings, and no member holds two of them.
async fn assert_counter_consistent(app: &TestApp, slot_id: i64, expected: usize) {
    let slot = slot_row(app, slot_id).await;
    let live = live_bookings(app, slot_id).await;
    assert_eq!(live.len(), expected, "live bookings of slot {slot_id}");
    assert_eq!(
        slot.booked as usize, expected,
        "event_slot.booked of slot {slot_id}"
    );
    let members: HashSet<i64> = live.iter().map(|b| b.member_id).collect();
    assert_eq!(members.len(), live.len(), "a member holds two places");
}

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

// ---------------------------------------------------------------- 1. the stampede

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_members_racing_for_twenty_places_get_exactly_twenty() {
    const MEMBERS: usize = 300;
    const PLACES: i32 = 20;
    let app = spawn_app().await;
    let seeded_at = Instant::now();
    let crowd = members(&app, "rush", MEMBERS).await;
    let seeding = seeded_at.elapsed();
    let (_, slot) = open_slot(&app, PLACES).await;

    // Every request is built and waiting at the barrier before any is sent.
    let barrier = Arc::new(Barrier::new(MEMBERS));
    let raced_at = Instant::now();
    let tasks: Vec<_> = crowd
        .iter()
        .cloned()
        .map(|m| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let r = book(&m, slot).await;
                (m.member_id, r)
            })
        })
        .collect();
    let replies: Vec<(i64, Reply)> = join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();
    let race = raced_at.elapsed();
    eprintln!("seeded {MEMBERS} members in {seeding:?}; the race took {race:?}");

    let server_errors: Vec<&Reply> = replies
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.status >= 500)
        .collect();
    assert!(server_errors.is_empty(), "5xx: {server_errors:?}");
    let winners: Vec<&(i64, Reply)> = replies.iter().filter(|(_, r)| r.status == 201).collect();
    let refused: Vec<&(i64, Reply)> = replies
        .iter()
        .filter(|(_, r)| r.status == 409 && r.code() == "slot_full")
        .collect();
    let other: Vec<&Reply> = replies
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.status != 201 && !(r.status == 409 && r.code() == "slot_full"))
        .collect();
    assert!(other.is_empty(), "neither 201 nor slot_full: {other:?}");
    assert_eq!(winners.len(), PLACES as usize);
    assert_eq!(refused.len(), MEMBERS - PLACES as usize);

    // Each 201 names its own member's booking of this slot.
    let mut answered: HashMap<i64, i64> = HashMap::new();
    for (member_id, r) in &winners {
        let b = &r.body["booking"];
        assert_eq!(b["status"], "booked", "{r:?}");
        assert_eq!(b["via"], "member", "{r:?}");
        assert_eq!(b["slot_id"], slot, "{r:?}");
        assert!(b["code"].as_str().is_some_and(|c| c.starts_with('B')));
        answered.insert(id(b), *member_id);
    }

    assert_counter_consistent(&app, slot, PLACES as usize).await;
    let live = live_bookings(&app, slot).await;
    for b in &live {
        assert_eq!(b.status, "booked");
        assert_eq!(
            answered.get(&b.id),
            Some(&b.member_id),
            "booking {} was not answered to its member",
            b.id
        );
    }
    let all = booking::Entity::find()
        .filter(booking::Column::SlotId.eq(slot))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(all, PLACES as u64, "refused requests left bookings behind");

    let confirmed = outbox_of(&app, "booking_confirmed").await;
    assert_eq!(confirmed.len(), PLACES as usize);
    let codes: HashSet<String> = live.iter().map(|b| format!("booking:{}", b.code)).collect();
    let customers: HashSet<i64> = live.iter().map(|b| b.customer_id).collect();
    for msg in &confirmed {
        assert!(codes.contains(&msg.reference), "stray message {msg:?}");
        assert!(
            customers.contains(&msg.customer_id),
            "stray message {msg:?}"
        );
    }

    // The slot shows as full to everyone.
    let r = crowd[0]
        .client
        .get(&format!("/api/v1/member/events/{}", live[0].event_id))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["slots"][0]["booked"], PLACES);
    assert_eq!(r.body["slots"][0]["left"], 0);
    assert_eq!(r.body["slots"][0]["full"], true);
    assert_eq!(r.body["left"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_the_database_never_overbook() {
    const MEMBERS: usize = 80;
    const PLACES: i32 = 10;
    let app = spawn_app().await;
    let (_, slot) = open_slot(&app, PLACES).await;
    // A second server on the same database (and, on the Redis run, the same cache), as in a
    // deployment with two instances behind a load balancer. Its clock is the system's, and
    // the event is open by that too.
    let second = memberhub::startup::Application::build((*app.state.settings).clone())
        .await
        .unwrap();
    let second_url = format!("http://127.0.0.1:{}", second.port());
    let second_handle = second.handle();
    tokio::spawn(second.run_until_stopped());
    let mut crowd = members(&app, "pair", MEMBERS).await;
    for m in crowd.iter_mut().skip(1).step_by(2) {
        m.client.base = second_url.clone();
    }

    let barrier = Arc::new(Barrier::new(MEMBERS));
    let tasks: Vec<_> = crowd
        .iter()
        .cloned()
        .map(|m| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                book(&m, slot).await
            })
        })
        .collect();
    let replies: Vec<Reply> = join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();
    let by_status = |status: u16, code: Option<&str>| {
        replies
            .iter()
            .filter(|r| r.status == status && code.is_none_or(|c| r.code() == c))
            .count()
    };
    assert_eq!(by_status(201, None), PLACES as usize, "{replies:?}");
    assert_eq!(
        by_status(409, Some("slot_full")),
        MEMBERS - PLACES as usize,
        "{replies:?}"
    );
    assert_counter_consistent(&app, slot, PLACES as usize).await;
    second_handle.stop(true).await;
}

// ---------------------------------------------------------------- 2. one member, many taps

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_member_tapping_twenty_times_at_once_books_once() {
    let app = spawn_app().await;
    let (event, slot) = open_slot(&app, 50).await;
    let m = one_member(&app, "tap").await;

    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (m, barrier) = (m.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                book(&m, slot).await
            })
        })
        .collect();
    let replies: Vec<Reply> = join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "{replies:?}");
    let booking_id = id(&created[0].body["booking"]);
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409, "{r:?}");
        assert_eq!(r.code(), "already_booked", "{r:?}");
        // A refusal that names a booking names the one that exists.
        if let Some(named) = r.body["error"].get("booking_id") {
            assert_eq!(named, booking_id, "{r:?}");
        }
    }
    let mine = booking::Entity::find()
        .filter(booking::Column::MemberId.eq(m.member_id))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, booking_id);
    assert_counter_consistent(&app, slot, 1).await;
    assert_eq!(outbox_of(&app, "booking_confirmed").await.len(), 1);

    // A later tap on a fresh key names the booking the member holds.
    let r = book(&m, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "already_booked");
    assert_eq!(r.body["error"]["booking_id"], booking_id);

    // A retry with the same key replays the first answer and books nothing more.
    let other_slot = create_slot(&app, &event, event.opens_at + Duration::days(7), 5).await;
    let n = one_member(&app, "replay").await;
    let first = book_keyed(&n, slot, "retry-key-2").await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(first.headers.get("idempotent-replayed").is_none());
    for _ in 0..2 {
        let again = book_keyed(&n, slot, "retry-key-2").await;
        assert_eq!(again.status, 201, "{again:?}");
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok()),
            Some("true"),
            "{again:?}"
        );
        assert_eq!(again.body["booking"], first.body["booking"]);
    }
    // The same key with another slot is another request: refused, nothing booked.
    let reused = book_keyed(&n, other_slot, "retry-key-2").await;
    assert_eq!(reused.status, 422, "{reused:?}");
    assert_eq!(reused.code(), "idempotency_key_reused");
    assert_counter_consistent(&app, slot, 2).await;
    assert_counter_consistent(&app, other_slot, 0).await;
    assert_eq!(outbox_of(&app, "booking_confirmed").await.len(), 2);
}

/// Copies of one request (the same Idempotency-Key and body: a phone retrying on a timeout)
/// must all answer as the first did. A copy whose replay check runs just before the first
/// commits, and whose "already booked?" check just after, answers 409 `already_booked`
/// instead: the shortcuts in `member_book` run outside the idempotency record. Each round
/// sends eight copies at once for a fresh member; the straddle happens in most rounds on both
/// databases, and never once the handler is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_of_one_booking_request_sent_at_once_all_answer_with_the_booking() {
    let app = spawn_app().await;
    let (_, slot) = open_slot(&app, 100).await;
    let crowd = members(&app, "copies", 10).await;
    let mut straddled = Vec::new();
    for m in &crowd {
        let key = uuid::Uuid::new_v4().to_string();
        let barrier = Arc::new(Barrier::new(8));
        let copies: Vec<_> = (0..8)
            .map(|_| {
                let (m, key, barrier) = (m.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    book_keyed(&m, slot, &key).await
                })
            })
            .collect();
        let copies: Vec<Reply> = join_all(copies)
            .await
            .into_iter()
            .map(|t| t.unwrap())
            .collect();
        let first: Vec<&Reply> = copies
            .iter()
            .filter(|r| r.status == 201 && r.headers.get("idempotent-replayed").is_none())
            .collect();
        assert_eq!(first.len(), 1, "{copies:?}");
        let booking = &first[0].body["booking"];
        straddled.extend(
            copies
                .iter()
                .filter(|r| r.status != 201 || r.body["booking"] != *booking)
                .map(|r| format!("{r:?}")),
        );
    }
    // Whatever the copies answered, each member holds one booking.
    assert_counter_consistent(&app, slot, crowd.len()).await;
    assert!(
        straddled.is_empty(),
        "{} copies of a request that booked did not replay its answer: {straddled:?}",
        straddled.len()
    );
}

/// The slot's row held by another writer while `n` requests of `m` (each with its own key) arrive:
/// all pass the checks made before the write transaction (no booking exists yet) and queue on
/// the slot, so all but the first meet the unique index inside the transaction. Deterministic
/// on both databases: the write lock on SQLite, the row lock on PostgreSQL.
async fn taps_queued_behind_the_slot(app: &TestApp, m: &Booker, slot: i64, n: usize) -> Vec<Reply> {
    let txn = memberhub::db::begin_write(&app.state.db).await.unwrap();
    event_slot::Entity::update_many()
        .col_expr(event_slot::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(event_slot::Column::Id.eq(slot))
        .exec(&txn)
        .await
        .unwrap();
    let taps: Vec<_> = (0..n)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { book(&m, slot).await })
        })
        .collect();
    // Long enough for every request to reach the lock, well inside the busy timeout.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    txn.commit().await.unwrap();
    join_all(taps)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect()
}

/// The contract of `POST /member/bookings`: `already_booked` carries `booking_id`, so the
/// mini-program can open the booking the member already holds. It does when the booking
/// existed before the request; it does not when the request lost the race inside the write
/// transaction (`engine::book` answers `already_booked(None)`), which is exactly the double tap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_already_booked_refusal_names_the_booking_even_when_the_taps_raced() {
    let app = spawn_app().await;
    let (_, slot) = open_slot(&app, 10).await;
    let m = one_member(&app, "raced").await;

    let replies = taps_queued_behind_the_slot(&app, &m, slot, 3).await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "{replies:?}");
    let booking_id = id(&created[0].body["booking"]);
    assert_counter_consistent(&app, slot, 1).await;
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409, "{r:?}");
        assert_eq!(r.code(), "already_booked", "{r:?}");
        assert_eq!(
            r.body["error"]["booking_id"], booking_id,
            "already_booked without the booking it refers to: {r:?}"
        );
    }
}

// ---------------------------------------------------------------- 3. opening by tier

#[tokio::test]
async fn higher_tiers_open_earlier_by_the_server_clock_and_gates_hold() {
    let app = spawn_app().await;
    let store = create_store(&app, "静安店").await;
    // The general opening T, a whole second, ten days from now.
    let t = whole_second(Utc::now()) + Duration::days(10);
    let spec = EventSpec {
        opens_at: t,
        closes_at: t + Duration::days(1),
        cancel_deadline: t + Duration::days(1),
        event_at: t + Duration::days(2),
        min_tier_id: None,
        status: "published",
    };
    let event = create_event(&app, store, &spec).await;
    let slot = create_slot(&app, &event, spec.event_at, 10).await;

    let diamond = one_member(&app, "diamond").await;
    set_tier(&app, diamond.member_id, "diamond").await;
    let gold = one_member(&app, "gold").await;
    set_tier(&app, gold.member_id, "gold").await;
    let normal = one_member(&app, "normal").await;

    // A second before the diamond opening: refused, told their own opening.
    app.state
        .clock
        .pin(t - Duration::hours(72) - Duration::seconds(1));
    let r = book(&diamond, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "not_open_yet");
    assert_eq!(ts(&r.body["error"]["opens_at"]), t - Duration::hours(72));

    // T-72h: the diamond member books.
    app.state.clock.pin(t - Duration::hours(72));
    let b = booked(&diamond, slot).await;
    assert_eq!(b["event_id"], event.id);
    // A normal member is told T exactly.
    let r = book(&normal, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "not_open_yet");
    assert_eq!(ts(&r.body["error"]["opens_at"]), t);
    // The waitlist is behind the same gate.
    let r = join_waitlist(&normal, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "not_open_yet");

    // What each sees in the list: their own opening.
    let list = |m: Booker| async move {
        let r = m.client.get("/api/v1/member/events").await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(ts(&r.body["server_time"]), t - Duration::hours(72));
        let items = r.body["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{r:?}");
        items[0].clone()
    };
    let seen = list(gold.clone()).await;
    assert_eq!(ts(&seen["my_opens_at"]), t - Duration::hours(24));
    assert_eq!(ts(&seen["opens_at"]), t);
    assert_eq!(seen["open_now"], false);
    assert_eq!(seen["eligible"], true);
    assert_eq!(seen["store_id"], store);
    assert_eq!(seen["store_name"], "静安店");
    assert!(seen["my_booking"].is_null());
    let seen = list(normal.clone()).await;
    assert_eq!(ts(&seen["my_opens_at"]), t);
    let seen = list(diamond.clone()).await;
    assert_eq!(ts(&seen["my_opens_at"]), t - Duration::hours(72));
    assert_eq!(seen["open_now"], true);
    assert_eq!(seen["my_booking"]["id"], b["id"]);
    assert_eq!(seen["left"], 9);

    // Gold opens at T-24h, not a second before.
    app.state
        .clock
        .pin(t - Duration::hours(24) - Duration::seconds(1));
    let r = book(&gold, slot).await;
    assert_eq!(r.code(), "not_open_yet", "{r:?}");
    assert_eq!(ts(&r.body["error"]["opens_at"]), t - Duration::hours(24));

    // A second before T the normal member is still refused; at T they book.
    app.state.clock.pin(t - Duration::seconds(1));
    let r = book(&normal, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "not_open_yet");
    assert_eq!(ts(&r.body["error"]["opens_at"]), t);
    app.state.clock.pin(t);
    booked(&normal, slot).await;
    assert_counter_consistent(&app, slot, 2).await;

    // An event for platinum and above: a gold member is refused whatever the time.
    let platinum = tier_by_code(&app, "platinum").await;
    let vip = create_event(
        &app,
        store,
        &EventSpec {
            min_tier_id: Some(platinum.id),
            ..EventSpec::open_at(t)
        },
    )
    .await;
    let vip_slot = create_slot(&app, &vip, t + Duration::days(7), 5).await;
    let r = book(&gold, vip_slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "tier_too_low");
    assert_eq!(r.body["error"]["min_tier"], "platinum");
    let r = gold
        .client
        .get(&format!("/api/v1/member/events/{}", vip.id))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["eligible"], false);
    assert_eq!(r.body["open_now"], false);
    assert_eq!(r.body["min_tier_code"], "platinum");
    // The diamond member is above the minimum.
    booked(&diamond, vip_slot).await;

    // After closing time nobody books, however high their tier.
    app.state.clock.pin(spec.closes_at);
    let r = book(&gold, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "booking_closed");

    // A draft's slot is as missing as a slot that does not exist.
    app.state.clock.pin(t);
    let draft = create_event(
        &app,
        store,
        &EventSpec {
            status: "draft",
            ..EventSpec::open_at(t)
        },
    )
    .await;
    let draft_slot = create_slot(&app, &draft, t + Duration::days(7), 5).await;
    let r = book(&diamond, draft_slot).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = join_waitlist(&diamond, draft_slot).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = diamond
        .client
        .get(&format!("/api/v1/member/events/{}", draft.id))
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = diamond.client.get("/api/v1/member/events").await;
    let ids: Vec<i64> = r.body["items"].as_array().unwrap().iter().map(id).collect();
    assert!(!ids.contains(&draft.id), "{r:?}");

    assert_counter_consistent(&app, slot, 2).await;
    assert_counter_consistent(&app, vip_slot, 1).await;
    assert_counter_consistent(&app, draft_slot, 0).await;
    assert_eq!(outbox_of(&app, "booking_confirmed").await.len(), 3);
}

// ---------------------------------------------------------------- 4. waitlist

#[tokio::test]
async fn a_cancellation_promotes_the_first_waiting_member_once() {
    let app = spawn_app().await;
    let (event, slot) = open_slot(&app, 2).await;
    let crowd = members(&app, "wait", 4).await;
    let (a, b, c, d) = (&crowd[0], &crowd[1], &crowd[2], &crowd[3]);

    // With places free there is no waitlist.
    let r = join_waitlist(c, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "slot_available");

    let a_booking = id(&booked(a, slot).await);
    booked(b, slot).await;
    let r = book(c, slot).await;
    assert_eq!(r.code(), "slot_full", "{r:?}");
    // A member holding a place does not queue for it.
    let r = join_waitlist(a, slot).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "already_booked");

    let r = join_waitlist(c, slot).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["entry"]["status"], "waiting");
    assert_eq!(r.body["entry"]["position"], 1);
    let c_entry = id(&r.body["entry"]);
    let r = join_waitlist(d, slot).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["entry"]["position"], 2);
    let d_entry = id(&r.body["entry"]);
    // Joining again answers with the same entry.
    let r = join_waitlist(c, slot).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(id(&r.body["entry"]), c_entry);
    assert_eq!(r.body["entry"]["position"], 1);
    let r = d
        .client
        .get(&format!("/api/v1/member/events/{}", event.id))
        .await;
    assert_eq!(r.body["slots"][0]["my_waitlist"]["id"], d_entry, "{r:?}");
    assert_eq!(r.body["slots"][0]["my_waitlist"]["position"], 2);
    assert_eq!(r.body["slots"][0]["full"], true);

    // A cancels: the place goes to C.
    let r = cancel(a, a_booking).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["booking"]["status"], "cancelled");
    assert_eq!(booking_row(&app, a_booking).await.status, "cancelled");

    let c_bookings = booking::Entity::find()
        .filter(booking::Column::MemberId.eq(c.member_id))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(c_bookings.len(), 1);
    let c_booking = &c_bookings[0];
    assert_eq!(c_booking.status, "booked");
    assert_eq!(c_booking.via, "waitlist");
    assert_eq!(c_booking.slot_id, slot);
    let entry = entry_row(&app, c_entry).await;
    assert_eq!(entry.status, "promoted");
    assert_eq!(entry.booking_id, Some(c_booking.id));
    let promoted = outbox_of(&app, "waitlist_promoted").await;
    assert_eq!(promoted.len(), 1, "{promoted:?}");
    assert_eq!(promoted[0].customer_id, c.customer_id);
    assert_eq!(promoted[0].reference, format!("booking:{}", c_booking.code));
    // C sees it among their bookings and their entry as promoted.
    let r = c.client.get("/api/v1/member/bookings").await;
    assert_eq!(r.body["items"][0]["id"], c_booking.id, "{r:?}");
    assert_eq!(r.body["items"][0]["via"], "waitlist");
    let r = c.client.get("/api/v1/member/waitlist").await;
    assert_eq!(r.body["items"][0]["status"], "promoted", "{r:?}");
    assert_eq!(r.body["items"][0]["booking_id"], c_booking.id);

    // D moved up to first.
    assert_eq!(entry_row(&app, d_entry).await.status, "waiting");
    let r = d.client.get("/api/v1/member/waitlist").await;
    assert_eq!(r.body["items"][0]["id"], d_entry, "{r:?}");
    assert_eq!(r.body["items"][0]["position"], 1);
    assert_counter_consistent(&app, slot, 2).await;

    // Cancelling again is a no-op that answers as before.
    let r = cancel(a, a_booking).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["booking"]["status"], "cancelled");
    assert_eq!(entry_row(&app, d_entry).await.status, "waiting");
    assert_eq!(outbox_of(&app, "waitlist_promoted").await.len(), 1);
    assert_counter_consistent(&app, slot, 2).await;

    // After the deadline a member can no longer cancel; nothing moves.
    app.state.clock.pin(event.cancel_deadline);
    let r = cancel(c, c_booking.id).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "cancel_deadline_passed");
    assert_eq!(
        ts(&r.body["error"]["cancel_deadline"]),
        event.cancel_deadline
    );
    assert_eq!(booking_row(&app, c_booking.id).await.status, "booked");
    assert_eq!(entry_row(&app, d_entry).await.status, "waiting");
    assert_counter_consistent(&app, slot, 2).await;
    // A booking already cancelled still answers 200 after the deadline.
    let r = cancel(a, a_booking).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_freed_place_passes_over_members_who_left_or_booked_elsewhere_in_the_event() {
    let app = spawn_app().await;
    let (event, slot) = open_slot(&app, 1).await;
    let other_slot = create_slot(&app, &event, event.opens_at + Duration::days(8), 5).await;
    let crowd = members(&app, "pass", 4).await;
    let (a, leaver, elsewhere, next) = (&crowd[0], &crowd[1], &crowd[2], &crowd[3]);
    let a_booking = id(&booked(a, slot).await);
    let mut entries = Vec::new();
    for m in [leaver, elsewhere, next] {
        let r = join_waitlist(m, slot).await;
        assert_eq!(r.status, 201, "{r:?}");
        entries.push(id(&r.body["entry"]));
    }
    // The first leaves the waitlist; the second books another slot of the same event.
    let r = leaver
        .client
        .post(
            &format!("/api/v1/member/waitlist/{}/cancel", entries[0]),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["entry"]["status"], "left");
    let elsewhere_booking = id(&booked(elsewhere, other_slot).await);

    let r = cancel(a, a_booking).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(entry_row(&app, entries[0]).await.status, "left");
    assert_eq!(entry_row(&app, entries[1]).await.status, "skipped");
    let promoted = entry_row(&app, entries[2]).await;
    assert_eq!(promoted.status, "promoted");
    let b = booking_row(&app, promoted.booking_id.unwrap()).await;
    assert_eq!(
        (b.member_id, b.slot_id, b.via.as_str()),
        (next.member_id, slot, "waitlist")
    );
    // The member passed over keeps the one booking they chose.
    let theirs = booking::Entity::find()
        .filter(booking::Column::MemberId.eq(elsewhere.member_id))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].id, elsewhere_booking);
    let messages = outbox_of(&app, "waitlist_promoted").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].customer_id, next.customer_id);
    assert_counter_consistent(&app, slot, 1).await;
    assert_counter_consistent(&app, other_slot, 1).await;
}

// ---------------------------------------------------------------- 5. racing cancellations

/// A slot of two places held by the first two of `crowd`, the rest waiting in order.
async fn full_slot_with_queue(app: &TestApp, crowd: &[Booker]) -> (i64, Vec<i64>, Vec<i64>) {
    let (_, slot) = open_slot(app, 2).await;
    let mut bookings = Vec::new();
    for m in &crowd[..2] {
        bookings.push(id(&booked(m, slot).await));
    }
    let mut entries = Vec::new();
    for (i, m) in crowd[2..].iter().enumerate() {
        let r = join_waitlist(m, slot).await;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.body["entry"]["position"], i + 1);
        entries.push(id(&r.body["entry"]));
    }
    (slot, bookings, entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_cancellations_racing_promote_two_members_once_each() {
    let app = spawn_app().await;
    let crowd = members(&app, "race", 5).await;
    let (slot, bookings, entries) = full_slot_with_queue(&app, &crowd).await;

    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [0, 1]
        .into_iter()
        .map(|i| {
            let (m, barrier, b) = (crowd[i].clone(), barrier.clone(), bookings[i]);
            tokio::spawn(async move {
                barrier.wait().await;
                cancel(&m, b).await
            })
        })
        .collect();
    for r in join_all(tasks).await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["booking"]["status"], "cancelled");
    }

    // C and D promoted, once each; E still waits, now first.
    for (entry, m) in entries[..2].iter().zip(&crowd[2..4]) {
        let e = entry_row(&app, *entry).await;
        assert_eq!(e.status, "promoted");
        let theirs = booking::Entity::find()
            .filter(booking::Column::MemberId.eq(m.member_id))
            .all(&app.state.db)
            .await
            .unwrap();
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        assert_eq!(theirs[0].via, "waitlist");
        assert_eq!(e.booking_id, Some(theirs[0].id));
    }
    assert_eq!(entry_row(&app, entries[2]).await.status, "waiting");
    let r = crowd[4].client.get("/api/v1/member/waitlist").await;
    assert_eq!(r.body["items"][0]["position"], 1, "{r:?}");
    assert_eq!(outbox_of(&app, "waitlist_promoted").await.len(), 2);
    assert_counter_consistent(&app, slot, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_booking_cancelled_twice_at_once_promotes_once() {
    let app = spawn_app().await;
    let crowd = members(&app, "twice", 5).await;
    let (slot, bookings, entries) = full_slot_with_queue(&app, &crowd).await;

    let barrier = Arc::new(Barrier::new(4));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (m, barrier, b) = (crowd[0].clone(), barrier.clone(), bookings[0]);
            tokio::spawn(async move {
                barrier.wait().await;
                cancel(&m, b).await
            })
        })
        .collect();
    for r in join_all(tasks).await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["booking"]["status"], "cancelled");
    }

    assert_eq!(entry_row(&app, entries[0]).await.status, "promoted");
    assert_eq!(entry_row(&app, entries[1]).await.status, "waiting");
    assert_eq!(entry_row(&app, entries[2]).await.status, "waiting");
    let promoted = outbox_of(&app, "waitlist_promoted").await;
    assert_eq!(promoted.len(), 1, "{promoted:?}");
    assert_eq!(promoted[0].customer_id, crowd[2].customer_id);
    assert_eq!(booking_row(&app, bookings[1]).await.status, "booked");
    assert_counter_consistent(&app, slot, 2).await;
    let r = crowd[3].client.get("/api/v1/member/waitlist").await;
    assert_eq!(r.body["items"][0]["position"], 1, "{r:?}");
}

// ---------------------------------------------------------------- 6. other members' ids

#[tokio::test]
async fn a_member_cannot_touch_or_see_another_members_bookings() {
    let app = spawn_app().await;
    let (_, slot) = open_slot(&app, 1).await;
    let crowd = members(&app, "other", 3).await;
    let (x, y, z) = (&crowd[0], &crowd[1], &crowd[2]);

    let y_booking = id(&booked(y, slot).await);
    let r = join_waitlist(z, slot).await;
    assert_eq!(r.status, 201, "{r:?}");
    let z_entry = id(&r.body["entry"]);

    // X cancelling Y's booking: as if it did not exist.
    let r = cancel(x, y_booking).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.code(), "not_found");
    let row = booking_row(&app, y_booking).await;
    assert_eq!(row.status, "booked");
    assert!(row.cancelled_at.is_none());
    assert_eq!(entry_row(&app, z_entry).await.status, "waiting");
    assert_counter_consistent(&app, slot, 1).await;
    assert!(outbox_of(&app, "waitlist_promoted").await.is_empty());

    // X leaving Z's waitlist entry: the same.
    let r = x
        .client
        .post(
            &format!("/api/v1/member/waitlist/{z_entry}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(entry_row(&app, z_entry).await.status, "waiting");

    // X's lists hold nothing of theirs.
    let r = x.client.get("/api/v1/member/bookings").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"], json!([]));
    assert!(r.body["next_cursor"].is_null());
    let r = x.client.get("/api/v1/member/waitlist").await;
    assert_eq!(r.body["items"], json!([]), "{r:?}");
    // Y's own list has it.
    let r = y.client.get("/api/v1/member/bookings").await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{r:?}");
    assert_eq!(items[0]["id"], y_booking);

    // Z can leave their own entry, twice.
    for _ in 0..2 {
        let r = z
            .client
            .post(
                &format!("/api/v1/member/waitlist/{z_entry}/cancel"),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["entry"]["status"], "left");
    }
}

// ---------------------------------------------------------------- 7. bad input

#[tokio::test]
async fn bad_booking_requests_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (_, slot) = open_slot(&app, 5).await;
    let m = one_member(&app, "bad").await;

    let r = m
        .client
        .post("/api/v1/member/bookings", json!({"slot_id": slot}))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(r.body["error"]["field"], "Idempotency-Key");

    let r = book(&m, slot + 1000).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.code(), "not_found");

    let r = m
        .client
        .post_keyed(
            "/api/v1/member/bookings",
            "bad-body-1",
            json!({"slot_id": slot, "seats": 3}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), "invalid_body");
    let r = m
        .client
        .post_keyed("/api/v1/member/bookings", "bad-body-2", json!({}))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = m
        .client
        .post("/api/v1/member/waitlist", json!({"slot_id": slot, "x": 1}))
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // Without a session: 401, before anything else.
    let r = Reply::of(
        app.client
            .post(app.url("/api/v1/member/bookings"))
            .header("idempotency-key", "anon-1")
            .json(&json!({"slot_id": slot}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");

    assert_counter_consistent(&app, slot, 0).await;
    assert_eq!(
        booking::Entity::find().count(&app.state.db).await.unwrap(),
        0
    );
    assert_eq!(
        waitlist_entry::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        outbox_message::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        idempotency_key::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    // A failed request does not burn its key: the same key books once the body is right.
    let r = book_keyed(&m, slot, "bad-body-1").await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_counter_consistent(&app, slot, 1).await;
}
