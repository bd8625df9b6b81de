//! Cursor pagination over id-descending lists (newest first): a page asks for `limit + 1`
//! rows, and the extra one only tells that there is a next page, whose cursor is the last id
//! shown. Ids, unlike offsets, do not shift when rows are added while someone pages.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use crate::error::ApiError;

/// The requested page size, `default` when absent; a 400 naming `limit` outside 1..=max.
pub fn limit(requested: Option<u64>, default: u64, max: u64) -> Result<u64, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation(
            "limit",
            format!("limit 须在 1 到 {max} 之间"),
        )),
    }
}

/// Cuts rows fetched with `limit + 1` to the page and the cursor of the next page, if any.
pub fn split<T>(mut rows: Vec<T>, limit: u64, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(id);
    (rows, next)
}

/// One page of `select`, newest first by the id column `id`: the rows after `cursor` (ids
/// below it) and the cursor of the next page, if any.
pub async fn fetch<E: EntityTrait>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    id: E::Column,
    cursor: Option<i64>,
    limit: u64,
    id_of: impl Fn(&E::Model) -> i64,
) -> Result<(Vec<E::Model>, Option<i64>), DbErr> {
    let mut q = select.order_by_desc(id).limit(limit + 1);
    if let Some(cursor) = cursor {
        q = q.filter(id.lt(cursor));
    }
    Ok(split(q.all(db).await?, limit, id_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_only_signals_a_next_page() {
        assert_eq!(split(vec![9, 8, 7], 2, |n| *n), (vec![9, 8], Some(8)));
        assert_eq!(split(vec![9, 8], 2, |n| *n), (vec![9, 8], None));
        assert_eq!(split(Vec::<i64>::new(), 2, |n| *n), (vec![], None));
        assert!(limit(Some(0), 20, 100).is_err());
        assert_eq!(limit(None, 20, 100).unwrap(), 20);
    }
}
