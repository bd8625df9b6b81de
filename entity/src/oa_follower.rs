use sea_orm::entity::prelude::*;

/// A follower of the clinic's 服务号, by the official account's own openid. `unionid` links
/// them to a mini-program member; `following` is false once they left.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oa_follower")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub oa_openid: String,
    pub unionid: Option<String>,
    pub following: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
