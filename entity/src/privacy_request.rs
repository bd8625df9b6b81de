use sea_orm::entity::prelude::*;

/// A member's request under PIPL: `export` (answered at once) or `deletion` (carried out by an
/// admin). Status: `received`, `completed`, `rejected`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "privacy_request")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub wechat_account_id: i64,
    pub customer_id: Option<i64>,
    pub kind: String,
    pub status: String,
    pub requested_at: DateTimeUtc,
    pub handled_at: Option<DateTimeUtc>,
    pub handled_by: Option<i64>,
    pub note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
