//! Ownership tags.
//!
//! Every taggable resource a stack creates carries [`OWNER_TAG`]` = <stack name>` (and, for
//! resources found by tag rather than by name, [`RESOURCE_TAG`]` = <logical id>`), applied at
//! creation so a crash can never leave an untagged orphan. Nothing without the stack's owner
//! tag is ever changed or deleted. Users add their own tags with [`Tags`].

use std::collections::BTreeMap;
use std::fmt;

use crate::names::StackName;
use crate::plan::FieldDiff;
use crate::validate::Problems;

/// Tag key whose value is the name of the stack that owns the resource.
pub const OWNER_TAG: &str = "ecs:stack";
/// Tag key whose value is the logical id of the resource inside its stack
/// (e.g. `subnet/private/us-east-1a`), for resources that are found by tag.
pub const RESOURCE_TAG: &str = "ecs:resource";
/// Prefix reserved for this project's own tag keys.
pub const RESERVED_PREFIX: &str = "ecs:";
/// The most tags AWS allows on one resource.
pub const MAX_TAGS_PER_RESOURCE: usize = 50;
/// How many of those the project uses itself (owner, logical id, `Name`).
pub const RESERVED_TAG_COUNT: usize = 3;

/// A set of tags (key → value), ordered by key.
///
/// ```
/// use ecs_core::Tags;
/// let tags = Tags::new().with("team", "payments").with("env", "prod");
/// assert!(tags.validate("tags").is_empty());
/// assert_eq!(tags.get("team"), Some("payments"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// These tags plus `key = value` (replacing an earlier value of `key`).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key = value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Checks user tags against the AWS limits: keys 1–128 characters, values at most 256,
    /// letters, digits, spaces and `_ . : / = + - @` only, no `aws:` prefix, no keys under the
    /// reserved `ecs:` prefix, and at most 47 tags (AWS allows 50 per resource and the project
    /// uses 3). Each problem names `field["key"]`.
    pub fn validate(&self, field: &str) -> Problems {
        let mut problems = Problems::new();
        let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
        for (key, value) in &self.0 {
            let at = format!("{field}[{key:?}]");
            if key.is_empty() || key.chars().count() > 128 {
                problems.push(&at, "tag key must be 1 to 128 characters long");
            }
            if value.chars().count() > 256 {
                problems.push(&at, "tag value must be at most 256 characters long");
            }
            if !key.chars().all(allowed) || !value.chars().all(allowed) {
                problems.push(
                    &at,
                    "tags may contain only letters, digits, spaces and _ . : / = + - @",
                );
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                problems.push(&at, "tag keys starting with \"aws:\" are reserved by AWS");
            }
            if key.starts_with(RESERVED_PREFIX) {
                problems.push(
                    &at,
                    format!("tag keys starting with {RESERVED_PREFIX:?} are reserved for ownership tags"),
                );
            }
        }
        let max = MAX_TAGS_PER_RESOURCE - RESERVED_TAG_COUNT;
        if self.0.len() > max {
            problems.push(
                field,
                format!("at most {max} tags are allowed ({} given)", self.0.len()),
            );
        }
        problems
    }

    /// The full tag set of a resource owned by `stack`: the user's tags, the owner tag, and
    /// when given the logical id and the `Name` tag.
    #[must_use]
    pub fn for_resource(
        &self,
        stack: &StackName,
        logical_id: Option<&str>,
        name: Option<&str>,
    ) -> Tags {
        let mut tags = self.clone();
        tags.insert(OWNER_TAG, stack.as_str());
        if let Some(id) = logical_id {
            tags.insert(RESOURCE_TAG, id);
        }
        if let Some(name) = name {
            tags.insert("Name", name);
        }
        tags
    }

    /// Tags from the key/value pairs an SDK returns (the one conversion every layer uses): a
    /// pair without a key is skipped, a missing value is empty.
    ///
    /// ```
    /// use ecs_core::Tags;
    /// let tags = Tags::from_pairs([(Some("team"), Some("a")), (None, Some("x")), (Some("k"), None)]);
    /// assert_eq!(tags, Tags::new().with("team", "a").with("k", ""));
    /// ```
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    ) -> Tags {
        pairs
            .into_iter()
            .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
            .collect()
    }

    /// The tags as an SDK's own tag type, each built by `make` from its key and value (the one
    /// conversion the other way), e.g. `tags.to_sdk(|k, v| Tag::builder().key(k).value(v).build())`.
    pub fn to_sdk<T>(&self, make: impl Fn(&str, &str) -> T) -> Vec<T> {
        self.iter().map(|(k, v)| make(k, v)).collect()
    }

    /// How the `live` tags differ from these (the desired ones); `None` when they match. AWS's
    /// own tags (keys starting with `aws:`) are never compared: AWS sets them and no caller may
    /// remove them.
    ///
    /// ```
    /// use ecs_core::Tags;
    /// let desired = Tags::new().with("ecs:stack", "web").with("team", "b");
    /// let live = Tags::new()
    ///     .with("ecs:stack", "web")
    ///     .with("team", "a")
    ///     .with("extra", "x")
    ///     .with("aws:cloudformation:stack-name", "s");
    /// let diff = desired.diff_from(&live).unwrap();
    /// assert_eq!(diff.set, Tags::new().with("team", "b"));
    /// assert_eq!(diff.unset, vec!["extra".to_string()]);
    /// assert_eq!(diff.to_string(), "tags: {extra=x, team=a} → {team=b}");
    /// assert!(desired.diff_from(&desired).is_none());
    /// ```
    pub fn diff_from(&self, live: &Tags) -> Option<TagDiff> {
        let set: Tags = self
            .iter()
            .filter(|(k, v)| live.get(k) != Some(*v))
            .collect();
        let unset: Vec<String> = live
            .iter()
            .filter(|(k, _)| !is_aws_key(k) && self.get(k).is_none())
            .map(|(k, _)| k.to_string())
            .collect();
        if set.is_empty() && unset.is_empty() {
            return None;
        }
        let was: Tags = live
            .iter()
            .filter(|(k, v)| !is_aws_key(k) && self.get(k) != Some(*v))
            .collect();
        Some(TagDiff { set, unset, was })
    }
}

/// Whether `key` is one of AWS's own tag keys (`aws:…`), which only AWS sets.
fn is_aws_key(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("aws:")
}

/// How a live resource's tags differ from the ones the stack wants ([`Tags::diff_from`]): the
/// typed difference every taggable kind reconciles with its service's tag and untag calls, and
/// that the plan shows as `tags: {old} → {new}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TagDiff {
    /// The tags to set: missing on the resource, or with another value there.
    pub set: Tags,
    /// The keys to remove: on the resource but not wanted (never an `aws:` key).
    pub unset: Vec<String>,
    /// The live values of the keys that differ, for the plan.
    pub was: Tags,
}

impl TagDiff {
    /// The field name of a tag difference in a plan (`tags`).
    pub const FIELD: &'static str = "tags";

    /// Sets it right with a service's own tag calls: `set` with the tags to set, then
    /// `unset` with the keys to remove, each only when there is something to do (every AWS
    /// service has its own pair of calls; this is the one order and the one skip rule).
    ///
    /// ```
    /// # use ecs_core::Tags;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let diff = Tags::new().with("team", "a").diff_from(&Tags::new().with("old", "x")).unwrap();
    /// let calls = std::cell::RefCell::new(Vec::new());
    /// diff.apply(
    ///     |set| { calls.borrow_mut().push(format!("tag {set:?}")); async { Ok::<_, ()>(()) } },
    ///     |keys| { calls.borrow_mut().push(format!("untag {keys:?}")); async { Ok(()) } },
    /// )
    /// .await
    /// .unwrap();
    /// assert_eq!(calls.into_inner(), [r#"tag {"team": "a"}"#, r#"untag ["old"]"#]);
    /// # });
    /// ```
    pub async fn apply<E, FS, FU>(
        &self,
        set: impl FnOnce(&Tags) -> FS,
        unset: impl FnOnce(&[String]) -> FU,
    ) -> Result<(), E>
    where
        FS: std::future::Future<Output = Result<(), E>>,
        FU: std::future::Future<Output = Result<(), E>>,
    {
        if !self.set.is_empty() {
            set(&self.set).await?;
        }
        if !self.unset.is_empty() {
            unset(&self.unset).await?;
        }
        Ok(())
    }

    /// The difference as a plan line.
    pub fn field(&self) -> FieldDiff {
        let show = |t: &Tags| {
            let items: Vec<String> = t.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{{{}}}", items.join(", "))
        };
        FieldDiff::new(Self::FIELD, show(&self.was), show(&self.set))
    }
}

impl fmt::Display for TagDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.field();
        write!(f, "{}: {} → {}", d.field, d.old, d.new)
    }
}

impl crate::resource::Diff for TagDiff {
    fn field(&self) -> FieldDiff {
        TagDiff::field(self)
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reports_every_bad_tag_by_key() {
        let tags = Tags::new()
            .with("aws:owner", "x")
            .with("ecs:stack", "other")
            .with("", "empty")
            .with("ok", "v".repeat(257))
            .with("bad#char", "v");
        let problems = tags.validate("tags");
        assert!(problems.mentions("tags[\"aws:owner\"]"));
        assert!(problems.mentions("tags[\"ecs:stack\"]"));
        assert!(problems.mentions("tags[\"\"]"));
        assert!(problems.mentions("tags[\"ok\"]"));
        assert!(problems.mentions("tags[\"bad#char\"]"));
        assert_eq!(problems.len(), 5);
    }

    #[test]
    fn too_many_tags() {
        let tags: Tags = (0..48).map(|i| (format!("k{i}"), "v")).collect();
        let problems = tags.validate("tags");
        assert_eq!(problems.len(), 1);
        assert!(problems.mentions("tags"));
        let tags: Tags = (0..47).map(|i| (format!("k{i}"), "v")).collect();
        assert!(tags.validate("tags").is_empty());
    }

    #[test]
    fn resource_tags_add_ownership() {
        let stack = StackName::new("web").unwrap();
        let tags = Tags::new()
            .with("team", "a")
            .for_resource(&stack, Some("vpc"), Some("web"));
        assert_eq!(tags.get(OWNER_TAG), Some("web"));
        assert_eq!(tags.get(RESOURCE_TAG), Some("vpc"));
        assert_eq!(tags.get("Name"), Some("web"));
        assert_eq!(tags.get("team"), Some("a"));
    }

    #[test]
    fn tag_diff_table() {
        let t = |pairs: &[(&str, &str)]| pairs.iter().copied().collect::<Tags>();
        // (desired, live, expected: set, unset, plan line)
        type Expected<'a> = Option<(Tags, Vec<&'a str>, &'a str)>;
        let cases: &[(Tags, Tags, Expected<'_>)] = &[
            (t(&[("a", "1")]), t(&[("a", "1")]), None),
            (t(&[("a", "1")]), t(&[("a", "1"), ("aws:x", "y")]), None),
            (
                t(&[("a", "1"), ("b", "2")]),
                t(&[("a", "1")]),
                Some((t(&[("b", "2")]), vec![], "tags: {} → {b=2}")),
            ),
            (
                t(&[("a", "1")]),
                t(&[("a", "1"), ("b", "2")]),
                Some((t(&[]), vec!["b"], "tags: {b=2} → {}")),
            ),
            (
                t(&[("a", "2")]),
                t(&[("a", "1")]),
                Some((t(&[("a", "2")]), vec![], "tags: {a=1} → {a=2}")),
            ),
        ];
        for (desired, live, want) in cases {
            let got = desired.diff_from(live);
            match (got, want) {
                (None, None) => {}
                (Some(d), Some((set, unset, line))) => {
                    assert_eq!(&d.set, set, "{desired:?} from {live:?}");
                    assert_eq!(d.unset, *unset, "{desired:?} from {live:?}");
                    assert_eq!(d.to_string(), *line);
                }
                (got, want) => panic!("{desired:?} from {live:?}: {got:?}, expected {want:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn validation_never_panics_and_valid_tags_fit_aws_limits(
            entries in proptest::collection::btree_map(".{0,130}", ".{0,260}", 0..52)
        ) {
            let tags = Tags(entries);
            if tags.validate("tags").is_empty() {
                prop_assert!(tags.len() <= 47);
                for (k, v) in tags.iter() {
                    prop_assert!(!k.is_empty() && k.chars().count() <= 128);
                    prop_assert!(v.chars().count() <= 256);
                    prop_assert!(!k.to_ascii_lowercase().starts_with("aws:"));
                }
            }
        }
    }
}
