//! # portcullis-sdk: write Portcullis plugins in plain Rust
//!
//! A Portcullis plugin is a WebAssembly component of one *kind*: a secret source, a policy
//! evaluator or an auth profile. With this crate a plugin is an ordinary Rust type:
//!
//! 1. implement [`Plugin`] (metadata and a typed, serde-deserialised config),
//! 2. implement exactly one kind trait: [`SecretSource`], [`PolicyEvaluator`] or [`AuthProfile`],
//! 3. call that kind's export macro once: [`export_secret_source!`], [`export_policy_evaluator!`]
//!    or [`export_auth_profile!`],
//! 4. build with `cargo build --release --target wasm32-wasip2` (the crate is a `cdylib`; the
//!    `.wasm` it produces is the component).
//!
//! ```
//! use portcullis_sdk::{Metadata, InitError, Plugin, SecretRequest, SecretError, SecretSource};
//!
//! pub struct Fixed { value: String }
//!
//! impl Plugin for Fixed {
//!     type Config = serde_json::Value;
//!     fn metadata() -> Metadata {
//!         Metadata::new("fixed", "0.1.0", "Returns one configured value")
//!     }
//!     fn init(config: serde_json::Value) -> Result<Self, InitError> {
//!         let value = config["value"].as_str()
//!             .ok_or_else(|| InitError::InvalidConfig("`value` must be a string".into()))?;
//!         Ok(Self { value: value.to_owned() })
//!     }
//! }
//!
//! impl SecretSource for Fixed {
//!     fn resolve(&self, _request: &SecretRequest) -> Result<String, SecretError> {
//!         Ok(self.value.clone())
//!     }
//! }
//!
//! portcullis_sdk::export_secret_source!(Fixed);
//!
//! // Natively, the same type is unit-testable without any WebAssembly:
//! let plugin: Fixed = portcullis_sdk::init_from_json(r#"{"value":"s3cret"}"#).unwrap();
//! assert_eq!(plugin.resolve(&SecretRequest::for_reference("x")).unwrap(), "s3cret");
//! ```
//!
//! Host services: [`log`] (structured logging), [`clock`] (wall clock) and [`http`] (outbound
//! HTTP to granted origins; secret sources and auth profiles only). In a component they call the
//! host; natively they use the per-thread doubles in [`testing`].
//!
//! Every call runs in a fresh, isolated instance: the host calls `init(config)` and then the
//! kind's function. Nothing a plugin keeps in memory survives to the next call.
//!
//! Feature `schema` (off by default): `schema::config_schema` derives the config JSON Schema
//! from the plugin's `Config` type with `schemars`, so the schema the host validates against and
//! the type serde reads cannot drift apart.
//!
//! The WIT contract is `portcullis:plugin@0.1.0`; the generated bindings live in a hidden module
//! and never appear in a plugin's code.

#![deny(missing_docs)]

// The export macros expand in the plugin's crate and name `portcullis_sdk::...`; this makes the
// same paths resolve inside the SDK itself.
extern crate self as portcullis_sdk;

pub mod auth;
#[doc(hidden)]
pub mod bindings;
pub mod clock;
mod host;
pub mod http;
#[doc(hidden)]
pub mod lifecycle;
pub mod log;
mod plugin;
pub mod policy;
#[cfg(feature = "schema")]
pub mod schema;
pub mod secret;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use auth::{AuthError, AuthProfile, AuthRequest, Identity, Token};
pub use plugin::{init_from_json, InitError, Metadata, Plugin, RequestContext};
pub use policy::{Decision, PolicyEvaluator, PolicyInput, Safety, ToolInfo};
pub use secret::{SecretError, SecretRequest, SecretSource};

/// Re-exported (feature `schema`) so a plugin derives `JsonSchema` with the SDK's version.
#[cfg(feature = "schema")]
pub use schemars;
/// Re-exported so plugins use the SDK's serde and serde_json versions.
pub use serde;
pub use serde_json;
