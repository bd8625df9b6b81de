//! Message templates: the built-in defaults of every kind (the sandbox's templates in sandbox
//! mode), saving and editing a template, every validation rule refusing with the keyword it is
//! about and changing nothing, and admin-only access.

use std::collections::BTreeSet;

use memberhub::wechat::keywords;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use crate::helpers::{chain, spawn_app, Chain, TestApp};

const KINDS: [&str; 12] = [
    "birthday",
    "recall",
    "custom",
    "booking_confirmed",
    "booking_reminder",
    "waitlist_promoted",
    "points_expiring",
    "tier_changed",
    "retention_reminder",
    "follow_up_care",
    "event_cancelled",
    "booking_cancelled",
];

async fn list(chain: &Chain) -> Vec<Value> {
    let r = chain.admin.get("/api/v1/staff/templates").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["templates"].as_array().unwrap().clone()
}

fn of_kind<'a>(templates: &'a [Value], kind: &str) -> Vec<&'a Value> {
    templates.iter().filter(|t| t["kind"] == kind).collect()
}

async fn stored(app: &TestApp) -> Vec<entity::message_template::Model> {
    entity::message_template::Entity::find()
        .order_by_asc(entity::message_template::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

async fn audits(app: &TestApp, action: &str) -> u64 {
    entity::audit_log::Entity::find()
        .filter(entity::audit_log::Column::Action.eq(action))
        .count(&app.state.db)
        .await
        .unwrap()
}

fn booking_confirmed() -> Value {
    json!({
        "kind": "booking_confirmed",
        "template_id": "tmpl-Booking_01",
        "page": "pages/booking/detail?code={booking_code}",
        "keywords": {
            "thing1": "{event_title}",
            "time2": "{slot_time}",
            "character_string3": "{booking_code}",
            "thing4": "{customer_name}，您的预约已确认",
        },
    })
}

#[tokio::test]
async fn defaults_are_listed_for_every_kind_with_a_valid_preview() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let templates = list(&chain).await;
    assert_eq!(templates.len(), KINDS.len());
    let kinds: BTreeSet<&str> = templates
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, KINDS.into_iter().collect());
    for t in &templates {
        assert_eq!(t["is_default"], true, "{t}");
        assert_eq!(t["channel"], "subscribe", "{t}");
        assert!(t["id"].is_null(), "{t}");
        assert!(t["preview_error"].is_null(), "{t}");
        assert!(!t["variables"].as_array().unwrap().is_empty(), "{t}");
        let keywords = t["keywords"].as_object().unwrap();
        let preview = t["preview"].as_array().unwrap();
        assert_eq!(preview.len(), keywords.len(), "{t}");
        for item in preview {
            let key = item["keyword"].as_str().unwrap();
            let value = item["value"].as_str().unwrap();
            assert!(keywords.contains_key(key), "{t}");
            assert!(keywords::check(key, value).is_ok(), "{key}={value} in {t}");
            assert!(!value.contains('{'), "placeholders are filled: {t}");
        }
    }
    // The sandbox's templates back the kinds it has; the others are not configured.
    let confirmed = of_kind(&templates, "booking_confirmed")[0];
    assert_eq!(confirmed["template_id"], "SBX-BOOKING-CONFIRMED");
    let slot_time = confirmed["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "slot_time")
        .unwrap();
    assert_eq!(slot_time["type"], "time");
    let time2 = confirmed["preview"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["keyword"] == "time2")
        .unwrap();
    assert_eq!(time2["value"], "2026年12月3日 15:00");
    assert_eq!(
        of_kind(&templates, "points_expiring")[0]["template_id"],
        "SBX-POINTS-EXPIRING"
    );
    assert_eq!(of_kind(&templates, "event_cancelled")[0]["template_id"], "");
    assert_eq!(
        of_kind(&templates, "booking_cancelled")[0]["template_id"],
        ""
    );
    assert!(stored(&app).await.is_empty(), "listing saves nothing");
}

#[tokio::test]
async fn a_template_is_created_patched_and_listed() {
    let app = spawn_app().await;
    let chain = chain(&app).await;

    let r = chain
        .admin
        .post("/api/v1/staff/templates", booking_confirmed())
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["is_default"], false);
    assert_eq!(r.body["channel"], "subscribe");
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["template_id"], "tmpl-Booking_01");
    let preview: Vec<(String, String)> = r.body["preview"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["keyword"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(preview.contains(&("time2".into(), "2026年12月3日 15:00".into())));
    assert!(preview.contains(&("thing4".into(), "王小美，您的预约已确认".into())));

    // One template per kind and channel.
    let again = chain
        .admin
        .post("/api/v1/staff/templates", booking_confirmed())
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.code(), "template_exists");
    let mut oa = booking_confirmed();
    oa["channel"] = json!("oa_template");
    oa["active"] = json!(false);
    let r = chain.admin.post("/api/v1/staff/templates", oa).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["channel"], "oa_template");
    assert_eq!(r.body["active"], false);

    let templates = list(&chain).await;
    assert_eq!(templates.len(), KINDS.len() + 1);
    let mine = of_kind(&templates, "booking_confirmed");
    assert_eq!(mine.len(), 2, "the saved ones replace the default");
    assert!(mine.iter().all(|t| t["is_default"] == false));
    assert!(mine.iter().any(|t| t["id"] == id));

    let r = chain
        .admin
        .patch(
            &format!("/api/v1/staff/templates/{id}"),
            json!({"active": false, "page": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["active"], false);
    assert!(r.body["page"].is_null());
    assert_eq!(r.body["keywords"]["thing1"], "{event_title}", "untouched");
    assert_eq!(r.body["template_id"], "tmpl-Booking_01", "untouched");

    let r = chain
        .admin
        .patch(
            &format!("/api/v1/staff/templates/{id}"),
            json!({
                "template_id": "tmpl-Booking_02",
                "keywords": {"thing1": "{service}", "phrase2": "预约成功"},
                "active": true,
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["template_id"], "tmpl-Booking_02");
    assert_eq!(
        r.body["keywords"],
        json!({"thing1": "{service}", "phrase2": "预约成功"})
    );
    assert_eq!(r.body["preview"][0]["value"], "预约成功");
    assert_eq!(r.body["preview"][1]["value"], "光子嫩肤");

    let saved = stored(&app).await;
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0].template_id, "tmpl-Booking_02");
    assert!(saved[0].active);
    assert!(saved[0].updated_by_staff_id.is_some());
    let listed = list(&chain).await;
    let row = listed.iter().find(|t| t["id"] == id).unwrap();
    assert_eq!(row["template_id"], "tmpl-Booking_02");

    assert_eq!(audits(&app, "template.create").await, 2);
    assert_eq!(audits(&app, "template.update").await, 2);

    let missing = chain
        .admin
        .patch("/api/v1/staff/templates/999999", json!({"active": true}))
        .await;
    assert_eq!(missing.status, 404, "{missing:?}");
}

#[tokio::test]
async fn every_rule_refuses_naming_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let with_keywords = |kind: &str, keywords: Value| json!({"kind": kind, "template_id": "tmpl1", "keywords": keywords});
    let eleven: serde_json::Map<String, Value> = (1..=11)
        .map(|n| (format!("thing{n}"), json!("您好")))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        // A variable the kind does not have.
        (
            with_keywords("booking_confirmed", json!({"thing1": "{tier_name}"})),
            "keywords.thing1",
        ),
        // Keyword ids need a known type and a number.
        (
            with_keywords("booking_confirmed", json!({"foo1": "您好"})),
            "keywords.foo1",
        ),
        (
            with_keywords("booking_confirmed", json!({"thing": "您好"})),
            "keywords.thing",
        ),
        // Dates and times: exactly one date or time variable.
        (
            with_keywords("booking_confirmed", json!({"time2": "明天 {slot_time}"})),
            "keywords.time2",
        ),
        (
            with_keywords("booking_confirmed", json!({"time2": "{event_title}"})),
            "keywords.time2",
        ),
        (
            with_keywords("points_expiring", json!({"date2": "2026年12月3日"})),
            "keywords.date2",
        ),
        // Numbers: exactly one number variable.
        (
            with_keywords("points_expiring", json!({"number1": "{customer_name}"})),
            "keywords.number1",
        ),
        // Phrases: up to five Chinese characters, no variables.
        (
            with_keywords("booking_confirmed", json!({"phrase4": "预约已经成功了"})),
            "keywords.phrase4",
        ),
        (
            with_keywords("booking_confirmed", json!({"phrase4": "{service}"})),
            "keywords.phrase4",
        ),
        // character_string: no Chinese, in the text or in what a variable fills in.
        (
            with_keywords(
                "booking_confirmed",
                json!({"character_string3": "预约{booking_code}"}),
            ),
            "keywords.character_string3",
        ),
        (
            with_keywords(
                "booking_confirmed",
                json!({"character_string3": "{store_name}"}),
            ),
            "keywords.character_string3",
        ),
        // Malformed or empty expressions.
        (
            with_keywords("booking_confirmed", json!({"thing1": "{event_title"})),
            "keywords.thing1",
        ),
        (
            with_keywords("booking_confirmed", json!({"thing1": "  "})),
            "keywords.thing1",
        ),
        // How many keywords.
        (with_keywords("birthday", Value::Object(eleven)), "keywords"),
        (with_keywords("birthday", json!({})), "keywords"),
        // The page, the template id, the kind and the channel.
        (
            json!({"kind": "birthday", "template_id": "t1", "page": "/pages/index/index",
                   "keywords": {"thing1": "您好"}}),
            "page",
        ),
        (
            json!({"kind": "birthday", "template_id": "t1", "page": "p".repeat(129),
                   "keywords": {"thing1": "您好"}}),
            "page",
        ),
        (
            json!({"kind": "birthday", "template_id": "t1", "page": "pages/x?id={tier_name}",
                   "keywords": {"thing1": "您好"}}),
            "page",
        ),
        (
            json!({"kind": "birthday", "template_id": " ", "keywords": {"thing1": "您好"}}),
            "template_id",
        ),
        (
            json!({"kind": "anniversary", "template_id": "t1", "keywords": {"thing1": "您好"}}),
            "kind",
        ),
        (
            json!({"kind": "birthday", "channel": "sms", "template_id": "t1",
                   "keywords": {"thing1": "您好"}}),
            "channel",
        ),
    ];
    for (body, field) in &cases {
        let r = chain
            .admin
            .post("/api/v1/staff/templates", body.clone())
            .await;
        assert_eq!(r.status, 400, "{body} -> {r:?}");
        assert_eq!(r.code(), "validation_failed", "{body} -> {r:?}");
        assert_eq!(r.body["error"]["field"], *field, "{body} -> {r:?}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{r:?}"
        );
    }
    // Unknown fields are refused too.
    let mut extra = booking_confirmed();
    extra["colour"] = json!("red");
    let r = chain.admin.post("/api/v1/staff/templates", extra).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(stored(&app).await.is_empty(), "nothing was saved");
    assert_eq!(audits(&app, "template.create").await, 0);

    // The same rules guard an edit, which leaves the saved template as it was.
    let r = chain
        .admin
        .post("/api/v1/staff/templates", booking_confirmed())
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    let before = stored(&app).await;
    let path = format!("/api/v1/staff/templates/{id}");
    for (patch, field) in [
        (
            json!({"keywords": {"thing1": "{points_balance}"}}),
            "keywords.thing1",
        ),
        (
            json!({"keywords": {"time2": "{service}"}}),
            "keywords.time2",
        ),
        (json!({"page": "/pages/index/index"}), "page"),
        (json!({"template_id": ""}), "template_id"),
    ] {
        let r = chain.admin.patch(&path, patch.clone()).await;
        assert_eq!(r.status, 400, "{patch} -> {r:?}");
        assert_eq!(r.body["error"]["field"], field, "{patch} -> {r:?}");
    }
    let r = chain.admin.patch(&path, json!({"kind": "birthday"})).await;
    assert_eq!(r.status, 400, "the kind cannot change: {r:?}");
    assert_eq!(stored(&app).await, before);
    assert_eq!(audits(&app, "template.update").await, 0);
}

#[tokio::test]
async fn only_admins_manage_templates() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let r = chain.desk.get("/api/v1/staff/templates").await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = chain
        .desk
        .post("/api/v1/staff/templates", booking_confirmed())
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = chain
        .admin
        .post("/api/v1/staff/templates", booking_confirmed())
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_i64().unwrap();
    let before = stored(&app).await;
    let r = chain
        .desk
        .patch(
            &format!("/api/v1/staff/templates/{id}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(stored(&app).await, before);
    let anonymous = app.get("/api/v1/staff/templates").await;
    assert_eq!(anonymous.status().as_u16(), 401);
}
