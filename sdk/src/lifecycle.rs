//! The `lifecycle` export shared by every kind: `metadata()` and `init(config)`, implemented once
//! for every kind's adapter.

use crate::bindings::base::exports::portcullis::plugin::lifecycle as wit;
use crate::bindings::base::portcullis::plugin::types as wit_types;
use crate::plugin::{self, InitError, Plugin, RequestContext};

/// The kind a plugin is exported as; decided by the export macro, not by the plugin.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SecretSource,
    PolicyEvaluator,
    AuthProfile,
}

/// Implemented by each kind's adapter so one `lifecycle` implementation serves all three.
#[doc(hidden)]
pub trait Lifecycle {
    type Plugin: Plugin;
    const KIND: Kind;
}

impl<L: Lifecycle> wit::Guest for L {
    fn metadata() -> wit::PluginMetadata {
        let metadata = L::Plugin::metadata();
        wit::PluginMetadata {
            name: metadata.name,
            version: metadata.version,
            kind: match L::KIND {
                Kind::SecretSource => wit_types::PluginKind::SecretSource,
                Kind::PolicyEvaluator => wit_types::PluginKind::PolicyEvaluator,
                Kind::AuthProfile => wit_types::PluginKind::AuthProfile,
            },
            description: metadata.description,
            config_schema: metadata.config_schema,
        }
    }

    fn init(config: String) -> Result<(), wit::InitError> {
        plugin::init_instance::<L::Plugin>(&config).map_err(|error| match error {
            InitError::InvalidConfig(message) => wit::InitError::InvalidConfig(message),
            InitError::Failed(message) => wit::InitError::Failed(message),
        })
    }
}

impl From<wit_types::RequestContext> for RequestContext {
    fn from(context: wit_types::RequestContext) -> Self {
        Self {
            request_id: context.request_id,
            principal: context.principal,
        }
    }
}

/// The body of every public export macro (`export_secret_source!`, `export_policy_evaluator!`,
/// `export_auth_profile!`): export `adapter` as the shared `base` world (host imports and
/// `lifecycle`) plus the one `*-kind` world named by `bindings::$kind` and its wit-bindgen macro,
/// which `wit-component` unions into exactly the public world of that kind (`wit/sdk.wit`). Not
/// public API: plugin authors call the kind's macro, which picks the adapter and so the kind.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($adapter:ty, $kind:ident, $kind_macro:ident) => {
        // Only a component has exports: natively (unit tests) the `export_name`s, which contain
        // `:` and `/`, would reach the native linker as exported symbols and fail the build.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __PortcullisExport = $adapter;
            $crate::bindings::base::export_base!(
                __PortcullisExport with_types_in $crate::bindings::base
            );
            $crate::bindings::$kind::$kind_macro!(
                __PortcullisExport with_types_in $crate::bindings::$kind
            );
        };
    };
}
