//! A subnet of the stack's VPC: its block and zone (replaced, never changed in place) and its
//! tags.

use aws_sdk_ec2::types::ResourceType;
use aws_sdk_ec2::Client;
use ecs_core::resource::{Owner, Ownership, Resource};
use ecs_core::{Context, TagDiff, Tags};
use ipnet::Ipv4Net;

use crate::ec2::{dependency_violation, ok_if_gone, set_all_tags, tag_spec};
use crate::error::{Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "subnet";

/// A subnet as desired.
#[derive(Debug, Clone)]
pub(crate) struct Subnet {
    /// `subnet/<tier>/<zone>`.
    pub(crate) logical: String,
    pub(crate) cidr: Ipv4Net,
    pub(crate) az: String,
    /// The VPC's id (`(vpc)` while it is still to be made).
    pub(crate) vpc_id: String,
    pub(crate) tags: Tags,
}

/// A subnet as a read found it.
#[derive(Debug, Clone)]
pub(crate) struct LiveSubnet {
    pub(crate) id: String,
    pub(crate) tags: Tags,
    pub(crate) cidr: String,
    pub(crate) az: String,
}

impl Subnet {
    /// The label of its step and calls: its logical id and block.
    pub(crate) fn label(&self) -> String {
        format!("{KIND} {} ({})", self.logical, self.cidr)
    }
}

impl Resource for Subnet {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveSubnet;
    /// Only its tags change in place.
    type Diff = TagDiff;
    /// Its id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.logical.clone()
    }

    fn detail(&self) -> String {
        format!("{} in {}", self.cidr, self.az)
    }

    fn owner(live: &LiveSubnet) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveSubnet) -> Vec<TagDiff> {
        self.tags.diff_from(&live.tags).into_iter().collect()
    }

    fn replacement(&self, live: &LiveSubnet) -> Option<String> {
        (live.cidr != self.cidr.to_string() || live.az != self.az).then(|| {
            format!(
                "{} in {} → {} in {} cannot change in place",
                live.cidr, live.az, self.cidr, self.az
            )
        })
    }

    fn output(live: &LiveSubnet) -> String {
        live.id.clone()
    }

    fn created(id: &String) -> Option<String> {
        Some(id.clone())
    }

    async fn create(&self, ctx: &Context, ec2: &Client) -> Result<String> {
        let out = ctx
            .call("CreateSubnet", &self.label(), || {
                ec2.create_subnet()
                    .vpc_id(&self.vpc_id)
                    .cidr_block(self.cidr.to_string())
                    .availability_zone(&self.az)
                    .tag_specifications(tag_spec(ResourceType::Subnet, &self.tags))
                    .send()
            })
            .await?;
        Ok(out
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap_or_default()
            .to_string())
    }

    async fn update(
        &self,
        ctx: &Context,
        ec2: &Client,
        live: &LiveSubnet,
        diffs: &[TagDiff],
    ) -> Result<()> {
        set_all_tags(ctx, ec2, &self.label(), &live.id, diffs).await
    }

    /// Retried while load balancer and task network interfaces linger (they go a while after
    /// their owners), each failure reported as a `Retrying` event.
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveSubnet) -> Result<()> {
        ok_if_gone(
            ctx.call_retrying(
                "DeleteSubnet",
                &format!("{KIND} {}", live.id),
                &dependency_violation(),
                || ec2.delete_subnet().subnet_id(&live.id).send(),
            )
            .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::{Action, FieldDiff};

    #[test]
    fn typed_diff_table() {
        let tags = Tags::new().with("ecs:stack", "web");
        let desired = Subnet {
            logical: "subnet/public/a".into(),
            cidr: "10.0.0.0/20".parse().unwrap(),
            az: "a".into(),
            vpc_id: "vpc-1".into(),
            tags: tags.clone(),
        };
        let live = |cidr: &str, az: &str, tags: &Tags| LiveSubnet {
            id: "subnet-1".into(),
            tags: tags.clone(),
            cidr: cidr.into(),
            az: az.into(),
        };
        let cases = [
            (live("10.0.0.0/20", "a", &tags), Action::NoChange),
            (
                live("10.0.0.0/20", "a", &Tags::new()),
                Action::Update(vec![FieldDiff::new("tags", "{}", "{ecs:stack=web}")]),
            ),
            (
                live("10.0.16.0/20", "a", &tags),
                Action::Replace(
                    "10.0.16.0/20 in a → 10.0.0.0/20 in a cannot change in place".into(),
                ),
            ),
            (
                live("10.0.0.0/20", "b", &tags),
                Action::Replace(
                    "10.0.0.0/20 in b → 10.0.0.0/20 in a cannot change in place".into(),
                ),
            ),
        ];
        for (found, action) in cases {
            let planned = ecs_core::resource::decide(&desired, Some(found.clone()));
            assert_eq!(planned.action(), action, "{found:?}");
        }
    }
}
