//! Stack names and the deterministic names of the resources a stack owns.
//!
//! Every named AWS resource (roles, repositories, clusters, load balancers, target groups,
//! log groups, alarms, dashboards, security groups) gets its name from [`StackName::name`], the
//! one naming function of the project. Names are deterministic, so a second run finds what a
//! first run created, and always satisfy the AWS limits of their kind: a name that would be too
//! long is truncated and suffixed with a short stable hash of the full name, so two long names
//! that share a prefix still differ.

use std::fmt;

use crate::validate::Problem;

/// A validated stack name: 1 to 32 characters, lower-case ASCII letters, digits and single
/// hyphens, starting with a letter and not ending with a hyphen.
///
/// The rules are the intersection of what every resource kind accepts (ECR wants lower case,
/// load balancers forbid a leading `internal-`), so any stack name yields valid resource names.
///
/// ```
/// use ecs_core::StackName;
/// let stack = StackName::new("web-prod").unwrap();
/// assert_eq!(stack.as_str(), "web-prod");
/// assert!(StackName::new("Web").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StackName(String);

impl StackName {
    /// Longest accepted stack name.
    pub const MAX_LEN: usize = 32;

    /// Validates `name` as a stack name; the problem names the field `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, Problem> {
        let name = name.into();
        let problem = |msg: &str| Err(Problem::new("name", format!("stack name {name:?} {msg}")));
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return problem("must be 1 to 32 characters long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return problem("may contain only lower-case letters, digits and hyphens");
        }
        if !name.as_bytes()[0].is_ascii_lowercase() {
            return problem("must start with a lower-case letter");
        }
        if name.ends_with('-') || name.contains("--") {
            return problem("must not end with a hyphen or contain two hyphens in a row");
        }
        if name == "internal" || name.starts_with("internal-") {
            return problem("must not start with \"internal\" (load balancer names may not)");
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The deterministic name of this stack's resource of `kind`, distinguished by `suffix`
    /// (for example `alb`, `execution`, `cpu-high`).
    ///
    /// The result is `<stack>-<suffix>` when that fits the kind's limits; otherwise it is
    /// truncated and ends with `-` and six hex digits of a stable hash of the full name.
    /// `suffix` should be lower-case letters, digits and hyphens; other characters are
    /// replaced by hyphens.
    ///
    /// ```
    /// use ecs_core::{NameKind, StackName};
    /// let stack = StackName::new("shop").unwrap();
    /// assert_eq!(stack.name(NameKind::LoadBalancer, "alb"), "shop-alb");
    /// let long = StackName::new("a-very-long-stack-name-for-tests").unwrap();
    /// let tg = long.name(NameKind::TargetGroup, "web-tg");
    /// assert!(tg.len() <= 32);
    /// ```
    pub fn name(&self, kind: NameKind, suffix: &str) -> String {
        let suffix: String = suffix
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                    c
                } else if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let mut suffix = suffix.trim_matches('-').to_string();
        while suffix.contains("--") {
            suffix = suffix.replace("--", "-");
        }
        let full = if suffix.is_empty() {
            self.0.clone()
        } else {
            format!("{}-{suffix}", self.0)
        };
        fit(&full, kind.max_len())
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl TryFrom<String> for StackName {
    type Error = Problem;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<StackName> for String {
    fn from(value: StackName) -> Self {
        value.0
    }
}

impl std::str::FromStr for StackName {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The kinds of named AWS resources, each with its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// Application load balancer: at most 32 characters.
    LoadBalancer,
    /// Target group: at most 32 characters.
    TargetGroup,
    /// IAM role or policy: at most 64 characters.
    Role,
    /// ECS cluster: at most 255 characters.
    Cluster,
    /// ECS service: at most 255 characters.
    Service,
    /// Task definition family: at most 255 characters.
    TaskFamily,
    /// ECR repository: at most 256 characters (lower case).
    Repository,
    /// CloudWatch alarm: at most 255 characters.
    Alarm,
    /// CloudWatch dashboard: at most 255 characters.
    Dashboard,
    /// CloudWatch Logs log group (without the `/ecs/` prefix): at most 500 characters.
    LogGroup,
    /// EC2 security group name: at most 255 characters.
    SecurityGroup,
    /// The `Name` tag of an EC2 resource: at most 256 characters.
    Ec2Name,
}

impl NameKind {
    /// The longest name AWS accepts for this kind.
    pub fn max_len(self) -> usize {
        match self {
            NameKind::LoadBalancer | NameKind::TargetGroup => 32,
            NameKind::Role => 64,
            NameKind::Cluster
            | NameKind::Service
            | NameKind::TaskFamily
            | NameKind::Alarm
            | NameKind::Dashboard
            | NameKind::SecurityGroup => 255,
            NameKind::Repository | NameKind::Ec2Name => 256,
            NameKind::LogGroup => 500,
        }
    }
}

/// Shortens `full` to at most `max` characters: keeps a prefix, then `-` and six hex digits of
/// a stable hash of the whole of `full`.
fn fit(full: &str, max: usize) -> String {
    if full.len() <= max {
        return full.to_string();
    }
    let hash = format!("{:06x}", stable_hash(full.as_bytes()) & 0xff_ffff);
    let keep = max - hash.len() - 1;
    let prefix = full[..keep].trim_end_matches('-');
    format!("{prefix}-{hash}")
}

/// 64-bit FNV-1a: tiny, stable across releases and platforms (unlike `std`'s hasher).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The region a client was configured with, or `us-east-1` ([`DEFAULT_REGION`]) when it has
/// none: what the layers name in ARNs and console links they build themselves.
///
/// ```
/// assert_eq!(ecs_core::region_or_default(Some(&"eu-west-1")), "eu-west-1");
/// assert_eq!(ecs_core::region_or_default(None::<&String>), "us-east-1");
/// ```
pub fn region_or_default(region: Option<&impl std::fmt::Display>) -> String {
    region.map_or_else(|| DEFAULT_REGION.to_string(), ToString::to_string)
}

/// The region assumed when a client has none configured.
pub const DEFAULT_REGION: &str = "us-east-1";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The AWS rules for a name of `kind` (AWS-NOTES.md, validation tables).
    fn valid_for(kind: NameKind, name: &str) -> bool {
        let len_ok = !name.is_empty() && name.len() <= kind.max_len();
        let charset = |extra: &str| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        len_ok
            && match kind {
                NameKind::LoadBalancer | NameKind::TargetGroup => {
                    charset("-")
                        && !name.starts_with('-')
                        && !name.ends_with('-')
                        && !name.starts_with("internal-")
                }
                NameKind::Role => charset("_+=,.@-"),
                NameKind::Cluster | NameKind::Service | NameKind::TaskFamily => charset("-_"),
                NameKind::Repository => {
                    name.len() >= 2
                        && name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !name.starts_with('-')
                        && !name.ends_with('-')
                        && !name.contains("--")
                }
                _ => charset("-_./"),
            }
    }

    const KINDS: [NameKind; 12] = [
        NameKind::LoadBalancer,
        NameKind::TargetGroup,
        NameKind::Role,
        NameKind::Cluster,
        NameKind::Service,
        NameKind::TaskFamily,
        NameKind::Repository,
        NameKind::Alarm,
        NameKind::Dashboard,
        NameKind::LogGroup,
        NameKind::SecurityGroup,
        NameKind::Ec2Name,
    ];

    fn stack_names() -> impl Strategy<Value = StackName> {
        "[a-z]([a-z0-9]|-[a-z0-9]){0,15}"
            .prop_filter_map("valid stack name", |s| StackName::new(s).ok())
    }

    const SUFFIXES: [&str; 8] = [
        "alb",
        "web-tg",
        "execution",
        "task",
        "cluster",
        "running-tasks-below-desired",
        "alb-sg",
        "repository",
    ];

    proptest! {
        #[test]
        fn any_valid_stack_gives_valid_names(stack in stack_names()) {
            for kind in KINDS {
                for suffix in SUFFIXES {
                    let name = stack.name(kind, suffix);
                    prop_assert!(valid_for(kind, &name), "{kind:?} {name:?}");
                }
            }
        }

        #[test]
        fn names_are_unique_per_role(stack in stack_names()) {
            for kind in KINDS {
                let mut seen = std::collections::HashSet::new();
                for suffix in SUFFIXES {
                    prop_assert!(seen.insert(stack.name(kind, suffix)), "{kind:?} {suffix}");
                }
            }
        }

        #[test]
        fn different_stacks_get_different_names(a in stack_names(), b in stack_names()) {
            prop_assume!(a != b);
            for kind in KINDS {
                for suffix in SUFFIXES {
                    prop_assert_ne!(a.name(kind, suffix), b.name(kind, suffix));
                }
            }
        }

        #[test]
        fn stack_name_validation_never_panics(s in ".{0,40}") {
            if let Ok(name) = StackName::new(s.clone()) {
                prop_assert_eq!(name.as_str(), s.as_str());
                prop_assert!(valid_for(NameKind::LoadBalancer, name.as_str()));
            }
        }
    }

    #[test]
    fn long_names_are_truncated_with_a_stable_hash() {
        let stack = StackName::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
        let a = stack.name(NameKind::TargetGroup, "web");
        let b = stack.name(NameKind::TargetGroup, "api");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(a, stack.name(NameKind::TargetGroup, "web"), "deterministic");
        assert!(a.starts_with("abcdefghijklmnopqrstuvwxy-"), "{a}");
        assert!(a[26..].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_eq!(stack.name(NameKind::Cluster, "web"), format!("{stack}-web"));
    }

    #[test]
    fn stack_name_rules() {
        for bad in [
            "",
            "Web",
            "1web",
            "web-",
            "we--b",
            "internal",
            "internal-x",
            "a_b",
            &"a".repeat(33),
        ] {
            assert!(StackName::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["w", "web", "web-2", "internalx", &"a".repeat(32)] {
            assert!(StackName::new(good).is_ok(), "{good:?} rejected");
        }
        let err = StackName::new("Web").unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.message.contains("lower-case"));
    }

    #[test]
    fn suffix_is_sanitised() {
        let stack = StackName::new("web").unwrap();
        assert_eq!(stack.name(NameKind::Alarm, "CPU High!"), "web-cpu-high");
        assert_eq!(stack.name(NameKind::Repository, "a  b"), "web-a-b");
        assert_eq!(stack.name(NameKind::Cluster, ""), "web");
    }
}
