use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Configuration that staff may change at run time (points rules, campaign caps...), as JSON
/// under a key. Values that only operators change live in the typed settings file instead.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "setting")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub value: Json,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
