//! The member's own account view, their data export and deletion (PIPL), carried out by an
//! admin without touching the books; and the artwork the mini-program loads from `/static/mp/`.

use entity::{consumption, customer, points_entry, privacy_request};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{
    chain, create_staff, member_joined, member_login, spawn_app, staff_login_bearer,
};

#[tokio::test]
async fn the_account_says_where_the_member_stands_before_and_after_joining() {
    let app = spawn_app().await;
    let m = member_login(&app, "o-new").await;
    let r = m.get("/api/v1/member/account").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["consent"].is_null());
    assert!(r.body["phone_masked"].is_null());
    assert_eq!(r.body["customer_linked"], false);
    assert_eq!(r.body["is_member"], false);
    assert!(r.body["referral_code"].is_string());

    let (alice, card) = member_joined(&app, "o-alice", "13800001234").await;
    assert!(card["birthday"].is_null(), "{card}");
    let r = alice.get("/api/v1/member/account").await;
    assert_eq!(r.body["consent"]["policy_version"], "2026-11");
    assert_eq!(r.body["consent"]["marketing"], true);
    assert_eq!(r.body["phone_masked"], "138****1234");
    assert_eq!(r.body["is_member"], true);
    // The other member's account view is their own.
    assert!(m.get("/api/v1/member/account").await.body["phone_masked"].is_null());

    // The birthday, once set, is on the card.
    let r = alice
        .patch("/api/v1/member/me", json!({"birthday": "1991-03-08"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["birthday"], "1991-03-08");
    assert_eq!(
        alice.get("/api/v1/member/me").await.body["birthday"],
        "1991-03-08"
    );
}

#[tokio::test]
async fn a_member_exports_their_own_data_and_nobody_elses() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (alice, card) = member_joined(&app, "o-alice", "13800001234").await;
    let (_bob, bob_card) = member_joined(&app, "o-bob", "13900005678").await;
    let alice_id = chain.claim(&app, card["member_id"].as_i64().unwrap()).await;
    let bob_id = chain
        .claim(&app, bob_card["member_id"].as_i64().unwrap())
        .await;
    chain.consume(alice_id, "EXP-A", 50_000).await;
    chain.consume(bob_id, "EXP-B", 80_000).await;

    let r = alice.post("/api/v1/member/data-export", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["kind"], "export");
    assert_eq!(r.body["status"], "completed");
    let data = &r.body["data"];
    assert_eq!(data["customer"][0]["phone"], "13800001234");
    assert!(data["customer"][0].get("phone_enc").is_none());
    assert!(data["customer"][0].get("phone_hash").is_none());
    assert!(data["wechat_account"][0].get("session_key_enc").is_none());
    assert_eq!(data["consents"].as_array().unwrap().len(), 1);
    let orders: Vec<&str> = data["consumptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(orders, ["EXP-A"], "only her own consumptions");
    assert!(!data["points_entries"].as_array().unwrap().is_empty());
    assert!(!r.body.to_string().contains("13900005678"));
    let recorded = privacy_request::Entity::find()
        .filter(privacy_request::Column::Kind.eq("export"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn a_deletion_request_is_recorded_once_and_an_admin_anonymises_but_keeps_the_books() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    create_staff(&app, "mgr", "manager", Some(chain.store)).await;
    let mgr = staff_login_bearer(&app, "mgr").await;
    let (alice, card) = member_joined(&app, "o-alice", "13800001234").await;
    let (bob, _) = member_joined(&app, "o-bob", "13900005678").await;
    let customer_id = chain.claim(&app, card["member_id"].as_i64().unwrap()).await;
    chain.consume(customer_id, "DEL-1", 30_000).await;

    // Two taps at once: one request.
    let (a, b) = tokio::join!(
        alice.post("/api/v1/member/deletion", json!({})),
        alice.post("/api/v1/member/deletion", json!({}))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 202], "{a:?} {b:?}");
    assert_eq!(a.body["request_id"], b.body["request_id"]);
    let request_id = a.body["request_id"].as_i64().unwrap();
    assert!(alice.get("/api/v1/member/account").await.body["deletion_requested_at"].is_string());
    assert!(bob.get("/api/v1/member/account").await.body["deletion_requested_at"].is_null());

    // Only admins handle it.
    let r = mgr.get("/api/v1/staff/privacy-requests").await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = chain.admin.get("/api/v1/staff/privacy-requests").await;
    assert_eq!(r.status, 200, "{r:?}");
    let open = r.body["requests"].as_array().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["customer_id"], customer_id);
    let path = format!("/api/v1/staff/privacy-requests/{request_id}");
    let r = chain.admin.post(&path, json!({"action": "reject"})).await;
    assert_eq!((r.status, r.code()), (400, "validation_failed"), "{r:?}");
    let r = chain.admin.post(&path, json!({"action": "erase"})).await;
    assert_eq!(r.status, 400, "{r:?}");

    let r = chain.admin.post(&path, json!({"action": "complete"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "completed");
    let r = chain.admin.post(&path, json!({"action": "complete"})).await;
    assert_eq!((r.status, r.code()), (409, "request_closed"), "{r:?}");

    let c = customer::Entity::find_by_id(customer_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.name, None);
    assert_eq!(
        (c.phone_enc, c.phone_hash, c.phone_masked),
        (None, None, None)
    );
    // The books stay.
    let kept = consumption::Entity::find()
        .filter(consumption::Column::CustomerId.eq(customer_id))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(kept, 1);
    assert!(
        points_entry::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap()
            > 0
    );
    // Her sessions end; Bob's do not.
    assert_eq!(alice.get("/api/v1/member/me").await.status, 401);
    assert_eq!(bob.get("/api/v1/member/me").await.status, 200);
}

#[tokio::test]
async fn artwork_is_served_by_content_hash_with_a_manifest() {
    let app = spawn_app().await;
    let r = app.get("/static/mp/manifest.json").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let manifest: serde_json::Value = r.json().await.unwrap();
    let assets = manifest["assets"].as_object().unwrap();
    for name in [
        "card-normal",
        "card-gold",
        "card-platinum",
        "card-diamond",
        "event-banner",
        "referral-share",
    ] {
        assert!(assets.contains_key(name), "{name} missing from {manifest}");
    }
    let path = assets["card-gold"].as_str().unwrap();
    assert!(
        regex_like_hashed(path),
        "a content hash in the name: {path}"
    );
    let r = app.get(path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let again = app
        .client
        .get(app.url(path))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(app.get("/static/mp/card-gold.png").await.status(), 404);
    assert_eq!(
        app.get("/static/mp/card-gold.00000000.png").await.status(),
        404
    );
}

/// `/static/mp/<stem>.<8 hex>.<ext>`
fn regex_like_hashed(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/static/mp/") else {
        return false;
    };
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 3 && parts[1].len() == 8 && parts[1].chars().all(|c| c.is_ascii_hexdigit())
}
