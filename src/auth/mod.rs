//! Who is calling: members (WeChat login, bearer tokens) and staff (console cookie with CSRF
//! token, or bearer for scripts), with the staff permission table.

pub mod member;
pub mod staff;
