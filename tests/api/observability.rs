use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_response_carries_its_own_request_id() {
    let app = spawn_app().await;

    let a = app.get("/healthz").await;
    let b = app.get("/no-such-page").await;

    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id(&a).len(), 36);
    assert_ne!(id(&a), id(&b));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_with_a_latency_histogram() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/api/v1/unknown/12345").await;

    let res = app.get("/metrics").await;

    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"memberhub_http_requests_total{endpoint="/healthz",method="GET",status="200"} 2"#
        ),
        "{text}"
    );
    // Unmatched paths are folded into one label so ids in URLs cannot explode the series.
    assert!(
        text.contains(r#"endpoint="UNKNOWN",method="GET",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("12345"));
    assert!(text.contains(
        r#"memberhub_http_requests_duration_seconds_bucket{endpoint="/healthz",method="GET",status="200",le="0.005"}"#
    ));
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_and_lists_every_route() {
    let app = spawn_app().await;

    let res = app.get("/api-docs/openapi.json").await;

    assert_eq!(res.status(), 200);
    let raw = res.text().await.unwrap();
    let spec = oas3::from_json(&raw).expect("not a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3."), "{}", spec.openapi);
    let paths: BTreeSet<String> = spec.paths.unwrap_or_default().keys().cloned().collect();
    // The sandbox's paths are WeChat's own API, not memberhub's, and stay out of the document.
    let expected: BTreeSet<String> = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api-docs/openapi.json",
        "/api/v1/member/auth/login",
        "/api/v1/member/auth/logout",
        "/api/v1/member/consent",
        "/api/v1/member/phone",
        "/api/v1/member/subscriptions",
        "/api/v1/member/referral",
        "/api/v1/member/referral/qrcode",
        "/api/v1/member/join",
        "/api/v1/member/account",
        "/api/v1/member/data-export",
        "/api/v1/member/deletion",
        "/api/v1/staff/privacy-requests",
        "/api/v1/staff/privacy-requests/{id}",
        "/api/v1/member/me",
        "/api/v1/member/points/entries",
        "/api/v1/member/checkins",
        "/api/v1/member/rules",
        "/api/v1/member/rewards",
        "/api/v1/member/redemptions",
        "/api/v1/member/vouchers",
        "/api/v1/member/vouchers/{id}/cancel",
        "/api/v1/member/events",
        "/api/v1/member/events/{id}",
        "/api/v1/member/bookings",
        "/api/v1/member/bookings/{id}/cancel",
        "/api/v1/member/waitlist",
        "/api/v1/member/waitlist/{id}/cancel",
        "/api/v1/staff/events",
        "/api/v1/staff/events/{id}",
        "/api/v1/staff/events/{id}/publish",
        "/api/v1/staff/events/{id}/cancel",
        "/api/v1/staff/events/{id}/slots",
        "/api/v1/staff/events/{id}/slots/{slot_id}",
        "/api/v1/staff/events/{id}/bookings",
        "/api/v1/staff/bookings/{id_or_code}/check-in",
        "/api/v1/staff/bookings/{id}/cancel",
        "/wechat/push",
        "/api/v1/staff/auth/login",
        "/api/v1/staff/auth/logout",
        "/api/v1/staff/auth/me",
        "/api/v1/staff/auth/password",
        "/api/v1/staff/auth/me/wechat-binding",
        "/api/v1/member/staff-binding",
        "/api/v1/staff/stores",
        "/api/v1/staff/stores/{id}",
        "/api/v1/staff/accounts",
        "/api/v1/staff/accounts/{id}",
        "/api/v1/staff/accounts/{id}/reset-password",
        "/api/v1/staff/customers",
        "/api/v1/staff/customers/lookup",
        "/api/v1/staff/customers/claim",
        "/api/v1/staff/customers/{id}",
        "/api/v1/staff/customers/{id}/notes",
        "/api/v1/staff/customers/{id}/reveal-phone",
        "/api/v1/staff/audit-log",
        "/api/v1/staff/members",
        "/api/v1/staff/members/{id}",
        "/api/v1/staff/members/{id}/manual-tier",
        "/api/v1/staff/members/{id}/points/adjust",
        "/api/v1/staff/members/{id}/points/entries",
        "/api/v1/staff/tiers",
        "/api/v1/staff/consumptions",
        "/api/v1/staff/consumptions/{id}/refund",
        "/api/v1/staff/rewards",
        "/api/v1/staff/rewards/{id}",
        "/api/v1/staff/vouchers/{code}/verify",
        "/api/v1/staff/jobs/{name}/run",
        "/api/v1/staff/templates",
        "/api/v1/staff/templates/{id}",
        "/api/v1/staff/automations",
        "/api/v1/staff/automations/{store_id}",
        "/api/v1/staff/campaigns",
        "/api/v1/staff/campaigns/{id}",
        "/api/v1/staff/campaigns/{id}/preview",
        "/api/v1/staff/campaigns/{id}/test-send",
        "/api/v1/staff/campaigns/{id}/start",
        "/api/v1/staff/campaigns/{id}/pause",
        "/api/v1/staff/campaigns/{id}/resume",
        "/api/v1/staff/campaigns/{id}/cancel",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths, expected);
    let doc: Value = serde_json::from_str(&raw).unwrap();
    assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    // Staff routes declare how they are signed in to.
    assert!(doc["components"]["securitySchemes"]["staff_cookie"].is_object());
    assert!(doc["paths"]["/api/v1/staff/customers"]["get"]["security"].is_array());
}
