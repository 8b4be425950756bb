//! The SDK's split worlds (`wit/sdk.wit`) must add up to exactly the public worlds
//! (`wit/portcullis-plugin@0.1.0/worlds.wit`, the copy the SDK vendors and binds): a plugin built with the SDK exports what its public world exports, and
//! the SDK can import everything a public world may import, and nothing else.

use std::collections::BTreeSet;

use wit_parser::{Resolve, WorldItem, WorldKey};

fn resolve() -> Resolve {
    let mut resolve = Resolve::default();
    let root = env!("CARGO_MANIFEST_DIR");
    resolve
        .push_dir(format!("{root}/wit/portcullis-plugin@0.1.0"))
        .unwrap();
    resolve.push_file(format!("{root}/wit/sdk.wit")).unwrap();
    resolve
}

/// Names of the interfaces a world imports or exports (`portcullis:plugin/log@0.1.0`).
fn interfaces(resolve: &Resolve, world: &str, exports: bool) -> BTreeSet<String> {
    let package = if world.contains("-plugin") {
        "portcullis:plugin@0.1.0"
    } else {
        "portcullis:sdk"
    };
    let package = resolve
        .packages
        .iter()
        .find(|(_, p)| p.name.to_string() == package)
        .map(|(id, _)| id)
        .unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let world = &resolve.worlds[world];
    let items = if exports {
        &world.exports
    } else {
        &world.imports
    };
    items
        .iter()
        .filter_map(|(key, item)| match (key, item) {
            (WorldKey::Interface(id), WorldItem::Interface { .. }) => resolve.id_of(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn sdk_worlds_add_up_to_each_public_world() {
    let resolve = resolve();
    let base_imports = interfaces(&resolve, "base", false);
    let base_exports = interfaces(&resolve, "base", true);
    for kind in ["secret-source", "policy-evaluator", "auth-profile"] {
        let public = format!("{kind}-plugin");
        let mut exports = base_exports.clone();
        exports.extend(interfaces(&resolve, &format!("{kind}-kind"), true));
        assert_eq!(
            exports,
            interfaces(&resolve, &public, true),
            "exports of {public}"
        );

        let public_imports = interfaces(&resolve, &public, false);
        let missing: Vec<_> = public_imports.difference(&base_imports).collect();
        assert!(
            missing.is_empty(),
            "{public} may import {missing:?}, which the SDK cannot call"
        );
    }
}
