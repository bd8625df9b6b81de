use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscription_accept")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub wechat_account_id: i64,
    pub template_id: String,
    pub source: String,
    pub paired: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
