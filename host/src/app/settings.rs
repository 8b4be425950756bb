//! Every capability's config checks, in one order, behind [`config::Rules`].
//!
//! | step | checked by | what |
//! |---|---|---|
//! | each scope file | [`policy::settings::check_patterns`] | tool-id patterns |
//! | merged | `config` itself | `cli`, `mode.default`, something configured, `runtime.mode`/`local` |
//! | merged | [`oauth::settings::check`] | `runtime.remote` |
//! | merged | [`upstream::settings::check`] | `runtime.server.upstream` |
//! | merged | [`authn::settings::check`] | `runtime.server.auth` |
//! | merged | [`server_settings::check`] | `runtime.server` edge: public URLs, CORS, connections |
//! | merged | [`catalog::settings::check_sources`] | `sources`, `services` |
//! | merged | [`mcp::settings::check`] | MCP transports and transport OAuth |
//! | merged | [`catalog::settings::check_agents`] | `agents` |
//! | merged | [`secrets::settings::check`] | `secrets` |
//! | merged | [`plugins::settings::check`] | `plugins` and every reference to one |
//! | warnings | [`secrets::preflight::check`], [`policy::settings::warnings`] | unresolvable secrets, grants without auth |
//!
//! The order is the order problems are reported in. Failure mode: [`load`] refuses a config
//! with any problem, listing all of them; [`check`] reports them with the warnings.

use serde_json::Value;

use super::server_settings;
use crate::config::{
    self, CheckReport, Config, ConfigError, Diagnostic, LoadedConfig, Problems, ScopePaths,
};
use crate::{authn, catalog, mcp, oauth, plugins, policy, secrets, upstream};

/// The capability rules of this build, as `config` needs them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings;

impl config::Rules for Settings {
    fn scope(&self, doc: &Value) -> Problems {
        policy::settings::check_patterns(doc)
    }

    fn merged(&self, config: &Config, p: &mut Problems) {
        oauth::settings::check(config, p);
        upstream::settings::check(config, p);
        authn::settings::check(config, p);
        server_settings::check(config, p);
        catalog::settings::check_sources(config, p);
        mcp::settings::check(config, p);
        catalog::settings::check_agents(config, p);
        secrets::settings::check(config, p);
        plugins::settings::check(config, p);
    }

    fn warnings(&self, config: &Config) -> Vec<Diagnostic> {
        let mut out = secrets::preflight::check(config);
        out.extend(policy::settings::warnings(config));
        out
    }
}

/// Load, merge and fully validate every scope (the document and every capability's rules).
pub fn load(paths: &ScopePaths) -> Result<LoadedConfig, ConfigError> {
    config::load(paths, &Settings)
}

/// `portcullis check`: every error and warning of `paths`.
pub fn check(paths: &ScopePaths) -> CheckReport {
    config::check(paths, &Settings)
}
