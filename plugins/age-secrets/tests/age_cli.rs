//! Interoperability with the `age` command-line tool (Debian package `age`): files encrypted by
//! the CLI are decrypted by the plugin's own code, natively. The tools are required, not optional:
//! `./tests/run` installs them (`apt-get install -y age`).

use std::path::{Path, PathBuf};
use std::process::Command;

use age_secrets::AgeSecrets;
use portcullis_sdk::{init_from_json, InitError, SecretError, SecretRequest, SecretSource};

const PLAINTEXT: &str =
    "# tickets service\nTICKETS_API_KEY=tk_live_0123456789\nDB_URL=postgres://app:p=w@db/app\n";

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("age-secrets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| {
        panic!(
            "cannot run {:?}: {error}. Install the age CLI: apt-get install -y age",
            command.get_program()
        )
    });
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `age-keygen -o <dir>/<name>`; returns (identity file, recipient).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let identity = dir.join(name);
    run(Command::new("age-keygen").arg("-o").arg(&identity));
    let recipient = run(Command::new("age-keygen").arg("-y").arg(&identity));
    (identity, recipient.trim().to_owned())
}

/// Encrypt PLAINTEXT with the CLI to `recipient`.
fn encrypt(dir: &Path, recipient: &str, armor: bool) -> PathBuf {
    let plain = dir.join("secrets.env");
    std::fs::write(&plain, PLAINTEXT).unwrap();
    let encrypted = dir.join(if armor {
        "secrets.env.age.asc"
    } else {
        "secrets.env.age"
    });
    let mut command = Command::new("age");
    command.arg("-r").arg(recipient).arg("-o").arg(&encrypted);
    if armor {
        command.arg("-a");
    }
    run(command.arg(&plain));
    std::fs::remove_file(&plain).unwrap();
    encrypted
}

fn config(secrets: &Path, identity: (&str, &str)) -> String {
    serde_json::json!({ "secretsFile": secrets, identity.0: identity.1 }).to_string()
}

fn resolve(plugin: &AgeSecrets, reference: &str) -> Result<String, SecretError> {
    plugin.resolve(&SecretRequest::for_reference(reference))
}

#[test]
fn file_encrypted_by_the_age_cli_is_decrypted_with_an_identity_file() {
    let dir = scratch("file");
    let (identity, recipient) = keygen(&dir, "identity.txt");
    let secrets = encrypt(&dir, &recipient, false);

    let plugin: AgeSecrets = init_from_json(&config(
        &secrets,
        ("identityFile", identity.to_str().unwrap()),
    ))
    .unwrap();
    assert_eq!(
        resolve(&plugin, "TICKETS_API_KEY").unwrap(),
        "tk_live_0123456789"
    );
    assert_eq!(
        resolve(&plugin, "DB_URL").unwrap(),
        "postgres://app:p=w@db/app"
    );
}

#[test]
fn armored_file_is_decrypted_with_an_identity_from_an_env_var() {
    let dir = scratch("env");
    let (identity, recipient) = keygen(&dir, "identity.txt");
    let secrets = encrypt(&dir, &recipient, true);
    let var = "AGE_SECRETS_TEST_IDENTITY_ENV";
    std::env::set_var(var, std::fs::read_to_string(&identity).unwrap());

    let plugin: AgeSecrets = init_from_json(&config(&secrets, ("identityEnv", var))).unwrap();
    assert_eq!(
        resolve(&plugin, "TICKETS_API_KEY").unwrap(),
        "tk_live_0123456789"
    );
}

#[test]
fn unknown_and_malformed_references_are_typed_errors() {
    let dir = scratch("refs");
    let (identity, recipient) = keygen(&dir, "identity.txt");
    let secrets = encrypt(&dir, &recipient, false);
    let plugin: AgeSecrets = init_from_json(&config(
        &secrets,
        ("identityFile", identity.to_str().unwrap()),
    ))
    .unwrap();

    assert!(matches!(
        resolve(&plugin, "MISSING"),
        Err(SecretError::NotFound(_))
    ));
    assert!(matches!(
        resolve(&plugin, "../etc/passwd"),
        Err(SecretError::InvalidReference(_))
    ));
}

#[test]
fn a_wrong_identity_fails_init_without_leaking_key_material() {
    let dir = scratch("wrong");
    let (_, recipient) = keygen(&dir, "right.txt");
    let (wrong, _) = keygen(&dir, "wrong.txt");
    let secrets = encrypt(&dir, &recipient, false);

    let error =
        init_from_json::<AgeSecrets>(&config(&secrets, ("identityFile", wrong.to_str().unwrap())))
            .err()
            .unwrap();
    let InitError::Failed(message) = &error else {
        panic!("expected Failed, got {error:?}")
    };
    assert!(
        message.starts_with("cannot decrypt secretsFile"),
        "{message}"
    );
    let key = std::fs::read_to_string(&wrong).unwrap();
    let key_line = key
        .lines()
        .find(|line| line.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    assert!(!message.contains(key_line));
}

#[test]
fn init_errors_name_the_missing_grant_or_config_key() {
    let dir = scratch("init");
    let (identity, recipient) = keygen(&dir, "identity.txt");
    let secrets = encrypt(&dir, &recipient, false);

    let unset =
        init_from_json::<AgeSecrets>(&config(&secrets, ("identityEnv", "AGE_SECRETS_TEST_UNSET")))
            .err()
            .unwrap();
    assert!(matches!(&unset, InitError::Failed(m) if m.contains("AGE_SECRETS_TEST_UNSET")));

    let missing_file = serde_json::json!({
        "secretsFile": dir.join("nope.age"), "identityFile": identity
    });
    let error = init_from_json::<AgeSecrets>(&missing_file.to_string())
        .err()
        .unwrap();
    assert!(matches!(&error, InitError::Failed(m) if m.contains("grants.files")));

    let both = serde_json::json!({
        "secretsFile": secrets, "identityFile": identity, "identityEnv": "X"
    });
    let error = init_from_json::<AgeSecrets>(&both.to_string())
        .err()
        .unwrap();
    assert!(matches!(error, InitError::InvalidConfig(_)));

    let typo = serde_json::json!({ "secretFile": secrets, "identityFile": identity });
    let error = init_from_json::<AgeSecrets>(&typo.to_string())
        .err()
        .unwrap();
    assert!(matches!(&error, InitError::InvalidConfig(m) if m.contains("secretFile")));
}
