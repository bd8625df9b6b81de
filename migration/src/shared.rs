//! Pieces several migrations share.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Makes `table` append-only in the database itself: UPDATE and DELETE are refused by
/// triggers (and TRUNCATE on PostgreSQL), so history cannot be rewritten even by hand.
pub async fn append_only(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    match manager.get_database_backend() {
        DbBackend::Sqlite => {
            for (event, suffix) in [("UPDATE", "no_update"), ("DELETE", "no_delete")] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER IF NOT EXISTS {table}_{suffix} BEFORE {event} ON {table} \
                     BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                ))
                .await?;
            }
        }
        DbBackend::Postgres => {
            db.execute_unprepared(&format!(
                "CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$ LANGUAGE plpgsql"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
            ))
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Undoes [`append_only`]'s PostgreSQL function (SQLite's triggers go with their table).
pub async fn drop_append_only(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Postgres {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "DROP FUNCTION IF EXISTS {table}_append_only() CASCADE"
            ))
            .await?;
    }
    Ok(())
}

/// A foreign key from `from` (table, column) to `to` (table, column).
pub fn fk(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .to_owned()
}

/// An index `name` on `cols` of `table`.
pub async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for c in cols {
        stmt.col(c);
    }
    if unique {
        stmt.unique();
    }
    manager.create_index(stmt.to_owned()).await
}
