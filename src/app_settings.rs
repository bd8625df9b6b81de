//! Run-time settings staff can change (points rules, caps, templates...), stored as JSON under a
//! key in the `setting` table. Later features read their rules through here, so the rules page
//! and the behaviour come from the same place.

use chrono::Utc;
use entity::setting;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The stored value of `key`, or `None` when it was never set.
pub async fn get<T: DeserializeOwned>(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<T>, DbErr> {
    let Some(row) = setting::Entity::find_by_id(key.to_string()).one(db).await? else {
        return Ok(None);
    };
    serde_json::from_value(row.value)
        .map(Some)
        .map_err(|e| DbErr::Json(format!("setting {key}: {e}")))
}

/// Stores `value` under `key` in one statement (insert or overwrite), so two writers never
/// produce two rows or a lost row.
pub async fn put<T: Serialize>(
    db: &impl ConnectionTrait,
    key: &str,
    value: &T,
) -> Result<(), DbErr> {
    let json =
        serde_json::to_value(value).map_err(|e| DbErr::Json(format!("setting {key}: {e}")))?;
    let row = setting::ActiveModel {
        key: Set(key.to_string()),
        value: Set(json),
        updated_at: Set(Utc::now()),
    };
    setting::Entity::insert(row)
        .on_conflict(
            OnConflict::column(setting::Column::Key)
                .update_columns([setting::Column::Value, setting::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
