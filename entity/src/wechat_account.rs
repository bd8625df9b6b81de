use sea_orm::entity::prelude::*;

/// A member's WeChat identity in one mini-program: openid, the encrypted session key, the
/// consent they gave and the customer their phone binding linked them to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wechat_account")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key_enc: Option<String>,
    pub customer_id: Option<i64>,
    pub referral_code: String,
    pub consent_policy_version: Option<String>,
    pub consent_marketing: bool,
    pub consent_sensitive_health: bool,
    pub consent_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub last_login_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
