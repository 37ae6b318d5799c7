//! The change model: what a `plan` found and an `apply` will do, per resource.
//!
//! One code path decides what to change: each layer computes its [`Plan`] from the live state
//! and the specification, and its `apply` carries out exactly that plan, so the two never
//! disagree. A plan renders as readable text, in the manner of `terraform plan`.

use std::fmt;

/// One field whose live value differs from the desired one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldDiff {
    /// The field, e.g. `ingress` or `enable_dns_hostnames`.
    pub field: String,
    /// Its live value, rendered as text.
    pub old: String,
    /// Its desired value, rendered as text.
    pub new: String,
}

impl FieldDiff {
    /// A diff of `field` from `old` to `new`.
    pub fn new(field: impl Into<String>, old: impl fmt::Display, new: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            old: old.to_string(),
            new: new.to_string(),
        }
    }
}

/// What will happen to one resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", content = "details", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// The resource does not exist and will be created.
    Create,
    /// The resource exists and these fields will be changed in place.
    Update(Vec<FieldDiff>),
    /// The resource must be deleted and created again, for the reason given.
    Replace(String),
    /// The resource is owned by the stack but no longer desired, and will be deleted.
    Delete,
    /// The resource matches the specification.
    NoChange,
}

impl Action {
    /// The diff of two values: `NoChange` when equal, else an `Update` of `field`.
    pub fn compare<T: PartialEq + fmt::Display>(field: &str, old: &T, new: &T) -> Action {
        if old == new {
            Action::NoChange
        } else {
            Action::Update(vec![FieldDiff::new(field, old, new)])
        }
    }

    /// The `Update` of all the given diffs, or `NoChange` when there are none.
    pub fn from_diffs(diffs: Vec<FieldDiff>) -> Action {
        if diffs.is_empty() {
            Action::NoChange
        } else {
            Action::Update(diffs)
        }
    }

    /// The verb progress events report for this action (`create`, `update`, `replace`,
    /// `delete`), or `None` when nothing changes.
    pub fn verb(&self) -> Option<&'static str> {
        match self {
            Action::Create => Some("create"),
            Action::Update(_) => Some("update"),
            Action::Replace(_) => Some("replace"),
            Action::Delete => Some("delete"),
            Action::NoChange => None,
        }
    }

    /// Whether this action changes anything.
    pub fn is_change(&self) -> bool {
        !matches!(self, Action::NoChange)
    }

    fn symbol(&self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update(_) => "~",
            Action::Replace(_) => "-/+",
            Action::Delete => "-",
            Action::NoChange => " ",
        }
    }
}

/// A planned change to one resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// The kind of resource, e.g. `vpc`, `subnet`, `security-group`.
    pub resource: String,
    /// Which one: its logical id in the stack, or its AWS id when it has no logical id.
    pub id: String,
    /// What will happen to it.
    pub action: Action,
    /// A short description of the desired resource (e.g. its CIDR), possibly empty.
    pub detail: String,
    /// What the reader should know before applying, in plain words (e.g. that the change
    /// puts back an image a CI pipeline released): shown under the change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Change {
    /// A change of `action` to the `resource` known as `id`.
    pub fn new(resource: impl Into<String>, id: impl Into<String>, action: Action) -> Self {
        Self {
            resource: resource.into(),
            id: id.into(),
            action,
            detail: String::new(),
            notes: Vec::new(),
        }
    }

    /// The same change with a short description of the resource.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The same change with a note for the reader (see [`Change::notes`]).
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>3} {} {}",
            self.action.symbol(),
            self.resource,
            self.id
        )?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        match &self.action {
            Action::Update(diffs) => {
                for d in diffs {
                    write!(f, "\n      ~ {}: {} → {}", d.field, d.old, d.new)?;
                }
            }
            Action::Replace(reason) => write!(f, "\n      must be replaced: {reason}")?,
            _ => {}
        }
        for note in &self.notes {
            write!(f, "\n      ! {note}")?;
        }
        Ok(())
    }
}

/// Counts of a plan's actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Resources to create.
    pub create: usize,
    /// Resources to change in place.
    pub update: usize,
    /// Resources to replace.
    pub replace: usize,
    /// Resources to delete.
    pub delete: usize,
    /// Resources already as specified.
    pub unchanged: usize,
}

/// The changes a deploy (or destroy) would make, resource by resource.
///
/// ```
/// use ecs_core::{Action, Change, Plan};
/// let plan = Plan::from(vec![
///     Change::new("vpc", "vpc", Action::Create).with_detail("10.0.0.0/16"),
///     Change::new("subnet", "subnet/public/us-east-1a", Action::NoChange),
/// ]);
/// assert!(!plan.is_empty());
/// assert!(plan.to_string().contains("+ vpc vpc (10.0.0.0/16)"));
/// assert!(plan.to_string().contains("1 to add, 0 to change, 0 to replace, 0 to destroy"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Every resource considered, in the order the plan found them.
    pub changes: Vec<Change>,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a change.
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Adds every change of `other`.
    pub fn extend(&mut self, other: Plan) {
        self.changes.extend(other.changes);
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        !self.changes.iter().any(|c| c.action.is_change())
    }

    /// Every entry, unchanged resources included, in order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// The changes that change something.
    pub fn pending(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action.is_change())
    }

    /// Counts of each action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update(_) => s.update += 1,
                Action::Replace(_) => s.replace += 1,
                Action::Delete => s.delete += 1,
                Action::NoChange => s.unchanged += 1,
            }
        }
        s
    }

    /// The change planned for the resource `id`, if any.
    pub fn find(&self, resource: &str, id: &str) -> Option<&Change> {
        self.changes
            .iter()
            .find(|c| c.resource == resource && c.id == id)
    }
}

impl From<Vec<Change>> for Plan {
    fn from(changes: Vec<Change>) -> Self {
        Self { changes }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.summary();
        if self.is_empty() {
            return write!(
                f,
                "No changes. {} resource{} the specification.",
                s.unchanged,
                if s.unchanged == 1 {
                    " matches"
                } else {
                    "s match"
                }
            );
        }
        for c in self.pending() {
            writeln!(f, "{c}")?;
        }
        write!(
            f,
            "\nPlan: {} to add, {} to change, {} to replace, {} to destroy ({} unchanged).",
            s.create, s.update, s.replace, s.delete, s.unchanged
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_terraform() {
        let plan = Plan::from(vec![
            Change::new("vpc", "vpc", Action::Create).with_detail("10.0.0.0/16"),
            Change::new(
                "security-group",
                "sg/alb",
                Action::Update(vec![FieldDiff::new(
                    "ingress",
                    "tcp/80 from 0.0.0.0/0",
                    "tcp/80 from 10.0.0.0/8",
                )]),
            ),
            Change::new(
                "subnet",
                "subnet/public/us-east-1a",
                Action::Replace("cidr 10.0.0.0/20 → 10.0.16.0/20".into()),
            ),
            Change::new("nat-gateway", "nat/us-east-1b", Action::Delete),
            Change::new("route-table", "rt/public", Action::NoChange),
        ]);
        let text = plan.to_string();
        assert_eq!(
            text,
            "  + vpc vpc (10.0.0.0/16)\n  ~ security-group sg/alb\n      ~ ingress: tcp/80 from 0.0.0.0/0 → tcp/80 from 10.0.0.0/8\n\
             -/+ subnet subnet/public/us-east-1a\n      must be replaced: cidr 10.0.0.0/20 → 10.0.16.0/20\n\
             \x20 - nat-gateway nat/us-east-1b\n\nPlan: 1 to add, 1 to change, 1 to replace, 1 to destroy (1 unchanged)."
        );
        assert_eq!(plan.pending().count(), 4);
    }

    #[test]
    fn empty_plan_says_no_changes() {
        let plan = Plan::from(vec![Change::new("vpc", "vpc", Action::NoChange)]);
        assert!(plan.is_empty());
        assert_eq!(
            plan.to_string(),
            "No changes. 1 resource matches the specification."
        );
    }

    #[test]
    fn compare_and_from_diffs() {
        assert_eq!(Action::compare("port", &80, &80), Action::NoChange);
        assert_eq!(
            Action::compare("port", &80, &8080),
            Action::Update(vec![FieldDiff::new("port", 80, 8080)])
        );
        assert_eq!(Action::from_diffs(vec![]), Action::NoChange);
    }

    #[test]
    fn serializes_for_machine_readable_output() {
        let plan = Plan::from(vec![Change::new(
            "vpc",
            "vpc",
            Action::Replace("cidr".into()),
        )]);
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["changes"][0]["action"]["action"], "replace");
        assert_eq!(json["changes"][0]["action"]["details"], "cidr");
    }
}
