//! Message templates: for each message kind and channel, WeChat's template id and, per keyword,
//! an expression of literal text and `{variable}` placeholders. A template is validated when it
//! is saved, by rendering it with the kind's sample values, so that a template which would make
//! WeChat answer 47003 is refused in the console instead of failing every send later.
//!
//! Kinds that have no stored template use a built-in default. In sandbox mode the defaults
//! point at the sandbox's templates, so the whole flow works without a WeChat account; outside
//! it their template id is empty, which means "not configured": nothing can be sent for the kind
//! until staff save one.
//!
//! The outbox sender fills a template with [`payload_vars`] (what the queued payload provides)
//! plus the customer's and store's names, then [`render`] and [`render_page`].

use std::collections::BTreeMap;

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use entity::message_template;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::audit;
use crate::auth::staff::{Action, Staff};
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;
use crate::wechat::keywords::{self, KeywordError};

/// Where a message goes.
pub mod channel {
    /// A mini-program subscribe message (wechat-api.md section 4.1).
    pub const SUBSCRIBE: &str = "subscribe";
    /// An official-account template message (wechat-api.md section 5.1).
    pub const OA_TEMPLATE: &str = "oa_template";
    pub const ALL: [&str; 2] = [SUBSCRIBE, OA_TEMPLATE];
}

/// WeChat allows no more keywords than this in the templates we use; more is a typo.
const MAX_KEYWORDS: usize = 10;
const MAX_EXPRESSION_CHARS: usize = 200;
const MAX_PAGE_CHARS: usize = 128;
const MAX_TEMPLATE_ID_CHARS: usize = 128;

/// Keyword types of subscribe messages (wechat-api.md section 4.1). A keyword id is one of
/// these followed by a number (`thing1`).
const KEYWORD_TYPES: [&str; 12] = [
    "thing",
    "number",
    "letter",
    "symbol",
    "character_string",
    "time",
    "date",
    "amount",
    "phone_number",
    "car_number",
    "name",
    "phrase",
];

// ---------------------------------------------------------------- kinds and variables

/// What a variable holds, which decides how it is formatted and which keywords it may fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VarType {
    /// Any text (a string, or a number shown as is).
    Text,
    /// A number, digits and an optional decimal point.
    Number,
    /// A day: `2026-12-03` (or an RFC 3339 instant, taken in the business zone).
    Date,
    /// An instant in RFC 3339, shown in the business zone as `2026年12月3日 15:00`.
    Time,
}

impl VarType {
    fn as_str(self) -> &'static str {
        match self {
            VarType::Text => "text",
            VarType::Number => "number",
            VarType::Date => "date",
            VarType::Time => "time",
        }
    }
}

/// A value a message of some kind can show.
#[derive(Clone, Copy, Debug)]
pub struct Variable {
    pub name: &'static str,
    pub ty: VarType,
    /// What staff see in the console.
    pub label: &'static str,
    /// Used for the preview and for validating a template when it is saved.
    pub sample: &'static str,
}

const fn var(
    name: &'static str,
    ty: VarType,
    label: &'static str,
    sample: &'static str,
) -> Variable {
    Variable {
        name,
        ty,
        label,
        sample,
    }
}

const CUSTOMER_NAME: Variable = var("customer_name", VarType::Text, "顾客姓名", "王小美");
const STORE_NAME: Variable = var("store_name", VarType::Text, "门店名称", "静安店");
const EVENT_TITLE: Variable = var(
    "event_title",
    VarType::Text,
    "会员日名称",
    "十二月会员日·光子嫩肤专场",
);
// 07:00 UTC is 15:00 in Asia/Shanghai: the preview shows an afternoon appointment.
const SLOT_TIME: Variable = var(
    "slot_time",
    VarType::Time,
    "预约时间",
    "2026-12-03T07:00:00Z",
);
const SERVICE: Variable = var("service", VarType::Text, "服务项目", "光子嫩肤");
const BOOKING_CODE: Variable = var("booking_code", VarType::Text, "预约码", "B7Q2M9XKD4");
const REASON: Variable = var("reason", VarType::Text, "取消原因", "设备检修，活动改期");
const TIER_NAME: Variable = var("tier_name", VarType::Text, "会员等级", "金卡");
const PREVIOUS_TIER_NAME: Variable = var("previous_tier_name", VarType::Text, "原会员等级", "银卡");
const VALID_UNTIL: Variable = var("valid_until", VarType::Date, "等级有效期至", "2027-12-31");
const POINTS_BALANCE: Variable = var("points_balance", VarType::Number, "积分余额", "3200");
const EXPIRING_POINTS: Variable = var("expiring_points", VarType::Number, "即将过期积分", "500");
const EXPIRING_DATE: Variable = var("expiring_date", VarType::Date, "积分过期日期", "2026-12-31");
const MISSING_YUAN: Variable = var(
    "missing_yuan",
    VarType::Number,
    "保级还需消费（元）",
    "1200",
);
const VOUCHER_TITLE: Variable = var("voucher_title", VarType::Text, "礼券名称", "生日护理体验券");
const LAST_VISIT_DATE: Variable = var(
    "last_visit_date",
    VarType::Date,
    "上次到店日期",
    "2026-08-15",
);
const VISIT_TIME: Variable = var(
    "visit_time",
    VarType::Time,
    "到店时间",
    "2026-12-01T06:30:00Z",
);

const BOOKING_VARS: &[Variable] = &[
    CUSTOMER_NAME,
    STORE_NAME,
    EVENT_TITLE,
    SLOT_TIME,
    SERVICE,
    BOOKING_CODE,
];

/// One message kind: its variables and the template it uses when staff have not set one.
#[derive(Clone, Copy, Debug)]
pub struct KindSpec {
    pub kind: &'static str,
    pub label: &'static str,
    pub variables: &'static [Variable],
    /// The sandbox template (`SANDBOX_TEMPLATES`) the default uses in sandbox mode.
    pub sandbox_template: Option<&'static str>,
    pub default_page: Option<&'static str>,
    /// Keyword id -> expression. Kinds with a sandbox template use its keyword ids.
    pub default_keywords: &'static [(&'static str, &'static str)],
}

impl KindSpec {
    pub fn variable(&self, name: &str) -> Option<&'static Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The sample values as the sender would pass them (numbers as JSON numbers).
    pub fn sample_vars(&self) -> Map<String, Value> {
        self.variables
            .iter()
            .map(|v| {
                let value = match v.ty {
                    VarType::Number => v
                        .sample
                        .parse::<i64>()
                        .map_or_else(|_| Value::from(v.sample), Value::from),
                    _ => Value::from(v.sample),
                };
                (v.name.to_string(), value)
            })
            .collect()
    }

    fn default_keywords(&self) -> BTreeMap<String, String> {
        self.default_keywords
            .iter()
            .map(|(k, e)| (k.to_string(), e.to_string()))
            .collect()
    }
}

const HOME_PAGE: Option<&str> = Some("pages/index/index");

/// Every kind of message: DESIGN section 7 plus what the booking and loyalty features queue in
/// the outbox (`crate::outbox::kind`).
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        kind: "birthday",
        label: "生日祝福",
        variables: &[CUSTOMER_NAME, STORE_NAME, VOUCHER_TITLE],
        sandbox_template: Some("SBX-BIRTHDAY"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{customer_name}，祝您生日快乐"),
            ("thing2", "{store_name}为您送上生日祝福，欢迎到店"),
        ],
    },
    KindSpec {
        kind: "recall",
        label: "久未到店关怀",
        variables: &[CUSTOMER_NAME, STORE_NAME, LAST_VISIT_DATE, VOUCHER_TITLE],
        sandbox_template: Some("SBX-RECALL"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{customer_name}，好久不见"),
            ("thing2", "{store_name}想念您，期待您再次光临"),
        ],
    },
    // Campaigns of kind `custom`: staff write the wording in a saved template. No sandbox
    // template, so until one is saved such messages are skipped `no_template`.
    KindSpec {
        kind: "custom",
        label: "营销活动",
        variables: &[CUSTOMER_NAME, STORE_NAME, VOUCHER_TITLE],
        sandbox_template: None,
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{customer_name}，您有一条门店活动消息"),
            ("thing2", "{store_name}诚邀您到店"),
        ],
    },
    KindSpec {
        kind: "booking_confirmed",
        label: "预约成功",
        variables: BOOKING_VARS,
        sandbox_template: Some("SBX-BOOKING-CONFIRMED"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{event_title}"),
            ("time2", "{slot_time}"),
            ("thing3", "您的预约已确认，请准时到店"),
        ],
    },
    KindSpec {
        kind: "booking_reminder",
        label: "预约提醒",
        variables: BOOKING_VARS,
        sandbox_template: Some("SBX-BOOKING-REMINDER"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{event_title}"),
            ("time2", "{slot_time}"),
            ("thing3", "预约即将开始，期待您的光临"),
        ],
    },
    KindSpec {
        kind: "waitlist_promoted",
        label: "候补成功",
        variables: BOOKING_VARS,
        sandbox_template: Some("SBX-WAITLIST-PROMOTED"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{event_title}"),
            ("time2", "{slot_time}"),
            ("thing3", "候补成功，已为您保留名额"),
        ],
    },
    KindSpec {
        kind: "points_expiring",
        label: "积分到期提醒",
        variables: &[
            CUSTOMER_NAME,
            EXPIRING_POINTS,
            EXPIRING_DATE,
            POINTS_BALANCE,
        ],
        sandbox_template: Some("SBX-POINTS-EXPIRING"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("number1", "{expiring_points}"),
            ("date2", "{expiring_date}"),
            ("thing3", "积分即将过期，快来兑换好礼吧"),
        ],
    },
    KindSpec {
        kind: "tier_changed",
        label: "会员等级变更",
        variables: &[CUSTOMER_NAME, TIER_NAME, PREVIOUS_TIER_NAME, VALID_UNTIL],
        sandbox_template: Some("SBX-TIER-CHANGED"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{tier_name}"),
            ("date2", "{valid_until}"),
            ("thing3", "您的会员等级已更新，感谢一路相伴"),
        ],
    },
    KindSpec {
        kind: "retention_reminder",
        label: "会员保级提醒",
        variables: &[CUSTOMER_NAME, TIER_NAME, VALID_UNTIL, MISSING_YUAN],
        sandbox_template: None,
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{tier_name}权益即将到期"),
            ("date2", "{valid_until}"),
            ("thing3", "再消费{missing_yuan}元即可保留等级"),
        ],
    },
    KindSpec {
        kind: "follow_up_care",
        label: "术后关怀",
        variables: &[CUSTOMER_NAME, STORE_NAME, SERVICE, VISIT_TIME],
        sandbox_template: Some("SBX-CARE"),
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{service}后请注意保湿防晒"),
            ("time2", "{visit_time}"),
        ],
    },
    KindSpec {
        kind: "event_cancelled",
        label: "会员日取消",
        variables: &[
            CUSTOMER_NAME,
            STORE_NAME,
            EVENT_TITLE,
            SLOT_TIME,
            BOOKING_CODE,
            REASON,
        ],
        sandbox_template: None,
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{event_title}"),
            ("time2", "{slot_time}"),
            ("thing3", "{reason}"),
        ],
    },
    KindSpec {
        kind: "booking_cancelled",
        label: "预约取消",
        // The outbox payload of a cancelled booking carries no slot time.
        variables: &[CUSTOMER_NAME, STORE_NAME, EVENT_TITLE, BOOKING_CODE, REASON],
        sandbox_template: None,
        default_page: HOME_PAGE,
        default_keywords: &[
            ("thing1", "{event_title}"),
            ("character_string2", "{booking_code}"),
            ("thing3", "{reason}"),
        ],
    },
];

pub fn spec(kind: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.kind == kind)
}

// ---------------------------------------------------------------- expressions and rendering

/// Why a template could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown message kind {0}")]
    UnknownKind(String),
    #[error("keywords are not a JSON object of strings")]
    BadKeywords,
    #[error("{keyword}: malformed placeholder")]
    Malformed { keyword: String },
    #[error("{keyword}: unknown variable {variable}")]
    UnknownVariable { keyword: String, variable: String },
    #[error("{keyword}: missing variable {variable}")]
    MissingVariable { keyword: String, variable: String },
    #[error("{keyword}: variable {variable} is not a valid {ty}")]
    BadValue {
        keyword: String,
        variable: String,
        ty: &'static str,
    },
    #[error(transparent)]
    Keyword(#[from] KeywordError),
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits an expression into literal text and `{variable}` placeholders. A brace that does not
/// enclose a variable name is refused rather than sent as text: it is almost always a typo.
fn parse(expr: &str) -> Option<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return None;
        }
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !is_name {
            return None;
        }
        pieces.push(Piece::Var(name));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Some(pieces)
}

fn chinese_date(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// Formats a variable's value the way WeChat documents it (`2026年12月3日 15:00`), dates and
/// times in the business zone; `None` when the value is not of the variable's type.
fn format_value(ty: VarType, value: &Value, tz: Tz) -> Option<String> {
    let instant = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&tz))
    };
    match (ty, value) {
        (VarType::Text, Value::String(s)) => Some(s.clone()),
        (VarType::Text | VarType::Number, Value::Number(n)) => Some(n.to_string()),
        (VarType::Number, Value::String(s)) => {
            let ok = !s.is_empty()
                && s.chars().all(|c| c.is_ascii_digit() || c == '.')
                && s.parse::<f64>().is_ok();
            ok.then(|| s.clone())
        }
        (VarType::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .or_else(|| instant(s).map(|t| t.date_naive()))
            .map(chinese_date),
        (VarType::Time, Value::String(s)) => match instant(s) {
            Some(t) => Some(format!(
                "{} {:02}:{:02}",
                chinese_date(t.date_naive()),
                t.hour(),
                t.minute()
            )),
            // A bare day still reads well where a time is expected (WeChat accepts it).
            None => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(chinese_date),
        },
        _ => None,
    }
}

/// Fills one keyword: substitutes the variables, cuts the value to what its type allows and
/// checks it as WeChat would.
fn render_keyword(
    spec: &KindSpec,
    keyword: &str,
    expr: &str,
    vars: &Map<String, Value>,
    tz: Tz,
) -> Result<String, RenderError> {
    let pieces = parse(expr).ok_or_else(|| RenderError::Malformed {
        keyword: keyword.to_string(),
    })?;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => {
                let v = spec
                    .variable(name)
                    .ok_or_else(|| RenderError::UnknownVariable {
                        keyword: keyword.to_string(),
                        variable: name.to_string(),
                    })?;
                let value = vars.get(name).filter(|v| !v.is_null()).ok_or_else(|| {
                    RenderError::MissingVariable {
                        keyword: keyword.to_string(),
                        variable: name.to_string(),
                    }
                })?;
                let text = format_value(v.ty, value, tz).ok_or_else(|| RenderError::BadValue {
                    keyword: keyword.to_string(),
                    variable: name.to_string(),
                    ty: v.ty.as_str(),
                })?;
                out.push_str(&text);
            }
        }
    }
    // Official-account templates refuse line breaks, and a name typed with one should not
    // cost the member their message.
    let flat: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let value = keywords::truncate(keyword, flat.trim());
    keywords::check(keyword, &value)?;
    Ok(value)
}

fn render_map(
    spec: &KindSpec,
    keywords: &BTreeMap<String, String>,
    vars: &Map<String, Value>,
    tz: Tz,
) -> Result<Vec<(String, String)>, RenderError> {
    keywords
        .iter()
        .map(|(k, expr)| Ok((k.clone(), render_keyword(spec, k, expr, vars, tz)?)))
        .collect()
}

/// Fills a stored template (`keywords_json`, as in `message_template.keywords`) for one message
/// of `kind`: the (keyword id, value) pairs of the `data` object WeChat expects. Dates and times
/// are shown in `tz`, the business zone (`settings.loyalty.tz()`).
pub fn render(
    kind: &str,
    keywords_json: &str,
    vars: &Map<String, Value>,
    tz: Tz,
) -> Result<Vec<(String, String)>, RenderError> {
    let spec = spec(kind).ok_or_else(|| RenderError::UnknownKind(kind.to_string()))?;
    let keywords: BTreeMap<String, String> =
        serde_json::from_str(keywords_json).map_err(|_| RenderError::BadKeywords)?;
    render_map(spec, &keywords, vars, tz)
}

/// Fills the `{variable}` placeholders of a template's page path (e.g. a booking's code).
pub fn render_page(
    kind: &str,
    page: &str,
    vars: &Map<String, Value>,
) -> Result<String, RenderError> {
    let spec = spec(kind).ok_or_else(|| RenderError::UnknownKind(kind.to_string()))?;
    let pieces = parse(page).ok_or_else(|| RenderError::Malformed {
        keyword: "page".to_string(),
    })?;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => {
                let missing = || RenderError::MissingVariable {
                    keyword: "page".to_string(),
                    variable: name.to_string(),
                };
                let v = spec
                    .variable(name)
                    .ok_or_else(|| RenderError::UnknownVariable {
                        keyword: "page".to_string(),
                        variable: name.to_string(),
                    })?;
                let value = vars
                    .get(name)
                    .filter(|v| !v.is_null())
                    .ok_or_else(missing)?;
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(RenderError::BadValue {
                            keyword: "page".to_string(),
                            variable: name.to_string(),
                            ty: v.ty.as_str(),
                        })
                    }
                };
                // Query values stay inside their parameter.
                out.extend(
                    text.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)),
                );
            }
        }
    }
    Ok(out)
}

/// Payload fields the outbox's producers use under another name than the variable they fill.
const PAYLOAD_RENAMES: [(&str, &str); 5] = [
    ("starts_at", "slot_time"),
    ("points", "expiring_points"),
    ("expires_on", "expiring_date"),
    ("to_name", "tier_name"),
    ("from_name", "previous_tier_name"),
];

/// The variables an outbox message's payload provides for its kind (see `crate::outbox`):
/// fields named like a variable are taken as they are, a few are renamed, and the amount a
/// member still has to spend is shown in whole yuan, rounded up so that it is enough. Who the
/// customer is and which store they belong to are not in the payload: the sender adds
/// `customer_name` and `store_name`.
pub fn payload_vars(kind: &str, payload: &Value) -> Map<String, Value> {
    let mut vars = Map::new();
    let (Some(spec), Some(fields)) = (spec(kind), payload.as_object()) else {
        return vars;
    };
    for (key, value) in fields {
        if spec.variable(key).is_some() {
            vars.insert(key.clone(), value.clone());
        }
    }
    for (from, to) in PAYLOAD_RENAMES {
        if let (Some(value), Some(_)) = (fields.get(from), spec.variable(to)) {
            vars.entry(to).or_insert_with(|| value.clone());
        }
    }
    if let (Some(fen), Some(_)) = (
        fields.get("missing_fen").and_then(Value::as_i64),
        spec.variable("missing_yuan"),
    ) {
        vars.insert(
            "missing_yuan".to_string(),
            Value::from((fen + 99).div_euclid(100)),
        );
    }
    vars
}

// ---------------------------------------------------------------- validation

fn type_hint(ty: &str) -> &'static str {
    match ty {
        "thing" => "不超过 20 个字",
        "number" => "只能是数字，不超过 32 位",
        "letter" => "只能是字母，不超过 32 个",
        "symbol" => "只能是符号，不超过 5 个",
        "character_string" => "只能是字母、数字或符号，不超过 32 位，不能含中文",
        "time" => "时间格式如 15:01 或 2019年10月1日 15:01",
        "date" => "日期格式如 2019年10月1日",
        "amount" => "金额格式如 ¥200.00 或 200元",
        "phone_number" => "只能是数字或符号，不超过 17 位",
        "car_number" => "不超过 8 个字符",
        "name" => "不超过 10 个汉字或 20 个字母",
        "phrase" => "不超过 5 个汉字",
        _ => "须符合微信的格式要求",
    }
}

fn has_chinese(s: &str) -> bool {
    s.chars().any(keywords::is_cjk)
}

fn valid_keyword_id(id: &str) -> bool {
    let ty = keywords::keyword_type(id);
    KEYWORD_TYPES.contains(&ty) && id.len() > ty.len()
}

/// Checks one keyword's expression against the kind's variables and the keyword's type, then
/// renders it with the sample values. Errors name the keyword (`keywords.<id>`).
fn check_keyword(spec: &KindSpec, id: &str, expr: &str, tz: Tz) -> Result<(), ApiError> {
    let field = format!("keywords.{id}");
    let fail = |message: String| Err(ApiError::validation(&field, message));
    if !valid_keyword_id(id) {
        return fail(format!(
            "关键词 {id} 的类型无法识别，须为 thing1、time2、character_string3 这样的微信关键词"
        ));
    }
    let ty = keywords::keyword_type(id);
    if expr.trim().is_empty() {
        return fail(format!("关键词 {id} 的内容不能为空"));
    }
    if expr.chars().count() > MAX_EXPRESSION_CHARS {
        return fail(format!(
            "关键词 {id} 的内容不超过 {MAX_EXPRESSION_CHARS} 个字符"
        ));
    }
    let Some(pieces) = parse(expr) else {
        return fail(format!(
            "关键词 {id} 的格式不正确，变量须写成 {{变量名}}，例如 {{event_title}}"
        ));
    };
    for piece in &pieces {
        if let Piece::Var(name) = piece {
            if spec.variable(name).is_none() {
                return fail(format!("关键词 {id} 使用了此消息类型没有的变量 {{{name}}}"));
            }
        }
    }
    let single_var = match pieces.as_slice() {
        [Piece::Var(name)] => spec.variable(name).map(|v| v.ty),
        _ => None,
    };
    match ty {
        "time" | "date" if !matches!(single_var, Some(VarType::Time | VarType::Date)) => {
            return fail(format!("关键词 {id} 只能填写一个日期或时间变量"));
        }
        "number" if single_var != Some(VarType::Number) => {
            return fail(format!("关键词 {id} 只能填写一个数字变量"));
        }
        "phrase" => {
            let literal = pieces.iter().all(|p| matches!(p, Piece::Text(_)));
            if !literal || keywords::check(id, expr).is_err() {
                return fail(format!("关键词 {id} 须为不超过 5 个汉字的固定文字"));
            }
        }
        "character_string" => {
            let chinese = pieces
                .iter()
                .any(|p| matches!(p, Piece::Text(t) if has_chinese(t)));
            if chinese {
                return fail(format!("关键词 {id} 不能含中文，只能是字母、数字或符号"));
            }
        }
        _ => {}
    }
    let samples = spec.sample_vars();
    match render_keyword(spec, id, expr, &samples, tz) {
        Ok(_) => Ok(()),
        Err(RenderError::Keyword(_)) => fail(format!(
            "关键词 {id} 按示例数据填充后不符合微信要求：{}",
            type_hint(ty)
        )),
        Err(e) => {
            tracing::debug!(error = %e, "template keyword does not render");
            fail(format!("关键词 {id} 无法用示例数据填充"))
        }
    }
}

/// Checks a whole template of `spec`: the keywords and the page path.
fn check_template(
    spec: &KindSpec,
    keywords: &BTreeMap<String, String>,
    page: Option<&str>,
    tz: Tz,
) -> Result<(), ApiError> {
    if keywords.is_empty() || keywords.len() > MAX_KEYWORDS {
        return Err(ApiError::validation(
            "keywords",
            format!("关键词须为 1 到 {MAX_KEYWORDS} 个"),
        ));
    }
    for (id, expr) in keywords {
        check_keyword(spec, id, expr, tz)?;
    }
    if let Some(page) = page {
        check_page(spec, page)?;
    }
    Ok(())
}

fn check_page(spec: &KindSpec, page: &str) -> Result<(), ApiError> {
    let fail = |message: &'static str| Err(ApiError::validation("page", message));
    if page.is_empty() || page.chars().count() > MAX_PAGE_CHARS {
        return fail("页面路径须为 1-128 个字符");
    }
    // WeChat takes the path relative to the mini-program root; a leading slash fails the send.
    if page.starts_with('/') {
        return fail("页面路径不能以 / 开头，例如 pages/index/index");
    }
    if page.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("页面路径不能含空格");
    }
    let Some(pieces) = parse(page) else {
        return fail("页面路径中的变量须写成 {变量名}");
    };
    for piece in pieces {
        if let Piece::Var(name) = piece {
            if spec.variable(name).is_none() {
                return fail("页面路径使用了此消息类型没有的变量");
            }
        }
    }
    Ok(())
}

fn check_template_id(id: &str) -> Result<String, ApiError> {
    let id = id.trim();
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_TEMPLATE_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(ApiError::validation(
            "template_id",
            "模板 ID 须为 1-128 位字母、数字、- 或 _",
        ));
    }
    Ok(id.to_string())
}

// ---------------------------------------------------------------- views

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct VariableView {
    pub name: String,
    /// `text`, `number`, `date` or `time`.
    #[serde(rename = "type")]
    pub ty: String,
    pub label: String,
    pub sample: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct PreviewItem {
    pub keyword: String,
    pub value: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct TemplateView {
    /// Absent for a built-in default that has not been saved.
    pub id: Option<i64>,
    pub kind: String,
    /// The kind's name in the console.
    pub kind_label: String,
    /// `subscribe` or `oa_template`.
    pub channel: String,
    /// WeChat's template id; empty means not configured (nothing is sent).
    pub template_id: String,
    pub page: Option<String>,
    /// Keyword id -> expression, e.g. `{"thing1": "{event_title}"}`.
    pub keywords: BTreeMap<String, String>,
    pub active: bool,
    /// True for the built-in default of a kind that has no saved template.
    pub is_default: bool,
    pub variables: Vec<VariableView>,
    /// The message filled with the sample values.
    pub preview: Vec<PreviewItem>,
    /// Why the preview could not be filled (a template saved before a rule changed).
    pub preview_error: Option<String>,
    pub updated_by_staff_id: Option<i64>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn view(
    spec: &KindSpec,
    channel: &str,
    template_id: String,
    page: Option<String>,
    keywords: BTreeMap<String, String>,
    tz: Tz,
) -> TemplateView {
    let (preview, preview_error) = match render_map(spec, &keywords, &spec.sample_vars(), tz) {
        Ok(items) => (
            items
                .into_iter()
                .map(|(keyword, value)| PreviewItem { keyword, value })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    TemplateView {
        id: None,
        kind: spec.kind.to_string(),
        kind_label: spec.label.to_string(),
        channel: channel.to_string(),
        template_id,
        page,
        keywords,
        active: true,
        is_default: false,
        variables: spec
            .variables
            .iter()
            .map(|v| VariableView {
                name: v.name.to_string(),
                ty: v.ty.as_str().to_string(),
                label: v.label.to_string(),
                sample: v.sample.to_string(),
            })
            .collect(),
        preview,
        preview_error,
        updated_by_staff_id: None,
        updated_at: None,
    }
}

/// The built-in template of a kind; its template id is the sandbox's in sandbox mode and
/// empty (not configured) otherwise.
pub fn default_view(spec: &KindSpec, sandbox: bool, tz: Tz) -> TemplateView {
    let template_id = if sandbox {
        spec.sandbox_template.unwrap_or_default().to_string()
    } else {
        String::new()
    };
    TemplateView {
        is_default: true,
        ..view(
            spec,
            channel::SUBSCRIBE,
            template_id,
            spec.default_page.map(str::to_string),
            spec.default_keywords(),
            tz,
        )
    }
}

fn stored_keywords(m: &message_template::Model) -> Result<BTreeMap<String, String>, ApiError> {
    serde_json::from_str(&m.keywords).map_err(|e| {
        ApiError::internal(anyhow::anyhow!(
            "message_template {} has unreadable keywords: {e}",
            m.id
        ))
    })
}

fn stored_view(
    spec: &KindSpec,
    m: &message_template::Model,
    tz: Tz,
) -> Result<TemplateView, ApiError> {
    Ok(TemplateView {
        id: Some(m.id),
        active: m.active,
        updated_by_staff_id: m.updated_by_staff_id,
        updated_at: Some(m.updated_at),
        ..view(
            spec,
            &m.channel,
            m.template_id.clone(),
            m.page.clone(),
            stored_keywords(m)?,
            tz,
        )
    })
}

// ---------------------------------------------------------------- staff API

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateView>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_templates",
    responses(
        (status = 200, description = "Every kind: its saved templates, or its default on the subscribe channel", body = TemplateList),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/templates")]
pub async fn list_templates(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::TemplateManage)?;
    let tz = state.settings.loyalty.tz();
    let stored = message_template::Entity::find()
        .order_by_asc(message_template::Column::Id)
        .all(&state.db)
        .await?;
    let mut templates = Vec::new();
    for spec in KINDS {
        let mut has_subscribe = false;
        for m in stored.iter().filter(|m| m.kind == spec.kind) {
            has_subscribe |= m.channel == channel::SUBSCRIBE;
            templates.push(stored_view(spec, m, tz)?);
        }
        if !has_subscribe {
            templates.push(default_view(spec, state.sandbox.is_some(), tz));
        }
    }
    Ok(HttpResponse::Ok().json(TemplateList { templates }))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// A message kind, e.g. `booking_confirmed`.
    pub kind: String,
    /// `subscribe` (default) or `oa_template`.
    pub channel: Option<String>,
    /// WeChat's template id.
    pub template_id: String,
    /// Mini-program page the message opens, relative (`pages/index/index`); `{variables}` allowed.
    pub page: Option<String>,
    /// Keyword id -> expression of literal text and `{variable}` placeholders.
    pub keywords: BTreeMap<String, String>,
    /// Default true.
    pub active: Option<bool>,
}

fn unknown_kind() -> ApiError {
    ApiError::validation("kind", "没有这种消息类型")
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_create_template",
    request_body = TemplateInput,
    responses(
        (status = 201, body = TemplateView),
        (status = 400, description = "`validation_failed` naming the field (`keywords.thing1`...)", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`template_exists`: the kind already has a template on that channel", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/templates")]
pub async fn create_template(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<TemplateInput>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::TemplateManage)?;
    let input = body.into_inner();
    let tz = state.settings.loyalty.tz();
    let spec = spec(&input.kind).ok_or_else(unknown_kind)?;
    let chan = input
        .channel
        .clone()
        .unwrap_or_else(|| channel::SUBSCRIBE.to_string());
    if !channel::ALL.contains(&chan.as_str()) {
        return Err(ApiError::validation(
            "channel",
            "渠道须为 subscribe 或 oa_template",
        ));
    }
    let template_id = check_template_id(&input.template_id)?;
    check_template(spec, &input.keywords, input.page.as_deref(), tz)?;
    let keywords_json = serde_json::to_string(&input.keywords).map_err(ApiError::internal)?;
    let detail = serde_json::to_value(&input).map_err(ApiError::internal)?;
    let actor = staff.clone();
    let created = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let exists = message_template::Entity::find()
                .filter(message_template::Column::Kind.eq(spec.kind))
                .filter(message_template::Column::Channel.eq(&chan))
                .one(txn)
                .await?;
            if let Some(existing) = exists {
                return Err(template_exists().with_detail("existing_id", existing.id));
            }
            let now = Utc::now();
            let inserted = message_template::ActiveModel {
                kind: Set(spec.kind.to_string()),
                channel: Set(chan),
                template_id: Set(template_id),
                page: Set(input.page),
                keywords: Set(keywords_json),
                active: Set(input.active.unwrap_or(true)),
                updated_by_staff_id: Set(Some(actor.id)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await;
            let m = match inserted {
                Ok(m) => m,
                // Another admin saved the same pair between our look and our insert.
                Err(e) if db::is_unique_violation(&e) => return Err(template_exists()),
                Err(e) => return Err(e.into()),
            };
            audit::entry("template.create")
                .by(&actor)
                .target("message_template", m.id)
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(m)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(stored_view(spec, &created, tz)?))
}

fn template_exists() -> ApiError {
    ApiError::conflict("template_exists", "该消息类型在此渠道已有模板，请直接修改")
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    pub template_id: Option<String>,
    /// null removes the page (the message opens nothing).
    #[serde(
        default,
        deserialize_with = "crate::customers::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub page: Option<Option<String>>,
    /// Replaces all keywords.
    pub keywords: Option<BTreeMap<String, String>>,
    pub active: Option<bool>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_update_template",
    params(("id" = i64, Path, description = "template id")),
    request_body = TemplatePatch,
    responses(
        (status = 200, body = TemplateView),
        (status = 400, description = "`validation_failed` naming the field (`keywords.thing1`...)", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[patch("/api/v1/staff/templates/{id}")]
pub async fn update_template(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<TemplatePatch>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::TemplateManage)?;
    let id = path.into_inner();
    let patch = body.into_inner();
    let tz = state.settings.loyalty.tz();
    let template_id = patch
        .template_id
        .as_deref()
        .map(check_template_id)
        .transpose()?;
    let detail = serde_json::to_value(&patch).map_err(ApiError::internal)?;
    let actor = staff.clone();
    let (spec, updated) = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let current = message_template::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("消息模板"))?;
            let spec = spec(&current.kind).ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "message_template {id} has unknown kind {}",
                    current.kind
                ))
            })?;
            // The whole template is checked as it will be after the change, since a new
            // keyword set may not fit the old page's variables and the other way round.
            let keywords = match patch.keywords {
                Some(k) => k,
                None => stored_keywords(&current)?,
            };
            let page = patch.page.unwrap_or_else(|| current.page.clone());
            check_template(spec, &keywords, page.as_deref(), tz)?;
            let mut m: message_template::ActiveModel = current.into();
            if let Some(t) = template_id {
                m.template_id = Set(t);
            }
            m.page = Set(page);
            m.keywords = Set(serde_json::to_string(&keywords).map_err(ApiError::internal)?);
            if let Some(active) = patch.active {
                m.active = Set(active);
            }
            m.updated_by_staff_id = Set(Some(actor.id));
            m.updated_at = Set(Utc::now());
            let updated = m.update(txn).await?;
            audit::entry("template.update")
                .by(&actor)
                .target("message_template", id)
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>((spec, updated))
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(stored_view(spec, &updated, tz)?))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_templates)
        .service(create_template)
        .service(update_template);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::sandbox::SANDBOX_TEMPLATES;
    use serde_json::json;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn vars(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn every_default_validates_and_uses_the_sandbox_keywords() {
        for spec in KINDS {
            let keywords = spec.default_keywords();
            check_template(spec, &keywords, spec.default_page, SHANGHAI)
                .unwrap_or_else(|e| panic!("{}: {}", spec.kind, e.describe()));
            if let Some(id) = spec.sandbox_template {
                let (_, sandbox_keywords) = SANDBOX_TEMPLATES
                    .iter()
                    .find(|(t, _)| *t == id)
                    .unwrap_or_else(|| panic!("{} names no sandbox template", spec.kind));
                let mut ids: Vec<&str> = keywords.keys().map(String::as_str).collect();
                let mut expected = sandbox_keywords.to_vec();
                ids.sort_unstable();
                expected.sort_unstable();
                assert_eq!(ids, expected, "{}", spec.kind);
            }
        }
    }

    #[test]
    fn every_outbox_kind_has_a_template() {
        use crate::outbox::kind::*;
        for kind in [
            POINTS_EXPIRING,
            TIER_CHANGED,
            RETENTION_REMINDER,
            BOOKING_CONFIRMED,
            BOOKING_REMINDER,
            WAITLIST_PROMOTED,
            EVENT_CANCELLED,
            BOOKING_CANCELLED,
        ] {
            assert!(spec(kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn times_are_shown_in_the_business_zone() {
        let keywords = r#"{"thing1": "{event_title}", "time2": "{slot_time}"}"#;
        let v = vars(&[
            ("event_title", json!("会员日")),
            ("slot_time", json!("2026-12-03T07:00:00Z")),
        ]);
        let out = render("booking_confirmed", keywords, &v, SHANGHAI).unwrap();
        assert_eq!(
            out,
            vec![
                ("thing1".to_string(), "会员日".to_string()),
                ("time2".to_string(), "2026年12月3日 15:00".to_string()),
            ]
        );
        // 17:30 UTC is already the next day in Shanghai.
        let v = vars(&[
            ("event_title", json!("会员日")),
            ("slot_time", json!("2026-12-31T17:30:00Z")),
        ]);
        let out = render("booking_confirmed", keywords, &v, SHANGHAI).unwrap();
        assert_eq!(out[1].1, "2027年1月1日 01:30");
    }

    #[test]
    fn dates_and_numbers_are_formatted_for_wechat() {
        let keywords = r#"{"number1": "{expiring_points}", "date2": "{expiring_date}"}"#;
        let v = vars(&[
            ("expiring_points", json!(500)),
            ("expiring_date", json!("2026-12-03")),
        ]);
        let out = render("points_expiring", keywords, &v, SHANGHAI).unwrap();
        assert_eq!(out[0], ("date2".to_string(), "2026年12月3日".to_string()));
        assert_eq!(out[1], ("number1".to_string(), "500".to_string()));
        let bad = vars(&[
            ("expiring_points", json!("很多")),
            ("expiring_date", json!("2026-12-03")),
        ]);
        assert!(matches!(
            render("points_expiring", keywords, &bad, SHANGHAI),
            Err(RenderError::BadValue { variable, .. }) if variable == "expiring_points"
        ));
    }

    #[test]
    fn a_long_event_title_is_cut_to_fit_thing() {
        let keywords = r#"{"thing1": "{event_title}"}"#;
        let title = "十二月会员日·光子嫩肤与水光针双重焕肤专场限时预约活动";
        assert!(title.chars().count() > 20);
        let v = vars(&[("event_title", json!(title))]);
        let out = render("booking_reminder", keywords, &v, SHANGHAI).unwrap();
        let value = &out[0].1;
        assert_eq!(value.chars().count(), 20);
        assert!(value.ends_with("..."));
        assert!(title.starts_with(value.trim_end_matches("...")));
        assert!(keywords::check("thing1", value).is_ok());
    }

    #[test]
    fn a_missing_variable_is_named() {
        let keywords = r#"{"thing1": "{event_title}", "time2": "{slot_time}"}"#;
        let v = vars(&[("event_title", json!("会员日")), ("slot_time", Value::Null)]);
        assert_eq!(
            render("booking_confirmed", keywords, &v, SHANGHAI),
            Err(RenderError::MissingVariable {
                keyword: "time2".to_string(),
                variable: "slot_time".to_string()
            })
        );
        assert!(matches!(
            render("nope", keywords, &v, SHANGHAI),
            Err(RenderError::UnknownKind(_))
        ));
        assert_eq!(
            render("booking_confirmed", "[1]", &v, SHANGHAI),
            Err(RenderError::BadKeywords)
        );
    }

    #[test]
    fn a_value_that_breaks_its_type_is_refused() {
        // A Chinese store name cannot go into a character_string keyword.
        let keywords = r#"{"character_string1": "{store_name}"}"#;
        let v = vars(&[("store_name", json!("静安店"))]);
        assert!(matches!(
            render("birthday", keywords, &v, SHANGHAI),
            Err(RenderError::Keyword(KeywordError { key, .. })) if key == "character_string1"
        ));
    }

    #[test]
    fn placeholders_must_be_well_formed() {
        assert!(parse("{a}b{c_1}").is_some());
        assert!(parse("您好").is_some());
        assert!(parse("{").is_none());
        assert!(parse("a}").is_none());
        assert!(parse("{}").is_none());
        assert!(parse("{Event}").is_none());
    }

    #[test]
    fn pages_fill_their_variables() {
        let v = vars(&[("booking_code", json!("B7Q2M9XKD4"))]);
        assert_eq!(
            render_page(
                "booking_confirmed",
                "pages/booking/detail?code={booking_code}",
                &v,
            )
            .unwrap(),
            "pages/booking/detail?code=B7Q2M9XKD4"
        );
    }

    #[test]
    fn queued_payloads_fill_the_default_templates() {
        use crate::outbox::kind::*;
        let booking = json!({
            "member_id": 1, "booking_code": "B7Q2M9XKD4", "event_id": 2,
            "event_title": "十二月会员日", "store_id": 3, "slot_id": 4,
            "starts_at": "2026-12-03T07:00:00Z", "ends_at": "2026-12-03T08:00:00Z",
            "service": "光子嫩肤", "reason": "设备检修",
        });
        let payloads = [
            (BOOKING_CONFIRMED, booking.clone()),
            (BOOKING_REMINDER, booking.clone()),
            (WAITLIST_PROMOTED, booking.clone()),
            (EVENT_CANCELLED, booking.clone()),
            (BOOKING_CANCELLED, booking),
            (
                POINTS_EXPIRING,
                json!({"member_id": 1, "points": 500, "expires_on": "2026-12-31",
                       "dates": [{"expires_on": "2026-12-31", "points": 500}]}),
            ),
            (
                TIER_CHANGED,
                json!({"member_id": 1, "from": "silver", "from_name": "银卡", "to": "gold",
                       "to_name": "金卡", "valid_until": "2027-12-31", "renewed": false,
                       "effective": "gold", "spend_fen": 100}),
            ),
            (
                RETENTION_REMINDER,
                json!({"member_id": 1, "tier": "gold", "tier_name": "金卡",
                       "valid_until": "2026-12-31", "spend_fen": 100, "missing_fen": 120_001}),
            ),
        ];
        for (kind, payload) in payloads {
            let mut vars = payload_vars(kind, &payload);
            vars.insert("customer_name".into(), json!("王小美"));
            vars.insert("store_name".into(), json!("静安店"));
            let spec = spec(kind).unwrap();
            let out = render_map(spec, &spec.default_keywords(), &vars, SHANGHAI)
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(!out.is_empty(), "{kind}");
        }
        let vars = payload_vars(
            RETENTION_REMINDER,
            &json!({"tier_name": "金卡", "valid_until": "2026-12-31", "missing_fen": 120_001}),
        );
        assert_eq!(vars["missing_yuan"], json!(1201), "rounded up to be enough");
        let vars = payload_vars(
            TIER_CHANGED,
            &json!({"to_name": "金卡", "from_name": "银卡"}),
        );
        assert_eq!(vars["tier_name"], json!("金卡"));
        assert_eq!(vars["previous_tier_name"], json!("银卡"));
    }
}
