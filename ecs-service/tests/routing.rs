//! Property tests of listener-rule priority allocation on a shared load balancer: any set of
//! services with distinct paths and hosts, deployed one after the other in any order, gets
//! distinct priorities in ELB's range, the same ones on every redeploy, and a more specific
//! route is always evaluated before a less specific one.

use std::collections::{BTreeMap, BTreeSet};

use ecs_service::routing::{allocate, Conditions, ExistingRule, Route, MAX_PRIORITY, MIN_PRIORITY};
use proptest::prelude::*;

/// A route: path only, host only, or both; exact or wildcard.
fn route() -> impl Strategy<Value = Route> {
    let segment = prop::sample::select(vec!["api", "admin", "v1", "v2", "orders", "img", "a"]);
    let path = (prop::collection::vec(segment, 0..4), any::<bool>()).prop_map(|(segs, wild)| {
        let base = format!("/{}", segs.join("/"));
        match (wild, base.as_str()) {
            (true, "/") => "/*".to_string(),
            (true, _) => format!("{base}/*"),
            (false, _) => base,
        }
    });
    let host = (
        prop::sample::select(vec!["api", "www", "shop", "admin"]),
        any::<bool>(),
    )
        .prop_map(|(h, wild)| match wild {
            true => format!("*.{h}.example.com"),
            false => format!("{h}.example.com"),
        });
    prop_oneof![
        path.clone().prop_map(|p| Route::paths([p])),
        host.clone().prop_map(|h| Route::hosts([h])),
        (path, host).prop_map(|(p, h)| Route::paths([p]).with_hosts([h])),
    ]
}

/// Up to 8 services of 1–3 routes each, no two routes alike.
fn services() -> impl Strategy<Value = Vec<(String, Vec<Route>)>> {
    prop::collection::vec(prop::collection::vec(route(), 1..4), 1..9).prop_map(|services| {
        let mut seen = BTreeSet::new();
        services
            .into_iter()
            .enumerate()
            .map(|(i, routes)| {
                let routes: Vec<Route> = routes
                    .into_iter()
                    .filter(|r| seen.insert(r.conditions()))
                    .collect();
                (format!("svc{i}"), routes)
            })
            .filter(|(_, routes)| !routes.is_empty())
            .collect()
    })
}

/// Deploys the services one after the other in `order`, each seeing the rules made before it.
fn deploy_all(
    services: &[(String, Vec<Route>)],
    order: &[usize],
) -> (Vec<ExistingRule>, BTreeMap<Conditions, u32>) {
    let mut rules: Vec<ExistingRule> = Vec::new();
    for &i in order {
        let (owner, routes) = &services[i];
        let out = allocate(owner, routes, &rules).expect("distinct routes are allocated");
        for (r, p) in routes.iter().zip(&out.priorities) {
            rules.push(ExistingRule {
                priority: *p,
                conditions: r.conditions(),
                owner: Some(owner.clone()),
            });
        }
    }
    let by_conditions = rules
        .iter()
        .map(|r| (r.conditions.clone(), r.priority))
        .collect();
    (rules, by_conditions)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn distinct_routes_get_distinct_stable_ordered_priorities(
        services in services(),
        seed in any::<u64>(),
    ) {
        let n = services.len();
        let order: Vec<usize> = (0..n).collect();
        // Another deploy order: rotated and reversed by the seed.
        let mut other: Vec<usize> = order.iter().map(|i| (i + seed as usize % n.max(1)) % n).collect();
        if seed % 2 == 0 {
            other.reverse();
        }
        let (rules, first) = deploy_all(&services, &order);

        // Distinct, and within ELB's range.
        let priorities: BTreeSet<u32> = rules.iter().map(|r| r.priority).collect();
        prop_assert_eq!(priorities.len(), rules.len());
        prop_assert!(rules.iter().all(|r| (MIN_PRIORITY..=MAX_PRIORITY).contains(&r.priority)));

        // Stable: redeploying any service, with every rule in place, keeps its priorities.
        for (owner, routes) in &services {
            let again = allocate(owner, routes, &rules).unwrap();
            let before: Vec<u32> = routes.iter().map(|r| first[&r.conditions()]).collect();
            prop_assert_eq!(again.priorities, before);
        }

        // Ordered: a more specific route comes first, whatever the deploy order.
        let (_, second) = deploy_all(&services, &other);
        for by in [&first, &second] {
            for (a, pa) in by.iter() {
                for (b, pb) in by.iter() {
                    if a.specificity() > b.specificity() {
                        prop_assert!(pa < pb, "{a} ({pa}) should come before {b} ({pb})");
                    }
                }
            }
        }
    }

    #[test]
    fn a_route_identical_to_another_services_is_refused(services in services()) {
        let order: Vec<usize> = (0..services.len()).collect();
        let (rules, _) = deploy_all(&services, &order);
        let (owner, routes) = &services[0];
        // Any other owner asking for one of these routes is refused, naming the owner.
        let err = allocate("intruder", &routes[..1], &rules).unwrap_err();
        prop_assert!(err.to_string().contains(&format!("`{owner}`")), "{}", err);
    }
}

#[test]
fn a_prefix_and_its_extension_are_ordered_either_way_round() {
    let admin = Route::paths(["/api/admin/*"]);
    let api = Route::paths(["/api/*"]);
    let first = allocate("api", std::slice::from_ref(&api), &[])
        .unwrap()
        .priorities[0];
    let after = allocate(
        "admin",
        std::slice::from_ref(&admin),
        &[ExistingRule::new(
            first,
            ["/api/*"],
            [] as [&str; 0],
            Some("api"),
        )],
    )
    .unwrap()
    .priorities[0];
    assert!(after < first);
    let admin_first = allocate("admin", &[admin], &[]).unwrap().priorities[0];
    let api_after = allocate(
        "api",
        &[api],
        &[ExistingRule::new(
            admin_first,
            ["/api/admin/*"],
            [] as [&str; 0],
            Some("admin"),
        )],
    )
    .unwrap()
    .priorities[0];
    assert!(admin_first < api_after);
    assert_eq!((after, first), (admin_first, api_after));
}

#[test]
fn a_narrower_wildcard_host_comes_first_either_way_round() {
    let narrow = Route::hosts(["*.api.example.com"]);
    let broad = Route::hosts(["*.example.com"]);
    for (first, second) in [(&narrow, &broad), (&broad, &narrow)] {
        let p1 = allocate("one", std::slice::from_ref(first), &[])
            .unwrap()
            .priorities[0];
        let c1 = first.conditions();
        let existing = [ExistingRule {
            priority: p1,
            conditions: c1,
            owner: Some("one".into()),
        }];
        let p2 = allocate("two", std::slice::from_ref(second), &existing)
            .unwrap()
            .priorities[0];
        let (narrow_p, broad_p) = if std::ptr::eq(first, &narrow) {
            (p1, p2)
        } else {
            (p2, p1)
        };
        assert!(narrow_p < broad_p, "{narrow_p} {broad_p}");
    }
}
