//! Pieces shared by several pages.

pub mod confirm;
pub mod layout;
pub mod live;
pub mod notice;
