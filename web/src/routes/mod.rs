//! One file (or folder) per resource; [`router`](mod@crate::router) wires them up.

pub(crate) mod accounts;
pub(crate) mod market;
pub(crate) mod model;
pub(crate) mod openapi;
pub(crate) mod ops;
pub(crate) mod predict;
pub(crate) mod tasks;
