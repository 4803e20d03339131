//! One file per resource; [`crate::router`] wires them up.

pub(crate) mod accounts;
pub(crate) mod model;
pub(crate) mod openapi;
pub(crate) mod ops;
pub(crate) mod params;
pub(crate) mod tasks;
