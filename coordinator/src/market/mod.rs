//! The model marketplace's rules: what inference costs and who is paid.
//! The service side (promotion, the model views, running models) lives in
//! [`crate::service`].

mod pricing;

pub use pricing::MarketParams;
