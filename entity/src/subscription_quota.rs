use sea_orm::entity::prelude::*;

/// How many one-time subscribe messages of a template a member can still receive.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscription_quota")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub wechat_account_id: i64,
    pub template_id: String,
    pub remaining: i32,
    pub last_status: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
