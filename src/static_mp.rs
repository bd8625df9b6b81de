//! Artwork the mini-program loads at run time instead of carrying it in its 2 MB package
//! (tier card backgrounds, the member-day banner, the share card), served under `/static/mp/`.
//! The files are embedded in the binary from `static/mp/`; each is served under a name with
//! its content hash (`card-gold.1a2b3c4d.png`) and cached for a year, and
//! `GET /static/mp/manifest.json` (never cached) maps stable names to the current files, so a
//! changed image reaches members at once and an unchanged one is never fetched twice.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;
use serde_json::json;

pub const PREFIX: &str = "/static/mp";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const HASH_CHARS: usize = 8;

#[derive(RustEmbed)]
#[folder = "static/mp/"]
struct Files;

struct Asset {
    bytes: Vec<u8>,
    content_type: &'static str,
    etag: String,
}

/// The embedded files by their hashed names, and the manifest. Built once at startup.
pub struct Catalogue {
    by_name: HashMap<String, Asset>,
    manifest: BTreeMap<String, String>,
}

fn content_type(ext: &str) -> Option<&'static str> {
    match ext {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "svg" => Some("image/svg+xml"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

impl Catalogue {
    pub fn load() -> Self {
        let mut by_name = HashMap::new();
        let mut manifest = BTreeMap::new();
        for path in Files::iter() {
            let Some(file) = Files::get(&path) else {
                continue;
            };
            let Some((stem, ext)) = path.rsplit_once('.') else {
                continue;
            };
            let Some(content_type) = content_type(&ext.to_ascii_lowercase()) else {
                continue;
            };
            let hash: String = file
                .metadata
                .sha256_hash()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let hashed = format!("{stem}.{}.{ext}", &hash[..HASH_CHARS]);
            manifest.insert(stem.to_string(), format!("{PREFIX}/{hashed}"));
            by_name.insert(
                hashed,
                Asset {
                    bytes: file.data.into_owned(),
                    content_type,
                    etag: format!("\"{}\"", &hash[..16]),
                },
            );
        }
        Self { by_name, manifest }
    }

    pub fn manifest(&self) -> &BTreeMap<String, String> {
        &self.manifest
    }
}

async fn manifest(catalogue: web::Data<Catalogue>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-cache"))
        .json(json!({ "assets": catalogue.manifest }))
}

async fn file(
    catalogue: web::Data<Catalogue>,
    name: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(asset) = catalogue.by_name.get(name.as_str()) else {
        return actix_web::ResponseError::error_response(&crate::error::ApiError::not_found(
            "文件",
        ));
    };
    let revalidated = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == asset.etag);
    if revalidated {
        return HttpResponse::NotModified()
            .insert_header(("etag", asset.etag.clone()))
            .insert_header(("cache-control", IMMUTABLE))
            .finish();
    }
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header(("etag", asset.etag.clone()))
        .insert_header(("cache-control", IMMUTABLE))
        .body(asset.bytes.clone())
}

/// Mounts the two routes; `catalogue` is shared by every worker.
pub fn configure(catalogue: web::Data<Catalogue>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(catalogue)
            .route(&format!("{PREFIX}/manifest.json"), web::get().to(manifest))
            .route(&format!("{PREFIX}/{{name}}"), web::get().to(file));
    }
}
