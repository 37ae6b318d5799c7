//! Bad input never panics, and good input gives names AWS accepts: property tests over
//! manifests (arbitrary text, arbitrary values under the real keys, and valid manifests),
//! plus a replay of the fuzz corpus (`fuzz/corpus/manifest`) through the same properties.

use ecs_facade::testing::check_manifest;
use ecs_facade::{Error, Stack};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "name",
    "profile",
    "tags",
    "image",
    "port",
    "cpu",
    "memory",
    "architecture",
    "count",
    "spot",
    "environment",
    "secrets",
    "command",
    "container_health_check",
    "health_check",
    "user",
    "readonly_root_filesystem",
    "https",
    "internal",
    "network",
    "scaling",
    "monitoring",
    "alarms",
    "log_retention_days",
    "repository",
    "permissions",
    "exec",
    "rollout_timeout",
    "no_such_key",
];

/// A YAML scalar or small structure of any type.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-zA-Z0-9 ./:_-]{0,40}".prop_map(|s| format!("{s:?}")),
        Just("null".to_string()),
        Just("10.0.0.0/33".to_string()),
        Just("~".to_string()),
        (-1e6f64..1e6).prop_map(|f| f.to_string()),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..4).prop_map(|v| {
                let items: Vec<String> = v.into_iter().map(|(k, x)| format!("{k}: {x}")).collect();
                format!("{{{}}}", items.join(", "))
            }),
        ]
    })
}

/// Runs the shared manifest properties (`ecs_facade::testing::check_manifest`, also the
/// fuzz target's) and returns the accepted stack.
fn check(yaml: &str) -> Result<Option<Stack>, TestCaseError> {
    match check_manifest(yaml) {
        Ok(Ok(stack)) => Ok(Some(stack)),
        Ok(Err(_)) => Ok(None),
        Err(broken) => Err(TestCaseError::fail(format!("{broken}\n{yaml}"))),
    }
}

fn check_error(yaml: &str, err: &Error) -> Result<(), TestCaseError> {
    match err {
        Error::Manifest { message } => prop_assert!(!message.is_empty()),
        Error::InvalidManifest(found) => {
            let checked = ecs_facade::testing::manifest_problems_are_well_formed(yaml, found);
            prop_assert!(checked.is_ok(), "{checked:?}");
        }
        other => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Err(e) = Stack::from_manifest(&format!("{text}\n")) {
            check_error(&format!("{text}\n"), &e)?;
        }
        check(&text)?;
    }

    #[test]
    fn arbitrary_values_under_the_real_keys_give_typed_errors(
        entries in prop::collection::vec((prop::sample::select(KEYS), value()), 0..8),
    ) {
        let mut yaml = String::from("name: shop\nimage: nginx\n");
        for (k, v) in &entries {
            if *k != "name" && *k != "image" {
                yaml.push_str(&format!("{k}: {v}\n"));
            }
        }
        check(&yaml)?;
    }

    #[test]
    fn valid_manifests_give_names_and_values_aws_accepts(
        name in "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,6}){0,3}",
        profile in prop::sample::select(vec!["dev", "prod"]),
        size in prop::sample::select(vec![(256u32, 512u32), (512, 1024), (1024, 2048), (2048, 8192), (4096, 30720)]),
        port in 1u16..=65535,
        count in 0u32..4,
        team in "[a-zA-Z0-9 _.:/=+@-]{1,40}",
    ) {
        prop_assume!(name.len() <= 32);
        let count = if profile == "prod" { count.clamp(2, 10) } else { count };
        let yaml = format!(
            "name: {name}\nprofile: {profile}\nimage: nginx\nport: {port}\ncpu: {}\nmemory: {}\ncount: {count}\ntags:\n  team: {team:?}\n",
            size.0, size.1
        );
        let Some(stack) = check(&yaml)? else {
            return Err(TestCaseError::fail(format!("rejected\n{yaml}")));
        };
        prop_assert_eq!(stack.network_spec().container_port, port);
        prop_assert!(stack.tags.validate("tags").is_empty());
    }
}

/// Every input in the fuzz corpus (seeds, and any crash found and fixed) keeps the properties.
#[test]
fn the_fuzz_corpus_keeps_the_manifest_properties() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/manifest");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a corpus file");
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if let Err(broken) = check_manifest(text) {
                panic!("{}: {broken}", path.display());
            }
        }
        inputs += 1;
    }
    assert!(inputs >= 5, "{inputs} corpus inputs in {}", dir.display());
}
