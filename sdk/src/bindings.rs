//! Generated bindings (wit-bindgen). Not a public API: plugin authors use the SDK's own types and
//! the `export_*!` macros, never these modules. They are `pub` only because the export macros
//! expand in the plugin's crate and must name them.
//!
//! Layout: see `sdk/wit/sdk.wit` for why the public worlds are split into `base` (host imports and
//! `lifecycle`) plus one world per kind.

#![allow(missing_docs, clippy::all)]

/// Host imports (`log`, `clock`, `outbound-http`), the shared `types` and the `lifecycle` export.
pub mod base {
    wit_bindgen::generate!({
        path: ["wit/portcullis-plugin@0.1.0", "wit/sdk.wit"],
        world: "portcullis:sdk/base",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_base",
        default_bindings_module: "portcullis_sdk::bindings::base",
    });
}

/// The `secret-source` export.
pub mod secret_source {
    wit_bindgen::generate!({
        path: ["wit/portcullis-plugin@0.1.0", "wit/sdk.wit"],
        world: "portcullis:sdk/secret-source-kind",
        with: { "portcullis:plugin/types@0.1.0": crate::bindings::base::portcullis::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_secret_source_kind",
        default_bindings_module: "portcullis_sdk::bindings::secret_source",
    });
}

/// The `policy-evaluator` export.
pub mod policy_evaluator {
    wit_bindgen::generate!({
        path: ["wit/portcullis-plugin@0.1.0", "wit/sdk.wit"],
        world: "portcullis:sdk/policy-evaluator-kind",
        with: { "portcullis:plugin/types@0.1.0": crate::bindings::base::portcullis::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_policy_evaluator_kind",
        default_bindings_module: "portcullis_sdk::bindings::policy_evaluator",
    });
}

/// The `auth-profile` export.
pub mod auth_profile {
    wit_bindgen::generate!({
        path: ["wit/portcullis-plugin@0.1.0", "wit/sdk.wit"],
        world: "portcullis:sdk/auth-profile-kind",
        pub_export_macro: true,
        export_macro_name: "export_auth_profile_kind",
        default_bindings_module: "portcullis_sdk::bindings::auth_profile",
    });
}
