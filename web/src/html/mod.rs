//! The dashboard: server-rendered HTML pages over the same read model as the
//! JSON API, readable without JavaScript. Every dynamic string goes through
//! maud's compile-time escaping; [`layout`] holds the shared frame, the
//! headers and the error page.

pub(crate) mod account;
pub(crate) mod chart;
pub(crate) mod layout;
pub(crate) mod leaderboard;
pub(crate) mod market;
pub(crate) mod market_model;
pub(crate) mod parts;
pub(crate) mod scripts;
pub(crate) mod task;
pub(crate) mod tasks;
