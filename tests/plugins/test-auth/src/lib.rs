//! An auth profile for tests: `good-<principal>` is valid with scopes `bundle:svc` plus
//! `admin:everything` (which the host must drop: no configured prefix), `expired-<p>` carries an
//! expiry in the past, `down` is unavailable, `loop` spins forever; anything else is rejected.

wit_bindgen::generate!({ world: "auth-profile-plugin", path: "../../../wit/portcullis-plugin@0.1.0" });

use exports::portcullis::plugin::auth_profile::{
    AuthError, AuthRequest, Guest as Profile, Identity,
};
use exports::portcullis::plugin::lifecycle::Guest as Lifecycle;
use portcullis::plugin::types::{InitError, PluginKind, PluginMetadata};

struct Plugin;

impl Lifecycle for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "test-auth".into(),
            version: "0.1.0".into(),
            kind: PluginKind::AuthProfile,
            description: "host test fixture: token format decides".into(),
            config_schema: "{}".into(),
        }
    }

    fn init(_config: String) -> Result<(), InitError> {
        Ok(())
    }
}

impl Profile for Plugin {
    fn validate(request: AuthRequest) -> Result<Identity, AuthError> {
        let now = portcullis::plugin::clock::now_unix_ms() / 1000;
        let token = request.token.as_str();
        if let Some(principal) = token.strip_prefix("good-") {
            return Ok(Identity {
                principal: principal.into(),
                scopes: vec!["bundle:svc".into(), "admin:everything".into()],
                lineage: vec![],
                expires_at: Some(now + 300),
            });
        }
        if let Some(principal) = token.strip_prefix("expired-") {
            return Ok(Identity {
                principal: principal.into(),
                scopes: vec!["bundle:svc".into()],
                lineage: vec![],
                expires_at: Some(now.saturating_sub(600)),
            });
        }
        match token {
            "down" => Err(AuthError::Unavailable("backend down".into())),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            _ => Err(AuthError::Rejected("unknown token".into())),
        }
    }
}

export!(Plugin);
