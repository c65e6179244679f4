//! What each CLI command does.

pub mod serve;
pub mod user;
