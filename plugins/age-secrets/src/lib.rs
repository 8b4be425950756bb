//! `age-secrets`: a Portcullis secret source that reads values from an
//! [age](https://age-encryption.org)-encrypted `KEY=value` file.
//!
//! The operator encrypts the whole file with the `age` command-line tool to an X25519 recipient
//! and grants the plugin the file's directory and the identity (an env var or a file). A secret's
//! reference is its key:
//!
//! ```json
//! "secrets": { "apiKey": { "type": "plugin", "plugin": "age", "value": "TICKETS_API_KEY" } }
//! ```
//!
//! `init` reads and decrypts the file, so a wrong identity, a missing grant or a malformed file is
//! a load error (`portcullis plugin check` shows it), not a failure on the first tool call.
//! Errors never contain a secret value or the identity.

mod dotenv;

use std::io::Read;
use std::str::FromStr;

use portcullis_sdk::{InitError, Metadata, Plugin, SecretError, SecretRequest, SecretSource};
use serde::Deserialize;
use zeroize::Zeroizing;

pub use dotenv::Secrets;

/// The plugin's `config` object (schema: `config.schema.json`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Path of the encrypted file, inside a granted directory.
    pub secrets_file: String,
    /// Env var holding the identity.
    pub identity_env: Option<String>,
    /// File holding the identity.
    pub identity_file: Option<String>,
}

/// The decrypted secrets.
pub struct AgeSecrets {
    secrets: Secrets,
}

impl Plugin for AgeSecrets {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "age-secrets",
            env!("CARGO_PKG_VERSION"),
            "Secret values from an age-encrypted KEY=value file (X25519 identity)",
        )
        .with_config_schema(include_str!("../config.schema.json"))
    }

    fn init(config: Config) -> Result<Self, InitError> {
        let identities = Zeroizing::new(read_identity_text(&config)?);
        let identities = parse_identities(&identities)?;
        let encrypted = std::fs::read(&config.secrets_file).map_err(|error| {
            InitError::Failed(format!(
                "cannot read secretsFile `{}` (is its directory granted in grants.files?): {error}",
                config.secrets_file
            ))
        })?;
        let secrets = decrypt(&encrypted, &identities)?;
        Ok(Self { secrets })
    }
}

impl SecretSource for AgeSecrets {
    fn resolve(&self, request: &SecretRequest) -> Result<String, SecretError> {
        if !dotenv::is_key(&request.reference) {
            return Err(SecretError::InvalidReference(
                "the reference must be a key of the secrets file (ASCII letters, digits, '_', '.', '-')"
                    .to_owned(),
            ));
        }
        match self.secrets.get(&request.reference) {
            Some(value) => Ok(value.to_string()),
            None => Err(SecretError::NotFound(format!(
                "no key `{}` in the secrets file",
                request.reference
            ))),
        }
    }
}

portcullis_sdk::export_secret_source!(AgeSecrets);

/// The identity text from exactly one of `identityEnv` and `identityFile`.
fn read_identity_text(config: &Config) -> Result<String, InitError> {
    match (&config.identity_env, &config.identity_file) {
        (Some(var), None) => std::env::var(var).map_err(|_| {
            InitError::Failed(format!(
                "env var `{var}` (identityEnv) is not set or not granted in grants.env"
            ))
        }),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|error| {
            InitError::Failed(format!(
                "cannot read identityFile `{path}` (is its directory granted in grants.files?): {error}"
            ))
        }),
        _ => Err(InitError::InvalidConfig(
            "set exactly one of `identityEnv` and `identityFile`".to_owned(),
        )),
    }
}

/// X25519 identities, one per line, in `age-keygen` format (`#` comments and blank lines ignored).
pub fn parse_identities(text: &str) -> Result<Vec<age::x25519::Identity>, InitError> {
    let identities = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .enumerate()
        .map(|(index, line)| {
            age::x25519::Identity::from_str(line).map_err(|_| {
                // The line is key material: name its position, never its content.
                InitError::InvalidConfig(format!(
                    "identity {} is not an X25519 age identity (AGE-SECRET-KEY-1...)",
                    index + 1
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if identities.is_empty() {
        return Err(InitError::InvalidConfig(
            "the identity holds no AGE-SECRET-KEY-1... line".to_owned(),
        ));
    }
    Ok(identities)
}

/// Decrypt an age file (binary or armored) and parse its `KEY=value` lines.
pub fn decrypt(
    encrypted: &[u8],
    identities: &[age::x25519::Identity],
) -> Result<Secrets, InitError> {
    let failed = |error: &dyn std::fmt::Display| {
        InitError::Failed(format!("cannot decrypt secretsFile: {error}"))
    };
    let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(encrypted))
        .map_err(|error| failed(&error))?;
    let mut reader = decryptor
        .decrypt(
            identities
                .iter()
                .map(|identity| identity as &dyn age::Identity),
        )
        .map_err(|error| failed(&error))?;
    let mut plaintext = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plaintext)
        .map_err(|error| failed(&error))?;
    let text = std::str::from_utf8(&plaintext)
        .map_err(|_| InitError::Failed("the decrypted secretsFile is not UTF-8".to_owned()))?;
    dotenv::parse(text)
        .map_err(|error| InitError::Failed(format!("malformed secretsFile: {error}")))
}
