//! The membership card, the hottest read of the mini-program. It is cached (in-process, or in
//! Redis when configured) and validated by generations: every change to a member bumps that
//! member's generation after its commit, a change to the tier table bumps the global one, and a
//! cached card only counts while both generations it was built under are still current and it
//! was built today. A reader that loaded the database before a write committed stored the old
//! generation with its card, so that card is never served after the write: the member never
//! sees a balance older than their own last write.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{checkin, customer, member, points_lot};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tiers::{trailing_spend, TierTable, TierView};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::state::AppState;

const GLOBAL_GEN: &str = "card:gen:all";

/// A generation is a fresh unique value, never a counter: a counter that expired and started
/// again could meet a card built under its old value. It lives far longer than any card
/// (`loyalty.card_cache_secs` is at most an hour), so a card built while it was absent is gone
/// before it expires.
const GEN_TTL: Duration = Duration::from_secs(24 * 3600);

fn new_generation() -> String {
    format!(
        "{}-{}",
        Utc::now().timestamp_micros(),
        rand::random::<u32>()
    )
}

fn card_key(member_id: i64) -> String {
    format!("card:{member_id}")
}

fn gen_key(member_id: i64) -> String {
    format!("card:gen:{member_id}")
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct NextTier {
    pub code: String,
    pub name: String,
    pub threshold_fen: i64,
    /// Qualifying spend still needed to reach it, in fen.
    pub spend_needed_fen: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct ExpiringPoints {
    /// Usable through the end of this day.
    pub expires_on: NaiveDate,
    pub points: i64,
}

/// The member's card: who, which tier until when, what is needed for the next one, the points
/// and which of them expire soon.
#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct Card {
    pub member_id: i64,
    pub member_no: String,
    pub name: Option<String>,
    /// The member's own birthday (set once by them, or by staff): the mini-program offers to
    /// set it only while it is empty.
    pub birthday: Option<NaiveDate>,
    pub joined_at: DateTime<Utc>,
    pub tier: TierView,
    /// The last day of the tier; null for the entry tier, which needs no renewal.
    pub tier_valid_until: Option<NaiveDate>,
    /// True when the tier was set by staff by hand.
    pub tier_is_manual: bool,
    pub next_tier: Option<NextTier>,
    /// Net consumption of the last 12 months, in fen: the figure tiers qualify on.
    pub spend_12m_fen: i64,
    pub points_balance: i64,
    /// Points expiring within the reminder window (30 days by default), soonest first.
    pub expiring_soon: Vec<ExpiringPoints>,
    pub expiring_soon_total: i64,
    pub checked_in_today: bool,
    pub today: NaiveDate,
}

/// A cached card is stored as `global_gen \n member_gen \n business date \n card JSON`, so a
/// hit is answered with the JSON as stored, without decoding and encoding it again.
fn encode(global_gen: &str, member_gen: &str, card: &Card) -> Result<String, serde_json::Error> {
    Ok(format!(
        "{global_gen}\n{member_gen}\n{}\n{}",
        card.today,
        serde_json::to_string(card)?
    ))
}

/// The card JSON of a cached entry, if it is still current.
fn current_json<'a>(
    raw: &'a str,
    global_gen: &str,
    member_gen: &str,
    today: NaiveDate,
) -> Option<&'a str> {
    let mut parts = raw.splitn(4, '\n');
    let (g, m, d, json) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (g == global_gen && m == member_gen && d.parse::<NaiveDate>().ok()? == today).then_some(json)
}

/// Builds the card from the database.
pub async fn build(
    conn: &impl ConnectionTrait,
    state: &AppState,
    m: &member::Model,
    today: NaiveDate,
) -> Result<Card, ApiError> {
    let settings = &state.settings.loyalty;
    let tiers = TierTable::load(conn).await?;
    let (name, birthday) = customer::Entity::find_by_id(m.customer_id)
        .one(conn)
        .await?
        .map(|c| (c.name, c.birthday))
        .unwrap_or_default();
    let spend = trailing_spend(conn, m.customer_id, today, 12).await?;
    let (tier, valid_until, manual) = tiers.effective(m, today);
    let next_tier = tiers.above(tier.rank).map(|next| NextTier {
        code: next.code.clone(),
        name: next.name.clone(),
        threshold_fen: next.threshold_fen,
        spend_needed_fen: (next.threshold_fen - spend).max(0),
    });
    let expiring_soon = expiring(
        conn,
        m.id,
        today,
        today + chrono::Days::new(u64::from(settings.expiry_reminder_days)),
    )
    .await?;
    let checked_in_today = checkin::Entity::find()
        .filter(checkin::Column::MemberId.eq(m.id))
        .filter(checkin::Column::BusinessDate.eq(today))
        .count(conn)
        .await?
        > 0;
    Ok(Card {
        member_id: m.id,
        member_no: m.member_no.clone(),
        name,
        birthday,
        joined_at: m.joined_at,
        tier: TierView::from(tier),
        tier_valid_until: valid_until,
        tier_is_manual: manual,
        next_tier,
        spend_12m_fen: spend,
        points_balance: m.points_balance,
        expiring_soon_total: expiring_soon.iter().map(|e| e.points).sum(),
        expiring_soon,
        checked_in_today,
        today,
    })
}

/// Live points expiring from `from` through `until`, summed per expiry date.
pub async fn expiring(
    conn: &impl ConnectionTrait,
    member_id: i64,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<ExpiringPoints>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        expires_on: Option<NaiveDate>,
        points: Option<i64>,
    }
    let rows = points_lot::Entity::find()
        .select_only()
        .column(points_lot::Column::ExpiresOn)
        .column_as(Expr::cust("CAST(SUM(remaining) AS BIGINT)"), "points")
        .filter(points_lot::Column::MemberId.eq(member_id))
        .filter(points_lot::Column::Kind.eq("earn"))
        .filter(points_lot::Column::ExpiredAt.is_null())
        .filter(points_lot::Column::Remaining.gt(0))
        .filter(points_lot::Column::ExpiresOn.gte(from))
        .filter(points_lot::Column::ExpiresOn.lte(until))
        .group_by(points_lot::Column::ExpiresOn)
        .order_by_asc(points_lot::Column::ExpiresOn)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(ExpiringPoints {
                expires_on: r.expires_on?,
                points: r.points?,
            })
        })
        .collect())
}

fn value(raw: Option<&Option<String>>) -> String {
    raw.and_then(|v| v.clone()).unwrap_or_default()
}

/// The card of `member_id` as JSON, from the cache when it is current, else built and cached.
/// The cache is an accelerator only: if it fails, the card comes from the database.
pub async fn get_json(state: &AppState, member_id: i64) -> Result<String, ApiError> {
    let today = state.settings.loyalty.today();
    let key = card_key(member_id);
    let (mut global_gen, mut member_gen) = (String::new(), String::new());
    match state
        .cache
        .mget(&[&key, &gen_key(member_id), GLOBAL_GEN])
        .await
    {
        Ok(values) => {
            member_gen = value(values.get(1));
            global_gen = value(values.get(2));
            if let Some(Some(raw)) = values.first() {
                if let Some(json) = current_json(raw, &global_gen, &member_gen, today) {
                    return Ok(json.to_string());
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "card cache unavailable, reading the database"),
    }
    let m = member::Entity::find_by_id(member_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("会员"))?;
    // The generations were read before the database: a write committing in between has
    // replaced them, so this card, stored under the old ones, is never served.
    let card = build(&state.db, state, &m, today).await?;
    let json = serde_json::to_string(&card).map_err(ApiError::internal)?;
    let entry = encode(&global_gen, &member_gen, &card).map_err(ApiError::internal)?;
    let ttl = Duration::from_secs(state.settings.loyalty.card_cache_secs);
    if let Err(e) = state.cache.set(&key, &entry, ttl).await {
        tracing::warn!(error = %e, "cannot cache a card");
    }
    Ok(json)
}

/// The card of `member_id`.
pub async fn get(state: &AppState, member_id: i64) -> Result<Card, ApiError> {
    let json = get_json(state, member_id).await?;
    serde_json::from_str(&json).map_err(ApiError::internal)
}

/// The hottest path: the card of the member a token belongs to, from the cache alone, in one
/// cache round trip (token -> member id -> card and its generations). `None` sends the caller
/// down the full path (authentication in the database, then [`get_json`]).
pub async fn by_token(state: &AppState, token_key: &str) -> Option<String> {
    let found = state
        .cache
        .follow(token_key, &["card:{}", "card:gen:{}", GLOBAL_GEN])
        .await
        .ok()??;
    let (_, values) = found;
    let raw = values.first()?.as_deref()?;
    current_json(
        raw,
        &value(values.get(2)),
        &value(values.get(1)),
        state.settings.loyalty.today(),
    )
    .map(str::to_string)
}

/// Marks the member's cached card stale. Call after the change has committed.
pub async fn invalidate(cache: &Cache, member_id: i64) {
    if let Err(e) = cache
        .set(&gen_key(member_id), &new_generation(), GEN_TTL)
        .await
    {
        // The card may be served stale for up to card_cache_secs; say so loudly.
        tracing::error!(error = %e, member_id, "cannot invalidate a cached card");
    }
}

pub async fn invalidate_many(cache: &Cache, member_ids: impl IntoIterator<Item = i64>) {
    for id in member_ids {
        invalidate(cache, id).await;
    }
}

/// Marks every cached card stale (the tier table changed).
pub async fn invalidate_all(cache: &Cache) {
    if let Err(e) = cache.set(GLOBAL_GEN, &new_generation(), GEN_TTL).await {
        tracing::error!(error = %e, "cannot invalidate cached cards");
    }
}
