//! WeChat: signatures and ciphers now; the client, the push endpoint and the sandbox build on
//! them (see `../shared/reference/wechat-api.md`).

pub mod client;
pub mod crypto;
pub mod keywords;
pub mod sandbox;
