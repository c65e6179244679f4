//! Pieces shared by several pages.

pub mod layout;
pub mod live;
pub mod notice;
