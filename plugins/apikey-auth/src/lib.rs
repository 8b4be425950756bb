//! `apikey-auth`: a Portcullis auth profile for static API keys.
//!
//! Keys are never stored: each config entry holds a per-key `salt` and
//! `sha256 = hex(SHA-256(salt || key))` (salt as written, then the key, both as UTF-8 bytes), plus
//! the principal and scopes the key stands for. Make an entry with:
//!
//! ```sh
//! salt=$(openssl rand -hex 16); printf '%s%s' "$salt" "$API_KEY" | sha256sum
//! ```
//!
//! Why salted SHA-256 and not a password hash (argon2, scrypt): API keys are machine-generated
//! with at least 128 bits of entropy, so brute force is hopeless whatever the hash cost; a slow
//! KDF only protects low-entropy *passwords*. It would also cost milliseconds per call inside a
//! 50 ms auth budget, in a fresh instance on every request. The salt still prevents
//! precomputed tables and makes equal keys in two deployments look unrelated.
//!
//! Timing: [`ApiKeyAuth::validate`] hashes the token with every entry's salt and compares every
//! digest in constant time (`subtle`), with no early exit, so the time taken does not say which
//! entry matched or how much of a digest did.

use portcullis_sdk::{
    clock, AuthError, AuthProfile, AuthRequest, Identity, InitError, Metadata, Plugin,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Shortest salt accepted (characters): 16 hex characters are 64 random bits.
pub const MIN_SALT_LEN: usize = 16;
/// Longest token considered; anything longer is rejected before hashing.
pub const MAX_TOKEN_LEN: usize = 4096;

// `config.schema.json` is derived from `Config` and `KeyConfig` (feature `schema` of the SDK, in
// tests only) and held to them by the test `schema_file_is_derived_from_the_config_type`: their doc
// comments are the descriptions operators read.
/// The `config` of an apikey-auth plugin: the API keys it accepts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(portcullis_sdk::schemars::JsonSchema))]
#[cfg_attr(
    test,
    schemars(crate = "portcullis_sdk::schemars", title = "apikey-auth config")
)]
pub struct Config {
    /// Accepted API keys, stored as salted hashes: sha256 = hex(SHA-256(salt || key)).
    #[cfg_attr(test, schemars(length(min = 1)))]
    pub keys: Vec<KeyConfig>,
}

/// One accepted API key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(test, derive(portcullis_sdk::schemars::JsonSchema))]
#[cfg_attr(test, schemars(crate = "portcullis_sdk::schemars"))]
pub struct KeyConfig {
    /// Name of the entry, for logs and rotation; not secret.
    #[cfg_attr(test, schemars(length(min = 1)))]
    pub id: String,
    /// Per-key random salt, e.g. `openssl rand -hex 16`.
    #[cfg_attr(test, schemars(length(min = MIN_SALT_LEN)))]
    pub salt: String,
    /// hex(SHA-256(salt || key)), e.g. `printf '%s%s' "$salt" "$key" | sha256sum`.
    #[cfg_attr(test, schemars(regex(pattern = "^[0-9a-fA-F]{64}$")))]
    pub sha256: String,
    /// The principal a caller with this key is.
    #[cfg_attr(test, schemars(length(min = 1)))]
    pub principal: String,
    /// Scopes granted to this key (`bundle:...`, `profile:...`, `tool:...`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Optional expiry, seconds since the Unix epoch; after it the key is rejected.
    // `with = "u64"`: absent means no expiry; `null` is not offered to operators.
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "u64"))]
    pub expires_at: Option<u64>,
}

/// One accepted key, checked and decoded.
#[derive(Debug)]
struct Key {
    id: String,
    salt: String,
    digest: [u8; 32],
    principal: String,
    scopes: Vec<String>,
    expires_at: Option<u64>,
}

/// The configured keys.
#[derive(Debug)]
pub struct ApiKeyAuth {
    keys: Vec<Key>,
}

impl Plugin for ApiKeyAuth {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "apikey-auth",
            env!("CARGO_PKG_VERSION"),
            "Static API keys stored as salted SHA-256 hashes, each mapped to a principal and scopes",
        )
        .with_config_schema(include_str!("../config.schema.json"))
    }

    fn init(config: Config) -> Result<Self, InitError> {
        if config.keys.is_empty() {
            return Err(InitError::InvalidConfig(
                "`keys` must not be empty".to_owned(),
            ));
        }
        let mut keys: Vec<Key> = Vec::with_capacity(config.keys.len());
        for (index, entry) in config.keys.into_iter().enumerate() {
            let at = |field: &str| format!("`keys[{index}].{field}`");
            if entry.id.is_empty() {
                return Err(InitError::InvalidConfig(format!(
                    "{} must not be empty",
                    at("id")
                )));
            }
            if keys.iter().any(|key| key.id == entry.id) {
                return Err(InitError::InvalidConfig(format!(
                    "{}: id `{}` is used twice",
                    at("id"),
                    entry.id
                )));
            }
            if entry.salt.chars().count() < MIN_SALT_LEN {
                return Err(InitError::InvalidConfig(format!(
                    "{} must be at least {MIN_SALT_LEN} characters (openssl rand -hex 16)",
                    at("salt")
                )));
            }
            let digest = decode_digest(&entry.sha256).ok_or_else(|| {
                InitError::InvalidConfig(format!("{} must be 64 hex characters", at("sha256")))
            })?;
            if entry.principal.is_empty() {
                return Err(InitError::InvalidConfig(format!(
                    "{} must not be empty",
                    at("principal")
                )));
            }
            keys.push(Key {
                id: entry.id,
                salt: entry.salt,
                digest,
                principal: entry.principal,
                scopes: entry.scopes,
                expires_at: entry.expires_at,
            });
        }
        Ok(Self { keys })
    }
}

impl AuthProfile for ApiKeyAuth {
    fn validate(&self, request: &AuthRequest) -> Result<Identity, AuthError> {
        let token = request.token.expose();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Rejected("malformed API key".to_owned()));
        }
        let key = self
            .lookup(token)
            .ok_or_else(|| AuthError::Rejected("unknown API key".to_owned()))?;
        if let Some(expires_at) = key.expires_at {
            if clock::now_unix_secs() >= expires_at {
                return Err(AuthError::Rejected(format!(
                    "API key `{}` has expired",
                    key.id
                )));
            }
        }
        Ok(Identity {
            principal: key.principal.clone(),
            scopes: key.scopes.clone(),
            lineage: Vec::new(),
            expires_at: key.expires_at,
        })
    }
}

portcullis_sdk::export_auth_profile!(ApiKeyAuth);

impl ApiKeyAuth {
    /// The entry `token` belongs to. Visits every entry and compares every digest in constant
    /// time; the index of a match is picked with a constant-time select, so neither the loop nor
    /// the comparisons exit early.
    fn lookup(&self, token: &str) -> Option<&Key> {
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (position, key) in self.keys.iter().enumerate() {
            let matches = digests_match(&salted_digest(&key.salt, token), &key.digest);
            index.conditional_assign(&(position as u32), matches);
            found |= matches;
        }
        bool::from(found).then(|| &self.keys[index as usize])
    }
}

/// SHA-256(salt || key).
pub fn salted_digest(salt: &str, key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(key.as_bytes());
    hasher.finalize().into()
}

/// Constant-time equality of two digests.
pub fn digests_match(a: &[u8; 32], b: &[u8; 32]) -> subtle::Choice {
    a.ct_eq(b)
}

/// The config's `sha256`: exactly 64 hex digits (either case).
fn decode_digest(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config.schema.json` (shipped, and embedded by `metadata`) is exactly the schema derived
    /// from [`Config`], so the host validates what serde reads.
    #[test]
    fn schema_file_is_derived_from_the_config_type() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.schema.json");
        let derived = portcullis_sdk::schema::config_schema::<Config>();
        if std::env::var_os("PORTCULLIS_WRITE_SCHEMA").is_some() {
            std::fs::write(path, &derived).unwrap();
        }
        assert!(
            std::fs::read_to_string(path).unwrap() == derived,
            "plugins/apikey-auth/config.schema.json is not the schema derived from `Config`; \
             regenerate it: PORTCULLIS_WRITE_SCHEMA=1 cargo test --manifest-path plugins/Cargo.toml \
             -p apikey-auth schema_file"
        );
    }

    #[test]
    fn digests_compare_equal_only_when_every_byte_matches() {
        let digest = salted_digest("0123456789abcdef", "key");
        let mut last_byte_differs = digest;
        last_byte_differs[31] ^= 1;
        let mut first_byte_differs = digest;
        first_byte_differs[0] ^= 0x80;
        assert!(bool::from(digests_match(&digest, &digest)));
        assert!(!bool::from(digests_match(&digest, &last_byte_differs)));
        assert!(!bool::from(digests_match(&digest, &first_byte_differs)));
    }

    #[test]
    fn hex_digests_decode_in_either_case_and_refuse_anything_else() {
        let upper = "AB".repeat(32);
        assert_eq!(decode_digest(&upper), Some([0xab; 32]));
        assert_eq!(decode_digest(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_digest(&"ab".repeat(31)), None);
        assert_eq!(decode_digest(&format!("{}zz", "ab".repeat(31))), None);
        assert_eq!(decode_digest(&format!("{}é", "a".repeat(62))), None);
    }
}
