//! Host bindings for `portcullis:plugin@0.1.0`, one `bindgen!` per world.
//!
//! The three worlds share `types`, `log`, `clock` and `outbound-http`; they are generated once
//! (in [`secret`]) and reused through `with:`, so the host implements each import once and the
//! shared records (`plugin-metadata`, `request-context`, ...) are one Rust type. Calls are
//! synchronous: the host runs them on a blocking thread (see [`super::engine`]).
//!
//! The WIT is read from `wit/portcullis-plugin@0.1.0/`, the directory named as the package is. A
//! future `0.2.0` lands beside it (`wit/portcullis-plugin@0.2.0/`) with its own modules next to
//! these, and [`super::load`] picks one by the version in the component's export names.

/// The WIT package version these bindings speak.
pub const WIT_VERSION: &str = "0.1.0";

/// `secret-source-plugin`.
#[allow(missing_docs)]
pub mod secret {
    wasmtime::component::bindgen!({
        world: "secret-source-plugin",
        path: "../../wit/portcullis-plugin@0.1.0",
    });
}

/// `policy-evaluator-plugin`.
#[allow(missing_docs)]
pub mod policy {
    wasmtime::component::bindgen!({
        world: "policy-evaluator-plugin",
        path: "../../wit/portcullis-plugin@0.1.0",
        with: {
            "portcullis:plugin/types": super::secret::portcullis::plugin::types,
            "portcullis:plugin/log": super::secret::portcullis::plugin::log,
            "portcullis:plugin/clock": super::secret::portcullis::plugin::clock,
        },
    });
}

/// `auth-profile-plugin`.
#[allow(missing_docs)]
pub mod auth {
    wasmtime::component::bindgen!({
        world: "auth-profile-plugin",
        path: "../../wit/portcullis-plugin@0.1.0",
        with: {
            "portcullis:plugin/types": super::secret::portcullis::plugin::types,
            "portcullis:plugin/log": super::secret::portcullis::plugin::log,
            "portcullis:plugin/clock": super::secret::portcullis::plugin::clock,
            "portcullis:plugin/outbound-http": super::secret::portcullis::plugin::outbound_http,
        },
    });
}

pub use secret::portcullis::plugin::outbound_http as http;
pub use secret::portcullis::plugin::types;
