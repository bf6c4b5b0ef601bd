//! Identity: who is calling. Access tokens are validated against the issuer's published keys
//! (`validator`), whichever issuer that is — any OpenID Connect provider in production, or the
//! development issuer built into Marquee (`dev_issuer`), whose tokens take exactly the same
//! path. The result is a `Caller`: an account, its roles, and for a browser session the
//! profile it selected (with the kids lock).
//!
//! No HTTP framework here: `api::auth` serves the issuer's endpoints and the browser login,
//! and turns headers and cookies into a `Caller`.

pub mod caller;
pub mod dev_issuer;
pub mod validator;

pub use caller::{Caller, Role, SessionProfile};
pub use dev_issuer::DevIssuer;
pub use validator::{AuthError, TokenValidator, ValidatorConfig};

/// Where the development issuer lives under the server's base URL; its `iss`.
pub const DEV_ISSUER_PATH: &str = "/dev-issuer";
/// The audience Marquee's access tokens are issued for unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "marquee";

/// Whether the built-in development issuer may serve, and why the server is in that mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// An external OpenID Connect provider signs viewers in; the development issuer is off
    /// unless `dev_issuer = true` is configured.
    Production,
    /// The built-in development issuer signs in demo accounts.
    Development,
}
