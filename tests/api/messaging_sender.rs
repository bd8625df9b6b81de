//! The outbox sender against the sandbox: claims, sends under quota, records each outcome once,
//! retries what WeChat could not take, pauses on the daily limit, survives a crashed worker and
//! never hands one row to two workers.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use entity::{message_template, outbox_message};
use memberhub::messaging::sender::{self, Outcome, SendContext, SendReport, PAUSE_KEY};
use memberhub::outbox::{self, kind};
use memberhub::wechat::sandbox::Sandbox;
use memberhub::wechat::subscriptions;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

use crate::helpers::{customer_of_member, member_joined, spawn_app_with, TestApp};

const SEND: &str = "/cgi-bin/message/subscribe/send";
const TEMPLATE: &str = "SBX-BOOKING-CONFIRMED";

/// An app whose WeChat client does not retry -1 itself, so one injected fault fails one send.
async fn app() -> TestApp {
    let app = spawn_app_with(|s| s.wechat.busy_retries = 1).await;
    app.state.clock.pin(Utc::now());
    app
}

fn sandbox(app: &TestApp) -> &Sandbox {
    app.state.sandbox.as_ref().expect("no sandbox in this app")
}

fn ctx<'a>(app: &'a TestApp, worker: &'a str) -> SendContext<'a> {
    SendContext::new(&app.state, worker)
}

/// A member who accepted the booking template `accepts` times; returns their customer id.
async fn member(app: &TestApp, openid: &str, phone: &str, accepts: usize) -> i64 {
    let (_, card) = member_joined(app, openid, phone).await;
    for _ in 0..accepts {
        let r = app
            .client
            .post(app.url("/__sandbox/wechat/control/subscribe"))
            .json(&json!({"openid": openid, "results": [{"template_id": TEMPLATE, "status": "accept"}]}))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["push"]["delivered"], true, "{body}");
    }
    customer_of_member(app, card["member_id"].as_i64().unwrap()).await
}

async fn quota(app: &TestApp, openid: &str) -> i32 {
    let account = entity::wechat_account::Entity::find()
        .filter(entity::wechat_account::Column::Openid.eq(openid))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    subscriptions::remaining(&app.state.db, account.id, TEMPLATE)
        .await
        .unwrap()
}

/// Queues a booking confirmation as the booking engine does.
async fn queue(app: &TestApp, customer_id: i64, code: &str) -> i64 {
    let queued = outbox::queue(
        &app.state.db,
        kind::BOOKING_CONFIRMED,
        customer_id,
        format!("booking:{code}"),
        json!({
            "booking_code": code,
            "event_title": "十二月会员日",
            "starts_at": "2026-12-03T07:00:00Z",
            "service": "光子嫩肤",
        }),
        app.state.clock.now(),
    )
    .await
    .unwrap();
    assert!(queued);
    row_by_reference(app, &format!("booking:{code}")).await.id
}

async fn row_by_reference(app: &TestApp, reference: &str) -> outbox_message::Model {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::Reference.eq(reference))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

async fn row(app: &TestApp, id: i64) -> outbox_message::Model {
    outbox_message::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

async fn run(app: &TestApp) -> SendReport {
    sender::run_once(&ctx(app, "worker-a")).await.unwrap()
}

fn next_business_day(app: &TestApp) -> DateTime<Utc> {
    let calendar = app.state.settings.loyalty.calendar();
    let today = calendar.date_of(app.state.clock.now());
    calendar.start_of(today.succ_opt().unwrap())
}

#[tokio::test]
async fn a_message_is_sent_once_and_one_without_quota_never_reaches_wechat() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    let first = queue(&app, customer, "B0000001").await;

    let report = run(&app).await;

    assert_eq!(
        report,
        SendReport {
            claimed: 1,
            sent: 1,
            ..Default::default()
        }
    );
    let sent = sandbox(&app).sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["touser"], "o-alice");
    assert_eq!(sent[0]["template_id"], TEMPLATE);
    assert_eq!(sent[0]["data"]["thing1"]["value"], "十二月会员日");
    assert_eq!(sent[0]["data"]["time2"]["value"], "2026年12月3日 15:00");
    assert_eq!(
        sent[0]["data"]["thing3"]["value"],
        "您的预约已确认，请准时到店"
    );
    let r = row(&app, first).await;
    assert_eq!(r.status, "sent");
    assert_eq!(r.msgid.as_deref(), sent[0]["msgid"].as_str());
    assert_eq!(r.template_id.as_deref(), Some(TEMPLATE));
    assert_eq!(r.attempts, 1);
    assert!(r.sent_at.is_some());

    assert_eq!(run(&app).await.claimed, 0);

    let second = queue(&app, customer, "B0000002").await;
    let report = run(&app).await;

    assert_eq!(report.skipped, 1, "{report:?}");
    let r = row(&app, second).await;
    assert_eq!(r.status, "skipped");
    assert_eq!(r.reason.as_deref(), Some("no_quota"));
    assert_eq!(sandbox(&app).calls(SEND), 1);
    assert_eq!(sandbox(&app).sent().len(), 1);
}

#[tokio::test]
async fn a_customer_without_a_wechat_account_is_skipped() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    // The member's WeChat identity is unlinked from the customer (as after an unbinding).
    entity::wechat_account::Entity::update_many()
        .col_expr(
            entity::wechat_account::Column::CustomerId,
            sea_orm::sea_query::Expr::value(Option::<i64>::None),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let id = queue(&app, customer, "B0000001").await;

    assert_eq!(run(&app).await.skipped, 1);
    assert_eq!(row(&app, id).await.reason.as_deref(), Some("no_account"));
    assert_eq!(sandbox(&app).calls(SEND), 0);
}

#[tokio::test]
async fn a_busy_wechat_defers_the_message_and_it_goes_out_after_the_backoff() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    let id = queue(&app, customer, "B0000001").await;
    sandbox(&app).inject_fault(SEND, -1, Some(1));

    assert_eq!(run(&app).await.deferred, 1);
    let r = row(&app, id).await;
    assert_eq!(r.status, "deferred");
    assert!(r.reason.as_deref().unwrap().contains("-1"), "{r:?}");
    assert_eq!(r.due_at, app.state.clock.now() + Duration::seconds(30));
    assert_eq!(quota(&app, "o-alice").await, 1, "the unit is given back");
    assert_eq!(run(&app).await.claimed, 0, "not due yet");

    app.state.clock.advance(Duration::seconds(31));
    assert_eq!(run(&app).await.sent, 1);
    let r = row(&app, id).await;
    assert_eq!(r.status, "sent");
    assert_eq!(r.reason, None);
    assert_eq!(r.attempts, 2);
    assert_eq!(sandbox(&app).sent().len(), 1);
}

#[tokio::test]
async fn a_message_wechat_keeps_refusing_as_busy_fails_after_max_attempts() {
    let app = spawn_app_with(|s| {
        s.wechat.busy_retries = 1;
        s.messaging.max_attempts = 2;
    })
    .await;
    app.state.clock.pin(Utc::now());
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    let id = queue(&app, customer, "B0000001").await;
    sandbox(&app).inject_fault(SEND, -1, None);

    assert_eq!(run(&app).await.deferred, 1);
    app.state.clock.advance(Duration::seconds(31));
    assert_eq!(run(&app).await.failed, 1);

    let r = row(&app, id).await;
    assert_eq!(r.status, "failed");
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .starts_with("gave up after 2 attempts"),
        "{r:?}"
    );
    assert_eq!(quota(&app, "o-alice").await, 1);
}

#[tokio::test]
async fn a_value_wechat_refuses_fails_the_message_and_gives_the_unit_back() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    // thing4 is a valid keyword id, but the sandbox's template has no thing4: 47003.
    let now = Utc::now();
    message_template::ActiveModel {
        kind: Set(kind::BOOKING_CONFIRMED.into()),
        channel: Set("subscribe".into()),
        template_id: Set(TEMPLATE.into()),
        page: Set(None),
        keywords: Set(json!({"thing1": "{event_title}", "thing4": "请准时到店"}).to_string()),
        active: Set(true),
        updated_by_staff_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    let id = queue(&app, customer, "B0000001").await;

    assert_eq!(run(&app).await.failed, 1);
    let r = row(&app, id).await;
    assert_eq!(r.status, "failed");
    let reason = r.reason.unwrap();
    assert!(
        reason.starts_with("47003") && reason.contains("thing4"),
        "{reason}"
    );
    assert_eq!(quota(&app, "o-alice").await, 1);
    app.state.clock.advance(Duration::hours(2));
    assert_eq!(
        run(&app).await.claimed,
        0,
        "a refused message is not retried"
    );
}

#[tokio::test]
async fn the_daily_limit_pauses_the_channel_until_the_next_business_day() {
    let app = app().await;
    let alice = member(&app, "o-alice", "13800000001", 1).await;
    let bob = member(&app, "o-bob", "13800000002", 1).await;
    let first = queue(&app, alice, "B0000001").await;
    let second = queue(&app, bob, "B0000002").await;
    sandbox(&app).inject_fault(SEND, 45009, Some(1));

    let report = run(&app).await;

    assert_eq!(
        report,
        SendReport {
            claimed: 2,
            deferred: 2,
            ..Default::default()
        }
    );
    assert_eq!(sandbox(&app).calls(SEND), 1, "the second one made no call");
    let resume = next_business_day(&app);
    for id in [first, second] {
        let r = row(&app, id).await;
        assert_eq!(r.status, "deferred");
        assert_eq!(r.due_at, resume);
        assert_eq!(
            r.attempts, 0,
            "a paused channel is not the message's attempt"
        );
    }
    assert!(app.state.cache.get(PAUSE_KEY).await.unwrap().is_some());
    assert_eq!(quota(&app, "o-alice").await, 1);

    app.state.clock.pin(resume);
    assert_eq!(run(&app).await.sent, 2);
    assert_eq!(sandbox(&app).sent().len(), 2);
}

#[tokio::test]
async fn a_43101_skips_the_message_and_zeroes_the_quota() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 2).await;
    let id = queue(&app, customer, "B0000001").await;
    sandbox(&app).inject_fault(SEND, 43101, Some(1));

    assert_eq!(run(&app).await.skipped, 1);
    let r = row(&app, id).await;
    assert_eq!(r.status, "skipped");
    assert_eq!(r.reason.as_deref(), Some("no_quota"));
    assert_eq!(quota(&app, "o-alice").await, 0);
}

#[tokio::test]
async fn a_crashed_workers_row_is_taken_over_after_the_lease_and_sent_once() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    let id = queue(&app, customer, "B0000001").await;
    let lease = sender::lease(&app.state.settings);

    let claimed = sender::claim(&app.state.db, "crashed", app.state.clock.now(), 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].status, "sending");
    // The worker dies here, before sending or recording anything.
    assert_eq!(run(&app).await.claimed, 0, "the lease still holds");

    app.state.clock.advance(lease + Duration::seconds(1));
    let report = run(&app).await;

    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(sandbox(&app).sent().len(), 1);
    let taken_over = row(&app, id).await;
    assert_eq!(taken_over.status, "sent");
    assert_eq!(taken_over.claimed_by.as_deref(), Some("worker-a"));
    assert_eq!(taken_over.attempts, 2);

    let late = sender::record(
        &app.state.db,
        id,
        "crashed",
        &Outcome::Failed {
            reason: "late".into(),
        },
        None,
        app.state.clock.now(),
    )
    .await
    .unwrap();
    assert!(!late);
    // Only WeChat's delivery report, which may arrive meanwhile, can still change the row.
    let without_report = |r: outbox_message::Model| outbox_message::Model {
        delivery: None,
        delivered_at: None,
        ..r
    };
    assert_eq!(
        without_report(row(&app, id).await),
        without_report(taken_over)
    );
    assert_eq!(run(&app).await.claimed, 0);
}

#[tokio::test]
async fn two_workers_claim_disjoint_rows() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 0).await;
    for i in 0..50 {
        queue(&app, customer, &format!("B{i:07}")).await;
    }
    let now = app.state.clock.now();
    let lease = sender::lease(&app.state.settings);

    let (a, b) = tokio::join!(
        sender::claim(&app.state.db, "worker-a", now, 50, lease),
        sender::claim(&app.state.db, "worker-b", now, 50, lease),
    );

    let (a, b) = (a.unwrap(), b.unwrap());
    let ids_a: HashSet<i64> = a.iter().map(|r| r.id).collect();
    let ids_b: HashSet<i64> = b.iter().map(|r| r.id).collect();
    assert!(ids_a.is_disjoint(&ids_b));
    assert_eq!(ids_a.len() + ids_b.len(), 50);
    assert!(a
        .iter()
        .all(|r| r.claimed_by.as_deref() == Some("worker-a")));
    assert!(b
        .iter()
        .all(|r| r.claimed_by.as_deref() == Some("worker-b")));
}

#[tokio::test]
async fn a_rejected_token_costs_one_refresh_and_the_message_still_goes_out() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    let id = queue(&app, customer, "B0000001").await;
    // Warm the token, so what follows counts only the refresh the rejection causes.
    app.state.wechat.access_token().await.unwrap();
    let tokens_before = sandbox(&app).calls("/cgi-bin/stable_token");
    sandbox(&app).inject_fault(SEND, 40001, Some(1));

    assert_eq!(run(&app).await.sent, 1);
    assert_eq!(
        sandbox(&app).calls("/cgi-bin/stable_token") - tokens_before,
        1,
        "exactly one token refresh"
    );
    assert_eq!(
        sandbox(&app).calls(SEND),
        2,
        "the rejected call and one retry"
    );
    assert_eq!(row(&app, id).await.status, "sent");
    assert_eq!(sandbox(&app).sent().len(), 1);
    assert_eq!(quota(&app, "o-alice").await, 0);
}

#[tokio::test]
async fn a_gateway_error_defers_the_message_and_the_retry_delivers_it() {
    let app = app().await;
    let customer = member(&app, "o-alice", "13800000001", 1).await;
    let id = queue(&app, customer, "B0000001").await;
    sandbox(&app).inject_fault(SEND, 502, Some(1));

    assert_eq!(run(&app).await.deferred, 1);
    let r = row(&app, id).await;
    assert_eq!(r.status, "deferred");
    assert!(r.reason.as_deref().unwrap().contains("502"), "{r:?}");
    assert_eq!(quota(&app, "o-alice").await, 1, "the unit is given back");

    app.state.clock.advance(Duration::seconds(31));
    assert_eq!(run(&app).await.sent, 1);
    assert_eq!(row(&app, id).await.status, "sent");
    assert_eq!(sandbox(&app).sent().len(), 1);
}

#[tokio::test]
async fn delivery_reports_mark_sent_messages_once() {
    use crate::helpers::eventually;
    use serde_json::{Map, Value};

    let app = app().await;
    let alice = member(&app, "o-alice", "13800000001", 1).await;
    let bob = member(&app, "o-bob", "13800000002", 1).await;
    let a = queue(&app, alice, "B0000001").await;
    assert_eq!(run(&app).await.sent, 1);

    // The sandbox reports delivery after answering, as WeChat does.
    let delivered = eventually(std::time::Duration::from_secs(10), || async {
        row(&app, a).await.delivery.as_deref() == Some("delivered")
    })
    .await;
    assert!(delivered, "{:?}", row(&app, a).await);
    let r = row(&app, a).await;
    assert!(r.delivered_at.is_some());
    assert_eq!(r.channel.as_deref(), Some("subscribe"));
    assert_eq!(r.reason, None);

    // Bob has blocked the clinic's messages: WeChat takes the send and later reports failure.
    sandbox(&app).fail_deliveries_to("o-bob");
    let b = queue(&app, bob, "B0000002").await;
    assert_eq!(run(&app).await.sent, 1);
    let failed = eventually(std::time::Duration::from_secs(10), || async {
        row(&app, b).await.delivery.as_deref() == Some("failed")
    })
    .await;
    let r = row(&app, b).await;
    assert!(failed, "{r:?}");
    assert_eq!(r.status, "sent", "sent it was; delivery is a separate fact");
    assert_eq!(
        r.reason.as_deref(),
        Some("10002 fail: user refuse to accept the msg")
    );

    // A repeated (or contradicting) report changes nothing.
    let mut again = Map::new();
    again.insert("MsgID".into(), Value::from(r.msgid.clone().unwrap()));
    again.insert("ErrorCode".into(), Value::from("0"));
    again.insert("ErrorStatus".into(), Value::from("success"));
    let push = sandbox(&app)
        .push_event("o-bob", "subscribe_msg_sent_event", vec![again])
        .await;
    assert_eq!(push["delivered"], true, "{push}");
    let later = row(&app, b).await;
    assert_eq!(later.delivery.as_deref(), Some("failed"));
    assert_eq!(later.delivered_at, r.delivered_at);
}
