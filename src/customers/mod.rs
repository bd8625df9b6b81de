//! Customers as staff see them (DESIGN sections 3 and 8): create (never a twin of an existing
//! phone), search by name, by the last four digits or by the full phone (through the keyed
//! hash), detail, edit, tags, memory notes, and revealing the full phone. Phones leave this
//! module masked, except from `reveal-phone`. Every read of a detail or a phone and every
//! write is audited; store scope and assignment are checked by `Staff::require_customer`.

use std::collections::{BTreeSet, HashMap};

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{customer, customer_note, customer_tag, staff, store, wechat_account};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit;
use crate::auth::staff::{Action, Reach, Role, Staff};
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::paging;
use crate::privacy::Phone;
use crate::state::AppState;

/// For PATCH bodies: tells "absent" (`None`) from "set to null" (`Some(None)`).
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

const MAX_TAGS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Unknown,
}

impl Gender {
    fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Gender::Female, Gender::Male, Gender::Unknown]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

fn customer_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(ApiError::validation(
            "name",
            "姓名不能为空且不超过 50 个字符",
        ));
    }
    Ok(name.to_string())
}

/// A number as staff type it: `13812345678`, `138 1234 5678`, `+86 138-1234-5678`, or local
/// digits with a `country_code`.
fn parse_phone(raw: &str, country_code: Option<&str>) -> Result<Phone, ApiError> {
    let trimmed = raw.trim();
    let (number, cc) = match trimmed.strip_prefix('+') {
        // "+86..." carries its own country code, which Phone::parse strips.
        Some(rest) if country_code.is_none() && rest.starts_with("86") => (rest, "86"),
        Some(rest) => (rest, country_code.unwrap_or("")),
        None => (trimmed, country_code.unwrap_or("86")),
    };
    if cc.is_empty() {
        return Err(ApiError::validation(
            "country_code",
            "境外号码请单独填写国家或地区代码",
        ));
    }
    Phone::parse(number, cc).map_err(|_| ApiError::validation("phone", "手机号格式不正确"))
}

fn birthday(date: NaiveDate) -> Result<NaiveDate, ApiError> {
    let today = Utc::now().date_naive();
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if date > today || date < earliest {
        return Err(ApiError::validation(
            "birthday",
            "生日须在 1900-01-01 到今天之间",
        ));
    }
    Ok(date)
}

fn source(raw: &str) -> Result<String, ApiError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > 30 {
        return Err(ApiError::validation(
            "source",
            "来源不能为空且不超过 30 个字符",
        ));
    }
    Ok(s.to_string())
}

/// Trimmed, deduplicated, each 1 to 20 characters, at most 20.
fn tags(raw: &[String]) -> Result<Vec<String>, ApiError> {
    let set: BTreeSet<String> = raw.iter().map(|t| t.trim().to_string()).collect();
    if set.len() > MAX_TAGS {
        return Err(ApiError::validation("tags", "标签最多 20 个"));
    }
    if set.iter().any(|t| t.is_empty() || t.chars().count() > 20) {
        return Err(ApiError::validation("tags", "每个标签须为 1 到 20 个字符"));
    }
    Ok(set.into_iter().collect())
}

/// 张三 -> 张*: enough to tell which customer a duplicate is, not enough to identify them.
fn mask_name(name: Option<&str>) -> Option<String> {
    let name = name?;
    let mut chars = name.chars();
    let first = chars.next()?;
    Some(format!("{first}{}", "*".repeat(chars.count().max(1))))
}

#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    pub id: i64,
    pub name: Option<String>,
    /// Always masked (138****1234); `reveal-phone` gives the full number.
    pub phone_masked: Option<String>,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    pub home_store_id: Option<i64>,
    pub consultant_id: Option<i64>,
    pub consultant_name: Option<String>,
    pub referrer_id: Option<i64>,
    pub source: String,
    pub tags: Vec<String>,
    /// Paid visits (a fully refunded one no longer counts).
    pub visit_count: i32,
    /// Paid minus refunded over all time, in fen.
    pub lifetime_spend_fen: i64,
    pub first_visit_at: Option<DateTime<Utc>>,
    pub last_visit_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The customer's membership as the desk sees it next to the record.
#[derive(Serialize, ToSchema)]
pub struct MembershipSummary {
    pub member_id: i64,
    pub member_no: String,
    pub tier_code: String,
    pub tier_name: String,
    pub tier_valid_until: Option<NaiveDate>,
    pub points_balance: i64,
    /// Net spend of the last 12 months, in fen: what tiers qualify on.
    pub spend_12m_fen: i64,
}

#[derive(Serialize, ToSchema)]
pub struct NoteView {
    pub id: i64,
    pub body: String,
    pub staff_id: i64,
    pub staff_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: CustomerView,
    /// Whether the customer has bound the mini-program.
    pub wechat_linked: bool,
    /// Memory notes, newest first; null when the caller may not see sensitive detail.
    pub notes: Option<Vec<NoteView>>,
    /// The caller's role allows revealing this customer's phone.
    pub can_reveal_phone: bool,
    /// Null for a customer who has not joined the programme.
    pub membership: Option<MembershipSummary>,
    /// Member-day bookings they did not turn up for (not checked in by the end of the slot).
    pub no_show_count: i32,
}

async fn staff_names(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, String>, DbErr> {
    let ids: BTreeSet<i64> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, String)> = staff::Entity::find()
        .select_only()
        .column(staff::Column::Id)
        .column(staff::Column::DisplayName)
        .filter(staff::Column::Id.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Views of several customers with their tags and consultants' names, in three queries.
async fn views(
    db: &impl ConnectionTrait,
    rows: Vec<customer::Model>,
) -> Result<Vec<CustomerView>, DbErr> {
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let mut tags_of: HashMap<i64, Vec<String>> = HashMap::new();
    if !ids.is_empty() {
        for t in customer_tag::Entity::find()
            .filter(customer_tag::Column::CustomerId.is_in(ids))
            .order_by_asc(customer_tag::Column::Tag)
            .all(db)
            .await?
        {
            tags_of.entry(t.customer_id).or_default().push(t.tag);
        }
    }
    let names = staff_names(db, rows.iter().filter_map(|c| c.consultant_id)).await?;
    Ok(rows
        .into_iter()
        .map(|c| CustomerView {
            consultant_name: c.consultant_id.and_then(|id| names.get(&id).cloned()),
            tags: tags_of.remove(&c.id).unwrap_or_default(),
            id: c.id,
            name: c.name,
            phone_masked: c.phone_masked,
            gender: c.gender.as_deref().and_then(Gender::parse),
            birthday: c.birthday,
            home_store_id: c.home_store_id,
            consultant_id: c.consultant_id,
            referrer_id: c.referrer_id,
            source: c.source,
            visit_count: c.visit_count,
            lifetime_spend_fen: c.lifetime_spend_fen,
            first_visit_at: c.first_visit_at,
            last_visit_at: c.last_visit_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        })
        .collect())
}

async fn view(db: &impl ConnectionTrait, c: customer::Model) -> Result<CustomerView, ApiError> {
    views(db, vec![c])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("customer view vanished")))
}

/// The customer, or 404.
pub async fn find_customer(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<customer::Model, ApiError> {
    customer::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("顾客"))
}

/// A consultant must be an active consultant or manager of the customer's store.
async fn check_consultant(
    db: &impl ConnectionTrait,
    consultant_id: i64,
    store_id: Option<i64>,
) -> Result<(), ApiError> {
    let ok = staff::Entity::find_by_id(consultant_id)
        .one(db)
        .await?
        .is_some_and(|s| {
            s.active
                && matches!(Role::parse(&s.role), Some(Role::Consultant | Role::Manager))
                && s.store_id.is_some()
                && s.store_id == store_id
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "consultant_id",
            "顾问须为该顾客所属门店在职的顾问或店长",
        ))
    }
}

async fn check_store(db: &impl ConnectionTrait, store_id: i64) -> Result<(), ApiError> {
    match store::Entity::find_by_id(store_id).one(db).await? {
        Some(s) if s.active => Ok(()),
        _ => Err(ApiError::validation("home_store_id", "门店不存在或已停用")),
    }
}

async fn check_referrer(
    db: &impl ConnectionTrait,
    referrer_id: i64,
    customer_id: Option<i64>,
) -> Result<(), ApiError> {
    if Some(referrer_id) == customer_id
        || customer::Entity::find_by_id(referrer_id)
            .one(db)
            .await?
            .is_none()
    {
        return Err(ApiError::validation("referrer_id", "推荐人不存在"));
    }
    Ok(())
}

/// Raised inside a write transaction; the handler turns it into [`phone_exists`] outside it,
/// where the existing customer can be read (PostgreSQL aborts a transaction at a unique
/// violation, so reading inside would fail there).
fn phone_taken() -> ApiError {
    ApiError::conflict("phone_exists", "该手机号已登记为其他顾客")
}

/// 409 naming the customer who already has this phone, masked.
async fn phone_exists(db: &impl ConnectionTrait, phone_hash: &str) -> ApiError {
    let existing = customer::Entity::find()
        .filter(customer::Column::PhoneHash.eq(phone_hash))
        .one(db)
        .await
        .ok()
        .flatten();
    let mut e = ApiError::conflict("phone_exists", "该手机号已登记为其他顾客");
    if let Some(c) = existing {
        e = e.with_detail(
            "existing",
            json!({
                "id": c.id,
                "name_masked": mask_name(c.name.as_deref()),
                "phone_masked": c.phone_masked,
                "home_store_id": c.home_store_id,
            }),
        );
    }
    e
}

async fn replace_tags(
    txn: &DatabaseTransaction,
    customer_id: i64,
    tags: &[String],
) -> Result<(), DbErr> {
    customer_tag::Entity::delete_many()
        .filter(customer_tag::Column::CustomerId.eq(customer_id))
        .exec(txn)
        .await?;
    if tags.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    customer_tag::Entity::insert_many(tags.iter().map(|t| customer_tag::ActiveModel {
        customer_id: Set(customer_id),
        tag: Set(t.clone()),
        created_at: Set(now),
        ..Default::default()
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- create

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    pub name: String,
    /// Mainland mobile (11 digits) unless `country_code` says otherwise.
    pub phone: String,
    /// Default `86`.
    pub country_code: Option<String>,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    /// Default: the caller's store. Only admins may choose another one.
    pub home_store_id: Option<i64>,
    /// Default: the caller, when the caller is a consultant.
    pub consultant_id: Option<i64>,
    /// Where the customer came from, e.g. `walk_in`, `referral`, `meituan`. Default `store`.
    pub source: Option<String>,
    pub referrer_id: Option<i64>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[utoipa::path(
    operation_id = "create_customer",
    tag = "customers",
    request_body = CreateCustomerRequest,
    responses(
        (status = 201, body = CustomerDetail),
        (status = 400, description = "`validation_failed` naming the `field`", body = ErrorEnvelope),
        (status = 403, description = "`permission_denied`", body = ErrorEnvelope),
        (status = 409, description = "`phone_exists`, with the existing customer masked in `existing`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/customers")]
pub async fn create(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<CreateCustomerRequest>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CustomerCreate)?;
    let body = body.into_inner();
    let name = customer_name(&body.name)?;
    let phone = parse_phone(&body.phone, body.country_code.as_deref())?;
    let birthday = body.birthday.map(birthday).transpose()?;
    let source = body.source.as_deref().map(source).transpose()?;
    let tags = tags(&body.tags)?;
    let home_store_id = match (reach, body.home_store_id) {
        (Reach::Chain, chosen) => chosen,
        (_, None) => staff.store_id,
        (_, Some(id)) if Some(id) == staff.store_id => Some(id),
        (_, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                "只能为本门店登记顾客",
            ))
        }
    };
    let consultant_id = match body.consultant_id {
        Some(id) if id != staff.id => {
            staff.require(Action::CustomerAssign)?;
            Some(id)
        }
        Some(id) => Some(id),
        None if staff.role == Role::Consultant => Some(staff.id),
        None => None,
    };
    let phone_hash = state.vault.phone_index(&phone);
    let phone_enc = state.vault.encrypt(phone.as_str());
    let phone_masked = phone.masked();
    let actor = staff.clone();
    let created = db::write(&state.db, move |txn| {
        Box::pin(async move {
            if let Some(id) = home_store_id {
                check_store(txn, id).await?;
            }
            if let Some(id) = consultant_id {
                check_consultant(txn, id, home_store_id).await?;
            }
            if let Some(id) = body.referrer_id {
                check_referrer(txn, id, None).await?;
            }
            if customer::Entity::find()
                .filter(customer::Column::PhoneHash.eq(&phone_hash))
                .one(txn)
                .await?
                .is_some()
            {
                return Err(phone_taken());
            }
            let now = Utc::now();
            let inserted = customer::ActiveModel {
                name: Set(Some(name)),
                phone_enc: Set(Some(phone_enc)),
                phone_hash: Set(Some(phone_hash.clone())),
                phone_masked: Set(Some(phone_masked)),
                gender: Set(body.gender.map(|g| g.as_str().to_string())),
                birthday: Set(birthday),
                home_store_id: Set(home_store_id),
                source: Set(source.unwrap_or_else(|| "store".into())),
                consultant_id: Set(consultant_id),
                referrer_id: Set(body.referrer_id),
                created_by_staff_id: Set(Some(actor.id)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await;
            let created = match inserted {
                Ok(c) => c,
                // The unique index on the phone hash is the arbiter, also between two desks
                // registering the same walk-in at once.
                Err(e) if db::is_unique_violation(&e) => return Err(phone_taken()),
                Err(e) => return Err(e.into()),
            };
            replace_tags(txn, created.id, &tags).await?;
            audit::entry("customer.create")
                .by(&actor)
                .target("customer", created.id)
                .store(created.home_store_id)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(created)
        })
    })
    .await;
    let created = match created {
        Err(e) if e.code() == "phone_exists" => {
            return Err(phone_exists(&state.db, &state.vault.phone_index(&phone)).await);
        }
        other => other?,
    };
    tracing::info!(customer_id = created.id, by = staff.id, "customer created");
    let body = detail_of(&state, &staff, created).await?;
    Ok(HttpResponse::Created().json(body))
}

async fn detail_of(
    state: &AppState,
    staff: &Staff,
    c: customer::Model,
) -> Result<CustomerDetail, ApiError> {
    let notes_allowed = staff.require_customer(Action::CustomerNotes, &c).is_ok();
    let can_reveal_phone = staff
        .require_customer(Action::CustomerRevealPhone, &c)
        .is_ok();
    let wechat_linked = wechat_account::Entity::find()
        .filter(wechat_account::Column::CustomerId.eq(c.id))
        .one(&state.db)
        .await?
        .is_some();
    let notes = if notes_allowed {
        let rows = customer_note::Entity::find()
            .filter(customer_note::Column::CustomerId.eq(c.id))
            .order_by_desc(customer_note::Column::Id)
            .all(&state.db)
            .await?;
        let names = staff_names(&state.db, rows.iter().map(|n| n.staff_id)).await?;
        Some(
            rows.into_iter()
                .map(|n| NoteView {
                    staff_name: names.get(&n.staff_id).cloned(),
                    id: n.id,
                    body: n.body,
                    staff_id: n.staff_id,
                    created_at: n.created_at,
                })
                .collect(),
        )
    } else {
        None
    };
    let membership = membership_summary(state, &c).await?;
    let no_show_count = c.no_show_count;
    Ok(CustomerDetail {
        customer: view(&state.db, c).await?,
        wechat_linked,
        notes,
        can_reveal_phone,
        membership,
        no_show_count,
    })
}

async fn membership_summary(
    state: &AppState,
    c: &customer::Model,
) -> Result<Option<MembershipSummary>, ApiError> {
    use crate::loyalty::{membership, tiers};
    let Some(m) = membership::member_of_customer(&state.db, c.id).await? else {
        return Ok(None);
    };
    let today = state.settings.loyalty.today();
    let table = tiers::TierTable::load(&state.db).await?;
    let (tier, valid_until, _) = table.effective(&m, today);
    Ok(Some(MembershipSummary {
        member_id: m.id,
        member_no: m.member_no.clone(),
        tier_code: tier.code.clone(),
        tier_name: tier.name.clone(),
        tier_valid_until: valid_until,
        points_balance: m.points_balance,
        spend_12m_fen: tiers::trailing_spend(&state.db, c.id, today, 12).await?,
    }))
}

// ---------------------------------------------------------------- search

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// A name (or part of one) or the last four digits of the phone. Full numbers go to
    /// `POST /api/v1/staff/customers/lookup`, never into a URL (proxy logs, browser history).
    pub q: Option<String>,
    /// Admins: only this store's customers.
    pub store_id: Option<i64>,
    pub consultant_id: Option<i64>,
    /// true: only customers assigned to the caller.
    pub mine: Option<bool>,
    pub tag: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// 1 to 100, default 20.
    pub limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerPage {
    /// Newest first.
    pub items: Vec<CustomerView>,
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    operation_id = "search_customers",
    tag = "customers",
    params(CustomerQuery),
    responses((status = 200, body = CustomerPage), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/customers")]
pub async fn search(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<CustomerQuery>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CustomerRead)?;
    let q = query.into_inner();
    let limit = paging::limit(q.limit, 20, 100)?;
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let digits = text.filter(|t| t.chars().all(|c| c.is_ascii_digit() || " +-".contains(c)));
    if digits.is_some_and(|d| d.chars().filter(char::is_ascii_digit).count() > 4) {
        return Err(ApiError::validation(
            "q",
            "按完整手机号查找请使用 POST /api/v1/staff/customers/lookup，手机号不应出现在网址中",
        ));
    }
    let mut cond = Condition::all();
    if reach != Reach::Chain {
        cond = cond.add(customer::Column::HomeStoreId.eq(staff.store_id));
    }
    if let Some(d) = digits.filter(|d| d.len() == 4) {
        cond = cond.add(customer::Column::PhoneMasked.like(format!("%****{d}")));
    } else if let Some(t) = text {
        let t: String = t
            .chars()
            .filter(|c| !matches!(c, '%' | '_' | '\\'))
            .collect();
        cond = cond.add(customer::Column::Name.like(format!("%{t}%")));
    }
    if let Some(id) = q.store_id {
        cond = cond.add(customer::Column::HomeStoreId.eq(id));
    }
    if let Some(id) = q.consultant_id {
        cond = cond.add(customer::Column::ConsultantId.eq(id));
    }
    if q.mine == Some(true) {
        cond = cond.add(customer::Column::ConsultantId.eq(staff.id));
    }
    if let Some(tag) = q.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        cond = cond.add(
            customer::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(customer_tag::Column::CustomerId)
                    .from(customer_tag::Entity)
                    .and_where(customer_tag::Column::Tag.eq(tag))
                    .to_owned(),
            ),
        );
    }
    if let Some(cursor) = q.cursor {
        cond = cond.add(customer::Column::Id.lt(cursor));
    }
    let rows = customer::Entity::find()
        .filter(cond)
        .order_by_desc(customer::Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let (rows, next_cursor) = paging::split(rows, limit, |c| c.id);
    let items = views(&state.db, rows).await?;
    Ok(HttpResponse::Ok().json(CustomerPage { items, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    pub phone: String,
    /// Default `86`.
    pub country_code: Option<String>,
}

#[utoipa::path(
    operation_id = "lookup_customer_by_phone",
    tag = "customers",
    request_body = PhoneRequest,
    responses(
        (status = 200, description = "The caller's store's customer with this phone, or one without a store yet (who can then be claimed); audited as `customer.search_phone`", body = CustomerPage),
        (status = 400, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/customers/lookup")]
pub async fn lookup(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<PhoneRequest>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CustomerRead)?;
    let phone = parse_phone(&body.phone, body.country_code.as_deref())?;
    let mut select = customer::Entity::find()
        .filter(customer::Column::PhoneHash.eq(state.vault.phone_index(&phone)));
    if reach != Reach::Chain {
        // A customer who bound the mini-program before visiting has no store yet; the full
        // number, given at the desk, is what lets staff of any store find and claim them.
        select = select.filter(
            Condition::any()
                .add(customer::Column::HomeStoreId.eq(staff.store_id))
                .add(customer::Column::HomeStoreId.is_null()),
        );
    }
    let rows = select.all(&state.db).await?;
    // Looking a person up by their phone is a read of personal data.
    audit::entry("customer.search_phone")
        .by(&staff)
        .store(staff.store_id)
        .detail(json!({"found": rows.iter().map(|c| c.id).collect::<Vec<_>>()}))
        .write(&state.db)
        .await?;
    let items = views(&state.db, rows).await?;
    Ok(HttpResponse::Ok().json(CustomerPage {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    operation_id = "claim_customer",
    tag = "customers",
    request_body = PhoneRequest,
    responses(
        (status = 200, description = "The customer now belongs to the caller's store", body = CustomerDetail),
        (status = 403, description = "`permission_denied`", body = ErrorEnvelope),
        (status = 404, description = "No customer without a store has this phone", body = ErrorEnvelope),
        (status = 409, description = "`no_own_store`: HQ admins assign stores by editing the customer", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/customers/claim")]
pub async fn claim(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<PhoneRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::CustomerTransfer)?;
    let Some(store_id) = staff.store_id else {
        return Err(ApiError::conflict(
            "no_own_store",
            "总部账号不属于门店，请编辑顾客并指定门店",
        ));
    };
    let phone = parse_phone(&body.phone, body.country_code.as_deref())?;
    let hash = state.vault.phone_index(&phone);
    let actor = staff.clone();
    let claimed = db::write(&state.db, move |txn| {
        Box::pin(async move {
            // Conditional: of two stores claiming at once, exactly one wins.
            let done = customer::Entity::update_many()
                .col_expr(customer::Column::HomeStoreId, Expr::value(store_id))
                .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(customer::Column::PhoneHash.eq(&hash))
                .filter(customer::Column::HomeStoreId.is_null())
                .exec(txn)
                .await?;
            if done.rows_affected != 1 {
                return Err(ApiError::not_found("待认领的顾客"));
            }
            let c = customer::Entity::find()
                .filter(customer::Column::PhoneHash.eq(&hash))
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("顾客"))?;
            audit::entry("customer.claim")
                .by(&actor)
                .target("customer", c.id)
                .store(Some(store_id))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(c)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(detail_of(&state, &staff, claimed).await?))
}

// ---------------------------------------------------------------- detail

#[utoipa::path(
    operation_id = "get_customer",
    tag = "customers",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Audited as `customer.view`", body = CustomerDetail),
        (status = 404, description = "No such customer in the caller's scope", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/customers/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let c = find_customer(&state.db, id.into_inner()).await?;
    staff.require_customer(Action::CustomerRead, &c)?;
    // The trail is written before anything is shown: no read without a record of it.
    audit::entry("customer.view")
        .by(&staff)
        .target("customer", c.id)
        .store(c.home_store_id)
        .write(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(detail_of(&state, &staff, c).await?))
}

// ---------------------------------------------------------------- edit

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub country_code: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Gender>)]
    pub gender: Option<Option<Gender>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birthday: Option<Option<NaiveDate>>,
    pub source: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub referrer_id: Option<Option<i64>>,
    /// Needs the assign permission (admin, manager, front desk). Null unassigns.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub consultant_id: Option<Option<i64>>,
    /// Admins only: moves the customer to another store (null: no store). Store staff claim a
    /// customer without a store through `POST /api/v1/staff/customers/claim`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub home_store_id: Option<Option<i64>>,
    /// Replaces the customer's tags.
    pub tags: Option<Vec<String>>,
}

#[utoipa::path(
    operation_id = "update_customer",
    tag = "customers",
    request_body = UpdateCustomerRequest,
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = CustomerDetail),
        (status = 400, body = ErrorEnvelope),
        (status = 403, description = "`permission_denied` or `not_assigned`", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`phone_exists`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[patch("/api/v1/staff/customers/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    body: web::Json<UpdateCustomerRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = body.into_inner();
    let name = body.name.as_deref().map(customer_name).transpose()?;
    let phone = body
        .phone
        .as_deref()
        .map(|p| parse_phone(p, body.country_code.as_deref()))
        .transpose()?;
    let birthday = match body.birthday {
        Some(Some(d)) => Some(Some(birthday(d)?)),
        other => other,
    };
    let source = body.source.as_deref().map(source).transpose()?;
    let tags = body.tags.as_deref().map(tags).transpose()?;
    let phone_fields = phone.as_ref().map(|p| {
        (
            state.vault.phone_index(p),
            state.vault.encrypt(p.as_str()),
            p.masked(),
        )
    });
    let actor = staff.clone();
    let (gender, referrer_id, consultant_id, home_store_id) = (
        body.gender,
        body.referrer_id,
        body.consultant_id,
        body.home_store_id,
    );
    let updated = db::write(&state.db, move |txn| {
        Box::pin(async move {
            // Locked (PostgreSQL) so a concurrent move or edit cannot interleave between the
            // permission check and the write; SQLite's IMMEDIATE transaction already does.
            let current = customer::Entity::find_by_id(id)
                .lock_exclusive()
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("顾客"))?;
            let mut fields: Vec<&str> = Vec::new();
            // Moving stores first: a claim brings the customer into the caller's scope, and
            // every other change is then checked against where the customer will be.
            let mut scope = current.clone();
            if let Some(target) = home_store_id {
                // Moving between stores is HQ's; store staff claim through `claim`, which asks
                // for the full phone as proof the customer is at their desk.
                let reach = actor.require(Action::CustomerTransfer)?;
                if reach != Reach::Chain {
                    actor.require_customer(Action::CustomerRead, &current)?;
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "permission_denied",
                        "只有总部可以在门店之间转移顾客",
                    ));
                }
                if let Some(sid) = target {
                    check_store(txn, sid).await?;
                }
                scope.home_store_id = target;
                fields.push("home_store_id");
            } else {
                actor.require_customer(Action::CustomerRead, &current)?;
            }
            let basic = name.is_some()
                || phone_fields.is_some()
                || gender.is_some()
                || birthday.is_some()
                || source.is_some()
                || referrer_id.is_some()
                || tags.is_some();
            if basic {
                actor.require_customer(Action::CustomerUpdate, &scope)?;
            }
            // The consultant must work at the customer's (new) store; one who does not is
            // unassigned by a move.
            let mut consultant = current.consultant_id;
            if let Some(target) = consultant_id {
                actor.require_customer(Action::CustomerAssign, &scope)?;
                if let Some(cid) = target {
                    check_consultant(txn, cid, scope.home_store_id).await?;
                }
                consultant = target;
                fields.push("consultant_id");
            } else if let Some(cid) = current.consultant_id.filter(|_| home_store_id.is_some()) {
                if check_consultant(txn, cid, scope.home_store_id)
                    .await
                    .is_err()
                {
                    consultant = None;
                    fields.push("consultant_id");
                }
            }
            if let Some((hash, _, _)) = &phone_fields {
                if customer::Entity::find()
                    .filter(customer::Column::PhoneHash.eq(hash))
                    .filter(customer::Column::Id.ne(id))
                    .one(txn)
                    .await?
                    .is_some()
                {
                    return Err(phone_taken());
                }
            }
            if let Some(Some(rid)) = referrer_id {
                check_referrer(txn, rid, Some(id)).await?;
            }
            let mut update = customer::Entity::update_many()
                .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
                .col_expr(
                    customer::Column::HomeStoreId,
                    Expr::value(scope.home_store_id),
                )
                .col_expr(customer::Column::ConsultantId, Expr::value(consultant))
                .filter(customer::Column::Id.eq(id));
            if let Some(v) = name {
                update = update.col_expr(customer::Column::Name, Expr::value(v));
                fields.push("name");
            }
            if let Some((hash, enc, masked)) = &phone_fields {
                update = update
                    .col_expr(customer::Column::PhoneHash, Expr::value(hash.clone()))
                    .col_expr(customer::Column::PhoneEnc, Expr::value(enc.clone()))
                    .col_expr(customer::Column::PhoneMasked, Expr::value(masked.clone()));
                fields.push("phone");
            }
            if let Some(v) = gender {
                update = update.col_expr(
                    customer::Column::Gender,
                    Expr::value(v.map(|g| g.as_str().to_string())),
                );
                fields.push("gender");
            }
            if let Some(v) = birthday {
                update = update.col_expr(customer::Column::Birthday, Expr::value(v));
                fields.push("birthday");
            }
            if let Some(v) = source {
                update = update.col_expr(customer::Column::Source, Expr::value(v));
                fields.push("source");
            }
            if let Some(v) = referrer_id {
                update = update.col_expr(customer::Column::ReferrerId, Expr::value(v));
                fields.push("referrer_id");
            }
            update.exec(txn).await.map_err(|e| {
                if db::is_unique_violation(&e) {
                    phone_taken()
                } else {
                    e.into()
                }
            })?;
            if let Some(t) = &tags {
                replace_tags(txn, id, t).await?;
                fields.push("tags");
            }
            audit::entry("customer.update")
                .by(&actor)
                .target("customer", id)
                .store(scope.home_store_id)
                .detail(json!({"fields": fields, "from_store_id": current.home_store_id}))
                .write(txn)
                .await?;
            find_customer(txn, id).await
        })
    })
    .await;
    let updated = match (updated, &phone) {
        (Err(e), Some(p)) if e.code() == "phone_exists" => {
            return Err(phone_exists(&state.db, &state.vault.phone_index(p)).await);
        }
        (other, _) => other?,
    };
    // The name and birthday appear on the member's card.
    if let Some(m) = crate::loyalty::membership::member_of_customer(&state.db, updated.id).await? {
        crate::loyalty::card::invalidate(&state.cache, m.id).await;
    }
    Ok(HttpResponse::Ok().json(detail_of(&state, &staff, updated).await?))
}

// ---------------------------------------------------------------- notes

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// e.g. "怕疼，打麻药多敷十分钟". At most 500 characters.
    pub body: String,
}

#[utoipa::path(
    operation_id = "add_customer_note",
    tag = "customers",
    request_body = NoteRequest,
    params(("id" = i64, Path)),
    responses(
        (status = 201, body = NoteView),
        (status = 400, body = ErrorEnvelope),
        (status = 403, description = "`permission_denied` or `not_assigned`", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/customers/{id}/notes")]
pub async fn add_note(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    body: web::Json<NoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let text = body.body.trim().to_string();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(ApiError::validation(
            "body",
            "备注不能为空且不超过 500 个字符",
        ));
    }
    let c = find_customer(&state.db, id.into_inner()).await?;
    staff.require_customer(Action::CustomerRead, &c)?;
    staff.require_customer(Action::CustomerNotes, &c)?;
    let actor = staff.clone();
    let note = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let note = customer_note::ActiveModel {
                customer_id: Set(c.id),
                staff_id: Set(actor.id),
                body: Set(text),
                created_at: Set(Utc::now()),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            audit::entry("customer.note_add")
                .by(&actor)
                .target("customer", c.id)
                .store(c.home_store_id)
                .detail(json!({"note_id": note.id}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(note)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(NoteView {
        id: note.id,
        body: note.body,
        staff_id: note.staff_id,
        staff_name: Some(staff.display_name),
        created_at: note.created_at,
    }))
}

// ---------------------------------------------------------------- reveal

#[derive(Serialize, ToSchema)]
pub struct RevealedPhone {
    /// The full number. Audited as `customer.reveal_phone`.
    pub phone: String,
}

#[utoipa::path(
    operation_id = "reveal_customer_phone",
    tag = "customers",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = RevealedPhone),
        (status = 403, description = "`permission_denied` or `not_assigned`", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/customers/{id}/reveal-phone")]
pub async fn reveal_phone(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let c = find_customer(&state.db, id.into_inner()).await?;
    staff.require_customer(Action::CustomerRead, &c)?;
    staff.require_customer(Action::CustomerRevealPhone, &c)?;
    let Some(enc) = c.phone_enc.as_deref() else {
        return Err(ApiError::not_found("手机号"));
    };
    let phone = state.vault.decrypt(enc).map_err(ApiError::internal)?;
    audit::entry("customer.reveal_phone")
        .by(&staff)
        .target("customer", c.id)
        .store(c.home_store_id)
        .write(&state.db)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(RevealedPhone { phone }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(search)
        .service(lookup)
        .service(claim)
        .service(create)
        .service(detail)
        .service(update)
        .service(add_note)
        .service(reveal_phone);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_read_as_staff_type_them() {
        for typed in [
            "13812345678",
            "138 1234 5678",
            "+86 138-1234-5678",
            "8613812345678",
        ] {
            assert_eq!(
                parse_phone(typed, None).unwrap().as_str(),
                "13812345678",
                "{typed}"
            );
        }
        assert_eq!(
            parse_phone("9123 4567", Some("852")).unwrap().as_str(),
            "+85291234567"
        );
        assert!(parse_phone("+852 9123 4567", None).is_err());
        assert!(parse_phone("12345", None).is_err());
    }

    #[test]
    fn names_are_masked_to_their_first_character() {
        assert_eq!(mask_name(Some("王小美")).as_deref(), Some("王**"));
        assert_eq!(mask_name(Some("李")).as_deref(), Some("李*"));
        assert_eq!(mask_name(None), None);
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_bounded() {
        assert_eq!(
            tags(&[" 怕疼 ".into(), "怕疼".into(), "VIP".into()]).unwrap(),
            vec!["VIP".to_string(), "怕疼".to_string()]
        );
        assert!(tags(&["".into()]).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(tags(&many).is_err());
    }
}
