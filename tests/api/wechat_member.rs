//! Members against the built-in sandbox: login, consent, phone binding, subscriptions, pushes
//! and the referral code (wechat-api.md section 13.5), each also tried with another member.

use chrono::Utc;
use entity::customer;
use memberhub::privacy::Phone;
use memberhub::wechat::sandbox::{self, PushFormat, PushTarget, Sandbox, SANDBOX_APPID};
use memberhub::wechat::subscriptions::{self, Outgoing, SendError};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Map, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

// A valid EncodingAESKey (wechat-api.md section 11, vector C).
const AES_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const PUSH_TOKEN: &str = "memberhub-sandbox-token";

fn sandbox(app: &TestApp) -> &Sandbox {
    app.state.sandbox.as_ref().expect("no sandbox in this app")
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Plays the member opening the mini-program: a fresh wx.login code, exchanged for a token.
async fn login(app: &TestApp, openid: &str) -> String {
    let code = format!("code-{}", uuid::Uuid::new_v4().simple());
    sandbox(app).add_login_code(&code, openid, None, false);
    let (status, body) = post(
        app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": code}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn consent(app: &TestApp, token: &str) {
    let (status, body) = post(
        app,
        "/api/v1/member/consent",
        Some(token),
        json!({"policy_version": "2026-11", "marketing": true, "sensitive_health": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn bind(app: &TestApp, token: &str, phone: &str) -> (u16, Value) {
    let code = format!("phone-{}", uuid::Uuid::new_v4().simple());
    sandbox(app).add_phone_code(&code, phone);
    post(
        app,
        "/api/v1/member/phone",
        Some(token),
        json!({"code": code}),
    )
    .await
}

async fn account_id(app: &TestApp, openid: &str) -> i64 {
    entity::wechat_account::Entity::find()
        .filter(entity::wechat_account::Column::Openid.eq(openid))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn quota(app: &TestApp, openid: &str, template: &str) -> i32 {
    subscriptions::remaining(&app.state.db, account_id(app, openid).await, template)
        .await
        .unwrap()
}

#[tokio::test]
async fn login_returns_a_token_and_a_reused_code_asks_for_a_new_login() {
    let app = spawn_app().await;
    sandbox(&app).add_login_code("once", "o-alice", Some("u-alice"), false);

    let (status, body) = post(
        &app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": "once"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer_linked"], false);
    assert!(body["token"].as_str().unwrap().len() >= 40);
    assert!(body["expires_at"].is_string());

    let (status, body) = post(
        &app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": "once"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "wechat_code_invalid");

    let (status, body) = post(
        &app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": "never-issued"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "wechat_code_invalid");

    sandbox(&app).add_login_code("stale", "o-alice", None, false);
    sandbox(&app).expire_code("stale");
    let (status, _) = post(
        &app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": "stale"}),
    )
    .await;
    assert_eq!(status, 401);

    let (status, body) = post(&app, "/api/v1/member/auth/login", None, json!({"code": ""})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "code");
}

#[tokio::test]
async fn a_blocked_user_is_refused_and_a_silent_wechat_is_a_503() {
    let app = spawn_app_with(|s| s.wechat.retry_base_ms = 5).await;
    sandbox(&app).add_login_code("risky", "o-risky", None, true);
    let (status, body) = post(
        &app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": "risky"}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "wechat_login_blocked");

    sandbox(&app).add_login_code("busy", "o-busy", None, false);
    sandbox(&app).inject_fault("/sns/jscode2session", -1, None);
    let (status, body) = post(
        &app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": "busy"}),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "wechat_unavailable");
    assert_eq!(sandbox(&app).calls("/sns/jscode2session"), 1 + 3);
}

#[tokio::test]
async fn logging_in_again_keeps_one_account_and_logout_ends_only_that_session() {
    let app = spawn_app().await;
    let first = login(&app, "o-alice").await;
    let second = login(&app, "o-alice").await;
    let bob = login(&app, "o-bob").await;
    assert_ne!(first, second);
    let accounts = entity::wechat_account::Entity::find()
        .filter(entity::wechat_account::Column::Openid.eq("o-alice"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(accounts, 1);

    let res = app
        .client
        .post(app.url("/api/v1/member/auth/logout"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    assert_eq!(get(&app, "/api/v1/member/referral", &first).await.0, 401);
    assert_eq!(get(&app, "/api/v1/member/referral", &second).await.0, 200);
    assert_eq!(get(&app, "/api/v1/member/referral", &bob).await.0, 200);
    assert_eq!(
        get(&app, "/api/v1/member/referral", "made-up-token")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn a_phone_needs_consent_then_links_to_the_customer_the_clinic_already_has() {
    let app = spawn_app().await;
    // The front desk registered this customer before she ever opened the mini-program.
    let phone = Phone::parse("13900001111", "86").unwrap();
    let now = Utc::now();
    let existing = customer::ActiveModel {
        name: Set(Some("王小美".into())),
        phone_enc: Set(Some(app.state.vault.encrypt(phone.as_str()))),
        phone_hash: Set(Some(app.state.vault.phone_index(&phone))),
        phone_masked: Set(Some(phone.masked())),
        gender: Set(None),
        birthday: Set(None),
        home_store_id: Set(None),
        source: Set("front_desk".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    let token = login(&app, "o-xiaomei").await;

    let (status, body) = bind(&app, &token, "13900001111").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "consent_required");

    consent(&app, &token).await;
    let (status, body) = bind(&app, &token, "13900001111").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phone_masked"], "139****1111");
    assert_eq!(body["linked_existing_customer"], true);

    let customers = customer::Entity::find().count(&app.state.db).await.unwrap();
    assert_eq!(customers, 1, "a twin customer was created");
    let account = entity::wechat_account::Entity::find_by_id(account_id(&app, "o-xiaomei").await)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.customer_id, Some(existing.id));
    assert!(account.consent_marketing);
    // The phone is stored encrypted: no column holds it in the clear.
    let stored = customer::Entity::find_by_id(existing.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.phone_enc.unwrap().contains("13900001111"));

    // Logging in again now says the account is linked.
    let code = "again";
    sandbox(&app).add_login_code(code, "o-xiaomei", None, false);
    let (_, body) = post(
        &app,
        "/api/v1/member/auth/login",
        None,
        json!({"code": code}),
    )
    .await;
    assert_eq!(body["customer_linked"], true);
}

#[tokio::test]
async fn one_phone_binds_one_wechat_account_and_phone_codes_work_once() {
    let app = spawn_app().await;
    let alice = login(&app, "o-alice").await;
    let mallory = login(&app, "o-mallory").await;
    consent(&app, &alice).await;
    consent(&app, &mallory).await;

    assert_eq!(bind(&app, &alice, "13800002222").await.0, 200);
    let (status, body) = bind(&app, &mallory, "13800002222").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "phone_bound_elsewhere");

    let (status, body) = bind(&app, &alice, "13800003333").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "already_bound");

    sandbox(&app).add_phone_code("p-once", "13800004444");
    let first = post(
        &app,
        "/api/v1/member/phone",
        Some(&mallory),
        json!({"code": "p-once"}),
    )
    .await;
    assert_eq!(first.0, 200);
    let again = post(
        &app,
        "/api/v1/member/phone",
        Some(&mallory),
        json!({"code": "p-once"}),
    )
    .await;
    assert_eq!(again.0, 400);
    assert_eq!(again.1["error"]["code"], "phone_code_invalid");
    assert_eq!(
        customer::Entity::find().count(&app.state.db).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn two_accepts_allow_two_sends_and_the_third_never_reaches_wechat() {
    let app = spawn_app().await;
    let _token = login(&app, "o-alice").await;
    let sb = sandbox(&app);
    for _ in 0..2 {
        let (status, body) = post(
            &app,
            "/__sandbox/wechat/control/subscribe",
            None,
            json!({"openid": "o-alice", "results": [{"template_id": "SBX-BIRTHDAY", "status": "accept"}]}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["push"]["delivered"], true, "{body}");
    }
    assert_eq!(quota(&app, "o-alice", "SBX-BIRTHDAY").await, 2);
    let account = account_id(&app, "o-alice").await;
    let data = [
        ("thing1", "生日快乐".to_string()),
        ("thing2", "到店领取生日礼".to_string()),
    ];
    let msg = Outgoing {
        account_id: account,
        openid: "o-alice",
        template_id: "SBX-BIRTHDAY",
        page: Some("pages/index/index"),
        data: &data,
    };

    let first = subscriptions::send(&app.state.db, &app.state.wechat, &msg).await;
    let second = subscriptions::send(&app.state.db, &app.state.wechat, &msg).await;
    let third = subscriptions::send(&app.state.db, &app.state.wechat, &msg).await;

    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    assert!(matches!(third, Err(SendError::NoQuota)), "{third:?}");
    assert_eq!(sb.calls("/cgi-bin/message/subscribe/send"), 2);
    assert_eq!(sb.sent().len(), 2);
    assert_eq!(quota(&app, "o-alice", "SBX-BIRTHDAY").await, 0);
}

#[tokio::test]
async fn a_43101_sets_the_quota_to_zero() {
    let app = spawn_app().await;
    let token = login(&app, "o-alice").await;
    let sb = sandbox(&app);
    // WeChat holds two accepts; the mini-program reported three (a push was lost, say).
    sb.set_push_target(None);
    sb.record_subscriptions(
        "o-alice",
        &[
            ("SBX-CARE".into(), "accept".into()),
            ("SBX-CARE".into(), "accept".into()),
        ],
    );
    for _ in 0..3 {
        let (status, body) = post(
            &app,
            "/api/v1/member/subscriptions",
            Some(&token),
            json!({"results": {"SBX-CARE": "accept"}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(quota(&app, "o-alice", "SBX-CARE").await, 3);
    let account = account_id(&app, "o-alice").await;
    let data = [
        ("thing1", "术后关怀".to_string()),
        ("time2", "2026年11月23日 10:00".to_string()),
    ];
    let msg = Outgoing {
        account_id: account,
        openid: "o-alice",
        template_id: "SBX-CARE",
        page: None,
        data: &data,
    };

    let results = [
        subscriptions::send(&app.state.db, &app.state.wechat, &msg).await,
        subscriptions::send(&app.state.db, &app.state.wechat, &msg).await,
        subscriptions::send(&app.state.db, &app.state.wechat, &msg).await,
    ];

    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(
        matches!(results[2], Err(SendError::Refused)),
        "{:?}",
        results[2]
    );
    assert_eq!(quota(&app, "o-alice", "SBX-CARE").await, 0);
}

#[tokio::test]
async fn values_that_break_their_keyword_rules_are_refused_before_wechat() {
    let app = spawn_app().await;
    let _ = login(&app, "o-alice").await;
    sandbox(&app).record_subscriptions("o-alice", &[("SBX-BIRTHDAY".into(), "accept".into())]);
    subscriptions::record(
        &app.state.db,
        account_id(&app, "o-alice").await,
        "SBX-BIRTHDAY",
        "accept",
        subscriptions::Source::Client,
    )
    .await
    .unwrap();
    let too_long = [(
        "thing1",
        "这是一条超过二十个字符的生日祝福消息内容哦哦".to_string(),
    )];
    let msg = Outgoing {
        account_id: account_id(&app, "o-alice").await,
        openid: "o-alice",
        template_id: "SBX-BIRTHDAY",
        page: None,
        data: &too_long,
    };

    let result = subscriptions::send(&app.state.db, &app.state.wechat, &msg).await;

    assert!(
        matches!(result, Err(SendError::InvalidValue(ref e)) if e.key == "thing1"),
        "{result:?}"
    );
    assert_eq!(sandbox(&app).calls("/cgi-bin/message/subscribe/send"), 0);
    assert_eq!(quota(&app, "o-alice", "SBX-BIRTHDAY").await, 1);
}

fn target(app: &TestApp, format: PushFormat, aes_key: Option<&str>) -> PushTarget {
    PushTarget {
        url: app.url("/wechat/push"),
        token: PUSH_TOKEN.into(),
        aes_key: aes_key.map(str::to_string),
        appid: SANDBOX_APPID.into(),
        format,
    }
}

fn popup(results: &[(&str, &str)]) -> Vec<Map<String, Value>> {
    results
        .iter()
        .map(|(t, s)| {
            let mut m = Map::new();
            m.insert("TemplateId".into(), json!(t));
            m.insert("SubscribeStatusString".into(), json!(s));
            m.insert("PopupScene".into(), json!("0"));
            m
        })
        .collect()
}

async fn deliver(app: &TestApp, push: &sandbox::SignedPush) -> reqwest::Response {
    app.client
        .post(app.url("/wechat/push"))
        .query(&push.query)
        .header("content-type", push.content_type)
        .body(push.body.clone())
        .send()
        .await
        .unwrap()
}

async fn pushes_in_every_form_update_quotas(aes_key: Option<&'static str>) {
    let app =
        spawn_app_with(|s| s.wechat.push_aes_key = aes_key.map(secrecy::SecretString::from)).await;
    let _ = login(&app, "o-alice").await;
    let mut created = 1_700_000_000;
    for format in [PushFormat::Json, PushFormat::Xml] {
        // One template: JSON's List is an object. Two: an array.
        for results in [
            vec![("SBX-RECALL", "accept")],
            vec![("SBX-RECALL", "accept"), ("SBX-CARE", "accept")],
        ] {
            created += 1;
            let plain = sandbox::render(
                format,
                "o-alice",
                created,
                "subscribe_msg_popup_event",
                &popup(&results),
            );
            let push = sandbox::sign(&target(&app, format, aes_key), &plain);
            let res = deliver(&app, &push).await;
            assert_eq!(res.status(), 200);
            assert_eq!(res.text().await.unwrap(), "success");
        }
    }
    assert_eq!(quota(&app, "o-alice", "SBX-RECALL").await, 4);
    assert_eq!(quota(&app, "o-alice", "SBX-CARE").await, 2);

    // The member switches a template off in WeChat's settings.
    let mut off = Map::new();
    off.insert("TemplateId".into(), json!("SBX-CARE"));
    off.insert("SubscribeStatusString".into(), json!("reject"));
    let plain = sandbox::render(
        PushFormat::Json,
        "o-alice",
        created + 1,
        "subscribe_msg_change_event",
        &[off],
    );
    let res = deliver(
        &app,
        &sandbox::sign(&target(&app, PushFormat::Json, aes_key), &plain),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(quota(&app, "o-alice", "SBX-CARE").await, 0);
}

#[tokio::test]
async fn plaintext_pushes_in_json_and_xml_with_one_and_several_templates_update_quotas() {
    pushes_in_every_form_update_quotas(None).await;
}

#[tokio::test]
async fn safe_mode_pushes_in_json_and_xml_with_one_and_several_templates_update_quotas() {
    pushes_in_every_form_update_quotas(Some(AES_KEY)).await;
}

#[tokio::test]
async fn forged_pushes_are_rejected_and_change_nothing() {
    let app =
        spawn_app_with(|s| s.wechat.push_aes_key = Some(secrecy::SecretString::from(AES_KEY)))
            .await;
    let _ = login(&app, "o-alice").await;
    let plain = sandbox::render(
        PushFormat::Json,
        "o-alice",
        1_700_000_001,
        "subscribe_msg_popup_event",
        &popup(&[("SBX-RECALL", "accept")]),
    );
    let good = sandbox::sign(&target(&app, PushFormat::Json, Some(AES_KEY)), &plain);
    let tamper = |name: &str, value: &str| {
        let mut p = good.clone();
        for (k, v) in p.query.iter_mut() {
            if k == name {
                *v = value.to_string();
            }
        }
        p
    };

    let wrong_signature = tamper("signature", "0000000000000000000000000000000000000000");
    let wrong_msg_signature = tamper("msg_signature", "0000000000000000000000000000000000000000");
    let mut plaintext_in_safe_mode = sandbox::sign(&target(&app, PushFormat::Json, None), &plain);
    plaintext_in_safe_mode
        .query
        .retain(|(k, _)| k != "encrypt_type");
    // Encrypted and signed correctly, but for another mini-program.
    let mut other_app = target(&app, PushFormat::Json, Some(AES_KEY));
    other_app.appid = "wx0000000000000000".into();
    let wrong_appid = sandbox::sign(&other_app, &plain);

    for (name, push) in [
        ("signature", &wrong_signature),
        ("msg_signature", &wrong_msg_signature),
        ("plaintext in safe mode", &plaintext_in_safe_mode),
        ("appid trailer", &wrong_appid),
    ] {
        let res = deliver(&app, push).await;
        assert_eq!(res.status(), 401, "{name}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signature", "{name}");
    }
    assert_eq!(quota(&app, "o-alice", "SBX-RECALL").await, 0);
    let stored = entity::wechat_push_event::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    assert_eq!(deliver(&app, &good).await.status(), 200);
    assert_eq!(quota(&app, "o-alice", "SBX-RECALL").await, 1);
}

#[tokio::test]
async fn a_retried_push_is_processed_once() {
    let app = spawn_app().await;
    let _ = login(&app, "o-alice").await;
    let plain = sandbox::render(
        PushFormat::Xml,
        "o-alice",
        1_700_000_009,
        "subscribe_msg_popup_event",
        &popup(&[("SBX-RECALL", "accept")]),
    );

    for _ in 0..3 {
        // WeChat re-signs each retry but keeps sender, time and event.
        let push = sandbox::sign(&target(&app, PushFormat::Xml, None), &plain);
        assert_eq!(deliver(&app, &push).await.status(), 200);
    }

    assert_eq!(quota(&app, "o-alice", "SBX-RECALL").await, 1);
}

#[tokio::test]
async fn the_push_url_verification_echoes_only_when_signed() {
    let app = spawn_app().await;
    // Vector A's parameters, signed with this app's token.
    let sig = memberhub::wechat::crypto::push_signature(PUSH_TOKEN, "1714036504", "1514711492");
    let ok = app
        .client
        .get(app.url("/wechat/push"))
        .query(&[
            ("signature", sig.as_str()),
            ("timestamp", "1714036504"),
            ("nonce", "1514711492"),
            ("echostr", "4375120948345356249"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "4375120948345356249");
    let forged = app
        .client
        .get(app.url("/wechat/push"))
        .query(&[
            ("signature", "f464b24fc39322e44b38aa78f5edd27bd1441696"),
            ("timestamp", "1714036504"),
            ("nonce", "1514711492"),
            ("echostr", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn subscriptions_are_each_members_own() {
    let app = spawn_app().await;
    let alice = login(&app, "o-alice").await;
    let bob = login(&app, "o-bob").await;

    let (status, body) = post(
        &app,
        "/api/v1/member/subscriptions",
        Some(&alice),
        json!({"results": {"SBX-RECALL": "accept", "SBX-CARE": "reject"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["quotas"]["SBX-RECALL"], 1);

    let (_, bobs) = get(&app, "/api/v1/member/subscriptions", &bob).await;
    assert_eq!(bobs["quotas"]["SBX-RECALL"], 0);
    assert!(bobs["scenes"]["care"]
        .as_array()
        .unwrap()
        .contains(&json!("SBX-RECALL")));
    let (status, body) = post(
        &app,
        "/api/v1/member/subscriptions",
        Some(&bob),
        json!({"results": {"SBX-RECALL": "ban"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["quotas"]["SBX-RECALL"], 0);
    assert_eq!(
        quota(&app, "o-alice", "SBX-RECALL").await,
        1,
        "bob's report changed alice's quota"
    );

    let (status, body) = post(
        &app,
        "/api/v1/member/subscriptions",
        Some(&bob),
        json!({"results": {"NOT-A-TEMPLATE": "accept"}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "results");
    let (status, _) = post(
        &app,
        "/api/v1/member/subscriptions",
        Some(&bob),
        json!({"results": {"SBX-RECALL": "maybe"}}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &app,
        "/api/v1/member/subscriptions",
        None,
        json!({"results": {"SBX-RECALL": "accept"}}),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn referral_codes_are_per_member_and_the_qr_image_is_fetched_once() {
    let app = spawn_app().await;
    let alice = login(&app, "o-alice").await;
    let bob = login(&app, "o-bob").await;

    let (_, a) = get(&app, "/api/v1/member/referral", &alice).await;
    let (_, b) = get(&app, "/api/v1/member/referral", &bob).await;
    assert_ne!(a["code"], b["code"]);
    assert_eq!(a["scene"], format!("r={}", a["code"].as_str().unwrap()));

    for _ in 0..2 {
        let res = app
            .client
            .get(app.url("/api/v1/member/referral/qrcode"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/png");
        assert!(res.bytes().await.unwrap().starts_with(b"\x89PNG"));
    }
    assert_eq!(sandbox(&app).calls("/wxa/getwxacodeunlimit"), 1);

    // WeChat answers an error as JSON with HTTP 200: it must not become an image.
    sandbox(&app).inject_fault("/wxa/getwxacodeunlimit", 45009, Some(1));
    let res = app
        .client
        .get(app.url("/api/v1/member/referral/qrcode"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "wechat_error");
}
