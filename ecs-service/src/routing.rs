//! Listener-rule priorities on a load balancer that many services share.
//!
//! Each web service of an environment takes requests from the environment's listeners
//! through its own rules (path patterns and/or host headers). ELB evaluates rules by
//! priority, lowest first, and the first match wins; a priority is unique per listener. This
//! module decides the priorities, purely from what the listener already has:
//!
//! - **Specificity order.** A route's priority lies in a band given by its own conditions
//!   only ([`Specificity`]): host and path together before host alone before path alone;
//!   within that, a longer literal prefix (the part before the first `*` or `?`) before a
//!   shorter one, and an exact pattern before a wildcard one with the same prefix. So
//!   `/api/admin/*` lands before `/api/*` whichever service is deployed first, and no
//!   service's rule ever has to be renumbered for another's. Hosts rank by their literal
//!   characters (`*.api.example.com` before `*.example.com`); with a path too, the path
//!   ranks first and the host only by whether it is exact (two wildcard hosts on the same
//!   path share a band: pin one's `priority` when they overlap).
//! - **Stable.** A route whose rule exists (same owner, same conditions) keeps its priority;
//!   a new one starts at a slot of its band given by a hash of its conditions (so two
//!   services deployed at once rarely pick the same) and takes the next free one.
//! - **Pinned.** `priority: N` is used as given, and refused when another owner's rule holds
//!   it.
//! - **Conflicts are refused before any change**: a route whose conditions are identical to
//!   another owner's rule ([`RoutingError::Identical`]), or two routes of one service that
//!   are identical.
//! - **The quota**: at most [`RULES_PER_LOAD_BALANCER`] rules on one load balancer (every
//!   listener, defaults excluded). A deploy that would pass it is refused
//!   ([`RoutingError::QuotaExceeded`]); one that comes within [`NEAR_QUOTA`] of it says so
//!   ([`Allocation::warning`]).
//!
//! A concurrent deploy of another service can still take a free priority between this
//! read and this create: ELB then answers `PriorityInUse`, and the caller reads the
//! listener again and allocates again.
//!
//! ```
//! use ecs_service::routing::{allocate, ExistingRule, Route};
//!
//! // Another service already serves /api/* at the priority its band gave it.
//! let api = allocate("shop-api", &[Route::paths(["/api/*"])], &[]).unwrap();
//! let existing = [ExistingRule::new(api.priorities[0], ["/api/*"], [] as [&str; 0], Some("shop-api"))];
//! // A more specific path gets a lower number, without touching the first rule.
//! let admin = allocate("shop-admin", &[Route::paths(["/api/admin/*"])], &existing).unwrap();
//! assert!(admin.priorities[0] < api.priorities[0]);
//! ```

use std::collections::BTreeSet;
use std::fmt;

use ecs_core::stable_hash;

/// The most rules AWS allows on one application load balancer, every listener's together and
/// the default rules excluded (a quota AWS can raise on request).
pub const RULES_PER_LOAD_BALANCER: usize = 100;
/// How close to [`RULES_PER_LOAD_BALANCER`] a deploy warns.
pub const NEAR_QUOTA: usize = 10;
/// The lowest rule priority ELB accepts.
pub const MIN_PRIORITY: u32 = 1;
/// The highest rule priority ELB accepts.
pub const MAX_PRIORITY: u32 = 50_000;
/// The most condition values (paths plus hosts) ELB accepts in one rule.
pub const MAX_CONDITION_VALUES: usize = 5;

/// How many priorities each specificity band has.
const BAND_WIDTH: u32 = 50;
/// Literal prefixes longer than this rank as this long.
const LITERAL_CAP: usize = 100;
/// Keys per literal length: wildcard, then exact.
const KEYS: u32 = (LITERAL_CAP as u32 + 1) * 2;

/// What requests a web service takes from the shared listener: path patterns and/or host
/// headers (a request must match one of the paths, when there are paths, and one of the
/// hosts, when there are hosts), and an optional pinned priority.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Path patterns (`/api/*`; case-sensitive, `*` and `?` wildcards).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Host headers (`api.example.com`, `*.example.com`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// A pinned priority (1–50000) instead of an allocated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

impl Route {
    /// A route on these path patterns.
    pub fn paths<S: Into<String>>(paths: impl IntoIterator<Item = S>) -> Self {
        Self {
            paths: paths.into_iter().map(Into::into).collect(),
            hosts: Vec::new(),
            priority: None,
        }
    }

    /// A route on these host headers.
    pub fn hosts<S: Into<String>>(hosts: impl IntoIterator<Item = S>) -> Self {
        Self {
            paths: Vec::new(),
            hosts: hosts.into_iter().map(Into::into).collect(),
            priority: None,
        }
    }

    /// This route, also requiring one of these host headers.
    #[must_use]
    pub fn with_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// This route at a pinned priority.
    #[must_use]
    pub fn pinned(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Where a request of this route goes, for a URL: its first exact host (when it has
    /// one) and the literal start of its first path (`/api/*` → `/api/`; `/` without one).
    pub fn url_parts(&self) -> (Option<&str>, String) {
        let host = self
            .hosts
            .iter()
            .find(|h| !h.contains(['*', '?']))
            .map(String::as_str);
        let path = self.paths.first().map_or("/".to_string(), |p| {
            let literal = p.find(['*', '?']).map_or(p.as_str(), |i| &p[..i]);
            match literal.starts_with('/') {
                true => literal.to_string(),
                false => format!("/{literal}"),
            }
        });
        (host, path)
    }

    /// Its conditions in a comparable form (sorted, duplicates removed).
    pub fn conditions(&self) -> Conditions {
        Conditions::new(&self.paths, &self.hosts)
    }

    /// How specific it is.
    pub fn specificity(&self) -> Specificity {
        self.conditions().specificity()
    }

    /// The problems of this route, each naming `field` (`routes[0].paths` …): no condition,
    /// more than [`MAX_CONDITION_VALUES`] values, an empty or malformed pattern, a pinned
    /// priority out of 1–50000.
    pub fn validate(&self, field: &str) -> ecs_core::Problems {
        let mut problems = ecs_core::Problems::default();
        if self.paths.is_empty() && self.hosts.is_empty() {
            problems.push(
                field,
                "a route needs at least one path pattern or host header (use `/*` for every path)",
            );
        }
        let values = self.paths.len() + self.hosts.len();
        if values > MAX_CONDITION_VALUES {
            problems.push(
                field,
                format!(
                    "a rule takes at most {MAX_CONDITION_VALUES} paths and hosts together, not {values}"
                ),
            );
        }
        for (i, p) in self.paths.iter().enumerate() {
            let at = format!("{field}.paths[{i}]");
            if !p.starts_with('/') && !p.starts_with('*') {
                problems.push(&at, format!("path pattern `{p}` must start with `/`"));
            }
            if p.len() > 128 {
                problems.push(&at, "a path pattern has at most 128 characters");
            }
            if p.chars().any(char::is_whitespace) {
                problems.push(&at, format!("path pattern `{p}` contains white space"));
            }
        }
        for (i, h) in self.hosts.iter().enumerate() {
            let at = format!("{field}.hosts[{i}]");
            let ok = !h.is_empty()
                && h.len() <= 128
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.*?".contains(c));
            if !ok {
                problems.push(
                    &at,
                    format!(
                        "host `{h}` must be 1–128 letters, digits, `-`, `.`, `*` or `?` (a name like api.example.com)"
                    ),
                );
            }
        }
        if let Some(p) = self.priority {
            if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&p) {
                problems.push(
                    format!("{field}.priority"),
                    format!("a priority is {MIN_PRIORITY}–{MAX_PRIORITY}, not {p}"),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for p in &self.paths {
            if !seen.insert(p) {
                problems.push(format!("{field}.paths"), format!("`{p}` is listed twice"));
            }
        }
        problems
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.conditions().fmt(f)
    }
}

/// A rule's conditions, sorted and without duplicates: two rules match the same requests
/// when their conditions are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Conditions {
    /// Path patterns, sorted.
    pub paths: Vec<String>,
    /// Host headers, lower-cased (host matching ignores case) and sorted.
    pub hosts: Vec<String>,
}

impl Conditions {
    /// The comparable form of these paths and hosts.
    pub fn new(paths: &[String], hosts: &[String]) -> Self {
        let paths: BTreeSet<String> = paths.iter().cloned().collect();
        let hosts: BTreeSet<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        Self {
            paths: paths.into_iter().collect(),
            hosts: hosts.into_iter().collect(),
        }
    }

    /// How specific a rule with these conditions is: its least specific path and host decide
    /// (a rule on `/api/*` and `/api/admin/*` catches all of `/api/*`).
    pub fn specificity(&self) -> Specificity {
        Specificity {
            path: self.paths.iter().map(|v| path_key(v)).min(),
            host: self.hosts.iter().map(|v| host_key(v)).min(),
        }
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.hosts.is_empty() {
            parts.push(format!("host {}", self.hosts.join(" or ")));
        }
        if !self.paths.is_empty() {
            parts.push(format!("path {}", self.paths.join(" or ")));
        }
        f.write_str(&parts.join(" and "))
    }
}

/// The rank of a path pattern: twice its literal prefix's length (capped), plus one when it
/// has no wildcard at all (`/api/admin/*` ranks above `/api/*`, `/health` above `/health*`).
fn path_key(pattern: &str) -> u32 {
    let literal = pattern
        .find(['*', '?'])
        .map_or(pattern.len(), |i| pattern[..i].len());
    rank(literal, !pattern.contains(['*', '?']))
}

/// The rank of a host pattern: twice the number of its literal characters (capped), plus one
/// when it has no wildcard (`*.api.example.com` ranks above `*.example.com`; a host's
/// wildcard is usually in front, so its literal part is a suffix, not a prefix).
fn host_key(pattern: &str) -> u32 {
    let literal = pattern.chars().filter(|c| !matches!(c, '*' | '?')).count();
    rank(literal, !pattern.contains(['*', '?']))
}

fn rank(literal: usize, exact: bool) -> u32 {
    (literal.min(LITERAL_CAP) as u32) * 2 + u32::from(exact)
}

/// How specific a route is; a greater one gets a lower priority number (it is evaluated
/// first). Host and path together rank above host alone, which ranks above path alone;
/// within those, longer literal prefixes rank higher, and exact patterns above wildcard ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Specificity {
    path: Option<u32>,
    host: Option<u32>,
}

impl Specificity {
    /// The band's index: 0 is the most specific.
    fn band(self) -> u32 {
        // Host and path: KEYS × 2 bands (the path decides, then whether the host is exact);
        // then host alone: KEYS; then path alone: KEYS.
        match (self.host, self.path) {
            (Some(h), Some(p)) => (KEYS - 1 - p) * 2 + u32::from(h % 2 == 0),
            (Some(h), None) => KEYS * 2 + (KEYS - 1 - h),
            (None, Some(p)) => KEYS * 3 + (KEYS - 1 - p),
            (None, None) => KEYS * 4 - 1,
        }
    }

    /// The first priority of its band.
    pub fn first_priority(self) -> u32 {
        MIN_PRIORITY + self.band() * BAND_WIDTH
    }
}

impl PartialOrd for Specificity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Specificity {
    /// More specific is greater.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.band().cmp(&self.band())
    }
}

/// A rule the listeners have, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRule {
    /// Its priority.
    pub priority: u32,
    /// Its conditions.
    pub conditions: Conditions,
    /// Who owns it (its `ecs:stack` tag), when it has an owner tag.
    pub owner: Option<String>,
}

impl ExistingRule {
    /// A rule at `priority` on these paths and hosts, owned by `owner`.
    pub fn new<P: Into<String>, H: Into<String>>(
        priority: u32,
        paths: impl IntoIterator<Item = P>,
        hosts: impl IntoIterator<Item = H>,
        owner: Option<&str>,
    ) -> Self {
        let paths: Vec<String> = paths.into_iter().map(Into::into).collect();
        let hosts: Vec<String> = hosts.into_iter().map(Into::into).collect();
        Self {
            priority,
            conditions: Conditions::new(&paths, &hosts),
            owner: owner.map(str::to_string),
        }
    }
}

/// The priorities for a service's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allocation {
    /// One per route, in the routes' order.
    pub priorities: Vec<u32>,
    /// How many rules the load balancer has once the routes are in place (the service's rules
    /// for routes it no longer has are gone).
    pub rules_after: usize,
    /// Said when the load balancer comes within [`NEAR_QUOTA`] rules of its quota.
    pub warning: Option<String>,
}

/// Why routes cannot be given priorities. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// A route matches exactly what another owner's rule matches.
    #[error("the route on {conditions} is already served by {} at priority {priority}; two services cannot take the same requests", owner_name(.owner))]
    Identical {
        /// The route's conditions.
        conditions: Conditions,
        /// The rule's owner (`None`: a rule without an owner tag, not made by this project).
        owner: Option<String>,
        /// The rule's priority.
        priority: u32,
    },
    /// Two routes of the service are the same.
    #[error("the service lists the route on {conditions} twice")]
    Duplicate {
        /// The route's conditions.
        conditions: Conditions,
    },
    /// A pinned priority is another owner's rule's.
    #[error("priority {priority} (pinned for {conditions}) is taken by {}'s rule on {other}", owner_name(.owner))]
    PinnedTaken {
        /// The pinned priority.
        priority: u32,
        /// The route's conditions.
        conditions: Conditions,
        /// The owner of the rule at that priority.
        owner: Option<String>,
        /// That rule's conditions.
        other: Conditions,
    },
    /// Two routes of the service pin the same priority.
    #[error("priority {priority} is pinned for two routes")]
    PinnedTwice {
        /// The priority.
        priority: u32,
    },
    /// The load balancer would have more rules than its quota.
    #[error("the load balancer would have {rules} listener rules; its quota is {quota} (ask AWS to raise `Rules per Application Load Balancer`, or route on fewer paths)")]
    QuotaExceeded {
        /// The rules it would have.
        rules: usize,
        /// The quota.
        quota: usize,
    },
    /// No free priority is left after the route's band.
    #[error("no free priority is left for the route on {conditions}")]
    NoFreePriority {
        /// The route's conditions.
        conditions: Conditions,
    },
}

fn owner_name(owner: &Option<String>) -> String {
    match owner {
        Some(o) => format!("`{o}`"),
        None => "a rule this project did not make".to_string(),
    }
}

/// Priorities for `owner`'s `routes`, given the rules the load balancer's listeners have (one
/// listener's, or the union of every listener the routes go on: one priority serves a route
/// on each). See the [module](self) docs for the rules.
pub fn allocate(
    owner: &str,
    routes: &[Route],
    existing: &[ExistingRule],
) -> Result<Allocation, RoutingError> {
    allocate_on(owner, routes, existing, 1, 0)
}

/// [`allocate`] for routes that each get a rule on `listener_count` listeners, on a load
/// balancer whose other listeners hold `rules_elsewhere` rules.
pub fn allocate_on(
    owner: &str,
    routes: &[Route],
    existing: &[ExistingRule],
    listener_count: usize,
    rules_elsewhere: usize,
) -> Result<Allocation, RoutingError> {
    let mine = |r: &ExistingRule| r.owner.as_deref() == Some(owner);
    // Refusals first: duplicates, identical conditions, pins taken.
    let mut seen = BTreeSet::new();
    let mut pins = BTreeSet::new();
    for route in routes {
        let conditions = route.conditions();
        if !seen.insert(conditions.clone()) {
            return Err(RoutingError::Duplicate { conditions });
        }
        if let Some(other) = existing
            .iter()
            .find(|r| !mine(r) && r.conditions == conditions)
        {
            return Err(RoutingError::Identical {
                conditions,
                owner: other.owner.clone(),
                priority: other.priority,
            });
        }
        if let Some(p) = route.priority {
            if !pins.insert(p) {
                return Err(RoutingError::PinnedTwice { priority: p });
            }
            if let Some(other) = existing.iter().find(|r| r.priority == p && !mine(r)) {
                return Err(RoutingError::PinnedTaken {
                    priority: p,
                    conditions,
                    owner: other.owner.clone(),
                    other: other.conditions.clone(),
                });
            }
        }
    }

    // Taken: every other owner's rule, the pins, and this owner's rules that stay (same
    // conditions, kept at their priority, unless pinned elsewhere). This owner's other rules
    // are taken too while they exist: the new rules are made before the old are deleted.
    let mut taken: BTreeSet<u32> = existing.iter().map(|r| r.priority).collect();
    taken.extend(pins.iter().copied());
    let mut priorities = Vec::with_capacity(routes.len());
    let mut kept = 0usize;
    for route in routes {
        let conditions = route.conditions();
        if let Some(p) = route.priority {
            let keeps = existing
                .iter()
                .any(|r| mine(r) && r.priority == p && r.conditions == conditions);
            kept += usize::from(keeps);
            priorities.push(p);
            continue;
        }
        if let Some(r) = existing
            .iter()
            .find(|r| mine(r) && r.conditions == conditions && !pins.contains(&r.priority))
        {
            kept += 1;
            priorities.push(r.priority);
            continue;
        }
        let p = free_priority(&conditions, &taken).ok_or_else(|| RoutingError::NoFreePriority {
            conditions: conditions.clone(),
        })?;
        taken.insert(p);
        priorities.push(p);
    }

    // The quota: the others' rules, plus this owner's routes, on every listener they go on.
    let others = existing.iter().filter(|r| !mine(r)).count() * listener_count.max(1);
    let rules_after = rules_elsewhere + others + routes.len() * listener_count.max(1);
    // While new rules are made, the old ones of this owner still exist.
    let mine_now = existing.iter().filter(|r| mine(r)).count();
    let peak = rules_after + mine_now.saturating_sub(kept) * listener_count.max(1);
    if peak > RULES_PER_LOAD_BALANCER {
        return Err(RoutingError::QuotaExceeded {
            rules: peak,
            quota: RULES_PER_LOAD_BALANCER,
        });
    }
    let warning = (peak + NEAR_QUOTA > RULES_PER_LOAD_BALANCER).then(|| {
        format!(
            "the load balancer will have {peak} of its {RULES_PER_LOAD_BALANCER} listener rules; ask AWS to raise `Rules per Application Load Balancer` before adding services"
        )
    });
    Ok(Allocation {
        priorities,
        rules_after,
        warning,
    })
}

/// The first free priority of the conditions' band, starting at a slot given by their hash
/// and going round the band; a full band goes on into the less specific ones after it. What
/// a create that lost a race (`PriorityInUse`) takes next, with the listener read again.
pub fn free_priority(conditions: &Conditions, taken: &BTreeSet<u32>) -> Option<u32> {
    let first = conditions.specificity().first_priority();
    let key = format!(
        "{}|{}",
        conditions.paths.join(","),
        conditions.hosts.join(",")
    );
    let start = (stable_hash(key.as_bytes()) % u64::from(BAND_WIDTH)) as u32;
    let in_band = (0..BAND_WIDTH).map(|i| first + (start + i) % BAND_WIDTH);
    let after = (first + BAND_WIDTH)..=MAX_PRIORITY;
    in_band.chain(after).find(|p| !taken.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(paths: &[&str]) -> Route {
        Route::paths(paths.iter().copied())
    }

    #[test]
    fn bands_stay_inside_the_priority_range() {
        let most = Specificity {
            path: Some(KEYS - 1),
            host: Some(KEYS - 1),
        };
        let least = Specificity {
            path: Some(0),
            host: None,
        };
        assert_eq!(most.first_priority(), 1);
        assert!(least.first_priority() + BAND_WIDTH - 1 <= MAX_PRIORITY);
        assert!(most > least);
    }

    #[test]
    fn specificity_ranks_host_and_path_then_host_then_path() {
        let both = Route::paths(["/a/*"]).with_hosts(["x.example.com"]);
        let host = Route::hosts(["x.example.com"]);
        let path = Route::paths(["/a/b/c/d/e/f/*"]);
        assert!(both.specificity() > host.specificity());
        assert!(host.specificity() > path.specificity());
        assert!(
            Route::hosts(["x.example.com"]).specificity()
                > Route::hosts(["*.example.com"]).specificity()
        );
        assert!(p(&["/health"]).specificity() > p(&["/health*"]).specificity());
        assert!(p(&["/api/admin/*"]).specificity() > p(&["/api/*"]).specificity());
        assert!(p(&["/api/*"]).specificity() > p(&["/*"]).specificity());
        assert!(
            Route::hosts(["*.api.example.com"]).specificity()
                > Route::hosts(["*.example.com"]).specificity()
        );
        // The least specific pattern decides.
        assert_eq!(
            p(&["/api/admin/*", "/*"]).specificity(),
            p(&["/*"]).specificity()
        );
    }

    #[test]
    fn kept_pinned_and_moved_routes() {
        let existing = vec![
            ExistingRule::new(7, ["/a/*"], [] as [&str; 0], Some("me")),
            ExistingRule::new(9, ["/old/*"], [] as [&str; 0], Some("me")),
        ];
        let out = allocate("me", &[p(&["/a/*"]), p(&["/new/*"]).pinned(9)], &existing).unwrap();
        assert_eq!(out.priorities, vec![7, 9]);
        // The old rule at 9 is this owner's: it gives way (its conditions change in place).
        assert_eq!(out.rules_after, 2);
    }

    #[test]
    fn refusals() {
        let other = vec![ExistingRule::new(
            10,
            ["/a/*"],
            [] as [&str; 0],
            Some("them"),
        )];
        assert!(matches!(
            allocate("me", &[p(&["/a/*"])], &other),
            Err(RoutingError::Identical { priority: 10, .. })
        ));
        assert!(matches!(
            allocate("me", &[p(&["/b/*"]).pinned(10)], &other),
            Err(RoutingError::PinnedTaken { priority: 10, .. })
        ));
        assert!(matches!(
            allocate("me", &[p(&["/b/*"]), p(&["/b/*"])], &[]),
            Err(RoutingError::Duplicate { .. })
        ));
        assert!(matches!(
            allocate("me", &[p(&["/b/*"]).pinned(3), p(&["/c/*"]).pinned(3)], &[]),
            Err(RoutingError::PinnedTwice { priority: 3 })
        ));
        let unowned = vec![ExistingRule::new(4, ["/z"], [] as [&str; 0], None)];
        let e = allocate("me", &[p(&["/z"])], &unowned).unwrap_err();
        assert!(
            e.to_string().contains("a rule this project did not make"),
            "{e}"
        );
    }

    #[test]
    fn the_quota_is_refused_and_approached_with_a_warning() {
        let full: Vec<ExistingRule> = (0..95)
            .map(|i| {
                ExistingRule::new(
                    1000 + i,
                    [format!("/s{i}/*")],
                    [] as [&str; 0],
                    Some("them"),
                )
            })
            .collect();
        let near = allocate("me", &[p(&["/me/*"])], &full).unwrap();
        assert_eq!(near.rules_after, 96);
        assert!(near.warning.unwrap().contains("96 of its 100"));
        let routes: Vec<Route> = (0..6).map(|i| p(&[&format!("/me{i}/*")])).collect();
        assert_eq!(
            allocate("me", &routes, &full),
            Err(RoutingError::QuotaExceeded {
                rules: 101,
                quota: 100
            })
        );
        // Two listeners double every rule.
        let some: Vec<ExistingRule> = full.into_iter().take(45).collect();
        let over = allocate_on("me", &routes, &some, 2, 0).unwrap_err();
        assert_eq!(
            over,
            RoutingError::QuotaExceeded {
                rules: 102,
                quota: 100
            }
        );
        assert!(allocate("me", &[p(&["/a/*"])], &[])
            .unwrap()
            .warning
            .is_none());
    }

    #[test]
    fn validation_names_the_field() {
        let problems = Route::hosts(["bad host"]).validate("services.web.routes[0]");
        assert!(
            problems
                .to_string()
                .contains("services.web.routes[0].hosts[0]"),
            "{problems}"
        );
        let none = Route::paths(Vec::<String>::new()).validate("r");
        assert!(none.to_string().contains("at least one"), "{none}");
        let pin = p(&["/a"]).pinned(50_001).validate("r");
        assert!(pin.to_string().contains("r.priority"), "{pin}");
        let many = p(&["/a", "/b", "/c", "/d", "/e", "/f"]).validate("r");
        assert!(many.to_string().contains("at most 5"), "{many}");
        assert!(p(&["/api/*"])
            .with_hosts(["api.example.com"])
            .validate("r")
            .is_empty());
    }
}
