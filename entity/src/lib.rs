//! SeaORM entities, one file per table. The schema itself lives in `migration/`.

pub mod prelude;
pub mod setting;
pub mod store;
