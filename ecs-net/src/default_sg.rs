//! The default security group AWS gives every VPC, left with no rules: whatever is placed in
//! it by mistake is then neither reachable nor able to reach out (AWS Foundational Security
//! Best Practices, control EC2.2). Only in a VPC the stack manages: an imported VPC is never
//! changed.
//!
//! The group cannot carry the stack's tag usefully (AWS makes it with the VPC, untagged, and
//! deletes it with the VPC), so it is the stack's through its VPC: [`Ownership::Owner`].

use std::collections::BTreeSet;

use std::time::Duration;

use aws_sdk_ec2::types::SecurityGroup;
use aws_sdk_ec2::Client;
use ecs_core::resource::{self, Diff, Known, Owner, Ownership, Resource};
use ecs_core::{AwsError, Context, FieldDiff, Poll, PollPolicy, Tags};

use crate::error::{Error, Result};
use crate::live::{filter, rules_of};
use crate::rules::{render, Rule};
use crate::security_group::sync_rules;

/// The kind, as plans and events name it.
pub(crate) const DEFAULT_SG_KIND: &str = "default-security-group";
/// Its logical id.
pub(crate) const DEFAULT_SG: &str = "default-sg";

/// The default security group of the stack's VPC, as desired: no rules.
#[derive(Debug, Clone)]
pub(crate) struct DefaultSecurityGroup {
    /// The VPC, known once it exists.
    pub(crate) vpc_id: Known<String>,
}

/// The default security group as a read found it, with its VPC's tags (its owner's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveDefaultSg {
    pub(crate) id: String,
    pub(crate) vpc_tags: Tags,
    pub(crate) ingress: BTreeSet<Rule>,
    pub(crate) egress: BTreeSet<Rule>,
}

/// A rule set the group still has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DefaultSgDiff {
    /// Its ingress rules (all to be revoked).
    Ingress(BTreeSet<Rule>),
    /// Its egress rules (all to be revoked).
    Egress(BTreeSet<Rule>),
}

impl Diff for DefaultSgDiff {
    fn field(&self) -> FieldDiff {
        match self {
            DefaultSgDiff::Ingress(live) => FieldDiff::new("ingress", render(live), "[]"),
            DefaultSgDiff::Egress(live) => FieldDiff::new("egress", render(live), "[]"),
        }
    }
}

impl Resource for DefaultSecurityGroup {
    const KIND: &'static str = DEFAULT_SG_KIND;
    const OWNERSHIP: Ownership = Ownership::Owner;
    type Client = Client;
    type Live = LiveDefaultSg;
    type Diff = DefaultSgDiff;
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        DEFAULT_SG.to_string()
    }

    fn detail(&self) -> String {
        "the VPC's default group, with no rules (EC2.2)".to_string()
    }

    fn owner(live: &LiveDefaultSg) -> Owner<'_> {
        Owner::Tags(&live.vpc_tags)
    }

    fn diff(&self, live: &LiveDefaultSg) -> Vec<DefaultSgDiff> {
        let mut diffs = Vec::new();
        if !live.ingress.is_empty() {
            diffs.push(DefaultSgDiff::Ingress(live.ingress.clone()));
        }
        if !live.egress.is_empty() {
            diffs.push(DefaultSgDiff::Egress(live.egress.clone()));
        }
        diffs
    }

    fn output(live: &LiveDefaultSg) -> String {
        live.id.clone()
    }

    /// AWS makes the group with the VPC; "creating" it for the stack is finding it in the new
    /// VPC (waiting, within a minute, until the describe shows it) and revoking the rules AWS
    /// gave it.
    async fn create(&self, ctx: &Context, ec2: &Client) -> Result<String> {
        let Known::Known(vpc_id) = &self.vpc_id else {
            unreachable!("the default group is made once its VPC exists")
        };
        let resource = format!("{DEFAULT_SG_KIND} of {vpc_id}");
        let policy = PollPolicy::with_timeout(Duration::from_secs(60));
        let live = ctx
            .poll(&resource, "the group to be visible", &policy, || async {
                Ok(match find(ctx, ec2, vpc_id, &Tags::new()).await? {
                    Some(live) => Poll::Ready(live),
                    None => Poll::Pending("not found yet".to_string()),
                })
            })
            .await?;
        let diffs = self.diff(&live);
        self.update(ctx, ec2, &live, &diffs).await?;
        Ok(live.id)
    }

    async fn update(
        &self,
        ctx: &Context,
        ec2: &Client,
        live: &LiveDefaultSg,
        diffs: &[DefaultSgDiff],
    ) -> Result<()> {
        let resource = format!("{DEFAULT_SG_KIND} {}", live.id);
        let none = BTreeSet::new();
        for diff in diffs {
            match diff {
                DefaultSgDiff::Ingress(rules) => {
                    sync_rules(ctx, ec2, &resource, &live.id, true, rules, &none).await?
                }
                DefaultSgDiff::Egress(rules) => {
                    sync_rules(ctx, ec2, &resource, &live.id, false, rules, &none).await?
                }
            }
        }
        Ok(())
    }

    /// AWS refuses to delete a VPC's default group and deletes it with the VPC: the VPC's own
    /// deletion is this group's.
    async fn delete(_ctx: &Context, _ec2: &Client, _live: &LiveDefaultSg) -> Result<()> {
        Ok(())
    }
}

/// The default security group of `vpc_id` (whose tags are `vpc_tags`), when it has one.
pub(crate) async fn read(
    ctx: &Context,
    ec2: &Client,
    vpc_id: &str,
    vpc_tags: &Tags,
) -> Result<Option<LiveDefaultSg>> {
    Ok(find(ctx, ec2, vpc_id, vpc_tags).await?)
}

async fn find(
    ctx: &Context,
    ec2: &Client,
    vpc_id: &str,
    vpc_tags: &Tags,
) -> std::result::Result<Option<LiveDefaultSg>, AwsError> {
    let resource = format!("{DEFAULT_SG_KIND} of {vpc_id}");
    let out = ctx
        .call("DescribeSecurityGroups", &resource, || {
            ec2.describe_security_groups()
                .filters(filter("vpc-id", [vpc_id]))
                .filters(filter("group-name", ["default"]))
                .send()
        })
        .await?;
    Ok(out
        .security_groups()
        .iter()
        .find(|g| is_default_of(g, vpc_id))
        .map(|g| LiveDefaultSg {
            id: g.group_id().unwrap_or_default().to_string(),
            vpc_tags: vpc_tags.clone(),
            ingress: rules_of(g.ip_permissions()),
            egress: rules_of(g.ip_permissions_egress()),
        }))
}

fn is_default_of(group: &SecurityGroup, vpc_id: &str) -> bool {
    group.group_name() == Some("default") && group.vpc_id() == Some(vpc_id)
}

/// What the plan does to the default group of the stack's VPC (`vpc_id`, when the VPC
/// exists), from what the read found in it (`live`). With a VPC still to be made, the group
/// is planned as made (`+`, like everything of a new stack): AWS makes it with the VPC, and
/// the stack strips it of its rules at once. `None` when there is nothing to plan (the VPC
/// exists and has no default group).
pub(crate) fn plan(
    ctx: &Context,
    vpc_id: Option<&str>,
    live: Option<&LiveDefaultSg>,
) -> Result<Option<resource::Planned<DefaultSecurityGroup>>> {
    let desired = DefaultSecurityGroup {
        vpc_id: vpc_id.map(str::to_string).into(),
    };
    let live = match (vpc_id, live) {
        (Some(_), None) => return Ok(None),
        (Some(_), Some(live)) => Some(live.clone()),
        (None, _) => None,
    };
    Ok(Some(resource::plan(ctx, &desired, live)?))
}

/// Brings the default group of the VPC `vpc_id` to no rules, as the plan (from the same read)
/// says.
pub(crate) async fn apply(
    ctx: &Context,
    ec2: &Client,
    live: Option<&LiveDefaultSg>,
    vpc_id: &str,
    existed: bool,
) -> Result<()> {
    let desired = DefaultSecurityGroup {
        vpc_id: Known::Known(vpc_id.to_string()),
    };
    if !existed {
        // Made with the VPC in this run: found there, then stripped.
        desired.create(ctx, ec2).await?;
        return Ok(());
    }
    let Some(planned) = plan(ctx, Some(vpc_id), live)? else {
        return Ok(());
    };
    resource::converge(ctx, ec2, &desired, &planned, |reason| {
        Error::from(resource::Replacement::new(
            DEFAULT_SG_KIND,
            DEFAULT_SG,
            reason,
        ))
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Peer;
    use ecs_core::{Action, StackName, OWNER_TAG};

    fn ctx() -> Context {
        Context::builder()
            .stack(StackName::new("web").unwrap())
            .build()
    }

    fn live(ingress: &[Rule], egress: &[Rule], owner: &str) -> LiveDefaultSg {
        LiveDefaultSg {
            id: "sg-default".into(),
            vpc_tags: Tags::new().with(OWNER_TAG, owner),
            ingress: ingress.iter().cloned().collect(),
            egress: egress.iter().cloned().collect(),
        }
    }

    #[test]
    fn typed_diff_table() {
        let itself = Rule::all(Peer::Group("sg-default".into()));
        let anywhere = Rule::all(Peer::Cidr("0.0.0.0/0".into()));
        // (VPC exists, what the read found, the plan's action)
        let cases = [
            // With a VPC still to be made, it is made (by AWS, with the VPC; stripped at once).
            (None, None, Some(Action::Create)),
            // An existing VPC without a default group: nothing to plan.
            (Some("vpc-1"), None, None),
            (
                Some("vpc-1"),
                Some(live(
                    std::slice::from_ref(&itself),
                    std::slice::from_ref(&anywhere),
                    "web",
                )),
                Some(Action::Update(vec![
                    FieldDiff::new("ingress", "[all sg-default]", "[]"),
                    FieldDiff::new("egress", "[all 0.0.0.0/0]", "[]"),
                ])),
            ),
            (
                Some("vpc-1"),
                Some(live(&[], std::slice::from_ref(&anywhere), "web")),
                Some(Action::Update(vec![FieldDiff::new(
                    "egress",
                    "[all 0.0.0.0/0]",
                    "[]",
                )])),
            ),
            (
                Some("vpc-1"),
                Some(live(&[], &[], "web")),
                Some(Action::NoChange),
            ),
        ];
        for (vpc, found, action) in cases {
            let planned = plan(&ctx(), vpc, found.as_ref()).unwrap();
            assert_eq!(planned.map(|p| p.action()), action, "{vpc:?} {found:?}");
        }
    }

    #[test]
    fn a_default_group_in_a_vpc_that_is_not_the_stacks_is_refused() {
        let err = plan(&ctx(), Some("vpc-1"), Some(&live(&[], &[], "other"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("what it belongs to lacks the stack's tag"),
            "{err}"
        );
    }
}
