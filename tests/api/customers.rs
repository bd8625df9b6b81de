//! Customers for staff: for each role, what it may and may not do, inside its store and across
//! stores by id; duplicate phones (also raced); search; masking; reveal and its audit trail.

use entity::{audit_log, customer};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{
    create_staff, create_store, spawn_app, spawn_app_with, staff_login, Reply, StaffClient, TestApp,
};

/// Two stores with a full team at A and a manager and consultant at B; customer X belongs to
/// A and is assigned to consultant `c1`, customer Y belongs to B.
struct Chain {
    app: TestApp,
    store_a: i64,
    store_b: i64,
    c1_id: i64,
    c_b_id: i64,
    admin: StaffClient,
    manager_a: StaffClient,
    c1: StaffClient,
    c2: StaffClient,
    desk_a: StaffClient,
    manager_b: StaffClient,
    x: i64,
    y: i64,
}

const X_PHONE: &str = "13811112222";
const Y_PHONE: &str = "13933334444";

async fn chain_with(app: TestApp) -> Chain {
    let store_a = create_store(&app, "静安店").await;
    let store_b = create_store(&app, "浦东店").await;
    create_staff(&app, "hq", "admin", None).await;
    create_staff(&app, "mgr.a", "manager", Some(store_a)).await;
    let c1_id = create_staff(&app, "c1", "consultant", Some(store_a)).await;
    create_staff(&app, "c2", "consultant", Some(store_a)).await;
    create_staff(&app, "desk.a", "front_desk", Some(store_a)).await;
    create_staff(&app, "mgr.b", "manager", Some(store_b)).await;
    let c_b_id = create_staff(&app, "c.b", "consultant", Some(store_b)).await;
    let admin = staff_login(&app, "hq").await;
    let manager_a = staff_login(&app, "mgr.a").await;
    let c1 = staff_login(&app, "c1").await;
    let c2 = staff_login(&app, "c2").await;
    let desk_a = staff_login(&app, "desk.a").await;
    let manager_b = staff_login(&app, "mgr.b").await;
    let x = c1
        .post("/api/v1/staff/customers", json!({"name": "王小美", "phone": X_PHONE, "gender": "female", "birthday": "1990-05-20", "tags": ["怕疼"]}))
        .await;
    assert_eq!(x.status, 201, "{x:?}");
    assert_eq!(
        x.body["consultant_id"], c1_id,
        "a consultant's new customer is theirs"
    );
    let x = x.body["id"].as_i64().unwrap();
    let note = c1
        .post(
            &format!("/api/v1/staff/customers/{x}/notes"),
            json!({"body": "喜欢粉色玫瑰"}),
        )
        .await;
    assert_eq!(note.status, 201, "{note:?}");
    let y = manager_b
        .post(
            "/api/v1/staff/customers",
            json!({"name": "赵小丽", "phone": Y_PHONE, "consultant_id": c_b_id}),
        )
        .await;
    assert_eq!(y.status, 201, "{y:?}");
    let y = y.body["id"].as_i64().unwrap();
    Chain {
        app,
        store_a,
        store_b,
        c1_id,
        c_b_id,
        admin,
        manager_a,
        c1,
        c2,
        desk_a,
        manager_b,
        x,
        y,
    }
}

async fn chain() -> Chain {
    chain_with(spawn_app().await).await
}

fn ids(page: &Reply) -> Vec<i64> {
    page.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page:?}"))
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_store_role_sees_only_its_store_and_gets_nothing_of_another_store_by_id() {
    let ch = chain().await;
    let y = ch.y;
    for (who, s) in [
        ("manager", &ch.manager_a),
        ("consultant", &ch.c1),
        ("front desk", &ch.desk_a),
    ] {
        let list = s.get("/api/v1/staff/customers").await;
        assert_eq!(list.status, 200, "{who}: {list:?}");
        assert_eq!(
            ids(&list),
            vec![ch.x],
            "{who} listed another store's customer"
        );
        // Store B's customer by id: never the data, whatever is tried.
        for reply in [
            s.get(&format!("/api/v1/staff/customers/{y}")).await,
            s.patch(
                &format!("/api/v1/staff/customers/{y}"),
                json!({"name": "改名"}),
            )
            .await,
            s.patch(
                &format!("/api/v1/staff/customers/{y}"),
                json!({"tags": ["x"]}),
            )
            .await,
            s.post(
                &format!("/api/v1/staff/customers/{y}/reveal-phone"),
                json!({}),
            )
            .await,
            s.post(
                &format!("/api/v1/staff/customers/{y}/notes"),
                json!({"body": "窥探"}),
            )
            .await,
            s.get(&format!("/api/v1/staff/customers?store_id={}", ch.store_b))
                .await,
            s.get("/api/v1/staff/customers?q=赵").await,
            s.get("/api/v1/staff/customers?q=4444").await,
            s.post("/api/v1/staff/customers/lookup", json!({"phone": Y_PHONE}))
                .await,
            s.post("/api/v1/staff/customers/claim", json!({"phone": Y_PHONE}))
                .await,
        ] {
            assert!(matches!(reply.status, 403 | 404 | 200), "{who}: {reply:?}");
            assert!(
                !reply.text.contains("赵小丽"),
                "{who} saw B's customer: {reply:?}"
            );
            assert!(
                !reply.text.contains("139****4444"),
                "{who} saw B's phone: {reply:?}"
            );
            assert!(!reply.text.contains(Y_PHONE), "{who} saw B's full phone");
        }
        // Moving B's customer into A is not a claim.
        let steal = s
            .patch(
                &format!("/api/v1/staff/customers/{y}"),
                json!({"home_store_id": ch.store_a}),
            )
            .await;
        assert!(matches!(steal.status, 403 | 404), "{who}: {steal:?}");
    }
    let y_now = customer::Entity::find_by_id(y)
        .one(&ch.app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(y_now.name.as_deref(), Some("赵小丽"));
    assert_eq!(y_now.home_store_id, Some(ch.store_b));

    // The admin sees the chain, and can narrow it to a store.
    let all = ch.admin.get("/api/v1/staff/customers").await;
    assert_eq!(ids(&all), vec![ch.y, ch.x]);
    let b = ch
        .admin
        .get(&format!("/api/v1/staff/customers?store_id={}", ch.store_b))
        .await;
    assert_eq!(ids(&b), vec![ch.y]);
    // And B's manager sees B's.
    assert_eq!(
        ids(&ch.manager_b.get("/api/v1/staff/customers").await),
        vec![ch.y]
    );
}

#[tokio::test]
async fn sensitive_detail_follows_role_and_assignment() {
    let ch = chain().await;
    let x = ch.x;
    let detail = |s: &StaffClient| {
        let s = s.clone();
        async move { s.get(&format!("/api/v1/staff/customers/{x}")).await }
    };
    // Notes: admin, manager and the assigned consultant; not another consultant, not the desk.
    for (who, s, sees) in [
        ("admin", &ch.admin, true),
        ("manager", &ch.manager_a, true),
        ("assigned consultant", &ch.c1, true),
        ("other consultant", &ch.c2, false),
        ("front desk", &ch.desk_a, false),
    ] {
        let d = detail(s).await;
        assert_eq!(d.status, 200, "{who}: {d:?}");
        assert_eq!(d.body["phone_masked"], "138****2222");
        assert_eq!(d.body["tags"], json!(["怕疼"]));
        if sees {
            assert_eq!(d.body["notes"][0]["body"], "喜欢粉色玫瑰", "{who}");
        } else {
            assert!(d.body["notes"].is_null(), "{who} saw notes: {d:?}");
            assert!(!d.text.contains("玫瑰"), "{who}");
        }
    }
    // Reveal: admin, manager, assigned consultant; 403 with a stable code for the others.
    for (who, s, expect) in [
        ("admin", &ch.admin, "ok"),
        ("manager", &ch.manager_a, "ok"),
        ("assigned consultant", &ch.c1, "ok"),
        ("other consultant", &ch.c2, "not_assigned"),
        ("front desk", &ch.desk_a, "permission_denied"),
    ] {
        let r = s
            .post(
                &format!("/api/v1/staff/customers/{x}/reveal-phone"),
                json!({}),
            )
            .await;
        if expect == "ok" {
            assert_eq!(r.status, 200, "{who}: {r:?}");
            assert_eq!(r.body["phone"], X_PHONE);
            assert_eq!(r.headers["cache-control"], "no-store");
        } else {
            assert_eq!((r.status, r.code()), (403, expect), "{who}: {r:?}");
            assert!(!r.text.contains(X_PHONE));
        }
        assert_eq!(d_can_reveal(s, x).await, expect == "ok", "{who}");
    }
    // Writing notes and editing: the other consultant is refused, the desk edits basics but
    // cannot write notes.
    let n = ch
        .c2
        .post(
            &format!("/api/v1/staff/customers/{x}/notes"),
            json!({"body": "x"}),
        )
        .await;
    assert_eq!((n.status, n.code()), (403, "not_assigned"));
    let n = ch
        .desk_a
        .post(
            &format!("/api/v1/staff/customers/{x}/notes"),
            json!({"body": "x"}),
        )
        .await;
    assert_eq!((n.status, n.code()), (403, "permission_denied"));
    let e = ch
        .c2
        .patch(
            &format!("/api/v1/staff/customers/{x}"),
            json!({"name": "改名"}),
        )
        .await;
    assert_eq!((e.status, e.code()), (403, "not_assigned"));
    let e = ch
        .desk_a
        .patch(
            &format!("/api/v1/staff/customers/{x}"),
            json!({"name": "王美美", "tags": ["VIP", "怕疼"]}),
        )
        .await;
    assert_eq!(e.status, 200, "{e:?}");
    assert_eq!(e.body["name"], "王美美");
    assert_eq!(e.body["tags"], json!(["VIP", "怕疼"]));
    let e = ch
        .c1
        .patch(
            &format!("/api/v1/staff/customers/{x}"),
            json!({"birthday": null}),
        )
        .await;
    assert_eq!(e.status, 200, "{e:?}");
    assert!(e.body["birthday"].is_null());

    // A setting widens consultants to their whole store.
    let wide =
        chain_with(spawn_app_with(|s| s.staff.consultant_sees_store_detail = true).await).await;
    let d = wide
        .c2
        .get(&format!("/api/v1/staff/customers/{}", wide.x))
        .await;
    assert_eq!(d.body["notes"][0]["body"], "喜欢粉色玫瑰");
    let r = wide
        .c2
        .post(
            &format!("/api/v1/staff/customers/{}/reveal-phone", wide.x),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
}

async fn d_can_reveal(s: &StaffClient, id: i64) -> bool {
    s.get(&format!("/api/v1/staff/customers/{id}")).await.body["can_reveal_phone"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn creating_assigning_and_moving_customers_respect_role_and_store() {
    let ch = chain().await;
    // Store staff register customers for their own store only.
    let other = ch
        .desk_a
        .post(
            "/api/v1/staff/customers",
            json!({"name": "张三", "phone": "13700000001", "home_store_id": ch.store_b}),
        )
        .await;
    assert_eq!((other.status, other.code()), (403, "permission_denied"));
    let made = ch
        .desk_a
        .post("/api/v1/staff/customers", json!({"name": "张三", "phone": "137 0000 0001", "source": "walk_in", "referrer_id": ch.x}))
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(made.body["home_store_id"], ch.store_a);
    assert_eq!(made.body["phone_masked"], "137****0001");
    assert_eq!(made.body["referrer_id"], ch.x);
    assert!(made.body["consultant_id"].is_null());
    let id = made.body["id"].as_i64().unwrap();

    // Assigning: the desk and the manager may, a consultant may not; only a consultant of
    // the customer's own store can be assigned.
    let wrong_store = ch
        .desk_a
        .patch(
            &format!("/api/v1/staff/customers/{id}"),
            json!({"consultant_id": ch.c_b_id}),
        )
        .await;
    assert_eq!(
        (
            wrong_store.status,
            wrong_store.body["error"]["field"].as_str()
        ),
        (400, Some("consultant_id"))
    );
    let by_consultant = ch
        .c1
        .patch(
            &format!("/api/v1/staff/customers/{id}"),
            json!({"consultant_id": ch.c1_id}),
        )
        .await;
    assert_eq!(
        (by_consultant.status, by_consultant.code()),
        (403, "permission_denied")
    );
    let assigned = ch
        .desk_a
        .patch(
            &format!("/api/v1/staff/customers/{id}"),
            json!({"consultant_id": ch.c1_id}),
        )
        .await;
    assert_eq!(assigned.status, 200, "{assigned:?}");
    assert_eq!(assigned.body["consultant_id"], ch.c1_id);
    assert_eq!(assigned.body["consultant_name"], "c1 老师");
    // Now c1 may see the notes and phone of this customer.
    assert!(d_can_reveal(&ch.c1, id).await);

    // Moving between stores is for HQ; it drops a consultant who does not work there.
    let moved = ch
        .manager_a
        .patch(
            &format!("/api/v1/staff/customers/{id}"),
            json!({"home_store_id": ch.store_b}),
        )
        .await;
    assert_eq!((moved.status, moved.code()), (403, "permission_denied"));
    let moved = ch
        .admin
        .patch(
            &format!("/api/v1/staff/customers/{id}"),
            json!({"home_store_id": ch.store_b}),
        )
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["home_store_id"], ch.store_b);
    assert!(moved.body["consultant_id"].is_null());
    assert_eq!(
        ch.c1
            .get(&format!("/api/v1/staff/customers/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        ch.manager_b
            .get(&format!("/api/v1/staff/customers/{id}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bad_input_is_named_and_changes_nothing() {
    let ch = chain().await;
    let before = customer::Entity::find()
        .count(&ch.app.state.db)
        .await
        .unwrap();
    for (body, field) in [
        (json!({"name": "", "phone": "13700000002"}), Some("name")),
        (json!({"name": "李四", "phone": "12345"}), Some("phone")),
        (
            json!({"name": "李四", "phone": "13700000002", "birthday": "2999-01-01"}),
            Some("birthday"),
        ),
        (
            json!({"name": "李四", "phone": "13700000002", "tags": [""]}),
            Some("tags"),
        ),
        (
            json!({"name": "李四", "phone": "13700000002", "referrer_id": 999999}),
            Some("referrer_id"),
        ),
        (
            json!({"name": "李四", "phone": "13700000002", "gender": "robot"}),
            None,
        ),
        (
            json!({"name": "李四", "phone": "13700000002", "vip": true}),
            None,
        ),
        (
            json!({"name": "李四", "phone": "13700000002", "birthday": "20-01-1990"}),
            None,
        ),
    ] {
        let r = ch
            .desk_a
            .post("/api/v1/staff/customers", body.clone())
            .await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        if let Some(f) = field {
            assert_eq!(r.body["error"]["field"], f, "{body}: {r:?}");
        }
        assert!(r.body["error"]["message"].as_str().is_some());
    }
    let r = ch
        .desk_a
        .patch(
            &format!("/api/v1/staff/customers/{}", ch.x),
            json!({"name": "新名字", "phone": "abc"}),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "phone");
    let r = ch
        .desk_a
        .post(
            &format!("/api/v1/staff/customers/{}/notes", ch.x),
            json!({"body": ""}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = ch.desk_a.get("/api/v1/staff/customers?limit=1000").await;
    assert_eq!(r.body["error"]["field"], "limit");
    assert_eq!(
        customer::Entity::find()
            .count(&ch.app.state.db)
            .await
            .unwrap(),
        before
    );
    let x = customer::Entity::find_by_id(ch.x)
        .one(&ch.app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x.name.as_deref(), Some("王小美"));
    assert_eq!(
        ch.desk_a.get("/api/v1/staff/customers/999999").await.status,
        404
    );
}

#[tokio::test]
async fn a_duplicate_phone_is_a_409_naming_the_existing_customer_masked_even_when_raced() {
    let ch = chain().await;
    // Store B's desk tries to register store A's customer: told who, masked, never a twin.
    let twin = ch
        .manager_b
        .post(
            "/api/v1/staff/customers",
            json!({"name": "王小美", "phone": "+86 138-1111-2222"}),
        )
        .await;
    assert_eq!(
        (twin.status, twin.code()),
        (409, "phone_exists"),
        "{twin:?}"
    );
    let existing = &twin.body["error"]["existing"];
    assert_eq!(existing["id"], ch.x);
    assert_eq!(existing["name_masked"], "王**");
    assert_eq!(existing["phone_masked"], "138****2222");
    assert!(!twin.text.contains(X_PHONE));
    // Editing another customer onto a taken phone is refused the same way.
    let clash = ch
        .manager_b
        .patch(
            &format!("/api/v1/staff/customers/{}", ch.y),
            json!({"phone": X_PHONE}),
        )
        .await;
    assert_eq!((clash.status, clash.code()), (409, "phone_exists"));

    // Eight desks register the same walk-in at once: one customer.
    let body = json!({"name": "孙悦", "phone": "13600006666"});
    let attempts = (0..8).map(|_| {
        let s = ch.desk_a.clone();
        let b = body.clone();
        async move { s.post("/api/v1/staff/customers", b).await }
    });
    let replies = futures_util::future::join_all(attempts).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 409 && r.code() == "phone_exists")
        .count();
    assert_eq!((created, refused), (1, 7), "{replies:?}");
    let rows = customer::Entity::find()
        .filter(customer::Column::Name.eq("孙悦"))
        .count(&ch.app.state.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn search_finds_by_name_last_digits_full_phone_and_tag_and_shows_only_masked_phones() {
    let ch = chain().await;
    let by_name = ch.manager_a.get("/api/v1/staff/customers?q=小美").await;
    assert_eq!(ids(&by_name), vec![ch.x]);
    let by_tail = ch.manager_a.get("/api/v1/staff/customers?q=2222").await;
    assert_eq!(ids(&by_tail), vec![ch.x]);
    let by_phone = ch
        .manager_a
        .post(
            "/api/v1/staff/customers/lookup",
            json!({"phone": "138 1111 2222"}),
        )
        .await;
    assert_eq!(ids(&by_phone), vec![ch.x]);
    let by_b = ch
        .manager_b
        .post("/api/v1/staff/customers/lookup", json!({"phone": X_PHONE}))
        .await;
    assert!(ids(&by_b).is_empty(), "{by_b:?}");
    // A full number never goes into a URL, where proxies and browser history keep it.
    let in_url = ch
        .manager_a
        .get(&format!("/api/v1/staff/customers?q={X_PHONE}"))
        .await;
    assert_eq!(
        (in_url.status, in_url.body["error"]["field"].as_str()),
        (400, Some("q"))
    );
    let unknown = ch
        .manager_a
        .get(&format!("/api/v1/staff/customers?phone={X_PHONE}"))
        .await;
    assert_eq!(unknown.status, 400);
    let by_tag = ch.manager_a.get("/api/v1/staff/customers?tag=怕疼").await;
    assert_eq!(ids(&by_tag), vec![ch.x]);
    assert!(ids(&ch.manager_a.get("/api/v1/staff/customers?tag=VIP").await).is_empty());
    let mine = ch.c1.get("/api/v1/staff/customers?mine=true").await;
    assert_eq!(ids(&mine), vec![ch.x]);
    assert!(ids(&ch.c2.get("/api/v1/staff/customers?mine=true").await).is_empty());
    for page in [&by_name, &by_tail, &by_phone, &by_tag] {
        assert!(!page.text.contains(X_PHONE), "{page:?}");
        assert_eq!(page.body["items"][0]["phone_masked"], "138****2222");
    }
    // Phone lookups are reads of personal data and leave a trail (without the number).
    let trail = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("customer.search_phone"))
        .all(&ch.app.state.db)
        .await
        .unwrap();
    assert_eq!(trail.len(), 2);
    assert!(!format!("{trail:?}").contains(X_PHONE));

    // Pages: newest first, a cursor to the next.
    for i in 0..3 {
        ch.desk_a
            .post(
                "/api/v1/staff/customers",
                json!({"name": format!("客人{i}"), "phone": format!("1370000010{i}")}),
            )
            .await;
    }
    let first = ch.desk_a.get("/api/v1/staff/customers?limit=2").await;
    assert_eq!(ids(&first).len(), 2);
    let cursor = first.body["next_cursor"].as_i64().unwrap();
    let rest = ch
        .desk_a
        .get(&format!("/api/v1/staff/customers?limit=10&cursor={cursor}"))
        .await;
    assert_eq!(ids(&rest).len(), 2);
    assert!(rest.body["next_cursor"].is_null());
}

#[tokio::test]
async fn a_customer_who_bound_the_mini_program_first_is_found_by_full_phone_and_claimed() {
    let ch = chain().await;
    // The member bound their phone in WeChat before ever visiting: no store yet.
    let phone = memberhub::privacy::Phone::parse("13500005555", "86").unwrap();
    let now = chrono::Utc::now();
    let pooled = sea_orm::ActiveModelTrait::insert(
        customer::ActiveModel {
            phone_enc: sea_orm::Set(Some(ch.app.state.vault.encrypt(phone.as_str()))),
            phone_hash: sea_orm::Set(Some(ch.app.state.vault.phone_index(&phone))),
            phone_masked: sea_orm::Set(Some(phone.masked())),
            source: sea_orm::Set("wechat".into()),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
            ..Default::default()
        },
        &ch.app.state.db,
    )
    .await
    .unwrap();
    // Not browsable, not readable by id...
    assert!(!ids(&ch.desk_a.get("/api/v1/staff/customers").await).contains(&pooled.id));
    assert!(ids(&ch.desk_a.get("/api/v1/staff/customers?q=5555").await).is_empty());
    assert_eq!(
        ch.desk_a
            .get(&format!("/api/v1/staff/customers/{}", pooled.id))
            .await
            .status,
        404
    );
    // ...nor claimable by id...
    let by_id = ch
        .desk_a
        .patch(
            &format!("/api/v1/staff/customers/{}", pooled.id),
            json!({"home_store_id": ch.store_a}),
        )
        .await;
    assert!(matches!(by_id.status, 403 | 404), "{by_id:?}");
    // ...but found by the full phone the customer gives at the desk, and claimed with it.
    let found = ch
        .desk_a
        .post(
            "/api/v1/staff/customers/lookup",
            json!({"phone": "13500005555"}),
        )
        .await;
    assert_eq!(ids(&found), vec![pooled.id]);
    assert!(found.body["items"][0]["home_store_id"].is_null());
    let dup = ch
        .desk_a
        .post(
            "/api/v1/staff/customers",
            json!({"name": "钱多多", "phone": "13500005555"}),
        )
        .await;
    assert_eq!(dup.code(), "phone_exists");
    // Two stores claim at once: one wins.
    let (a, b) = tokio::join!(
        ch.desk_a.post(
            "/api/v1/staff/customers/claim",
            json!({"phone": "13500005555"})
        ),
        ch.manager_b.post(
            "/api/v1/staff/customers/claim",
            json!({"phone": "13500005555"})
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 404], "{a:?} {b:?}");
    let (winner, winner_store, loser) = if a.status == 200 {
        (&ch.desk_a, ch.store_a, &ch.manager_b)
    } else {
        (&ch.manager_b, ch.store_b, &ch.desk_a)
    };
    let claimed = winner
        .get(&format!("/api/v1/staff/customers/{}", pooled.id))
        .await;
    assert_eq!(claimed.body["home_store_id"], winner_store);
    assert_eq!(
        loser
            .get(&format!("/api/v1/staff/customers/{}", pooled.id))
            .await
            .status,
        404
    );
    let named = winner
        .patch(
            &format!("/api/v1/staff/customers/{}", pooled.id),
            json!({"name": "钱多多"}),
        )
        .await;
    assert_eq!(named.status, 200, "{named:?}");
    // The consultant role cannot claim; HQ is told to edit instead.
    let c = ch
        .c1
        .post(
            "/api/v1/staff/customers/claim",
            json!({"phone": "13500005555"}),
        )
        .await;
    assert_eq!(c.code(), "permission_denied");
    let hq = ch
        .admin
        .post(
            "/api/v1/staff/customers/claim",
            json!({"phone": "13500005555"}),
        )
        .await;
    assert_eq!(hq.code(), "no_own_store");
    let claims = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("customer.claim"))
        .count(&ch.app.state.db)
        .await
        .unwrap();
    assert_eq!(claims, 1);
}

#[tokio::test]
async fn no_response_but_the_reveal_holds_a_full_phone_and_each_detail_read_and_reveal_is_audited()
{
    let ch = chain().await;
    let x = ch.x;
    let mut seen: Vec<Reply> = Vec::new();
    seen.push(ch.manager_a.get("/api/v1/staff/customers").await);
    seen.push(
        ch.manager_a
            .get(&format!("/api/v1/staff/customers/{x}"))
            .await,
    );
    seen.push(ch.c1.get(&format!("/api/v1/staff/customers/{x}")).await);
    seen.push(
        ch.manager_a
            .patch(
                &format!("/api/v1/staff/customers/{x}"),
                json!({"phone": "13811119999"}),
            )
            .await,
    );
    seen.push(
        ch.manager_a
            .patch(
                &format!("/api/v1/staff/customers/{x}"),
                json!({"phone": X_PHONE}),
            )
            .await,
    );
    seen.push(
        ch.manager_b
            .post(
                "/api/v1/staff/customers",
                json!({"name": "王小美", "phone": X_PHONE}),
            )
            .await,
    );
    seen.push(ch.admin.get("/api/v1/staff/audit-log?limit=200").await);
    seen.push(
        ch.admin
            .post("/api/v1/staff/customers/lookup", json!({"phone": X_PHONE}))
            .await,
    );
    for r in &seen {
        assert!(!r.text.contains(X_PHONE), "a full phone leaked: {r:?}");
        assert!(
            !r.text.contains("13811119999"),
            "a full phone leaked: {r:?}"
        );
    }
    let reveal = ch
        .manager_a
        .post(
            &format!("/api/v1/staff/customers/{x}/reveal-phone"),
            json!({}),
        )
        .await;
    assert_eq!(reveal.body["phone"], X_PHONE);
    ch.admin
        .post(
            &format!("/api/v1/staff/customers/{x}/reveal-phone"),
            json!({}),
        )
        .await;

    let trail = |action: &'static str| {
        let db = ch.app.state.db.clone();
        async move {
            audit_log::Entity::find()
                .filter(audit_log::Column::Action.eq(action))
                .filter(audit_log::Column::TargetId.eq(x))
                .all(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(trail("customer.view").await.len(), 2);
    let reveals = trail("customer.reveal_phone").await;
    assert_eq!(reveals.len(), 2);
    assert_eq!(reveals[0].staff_username.as_deref(), Some("mgr.a"));
    assert_eq!(reveals[0].store_id, Some(ch.store_a));
    assert_eq!(reveals[1].staff_username.as_deref(), Some("hq"));
    // Each write too: creation, two edits and the note.
    assert_eq!(trail("customer.create").await.len(), 1);
    assert_eq!(trail("customer.update").await.len(), 2);
    assert_eq!(trail("customer.note_add").await.len(), 1);
    let everything: Vec<Value> = audit_log::Entity::find()
        .all(&ch.app.state.db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.detail)
        .collect();
    assert!(!format!("{everything:?}").contains(X_PHONE));
    // A refused reveal leaves no "revealed" entry.
    ch.desk_a
        .post(
            &format!("/api/v1/staff/customers/{x}/reveal-phone"),
            json!({}),
        )
        .await;
    assert_eq!(trail("customer.reveal_phone").await.len(), 2);
}
