//! The chain's stores. Every member of staff can list them (to show names); only admins create,
//! edit and deactivate them. Deactivating a store ends its staff's sessions and keeps them out
//! until it is active again.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use entity::{staff, store};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::staff::{revoke_sessions_of, Action, Staff};
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;
use crate::{audit, db};

#[derive(Serialize, ToSchema)]
pub struct StoreView {
    pub id: i64,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<store::Model> for StoreView {
    fn from(m: store::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            city: m.city,
            address: m.address,
            phone: m.phone,
            active: m.active,
            created_at: m.created_at,
        }
    }
}

fn text(value: Option<String>, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.chars().count() > max => Err(ApiError::validation(
            field,
            format!("{field} 不能超过 {max} 个字符"),
        )),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn store_name(value: &str) -> Result<String, ApiError> {
    text(Some(value.to_string()), "name", 100)?
        .ok_or_else(|| ApiError::validation("name", "门店名称不能为空"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStoreRequest {
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
}

#[utoipa::path(
    operation_id = "create_store",
    tag = "staff",
    request_body = CreateStoreRequest,
    responses((status = 201, body = StoreView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/stores")]
pub async fn create(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<CreateStoreRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::StoreManage)?;
    let body = body.into_inner();
    let name = store_name(&body.name)?;
    let city = text(body.city, "city", 50)?;
    let address = text(body.address, "address", 200)?;
    let phone = text(body.phone, "phone", 30)?;
    let created = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let now = Utc::now();
            let created = store::ActiveModel {
                name: Set(name),
                city: Set(city),
                address: Set(address),
                phone: Set(phone),
                active: Set(true),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            audit::entry("store.create")
                .by(&staff)
                .target("store", created.id)
                .store(Some(created.id))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(created)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(StoreView::from(created)))
}

#[utoipa::path(
    operation_id = "list_stores",
    tag = "staff",
    responses((status = 200, body = Vec<StoreView>), (status = 401, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/stores")]
pub async fn list(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ApiError> {
    staff.require(Action::StoreRead)?;
    let rows = store::Entity::find()
        .order_by_asc(store::Column::Id)
        .all(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(StoreView::from).collect::<Vec<_>>()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStoreRequest {
    pub name: Option<String>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// false deactivates the store: its staff are signed out and cannot sign in.
    pub active: Option<bool>,
}

#[utoipa::path(
    operation_id = "update_store",
    tag = "staff",
    request_body = UpdateStoreRequest,
    params(("id" = i64, Path)),
    responses((status = 200, body = StoreView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[patch("/api/v1/staff/stores/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    body: web::Json<UpdateStoreRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::StoreManage)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let name = body.name.as_deref().map(store_name).transpose()?;
    let city = body.city.map(|c| text(Some(c), "city", 50)).transpose()?;
    let address = body
        .address
        .map(|a| text(Some(a), "address", 200))
        .transpose()?;
    let phone = body.phone.map(|p| text(Some(p), "phone", 30)).transpose()?;
    let active = body.active;
    let updated = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let current = store::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("门店"))?;
            let mut fields = Vec::new();
            let mut m = current.into_active_model();
            if let Some(v) = name {
                m.name = Set(v);
                fields.push("name");
            }
            if let Some(v) = city {
                m.city = Set(v);
                fields.push("city");
            }
            if let Some(v) = address {
                m.address = Set(v);
                fields.push("address");
            }
            if let Some(v) = phone {
                m.phone = Set(v);
                fields.push("phone");
            }
            if let Some(v) = active {
                m.active = Set(v);
                fields.push("active");
            }
            m.updated_at = Set(Utc::now());
            let updated = m.update(txn).await?;
            if active == Some(false) {
                let staff_ids: Vec<i64> = staff::Entity::find()
                    .select_only()
                    .column(staff::Column::Id)
                    .filter(staff::Column::StoreId.eq(id))
                    .into_tuple()
                    .all(txn)
                    .await?;
                revoke_sessions_of(txn, staff_ids, None).await?;
            }
            audit::entry("store.update")
                .by(&staff)
                .target("store", id)
                .store(Some(id))
                .detail(json!({"fields": fields, "active": active}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(updated)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(StoreView::from(updated)))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create).service(list).service(update);
}
