//! Campaigns: an audience materialised as outbox rows (once, however often it is started),
//! sent by the ordinary sender with its guard rails (no quota: skipped without a WeChat call;
//! the voucher only for those sent to), paused, resumed and cancelled, with preview, progress
//! and conversion, for a manager's store or the chain.

use chrono::{DateTime, Duration, Utc};
use entity::{customer, outbox_message, subscription_quota, voucher, wechat_account};
use memberhub::messaging::sender::{self, SendContext};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Value};

use crate::helpers::{
    chain, create_staff, create_store, spawn_app_with, staff_login_bearer, Chain, TestApp,
};

const RECALL: &str = "SBX-RECALL";

/// The clock is pinned at the real present: consumptions recorded through the staff API are
/// stamped with the real time, and conversion compares them with the pinned send time.
fn now() -> DateTime<Utc> {
    Utc::now()
}

async fn app(batch: u32) -> (TestApp, Chain) {
    let app = spawn_app_with(|s| {
        s.messaging.rate_per_second = 10_000;
        s.messaging.batch = batch;
    })
    .await;
    app.state.clock.pin(now());
    let chain = chain(&app).await;
    (app, chain)
}

/// `n` customers of `store` with a consenting mini-program account, last seen `days_ago`;
/// the first `with_quota` of them accepted the recall template once (in the database and in
/// the sandbox, as a real accept does). Returns their ids.
async fn customers(
    app: &TestApp,
    store: i64,
    prefix: &str,
    n: usize,
    with_quota: usize,
    days_ago: i64,
) -> Vec<i64> {
    let now = app.state.clock.now();
    let appid = app.state.wechat.appid().to_string();
    let sandbox = app.state.sandbox.as_ref().unwrap();
    let txn = memberhub::db::begin_write(&app.state.db).await.unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = customer::Entity::insert(customer::ActiveModel {
            name: Set(Some(format!("{prefix}{i}"))),
            source: Set("wechat".into()),
            home_store_id: Set(Some(store)),
            last_visit_at: Set(Some(now - Duration::days(days_ago))),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await
        .unwrap()
        .last_insert_id;
        let openid = format!("o-{prefix}-{i}");
        // The sandbox knows a user once they have signed in.
        sandbox.add_login_code(&format!("code-{openid}"), &openid, None, false);
        let account = wechat_account::ActiveModel {
            appid: Set(appid.clone()),
            openid: Set(openid.clone()),
            unionid: Set(None),
            session_key_enc: Set(None),
            customer_id: Set(Some(id)),
            referral_code: Set(format!("{}{i:05}", prefix.to_uppercase())),
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
        if i < with_quota {
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
            sandbox.record_subscriptions(&openid, &[(RECALL.to_string(), "accept".to_string())]);
        }
        ids.push(id);
    }
    txn.commit().await.unwrap();
    ids
}

/// Runs the sender until it finds nothing due.
async fn drain(app: &TestApp) -> u32 {
    let mut sent = 0;
    loop {
        let r = sender::run_once(&SendContext::new(&app.state, "worker-a"))
            .await
            .unwrap();
        sent += r.sent;
        if r.claimed == 0 {
            return sent;
        }
    }
}

async fn send_once(app: &TestApp) -> u32 {
    sender::run_once(&SendContext::new(&app.state, "worker-a"))
        .await
        .unwrap()
        .sent
}

fn count(detail: &Value, status: &str) -> i64 {
    detail["progress"]["by_status"][status]
        .as_i64()
        .unwrap_or(0)
}

fn outcome(detail: &Value, status: &str, reason: &str) -> i64 {
    detail["progress"]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["status"] == status && o["reason"] == reason)
        .map_or(0, |o| o["count"].as_i64().unwrap())
}

#[tokio::test]
async fn a_campaign_sends_to_those_with_quota_and_skips_the_rest() {
    let (app, chain) = app(50).await;
    create_staff(&app, "mgr", "manager", Some(chain.store)).await;
    let mgr = staff_login_bearer(&app, "mgr").await;
    let other = create_store(&app, "徐汇店").await;
    let ids = customers(&app, chain.store, "dorm", 1000, 600, 200).await;
    // Outside the audience: seen recently, or another store's.
    customers(&app, chain.store, "fresh", 1, 1, 10).await;
    customers(&app, other, "away", 1, 1, 200).await;

    let r = mgr
        .post(
            "/api/v1/staff/campaigns",
            json!({
                "kind": "recall",
                "name": "秋季回店",
                "audience": {},
                "voucher": {"title": "回店礼", "face_value_fen": 3000, "valid_days": 30},
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["store_id"], chain.store);
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["audience"]["dormant_days"], 180);

    let p = mgr
        .post(&format!("/api/v1/staff/campaigns/{id}/preview"), json!({}))
        .await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(p.body["audience"], 1000);
    assert_eq!(p.body["with_account"], 1000);
    assert_eq!(p.body["consented"], 1000);
    assert_eq!(p.body["with_quota"], 600);
    assert_eq!(p.body["reachable"], 600);
    assert_eq!(p.body["template_id"], RECALL);
    let samples = p.body["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0]["customer_id"], ids[0]);
    assert_eq!(samples[0]["items"][0]["value"], "dorm0，好久不见");
    assert!(samples[0]["error"].is_null());
    // A preview writes nothing.
    assert_eq!(
        outbox_message::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );

    let s = mgr
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;
    assert_eq!(s.status, 200, "{s:?}");
    assert_eq!(s.body["status"], "running");
    assert_eq!(s.body["progress"]["total"], 1000);
    assert_eq!(count(&s.body, "pending"), 1000);
    let again = mgr
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(
        again.body["progress"]["total"], 1000,
        "starting twice adds nothing"
    );
    let row = outbox_message::Entity::find()
        .filter(outbox_message::Column::CustomerId.eq(ids[0]))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.reference, format!("campaign:{id}:{}", ids[0]));
    assert_eq!(row.campaign_id, Some(id));
    assert_eq!(row.kind, "recall");

    assert_eq!(drain(&app).await, 600);
    let sent = app.state.sandbox.as_ref().unwrap().sent();
    assert_eq!(
        sent.len(),
        600,
        "exactly one WeChat call per customer with quota"
    );
    assert_eq!(
        app.state
            .sandbox
            .as_ref()
            .unwrap()
            .calls("/cgi-bin/message/subscribe/send"),
        600,
        "no call for the 400 without quota"
    );
    let d = mgr.get(&format!("/api/v1/staff/campaigns/{id}")).await;
    assert_eq!(d.status, 200, "{d:?}");
    assert_eq!(count(&d.body, "sent"), 600);
    assert_eq!(count(&d.body, "skipped"), 400);
    assert_eq!(outcome(&d.body, "skipped", "no_quota"), 400);
    assert_eq!(d.body["status"], "completed");
    assert!(d.body["completed_at"].is_string());
    assert_eq!(d.body["progress"]["converted"], 0);

    // Vouchers only for those sent to (a recall's voucher is a comeback gift, 回店礼).
    let vouchers = voucher::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(vouchers.len(), 600);
    assert!(vouchers
        .iter()
        .all(|v| ids[..600].contains(&v.customer_id) && v.source == "comeback"));

    // One of them comes back within 30 days: converted. One who was skipped does not count.
    chain.consume(ids[0], "CAMP-1", 20_000).await;
    chain.consume(ids[999], "CAMP-2", 20_000).await;
    let d = mgr.get(&format!("/api/v1/staff/campaigns/{id}")).await;
    assert_eq!(d.body["progress"]["converted"], 1, "{d:?}");

    let list = mgr.get("/api/v1/staff/campaigns").await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["campaigns"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["campaigns"][0]["status"], "completed");
}

#[tokio::test]
async fn pause_stops_sending_resume_continues_and_cancel_ends_it() {
    let (app, chain) = app(4).await;
    customers(&app, chain.store, "p", 10, 10, 200).await;
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "recall", "name": "回店", "store_id": chain.store, "audience": {"dormant_days": 90}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    let path = |action: &str| format!("/api/v1/staff/campaigns/{id}/{action}");
    assert_eq!(
        chain.admin.post(&path("start"), json!({})).await.status,
        200
    );
    assert_eq!(send_once(&app).await, 4);

    let p = chain.admin.post(&path("pause"), json!({})).await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(p.body["status"], "paused");
    assert_eq!(count(&p.body, "paused"), 6);
    assert_eq!(drain(&app).await, 0, "paused rows are not sent");
    // Pausing twice: not running any more.
    assert_eq!(
        chain.admin.post(&path("pause"), json!({})).await.status,
        409
    );
    assert_eq!(
        chain.admin.post(&path("start"), json!({})).await.status,
        409
    );

    let r = chain.admin.post(&path("resume"), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "running");
    assert_eq!(count(&r.body, "pending"), 6);
    assert_eq!(send_once(&app).await, 4);

    let c = chain.admin.post(&path("cancel"), json!({})).await;
    assert_eq!(c.status, 200, "{c:?}");
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(count(&c.body, "cancelled"), 2);
    assert_eq!(count(&c.body, "sent"), 8);
    assert_eq!(drain(&app).await, 0);
    assert_eq!(app.state.sandbox.as_ref().unwrap().sent().len(), 8);
    assert_eq!(
        chain.admin.post(&path("cancel"), json!({})).await.status,
        409
    );
    assert_eq!(
        chain.admin.post(&path("resume"), json!({})).await.status,
        409
    );
}

#[tokio::test]
async fn a_scheduled_campaign_waits_for_its_time() {
    let (app, chain) = app(50).await;
    customers(&app, chain.store, "s", 3, 3, 200).await;
    let at = app.state.clock.now() + Duration::hours(2);
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "recall", "name": "定时", "store_id": chain.store, "scheduled_at": at.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    let s = chain
        .admin
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;
    assert_eq!(s.body["status"], "scheduled", "{s:?}");
    assert_eq!(drain(&app).await, 0);
    app.state.clock.pin(at + Duration::minutes(1));
    assert_eq!(drain(&app).await, 3);
    // The list says what the detail would, without the detail being read first.
    let list = chain.admin.get("/api/v1/staff/campaigns").await;
    assert_eq!(list.body["campaigns"][0]["status"], "completed", "{list:?}");
    assert!(list.body["campaigns"][0]["progress"].is_null());
    let d = chain
        .admin
        .get(&format!("/api/v1/staff/campaigns/{id}"))
        .await;
    assert_eq!(d.body["status"], "completed", "{d:?}");
}

#[tokio::test]
async fn campaigns_are_for_managers_of_their_store_and_admins_and_are_validated() {
    let (app, chain) = app(50).await;
    let other = create_store(&app, "徐汇店").await;
    create_staff(&app, "mgr", "manager", Some(chain.store)).await;
    create_staff(&app, "mgr2", "manager", Some(other)).await;
    let mgr = staff_login_bearer(&app, "mgr").await;
    let mgr2 = staff_login_bearer(&app, "mgr2").await;

    let r = mgr
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "custom", "name": "店庆", "audience": {"tags": ["VIP"], "members_only": true}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();

    // The desk may not; another store's manager does not see it.
    assert_eq!(chain.desk.get("/api/v1/staff/campaigns").await.status, 403);
    assert_eq!(
        chain
            .desk
            .post(
                "/api/v1/staff/campaigns",
                json!({"kind": "custom", "name": "x"})
            )
            .await
            .status,
        403
    );
    let url = format!("/api/v1/staff/campaigns/{id}");
    assert_eq!(mgr2.get(&url).await.status, 404);
    for action in ["preview", "start", "pause", "resume", "cancel"] {
        let r = mgr2.post(&format!("{url}/{action}"), json!({})).await;
        assert_eq!(r.status, 404, "{action}: {r:?}");
    }
    assert!(mgr2.get("/api/v1/staff/campaigns").await.body["campaigns"]
        .as_array()
        .unwrap()
        .is_empty());
    // A manager cannot aim at another store; an admin can go chain-wide.
    let r = mgr
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "custom", "name": "x", "store_id": other}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "custom", "name": "全店"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert!(r.body["store_id"].is_null());
    assert_eq!(
        mgr.get(&format!("/api/v1/staff/campaigns/{}", r.body["id"]))
            .await
            .status,
        404
    );
    assert_eq!(mgr.get(&url).await.status, 200);

    for (body, field) in [
        (json!({"kind": "booking_confirmed", "name": "x"}), "kind"),
        (json!({"kind": "custom", "name": " "}), "name"),
        (
            json!({"kind": "birthday", "name": "x"}),
            "audience.birthday_from",
        ),
        (
            json!({"kind": "birthday", "name": "x", "audience": {"birthday_from": "06-01", "birthday_to": "13-01"}}),
            "audience.birthday_to",
        ),
        (
            json!({"kind": "recall", "name": "x", "audience": {"dormant_days": 10}}),
            "audience.dormant_days",
        ),
        (
            json!({"kind": "custom", "name": "x", "audience": {"tiers": ["bronze"]}}),
            "audience.tiers",
        ),
        (
            json!({"kind": "custom", "name": "x", "voucher": {"title": "", "valid_days": 30}}),
            "voucher.title",
        ),
    ] {
        let r = mgr.post("/api/v1/staff/campaigns", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert_eq!(r.body["error"]["field"], field, "{body}: {r:?}");
    }
}

#[tokio::test]
async fn a_birthday_range_may_wrap_the_year() {
    let (app, chain) = app(50).await;
    let ids = customers(&app, chain.store, "b", 4, 0, 10).await;
    for (id, day) in ids
        .iter()
        .zip(["1990-12-25", "1991-01-05", "1992-06-15", "1993-12-01"])
    {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        customer::Entity::update_many()
            .col_expr(
                customer::Column::Birthday,
                sea_orm::sea_query::Expr::value(date),
            )
            .filter(customer::Column::Id.eq(*id))
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "birthday", "name": "新年生日", "store_id": chain.store,
                   "audience": {"birthday_from": "12-20", "birthday_to": "01-10"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let p = chain
        .admin
        .post(
            &format!("/api/v1/staff/campaigns/{}/preview", r.body["id"]),
            json!({}),
        )
        .await;
    assert_eq!(p.body["audience"], 2, "{p:?}");
    assert_eq!(p.body["with_quota"], 0);
}

#[tokio::test]
async fn a_sender_killed_mid_campaign_loses_nothing_and_repeats_nothing() {
    let (app, chain) = app(10).await;
    let ids = customers(&app, chain.store, "dorm", 40, 24, 200).await;
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "recall", "name": "回店", "store_id": chain.store, "audience": {}}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    chain
        .admin
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;

    // One worker gets through a round; the next one claims a batch and dies before recording
    // anything (the process was killed between claim and record).
    assert!(send_once(&app).await <= 10);
    let lease = sender::lease(&app.state.settings);
    let orphaned = sender::claim(&app.state.db, "killed", app.state.clock.now(), 10, lease)
        .await
        .unwrap();
    assert_eq!(orphaned.len(), 10);
    // A restarted sender carries on with the rest; the orphaned rows wait for their lease.
    drain(&app).await;
    let d = chain
        .admin
        .get(&format!("/api/v1/staff/campaigns/{id}"))
        .await;
    assert_eq!(count(&d.body, "sending"), 10, "{d:?}");
    assert_eq!(d.body["status"], "running");

    app.state.clock.advance(lease + Duration::seconds(1));
    drain(&app).await;
    let d = chain
        .admin
        .get(&format!("/api/v1/staff/campaigns/{id}"))
        .await;
    assert_eq!(d.body["status"], "completed", "{d:?}");
    assert_eq!(count(&d.body, "sent"), 24);
    assert_eq!(count(&d.body, "skipped"), 16);
    assert_eq!(d.body["progress"]["total"], 40);

    // Exactly one row per recipient, and WeChat saw each customer with quota once.
    let rows = outbox_message::Entity::find()
        .filter(outbox_message::Column::CampaignId.eq(id))
        .all(&app.state.db)
        .await
        .unwrap();
    let mut customers_seen: Vec<i64> = rows.iter().map(|r| r.customer_id).collect();
    customers_seen.sort_unstable();
    let mut expected = ids.clone();
    expected.sort_unstable();
    assert_eq!(customers_seen, expected);
    let sent = app.state.sandbox.as_ref().unwrap().sent();
    let mut tousers: Vec<&str> = sent.iter().map(|m| m["touser"].as_str().unwrap()).collect();
    tousers.sort_unstable();
    let before = tousers.len();
    tousers.dedup();
    assert_eq!((before, tousers.len()), (24, 24), "nobody twice");
}
