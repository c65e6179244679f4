//! One module per page; each holds the server functions its page calls.

pub mod login;
pub mod not_found;
pub mod overview;
pub mod upcoming;
pub mod users;
