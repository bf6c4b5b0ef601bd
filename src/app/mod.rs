//! The service layer: composes store and engine into what a request or a command does, and
//! decides the policy of a request (the home page's default-page fallback, which assignments
//! are exposures, what the impression log records). Knows nothing of HTTP or GraphQL: the API
//! maps its plain results to the schema, the command line prints them.

pub mod access;
pub mod admin;
pub mod console;
pub mod home;
pub mod impressions;
pub mod models;
pub mod policy;
pub mod reports;
pub mod serving;
mod state;
mod viewer;
pub mod watchers;

pub use state::AppState;
pub use viewer::AppError;
