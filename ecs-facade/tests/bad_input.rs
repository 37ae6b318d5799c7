//! Bad input never panics, and good input gives names AWS accepts: property tests over
//! manifests (arbitrary text, arbitrary values under the real keys, and valid manifests).

use ecs_facade::service::ServiceNames;
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

fn check_error(err: &Error) -> Result<(), TestCaseError> {
    match err {
        Error::Manifest { message } => prop_assert!(!message.is_empty()),
        Error::Invalid(problems) => {
            prop_assert!(!problems.is_empty());
            for p in problems.iter() {
                prop_assert!(!p.field.is_empty() && !p.message.is_empty(), "{p}");
            }
        }
        other => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

/// The rules of AWS-NOTES.md's validation table.
fn names_are_valid(n: &ServiceNames) -> Result<(), TestCaseError> {
    let elb = |s: &str| {
        s.len() <= 32
            && !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    prop_assert!(
        elb(&n.load_balancer) && !n.load_balancer.starts_with("internal-"),
        "{}",
        n.load_balancer
    );
    prop_assert!(elb(&n.target_group), "{}", n.target_group);
    for role in [&n.execution_role, &n.task_role] {
        prop_assert!(!role.is_empty() && role.len() <= 64, "{role}");
        prop_assert!(
            role.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
            "{role}"
        );
    }
    for ecs in [&n.cluster, &n.service, &n.family] {
        prop_assert!(!ecs.is_empty() && ecs.len() <= 255, "{ecs}");
        prop_assert!(
            ecs.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{ecs}"
        );
    }
    let repo = &n.repository;
    prop_assert!(repo.len() >= 2 && repo.len() <= 256, "{repo}");
    prop_assert!(
        repo.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c)),
        "{repo}"
    );
    prop_assert!(
        repo.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric()),
        "{repo}"
    );
    prop_assert!(
        n.log_group.len() <= 512
            && n.log_group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Err(e) = Stack::from_manifest(&format!("{text}\n")) {
            check_error(&e)?;
        }
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
        match Stack::from_manifest(&yaml) {
            Ok(stack) => prop_assert!(stack.validate().is_ok()),
            Err(e) => check_error(&e)?,
        }
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
        let stack = match Stack::from_manifest(&yaml) {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{yaml}"))),
        };
        let names = ServiceNames::new(&stack.stack_name().unwrap(), &stack.service_spec());
        names_are_valid(&names)?;
        prop_assert_eq!(stack.network_spec().container_port, port);
        prop_assert!(stack.tags.validate("tags").is_empty());
    }
}
