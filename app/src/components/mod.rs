//! Pieces shared by several pages.

pub mod chart;
pub mod confirm;
pub mod events;
pub mod layout;
pub mod live;
pub mod notice;
pub mod pager;
