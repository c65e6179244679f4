//! One module per page; each holds the server functions its page calls.

pub mod account;
pub mod assistants;
pub mod audit;
pub mod breakers;
pub mod caches;
pub mod fleet;
pub mod instances;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod permissions;
pub mod roi;
pub mod tools;
pub mod traces;
pub mod users;
