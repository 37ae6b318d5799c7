//! The stack's VPC: its CIDR block (replaced, never changed in place), DNS support and DNS
//! hostnames on (interface endpoints' private DNS names need both), and its tags. Made in two
//! steps ([`Staged`]): its id is known as soon as `CreateVpc` answers, so its subnets, gateway,
//! route tables and groups start while its DNS attributes are still being set.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use aws_sdk_ec2::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource, Staged};
use ecs_core::{Context, FieldDiff, TagDiff, Tags};
use ipnet::Ipv4Net;

use crate::ec2::{dependency_violation, ok_if_gone, set_tags, tag_spec};
use crate::error::{Error, Result};
use crate::ids::VPC;

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "vpc";

/// The VPC as desired.
#[derive(Debug, Clone)]
pub(crate) struct Vpc {
    pub(crate) cidr: Ipv4Net,
    pub(crate) tags: Tags,
}

/// A VPC as a read found it.
#[derive(Debug, Clone)]
pub(crate) struct LiveVpc {
    pub(crate) id: String,
    pub(crate) tags: Tags,
    pub(crate) cidr: String,
    pub(crate) dns_hostnames: bool,
    pub(crate) dns_support: bool,
    /// The default security group AWS gave it.
    pub(crate) default_sg: Option<crate::default_sg::LiveDefaultSg>,
}

/// One typed difference of the VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VpcDiff {
    /// DNS support is off (`ModifyVpcAttribute`).
    DnsSupport,
    /// DNS hostnames are off (`ModifyVpcAttribute`).
    DnsHostnames,
    /// The tags (`CreateTags` / `DeleteTags`).
    Tags(TagDiff),
}

impl Diff for VpcDiff {
    fn field(&self) -> FieldDiff {
        match self {
            VpcDiff::DnsSupport => FieldDiff::new("enable_dns_support", false, true),
            VpcDiff::DnsHostnames => FieldDiff::new("enable_dns_hostnames", false, true),
            VpcDiff::Tags(t) => t.field(),
        }
    }
}

impl Resource for Vpc {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveVpc;
    type Diff = VpcDiff;
    /// Its id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        VPC.to_string()
    }

    fn detail(&self) -> String {
        self.cidr.to_string()
    }

    fn owner(live: &LiveVpc) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveVpc) -> Vec<VpcDiff> {
        let mut d = Vec::new();
        if !live.dns_support {
            d.push(VpcDiff::DnsSupport);
        }
        if !live.dns_hostnames {
            d.push(VpcDiff::DnsHostnames);
        }
        d.extend(self.tags.diff_from(&live.tags).map(VpcDiff::Tags));
        d
    }

    fn replacement(&self, live: &LiveVpc) -> Option<String> {
        (live.cidr != self.cidr.to_string())
            .then(|| format!("cidr {} → {} cannot change in place", live.cidr, self.cidr))
    }

    fn output(live: &LiveVpc) -> String {
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
        live: &LiveVpc,
        diffs: &[VpcDiff],
    ) -> Result<()> {
        let resource = format!("{KIND} {VPC}");
        let on = || AttributeBooleanValue::builder().value(true).build();
        for diff in diffs {
            match diff {
                VpcDiff::DnsSupport => {
                    ctx.call("ModifyVpcAttribute", &resource, || {
                        ec2.modify_vpc_attribute()
                            .vpc_id(&live.id)
                            .enable_dns_support(on())
                            .send()
                    })
                    .await?;
                }
                VpcDiff::DnsHostnames => {
                    ctx.call("ModifyVpcAttribute", &resource, || {
                        ec2.modify_vpc_attribute()
                            .vpc_id(&live.id)
                            .enable_dns_hostnames(on())
                            .send()
                    })
                    .await?;
                }
                VpcDiff::Tags(t) => set_tags(ctx, ec2, &resource, &live.id, t).await?,
            }
        }
        Ok(())
    }

    /// Retried while its subnets' and groups' network interfaces linger.
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveVpc) -> Result<()> {
        ok_if_gone(
            ctx.call_retrying(
                "DeleteVpc",
                &format!("{KIND} {}", live.id),
                &dependency_violation(),
                || ec2.delete_vpc().vpc_id(&live.id).send(),
            )
            .await,
        )
    }
}

impl Staged for Vpc {
    /// `CreateVpc` with its tags; a new VPC has DNS support on and DNS hostnames off.
    async fn make(&self, ctx: &Context, ec2: &Client) -> Result<LiveVpc> {
        let out = ctx
            .call("CreateVpc", &format!("{KIND} {VPC}"), || {
                ec2.create_vpc()
                    .cidr_block(self.cidr.to_string())
                    .tag_specifications(tag_spec(ResourceType::Vpc, &self.tags))
                    .send()
            })
            .await?;
        Ok(LiveVpc {
            id: out
                .vpc()
                .and_then(|v| v.vpc_id())
                .unwrap_or_default()
                .to_string(),
            tags: self.tags.clone(),
            cidr: self.cidr.to_string(),
            dns_hostnames: false,
            dns_support: true,
            default_sg: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::Action;

    fn live(cidr: &str, support: bool, hostnames: bool, tags: Tags) -> LiveVpc {
        LiveVpc {
            id: "vpc-1".into(),
            tags,
            cidr: cidr.into(),
            dns_hostnames: hostnames,
            dns_support: support,
            default_sg: None,
        }
    }

    #[test]
    fn typed_diff_table() {
        let tags = Tags::new().with("ecs:stack", "web");
        let desired = Vpc {
            cidr: "10.0.0.0/16".parse().unwrap(),
            tags: tags.clone(),
        };
        let cases = [
            (
                live("10.0.0.0/16", true, true, tags.clone()),
                Action::NoChange,
            ),
            (
                live("10.0.0.0/16", true, false, tags.clone()),
                Action::Update(vec![FieldDiff::new("enable_dns_hostnames", false, true)]),
            ),
            (
                live("10.0.0.0/16", false, false, Tags::new()),
                Action::Update(vec![
                    FieldDiff::new("enable_dns_support", false, true),
                    FieldDiff::new("enable_dns_hostnames", false, true),
                    FieldDiff::new("tags", "{}", "{ecs:stack=web}"),
                ]),
            ),
            (
                live("10.1.0.0/16", true, true, tags.clone()),
                Action::Replace("cidr 10.1.0.0/16 → 10.0.0.0/16 cannot change in place".into()),
            ),
        ];
        for (found, action) in cases {
            let planned = ecs_core::resource::decide(&desired, Some(found.clone()));
            assert_eq!(planned.action(), action, "{found:?}");
        }
    }
}
