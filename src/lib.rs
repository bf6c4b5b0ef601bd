//! Marquee: a recommendation backend-for-frontend serving personalized home pages over GraphQL.
//!
//! See ARCHITECTURE.md for the map. In short: `engine` decides what a page shows and knows
//! nothing of HTTP or SQL; `store` persists; `api` maps GraphQL to both; `cli` and `app`
//! compose them into commands.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod experiments;
pub mod ingest;
pub mod lab;
pub mod rng;
pub mod store;
pub mod telemetry;
