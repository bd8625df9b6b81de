//! Who is calling: members (WeChat login, bearer tokens) now; staff arrive with their own issue.

pub mod member;
