//! The second channel and the staff's own WeChat: template messages through the 服务号 for
//! followers the subscribe message cannot reach (linked by unionid, learnt from the account's
//! follow pushes), delivery of a campaign's test message to the staff member's bound WeChat,
//! and the subscription scenes following the templates staff save.

use chrono::{Duration, Utc};
use entity::{audit_log, customer, oa_follower, outbox_message, wechat_account};
use memberhub::messaging::sender::{self, SendContext};
use memberhub::wechat::official_account;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{
    chain, create_staff, create_store, customer_of_member, eventually, member_joined, member_login,
    spawn_app, staff_login_bearer, Chain, MemberClient, TestApp,
};

const RECALL: &str = "SBX-RECALL";
const OA_TEMPLATE: &str = "SBX-OA-CARE";

async fn app() -> (TestApp, Chain) {
    let app = spawn_app().await;
    app.state.clock.pin(Utc::now());
    let chain = chain(&app).await;
    (app, chain)
}

fn control(app: &TestApp, path: &str) -> String {
    app.url(&format!("/__sandbox/wechat/control/{path}"))
}

async fn post_control(app: &TestApp, path: &str, body: Value) -> Value {
    let r = app
        .client
        .post(control(app, path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    r.json().await.unwrap()
}

/// A dormant member of `store` (last visit 400 days ago) who accepted `templates` once; when
/// `unionid` is given, their next sign-in tells it (the mini-program is bound to the clinic's
/// Open Platform account). Returns the customer id.
async fn dormant(
    app: &TestApp,
    store: i64,
    openid: &str,
    phone: &str,
    templates: &[&str],
    unionid: Option<&str>,
) -> i64 {
    let (_, card) = member_joined(app, openid, phone).await;
    if !templates.is_empty() {
        let results: Vec<Value> = templates
            .iter()
            .map(|t| json!({"template_id": t, "status": "accept"}))
            .collect();
        post_control(
            app,
            "subscribe",
            json!({"openid": openid, "results": results}),
        )
        .await;
    }
    if let Some(unionid) = unionid {
        let code = format!("code-u-{openid}");
        post_control(
            app,
            "login-code",
            json!({"code": code, "openid": openid, "unionid": unionid}),
        )
        .await;
        let r = app
            .client
            .post(app.url("/api/v1/member/auth/login"))
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let id = customer_of_member(app, card["member_id"].as_i64().unwrap()).await;
    customer::Entity::update_many()
        .col_expr(customer::Column::HomeStoreId, Expr::value(store))
        .col_expr(
            customer::Column::LastVisitAt,
            Expr::value(app.state.clock.now() - Duration::days(400)),
        )
        .filter(customer::Column::Id.eq(id))
        .exec(&app.state.db)
        .await
        .unwrap();
    id
}

async fn follower(app: &TestApp, oa_openid: &str) -> Option<oa_follower::Model> {
    oa_follower::Entity::find()
        .filter(oa_follower::Column::OaOpenid.eq(oa_openid))
        .one(&app.state.db)
        .await
        .unwrap()
}

/// Follows (or leaves) the 服务号 and waits until the app has taken it in, unionid included.
async fn follow(app: &TestApp, oa_openid: &str, unionid: &str, following: bool) {
    let r = post_control(
        app,
        "oa-follow",
        json!({"openid": oa_openid, "unionid": unionid, "following": following}),
    )
    .await;
    assert_eq!(r["push"]["delivered"], true, "{r}");
    let settled = eventually(std::time::Duration::from_secs(10), || async {
        follower(app, oa_openid)
            .await
            .is_some_and(|f| f.following == following && f.unionid.as_deref() == Some(unionid))
    })
    .await;
    assert!(settled, "{:?}", follower(app, oa_openid).await);
}

async fn drain(app: &TestApp) {
    loop {
        let r = sender::run_once(&SendContext::new(&app.state, "worker-a"))
            .await
            .unwrap();
        if r.claimed == 0 {
            return;
        }
    }
}

async fn row_of(app: &TestApp, customer_id: i64, kind: &str) -> outbox_message::Model {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::CustomerId.eq(customer_id))
        .filter(outbox_message::Column::Kind.eq(kind))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

async fn start_campaign(chain: &Chain, kind: &str, name: &str) -> i64 {
    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": kind, "name": name, "store_id": chain.store, "audience": {}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    let s = chain
        .admin
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;
    assert_eq!(s.status, 200, "{s:?}");
    id
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
async fn followers_without_quota_are_reached_through_the_official_account() {
    let (app, chain) = app().await;
    let sandbox = app.state.sandbox.as_ref().unwrap();
    let alice = dormant(&app, chain.store, "o-alice", "13800000001", &[RECALL], None).await;
    let bob = dormant(
        &app,
        chain.store,
        "o-bob",
        "13800000002",
        &[],
        Some("u-bob"),
    )
    .await;
    let carol = dormant(
        &app,
        chain.store,
        "o-carol",
        "13800000003",
        &[],
        Some("u-carol"),
    )
    .await;
    let dave = dormant(
        &app,
        chain.store,
        "o-dave",
        "13800000004",
        &[],
        Some("u-dave"),
    )
    .await;
    let erin = dormant(
        &app,
        chain.store,
        "o-erin",
        "13800000005",
        &[],
        Some("u-erin"),
    )
    .await;
    let linked = wechat_account::Entity::find()
        .filter(wechat_account::Column::Openid.eq("o-bob"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.unionid.as_deref(), Some("u-bob"));

    // Bob follows; Dave followed and left; Erin left but the app missed her unsubscribe push.
    follow(&app, "oa-bob", "u-bob", true).await;
    follow(&app, "oa-dave", "u-dave", true).await;
    follow(&app, "oa-dave", "u-dave", false).await;
    follow(&app, "oa-erin", "u-erin", true).await;
    follow(&app, "oa-erin", "u-erin", false).await;
    official_account::record_follow(&app.state.db, "oa-erin", true, None, Utc::now())
        .await
        .unwrap();

    let t = chain
        .admin
        .post(
            "/api/v1/staff/templates",
            json!({"kind": "recall", "channel": "oa_template", "template_id": OA_TEMPLATE,
                   "page": "pages/index/index",
                   "keywords": {"thing1": "{customer_name}，好久不见", "thing2": "{store_name}想念您"}}),
        )
        .await;
    assert_eq!(t.status, 201, "{t:?}");

    let r = chain
        .admin
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "recall", "name": "回店", "store_id": chain.store, "audience": {}}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let p = chain
        .admin
        .post(&format!("/api/v1/staff/campaigns/{id}/preview"), json!({}))
        .await;
    assert_eq!(p.body["audience"], 5, "{p:?}");
    assert_eq!(p.body["with_quota"], 1);
    // Bob, and Erin, whom the app still believes a follower.
    assert_eq!(p.body["via_official_account"], 2);
    assert_eq!(p.body["reachable"], 3);
    chain
        .admin
        .post(&format!("/api/v1/staff/campaigns/{id}/start"), json!({}))
        .await;
    drain(&app).await;

    let a = row_of(&app, alice, "recall").await;
    assert_eq!(
        (a.status.as_str(), a.channel.as_deref()),
        ("sent", Some("subscribe"))
    );
    let b = row_of(&app, bob, "recall").await;
    assert_eq!(
        (b.status.as_str(), b.channel.as_deref()),
        ("sent", Some("oa_template")),
        "{b:?}"
    );
    assert_eq!(b.template_id.as_deref(), Some(OA_TEMPLATE));
    for (who, reason) in [
        (carol, "no_quota"),
        (dave, "no_quota"),
        (erin, "not_follower"),
    ] {
        let r = row_of(&app, who, "recall").await;
        assert_eq!(
            (r.status.as_str(), r.reason.as_deref()),
            ("skipped", Some(reason)),
            "{r:?}"
        );
    }
    assert!(
        !follower(&app, "oa-erin").await.unwrap().following,
        "a 43004 answer says she left"
    );

    let sent = sandbox.sent();
    let oa: Vec<&Value> = sent
        .iter()
        .filter(|m| m["channel"] == "official_account")
        .collect();
    assert_eq!(oa.len(), 1, "{sent:?}");
    assert_eq!(oa[0]["touser"], "oa-bob");
    assert_eq!(oa[0]["template_id"], OA_TEMPLATE);
    assert_eq!(oa[0]["miniprogram"]["appid"], app.state.wechat.appid());
    assert_eq!(oa[0]["miniprogram"]["pagepath"], "pages/index/index");
    assert_eq!(oa[0]["data"]["thing2"]["value"], "静安店想念您");
    assert_eq!(
        sandbox.calls("/cgi-bin/message/subscribe/send"),
        1,
        "only Alice had quota"
    );

    let d = chain
        .admin
        .get(&format!("/api/v1/staff/campaigns/{id}"))
        .await;
    assert_eq!(d.body["progress"]["via_official_account"], 1, "{d:?}");
    assert_eq!(outcome(&d.body, "sent", ""), 0);
    assert_eq!(outcome(&d.body, "skipped", "not_follower"), 1);

    // A kind with no subscribe template at all (custom) goes only through the 服务号: those
    // who do not follow are skipped as such, and Bob's 7-day cap still holds.
    chain
        .admin
        .post(
            "/api/v1/staff/templates",
            json!({"kind": "custom", "channel": "oa_template", "template_id": OA_TEMPLATE,
                   "keywords": {"thing1": "{customer_name}，冬季焕肤季", "thing2": "{store_name}"}}),
        )
        .await;
    let id = start_campaign(&chain, "custom", "冬季焕肤").await;
    drain(&app).await;
    let d = chain
        .admin
        .get(&format!("/api/v1/staff/campaigns/{id}"))
        .await;
    assert_eq!(outcome(&d.body, "skipped", "not_follower"), 4, "{d:?}");
    assert_eq!(outcome(&d.body, "skipped", "frequency_cap"), 1, "{d:?}");
}

#[tokio::test]
async fn a_test_message_reaches_the_staff_members_own_wechat() {
    let (app, chain) = app().await;
    let sandbox = app.state.sandbox.as_ref().unwrap();
    create_staff(&app, "mgr", "manager", Some(chain.store)).await;
    let mgr = staff_login_bearer(&app, "mgr").await;
    let other = create_store(&app, "徐汇店").await;
    create_staff(&app, "mgr2", "manager", Some(other)).await;
    let mgr2 = staff_login_bearer(&app, "mgr2").await;
    let r = mgr
        .post(
            "/api/v1/staff/campaigns",
            json!({"kind": "recall", "name": "回店", "audience": {}}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let test_send = format!("/api/v1/staff/campaigns/{id}/test-send");

    let r = mgr.post(&test_send, json!({})).await;
    assert_eq!((r.status, r.code()), (409, "wechat_not_bound"), "{r:?}");
    let r = mgr.get("/api/v1/staff/auth/me/wechat-binding").await;
    assert_eq!(r.body["bound"], false);

    // The console shows a code; the manager scans it with their own WeChat.
    let t = mgr
        .post("/api/v1/staff/auth/me/wechat-binding", json!({}))
        .await;
    assert_eq!(t.status, 201, "{t:?}");
    let ticket = t.body["ticket"].as_str().unwrap().to_string();
    assert!(ticket.len() <= 32, "fits a mini-program code's scene");
    assert_eq!(t.body["page"], "pages/staff-bind/index");
    let own: MemberClient = member_login(&app, "o-mgr").await;
    post_control(
        &app,
        "subscribe",
        json!({"openid": "o-mgr", "results": [{"template_id": RECALL, "status": "accept"}]}),
    )
    .await;
    let r = own
        .post("/api/v1/member/staff-binding", json!({"ticket": "nope"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_ticket"), "{r:?}");
    let r = own
        .post("/api/v1/member/staff-binding", json!({"ticket": ticket}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["staff_display_name"], "mgr 老师");
    let stranger = member_login(&app, "o-stranger").await;
    let r = stranger
        .post("/api/v1/member/staff-binding", json!({"ticket": ticket}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_ticket"),
        "a ticket binds once"
    );
    assert_eq!(
        mgr.get("/api/v1/staff/auth/me/wechat-binding").await.body["bound"],
        true
    );

    let r = mgr.post(&test_send, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["template_id"], RECALL);
    assert_eq!(r.body["items"][0]["value"], "mgr 老师，好久不见");
    let sent = sandbox.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["touser"], "o-mgr");
    assert_eq!(
        sent[0]["data"]["thing2"]["value"],
        "静安店想念您，期待您再次光临"
    );
    // A test is not a send: nothing queued, the campaign still a draft, but audited.
    assert_eq!(
        outbox_message::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        mgr.get(&format!("/api/v1/staff/campaigns/{id}")).await.body["status"],
        "draft"
    );
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("campaign.test_send"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(audited, 1);

    // The one accept is spent: WeChat would refuse a second message.
    let r = mgr.post(&test_send, json!({})).await;
    assert_eq!((r.status, r.code()), (409, "no_quota"), "{r:?}");
    assert_eq!(sandbox.calls("/cgi-bin/message/subscribe/send"), 1);

    // Another store's manager cannot see the campaign at all.
    let r = mgr2.post(&test_send, json!({})).await;
    assert_eq!(r.status, 404, "{r:?}");

    let r = mgr
        .send(
            reqwest::Method::DELETE,
            "/api/v1/staff/auth/me/wechat-binding",
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = mgr.post(&test_send, json!({})).await;
    assert_eq!((r.status, r.code()), (409, "wechat_not_bound"), "{r:?}");
}

#[tokio::test]
async fn subscription_scenes_follow_the_templates_staff_save() {
    let (app, chain) = app().await;
    let m = member_login(&app, "o-alice").await;
    let r = m.get("/api/v1/member/subscriptions").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["scenes"]["booking"],
        json!([
            "SBX-BOOKING-CONFIRMED",
            "SBX-BOOKING-REMINDER",
            "SBX-WAITLIST-PROMOTED"
        ])
    );

    let t = chain
        .admin
        .post(
            "/api/v1/staff/templates",
            json!({"kind": "booking_confirmed", "template_id": "tmpl-Booking_01",
                   "keywords": {"thing1": "{event_title}", "time2": "{slot_time}"}}),
        )
        .await;
    assert_eq!(t.status, 201, "{t:?}");
    let r = m.get("/api/v1/member/subscriptions").await;
    assert_eq!(
        r.body["scenes"]["booking"],
        json!([
            "tmpl-Booking_01",
            "SBX-BOOKING-REMINDER",
            "SBX-WAITLIST-PROMOTED"
        ]),
        "members accept the template the sender will use"
    );
}
