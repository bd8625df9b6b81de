use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consumption_refund")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub consumption_id: i64,
    pub amount_fen: i64,
    pub points_reversed: i64,
    pub staff_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
