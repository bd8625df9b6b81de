use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_record")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub wechat_account_id: i64,
    pub policy_version: String,
    pub marketing: bool,
    pub sensitive_health: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
