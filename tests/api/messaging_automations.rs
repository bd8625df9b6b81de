//! The birthday and recall automations and the marketing guard rails: off until switched on per
//! store, idempotent for a date (run twice, sent once), once a year per birthday, no recall
//! within 90 days, consent and the 7-day cap enforced by the sender (transactional messages
//! exempt), vouchers only for those actually sent to, and the staff API that switches them.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{customer, outbox_message, voucher, wechat_account};
use memberhub::messaging::sender::{self, SendContext, SendReport};
use memberhub::outbox;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use crate::helpers::{
    chain, create_staff, create_store, customer_of_member, member_joined, run_job, spawn_app,
    staff_login_bearer, Chain, TestApp,
};

const BIRTHDAY: &str = "SBX-BIRTHDAY";
const RECALL: &str = "SBX-RECALL";
const BOOKING: &str = "SBX-BOOKING-CONFIRMED";

/// 12:00 in Shanghai on 2026-06-15: after the 10:00 the automations' messages are due at.
fn noon() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-15T04:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

async fn app() -> (TestApp, Chain) {
    let app = spawn_app().await;
    app.state.clock.pin(noon());
    let chain = chain(&app).await;
    (app, chain)
}

/// A member of `store` who accepted each of `templates` once; returns their customer id.
async fn customer(app: &TestApp, store: i64, openid: &str, phone: &str, templates: &[&str]) -> i64 {
    let (_, card) = member_joined(app, openid, phone).await;
    if !templates.is_empty() {
        let results: Vec<Value> = templates
            .iter()
            .map(|t| json!({"template_id": t, "status": "accept"}))
            .collect();
        let r = app
            .client
            .post(app.url("/__sandbox/wechat/control/subscribe"))
            .json(&json!({"openid": openid, "results": results}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let id = customer_of_member(app, card["member_id"].as_i64().unwrap()).await;
    customer::Entity::update_many()
        .col_expr(customer::Column::HomeStoreId, Expr::value(store))
        .filter(customer::Column::Id.eq(id))
        .exec(&app.state.db)
        .await
        .unwrap();
    id
}

async fn set_birthday(app: &TestApp, id: i64, birthday: &str) {
    let date = NaiveDate::parse_from_str(birthday, "%Y-%m-%d").unwrap();
    customer::Entity::update_many()
        .col_expr(customer::Column::Birthday, Expr::value(date))
        .filter(customer::Column::Id.eq(id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn set_last_visit(app: &TestApp, id: i64, days_ago: i64) {
    customer::Entity::update_many()
        .col_expr(
            customer::Column::LastVisitAt,
            Expr::value(noon() - Duration::days(days_ago)),
        )
        .filter(customer::Column::Id.eq(id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn withdraw_marketing_consent(app: &TestApp, id: i64) {
    wechat_account::Entity::update_many()
        .col_expr(wechat_account::Column::ConsentMarketing, Expr::value(false))
        .filter(wechat_account::Column::CustomerId.eq(id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn switch(chain: &Chain, store: i64, config: Value) {
    let r = chain
        .admin
        .put(&format!("/api/v1/staff/automations/{store}"), config)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn send(app: &TestApp) -> SendReport {
    sender::run_once(&SendContext::new(&app.state, "worker-a"))
        .await
        .unwrap()
}

async fn rows(app: &TestApp, kind: &str) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq(kind))
        .order_by_asc(outbox_message::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

async fn vouchers_of(app: &TestApp, id: i64) -> Vec<voucher::Model> {
    voucher::Entity::find()
        .filter(voucher::Column::CustomerId.eq(id))
        .all(&app.state.db)
        .await
        .unwrap()
}

async fn last_marketing_at(app: &TestApp, id: i64) -> Option<DateTime<Utc>> {
    customer::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .last_marketing_at
}

fn sandbox_sent(app: &TestApp) -> Vec<Value> {
    app.state.sandbox.as_ref().unwrap().sent()
}

#[tokio::test]
async fn birthday_greetings_are_off_until_switched_on_and_go_out_once() {
    let (app, chain) = app().await;
    let other = create_store(&app, "徐汇店").await;
    let alice = customer(&app, chain.store, "o-alice", "13800000001", &[BIRTHDAY]).await;
    let bob = customer(&app, other, "o-bob", "13800000002", &[BIRTHDAY]).await;
    let carol = customer(&app, chain.store, "o-carol", "13800000003", &[BIRTHDAY]).await;
    set_birthday(&app, alice, "1990-06-15").await;
    set_birthday(&app, bob, "1985-06-15").await;
    set_birthday(&app, carol, "1990-06-16").await;

    // Off by default: nothing queued.
    let counts = run_job(&app, "birthday-greetings", day()).await.counts;
    assert_eq!(counts["queued"], 0, "{counts:?}");
    assert!(rows(&app, "birthday").await.is_empty());

    // On for the first store only, with a voucher.
    switch(
        &chain,
        chain.store,
        json!({"birthday": {"enabled": true, "voucher": {"title": "生日护理体验券", "valid_days": 30}}}),
    )
    .await;
    let counts = run_job(&app, "birthday-greetings", day()).await.counts;
    assert_eq!(counts["queued"], 1, "{counts:?}");
    let again = run_job(&app, "birthday-greetings", day()).await.counts;
    assert_eq!(again["queued"], 0, "{again:?}");
    assert_eq!(again["already_queued"], 1, "{again:?}");
    let queued = rows(&app, "birthday").await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].customer_id, alice);
    assert_eq!(queued[0].reference, format!("birthday:{alice}:2026"));
    let payload: Value = serde_json::from_str(&queued[0].payload).unwrap();
    assert_eq!(payload["store_id"], chain.store);
    assert_eq!(payload["store_name"], "静安店");
    assert_eq!(payload["voucher_title"], "生日护理体验券");

    assert_eq!(send(&app).await.sent, 1);
    assert_eq!(send(&app).await.claimed, 0);
    let sent = sandbox_sent(&app);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["touser"], "o-alice");
    assert_eq!(sent[0]["template_id"], BIRTHDAY);

    // Run a third time after sending: still once.
    assert_eq!(
        run_job(&app, "birthday-greetings", day()).await.counts["queued"],
        0
    );
    assert_eq!(send(&app).await.claimed, 0);

    let vouchers = vouchers_of(&app, alice).await;
    assert_eq!(vouchers.len(), 1);
    assert_eq!(vouchers[0].source, "birthday");
    assert_eq!(vouchers[0].title, "生日护理体验券");
    assert_eq!(vouchers[0].store_id, Some(chain.store));
    assert_eq!(vouchers[0].expires_on, day() + Duration::days(30));
    assert!(vouchers_of(&app, bob).await.is_empty());
}

#[tokio::test]
async fn leap_day_birthdays_are_greeted_on_the_28th() {
    let (app, chain) = app().await;
    let dan = customer(&app, chain.store, "o-dan", "13800000004", &[]).await;
    set_birthday(&app, dan, "2000-02-29").await;
    switch(&chain, chain.store, json!({"birthday": {"enabled": true}})).await;
    let feb28 = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
    assert_eq!(
        run_job(&app, "birthday-greetings", feb28).await.counts["queued"],
        1
    );
    let queued = rows(&app, "birthday").await;
    assert_eq!(queued[0].reference, format!("birthday:{dan}:2026"));
}

#[tokio::test]
async fn only_consenting_customers_with_quota_are_sent_to_and_get_the_voucher() {
    let (app, chain) = app().await;
    let alice = customer(&app, chain.store, "o-alice", "13800000001", &[BIRTHDAY]).await;
    let dave = customer(&app, chain.store, "o-dave", "13800000004", &[BIRTHDAY]).await;
    let erin = customer(&app, chain.store, "o-erin", "13800000005", &[]).await;
    for c in [alice, dave, erin] {
        set_birthday(&app, c, "1992-06-15").await;
    }
    withdraw_marketing_consent(&app, dave).await;
    switch(
        &chain,
        chain.store,
        json!({"birthday": {"enabled": true, "voucher": {"title": "生日礼", "face_value_fen": 5000, "valid_days": 7}}}),
    )
    .await;
    assert_eq!(
        run_job(&app, "birthday-greetings", day()).await.counts["queued"],
        3
    );

    let report = send(&app).await;
    assert_eq!((report.sent, report.skipped), (1, 2), "{report:?}");
    let reasons: Vec<(i64, String, Option<String>)> = rows(&app, "birthday")
        .await
        .into_iter()
        .map(|r| (r.customer_id, r.status, r.reason))
        .collect();
    assert!(
        reasons.contains(&(alice, "sent".into(), None)),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(dave, "skipped".into(), Some("no_consent".into()))),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(erin, "skipped".into(), Some("no_quota".into()))),
        "{reasons:?}"
    );
    // Only the message to alice reached WeChat.
    assert_eq!(sandbox_sent(&app).len(), 1);

    let vouchers = vouchers_of(&app, alice).await;
    assert_eq!(vouchers.len(), 1);
    assert_eq!(vouchers[0].kind, "cash_voucher");
    assert_eq!(vouchers[0].face_value_fen, Some(5000));
    assert!(vouchers_of(&app, dave).await.is_empty());
    assert!(vouchers_of(&app, erin).await.is_empty());

    // The unsent ones did not use up their cap slot.
    assert!(last_marketing_at(&app, alice).await.is_some());
    assert_eq!(last_marketing_at(&app, dave).await, None);
    assert_eq!(last_marketing_at(&app, erin).await, None);
}

#[tokio::test]
async fn a_dormant_customer_is_recalled_at_most_once_in_90_days() {
    let (app, chain) = app().await;
    let frank = customer(&app, chain.store, "o-frank", "13800000006", &[RECALL]).await;
    let gina = customer(&app, chain.store, "o-gina", "13800000007", &[RECALL]).await;
    let _harry = customer(&app, chain.store, "o-harry", "13800000008", &[RECALL]).await;
    set_last_visit(&app, frank, 200).await;
    set_last_visit(&app, gina, 100).await;

    assert_eq!(
        run_job(&app, "recall", day()).await.counts["queued"],
        0,
        "off"
    );
    switch(
        &chain,
        chain.store,
        json!({"recall": {"enabled": true, "dormant_days": 180, "voucher": {"title": "回店礼", "valid_days": 30}}}),
    )
    .await;

    let counts = run_job(&app, "recall", day()).await.counts;
    assert_eq!(counts["queued"], 1, "{counts:?}");
    let queued = rows(&app, "recall").await;
    assert_eq!(queued[0].customer_id, frank);
    assert_eq!(queued[0].reference, format!("recall:{frank}:{}", day()));
    let payload: Value = serde_json::from_str(&queued[0].payload).unwrap();
    assert_eq!(
        payload["last_visit_date"],
        (day() - Duration::days(200)).to_string()
    );
    let again = run_job(&app, "recall", day()).await.counts;
    assert_eq!(again["queued"], 0, "{again:?}");
    assert_eq!(send(&app).await.sent, 1);
    let vouchers = vouchers_of(&app, frank).await;
    assert_eq!(vouchers.len(), 1);
    assert_eq!(vouchers[0].source, "comeback");

    // 30 days on: frank was recalled within 90 days; gina (130 days) is not dormant yet.
    app.state.clock.advance(Duration::days(30));
    let counts = run_job(&app, "recall", day() + Duration::days(30))
        .await
        .counts;
    assert_eq!(counts["queued"], 0, "{counts:?}");
    assert_eq!(counts["recently_recalled"], 1, "{counts:?}");

    // 91 days after the first recall: frank again, and gina (191 days) for the first time.
    app.state.clock.advance(Duration::days(61));
    let date = day() + Duration::days(91);
    let counts = run_job(&app, "recall", date).await.counts;
    assert_eq!(counts["queued"], 2, "{counts:?}");
    let frank_rows: Vec<String> = rows(&app, "recall")
        .await
        .into_iter()
        .filter(|r| r.customer_id == frank)
        .map(|r| r.reference)
        .collect();
    assert_eq!(
        frank_rows,
        [
            format!("recall:{frank}:{}", day()),
            format!("recall:{frank}:{date}")
        ]
    );
}

#[tokio::test]
async fn the_marketing_cap_holds_across_automations_and_spares_transactional_messages() {
    let (app, chain) = app().await;
    let alice = customer(
        &app,
        chain.store,
        "o-alice",
        "13800000001",
        &[BIRTHDAY, RECALL, BOOKING],
    )
    .await;
    set_birthday(&app, alice, "1990-06-15").await;
    set_last_visit(&app, alice, 400).await;
    switch(
        &chain,
        chain.store,
        json!({"birthday": {"enabled": true}, "recall": {"enabled": true, "dormant_days": 365}}),
    )
    .await;
    assert_eq!(
        run_job(&app, "birthday-greetings", day()).await.counts["queued"],
        1
    );
    assert_eq!(run_job(&app, "recall", day()).await.counts["queued"], 1);
    outbox::queue(
        &app.state.db,
        outbox::kind::BOOKING_CONFIRMED,
        alice,
        "booking:B0000001".into(),
        json!({"booking_code": "B0000001", "event_title": "六月会员日",
               "starts_at": "2026-06-20T07:00:00Z", "service": "光子嫩肤"}),
        app.state.clock.now(),
    )
    .await
    .unwrap();

    let report = send(&app).await;
    assert_eq!(
        (report.claimed, report.sent, report.skipped),
        (3, 2, 1),
        "{report:?}"
    );
    let birthday = &rows(&app, "birthday").await[0];
    let recall = &rows(&app, "recall").await[0];
    let booking = &rows(&app, "booking_confirmed").await[0];
    assert_eq!(birthday.status, "sent");
    assert_eq!(recall.status, "skipped");
    assert_eq!(recall.reason.as_deref(), Some("frequency_cap"));
    assert_eq!(booking.status, "sent", "transactional messages are exempt");
    let templates: Vec<String> = sandbox_sent(&app)
        .iter()
        .map(|m| m["template_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(templates, [BIRTHDAY, BOOKING]);
    assert!(last_marketing_at(&app, alice).await.is_some());
}

#[tokio::test]
async fn staff_switch_automations_within_their_reach() {
    let (app, chain) = app().await;
    let other = create_store(&app, "徐汇店").await;
    create_staff(&app, "boss-b", "manager", Some(other)).await;
    let manager = staff_login_bearer(&app, "boss-b").await;

    // Everything off by default, every store listed for an admin.
    let r = chain.admin.get("/api/v1/staff/automations").await;
    assert_eq!(r.status, 200, "{r:?}");
    let stores = r.body["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 2);
    assert_eq!(stores[0]["store_id"], chain.store);
    assert_eq!(stores[0]["config"]["birthday"]["enabled"], false);
    assert_eq!(stores[0]["config"]["recall"]["enabled"], false);
    assert_eq!(stores[0]["config"]["recall"]["dormant_days"], 180);

    let path = format!("/api/v1/staff/automations/{}", chain.store);
    let voucher = |v: Value| json!({"birthday": {"enabled": true, "voucher": v}});
    for (body, field) in [
        (
            json!({"recall": {"enabled": true, "dormant_days": 29}}),
            "recall.dormant_days",
        ),
        (
            json!({"recall": {"enabled": true, "dormant_days": 731}}),
            "recall.dormant_days",
        ),
        (
            voucher(json!({"title": " ", "valid_days": 30})),
            "birthday.voucher.title",
        ),
        (
            voucher(json!({"title": "券".repeat(21), "valid_days": 30})),
            "birthday.voucher.title",
        ),
        (
            voucher(json!({"title": "生日礼", "valid_days": 0})),
            "birthday.voucher.valid_days",
        ),
        (
            voucher(json!({"title": "生日礼", "valid_days": 366})),
            "birthday.voucher.valid_days",
        ),
        (
            voucher(json!({"title": "生日礼", "valid_days": 30, "face_value_fen": -1})),
            "birthday.voucher.face_value_fen",
        ),
    ] {
        let r = chain.admin.put(&path, body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {r:?}");
        assert_eq!(r.code(), "validation_failed", "{body} -> {r:?}");
        assert_eq!(r.body["error"]["field"], field, "{body} -> {r:?}");
    }
    let r = chain
        .admin
        .put(
            &path,
            json!({"birthday": {"enabled": true, "colour": "red"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = chain
        .admin
        .put("/api/v1/staff/automations/999999", json!({}))
        .await;
    assert_eq!(r.status, 404, "{r:?}");

    // A manager reaches their own store only; another store answers as if it did not exist.
    let r = manager
        .put(&path, json!({"birthday": {"enabled": true}}))
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = manager
        .put(
            &format!("/api/v1/staff/automations/{other}"),
            json!({"recall": {"enabled": true, "dormant_days": 90}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["config"]["recall"]["dormant_days"], 90);
    assert_eq!(r.body["config"]["birthday"]["enabled"], false);
    let r = manager.get("/api/v1/staff/automations").await;
    assert_eq!(r.status, 200, "{r:?}");
    let stores = r.body["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 1);
    assert_eq!(stores[0]["store_id"], other);
    assert_eq!(stores[0]["config"]["recall"]["enabled"], true);

    // The front desk cannot see or change them.
    assert_eq!(
        chain.desk.get("/api/v1/staff/automations").await.status,
        403
    );
    assert_eq!(chain.desk.put(&path, json!({})).await.status, 403);

    // The admin's save leaves the manager's store as it was, and both are audited.
    let r = chain
        .admin
        .put(
            &path,
            json!({"birthday": {"enabled": true, "voucher": {"title": " 生日礼 ", "valid_days": 30}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["config"]["birthday"]["voucher"]["title"], "生日礼");
    let r = chain.admin.get("/api/v1/staff/automations").await;
    let stores = r.body["stores"].as_array().unwrap();
    assert_eq!(stores[0]["config"]["birthday"]["enabled"], true);
    assert_eq!(stores[1]["config"]["recall"]["enabled"], true);
    let r = chain
        .admin
        .get("/api/v1/staff/audit-log?action=automation.update")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{r:?}");
    assert_eq!(
        outbox_message::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn the_marketing_cap_holds_across_a_campaign_and_an_automation() {
    let (app, chain) = app().await;
    let alice = customer(
        &app,
        chain.store,
        "o-alice",
        "13800000001",
        &[BIRTHDAY, RECALL],
    )
    .await;
    set_birthday(&app, alice, "1990-06-15").await;
    set_last_visit(&app, alice, 400).await;
    switch(&chain, chain.store, json!({"birthday": {"enabled": true}})).await;

    // Staff recall the store's dormant customers in the morning...
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "recall", "name": "回店", "store_id": chain.store, "audience": {}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    let s = chain
        .admin
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;
    assert_eq!(s.body["progress"]["total"], 1, "{s:?}");
    assert_eq!(send(&app).await.sent, 1);

    // ...and the birthday greeting of the same day finds her slot taken.
    assert_eq!(
        run_job(&app, "birthday-greetings", day()).await.counts["queued"],
        1
    );
    let report = send(&app).await;
    assert_eq!((report.sent, report.skipped), (0, 1), "{report:?}");
    let birthday = &rows(&app, "birthday").await[0];
    assert_eq!(birthday.reason.as_deref(), Some("frequency_cap"));

    // Eight days later the cap has passed: a new campaign reaches her again.
    app.state.clock.advance(chrono::Duration::days(8));
    let templates: Vec<String> = sandbox_sent(&app)
        .iter()
        .map(|m| m["template_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(templates, [RECALL]);
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "birthday", "name": "补发生日", "store_id": chain.store,
                   "audience": {"birthday_from": "06-01", "birthday_to": "06-30"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    chain
        .admin
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;
    assert_eq!(send(&app).await.sent, 1);
}
