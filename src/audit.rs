//! The audit trail (PIPL): who (staff), what action, which target, when, from which IP, for
//! every staff write and every read of a customer's detail or full phone. Entries are written
//! in the same transaction as the change they describe, hold ids and field names but never
//! personal values, and the database refuses to update or delete them.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::staff::{Action, Staff};
use crate::error::{ApiError, ErrorEnvelope};
use crate::paging;
use crate::state::AppState;

/// An entry being built: `audit::entry("customer.view").target("customer", id).by(&staff)`.
#[must_use = "an audit entry does nothing until written"]
pub struct Entry {
    action: &'static str,
    staff_id: Option<i64>,
    staff_username: Option<String>,
    ip: Option<String>,
    target_type: Option<&'static str>,
    target_id: Option<i64>,
    store_id: Option<i64>,
    detail: Option<Value>,
}

pub fn entry(action: &'static str) -> Entry {
    Entry {
        action,
        staff_id: None,
        staff_username: None,
        ip: None,
        target_type: None,
        target_id: None,
        store_id: None,
        detail: None,
    }
}

impl Entry {
    pub fn by(mut self, staff: &Staff) -> Self {
        self.staff_id = Some(staff.id);
        self.staff_username = Some(staff.username.clone());
        self.ip = staff.ip.clone();
        self
    }

    /// The signed-in caller, or the command line when there is none.
    pub fn by_staff_or_shell(self, staff: Option<&Staff>) -> Self {
        match staff {
            Some(s) => self.by(s),
            None => self.by_unauthenticated(None, Some("(command line)"), None),
        }
    }

    /// For events without a signed-in caller (a failed sign-in, the command line).
    pub fn by_unauthenticated(
        mut self,
        staff_id: Option<i64>,
        username: Option<&str>,
        ip: Option<&str>,
    ) -> Self {
        self.staff_id = staff_id;
        self.staff_username = username.map(|u| u.chars().take(50).collect());
        self.ip = ip.map(str::to_string);
        self
    }

    pub fn target(mut self, kind: &'static str, id: i64) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id);
        self
    }

    /// The store the target belongs to, so a store's trail can be filtered.
    pub fn store(mut self, store_id: Option<i64>) -> Self {
        self.store_id = store_id;
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub async fn write(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        audit_log::ActiveModel {
            at: Set(Utc::now()),
            staff_id: Set(self.staff_id),
            staff_username: Set(self.staff_username),
            action: Set(self.action.to_string()),
            target_type: Set(self.target_type.map(str::to_string)),
            target_id: Set(self.target_id),
            store_id: Set(self.store_id),
            ip: Set(self.ip),
            detail: Set(self.detail),
            ..Default::default()
        }
        .insert(db)
        .await?;
        Ok(())
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries by this member of staff.
    pub staff_id: Option<i64>,
    /// Only this action, e.g. `customer.reveal_phone`.
    pub action: Option<String>,
    /// With `target_id`: only entries about this target, e.g. `customer`.
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub store_id: Option<i64>,
    /// Entries at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub staff_id: Option<i64>,
    pub staff_username: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub store_id: Option<i64>,
    pub ip: Option<String>,
    pub detail: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    tag = "staff",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 403, description = "`permission_denied`: admins only", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/audit-log")]
pub async fn audit_log_page(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::AuditRead)?;
    let q = query.into_inner();
    let limit = paging::limit(q.limit, 50, 200)?;
    let mut select = audit_log::Entity::find();
    if let Some(id) = q.staff_id {
        select = select.filter(audit_log::Column::StaffId.eq(id));
    }
    if let Some(action) = q.action.filter(|a| !a.is_empty()) {
        select = select.filter(audit_log::Column::Action.eq(action));
    }
    if let Some(kind) = q.target_type.filter(|t| !t.is_empty()) {
        select = select.filter(audit_log::Column::TargetType.eq(kind));
    }
    if let Some(id) = q.target_id {
        select = select.filter(audit_log::Column::TargetId.eq(id));
    }
    if let Some(id) = q.store_id {
        select = select.filter(audit_log::Column::StoreId.eq(id));
    }
    if let Some(from) = q.from {
        select = select.filter(audit_log::Column::At.gte(from));
    }
    if let Some(to) = q.to {
        select = select.filter(audit_log::Column::At.lt(to));
    }
    if let Some(cursor) = q.cursor {
        select = select.filter(audit_log::Column::Id.lt(cursor));
    }
    let rows = select
        .order_by_desc(audit_log::Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let (rows, next_cursor) = paging::split(rows, limit, |r| r.id);
    let items: Vec<AuditEntry> = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            staff_id: r.staff_id,
            staff_username: r.staff_username,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            store_id: r.store_id,
            ip: r.ip,
            detail: r.detail,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { items, next_cursor }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(audit_log_page);
}
