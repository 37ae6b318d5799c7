//! A route table of the stack's VPC: its `0.0.0.0/0` route (through the internet gateway,
//! a NAT gateway, or none), its subnet associations and its tags. Made in two steps
//! ([`Staged`]): the table as soon as the VPC exists, its route and associations once its
//! subnets and gateway do.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::ResourceType;
use aws_sdk_ec2::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource, Staged};
use ecs_core::{Context, FieldDiff, TagDiff, Tags};

use crate::ec2::{dependency_violation, ok_if_gone, set_tags, tag_spec};
use crate::error::{Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "route-table";

/// A route table as desired.
#[derive(Debug, Clone)]
pub(crate) struct RouteTable {
    /// `rt/public` or `rt/private/<zone>`.
    pub(crate) logical: String,
    /// The VPC's id (`(vpc)` while it is still to be made).
    pub(crate) vpc_id: String,
    /// The target of its `0.0.0.0/0` route, if any (an internet or NAT gateway id).
    pub(crate) target: Option<String>,
    /// The subnets associated with it.
    pub(crate) subnets: BTreeSet<String>,
    /// What the plan says of its route.
    pub(crate) detail: String,
    pub(crate) tags: Tags,
}

/// A route table as a read found it.
#[derive(Debug, Clone)]
pub(crate) struct LiveRouteTable {
    pub(crate) id: String,
    pub(crate) tags: Tags,
    /// The target of the `0.0.0.0/0` route (internet or NAT gateway id), if any.
    pub(crate) default_target: Option<String>,
    /// (association id, subnet id) of each subnet association.
    pub(crate) associations: Vec<(String, String)>,
}

impl LiveRouteTable {
    fn subnets(&self) -> BTreeSet<String> {
        self.associations.iter().map(|(_, s)| s.clone()).collect()
    }
}

/// One typed difference of a route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteTableDiff {
    /// The `0.0.0.0/0` route (`CreateRoute`, `ReplaceRoute` or `DeleteRoute`).
    DefaultRoute {
        live: Option<String>,
        desired: Option<String>,
    },
    /// The associated subnets (`DisassociateRouteTable`, `AssociateRouteTable`).
    Subnets {
        live: BTreeSet<String>,
        desired: BTreeSet<String>,
    },
    /// The tags.
    Tags(TagDiff),
}

impl Diff for RouteTableDiff {
    fn field(&self) -> FieldDiff {
        match self {
            RouteTableDiff::DefaultRoute { live, desired } => FieldDiff::new(
                "route 0.0.0.0/0",
                live.as_deref().unwrap_or("none"),
                desired.as_deref().unwrap_or("none"),
            ),
            RouteTableDiff::Subnets { live, desired } => {
                FieldDiff::new("subnets", format!("{live:?}"), format!("{desired:?}"))
            }
            RouteTableDiff::Tags(t) => t.field(),
        }
    }
}

impl RouteTable {
    fn label(&self) -> String {
        format!("{KIND} {}", self.logical)
    }

    async fn set_route(
        &self,
        ctx: &Context,
        ec2: &Client,
        id: &str,
        live: Option<&str>,
    ) -> Result<()> {
        let resource = self.label();
        let nat = |t: &str| t.starts_with("nat-");
        match (live, self.target.as_deref()) {
            (None, Some(t)) => {
                ctx.call("CreateRoute", &resource, || {
                    let b = ec2
                        .create_route()
                        .route_table_id(id)
                        .destination_cidr_block("0.0.0.0/0");
                    if nat(t) {
                        b.nat_gateway_id(t)
                    } else {
                        b.gateway_id(t)
                    }
                    .send()
                })
                .await?;
            }
            (Some(_), Some(t)) => {
                ctx.call("ReplaceRoute", &resource, || {
                    let b = ec2
                        .replace_route()
                        .route_table_id(id)
                        .destination_cidr_block("0.0.0.0/0");
                    if nat(t) {
                        b.nat_gateway_id(t)
                    } else {
                        b.gateway_id(t)
                    }
                    .send()
                })
                .await?;
            }
            (Some(_), None) => {
                ok_if_gone(
                    ctx.call("DeleteRoute", &resource, || {
                        ec2.delete_route()
                            .route_table_id(id)
                            .destination_cidr_block("0.0.0.0/0")
                            .send()
                    })
                    .await,
                )?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    async fn associate(&self, ctx: &Context, ec2: &Client, live: &LiveRouteTable) -> Result<()> {
        let resource = self.label();
        for (assoc, subnet) in &live.associations {
            if !self.subnets.contains(subnet) {
                ok_if_gone(
                    ctx.call("DisassociateRouteTable", &resource, || {
                        ec2.disassociate_route_table().association_id(assoc).send()
                    })
                    .await,
                )?;
            }
        }
        let current = live.subnets();
        for subnet in self.subnets.difference(&current) {
            ctx.call("AssociateRouteTable", &resource, || {
                ec2.associate_route_table()
                    .route_table_id(&live.id)
                    .subnet_id(subnet)
                    .send()
            })
            .await?;
        }
        Ok(())
    }
}

impl Resource for RouteTable {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveRouteTable;
    type Diff = RouteTableDiff;
    /// Its id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.logical.clone()
    }

    fn detail(&self) -> String {
        self.detail.clone()
    }

    fn owner(live: &LiveRouteTable) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveRouteTable) -> Vec<RouteTableDiff> {
        let mut d = Vec::new();
        if live.default_target != self.target {
            d.push(RouteTableDiff::DefaultRoute {
                live: live.default_target.clone(),
                desired: self.target.clone(),
            });
        }
        let subnets = live.subnets();
        if subnets != self.subnets {
            d.push(RouteTableDiff::Subnets {
                live: subnets,
                desired: self.subnets.clone(),
            });
        }
        d.extend(self.tags.diff_from(&live.tags).map(RouteTableDiff::Tags));
        d
    }

    fn output(live: &LiveRouteTable) -> String {
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
        live: &LiveRouteTable,
        diffs: &[RouteTableDiff],
    ) -> Result<()> {
        for diff in diffs {
            match diff {
                RouteTableDiff::DefaultRoute { live: target, .. } => {
                    self.set_route(ctx, ec2, &live.id, target.as_deref())
                        .await?
                }
                RouteTableDiff::Subnets { .. } => self.associate(ctx, ec2, live).await?,
                RouteTableDiff::Tags(t) => set_tags(ctx, ec2, &self.label(), &live.id, t).await?,
            }
        }
        Ok(())
    }

    /// Its subnets disassociated, then deleted (retried while something still depends on it).
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveRouteTable) -> Result<()> {
        let resource = format!("{KIND} {}", live.id);
        for (assoc, _) in &live.associations {
            ok_if_gone(
                ctx.call("DisassociateRouteTable", &resource, || {
                    ec2.disassociate_route_table().association_id(assoc).send()
                })
                .await,
            )?;
        }
        ok_if_gone(
            ctx.call_retrying(
                "DeleteRouteTable",
                &resource,
                &dependency_violation(),
                || ec2.delete_route_table().route_table_id(&live.id).send(),
            )
            .await,
        )
    }
}

impl Staged for RouteTable {
    /// `CreateRouteTable` with its tags, idempotent by a client token from its VPC: no route,
    /// no association yet.
    async fn make(&self, ctx: &Context, ec2: &Client) -> Result<LiveRouteTable> {
        let token = ctx.client_token(&self.logical, &self.vpc_id);
        let out = ctx
            .call("CreateRouteTable", &self.label(), || {
                ec2.create_route_table()
                    .vpc_id(&self.vpc_id)
                    .client_token(&token)
                    .tag_specifications(tag_spec(ResourceType::RouteTable, &self.tags))
                    .send()
            })
            .await?;
        Ok(LiveRouteTable {
            id: out
                .route_table()
                .and_then(|t| t.route_table_id())
                .unwrap_or_default()
                .to_string(),
            tags: self.tags.clone(),
            default_target: None,
            associations: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::Action;

    #[test]
    fn typed_diff_table() {
        let tags = Tags::new().with("ecs:stack", "web");
        let desired = RouteTable {
            logical: "rt/private/a".into(),
            vpc_id: "vpc-1".into(),
            target: Some("nat-1".into()),
            subnets: ["subnet-1".to_string()].into(),
            detail: String::new(),
            tags: tags.clone(),
        };
        let live = |target: Option<&str>, subnets: &[&str], tags: &Tags| LiveRouteTable {
            id: "rtb-1".into(),
            tags: tags.clone(),
            default_target: target.map(str::to_string),
            associations: subnets
                .iter()
                .map(|s| (format!("assoc-{s}"), s.to_string()))
                .collect(),
        };
        let cases = [
            (live(Some("nat-1"), &["subnet-1"], &tags), Action::NoChange),
            (
                live(None, &[], &tags),
                Action::Update(vec![
                    FieldDiff::new("route 0.0.0.0/0", "none", "nat-1"),
                    FieldDiff::new("subnets", "{}", "{\"subnet-1\"}"),
                ]),
            ),
            (
                live(Some("nat-2"), &["subnet-1", "subnet-2"], &Tags::new()),
                Action::Update(vec![
                    FieldDiff::new("route 0.0.0.0/0", "nat-2", "nat-1"),
                    FieldDiff::new("subnets", "{\"subnet-1\", \"subnet-2\"}", "{\"subnet-1\"}"),
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
