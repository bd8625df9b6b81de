pub use super::setting::Entity as Setting;
pub use super::store::Entity as Store;
