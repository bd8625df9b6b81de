//! Staff side of member days: events and slots, store scope, capacity changes that promote the
//! waitlist, cancelling an event, check-in at the desk.

use chrono::{DateTime, Utc};
use entity::{booking, customer, event_slot, member, member_event, outbox_message, waitlist_entry};
use memberhub::booking::engine;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{json, Value};

use crate::helpers::{
    chain, create_staff, create_store, customer_of_member, member_joined, spawn_app,
    staff_login_bearer, Chain, StaffClient, TestApp,
};

/// The member day every test plans: a Saturday in Shanghai, far from the real date.
const DAY: &str = "2030-03-07";
/// 10:00 and 14:00 in Shanghai on DAY.
const MORNING: &str = "2030-03-07T02:00:00Z";
const AFTERNOON: &str = "2030-03-07T06:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn event_body(store: i64) -> Value {
    json!({
        "store_id": store,
        "event_date": DAY,
        "title": "  三月会员日  ",
        "description": "水光针体验专场",
        "opens_at": "2030-03-01T02:00:00Z",
        "closes_at": "2030-03-06T14:00:00Z",
        "cancel_deadline": "2030-03-06T10:00:00Z",
    })
}

/// `base` with `key` set to `value` (Null removes it).
fn with(mut base: Value, key: &str, value: Value) -> Value {
    if value.is_null() {
        base.as_object_mut().unwrap().remove(key);
    } else {
        base[key] = value;
    }
    base
}

async fn create_event(staff: &StaffClient, store: i64) -> i64 {
    let r = staff.post("/api/v1/staff/events", event_body(store)).await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["id"].as_i64().unwrap()
}

async fn add_slot(staff: &StaffClient, event: i64, starts_at: &str, capacity: i32) -> i64 {
    let ends_at = (at(starts_at) + chrono::Duration::hours(2)).to_rfc3339();
    let r = staff
        .post(
            &format!("/api/v1/staff/events/{event}/slots"),
            json!({"starts_at": starts_at, "ends_at": ends_at, "service": "水光针", "capacity": capacity}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["id"].as_i64().unwrap()
}

/// A published event of the chain's store with one morning slot of `capacity` places.
async fn published_event(c: &Chain, capacity: i32) -> (i64, i64) {
    let event = create_event(&c.admin, c.store).await;
    let slot = add_slot(&c.admin, event, MORNING, capacity).await;
    let r = c
        .admin
        .post(&format!("/api/v1/staff/events/{event}/publish"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    (event, slot)
}

async fn joined(app: &TestApp, n: u32) -> i64 {
    let (_, card) = member_joined(app, &format!("o-bs-{n}"), &format!("1360000{n:04}")).await;
    card["member_id"].as_i64().unwrap()
}

/// A member books through the engine, as the member endpoint would after its gate.
async fn book(app: &TestApp, slot: i64, member_id: i64) -> booking::Model {
    let target = engine::load_target(&app.state.db, slot).await.unwrap();
    let m = member::Entity::find_by_id(member_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let txn = memberhub::db::begin_write(&app.state.db).await.unwrap();
    let b = engine::book(&txn, &target, &m, Utc::now()).await.unwrap();
    txn.commit().await.unwrap();
    b
}

/// A member waiting for a place in `slot`, written directly.
async fn wait_for(app: &TestApp, event: i64, slot: i64, member_id: i64) -> waitlist_entry::Model {
    let now = Utc::now();
    waitlist_entry::ActiveModel {
        event_id: Set(event),
        slot_id: Set(slot),
        member_id: Set(member_id),
        customer_id: Set(customer_of_member(app, member_id).await),
        status: Set("waiting".into()),
        booking_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap()
}

async fn slot_row(app: &TestApp, slot: i64) -> event_slot::Model {
    event_slot::Entity::find_by_id(slot)
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

async fn messages(app: &TestApp, kind: &str) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq(kind))
        .order_by_asc(outbox_message::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn events_are_created_validated_published_and_edited() {
    let app = spawn_app().await;
    let c = chain(&app).await;

    // Each bad field is named.
    let long_title = "长".repeat(41);
    let long_text = "字".repeat(2001);
    let cases = [
        ("title", with(event_body(c.store), "title", json!("   "))),
        (
            "title",
            with(event_body(c.store), "title", json!(long_title)),
        ),
        (
            "description",
            with(event_body(c.store), "description", json!(long_text)),
        ),
        (
            "closes_at",
            with(
                event_body(c.store),
                "closes_at",
                json!("2030-03-01T02:00:00Z"),
            ),
        ),
        (
            "cancel_deadline",
            with(
                event_body(c.store),
                "cancel_deadline",
                json!("2030-02-28T02:00:00Z"),
            ),
        ),
        (
            "min_tier_code",
            with(event_body(c.store), "min_tier_code", json!("no-such-tier")),
        ),
        (
            "store_id",
            with(event_body(c.store), "store_id", json!(999_999)),
        ),
    ];
    for (field, body) in cases {
        let r = c.admin.post("/api/v1/staff/events", body).await;
        assert_eq!(r.status, 400, "{field}: {r:?}");
        assert_eq!(r.code(), "validation_failed", "{field}: {r:?}");
        assert_eq!(r.body["error"]["field"], field, "{r:?}");
    }
    let r = c
        .admin
        .post(
            "/api/v1/staff/events",
            with(event_body(c.store), "capacity", json!(3)),
        )
        .await;
    assert_eq!(r.status, 400, "unknown fields are refused: {r:?}");
    let r = c
        .admin
        .post(
            "/api/v1/staff/events",
            with(event_body(c.store), "title", Value::Null),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // The front desk reads member days but does not plan them.
    let r = c
        .desk
        .post("/api/v1/staff/events", event_body(c.store))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.code(), "permission_denied");

    let r = c
        .admin
        .post(
            "/api/v1/staff/events",
            with(event_body(c.store), "min_tier_code", json!("gold")),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let e = &r.body;
    let event = e["id"].as_i64().unwrap();
    assert_eq!(e["status"], "draft");
    assert_eq!(e["title"], "三月会员日", "trimmed");
    assert_eq!(e["event_date"], DAY);
    assert_eq!(e["min_tier_code"], "gold");
    assert_eq!(e["points_bonus"], true, "the bonus is on by default");
    assert_eq!(e["slots"], json!([]));
    assert_eq!(e["counts"]["booked"], 0);
    assert!(e["published_at"].is_null());

    // No slot, nothing to publish.
    let publish = format!("/api/v1/staff/events/{event}/publish");
    let r = c.admin.post(&publish, json!({})).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "no_slots");

    // Slots: on the event's business date (17:00 UTC on the 7th is the 8th in Shanghai).
    let slots = format!("/api/v1/staff/events/{event}/slots");
    let good = json!({"starts_at": MORNING, "ends_at": "2030-03-07T04:00:00Z", "service": "水光针", "capacity": 5});
    for (field, body) in [
        (
            "starts_at",
            with(good.clone(), "starts_at", json!("2030-03-07T17:00:00Z")),
        ),
        (
            "ends_at",
            with(good.clone(), "ends_at", json!("2030-03-07T01:00:00Z")),
        ),
        ("service", with(good.clone(), "service", json!(" "))),
        ("capacity", with(good.clone(), "capacity", json!(0))),
        ("capacity", with(good.clone(), "capacity", json!(10_001))),
    ] {
        let r = c.admin.post(&slots, body).await;
        assert_eq!(r.status, 400, "{field}: {r:?}");
        assert_eq!(r.body["error"]["field"], field, "{r:?}");
    }
    let r = c.desk.post(&slots, good.clone()).await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = c.admin.post(&slots, good.clone()).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["capacity"], 5);
    assert_eq!(r.body["left"], 5);
    assert_eq!(r.body["status"], "open");
    add_slot(&c.admin, event, AFTERNOON, 3).await;
    let r = c.desk.get(&slots).await;
    assert_eq!(r.status, 200, "{r:?}");
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["starts_at"], "2030-03-07T02:00:00Z");

    // Published once; again is a no-op.
    let r = c.admin.post(&publish, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "published");
    let published_at = r.body["published_at"].clone();
    assert!(published_at.is_string());
    let r = c.admin.post(&publish, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["published_at"], published_at);

    // Edits are checked on the merged event.
    let path = format!("/api/v1/staff/events/{event}");
    let r = c
        .admin
        .patch(&path, json!({"opens_at": "2030-03-06T15:00:00Z"}))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["error"]["field"], "closes_at");
    let r = c
        .admin
        .patch(&path, json!({"event_date": "2030-03-08"}))
        .await;
    assert_eq!(r.status, 400, "slots would fall off the day: {r:?}");
    assert_eq!(r.body["error"]["field"], "event_date");
    let r = c
        .admin
        .patch(
            &path,
            json!({"title": "春季会员日", "min_tier_code": null, "points_bonus": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["title"], "春季会员日");
    assert!(r.body["min_tier_code"].is_null());
    assert_eq!(r.body["points_bonus"], false);
    assert_eq!(r.body["description"], "水光针体验专场", "untouched");
    let r = c.admin.patch(&path, json!({"status": "draft"})).await;
    assert_eq!(r.status, 400, "{r:?}");

    // Detail and list.
    let r = c.desk.get(&path).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["slots"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["slots"][0]["waiting"], 0);
    let r = c.desk.get("/api/v1/staff/events?status=published").await;
    assert_eq!(r.status, 200, "{r:?}");
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{r:?}");
    assert_eq!(items[0]["id"], event);
    assert_eq!(items[0]["slots"], 2);
    assert_eq!(items[0]["capacity"], 8);
    assert_eq!(items[0]["booked"], 0);
    let r = c.desk.get("/api/v1/staff/events?status=draft").await;
    assert_eq!(r.body["items"], json!([]), "{r:?}");
    let r = c.desk.get("/api/v1/staff/events?from=2030-03-08").await;
    assert_eq!(r.body["items"], json!([]), "{r:?}");
    let r = c
        .desk
        .get("/api/v1/staff/events?from=2030-03-01&to=2030-03-07")
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{r:?}");
    let r = c.desk.get("/api/v1/staff/events?status=open").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["error"]["field"], "status");

    // A cancelled event takes no edits, slots or publishing.
    let r = c
        .admin
        .post(
            &format!("/api/v1/staff/events/{event}/cancel"),
            json!({"reason": "门店装修"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.admin.patch(&path, json!({"title": "再来"})).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "event_cancelled");
    let r = c.admin.post(&slots, good).await;
    assert_eq!(r.code(), "event_cancelled", "{r:?}");
    let r = c.admin.post(&publish, json!({})).await;
    assert_eq!(r.code(), "event_cancelled", "{r:?}");
    let r = c.desk.get("/api/v1/staff/events/999999").await;
    assert_eq!(r.status, 404, "{r:?}");
}

#[tokio::test]
async fn staff_of_another_store_see_nothing_of_this_stores_member_days() {
    let app = spawn_app().await;
    let c = chain(&app).await;
    let (event, slot) = published_event(&c, 5).await;
    let m = joined(&app, 1).await;
    let b = book(&app, slot, m).await;

    let other = create_store(&app, "徐汇店").await;
    create_staff(&app, "mgr-b", "manager", Some(other)).await;
    create_staff(&app, "desk-b", "front_desk", Some(other)).await;
    create_staff(&app, "mgr-a", "manager", Some(c.store)).await;
    let mgr_b = staff_login_bearer(&app, "mgr-b").await;
    let desk_b = staff_login_bearer(&app, "desk-b").await;
    let mgr_a = staff_login_bearer(&app, "mgr-a").await;

    for path in [
        format!("/api/v1/staff/events/{event}"),
        format!("/api/v1/staff/events/{event}/slots"),
        format!("/api/v1/staff/events/{event}/bookings"),
    ] {
        let r = mgr_b.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(r.code(), "not_found");
    }
    let r = mgr_b
        .patch(
            &format!("/api/v1/staff/events/{event}"),
            json!({"title": "改名"}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = mgr_b
        .patch(
            &format!("/api/v1/staff/events/{event}/slots/{slot}"),
            json!({"capacity": 50}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = mgr_b
        .post(
            &format!("/api/v1/staff/events/{event}/cancel"),
            json!({"reason": "不是我的"}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = mgr_b
        .post(
            &format!("/api/v1/staff/bookings/{}/cancel", b.id),
            json!({"reason": "不是我的"}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = desk_b
        .post(
            &format!("/api/v1/staff/bookings/{}/check-in", b.id),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = mgr_b.get("/api/v1/staff/events").await;
    assert_eq!(r.body["items"], json!([]), "{r:?}");
    let r = mgr_b
        .get(&format!("/api/v1/staff/events?store_id={}", c.store))
        .await;
    assert_eq!(r.body["items"], json!([]), "{r:?}");
    // Nor can they plan one for another store.
    let r = mgr_b
        .post("/api/v1/staff/events", event_body(c.store))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["error"]["field"], "store_id");
    let r = mgr_b.post("/api/v1/staff/events", event_body(other)).await;
    assert_eq!(r.status, 201, "{r:?}");

    // This store's manager does everything here; nothing changed meanwhile.
    assert_eq!(booking_row(&app, b.id).await.status, "booked");
    let r = mgr_a.get(&format!("/api/v1/staff/events/{event}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["title"], "三月会员日");
    assert_eq!(r.body["counts"]["booked"], 1);
    let r = mgr_a.get("/api/v1/staff/events").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{r:?}");
    let r = c.admin.get("/api/v1/staff/events").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{r:?}");
    let r = c
        .admin
        .get(&format!("/api/v1/staff/events?store_id={other}"))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{r:?}");
}

#[tokio::test]
async fn raising_capacity_promotes_the_waiting_and_lowering_below_booked_changes_nothing() {
    let app = spawn_app().await;
    let c = chain(&app).await;
    let (event, slot) = published_event(&c, 2).await;
    let (m1, m2, m3, m4) = (
        joined(&app, 1).await,
        joined(&app, 2).await,
        joined(&app, 3).await,
        joined(&app, 4).await,
    );
    book(&app, slot, m1).await;
    book(&app, slot, m2).await;
    let first = wait_for(&app, event, slot, m3).await;
    let second = wait_for(&app, event, slot, m4).await;
    let path = format!("/api/v1/staff/events/{event}/slots/{slot}");

    let r = c.admin.patch(&path, json!({"capacity": 1})).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "capacity_below_booked");
    assert_eq!(r.body["error"]["booked"], 2);
    let s = slot_row(&app, slot).await;
    assert_eq!((s.capacity, s.booked), (2, 2), "nothing changed");
    let r = c.admin.patch(&path, json!({"capacity": 0})).await;
    assert_eq!(r.body["error"]["field"], "capacity", "{r:?}");
    let r = c.desk.patch(&path, json!({"capacity": 3})).await;
    assert_eq!(r.status, 403, "{r:?}");

    // The waitlist and its positions, as the manager sees them.
    let r = c
        .desk
        .get(&format!("/api/v1/staff/events/{event}/bookings"))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let waitlist = r.body["waitlist"].as_array().unwrap();
    assert_eq!(waitlist.len(), 2);
    assert_eq!(waitlist[0]["id"], first.id);
    assert_eq!(waitlist[0]["position"], 1);
    assert_eq!(waitlist[1]["position"], 2);
    let r = c.desk.get(&format!("/api/v1/staff/events/{event}")).await;
    assert_eq!(r.body["slots"][0]["waiting"], 2, "{r:?}");
    assert_eq!(r.body["counts"]["waiting"], 2);

    // One more place goes to the first waiting member at once.
    let r = c
        .admin
        .patch(&path, json!({"capacity": 3, "service": "热玛吉体验"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["capacity"], 3);
    assert_eq!(r.body["booked"], 3);
    assert_eq!(r.body["left"], 0);
    assert_eq!(r.body["service"], "热玛吉体验");
    let entry = waitlist_entry::Entity::find_by_id(first.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.status, "promoted");
    let promoted = booking_row(&app, entry.booking_id.unwrap()).await;
    assert_eq!(
        (promoted.member_id, promoted.via.as_str()),
        (m3, "waitlist")
    );
    let still = waitlist_entry::Entity::find_by_id(second.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status, "waiting");
    let told = messages(&app, "waitlist_promoted").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].reference, format!("booking:{}", promoted.code));

    let r = c
        .desk
        .get(&format!(
            "/api/v1/staff/events/{event}/bookings?status=booked"
        ))
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{r:?}");
    assert_eq!(items[2]["via"], "waitlist");
    assert_eq!(items[2]["member_id"], m3);
    assert!(items[0]["member_no"].as_str().unwrap().starts_with("MH"));
    assert_eq!(items[0]["phone_masked"], "136****0001");
    assert!(!r.text.contains("13600000001"), "no full phone");
    assert_eq!(r.body["waitlist"][0]["status"], "promoted");
    assert!(r.body["waitlist"][0]["position"].is_null());
    assert_eq!(r.body["waitlist"][1]["position"], 1);
    let r = c
        .desk
        .get(&format!(
            "/api/v1/staff/events/{event}/bookings?status=gone"
        ))
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // Moving the slot off the event's day is refused; lowering to what is taken is fine.
    let r = c
        .admin
        .patch(&path, json!({"starts_at": "2030-03-08T02:00:00Z"}))
        .await;
    assert_eq!(r.body["error"]["field"], "starts_at", "{r:?}");
    let r = c.admin.patch(&path, json!({"capacity": 3})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c
        .admin
        .patch(
            &format!("/api/v1/staff/events/{event}/slots/999999"),
            json!({"capacity": 3}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");

    // A staff cancellation frees a place for the next in line.
    let victim = booking::Entity::find()
        .filter(booking::Column::MemberId.eq(m1))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let cancel = format!("/api/v1/staff/bookings/{}/cancel", victim.id);
    let r = c.desk.post(&cancel, json!({"reason": "顾客来电"})).await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = c.admin.post(&cancel, json!({"reason": ""})).await;
    assert_eq!(r.body["error"]["field"], "reason", "{r:?}");
    let r = c
        .admin
        .post(&cancel, json!({"reason": "顾客来电改期"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["booking"]["status"], "cancelled");
    assert_eq!(r.body["booking"]["cancelled_by"], "staff");
    assert_eq!(r.body["changed"], true);
    assert_eq!(r.body["promoted_booking_ids"].as_array().unwrap().len(), 1);
    let r = c.admin.post(&cancel, json!({"reason": "再点一次"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["changed"], false);
    let s = slot_row(&app, slot).await;
    assert_eq!((s.capacity, s.booked), (3, 3));
    // The member is told once, with the first reason.
    let told = entity::outbox_message::Entity::find()
        .filter(entity::outbox_message::Column::Kind.eq("booking_cancelled"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].customer_id, victim.customer_id);
    assert!(told[0].payload.contains("顾客来电改期"));
}

#[tokio::test]
async fn cancelling_an_event_cancels_its_bookings_and_tells_each_member_once() {
    let app = spawn_app().await;
    let c = chain(&app).await;
    let (event, morning) = published_event(&c, 1).await;
    let afternoon = add_slot(&c.admin, event, AFTERNOON, 5).await;
    let (m1, m2, m3, m4) = (
        joined(&app, 1).await,
        joined(&app, 2).await,
        joined(&app, 3).await,
        joined(&app, 4).await,
    );
    let b1 = book(&app, morning, m1).await;
    let b2 = book(&app, afternoon, m2).await;
    let b3 = book(&app, afternoon, m3).await;
    let waiting = wait_for(&app, event, morning, m4).await;
    // One member is already in the chair: their visit stands.
    app.state.clock.pin(at("2030-03-07T02:30:00Z"));
    let r = c
        .desk
        .post(
            &format!("/api/v1/staff/bookings/{}/check-in", b3.id),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let path = format!("/api/v1/staff/events/{event}/cancel");
    let r = c.admin.post(&path, json!({})).await;
    assert_eq!(r.status, 400, "the reason is required: {r:?}");
    let r = c.admin.post(&path, json!({"reason": " "})).await;
    assert_eq!(r.body["error"]["field"], "reason", "{r:?}");
    let r = c.desk.post(&path, json!({"reason": "台风"})).await;
    assert_eq!(r.status, 403, "{r:?}");

    let r = c.admin.post(&path, json!({"reason": "台风停业"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["cancel_reason"], "台风停业");
    assert_eq!(r.body["bookings_cancelled"], 2);
    assert_eq!(r.body["counts"]["cancelled"], 2);
    assert_eq!(r.body["counts"]["checked_in"], 1);
    assert_eq!(r.body["counts"]["waiting"], 0);
    assert!(r.body["cancelled_at"].is_string());

    for b in [&b1, &b2] {
        let row = booking_row(&app, b.id).await;
        assert_eq!(row.status, "cancelled");
        assert_eq!(row.cancelled_by.as_deref(), Some("event"));
        assert!(row.cancelled_at.is_some());
    }
    assert_eq!(booking_row(&app, b3.id).await.status, "checked_in");
    for s in [morning, afternoon] {
        let row = slot_row(&app, s).await;
        assert_eq!((row.status.as_str(), row.booked), ("cancelled", 0));
    }
    let entry = waitlist_entry::Entity::find_by_id(waiting.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.status, "cancelled");
    let told = messages(&app, "event_cancelled").await;
    let mut refs: Vec<&str> = told.iter().map(|m| m.reference.as_str()).collect();
    refs.sort_unstable();
    let mut want = vec![
        format!("booking:{}", b1.code),
        format!("booking:{}", b2.code),
    ];
    want.sort_unstable();
    assert_eq!(refs, want);
    let payload: Value = serde_json::from_str(
        &told
            .iter()
            .find(|m| m.reference == format!("booking:{}", b1.code))
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(payload["member_id"], m1);
    assert_eq!(payload["booking_code"], b1.code);
    assert_eq!(payload["event_id"], event);
    assert_eq!(payload["event_title"], "三月会员日");
    assert_eq!(payload["store_id"], c.store);
    assert_eq!(payload["slot_id"], morning);
    assert_eq!(payload["starts_at"], "2030-03-07T02:00:00Z");
    assert_eq!(payload["reason"], "台风停业");

    // Twice is a no-op: same event, no new messages.
    let r = c.admin.post(&path, json!({"reason": "再次取消"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["bookings_cancelled"], 0);
    assert_eq!(r.body["cancel_reason"], "台风停业");
    assert_eq!(messages(&app, "event_cancelled").await.len(), 2);
    let e = member_event::Entity::find_by_id(event)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.status, "cancelled");
    let r = c.desk.get("/api/v1/staff/events?status=cancelled").await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{r:?}");
    assert_eq!(items[0]["booked"], 0);
}

#[tokio::test]
async fn the_desk_checks_members_in_by_id_or_code_on_the_event_day_only() {
    let app = spawn_app().await;
    let c = chain(&app).await;
    let (_, slot) = published_event(&c, 5).await;
    let (m1, m2, m3, m4) = (
        joined(&app, 1).await,
        joined(&app, 2).await,
        joined(&app, 3).await,
        joined(&app, 4).await,
    );
    let b1 = book(&app, slot, m1).await;
    let b2 = book(&app, slot, m2).await;
    let b3 = book(&app, slot, m3).await;
    let b4 = book(&app, slot, m4).await;
    let check_in = |key: String| format!("/api/v1/staff/bookings/{key}/check-in");

    // The day before (23:30 in Shanghai), and the day after.
    app.state.clock.pin(at("2030-03-06T15:30:00Z"));
    let r = c.desk.post(&check_in(b1.id.to_string()), json!({})).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "not_event_day");
    assert_eq!(r.body["error"]["event_date"], DAY);
    app.state.clock.pin(at("2030-03-07T16:00:00Z"));
    let r = c.desk.post(&check_in(b1.id.to_string()), json!({})).await;
    assert_eq!(r.code(), "not_event_day", "{r:?}");
    assert_eq!(booking_row(&app, b1.id).await.status, "booked");

    // 00:30 on the day in Shanghai is the day, though UTC still says the 6th.
    app.state.clock.pin(at("2030-03-06T16:30:00Z"));
    let r = c.desk.post(&check_in(b1.id.to_string()), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "checked_in");
    assert_eq!(r.body["checked_in_at"], "2030-03-06T16:30:00Z");
    assert_eq!(r.body["code"], b1.code);
    assert_eq!(r.body["service"], "水光针");
    assert!(r.body["checked_in_by"].is_i64());
    let r = c.desk.post(&check_in(b1.id.to_string()), json!({})).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.code(), "already_checked_in");

    // By the code the member shows, typed in lower case.
    app.state.clock.pin(at("2030-03-07T02:10:00Z"));
    let r = c
        .desk
        .post(&check_in(b2.code.to_ascii_lowercase()), json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["id"], b2.id);
    let r = c.desk.post(&check_in(b2.code.clone()), json!({})).await;
    assert_eq!(r.code(), "already_checked_in", "{r:?}");

    // Cancelled and no-show bookings are not checked in.
    let r = c
        .admin
        .post(
            &format!("/api/v1/staff/bookings/{}/cancel", b3.id),
            json!({"reason": "顾客改期"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.desk.post(&check_in(b3.id.to_string()), json!({})).await;
    assert_eq!(r.code(), "booking_cancelled", "{r:?}");
    booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::value("no_show"))
        .col_expr(booking::Column::NoShowAt, Expr::value(Utc::now()))
        .filter(booking::Column::Id.eq(b4.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    let r = c.desk.post(&check_in(b4.id.to_string()), json!({})).await;
    assert_eq!(r.code(), "marked_no_show", "{r:?}");
    // A checked-in booking is not the staff's to cancel.
    let r = c
        .admin
        .post(
            &format!("/api/v1/staff/bookings/{}/cancel", b1.id),
            json!({"reason": "误操作"}),
        )
        .await;
    assert_eq!(r.code(), "not_cancellable", "{r:?}");

    // Unknown ids and codes, and another store's desk, find nothing.
    for key in ["999999", "BZZZZZZZZZ", "b-1", "99999999999999999999999"] {
        let r = c.desk.post(&check_in(key.to_string()), json!({})).await;
        assert_eq!(r.status, 404, "{key}: {r:?}");
    }
    let other = create_store(&app, "徐汇店").await;
    create_staff(&app, "desk-b", "front_desk", Some(other)).await;
    create_staff(&app, "consultant-a", "consultant", Some(c.store)).await;
    let desk_b = staff_login_bearer(&app, "desk-b").await;
    let consultant = staff_login_bearer(&app, "consultant-a").await;
    let r = desk_b.post(&check_in(b2.code.clone()), json!({})).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = consultant.post(&check_in(b2.code.clone()), json!({})).await;
    assert_eq!(r.status, 403, "consultants do not check in: {r:?}");

    // The audit trail has the check-ins.
    let audited = entity::audit_log::Entity::find()
        .filter(entity::audit_log::Column::Action.eq("booking.check_in"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(audited.len(), 2);
}

#[tokio::test]
async fn no_shows_are_on_the_customer_detail() {
    let app = spawn_app().await;
    let c = chain(&app).await;
    let m = joined(&app, 1).await;
    let customer_id = customer_of_member(&app, m).await;
    let r = c
        .admin
        .get(&format!("/api/v1/staff/customers/{customer_id}"))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["no_show_count"], 0);
    customer::Entity::update_many()
        .col_expr(customer::Column::NoShowCount, Expr::value(2))
        .filter(customer::Column::Id.eq(customer_id))
        .exec(&app.state.db)
        .await
        .unwrap();
    let r = c
        .admin
        .get(&format!("/api/v1/staff/customers/{customer_id}"))
        .await;
    assert_eq!(r.body["no_show_count"], 2, "{r:?}");
}
