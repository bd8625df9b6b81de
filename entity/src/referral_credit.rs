use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "referral_credit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub referrer_member_id: i64,
    pub referred_customer_id: i64,
    pub consumption_id: i64,
    pub points: i64,
    pub month: String,
    pub lot_id: i64,
    pub reversed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
