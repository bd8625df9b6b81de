use sea_orm::entity::prelude::*;

/// How one message kind is sent on one channel: WeChat's template id and, per keyword, the
/// expression that fills it. Unique per (kind, channel).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_template")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub channel: String,
    pub template_id: String,
    pub page: Option<String>,
    /// JSON object: keyword id -> expression with `{variable}` placeholders.
    pub keywords: String,
    pub active: bool,
    pub updated_by_staff_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
