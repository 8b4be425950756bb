//! API-key validation through the plugin, natively, with entries made by the documented
//! `printf '%s%s' "$salt" "$key" | sha256sum` recipe.

use std::process::Command;

use apikey_auth::ApiKeyAuth;
use portcullis_sdk::{init_from_json, testing, AuthError, AuthProfile, AuthRequest, InitError};

const SALT: &str = "5f0c8e2a9b7d4133";
const KEY: &str = "pk_live_4xT9qLw2ZrVb8nKc";

/// The operator recipe, run for real: `printf '%s%s' "$salt" "$key" | sha256sum`.
fn recipe(salt: &str, key: &str) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"printf '%s%s' "$1" "$2" | sha256sum"#)
        .arg("sh")
        .arg(salt)
        .arg(key)
        .output()
        .expect("sh and sha256sum (coreutils) are needed");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

fn entry(id: &str, salt: &str, key: &str, principal: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "salt": salt, "sha256": recipe(salt, key), "principal": principal,
        "scopes": ["bundle:tickets"],
    })
}

fn plugin(keys: Vec<serde_json::Value>) -> ApiKeyAuth {
    init_from_json(&serde_json::json!({ "keys": keys }).to_string()).unwrap()
}

fn validate(plugin: &ApiKeyAuth, token: &str) -> Result<portcullis_sdk::Identity, AuthError> {
    plugin.validate(&AuthRequest::for_token(token))
}

#[test]
fn a_configured_key_authenticates_as_its_principal_with_its_scopes() {
    let plugin = plugin(vec![
        entry("other", "aaaaaaaaaaaaaaaa", "another-key", "svc:other"),
        entry("ci", SALT, KEY, "svc:ci"),
    ]);
    let identity = validate(&plugin, KEY).unwrap();
    assert_eq!(identity.principal, "svc:ci");
    assert_eq!(identity.scopes, ["bundle:tickets"]);
    assert_eq!(identity.expires_at, None);
    assert_eq!(
        validate(&plugin, "another-key").unwrap().principal,
        "svc:other"
    );
}

#[test]
fn a_wrong_key_is_rejected() {
    let plugin = plugin(vec![entry("ci", SALT, KEY, "svc:ci")]);
    let padded = format!("{KEY} ");
    for token in [
        "pk_live_4xT9qLw2ZrVb8nKd",
        "",
        &KEY[..KEY.len() - 1],
        padded.as_str(),
    ] {
        assert!(
            matches!(validate(&plugin, token), Err(AuthError::Rejected(_))),
            "{token:?}"
        );
    }
    assert!(matches!(
        validate(&plugin, &"k".repeat(5000)),
        Err(AuthError::Rejected(_))
    ));
}

#[test]
fn a_hash_made_with_another_salt_does_not_match() {
    let mut wrong_salt = entry("ci", SALT, KEY, "svc:ci");
    wrong_salt["salt"] = "0000000000000000".into();
    let plugin = plugin(vec![wrong_salt]);
    assert!(matches!(
        validate(&plugin, KEY),
        Err(AuthError::Rejected(_))
    ));
}

#[test]
fn rejections_never_contain_the_presented_key() {
    let plugin = plugin(vec![entry("ci", SALT, KEY, "svc:ci")]);
    let Err(AuthError::Rejected(message)) = validate(&plugin, "pk_live_guess_123456") else {
        panic!("expected a rejection")
    };
    assert!(!message.contains("pk_live_guess"));
    assert!(!format!("{:?}", AuthRequest::for_token("pk_live_guess_123456")).contains("guess"));
}

#[test]
fn an_expired_key_is_rejected_and_a_live_one_carries_its_expiry() {
    let mut expiring = entry("ci", SALT, KEY, "svc:ci");
    expiring["expiresAt"] = 2_000_000_000u64.into();
    let plugin = plugin(vec![expiring]);

    testing::set_now_unix_ms(Some(1_999_999_999_000));
    assert_eq!(
        validate(&plugin, KEY).unwrap().expires_at,
        Some(2_000_000_000)
    );
    testing::set_now_unix_ms(Some(2_000_000_000_000));
    let Err(AuthError::Rejected(message)) = validate(&plugin, KEY) else {
        panic!("expected a rejection")
    };
    assert_eq!(message, "API key `ci` has expired");
    testing::set_now_unix_ms(None);
}

#[test]
fn bad_entries_are_invalid_config_naming_the_field() {
    let cases = [
        (
            serde_json::json!({ "keys": [] }),
            "`keys` must not be empty",
        ),
        (
            serde_json::json!({ "keys": [{ "id": "a", "salt": "short", "sha256": "00".repeat(32), "principal": "p" }] }),
            "`keys[0].salt`",
        ),
        (
            serde_json::json!({ "keys": [{ "id": "a", "salt": SALT, "sha256": "xyz", "principal": "p" }] }),
            "`keys[0].sha256`",
        ),
        (
            serde_json::json!({ "keys": [entry("a", SALT, KEY, "p"), entry("a", SALT, "k2", "q")] }),
            "used twice",
        ),
    ];
    for (config, expected) in cases {
        let error = init_from_json::<ApiKeyAuth>(&config.to_string())
            .err()
            .unwrap();
        assert!(
            matches!(&error, InitError::InvalidConfig(m) if m.contains(expected)),
            "{error:?} should mention {expected}"
        );
    }
}
