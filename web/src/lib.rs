//! Starling's HTTP side: the coordinator's JSON API (with its OpenAPI
//! document), model downloads, health and metrics, and the server-rendered
//! dashboard pages, as an axum [`Router`](axum::Router) over the
//! [`ReadModel`] trait that the coordinator implements.
//!
//! This crate holds no business rules: every number it serves was computed
//! by the coordinator, and it never reaches into the coordinator's state.
//! Build the router with [`router`], run it with [`serve`] on a listener you
//! bound yourself.

mod config;
mod error;
mod format;
mod html;
mod page;
mod params;
mod predict;
mod read_model;
mod router;
mod routes;
mod serve;
mod state;
#[cfg(test)]
mod testing;
mod views;

pub use config::{RateLimit, WebConfig};
pub use error::ApiError;
pub use format::civil_date;
pub use page::{Cursor, InvalidCursor, Page, PageRequest};
pub use predict::client as client_network;
pub use read_model::{BoxError, BoxFuture, ByteStream, ModelBlob, ModelBody, PredictError, ReadError, ReadModel};
pub use router::{router, router_with_config};
pub use serve::serve;
pub use views::{
    AccountView, Balances, BondView, Caller, Contributor, HistoryEntry, HistoryKind, IdentityPayout, ItemPrediction,
    ModelDetail, ModelSummary, PredictCall, Prediction, Price, RoundRecord, SubmissionOutcome, SubmissionView,
    TaskDetail, TaskSummary, ValidatorStanding, VersionDetail, VersionSummary,
};
