//! Saved plans: a plan written to a file (`ecs-stack plan FILE --out PLAN`), reviewed in a
//! pull request, then applied as saved (`ecs-stack apply PLAN`).
//!
//! A [`SavedPlan`] holds the manifest's text as it was planned, the region, the plan (every
//! entry, unchanged ones included) and a fingerprint: a SHA-256 of the format, the tool's
//! version, the region, the manifest and the plan. Applying it checks the fingerprint against
//! the file's own content (an edited file is refused), plans the saved manifest again from a
//! fresh read, and refuses — before any change — unless that plan is exactly the saved one:
//! the stack changed since (someone deployed, CI released an image, a resource drifted), or the
//! tool or the region is not the one that planned it. What is applied is then what the
//! reviewer saw.
//!
//! The fingerprint catches a stale file and an accidental edit; it is not a signature (anyone
//! who edits the file can compute it again): keep the file where it was reviewed.
//!
//! The plan is what the fingerprint covers of the read: every resource the plan considered,
//! with its action, its differences and its details (revisions, "registered outside"
//! remarks). A change the plan does not depend on (a tag on a resource the stack does not
//! manage, say) does not make a saved plan stale.

use std::fmt;

use ecs_core::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Deployer, Error, PreparedDeploy, Result, Stack};

/// The format of [`SavedPlan`] files this version writes and reads.
pub const SAVED_PLAN_FORMAT: u32 = 1;

/// A plan saved for review ([`Deployer::save_plan`]), applied later as saved
/// ([`Deployer::prepare_saved`], which refuses it when the stack changed since): the
/// manifest's text, the region, every entry of the plan, and a SHA-256 fingerprint of them
/// and of the tool's version. Its JSON form is the file `plan --out` writes. `Debug` does not show the manifest (it may hold
/// environment values).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SavedPlan {
    /// The file format ([`SAVED_PLAN_FORMAT`]).
    pub format: u32,
    /// The version of `ecs-facade` that planned it.
    pub tool_version: String,
    /// The stack's name.
    pub stack: String,
    /// The region it was planned in.
    pub region: String,
    /// The manifest's text, as planned.
    pub manifest: String,
    /// The plan, every entry included.
    pub plan: Plan,
    /// SHA-256 (hex) of the format, the tool's version, the region, the manifest and the plan.
    pub fingerprint: String,
}

impl fmt::Debug for SavedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedPlan")
            .field("format", &self.format)
            .field("tool_version", &self.tool_version)
            .field("stack", &self.stack)
            .field("region", &self.region)
            .field("manifest", &format_args!("({} bytes)", self.manifest.len()))
            .field("plan", &self.plan)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl SavedPlan {
    fn new(stack: &str, region: String, manifest: &str, plan: Plan) -> Self {
        let mut saved = SavedPlan {
            format: SAVED_PLAN_FORMAT,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            stack: stack.to_string(),
            region,
            manifest: manifest.to_string(),
            plan,
            fingerprint: String::new(),
        };
        saved.fingerprint = saved.compute_fingerprint();
        saved
    }

    /// The fingerprint of the file's content (what [`fingerprint`](Self::fingerprint) must
    /// be).
    pub fn compute_fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        // Each part length-prefixed, so that no two contents hash alike by moving a boundary.
        let plan = serde_json::to_string(&self.plan).unwrap_or_default();
        for part in [
            self.format.to_string().as_str(),
            &self.tool_version,
            &self.stack,
            &self.region,
            &self.manifest,
            &plan,
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a saved plan from its JSON form.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| Error::Manifest {
            message: format!("not a saved plan: {e}"),
        })
    }

    /// Its JSON form (the file `plan --out` writes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    fn stale(&self, reason: impl Into<String>) -> Error {
        Error::StalePlan {
            stack: self.stack.clone(),
            reason: reason.into(),
        }
    }
}

impl Deployer {
    /// Plans the stack `manifest` (a manifest's text) describes and returns the plan to save
    /// for review; makes no change. Apply it with [`prepare_saved`](Self::prepare_saved).
    ///
    /// ```no_run
    /// # async fn example(deployer: ecs_facade::Deployer) -> ecs_facade::Result<()> {
    /// let manifest = std::fs::read_to_string("examples/prod.yml").unwrap();
    /// let saved = deployer.save_plan(&manifest).await?;
    /// std::fs::write("shop.plan.json", saved.to_json()).unwrap();
    /// // … reviewed in a pull request, then, later, from the file:
    /// let saved = ecs_facade::SavedPlan::from_json(&std::fs::read_to_string("shop.plan.json").unwrap())?;
    /// let report = deployer.prepare_saved(&saved).await?.apply().await?;
    /// # Ok(()) }
    /// ```
    pub async fn save_plan(&self, manifest: &str) -> Result<SavedPlan> {
        let stack = stack_of(manifest)?;
        let prepared = self.prepare(&stack).await?;
        Ok(SavedPlan::new(
            &stack.name,
            self.layers().service.region(),
            manifest,
            prepared.plan().clone(),
        ))
    }

    /// Prepares the deploy of a saved plan, as saved: refuses with [`Error::StalePlan`],
    /// before any change, when the file was edited, was planned by another version of the
    /// tool or in another region, or when the stack changed since (a fresh plan of the saved
    /// manifest differs from the saved plan; the error names the entries that differ).
    /// Otherwise [`PreparedDeploy::apply`] carries it out, checking it once more under the
    /// stack's lease.
    pub async fn prepare_saved(&self, saved: &SavedPlan) -> Result<PreparedDeploy> {
        if saved.format != SAVED_PLAN_FORMAT {
            return Err(saved.stale(format!(
                "it has format {}, this tool reads format {SAVED_PLAN_FORMAT}",
                saved.format
            )));
        }
        if saved.fingerprint != saved.compute_fingerprint() {
            return Err(saved.stale(
                "its fingerprint does not match its content: the file was edited after it was saved",
            ));
        }
        let version = env!("CARGO_PKG_VERSION");
        if saved.tool_version != version {
            return Err(saved.stale(format!(
                "it was planned by ecs-facade {}, this is {version}",
                saved.tool_version
            )));
        }
        let region = self.layers().service.region();
        if saved.region != region {
            return Err(saved.stale(format!(
                "it was planned in {}, this deploy would run in {region}",
                saved.region
            )));
        }
        let stack = stack_of(&saved.manifest)?;
        let mut prepared = self.prepare(&stack).await?;
        prepared.expect(saved.plan.clone());
        let differ = differences(&saved.plan, prepared.plan());
        if !differ.is_empty() {
            return Err(saved.stale(format!(
                "the stack changed since it was planned; now: {}",
                differ.join("; ")
            )));
        }
        Ok(prepared)
    }
}

fn stack_of(manifest: &str) -> Result<Stack> {
    Stack::from_manifest_text(manifest, "the saved plan's manifest")
}

/// The entries of `now` that are not in `saved` as they are, and those of `saved` gone from
/// `now`, each as its plan line (first line only).
pub(crate) fn differences(saved: &Plan, now: &Plan) -> Vec<String> {
    let line = |c: &ecs_core::Change| {
        let text = c.to_string();
        text.lines().next().unwrap_or_default().trim().to_string()
    };
    let mut out: Vec<String> = now
        .changes()
        .iter()
        .filter(|c| !saved.changes().contains(c))
        .map(line)
        .collect();
    out.extend(
        saved
            .changes()
            .iter()
            .filter(|c| now.find(&c.resource, &c.id).is_none())
            .map(|c| format!("{} {} no longer planned", c.resource, c.id)),
    );
    if out.is_empty() && saved != now {
        out.push("the order of the plan's entries".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::{Action, Change};

    fn saved(manifest: &str) -> SavedPlan {
        SavedPlan::new(
            "shop",
            "us-east-1".into(),
            manifest,
            Plan::from(vec![Change::new("vpc", "vpc", Action::Create)]),
        )
    }

    #[test]
    fn the_fingerprint_covers_every_part_and_the_debug_hides_the_manifest() {
        let a = saved("name: shop\nimage: nginx\nenvironment: {TOKEN: sentinel-env}\n");
        assert_eq!(a.fingerprint, a.compute_fingerprint());
        assert_eq!(a.fingerprint.len(), 64);
        let mut edited = a.clone();
        edited.manifest = edited.manifest.replace("nginx", "nginx:2");
        assert_ne!(edited.compute_fingerprint(), a.fingerprint);
        let mut other_region = a.clone();
        other_region.region = "eu-west-1".into();
        assert_ne!(other_region.compute_fingerprint(), a.fingerprint);
        let mut other_plan = a.clone();
        other_plan.plan = Plan::new();
        assert_ne!(other_plan.compute_fingerprint(), a.fingerprint);
        let round = SavedPlan::from_json(&a.to_json()).unwrap();
        assert_eq!(round, a);
        let shown = format!("{a:?}");
        assert!(!shown.contains("sentinel-env"), "{shown}");
    }

    #[test]
    fn differences_name_the_entries_that_changed() {
        let before = Plan::from(vec![
            Change::new("vpc", "vpc", Action::NoChange),
            Change::new("task-definition", "shop-app", Action::NoChange).with_detail("revision 1"),
        ]);
        let after = Plan::from(vec![
            Change::new("vpc", "vpc", Action::NoChange),
            Change::new("task-definition", "shop-app", Action::NoChange).with_detail("revision 2"),
        ]);
        assert_eq!(
            differences(&before, &after),
            ["task-definition shop-app (revision 2)"]
        );
        assert!(differences(&before, &before).is_empty());
        let gone = Plan::from(vec![Change::new("vpc", "vpc", Action::NoChange)]);
        assert_eq!(
            differences(&before, &gone),
            ["task-definition shop-app no longer planned"]
        );
    }
}
