//! A security group the stack makes (`sg/alb`, `sg/task`, `sg/endpoints`): its ingress and
//! egress rules and its tags. Made in two steps ([`Staged`]): every group first, bare, since
//! their rules name each other; each group's rules once every group exists.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::ResourceType;
use aws_sdk_ec2::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource, Staged};
use ecs_core::{Context, FieldDiff, NameKind, TagDiff, Tags};

use crate::ec2::{already_gone, dependency_violation, ok_if_gone, set_tags, tag_spec};
use crate::error::{Error, Result};
use crate::rules::{render, Peer, Rule};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "security-group";

/// A security group as desired.
#[derive(Debug, Clone)]
pub(crate) struct SecurityGroup {
    /// `sg/<name>`.
    pub(crate) logical: &'static str,
    /// The VPC's id (`(vpc)` while it is still to be made).
    pub(crate) vpc_id: String,
    /// Its rules, other groups named by their ids (`(sg/…)` while still to be made).
    pub(crate) ingress: BTreeSet<Rule>,
    pub(crate) egress: BTreeSet<Rule>,
    pub(crate) tags: Tags,
}

/// A security group as a read found it.
#[derive(Debug, Clone)]
pub(crate) struct LiveSg {
    pub(crate) id: String,
    pub(crate) tags: Tags,
    pub(crate) ingress: BTreeSet<Rule>,
    pub(crate) egress: BTreeSet<Rule>,
}

/// One typed difference of a group: each rule set is brought to the desired one with one
/// revoke and one authorize call at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SgDiff {
    Ingress {
        live: BTreeSet<Rule>,
        desired: BTreeSet<Rule>,
    },
    Egress {
        live: BTreeSet<Rule>,
        desired: BTreeSet<Rule>,
    },
    Tags(TagDiff),
}

impl Diff for SgDiff {
    fn field(&self) -> FieldDiff {
        match self {
            SgDiff::Ingress { live, desired } => {
                FieldDiff::new("ingress", render(live), render(desired))
            }
            SgDiff::Egress { live, desired } => {
                FieldDiff::new("egress", render(live), render(desired))
            }
            SgDiff::Tags(t) => t.field(),
        }
    }
}

impl SecurityGroup {
    fn label(&self) -> String {
        format!("{KIND} {}", self.logical)
    }
}

impl Resource for SecurityGroup {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveSg;
    type Diff = SgDiff;
    /// Its id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.logical.to_string()
    }

    fn detail(&self) -> String {
        format!(
            "ingress {} egress {}",
            render(&self.ingress),
            render(&self.egress)
        )
    }

    fn owner(live: &LiveSg) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveSg) -> Vec<SgDiff> {
        let mut d = Vec::new();
        if live.ingress != self.ingress {
            d.push(SgDiff::Ingress {
                live: live.ingress.clone(),
                desired: self.ingress.clone(),
            });
        }
        if live.egress != self.egress {
            d.push(SgDiff::Egress {
                live: live.egress.clone(),
                desired: self.egress.clone(),
            });
        }
        d.extend(self.tags.diff_from(&live.tags).map(SgDiff::Tags));
        d
    }

    fn output(live: &LiveSg) -> String {
        live.id.clone()
    }

    fn created(id: &String) -> Option<String> {
        Some(id.clone())
    }

    async fn create(&self, ctx: &Context, ec2: &Client) -> Result<String> {
        let live = self.make(ctx, ec2).await?;
        let diffs = self.diff(&live);
        self.update(ctx, ec2, &live, &diffs).await?;
        Ok(live.id)
    }

    async fn update(
        &self,
        ctx: &Context,
        ec2: &Client,
        live: &LiveSg,
        diffs: &[SgDiff],
    ) -> Result<()> {
        let resource = self.label();
        for diff in diffs {
            match diff {
                SgDiff::Ingress { live: l, desired } => {
                    sync_rules(ctx, ec2, &resource, &live.id, true, l, desired).await?
                }
                SgDiff::Egress { live: l, desired } => {
                    sync_rules(ctx, ec2, &resource, &live.id, false, l, desired).await?
                }
                SgDiff::Tags(t) => set_tags(ctx, ec2, &resource, &live.id, t).await?,
            }
        }
        Ok(())
    }

    /// Retried while task or load balancer network interfaces still use it. Its references
    /// to other groups must be gone first ([`revoke_references`]).
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveSg) -> Result<()> {
        ok_if_gone(
            ctx.call_retrying(
                "DeleteSecurityGroup",
                &format!("{KIND} {}", live.id),
                &dependency_violation(),
                || ec2.delete_security_group().group_id(&live.id).send(),
            )
            .await,
        )
    }
}

impl Staged for SecurityGroup {
    /// `CreateSecurityGroup` with its name, description and tags: no ingress rule, and the
    /// egress rule AWS gives every new group (all traffic out).
    async fn make(&self, ctx: &Context, ec2: &Client) -> Result<LiveSg> {
        let short = self.logical.replace("sg/", "");
        let name = ctx.stack().name(NameKind::SecurityGroup, &short);
        let out = ctx
            .call("CreateSecurityGroup", &self.label(), || {
                ec2.create_security_group()
                    .group_name(&name)
                    .description(format!("{short} of stack {}", ctx.stack()))
                    .vpc_id(&self.vpc_id)
                    .tag_specifications(tag_spec(ResourceType::SecurityGroup, &self.tags))
                    .send()
            })
            .await?;
        Ok(LiveSg {
            id: out.group_id().unwrap_or_default().to_string(),
            tags: self.tags.clone(),
            ingress: BTreeSet::new(),
            egress: [Rule::all(Peer::Cidr("0.0.0.0/0".into()))].into(),
        })
    }
}

/// Revokes the rules of `sg` that name other groups (groups that reference each other cannot
/// be deleted until the references go); a group already gone is fine.
pub(crate) async fn revoke_references(ctx: &Context, ec2: &Client, sg: &LiveSg) -> Result<()> {
    let resource = format!("{KIND} {}", sg.id);
    let refs = |rules: &BTreeSet<Rule>| -> BTreeSet<Rule> {
        rules
            .iter()
            .filter(|r| matches!(r.peer, Peer::Group(_)))
            .cloned()
            .collect()
    };
    let none = BTreeSet::new();
    let revoked = async {
        sync_rules(ctx, ec2, &resource, &sg.id, true, &refs(&sg.ingress), &none).await?;
        sync_rules(ctx, ec2, &resource, &sg.id, false, &refs(&sg.egress), &none).await
    };
    match revoked.await {
        Err(e) if e.as_aws().is_some_and(already_gone) => Ok(()),
        other => other,
    }
}

/// Adds the missing rules and revokes the extra ones, in one call each.
pub(crate) async fn sync_rules(
    ctx: &Context,
    ec2: &Client,
    resource: &str,
    group: &str,
    ingress: bool,
    live: &BTreeSet<Rule>,
    desired: &BTreeSet<Rule>,
) -> Result<()> {
    let add: Vec<_> = desired.difference(live).map(Rule::to_permission).collect();
    let remove: Vec<_> = live.difference(desired).map(Rule::to_permission).collect();
    if !remove.is_empty() {
        let r = if ingress {
            ctx.call("RevokeSecurityGroupIngress", resource, || {
                ec2.revoke_security_group_ingress()
                    .group_id(group)
                    .set_ip_permissions(Some(remove.clone()))
                    .send()
            })
            .await
            .map(|_| ())
        } else {
            ctx.call("RevokeSecurityGroupEgress", resource, || {
                ec2.revoke_security_group_egress()
                    .group_id(group)
                    .set_ip_permissions(Some(remove.clone()))
                    .send()
            })
            .await
            .map(|_| ())
        };
        match r {
            Err(e) if e.is_code("InvalidPermission.NotFound") => {}
            other => other?,
        }
    }
    if !add.is_empty() {
        if ingress {
            ctx.call("AuthorizeSecurityGroupIngress", resource, || {
                ec2.authorize_security_group_ingress()
                    .group_id(group)
                    .set_ip_permissions(Some(add.clone()))
                    .send()
            })
            .await?;
        } else {
            ctx.call("AuthorizeSecurityGroupEgress", resource, || {
                ec2.authorize_security_group_egress()
                    .group_id(group)
                    .set_ip_permissions(Some(add.clone()))
                    .send()
            })
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::Action;

    #[test]
    fn typed_diff_table() {
        let tags = Tags::new().with("ecs:stack", "web");
        let from_alb = Rule::tcp(8080, Peer::Group("sg-alb".into()));
        let out = Rule::all(Peer::Cidr("0.0.0.0/0".into()));
        let desired = SecurityGroup {
            logical: "sg/task",
            vpc_id: "vpc-1".into(),
            ingress: [from_alb.clone()].into(),
            egress: [out.clone()].into(),
            tags: tags.clone(),
        };
        let live = |ingress: &[Rule], egress: &[Rule], tags: &Tags| LiveSg {
            id: "sg-1".into(),
            tags: tags.clone(),
            ingress: ingress.iter().cloned().collect(),
            egress: egress.iter().cloned().collect(),
        };
        let extra = Rule::tcp(22, Peer::Cidr("0.0.0.0/0".into()));
        let cases = [
            (
                live(
                    std::slice::from_ref(&from_alb),
                    std::slice::from_ref(&out),
                    &tags,
                ),
                Action::NoChange,
            ),
            // As made bare: the rules still to be written.
            (
                live(&[], std::slice::from_ref(&out), &tags),
                Action::Update(vec![FieldDiff::new("ingress", "[]", "[tcp/8080 sg-alb]")]),
            ),
            (
                live(&[from_alb.clone(), extra], &[], &Tags::new()),
                Action::Update(vec![
                    FieldDiff::new(
                        "ingress",
                        "[tcp/22 0.0.0.0/0, tcp/8080 sg-alb]",
                        "[tcp/8080 sg-alb]",
                    ),
                    FieldDiff::new("egress", "[]", "[all 0.0.0.0/0]"),
                    FieldDiff::new("tags", "{}", "{ecs:stack=web}"),
                ]),
            ),
        ];
        for (found, action) in cases {
            let planned = ecs_core::resource::decide(&desired, Some(found.clone()));
            assert_eq!(planned.action(), action, "{found:?}");
        }
    }
}
