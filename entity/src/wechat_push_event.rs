use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "wechat_push_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub dedup_key: String,
    pub event: String,
    pub from_user: String,
    pub payload: Json,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
