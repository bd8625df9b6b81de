use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use memberhub::error;
use serde::Deserialize;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn unknown_routes_get_a_404_in_the_envelope() {
    let app = spawn_app().await;

    let res = app.get("/api/v1/nothing-here").await;

    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_posted_to_a_read_only_route_gets_the_envelope_not_plain_text() {
    let app = spawn_app().await;

    let res = app
        .client
        .post(app.url("/healthz"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();

    assert!(res.status().is_client_error());
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["code"].is_string());
}

// The extractor configuration and the envelope middleware are the ones the server installs on
// every route; they are mounted here around a JSON route so each failure mode can be exercised.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NewThing {
    name: String,
    count: u32,
}

async fn create(body: web::Json<NewThing>) -> HttpResponse {
    HttpResponse::Created().json(serde_json::json!({"name": body.name, "count": body.count}))
}

async fn by_id(id: web::Path<i64>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"id": *id}))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Page {
    limit: u32,
}

async fn list(q: web::Query<Page>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"limit": q.limit}))
}

async fn call(req: test::TestRequest) -> (StatusCode, Value) {
    let app = test::init_service(
        App::new()
            .app_data(error::json_config())
            .app_data(error::path_config())
            .app_data(error::query_config())
            .service(
                web::resource("/things")
                    .route(web::post().to(create))
                    .route(web::get().to(list)),
            )
            .route("/things/{id}", web::get().to(by_id))
            .default_service(web::to(error::not_found))
            .wrap(error::envelope_errors()),
    )
    .await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let body = test::read_body(res).await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn post_json(body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/things")
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_string())
}

#[actix_web::test]
async fn well_formed_json_passes_through() {
    let (status, body) = call(post_json(r#"{"name":"水光","count":2}"#)).await;
    assert_eq!(status, 201);
    assert_eq!(body["name"], "水光");
}

#[actix_web::test]
async fn malformed_json_is_a_400_invalid_json() {
    let (status, body) = call(post_json(r#"{"name": "水光", "count": "#)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
}

#[actix_web::test]
async fn wrong_types_and_unknown_fields_are_a_400_naming_the_field() {
    let (status, body) = call(post_json(r#"{"name":"水光","count":"two"}"#)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_body");

    let (status, body) = call(post_json(r#"{"name":"水光","count":2,"admin":true}"#)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_body");
    assert!(body["error"]["message"].as_str().unwrap().contains("admin"));

    let (status, body) = call(post_json(r#"{"count":2}"#)).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("name"));
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_a_415() {
    let req = test::TestRequest::post()
        .uri("/things")
        .insert_header(("content-type", "text/plain"))
        .set_payload("name=x");
    let (status, body) = call(req).await;
    assert_eq!(status, 415);
    assert_eq!(body["error"]["code"], "unsupported_media_type");
}

#[actix_web::test]
async fn an_oversized_body_is_a_413() {
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(300 * 1024));
    let (status, body) = call(post_json(&big)).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[actix_web::test]
async fn bad_path_and_query_parameters_are_400s() {
    let (status, body) = call(test::TestRequest::get().uri("/things/abc")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_path");

    let (status, body) = call(test::TestRequest::get().uri("/things?limit=-1")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_query");
}

#[actix_web::test]
async fn method_mismatches_come_back_in_the_envelope() {
    let (status, body) = call(test::TestRequest::delete().uri("/things")).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(body["error"]["code"].is_string());
}
