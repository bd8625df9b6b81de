//! Staff accounts: created by admins (or by `memberhub staff create` on a fresh installation),
//! deactivated, moved between stores and roles, passwords reset. Every change is audited and
//! ends the sessions it makes stale.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use entity::{staff, store};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::auth::staff::{
    check_password_strength, generate_password, hash_password, revoke_sessions_of, Action, Reach,
    Role, Staff,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;
use crate::{audit, db};

/// A login name: 2 to 50 of `a-z 0-9 . _ -`, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim().to_lowercase();
        let ok = (2..=50).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ok {
            return Err(ApiError::validation(
                "username",
                "用户名须为 2 到 50 个字符，只能包含小写字母、数字和 . _ -",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn display_name(raw: &str, field: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(ApiError::validation(
            field,
            "姓名不能为空且不超过 50 个字符",
        ));
    }
    Ok(name.to_string())
}

#[derive(Serialize, ToSchema, Clone)]
pub struct AccountView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Null for admins (the whole chain).
    pub store_id: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl AccountView {
    pub fn of(m: &staff::Model) -> Self {
        Self {
            id: m.id,
            username: m.username.clone(),
            display_name: m.display_name.clone(),
            role: Role::parse(&m.role).unwrap_or(Role::FrontDesk),
            store_id: m.store_id,
            active: m.active,
            created_at: m.created_at,
        }
    }
}

/// Admins have no store; everyone else needs an active one.
async fn check_role_store(
    db: &impl ConnectionTrait,
    role: Role,
    store_id: Option<i64>,
) -> Result<(), ApiError> {
    match (role.needs_store(), store_id) {
        (false, None) => Ok(()),
        (false, Some(_)) => Err(ApiError::validation(
            "store_id",
            "总部管理员不属于任何门店，store_id 须为空",
        )),
        (true, None) => Err(ApiError::validation("store_id", "该角色必须指定所属门店")),
        (true, Some(id)) => match store::Entity::find_by_id(id).one(db).await? {
            Some(s) if s.active => Ok(()),
            Some(_) => Err(ApiError::validation("store_id", "该门店已停用")),
            None => Err(ApiError::validation("store_id", "门店不存在")),
        },
    }
}

pub struct NewAccount {
    pub username: Username,
    pub display_name: String,
    pub role: Role,
    pub store_id: Option<i64>,
    /// None: generate one (returned once).
    pub password: Option<String>,
}

/// Creates an account; returns it and the generated password when none was given.
pub async fn create_account(
    db: &DatabaseConnection,
    new: NewAccount,
    actor: Option<&Staff>,
) -> Result<(staff::Model, Option<String>), ApiError> {
    let generated = new.password.is_none().then(generate_password);
    let password = new
        .password
        .or_else(|| generated.clone())
        .unwrap_or_default();
    check_password_strength(&password, new.username.as_str())?;
    let hash = hash_password(password).await?;
    let actor = actor.cloned();
    let created = db::write(db, move |txn| {
        Box::pin(async move {
            check_role_store(txn, new.role, new.store_id).await?;
            let now = Utc::now();
            let created = staff::ActiveModel {
                username: Set(new.username.as_str().to_string()),
                display_name: Set(new.display_name),
                role: Set(new.role.as_str().to_string()),
                store_id: Set(new.store_id),
                password_hash: Set(hash),
                active: Set(true),
                password_changed_at: Set(now),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await
            .map_err(|e| {
                if db::is_unique_violation(&e) {
                    ApiError::conflict("username_taken", "该用户名已被使用")
                } else {
                    e.into()
                }
            })?;
            audit::entry("staff.create")
                .by_staff_or_shell(actor.as_ref())
                .target("staff", created.id)
                .store(created.store_id)
                .detail(json!({"role": created.role, "username": created.username}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(created)
        })
    })
    .await?;
    Ok((created, generated))
}

/// Stores a new password hash and ends the account's sessions but `keep` (the caller's own,
/// when they changed their own password).
pub async fn set_password_hash(
    txn: &impl ConnectionTrait,
    staff_id: i64,
    hash: String,
    keep: Option<i64>,
) -> Result<(), DbErr> {
    let now = Utc::now();
    staff::Entity::update_many()
        .col_expr(staff::Column::PasswordHash, Expr::value(hash))
        .col_expr(staff::Column::PasswordChangedAt, Expr::value(now))
        .col_expr(staff::Column::UpdatedAt, Expr::value(now))
        .filter(staff::Column::Id.eq(staff_id))
        .exec(txn)
        .await?;
    revoke_sessions_of(txn, vec![staff_id], keep).await?;
    Ok(())
}

/// Sets a new password (generated when `None`) and ends the account's sessions.
pub async fn reset_password(
    db: &DatabaseConnection,
    account: &staff::Model,
    password: Option<String>,
    actor: Option<&Staff>,
) -> Result<String, ApiError> {
    let password = password.unwrap_or_else(generate_password);
    check_password_strength(&password, &account.username)?;
    let hash = hash_password(password.clone()).await?;
    let (id, store_id) = (account.id, account.store_id);
    let actor = actor.cloned();
    db::write(db, move |txn| {
        Box::pin(async move {
            set_password_hash(txn, id, hash, None).await?;
            audit::entry("staff.reset_password")
                .by_staff_or_shell(actor.as_ref())
                .target("staff", id)
                .store(store_id)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(password)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Required for every role but admin.
    pub store_id: Option<i64>,
    /// Absent: a strong password is generated and returned once.
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedAccount {
    pub account: AccountView,
    /// The generated password, shown this once; absent when the request chose one.
    pub password: Option<String>,
}

#[utoipa::path(
    operation_id = "create_account",
    tag = "staff",
    request_body = CreateAccountRequest,
    responses(
        (status = 201, body = CreatedAccount),
        (status = 400, body = ErrorEnvelope),
        (status = 403, description = "`permission_denied`: admins only", body = ErrorEnvelope),
        (status = 409, description = "`username_taken`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/accounts")]
pub async fn create(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<CreateAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::StaffManage)?;
    let body = body.into_inner();
    let new = NewAccount {
        username: Username::parse(&body.username)?,
        display_name: display_name(&body.display_name, "display_name")?,
        role: body.role,
        store_id: body.store_id,
        password: body.password,
    };
    let (account, password) = create_account(&state.db, new, Some(&staff)).await?;
    tracing::info!(
        staff_id = account.id,
        by = staff.id,
        "staff account created"
    );
    Ok(HttpResponse::Created().json(CreatedAccount {
        account: AccountView::of(&account),
        password,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    pub store_id: Option<i64>,
    pub role: Option<Role>,
    pub active: Option<bool>,
}

#[utoipa::path(
    operation_id = "list_accounts",
    tag = "staff",
    params(AccountQuery),
    responses((status = 200, body = Vec<AccountView>), (status = 403, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/accounts")]
pub async fn list(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::StaffRead)?;
    let mut select = staff::Entity::find();
    if reach != Reach::Chain {
        select = select.filter(staff::Column::StoreId.eq(staff.store_id));
    }
    if let Some(id) = query.store_id {
        select = select.filter(staff::Column::StoreId.eq(id));
    }
    if let Some(role) = query.role {
        select = select.filter(staff::Column::Role.eq(role.as_str()));
    }
    if let Some(active) = query.active {
        select = select.filter(staff::Column::Active.eq(active));
    }
    let rows = select
        .order_by_asc(staff::Column::Id)
        .all(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(AccountView::of).collect::<Vec<_>>()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountRequest {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// With `role`: the store of a non-admin role. Send `null` only when making an admin.
    #[serde(default, deserialize_with = "crate::customers::present")]
    #[schema(value_type = Option<i64>)]
    pub store_id: Option<Option<i64>>,
    /// false deactivates the account and ends its sessions.
    pub active: Option<bool>,
}

pub async fn find_by_username(
    db: &DatabaseConnection,
    username: &Username,
) -> Result<staff::Model, ApiError> {
    staff::Entity::find()
        .filter(staff::Column::Username.eq(username.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("员工账号"))
}

async fn find_account(db: &DatabaseConnection, id: i64) -> Result<staff::Model, ApiError> {
    staff::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("员工账号"))
}

#[utoipa::path(
    operation_id = "update_account",
    tag = "staff",
    request_body = UpdateAccountRequest,
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = AccountView),
        (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`cannot_change_self`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[patch("/api/v1/staff/accounts/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    body: web::Json<UpdateAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::StaffManage)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let current = find_account(&state.db, id).await?;
    if id == staff.id && (body.active == Some(false) || body.role.is_some_and(|r| r != staff.role))
    {
        // The last admin locking themselves out leaves nobody to undo it.
        return Err(ApiError::conflict(
            "cannot_change_self",
            "不能停用自己的账号或修改自己的角色",
        ));
    }
    let display = body
        .display_name
        .as_deref()
        .map(|n| display_name(n, "display_name"))
        .transpose()?;
    let role = body
        .role
        .unwrap_or(Role::parse(&current.role).unwrap_or(Role::FrontDesk));
    let store_id = body.store_id.unwrap_or(current.store_id);
    let store_id = if role == Role::Admin && body.store_id.is_none() {
        None
    } else {
        store_id
    };
    let active = body.active;
    let changed: Vec<&str> = [
        ("display_name", display.is_some()),
        ("role", body.role.is_some()),
        ("store_id", body.store_id.is_some()),
        ("active", active.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, c)| c.then_some(f))
    .collect();
    let detail = json!({"fields": changed, "role": role.as_str(), "active": active});
    let actor = staff.clone();
    let updated = db::write(&state.db, move |txn| {
        Box::pin(async move {
            check_role_store(txn, role, store_id).await?;
            let mut update = staff::Entity::update_many()
                .col_expr(staff::Column::Role, Expr::value(role.as_str()))
                .col_expr(staff::Column::StoreId, Expr::value(store_id))
                .col_expr(staff::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(staff::Column::Id.eq(id));
            if let Some(name) = display {
                update = update.col_expr(staff::Column::DisplayName, Expr::value(name));
            }
            if let Some(active) = active {
                update = update.col_expr(staff::Column::Active, Expr::value(active));
            }
            update.exec(txn).await?;
            if active == Some(false) {
                revoke_sessions_of(txn, vec![id], None).await?;
            }
            audit::entry("staff.update")
                .by(&actor)
                .target("staff", id)
                .store(store_id)
                .detail(detail)
                .write(txn)
                .await?;
            staff::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("员工账号"))
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(AccountView::of(&updated)))
}

#[derive(Serialize, ToSchema)]
pub struct NewPassword {
    /// Shown this once.
    pub password: String,
}

#[utoipa::path(
    operation_id = "reset_account_password",
    tag = "staff",
    params(("id" = i64, Path)),
    responses((status = 200, body = NewPassword), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/accounts/{id}/reset-password")]
pub async fn reset(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::StaffManage)?;
    let account = find_account(&state.db, id.into_inner()).await?;
    let password = reset_password(&state.db, &account, None, Some(&staff)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(NewPassword { password }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(update)
        .service(reset);
}
