//! A VPC endpoint of the stack's VPC: a gateway endpoint (S3) in the private route tables, or
//! an interface endpoint (ECR, logs, …) in the private subnets with the endpoints' security
//! group and private DNS; its route tables, subnets and tags.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{ResourceType, VpcEndpointType};
use aws_sdk_ec2::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, Poll, PollPolicy, TagDiff, Tags};

use crate::ec2::{already_gone, ok_if_gone, set_tags, tag_spec, DEPENDENCY_BUDGET};
use crate::error::{Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "vpc-endpoint";

/// An endpoint as desired.
#[derive(Debug, Clone)]
pub(crate) struct VpcEndpoint {
    /// `endpoint/<name>`.
    pub(crate) logical: String,
    /// `com.amazonaws.<region>.<service>`.
    pub(crate) service_name: String,
    /// A gateway endpoint (else an interface endpoint).
    pub(crate) gateway: bool,
    /// The VPC's id (`(vpc)` while it is still to be made).
    pub(crate) vpc_id: String,
    /// A gateway endpoint's route tables (empty for an interface endpoint).
    pub(crate) route_tables: BTreeSet<String>,
    /// An interface endpoint's subnets (empty for a gateway endpoint).
    pub(crate) subnets: BTreeSet<String>,
    /// An interface endpoint's security group.
    pub(crate) security_group: String,
    pub(crate) tags: Tags,
}

/// An endpoint as a read found it (not being deleted).
#[derive(Debug, Clone)]
pub(crate) struct LiveEndpoint {
    pub(crate) id: String,
    pub(crate) tags: Tags,
    pub(crate) route_tables: BTreeSet<String>,
    pub(crate) subnets: BTreeSet<String>,
}

/// One typed difference of an endpoint; route tables and subnets change in one
/// `ModifyVpcEndpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointDiff {
    RouteTables {
        live: BTreeSet<String>,
        desired: BTreeSet<String>,
    },
    Subnets {
        live: BTreeSet<String>,
        desired: BTreeSet<String>,
    },
    Tags(TagDiff),
}

impl Diff for EndpointDiff {
    fn field(&self) -> FieldDiff {
        match self {
            EndpointDiff::RouteTables { live, desired } => {
                FieldDiff::new("route_tables", format!("{live:?}"), format!("{desired:?}"))
            }
            EndpointDiff::Subnets { live, desired } => {
                FieldDiff::new("subnets", format!("{live:?}"), format!("{desired:?}"))
            }
            EndpointDiff::Tags(t) => t.field(),
        }
    }
}

impl VpcEndpoint {
    fn label(&self) -> String {
        format!("{KIND} {}", self.logical)
    }
}

impl Resource for VpcEndpoint {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveEndpoint;
    type Diff = EndpointDiff;
    /// Its id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.logical.clone()
    }

    fn detail(&self) -> String {
        self.service_name.clone()
    }

    fn owner(live: &LiveEndpoint) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveEndpoint) -> Vec<EndpointDiff> {
        let mut d = Vec::new();
        if live.route_tables != self.route_tables {
            d.push(EndpointDiff::RouteTables {
                live: live.route_tables.clone(),
                desired: self.route_tables.clone(),
            });
        }
        if live.subnets != self.subnets {
            d.push(EndpointDiff::Subnets {
                live: live.subnets.clone(),
                desired: self.subnets.clone(),
            });
        }
        d.extend(self.tags.diff_from(&live.tags).map(EndpointDiff::Tags));
        d
    }

    fn output(live: &LiveEndpoint) -> String {
        live.id.clone()
    }

    fn created(id: &String) -> Option<String> {
        Some(id.clone())
    }

    fn updated(id: &String) -> Option<String> {
        Some(id.clone())
    }

    /// `CreateVpcEndpoint`, idempotent by a client token from its VPC.
    async fn create(&self, ctx: &Context, ec2: &Client) -> Result<String> {
        let token = ctx.client_token(&self.logical, &self.vpc_id);
        let out = ctx
            .call("CreateVpcEndpoint", &self.label(), || {
                let b = ec2
                    .create_vpc_endpoint()
                    .vpc_id(&self.vpc_id)
                    .service_name(&self.service_name)
                    .client_token(&token)
                    .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &self.tags));
                if self.gateway {
                    b.vpc_endpoint_type(VpcEndpointType::Gateway)
                        .set_route_table_ids(Some(self.route_tables.iter().cloned().collect()))
                } else {
                    b.vpc_endpoint_type(VpcEndpointType::Interface)
                        .set_subnet_ids(Some(self.subnets.iter().cloned().collect()))
                        .security_group_ids(&self.security_group)
                        .private_dns_enabled(true)
                }
                .send()
            })
            .await?;
        Ok(out
            .vpc_endpoint()
            .and_then(|x| x.vpc_endpoint_id())
            .unwrap_or_default()
            .to_string())
    }

    async fn update(
        &self,
        ctx: &Context,
        ec2: &Client,
        live: &LiveEndpoint,
        diffs: &[EndpointDiff],
    ) -> Result<()> {
        let resource = self.label();
        let added = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Option<Vec<String>> {
            let d: Vec<String> = a.difference(b).cloned().collect();
            (!d.is_empty()).then_some(d)
        };
        let moved = diffs.iter().any(|d| !matches!(d, EndpointDiff::Tags(_)));
        if moved {
            ctx.call("ModifyVpcEndpoint", &resource, || {
                ec2.modify_vpc_endpoint()
                    .vpc_endpoint_id(&live.id)
                    .set_add_route_table_ids(added(&self.route_tables, &live.route_tables))
                    .set_remove_route_table_ids(added(&live.route_tables, &self.route_tables))
                    .set_add_subnet_ids(added(&self.subnets, &live.subnets))
                    .set_remove_subnet_ids(added(&live.subnets, &self.subnets))
                    .send()
            })
            .await?;
        }
        for d in diffs {
            if let EndpointDiff::Tags(t) = d {
                set_tags(ctx, ec2, &resource, &live.id, t).await?;
            }
        }
        Ok(())
    }

    /// Deleted and waited until gone (a teardown deletes all of them in one call:
    /// [`delete_all`]).
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveEndpoint) -> Result<()> {
        delete_all(
            ctx,
            ec2,
            &format!("{KIND} {}", live.id),
            std::slice::from_ref(&live.id),
        )
        .await
    }
}

/// Deletes the endpoints `ids` in one call and waits until they are gone.
pub(crate) async fn delete_all(
    ctx: &Context,
    ec2: &Client,
    resource: &str,
    ids: &[String],
) -> Result<()> {
    ok_if_gone(
        ctx.call("DeleteVpcEndpoints", resource, || {
            ec2.delete_vpc_endpoints()
                .set_vpc_endpoint_ids(Some(ids.to_vec()))
                .send()
        })
        .await,
    )?;
    ctx.poll(
        resource,
        "deletion",
        &PollPolicy::with_timeout(DEPENDENCY_BUDGET),
        || async {
            let out = ctx
                .call("DescribeVpcEndpoints", resource, || {
                    ec2.describe_vpc_endpoints()
                        .set_vpc_endpoint_ids(Some(ids.to_vec()))
                        .send()
                })
                .await;
            let out = match out {
                Err(e) if already_gone(&e) => return Ok(Poll::Ready(())),
                other => other?,
            };
            let left = out
                .vpc_endpoints()
                .iter()
                .filter(|e| {
                    !e.state()
                        .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
                })
                .count();
            Ok(if left == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{left} left"))
            })
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::Action;

    #[test]
    fn typed_diff_table() {
        let tags = Tags::new().with("ecs:stack", "web");
        let set =
            |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| s.to_string()).collect() };
        let desired = VpcEndpoint {
            logical: "endpoint/s3".into(),
            service_name: "com.amazonaws.us-east-1.s3".into(),
            gateway: true,
            vpc_id: "vpc-1".into(),
            route_tables: set(&["rtb-1", "rtb-2"]),
            subnets: BTreeSet::new(),
            security_group: String::new(),
            tags: tags.clone(),
        };
        let live = |rts: &[&str], subnets: &[&str], tags: &Tags| LiveEndpoint {
            id: "vpce-1".into(),
            tags: tags.clone(),
            route_tables: set(rts),
            subnets: set(subnets),
        };
        let cases = [
            (live(&["rtb-1", "rtb-2"], &[], &tags), Action::NoChange),
            (
                live(&["rtb-1"], &["subnet-1"], &Tags::new()),
                Action::Update(vec![
                    FieldDiff::new("route_tables", "{\"rtb-1\"}", "{\"rtb-1\", \"rtb-2\"}"),
                    FieldDiff::new("subnets", "{\"subnet-1\"}", "{}"),
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
