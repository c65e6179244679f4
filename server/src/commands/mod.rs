//! What each CLI command does.

pub mod bench;
pub mod demo;
pub mod serve;
pub mod user;
