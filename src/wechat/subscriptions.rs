//! Subscribe-message quotas per (member, template) (wechat-api.md section 4.2). One accept in
//! the popup allows one send. The accept is reported twice, by the mini-program and by WeChat's
//! push; the two reports of one tap are paired so that it counts once, whichever comes first.
//! A send spends one unit by a conditional statement before calling WeChat; 43101 sets the quota
//! to zero; a send WeChat did not take gives the unit back.

use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpResponse};
use chrono::{Duration, Utc};
use entity::{message_template, subscription_accept, subscription_quota};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};
use utoipa::ToSchema;

use crate::auth::member::Member;
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::messaging::templates::{self, channel};
use crate::state::AppState;
use crate::wechat::client::{WechatClient, WechatError};
use crate::wechat::keywords;

/// The two reports of one popup arrive within seconds; ten minutes leaves room for a slow push.
const PAIRING_WINDOW_MINUTES: i64 = 10;
pub const SCENES_SETTING: &str = "wechat.subscribe_scenes";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Client,
    Push,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Client => "client",
            Source::Push => "push",
        }
    }
    fn other(self) -> Self {
        match self {
            Source::Client => Source::Push,
            Source::Push => Source::Client,
        }
    }
}

/// The message kinds whose templates the mini-program asks for in each scene (at most three
/// per popup, WeChat's limit).
const SCENE_KINDS: [(&str, &[&str]); 3] = [
    (
        "booking",
        &["booking_confirmed", "booking_reminder", "waitlist_promoted"],
    ),
    ("points", &["points_expiring", "tier_changed"]),
    ("care", &["birthday", "recall", "follow_up_care"]),
];
const MAX_PER_POPUP: usize = 3;

/// Which templates the mini-program asks for, per scene: the `wechat.subscribe_scenes` setting
/// when staff set one, else the templates the sender will use for the scene's kinds (the saved
/// active subscribe template, else the built-in default), so that what members accept is what
/// gets sent. A kind without a WeChat template is left out.
pub async fn scenes(state: &AppState) -> Result<BTreeMap<String, Vec<String>>, DbErr> {
    if let Some(configured) = crate::app_settings::get(&state.db, SCENES_SETTING).await? {
        return Ok(configured);
    }
    let saved: BTreeMap<String, String> = message_template::Entity::find()
        .filter(message_template::Column::Channel.eq(channel::SUBSCRIBE))
        .filter(message_template::Column::Active.eq(true))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|t| (t.kind, t.template_id))
        .collect();
    let tz = state.settings.loyalty.tz();
    let mut out = BTreeMap::new();
    for (scene, kinds) in SCENE_KINDS {
        let mut ids: Vec<String> = Vec::new();
        for kind in kinds {
            let id = match saved.get(*kind) {
                Some(id) => id.clone(),
                None => templates::spec(kind)
                    .map(|spec| {
                        templates::default_view(spec, state.sandbox.is_some(), tz).template_id
                    })
                    .unwrap_or_default(),
            };
            if !id.trim().is_empty() && !ids.contains(&id) && ids.len() < MAX_PER_POPUP {
                ids.push(id);
            }
        }
        if !ids.is_empty() {
            out.insert(scene.to_string(), ids);
        }
    }
    Ok(out)
}

async fn ensure_row(
    db: &impl ConnectionTrait,
    account_id: i64,
    template_id: &str,
) -> Result<(), DbErr> {
    subscription_quota::Entity::insert(subscription_quota::ActiveModel {
        wechat_account_id: Set(account_id),
        template_id: Set(template_id.to_string()),
        remaining: Set(0),
        last_status: Set("none".into()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            subscription_quota::Column::WechatAccountId,
            subscription_quota::Column::TemplateId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Records one member choice for one template, from one source.
pub async fn record(
    db: &DatabaseConnection,
    account_id: i64,
    template_id: &str,
    status: &str,
    source: Source,
) -> Result<(), DbErr> {
    let template_id = template_id.to_string();
    let status = status.to_string();
    db::write(db, move |txn| {
        Box::pin(async move { record_in(txn, account_id, &template_id, &status, source).await })
    })
    .await
}

/// [`record`] inside the caller's write transaction.
pub async fn record_in(
    txn: &DatabaseTransaction,
    account_id: i64,
    template_id: &str,
    status: &str,
    source: Source,
) -> Result<(), DbErr> {
    ensure_row(txn, account_id, template_id).await?;
    // Serialises the two reports of one tap on PostgreSQL (SQLite's write transaction
    // already does).
    let mut lock = subscription_quota::Entity::find()
        .filter(subscription_quota::Column::WechatAccountId.eq(account_id))
        .filter(subscription_quota::Column::TemplateId.eq(template_id));
    if txn.get_database_backend() == DbBackend::Postgres {
        lock = lock.lock_exclusive();
    }
    lock.one(txn).await?;
    let now = Utc::now();
    let quota = |delta: Option<i32>| {
        let update = subscription_quota::Entity::update_many()
            .col_expr(
                subscription_quota::Column::LastStatus,
                Expr::value(status.to_string()),
            )
            .col_expr(subscription_quota::Column::UpdatedAt, Expr::value(now))
            .filter(subscription_quota::Column::WechatAccountId.eq(account_id))
            .filter(subscription_quota::Column::TemplateId.eq(template_id.to_string()));
        match delta {
            Some(d) => update.col_expr(
                subscription_quota::Column::Remaining,
                Expr::col(subscription_quota::Column::Remaining).add(d),
            ),
            None => update.col_expr(subscription_quota::Column::Remaining, Expr::value(0)),
        }
    };
    match status {
        "accept" => {
            let twin = subscription_accept::Entity::find()
                .filter(subscription_accept::Column::WechatAccountId.eq(account_id))
                .filter(subscription_accept::Column::TemplateId.eq(template_id))
                .filter(subscription_accept::Column::Source.eq(source.other().as_str()))
                .filter(subscription_accept::Column::Paired.eq(false))
                .filter(
                    subscription_accept::Column::CreatedAt
                        .gt(now - Duration::minutes(PAIRING_WINDOW_MINUTES)),
                )
                .order_by_asc(subscription_accept::Column::Id)
                .one(txn)
                .await?;
            let paired = match twin {
                Some(t) => {
                    subscription_accept::Entity::update_many()
                        .col_expr(subscription_accept::Column::Paired, Expr::value(true))
                        .filter(subscription_accept::Column::Id.eq(t.id))
                        .filter(subscription_accept::Column::Paired.eq(false))
                        .exec(txn)
                        .await?
                        .rows_affected
                        == 1
                }
                None => false,
            };
            if paired {
                quota(Some(0)).exec(txn).await?;
            } else {
                subscription_accept::ActiveModel {
                    wechat_account_id: Set(account_id),
                    template_id: Set(template_id.to_string()),
                    source: Set(source.as_str().into()),
                    paired: Set(false),
                    created_at: Set(now),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                quota(Some(1)).exec(txn).await?;
            }
        }
        // The member switched the template off, or WeChat banned it: nothing can be sent.
        "ban" | "off" => {
            quota(None).exec(txn).await?;
        }
        // A rejected popup leaves earlier accepts usable; record the choice only.
        _ => {
            quota(Some(0)).exec(txn).await?;
        }
    }
    Ok(())
}

/// Sends left for (member, template).
pub async fn remaining(
    db: &impl ConnectionTrait,
    account_id: i64,
    template_id: &str,
) -> Result<i32, DbErr> {
    Ok(subscription_quota::Entity::find()
        .filter(subscription_quota::Column::WechatAccountId.eq(account_id))
        .filter(subscription_quota::Column::TemplateId.eq(template_id))
        .one(db)
        .await?
        .map(|q| q.remaining)
        .unwrap_or(0))
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    InvalidValue(keywords::KeywordError),
    #[error("no subscription quota left")]
    NoQuota,
    #[error("the member refused (43101); quota set to zero")]
    Refused,
    #[error(transparent)]
    Wechat(WechatError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A subscribe message to one member.
pub struct Outgoing<'a> {
    pub account_id: i64,
    pub openid: &'a str,
    pub template_id: &'a str,
    pub page: Option<&'a str>,
    pub data: &'a [(&'a str, String)],
}

/// Sends one subscribe message, spending one unit of quota. Values are checked against their
/// keyword types first, so WeChat never sees a value it would refuse.
pub async fn send(
    db: &DatabaseConnection,
    wechat: &WechatClient,
    msg: &Outgoing<'_>,
) -> Result<String, SendError> {
    let mut data = Map::new();
    for (key, value) in msg.data {
        keywords::check(key, value).map_err(SendError::InvalidValue)?;
        data.insert((*key).to_string(), json!({ "value": value }));
    }
    let filter = |u: sea_orm::UpdateMany<subscription_quota::Entity>| {
        u.filter(subscription_quota::Column::WechatAccountId.eq(msg.account_id))
            .filter(subscription_quota::Column::TemplateId.eq(msg.template_id))
    };
    let spent = filter(subscription_quota::Entity::update_many())
        .col_expr(
            subscription_quota::Column::Remaining,
            Expr::col(subscription_quota::Column::Remaining).sub(1),
        )
        .filter(subscription_quota::Column::Remaining.gt(0))
        .exec(db)
        .await?;
    if spent.rows_affected != 1 {
        return Err(SendError::NoQuota);
    }
    let mut body = json!({"touser": msg.openid, "template_id": msg.template_id, "data": data});
    if let Some(page) = msg.page {
        body["page"] = json!(page);
    }
    match wechat.send_subscribe(&body).await {
        Ok(msgid) => Ok(msgid),
        Err(e) if e.code() == Some(43101) => {
            filter(subscription_quota::Entity::update_many())
                .col_expr(subscription_quota::Column::Remaining, Expr::value(0))
                .col_expr(
                    subscription_quota::Column::LastStatus,
                    Expr::value("refused"),
                )
                .exec(db)
                .await?;
            Err(SendError::Refused)
        }
        Err(e) => {
            // WeChat did not take the message, so the member's unit is still theirs.
            filter(subscription_quota::Entity::update_many())
                .col_expr(
                    subscription_quota::Column::Remaining,
                    Expr::col(subscription_quota::Column::Remaining).add(1),
                )
                .exec(db)
                .await?;
            Err(SendError::Wechat(e))
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionsResponse {
    /// Template ids to pass to `wx.requestSubscribeMessage`, per scene.
    pub scenes: BTreeMap<String, Vec<String>>,
    /// Sends left per template.
    pub quotas: BTreeMap<String, i32>,
}

#[utoipa::path(tag = "member", responses((status = 200, body = SubscriptionsResponse), (status = 401, body = ErrorEnvelope)), security(("member" = [])))]
#[get("/api/v1/member/subscriptions")]
pub async fn list(state: web::Data<AppState>, member: Member) -> Result<HttpResponse, ApiError> {
    overview(&state, &member).await
}

async fn overview(state: &AppState, member: &Member) -> Result<HttpResponse, ApiError> {
    let scenes = scenes(state).await?;
    let mut quotas: BTreeMap<String, i32> =
        scenes.values().flatten().map(|t| (t.clone(), 0)).collect();
    for row in subscription_quota::Entity::find()
        .filter(subscription_quota::Column::WechatAccountId.eq(member.account_id))
        .all(&state.db)
        .await?
    {
        quotas.insert(row.template_id, row.remaining);
    }
    Ok(HttpResponse::Ok().json(SubscriptionsResponse { scenes, quotas }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// What `wx.requestSubscribeMessage` returned: template id -> accept, reject, ban or filter.
    pub results: BTreeMap<String, String>,
}

#[utoipa::path(tag = "member", request_body = ReportRequest, responses((status = 200, body = SubscriptionsResponse), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)), security(("member" = [])))]
#[post("/api/v1/member/subscriptions")]
pub async fn report(
    state: web::Data<AppState>,
    member: Member,
    body: web::Json<ReportRequest>,
) -> Result<HttpResponse, ApiError> {
    let known: Vec<String> = scenes(&state).await?.into_values().flatten().collect();
    if body.results.is_empty() {
        return Err(ApiError::validation("results", "results 不能为空"));
    }
    for (template, status) in &body.results {
        if !known.contains(template) {
            return Err(ApiError::validation("results", "包含未知的订阅消息模板")
                .with_detail("template_id", template.clone()));
        }
        if !["accept", "reject", "ban", "filter"].contains(&status.as_str()) {
            return Err(ApiError::validation(
                "results",
                "订阅结果只能是 accept、reject、ban 或 filter",
            ));
        }
    }
    for (template, status) in &body.results {
        record(
            &state.db,
            member.account_id,
            template,
            status,
            Source::Client,
        )
        .await?;
    }
    overview(&state, &member).await
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list).service(report);
}
