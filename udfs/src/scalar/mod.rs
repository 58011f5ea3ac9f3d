//! Scalar functions: one value per row.

pub mod channel_group;
pub mod ga4_param;
pub mod url_host;
