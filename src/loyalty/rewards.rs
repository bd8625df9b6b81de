//! Rewards and vouchers (DESIGN section 4). Admins keep a catalogue of rewards with a points
//! price, stock, per-member limit, minimum tier and active window; members redeem points for a
//! voucher with a code and an expiry; the desk verifies (核销) a voucher once; a member may
//! cancel an unused voucher and get its points back into the lots they came from. Campaigns
//! issue vouchers through [`issue_voucher`] too.
//!
//! Stock and limits hold under concurrent redemption because every redemption runs in one write
//! transaction that locks the member's row first (the debit) and then moves the stock by one
//! conditional UPDATE; the same order everywhere (member, then reward) keeps PostgreSQL free of
//! deadlocks.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{customer, member, reward, store, voucher};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::card;
use super::ledger::{self, source, EntryKind, Posting};
use super::membership;
use super::tiers::TierTable;
use crate::audit;
use crate::auth::member::Member;
use crate::auth::staff::{Action, Role, Staff};
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::idempotency::{self, IdempotencyKey, Outcome};
use crate::paging;
use crate::state::AppState;

/// What a reward (and the voucher it becomes) is.
pub mod kind {
    pub const SERVICE: &str = "service";
    pub const PRODUCT: &str = "product";
    pub const CASH_VOUCHER: &str = "cash_voucher";
    pub const ALL: [&str; 3] = [SERVICE, PRODUCT, CASH_VOUCHER];
}

/// Where a voucher came from.
pub mod voucher_source {
    pub const REDEMPTION: &str = "redemption";
    pub const CAMPAIGN: &str = "campaign";
    pub const BIRTHDAY: &str = "birthday";
    pub const COMEBACK: &str = "comeback";
    pub const ALL: [&str; 4] = [REDEMPTION, CAMPAIGN, BIRTHDAY, COMEBACK];
}

/// Stored voucher states. "expired" is never stored: it is read from `expires_on`, so no job
/// has to run for a voucher to stop being usable.
pub mod status {
    pub const UNUSED: &str = "unused";
    pub const USED: &str = "used";
    pub const CANCELLED: &str = "cancelled";
    pub const EXPIRED: &str = "expired";
}

const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LEN: usize = 12;
const MAX_POINTS_PRICE: i64 = 100_000_000;
const MAX_STOCK: i32 = 1_000_000;
const MAX_FACE_VALUE_FEN: i64 = 1_000_000_000;
const DEFAULT_VALID_DAYS: i32 = 90;

// ---------------------------------------------------------------- views

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct RewardView {
    pub id: i64,
    pub name: String,
    /// `service`, `product` or `cash_voucher`.
    pub kind: String,
    pub description: String,
    pub points_price: i64,
    pub stock_total: i32,
    pub stock_left: i32,
    /// How many vouchers of this reward one member may hold (cancelled ones do not count).
    pub per_member_limit: Option<i32>,
    pub min_tier_code: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// A voucher is usable for this many days after the day it is issued.
    pub voucher_valid_days: i32,
    pub face_value_fen: Option<i64>,
    /// Only this store's customers see it, and its vouchers are usable only there.
    pub store_id: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RewardView {
    fn of(r: &reward::Model, tiers: &TierTable) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            kind: r.kind.clone(),
            description: r.description.clone(),
            points_price: r.points_price,
            stock_total: r.stock_total,
            stock_left: r.stock_left,
            per_member_limit: r.per_member_limit,
            min_tier_code: r
                .min_tier_id
                .and_then(|id| tiers.by_id(id))
                .map(|t| t.code.clone()),
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            voucher_valid_days: r.voucher_valid_days,
            face_value_fen: r.face_value_fen,
            store_id: r.store_id,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct VoucherView {
    pub id: i64,
    /// What the desk types or scans to verify it.
    pub code: String,
    pub customer_id: i64,
    pub member_id: Option<i64>,
    pub reward_id: Option<i64>,
    /// `redemption`, `campaign`, `birthday` or `comeback`.
    pub source: String,
    pub kind: String,
    pub title: String,
    pub face_value_fen: Option<i64>,
    /// Points paid for it (0 for a gift).
    pub points_cost: i64,
    /// Usable only in this store when set.
    pub store_id: Option<i64>,
    /// `unused`, `used`, `cancelled` or `expired` (unused past its last day).
    pub status: String,
    pub issued_at: DateTime<Utc>,
    /// The last day it can be used.
    pub expires_on: NaiveDate,
    pub used_at: Option<DateTime<Utc>>,
    pub used_store_id: Option<i64>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

fn status_of(v: &voucher::Model, today: NaiveDate) -> &'static str {
    match v.status.as_str() {
        status::USED => status::USED,
        status::CANCELLED => status::CANCELLED,
        _ if v.expires_on < today => status::EXPIRED,
        _ => status::UNUSED,
    }
}

impl VoucherView {
    pub fn of(v: &voucher::Model, today: NaiveDate) -> Self {
        Self {
            id: v.id,
            code: v.code.clone(),
            customer_id: v.customer_id,
            member_id: v.member_id,
            reward_id: v.reward_id,
            source: v.source.clone(),
            kind: v.kind.clone(),
            title: v.title.clone(),
            face_value_fen: v.face_value_fen,
            points_cost: v.points_cost,
            store_id: v.store_id,
            status: status_of(v, today).to_string(),
            issued_at: v.issued_at,
            expires_on: v.expires_on,
            used_at: v.used_at,
            used_store_id: v.used_store_id,
            cancelled_at: v.cancelled_at,
        }
    }
}

// ---------------------------------------------------------------- issuing

/// A voucher to issue. Gifts leave the redemption fields (`reward_id`, `points_cost`,
/// `spend_entry_id`) at their defaults.
#[derive(Clone, Debug, Default)]
pub struct NewVoucher {
    pub customer_id: i64,
    pub member_id: Option<i64>,
    /// One of [`voucher_source`].
    pub source: &'static str,
    /// One of [`kind`].
    pub kind: String,
    pub title: String,
    pub face_value_fen: Option<i64>,
    /// Usable for this many days after the day of issue.
    pub valid_days: i32,
    pub store_id: Option<i64>,
    pub reward_id: Option<i64>,
    pub points_cost: i64,
    /// The ledger entry that paid for it; cancelling refills the lots it drew from.
    pub spend_entry_id: Option<i64>,
}

fn random_code() -> String {
    (0..CODE_LEN)
        .map(|_| char::from(CODE_ALPHABET[rand::random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// Issues a voucher in the caller's transaction, usable from `today` through
/// `today + valid_days` (the last day counts in full, so a member never loses a partial day).
pub async fn issue_voucher(
    conn: &impl ConnectionTrait,
    new: &NewVoucher,
    today: NaiveDate,
) -> Result<voucher::Model, ApiError> {
    if !voucher_source::ALL.contains(&new.source) || !kind::ALL.contains(&new.kind.as_str()) {
        return Err(ApiError::internal(anyhow::anyhow!(
            "unknown voucher source {:?} or kind {:?}",
            new.source,
            new.kind
        )));
    }
    if new.valid_days < 1 {
        return Err(ApiError::internal(anyhow::anyhow!(
            "a voucher must be valid for at least a day, got {}",
            new.valid_days
        )));
    }
    // Checked before inserting because on PostgreSQL a failed INSERT would abort the caller's
    // whole transaction; at ~59 bits a collision is all but impossible, so a few tries suffice.
    let mut code = None;
    for _ in 0..5 {
        let candidate = random_code();
        let taken = voucher::Entity::find()
            .filter(voucher::Column::Code.eq(&candidate))
            .count(conn)
            .await?;
        if taken == 0 {
            code = Some(candidate);
            break;
        }
    }
    let code = code.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no free voucher code")))?;
    let expires_on = today + Duration::days(i64::from(new.valid_days));
    let v = voucher::ActiveModel {
        code: Set(code),
        customer_id: Set(new.customer_id),
        member_id: Set(new.member_id),
        reward_id: Set(new.reward_id),
        source: Set(new.source.to_string()),
        kind: Set(new.kind.clone()),
        title: Set(new.title.chars().take(40).collect()),
        face_value_fen: Set(new.face_value_fen),
        points_cost: Set(new.points_cost),
        spend_entry_id: Set(new.spend_entry_id),
        store_id: Set(new.store_id),
        status: Set(status::UNUSED.to_string()),
        issued_at: Set(Utc::now()),
        expires_on: Set(expires_on),
        used_at: Set(None),
        used_store_id: Set(None),
        used_by_staff_id: Set(None),
        cancelled_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(v)
}

// ---------------------------------------------------------------- eligibility

/// Why a member cannot redeem a reward, in the order a member should hear about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Unavailable,
    TierTooLow,
    SoldOut,
    LimitReached,
    InsufficientPoints,
}

impl Refusal {
    fn code(self) -> &'static str {
        match self {
            Refusal::Unavailable => "reward_unavailable",
            Refusal::TierTooLow => "tier_too_low",
            Refusal::SoldOut => "sold_out",
            Refusal::LimitReached => "limit_reached",
            Refusal::InsufficientPoints => "insufficient_points",
        }
    }

    fn error(self) -> ApiError {
        let message = match self {
            Refusal::Unavailable => "该礼品当前不可兑换",
            Refusal::TierTooLow => "您的会员等级暂不能兑换该礼品",
            Refusal::SoldOut => "该礼品已兑完",
            Refusal::LimitReached => "您已达到该礼品的兑换上限",
            Refusal::InsufficientPoints => "积分不足",
        };
        ApiError::conflict(self.code(), message)
    }
}

/// What decides whether one member may redeem.
struct Holder<'a> {
    member: &'a member::Model,
    home_store_id: Option<i64>,
    tiers: &'a TierTable,
    now: DateTime<Utc>,
    today: NaiveDate,
}

impl Holder<'_> {
    /// Active, inside its window and offered in the member's store.
    fn offered(&self, r: &reward::Model) -> bool {
        r.active
            && r.starts_at.is_none_or(|s| s <= self.now)
            && r.ends_at.is_none_or(|e| self.now < e)
            && (r.store_id.is_none() || r.store_id == self.home_store_id)
    }

    fn tier_ok(&self, r: &reward::Model) -> bool {
        let Some(min) = r.min_tier_id.and_then(|id| self.tiers.by_id(id)) else {
            return true;
        };
        self.tiers.effective(self.member, self.today).0.rank >= min.rank
    }

    /// The first reason the member cannot redeem `r`, given how many vouchers of it they hold;
    /// the balance is only judged when `check_balance` (after the debit it has been).
    fn refusal(&self, r: &reward::Model, held: i64, check_balance: bool) -> Option<Refusal> {
        if !self.offered(r) {
            Some(Refusal::Unavailable)
        } else if !self.tier_ok(r) {
            Some(Refusal::TierTooLow)
        } else if r.stock_left <= 0 {
            Some(Refusal::SoldOut)
        } else if r
            .per_member_limit
            .is_some_and(|limit| held >= i64::from(limit))
        {
            Some(Refusal::LimitReached)
        } else if check_balance && self.member.points_balance < r.points_price {
            Some(Refusal::InsufficientPoints)
        } else {
            None
        }
    }
}

/// Vouchers of `reward_id` the member holds or has used: what the per-member limit counts.
async fn held(
    conn: &impl ConnectionTrait,
    member_id: i64,
    reward_id: i64,
) -> Result<i64, ApiError> {
    let n = voucher::Entity::find()
        .filter(voucher::Column::MemberId.eq(member_id))
        .filter(voucher::Column::RewardId.eq(reward_id))
        .filter(voucher::Column::Status.ne(status::CANCELLED))
        .count(conn)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The same count for every reward at once, for the catalogue.
async fn held_by_reward(
    conn: &impl ConnectionTrait,
    member_id: i64,
) -> Result<HashMap<i64, i64>, ApiError> {
    #[derive(FromQueryResult)]
    struct Row {
        reward_id: Option<i64>,
        n: i64,
    }
    let rows = voucher::Entity::find()
        .select_only()
        .column(voucher::Column::RewardId)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .filter(voucher::Column::MemberId.eq(member_id))
        .filter(voucher::Column::RewardId.is_not_null())
        .filter(voucher::Column::Status.ne(status::CANCELLED))
        .group_by(voucher::Column::RewardId)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.reward_id.map(|id| (id, r.n)))
        .collect())
}

async fn home_store_of(
    conn: &impl ConnectionTrait,
    customer_id: i64,
) -> Result<Option<i64>, ApiError> {
    Ok(customer::Entity::find_by_id(customer_id)
        .one(conn)
        .await?
        .and_then(|c| c.home_store_id))
}

// ---------------------------------------------------------------- staff: catalogue

#[derive(Serialize, ToSchema)]
pub struct RewardList {
    pub rewards: Vec<RewardView>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_rewards",
    responses((status = 200, body = RewardList), (status = 401, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/rewards")]
pub async fn list_rewards(
    state: web::Data<AppState>,
    _staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let tiers = TierTable::load(&state.db).await?;
    let rewards = reward::Entity::find()
        .order_by_desc(reward::Column::Id)
        .all(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(RewardList {
        rewards: rewards.iter().map(|r| RewardView::of(r, &tiers)).collect(),
    }))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardInput {
    /// 1-40 characters.
    pub name: String,
    /// `service`, `product` or `cash_voucher`.
    pub kind: String,
    #[serde(default)]
    pub description: String,
    pub points_price: i64,
    /// Sets both the total and what is left.
    pub stock: i32,
    pub per_member_limit: Option<i32>,
    /// The lowest tier that may redeem it, e.g. `gold`.
    pub min_tier_code: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// 1-730, default 90.
    pub voucher_valid_days: Option<i32>,
    /// Required (> 0) for `cash_voucher`.
    pub face_value_fen: Option<i64>,
    /// Offer it in one store only.
    pub store_id: Option<i64>,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 40 {
        return Err(ApiError::validation("name", "礼品名称须为 1-40 个字符"));
    }
    Ok(name.to_string())
}

fn check_description(description: &str) -> Result<String, ApiError> {
    let description = description.trim();
    if description.chars().count() > 1000 {
        return Err(ApiError::validation(
            "description",
            "说明不超过 1000 个字符",
        ));
    }
    Ok(description.to_string())
}

fn check_price(price: i64) -> Result<i64, ApiError> {
    if !(1..=MAX_POINTS_PRICE).contains(&price) {
        return Err(ApiError::validation("points_price", "所需积分须大于 0"));
    }
    Ok(price)
}

fn check_limit(limit: Option<i32>) -> Result<Option<i32>, ApiError> {
    if limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::validation(
            "per_member_limit",
            "每人限兑数量须在 1 到 1000 之间",
        ));
    }
    Ok(limit)
}

fn check_window(
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    if let (Some(s), Some(e)) = (starts_at, ends_at) {
        if e <= s {
            return Err(ApiError::validation("ends_at", "结束时间须晚于开始时间"));
        }
    }
    Ok(())
}

fn tier_id_of(tiers: &TierTable, code: Option<&str>) -> Result<Option<i64>, ApiError> {
    match code.map(str::trim) {
        None => Ok(None),
        Some(code) => tiers
            .by_code(code)
            .map(|t| Some(t.id))
            .ok_or_else(|| ApiError::validation("min_tier_code", "没有这个等级")),
    }
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_create_reward",
    request_body = RewardInput,
    responses(
        (status = 201, body = RewardView),
        (status = 400, description = "`validation_failed` naming the field", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/rewards")]
pub async fn create_reward(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<RewardInput>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::RewardManage)?;
    let input = body.into_inner();
    let name = check_name(&input.name)?;
    if !kind::ALL.contains(&input.kind.as_str()) {
        return Err(ApiError::validation(
            "kind",
            "礼品类型须为 service、product 或 cash_voucher",
        ));
    }
    let description = check_description(&input.description)?;
    let price = check_price(input.points_price)?;
    if !(0..=MAX_STOCK).contains(&input.stock) {
        return Err(ApiError::validation("stock", "库存须在 0 到 100 万之间"));
    }
    let limit = check_limit(input.per_member_limit)?;
    check_window(input.starts_at, input.ends_at)?;
    let valid_days = input.voucher_valid_days.unwrap_or(DEFAULT_VALID_DAYS);
    if !(1..=730).contains(&valid_days) {
        return Err(ApiError::validation(
            "voucher_valid_days",
            "兑换券有效天数须在 1 到 730 之间",
        ));
    }
    if input
        .face_value_fen
        .is_some_and(|f| !(1..=MAX_FACE_VALUE_FEN).contains(&f))
        || (input.kind == kind::CASH_VOUCHER && input.face_value_fen.is_none())
    {
        return Err(ApiError::validation(
            "face_value_fen",
            "代金券须填写大于 0 的面值（单位：分）",
        ));
    }
    let tiers = TierTable::load(&state.db).await?;
    let min_tier_id = tier_id_of(&tiers, input.min_tier_code.as_deref())?;
    if let Some(id) = input.store_id {
        if store::Entity::find_by_id(id)
            .one(&state.db)
            .await?
            .is_none()
        {
            return Err(ApiError::validation("store_id", "门店不存在"));
        }
    }
    let detail = serde_json::to_value(&input).map_err(ApiError::internal)?;
    let actor = staff.clone();
    let created = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let now = Utc::now();
            let r = reward::ActiveModel {
                name: Set(name),
                kind: Set(input.kind),
                description: Set(description),
                points_price: Set(price),
                stock_total: Set(input.stock),
                stock_left: Set(input.stock),
                per_member_limit: Set(limit),
                min_tier_id: Set(min_tier_id),
                starts_at: Set(input.starts_at),
                ends_at: Set(input.ends_at),
                voucher_valid_days: Set(valid_days),
                face_value_fen: Set(input.face_value_fen),
                store_id: Set(input.store_id),
                active: Set(true),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            audit::entry("reward.create")
                .by(&actor)
                .target("reward", r.id)
                .store(r.store_id)
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(r)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(RewardView::of(&created, &tiers)))
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RewardPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub points_price: Option<i64>,
    /// Added to both the total and what is left; negative takes stock away, but never more
    /// than is left (409 `stock_below_zero`).
    pub add_stock: Option<i32>,
    /// null removes the limit.
    #[serde(
        default,
        deserialize_with = "crate::customers::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i32>)]
    pub per_member_limit: Option<Option<i32>>,
    /// null removes the minimum tier.
    #[serde(
        default,
        deserialize_with = "crate::customers::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub min_tier_code: Option<Option<String>>,
    /// null removes the start.
    #[serde(
        default,
        deserialize_with = "crate::customers::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// null removes the end.
    #[serde(
        default,
        deserialize_with = "crate::customers::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub active: Option<bool>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_update_reward",
    params(("id" = i64, Path, description = "reward id")),
    request_body = RewardPatch,
    responses(
        (status = 200, body = RewardView),
        (status = 400, description = "`validation_failed` naming the field", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`stock_below_zero`: more stock taken away than is left", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[patch("/api/v1/staff/rewards/{id}")]
pub async fn update_reward(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<RewardPatch>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::RewardManage)?;
    let id = path.into_inner();
    let patch = body.into_inner();
    let name = patch.name.as_deref().map(check_name).transpose()?;
    let description = patch
        .description
        .as_deref()
        .map(check_description)
        .transpose()?;
    let price = patch.points_price.map(check_price).transpose()?;
    let limit = match patch.per_member_limit {
        Some(l) => Some(check_limit(l)?),
        None => None,
    };
    let add_stock = patch.add_stock.unwrap_or(0);
    if !(-MAX_STOCK..=MAX_STOCK).contains(&add_stock) {
        return Err(ApiError::validation(
            "add_stock",
            "库存调整量须在正负 100 万之间",
        ));
    }
    let tiers = TierTable::load(&state.db).await?;
    let min_tier_id = match &patch.min_tier_code {
        Some(code) => Some(tier_id_of(&tiers, code.as_deref())?),
        None => None,
    };
    let detail = serde_json::to_value(&patch).map_err(ApiError::internal)?;
    let actor = staff.clone();
    let updated = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let current = reward::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("礼品"))?;
            let starts_at = patch.starts_at.unwrap_or(current.starts_at);
            let ends_at = patch.ends_at.unwrap_or(current.ends_at);
            check_window(starts_at, ends_at)?;
            let mut update = reward::Entity::update_many()
                .col_expr(reward::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(reward::Column::Id.eq(id));
            if let Some(name) = name {
                update = update.col_expr(reward::Column::Name, Expr::value(name));
            }
            if let Some(description) = description {
                update = update.col_expr(reward::Column::Description, Expr::value(description));
            }
            if let Some(price) = price {
                update = update.col_expr(reward::Column::PointsPrice, Expr::value(price));
            }
            if let Some(limit) = limit {
                update = update.col_expr(reward::Column::PerMemberLimit, Expr::value(limit));
            }
            if let Some(tier) = min_tier_id {
                update = update.col_expr(reward::Column::MinTierId, Expr::value(tier));
            }
            if patch.starts_at.is_some() {
                update = update.col_expr(reward::Column::StartsAt, Expr::value(starts_at));
            }
            if patch.ends_at.is_some() {
                update = update.col_expr(reward::Column::EndsAt, Expr::value(ends_at));
            }
            if let Some(active) = patch.active {
                update = update.col_expr(reward::Column::Active, Expr::value(active));
            }
            if add_stock != 0 {
                // Decided by the statement itself, so stock taken by redemptions meanwhile
                // can never be handed out twice.
                update = update
                    .col_expr(
                        reward::Column::StockLeft,
                        Expr::col(reward::Column::StockLeft).add(add_stock),
                    )
                    .col_expr(
                        reward::Column::StockTotal,
                        Expr::col(reward::Column::StockTotal).add(add_stock),
                    )
                    .filter(Expr::col(reward::Column::StockLeft).add(add_stock).gte(0));
            }
            let Some(updated) = update.exec_with_returning(txn).await?.into_iter().next() else {
                let left = reward::Entity::find_by_id(id)
                    .one(txn)
                    .await?
                    .map_or(current.stock_left, |r| r.stock_left);
                return Err(
                    ApiError::conflict("stock_below_zero", "减少的库存超过剩余库存")
                        .with_detail("stock_left", left),
                );
            };
            audit::entry("reward.update")
                .by(&actor)
                .target("reward", id)
                .store(updated.store_id)
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(updated)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(RewardView::of(&updated, &tiers)))
}

// ---------------------------------------------------------------- staff: verification

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_verify_voucher",
    params(("code" = String, Path, description = "the voucher code")),
    responses(
        (status = 200, description = "Verified: the voucher, now used", body = VoucherView),
        (status = 403, description = "`permission_denied`, or `wrong_store`: the voucher is only usable in another store", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`voucher_used` (with `used_at`), `voucher_cancelled` or `voucher_expired` (with `expires_on`)", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/vouchers/{code}/verify")]
pub async fn verify_voucher(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::VoucherVerify)?;
    // Codes are read aloud and typed in; spaces and lower case are the desk's, not the code's.
    let code: String = path
        .into_inner()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("兑换券"));
    }
    let today = state.settings.loyalty.today();
    let actor = staff.clone();
    let verified = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let admin = actor.role == Role::Admin;
            let mut update = voucher::Entity::update_many()
                .col_expr(voucher::Column::Status, Expr::value(status::USED))
                .col_expr(voucher::Column::UsedAt, Expr::value(Utc::now()))
                .col_expr(voucher::Column::UsedByStaffId, Expr::value(actor.id))
                .col_expr(
                    voucher::Column::UsedStoreId,
                    match actor.store_id {
                        Some(s) => Expr::value(s),
                        // An admin has no desk of their own: the voucher's store, if any.
                        None => Expr::col(voucher::Column::StoreId),
                    },
                )
                .filter(voucher::Column::Code.eq(&code))
                .filter(voucher::Column::Status.eq(status::UNUSED))
                .filter(voucher::Column::ExpiresOn.gte(today));
            if !admin {
                update = update.filter(
                    voucher::Column::StoreId
                        .is_null()
                        .or(voucher::Column::StoreId.eq(actor.store_id)),
                );
            }
            if let Some(v) = update.exec_with_returning(txn).await?.into_iter().next() {
                audit::entry("voucher.verify")
                    .by(&actor)
                    .target("voucher", v.id)
                    .store(v.used_store_id)
                    .detail(serde_json::json!({"reward_id": v.reward_id, "source": v.source}))
                    .write(txn)
                    .await?;
                return Ok(v);
            }
            let v = voucher::Entity::find()
                .filter(voucher::Column::Code.eq(&code))
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("兑换券"))?;
            Err(refused_verification(&v, &actor, today))
        })
    })
    .await?;
    if let Some(member_id) = verified.member_id {
        card::invalidate(&state.cache, member_id).await;
    }
    Ok(HttpResponse::Ok().json(VoucherView::of(&verified, today)))
}

/// Why a voucher that exists could not be verified by `staff`.
fn refused_verification(v: &voucher::Model, staff: &Staff, today: NaiveDate) -> ApiError {
    if v.store_id.is_some() && !staff.covers_store(v.store_id) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_store",
            "该兑换券仅限指定门店使用",
        )
        .with_detail("store_id", v.store_id);
    }
    match status_of(v, today) {
        status::USED => ApiError::conflict("voucher_used", "该兑换券已核销")
            .with_detail("used_at", v.used_at.map(|t| t.to_rfc3339()))
            .with_detail("used_store_id", v.used_store_id),
        status::CANCELLED => ApiError::conflict("voucher_cancelled", "该兑换券已取消"),
        status::EXPIRED => ApiError::conflict("voucher_expired", "该兑换券已过期")
            .with_detail("expires_on", v.expires_on.to_string()),
        _ => ApiError::internal(anyhow::anyhow!(
            "voucher {} is unused yet was not verified",
            v.id
        )),
    }
}

// ---------------------------------------------------------------- member: catalogue

#[derive(Serialize, ToSchema)]
pub struct RewardOffer {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub description: String,
    pub points_price: i64,
    pub stock_left: i32,
    pub per_member_limit: Option<i32>,
    /// How many of it the member holds or has used (cancelled ones do not count).
    pub redeemed: i64,
    pub min_tier_code: Option<String>,
    pub min_tier_name: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub voucher_valid_days: i32,
    pub face_value_fen: Option<i64>,
    pub store_id: Option<i64>,
    pub eligible: bool,
    /// When not eligible: `tier_too_low`, `sold_out`, `limit_reached` or `insufficient_points`.
    pub ineligible_reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RewardCatalogue {
    pub points_balance: i64,
    pub rewards: Vec<RewardOffer>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_list_rewards",
    responses(
        (status = 200, body = RewardCatalogue),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/rewards")]
pub async fn member_rewards(
    state: web::Data<AppState>,
    who: Member,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let tiers = TierTable::load(&state.db).await?;
    let holder = Holder {
        member: &m,
        home_store_id: home_store_of(&state.db, m.customer_id).await?,
        tiers: &tiers,
        now: Utc::now(),
        today: state.settings.loyalty.today(),
    };
    let counts = held_by_reward(&state.db, m.id).await?;
    let rewards = reward::Entity::find()
        .filter(reward::Column::Active.eq(true))
        .order_by_asc(reward::Column::PointsPrice)
        .order_by_asc(reward::Column::Id)
        .all(&state.db)
        .await?;
    let offers = rewards
        .iter()
        .filter(|r| holder.offered(r))
        .map(|r| {
            let redeemed = counts.get(&r.id).copied().unwrap_or(0);
            let refusal = holder.refusal(r, redeemed, true);
            let min_tier = r.min_tier_id.and_then(|id| tiers.by_id(id));
            RewardOffer {
                id: r.id,
                name: r.name.clone(),
                kind: r.kind.clone(),
                description: r.description.clone(),
                points_price: r.points_price,
                stock_left: std::cmp::max(r.stock_left, 0),
                per_member_limit: r.per_member_limit,
                redeemed,
                min_tier_code: min_tier.map(|t| t.code.clone()),
                min_tier_name: min_tier.map(|t| t.name.clone()),
                starts_at: r.starts_at,
                ends_at: r.ends_at,
                voucher_valid_days: r.voucher_valid_days,
                face_value_fen: r.face_value_fen,
                store_id: r.store_id,
                eligible: refusal.is_none(),
                ineligible_reason: refusal.map(|x| x.code().to_string()),
            }
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(RewardCatalogue {
            points_balance: m.points_balance,
            rewards: offers,
        }))
}

// ---------------------------------------------------------------- member: redemption

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub reward_id: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Redeemed {
    pub voucher: VoucherView,
    /// The member's balance after paying for it.
    pub points_balance: i64,
}

/// Redeems one reward for the member in the caller's write transaction.
pub async fn redeem(
    txn: &DatabaseTransaction,
    member_id: i64,
    reward_id: i64,
    today: NaiveDate,
) -> Result<Redeemed, ApiError> {
    let now = Utc::now();
    let tiers = TierTable::load(txn).await?;
    let r = reward::Entity::find_by_id(reward_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("礼品"))?;
    let m = member::Entity::find_by_id(member_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("会员"))?;
    let home_store_id = home_store_of(txn, m.customer_id).await?;
    // A first look without locks, so a member who could never redeem this hears the real
    // reason (not "insufficient points") and the ledger is not touched for nothing.
    let holder = Holder {
        member: &m,
        home_store_id,
        tiers: &tiers,
        now,
        today,
    };
    if let Some(refusal) = holder.refusal(&r, held(txn, member_id, reward_id).await?, true) {
        return Err(refusal.error());
    }
    let price = r.points_price;

    // (1) The debit locks the member's row: from here on this member's redemptions run one
    // at a time, which is what makes the limit count below exact.
    let posted = ledger::debit(
        txn,
        &Posting {
            member_id,
            kind: EntryKind::Spend,
            source: source::REDEMPTION,
            ref_id: Some(reward_id),
            reason: format!("兑换 {}", r.name),
            staff_id: None,
        },
        price,
        None,
        false,
        today,
    )
    .await?;

    // (2) The authoritative checks, on rows read again under the lock.
    let m = ledger::lock_member(txn, member_id).await?;
    let r = reward::Entity::find_by_id(reward_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("礼品"))?;
    let holder = Holder {
        member: &m,
        ..holder
    };
    if let Some(refusal) = holder.refusal(&r, held(txn, member_id, reward_id).await?, false) {
        return Err(refusal.error());
    }
    if r.points_price != price {
        return Err(ApiError::conflict(
            "reward_changed",
            "礼品信息已更新，请刷新后重试",
        ));
    }

    // (3) The stock, decided by the statement: concurrent redemptions of different members
    // queue on the reward's row and the last unit goes to exactly one of them.
    let taken = reward::Entity::update_many()
        .col_expr(
            reward::Column::StockLeft,
            Expr::col(reward::Column::StockLeft).sub(1),
        )
        .filter(reward::Column::Id.eq(reward_id))
        .filter(reward::Column::StockLeft.gt(0))
        .exec(txn)
        .await?;
    if taken.rows_affected == 0 {
        return Err(Refusal::SoldOut.error());
    }

    // (4) The voucher.
    let v = issue_voucher(
        txn,
        &NewVoucher {
            customer_id: m.customer_id,
            member_id: Some(member_id),
            source: voucher_source::REDEMPTION,
            kind: r.kind.clone(),
            title: r.name.clone(),
            face_value_fen: r.face_value_fen,
            valid_days: r.voucher_valid_days,
            store_id: r.store_id,
            reward_id: Some(reward_id),
            points_cost: price,
            spend_entry_id: Some(posted.entry_id),
        },
        today,
    )
    .await?;
    Ok(Redeemed {
        voucher: VoucherView::of(&v, today),
        points_balance: posted.balance_after,
    })
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_redeem_reward",
    params(
        ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key and body replays the first answer and changes nothing"),
    ),
    request_body = RedeemRequest,
    responses(
        (status = 201, description = "Redeemed: the voucher and the new balance", body = Redeemed),
        (status = 400, description = "`validation_failed`: missing or malformed Idempotency-Key", body = ErrorEnvelope),
        (status = 404, description = "`not_member`, or no such reward", body = ErrorEnvelope),
        (status = 409, description = "`reward_unavailable`, `tier_too_low`, `sold_out`, `limit_reached`, `insufficient_points` or `reward_changed`", body = ErrorEnvelope),
        (status = 422, description = "`idempotency_key_reused` with another body", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/redemptions")]
pub async fn member_redeem(
    state: web::Data<AppState>,
    who: Member,
    req: HttpRequest,
    body: web::Json<RedeemRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::required(&req)?;
    let m = membership::current(&state, &who).await?;
    let body = body.into_inner();
    let (member_id, reward_id) = (m.id, body.reward_id);
    let today = state.settings.loyalty.today();
    let (response, redeemed) = idempotency::once(
        &state.db,
        format!("member:{member_id}:redeem"),
        key,
        &body,
        Box::new(move |txn| {
            Box::pin(async move {
                let redeemed = redeem(txn, member_id, reward_id, today).await?;
                Ok((Outcome::new(StatusCode::CREATED, &redeemed)?, ()))
            })
        }),
    )
    .await?;
    if redeemed.is_some() {
        card::invalidate(&state.cache, member_id).await;
    }
    Ok(response)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RedemptionQuery {
    pub cursor: Option<i64>,
    /// 1-100, default 20.
    pub limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct VoucherPage {
    pub items: Vec<VoucherView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_list_redemptions",
    params(RedemptionQuery),
    responses(
        (status = 200, description = "My redemptions, newest first", body = VoucherPage),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/redemptions")]
pub async fn member_redemptions(
    state: web::Data<AppState>,
    who: Member,
    query: web::Query<RedemptionQuery>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let limit = paging::limit(query.limit, 20, 100)?;
    let today = state.settings.loyalty.today();
    let (rows, next_cursor) = paging::fetch(
        &state.db,
        voucher::Entity::find()
            .filter(voucher::Column::MemberId.eq(m.id))
            .filter(voucher::Column::Source.eq(voucher_source::REDEMPTION)),
        voucher::Column::Id,
        query.cursor,
        limit,
        |v| v.id,
    )
    .await?;
    Ok(HttpResponse::Ok().json(VoucherPage {
        items: rows.iter().map(|v| VoucherView::of(v, today)).collect(),
        next_cursor,
    }))
}

// ---------------------------------------------------------------- member: vouchers

/// The caller's customer id: vouchers belong to customers (a gift may reach one before they
/// join), but only someone with a bound phone has a customer record.
fn customer_of(who: &Member) -> Result<i64, ApiError> {
    who.account.customer_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_member",
            "您还不是会员，加入后即可查看兑换券",
        )
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VoucherQuery {
    /// `unused`, `used`, `cancelled` or `expired`.
    pub status: Option<String>,
    pub cursor: Option<i64>,
    /// 1-100, default 20.
    pub limit: Option<u64>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_list_vouchers",
    params(VoucherQuery),
    responses(
        (status = 200, description = "My vouchers, newest first", body = VoucherPage),
        (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/vouchers")]
pub async fn member_vouchers(
    state: web::Data<AppState>,
    who: Member,
    query: web::Query<VoucherQuery>,
) -> Result<HttpResponse, ApiError> {
    let customer_id = customer_of(&who)?;
    let limit = paging::limit(query.limit, 20, 100)?;
    let today = state.settings.loyalty.today();
    let q = voucher::Entity::find().filter(voucher::Column::CustomerId.eq(customer_id));
    let q = match query.status.as_deref() {
        None => q,
        Some(status::UNUSED) => q
            .filter(voucher::Column::Status.eq(status::UNUSED))
            .filter(voucher::Column::ExpiresOn.gte(today)),
        Some(status::EXPIRED) => q
            .filter(voucher::Column::Status.eq(status::UNUSED))
            .filter(voucher::Column::ExpiresOn.lt(today)),
        Some(s @ (status::USED | status::CANCELLED)) => q.filter(voucher::Column::Status.eq(s)),
        Some(_) => {
            return Err(ApiError::validation(
                "status",
                "status 须为 unused、used、cancelled 或 expired",
            ))
        }
    };
    let (rows, next_cursor) = paging::fetch(
        &state.db,
        q,
        voucher::Column::Id,
        query.cursor,
        limit,
        |v| v.id,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(VoucherPage {
            items: rows.iter().map(|v| VoucherView::of(v, today)).collect(),
            next_cursor,
        }))
}

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    pub voucher: VoucherView,
    /// Points put back (0 for a gift, or when the lots they came from have expired since).
    pub points_returned: i64,
    /// The member's balance afterwards (null for a customer who is not a member).
    pub points_balance: Option<i64>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_cancel_voucher",
    params(("id" = i64, Path, description = "voucher id")),
    responses(
        (status = 200, description = "Cancelled: its points are back", body = Cancelled),
        (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`voucher_not_cancellable`: used, cancelled or expired", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/vouchers/{id}/cancel")]
pub async fn member_cancel_voucher(
    state: web::Data<AppState>,
    who: Member,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let customer_id = customer_of(&who)?;
    let id = path.into_inner();
    let today = state.settings.loyalty.today();
    let cancelled = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let v = voucher::Entity::find_by_id(id)
                .filter(voucher::Column::CustomerId.eq(customer_id))
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("兑换券"))?;
            // The member's row first, as a redemption takes it: the same lock order everywhere.
            let mut balance = match v.member_id {
                Some(member_id) => Some(ledger::lock_member(txn, member_id).await?.points_balance),
                None => None,
            };
            let now = Utc::now();
            let done = voucher::Entity::update_many()
                .col_expr(voucher::Column::Status, Expr::value(status::CANCELLED))
                .col_expr(voucher::Column::CancelledAt, Expr::value(now))
                .filter(voucher::Column::Id.eq(id))
                .filter(voucher::Column::CustomerId.eq(customer_id))
                .filter(voucher::Column::Status.eq(status::UNUSED))
                .filter(voucher::Column::ExpiresOn.gte(today))
                .exec_with_returning(txn)
                .await?;
            let Some(v) = done.into_iter().next() else {
                let current = voucher::Entity::find_by_id(id).one(txn).await?.unwrap_or(v);
                return Err(ApiError::conflict(
                    "voucher_not_cancellable",
                    "该兑换券已使用、已取消或已过期，不能取消",
                )
                .with_detail("status", status_of(&current, today)));
            };
            let mut returned = 0;
            if let (Some(member_id), Some(entry_id)) = (v.member_id, v.spend_entry_id) {
                let posted = ledger::restore(
                    txn,
                    &Posting {
                        member_id,
                        kind: EntryKind::Reverse,
                        source: source::VOUCHER_CANCEL,
                        ref_id: Some(v.id),
                        reason: "取消兑换券，积分退回".into(),
                        staff_id: None,
                    },
                    entry_id,
                )
                .await?;
                if let Some(p) = posted {
                    returned = p.balance_after - balance.unwrap_or(p.balance_after);
                    balance = Some(p.balance_after);
                }
            }
            if let Some(reward_id) = v.reward_id {
                reward::Entity::update_many()
                    .col_expr(
                        reward::Column::StockLeft,
                        Expr::col(reward::Column::StockLeft).add(1),
                    )
                    .filter(reward::Column::Id.eq(reward_id))
                    .filter(
                        Expr::col(reward::Column::StockLeft)
                            .lt(Expr::col(reward::Column::StockTotal)),
                    )
                    .exec(txn)
                    .await?;
            }
            Ok::<_, ApiError>(Cancelled {
                voucher: VoucherView::of(&v, today),
                points_returned: returned,
                points_balance: balance,
            })
        })
    })
    .await?;
    if let Some(member_id) = cancelled.voucher.member_id {
        card::invalidate(&state.cache, member_id).await;
    }
    Ok(HttpResponse::Ok().json(cancelled))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_rewards)
        .service(create_reward)
        .service(update_reward)
        .service(verify_voucher)
        .service(member_rewards)
        .service(member_redeem)
        .service(member_redemptions)
        .service(member_vouchers)
        .service(member_cancel_voucher);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_only_the_unambiguous_alphabet() {
        for _ in 0..100 {
            let code = random_code();
            assert_eq!(code.len(), CODE_LEN);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        }
    }

    #[test]
    fn an_unused_voucher_past_its_last_day_reads_as_expired() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap_or_default();
        let v = voucher::Model {
            id: 1,
            code: "ABC".into(),
            customer_id: 1,
            member_id: None,
            reward_id: None,
            source: voucher_source::BIRTHDAY.into(),
            kind: kind::SERVICE.into(),
            title: "生日礼".into(),
            face_value_fen: None,
            points_cost: 0,
            spend_entry_id: None,
            store_id: None,
            status: status::UNUSED.into(),
            issued_at: Utc::now(),
            expires_on: day,
            used_at: None,
            used_store_id: None,
            used_by_staff_id: None,
            cancelled_at: None,
        };
        assert_eq!(status_of(&v, day), status::UNUSED);
        assert_eq!(status_of(&v, day + Duration::days(1)), status::EXPIRED);
        let used = voucher::Model {
            status: status::USED.into(),
            ..v
        };
        assert_eq!(status_of(&used, day + Duration::days(1)), status::USED);
    }
}
