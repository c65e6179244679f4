//! What each CLI command does.

pub mod access;
pub mod bench;
pub mod demo;
pub mod scale_fleet;
pub mod serve;
pub mod user;
