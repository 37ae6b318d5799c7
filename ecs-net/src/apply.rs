//! Carrying out a plan, tearing down what is no longer wanted, and the waits.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, ResourceType, Tag, TagSpecification, VpcEndpointType,
};
use aws_sdk_ec2::Client;
use ecs_core::graph::{Dep, Graph, Inputs, Outputs, Step};
use ecs_core::{
    Action, AwsError, AwsErrorKind, Context, NameKind, Poll, PollPolicy, RetryOn, Tags,
};

use crate::default_sg::{self, DEFAULT_SG, DEFAULT_SG_KIND};
use crate::error::{Error, Result};
use crate::live::{Live, LiveRouteTable, LiveSg};
use crate::plan::*;
use crate::rules::{Peer, Rule};
use crate::NetworkOutputs;

/// How long deletions blocked by lingering dependencies (ENIs of load balancers and tasks,
/// mapped public addresses) are retried.
const DEPENDENCY_BUDGET: Duration = Duration::from_secs(600);

fn dependency_violation() -> RetryOn {
    RetryOn::codes(
        &["DependencyViolation", "InvalidGroup.InUse", "ResourceInUse"],
        DEPENDENCY_BUDGET,
    )
}

pub(crate) fn ec2_tags(tags: &Tags) -> Vec<Tag> {
    tags.to_sdk(|k, v| Tag::builder().key(k).value(v).build())
}

fn tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

/// Whether an error says the resource is already gone (deletes are idempotent).
fn already_gone(e: &AwsError) -> bool {
    e.code().is_some_and(|c| {
        c.ends_with(".NotFound")
            || c.ends_with("NotFound")
            || c == "Gateway.NotAttached"
            || c == "InvalidAssociationID.NotFound"
    })
}

fn ok_if_gone<T>(r: std::result::Result<T, AwsError>) -> std::result::Result<(), AwsError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if already_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

fn label(kind: &str, logical: &str) -> String {
    format!("{kind} {logical}")
}

/// Brings the tags of `id` to `desired` (CreateTags for new or changed values, DeleteTags for
/// keys no longer wanted); no call when they already match.
async fn sync_tags(
    ctx: &Context,
    ec2: &Client,
    resource: &str,
    id: &str,
    live: &Tags,
    desired: &Tags,
) -> Result<()> {
    let Some(diff) = desired.diff_from(live) else {
        return Ok(());
    };
    diff.apply(
        |set| {
            let tags = ec2_tags(set);
            async move {
                ctx.call("CreateTags", resource, || {
                    ec2.create_tags()
                        .resources(id)
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await?;
                Ok::<_, Error>(())
            }
        },
        |keys| {
            let unset: Vec<Tag> = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
            async move {
                ctx.call("DeleteTags", resource, || {
                    ec2.delete_tags()
                        .resources(id)
                        .set_tags(Some(unset.clone()))
                        .send()
                })
                .await?;
                Ok::<_, Error>(())
            }
        },
    )
    .await
}

/// Adopts an existing resource whose only possible in-place change is its tags: syncs them
/// when the plan's action says they differ, and returns its id.
async fn adopt<T: crate::live::Owned>(
    ctx: &Context,
    ec2: &Client,
    resource: &str,
    live: &T,
    action: &Action,
    tags: &Tags,
) -> Result<String> {
    if action.is_change() {
        sync_tags(ctx, ec2, resource, live.id(), live.tags(), tags).await?;
    }
    Ok(live.id().to_string())
}

/// Carries out `plan`; returns the network's outputs. Refuses (before any call) when the plan
/// replaces a VPC, subnet or NAT gateway.
pub(crate) async fn apply(
    ctx: &Context,
    ec2: &Client,
    plan: &NetworkPlan,
) -> Result<NetworkOutputs> {
    plan.check_replacements()?;
    let outputs = apply_graph(ctx, ec2, plan).await?;
    teardown(
        ctx,
        ec2,
        &surplus_live(&plan.live, &plan.desired.logical_ids()),
    )
    .await?;
    Ok(outputs)
}

/// What the plan says will happen to `logical` of `kind`, as the verb the executor reports
/// (`None`: nothing changes, the step runs silently).
fn verb(plan: &NetworkPlan, kind: &str, logical: &str) -> Option<&'static str> {
    plan.changes
        .find(kind, logical)
        .and_then(|c| c.action.verb())
}

/// The verb of a step that makes a resource: reported only when the plan creates it.
fn create_verb(plan: &NetworkPlan, kind: &str, logical: &str) -> Option<&'static str> {
    verb(plan, kind, logical).filter(|v| *v == "create")
}

/// The verb of a step that brings a resource that exists to what is desired: reported only
/// when the plan updates it.
fn update_verb(plan: &NetworkPlan, kind: &str, logical: &str) -> Option<&'static str> {
    verb(plan, kind, logical).filter(|v| *v == "update")
}

/// Creates or adopts every resource of the network, as one [`Graph`]: each step starts as
/// soon as what it needs exists, and waits for nothing else:
///
/// * the VPC and the NAT gateways' addresses first (they need nothing);
/// * once the VPC id is known: the VPC's DNS attributes and tags, the internet gateway
///   (created and attached), the subnets, the route tables and the security groups; each
///   group's rules once every group exists (rules reference each other);
/// * NAT gateway *z*: its public subnet, its address and the attached internet gateway (AWS
///   fails a public NAT gateway in a VPC without one);
/// * the public route table's routes and associations: the internet gateway and the public
///   subnets; private route table *z*'s: its subnet and the NAT gateway it routes through
///   (which need not be available yet);
/// * a gateway endpoint: the private route tables; an interface endpoint: the private subnets,
///   the endpoints' security group and the VPC's DNS attributes (for its private DNS name).
///
/// In a VPC the stack does not manage, only the security groups. The executor stops starting
/// steps at the first error, lets started ones finish, and returns that error.
async fn apply_graph(ctx: &Context, ec2: &Client, plan: &NetworkPlan) -> Result<NetworkOutputs> {
    let (desired, live) = (&plan.desired, &plan.live);
    // Declared before the graph, whose steps borrow it.
    let nat_zones: Vec<String> = desired
        .managed()
        .map(DesiredVpc::nat_zones)
        .unwrap_or_default();
    let mut g = Graph::<Error>::new();

    // The VPC, its id available as soon as it is created or adopted.
    let (vpc, managed) = match &desired.network {
        DesiredNetwork::Managed(v) => {
            let vpc = g
                .step(label("vpc", VPC))
                .action_if(create_verb(plan, "vpc", VPC))
                .run_with_detail(
                    |(id, _): &(String, Option<VpcSettings>)| id.clone(),
                    move |_| ensure_vpc(ctx, ec2, v, live),
                );
            (vpc, Some(v))
        }
        DesiredNetwork::Existing(e) => {
            let id = e.vpc_id.clone();
            let vpc = g
                .step(label("vpc", &id))
                .run(move |_| async move { Ok::<_, Error>((id, None::<VpcSettings>)) });
            (vpc, None)
        }
    };
    let vpc_id = move |i: &Inputs| i.get(vpc).0.clone();

    // The security groups: created once the VPC exists, their rules written once they all
    // exist (rules reference them).
    let groups: Vec<(&'static str, Step<String>)> = desired
        .security_groups()
        .into_iter()
        .map(|sg| {
            let step = g
                .step(label("security-group", sg))
                .after(vpc)
                .action_if(create_verb(plan, "security-group", sg))
                .run_with_detail(String::clone, move |i| {
                    let vpc_id = vpc_id(&i);
                    async move { ensure_security_group(ctx, ec2, live, sg, &vpc_id).await }
                });
            (sg, step)
        })
        .collect();
    for sg in desired.security_groups() {
        let all = groups.clone();
        g.step(label("security-group", sg))
            .after_all(groups.iter().map(|(_, s)| *s))
            .action_if(update_verb(plan, "security-group", sg))
            .run(move |i| {
                let mut ids = Ids::from_live(live);
                for (sg, step) in &all {
                    ids.set(sg, i.get(*step).clone());
                }
                async move { sync_security_group(ctx, ec2, desired, live, sg, &ids).await }
            });
    }

    let Some(v) = managed else {
        let out = g.run(ctx).await?;
        let ids = group_ids_of(&out, &groups, live);
        let DesiredNetwork::Existing(e) = &desired.network else {
            unreachable!("only an existing VPC has no managed part")
        };
        return Ok(NetworkOutputs {
            vpc_id: e.vpc_id.clone(),
            vpc_cidr: e.cidr.clone(),
            availability_zones: e.zones.clone(),
            public_subnets: e.public.clone(),
            private_subnets: e.private.clone(),
            alb_sg: ids.get(SG_ALB),
            task_sg: ids.get(SG_TASK),
            nat_gateways: Vec::new(),
            vpc_endpoints: Vec::new(),
        });
    };

    let vpc_settings = g
        .step(label("vpc", VPC))
        .after(vpc)
        .action_if(update_verb(plan, "vpc", VPC))
        .run(move |i| {
            let (id, pending) = i.get(vpc).clone();
            async move { sync_vpc(ctx, ec2, &id, pending).await }
        });

    // The default security group AWS gives the VPC: left with no rules (EC2.2).
    let live_vpc = select(&live.vpcs, VPC);
    g.step(label(DEFAULT_SG_KIND, DEFAULT_SG))
        .after(vpc)
        .action_if(verb(plan, DEFAULT_SG_KIND, DEFAULT_SG))
        .run(move |i| {
            let vpc_id = vpc_id(&i);
            async move {
                let found = live_vpc.and_then(|l| l.default_sg.as_ref());
                default_sg::apply(ctx, ec2, found, &vpc_id, live_vpc.is_some()).await
            }
        });

    // The NAT gateways' addresses, in the order of `nat_zones`.
    let eips: Vec<Step<String>> = nat_zones
        .iter()
        .map(|z| {
            let logical = eip_id(z);
            g.step(label("elastic-ip", &logical))
                .action_if(create_verb(plan, "elastic-ip", &logical))
                .run_with_detail(String::clone, move |_| async move {
                    ensure_eip(ctx, ec2, live, &logical).await
                })
        })
        .collect();

    let igw = g
        .step(label("internet-gateway", IGW))
        .after(vpc)
        .action_if(verb(plan, "internet-gateway", IGW))
        .run_with_detail(String::clone, move |i| {
            let vpc_id = vpc_id(&i);
            async move { ensure_igw(ctx, ec2, live, &vpc_id).await }
        });

    // The public subnets in zone order, then the private ones.
    let mut subnets: Vec<Step<String>> = Vec::new();
    for (tier, blocks) in [("public", &v.public), ("private", &v.private)] {
        for (z, cidr) in v.zones.iter().zip(blocks.iter()) {
            let logical = subnet_id(tier, z);
            subnets.push(
                g.step(format!("subnet {logical} ({cidr})"))
                    .after(vpc)
                    .action_if(create_verb(plan, "subnet", &logical))
                    .run_with_detail(String::clone, move |i| {
                        let vpc_id = vpc_id(&i);
                        async move {
                            ensure_subnet(ctx, ec2, &logical, cidr, z, &vpc_id, live).await
                        }
                    }),
            );
        }
    }
    let (public, private) = subnets.split_at(v.zones.len());

    // The public route table, then the private ones in zone order.
    let mut table_names: Vec<String> = vec![RT_PUBLIC.to_string()];
    table_names.extend(v.zones.iter().map(|z| rt_private_id(z)));
    let tables: Vec<Step<String>> = table_names
        .into_iter()
        .map(|logical| {
            g.step(label("route-table", &logical))
                .after(vpc)
                .action_if(create_verb(plan, "route-table", &logical))
                .run_with_detail(String::clone, move |i| {
                    let vpc_id = vpc_id(&i);
                    async move { ensure_route_table(ctx, ec2, &logical, live, &vpc_id).await }
                })
        })
        .collect();

    // NAT gateway z: its public subnet, its address and the attached internet gateway.
    let nats: Vec<Step<String>> = nat_zones
        .iter()
        .zip(&eips)
        .map(|(z, &eip)| {
            let index = v.zones.iter().position(|x| x == z).unwrap_or(0);
            let subnet = public[index];
            let logical = nat_id(z);
            g.step(label("nat-gateway", &logical))
                .after(subnet)
                .after(eip)
                .after(igw)
                .action_if(create_verb(plan, "nat-gateway", &logical))
                .run_with_detail(
                    |id: &String| format!("{id} (provisioning; not waited for here)"),
                    move |i| {
                        let (subnet, allocation) = (i.get(subnet).clone(), i.get(eip).clone());
                        async move { ensure_nat(ctx, ec2, live, &subnet, &allocation, z).await }
                    },
                )
        })
        .collect();

    let (public_steps, public_table) = (public.to_vec(), tables[0]);
    g.step(label("route-table", RT_PUBLIC))
        .after(igw)
        .after(public_table)
        .after_all(public.iter().copied())
        .action_if(update_verb(plan, "route-table", RT_PUBLIC))
        .run(move |i| {
            let (igw, table) = (i.get(igw).clone(), i.get(public_table).clone());
            let subnets: BTreeSet<String> =
                public_steps.iter().map(|s| i.get(*s).clone()).collect();
            async move {
                sync_route_table(ctx, ec2, RT_PUBLIC, &table, Some(&igw), &subnets, live).await
            }
        });
    for (index, z) in v.zones.iter().enumerate() {
        let nat = v
            .nat_zone_for(z)
            .and_then(|nz| nat_zones.iter().position(|x| *x == nz))
            .map(|k| nats[k]);
        let (logical, table, subnet) = (rt_private_id(z), tables[1 + index], private[index]);
        g.step(label("route-table", &logical))
            .after(table)
            .after(subnet)
            .after_all(nat)
            .action_if(update_verb(plan, "route-table", &logical))
            .run(move |i| {
                let (table, subnet) = (i.get(table).clone(), i.get(subnet).clone());
                let target = nat.map(|n| i.get(n).clone());
                async move {
                    let subnets: BTreeSet<String> = [subnet].into();
                    sync_route_table(
                        ctx,
                        ec2,
                        &logical,
                        &table,
                        target.as_deref(),
                        &subnets,
                        live,
                    )
                    .await
                }
            });
    }

    let private_tables = tables[1..].to_vec();
    let private_subnets = private.to_vec();
    let endpoint_group = groups
        .iter()
        .find(|(sg, _)| *sg == SG_ENDPOINTS)
        .map(|(_, s)| *s);
    let endpoints: Vec<Step<String>> = v
        .endpoints
        .iter()
        .map(|e| {
            let step = g
                .step(label("vpc-endpoint", &e.logical))
                .after(vpc)
                .action_if(verb(plan, "vpc-endpoint", &e.logical));
            let step = if e.gateway {
                step.after_all(private_tables.iter().copied())
            } else {
                step.after_all(private_subnets.iter().copied())
                    .after_all(endpoint_group)
                    .after(vpc_settings)
            };
            let (private_tables, private_subnets) =
                (private_tables.clone(), private_subnets.clone());
            step.run_with_detail(String::clone, move |i| {
                let mut ids = Ids::from_live(live);
                if e.gateway {
                    for (z, t) in v.zones.iter().zip(&private_tables) {
                        ids.set(&rt_private_id(z), i.get(*t).clone());
                    }
                } else {
                    for (z, s) in v.zones.iter().zip(&private_subnets) {
                        ids.set(&subnet_id("private", z), i.get(*s).clone());
                    }
                    if let Some(group) = endpoint_group {
                        ids.set(SG_ENDPOINTS, i.get(group).clone());
                    }
                }
                let vpc_id = vpc_id(&i);
                async move { ensure_endpoint(ctx, ec2, v, e, live, &ids, &vpc_id).await }
            })
        })
        .collect();

    let out = g.run(ctx).await?;
    let ids = group_ids_of(&out, &groups, live);
    let ids_of = |steps: &[Step<String>]| -> Vec<String> {
        steps.iter().map(|s| out.get(*s).clone()).collect()
    };
    Ok(NetworkOutputs {
        vpc_id: out.get(vpc).0.clone(),
        vpc_cidr: v.cidr.to_string(),
        availability_zones: v.zones.clone(),
        public_subnets: ids_of(public),
        private_subnets: ids_of(private),
        alb_sg: ids.get(SG_ALB),
        task_sg: ids.get(SG_TASK),
        nat_gateways: ids_of(&nats),
        vpc_endpoints: ids_of(&endpoints),
    })
}

/// The security groups' ids after a run.
fn group_ids_of(out: &Outputs, groups: &[(&'static str, Step<String>)], live: &Live) -> Ids {
    let mut ids = Ids::from_live(live);
    for (sg, step) in groups {
        ids.set(sg, out.get(*step).clone());
    }
    ids
}

/// What of a VPC [`sync_vpc`] may still have to change: its DNS attributes and tags as found
/// by `plan` (or as AWS creates a VPC).
#[derive(Debug, Clone)]
struct VpcSettings {
    dns_support: bool,
    dns_hostnames: bool,
    tags: Tags,
}

/// Creates or adopts the VPC and returns its id at once, with the settings [`sync_vpc`] still
/// has to bring to what is desired (`None` when they are).
async fn ensure_vpc(
    ctx: &Context,
    ec2: &Client,
    v: &DesiredVpc,
    live: &Live,
) -> Result<(String, Option<VpcSettings>)> {
    let l = select(&live.vpcs, VPC);
    let resource = label("vpc", VPC);
    let tags = desired_tags(ctx, VPC);
    match (decide_vpc(ctx, v, l), l) {
        (Action::NoChange, Some(l)) => Ok((l.id.clone(), None)),
        (Action::Create, _) => {
            let out = ctx
                .call("CreateVpc", &resource, || {
                    ec2.create_vpc()
                        .cidr_block(v.cidr.to_string())
                        .tag_specifications(tag_spec(ResourceType::Vpc, &tags))
                        .send()
                })
                .await?;
            let id = out
                .vpc()
                .and_then(|v| v.vpc_id())
                .unwrap_or_default()
                .to_string();
            // A new VPC has DNS support on and DNS hostnames off.
            let settings = VpcSettings {
                dns_support: true,
                dns_hostnames: false,
                tags,
            };
            Ok((id, Some(settings)))
        }
        (_, Some(l)) => {
            let settings = VpcSettings {
                dns_support: l.dns_support,
                dns_hostnames: l.dns_hostnames,
                tags: l.tags.clone(),
            };
            Ok((l.id.clone(), Some(settings)))
        }
        (_, None) => unreachable!("only Create has no live VPC"),
    }
}

/// Switches on the VPC's DNS support and DNS hostnames where they are off (interface
/// endpoints' private DNS names need both) and syncs its tags.
async fn sync_vpc(
    ctx: &Context,
    ec2: &Client,
    id: &str,
    settings: Option<VpcSettings>,
) -> Result<()> {
    let Some(settings) = settings else {
        return Ok(());
    };
    let resource = label("vpc", VPC);
    let on = || AttributeBooleanValue::builder().value(true).build();
    if !settings.dns_support {
        ctx.call("ModifyVpcAttribute", &resource, || {
            ec2.modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_support(on())
                .send()
        })
        .await?;
    }
    if !settings.dns_hostnames {
        ctx.call("ModifyVpcAttribute", &resource, || {
            ec2.modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_hostnames(on())
                .send()
        })
        .await?;
    }
    let tags = desired_tags(ctx, VPC);
    sync_tags(ctx, ec2, &resource, id, &settings.tags, &tags).await
}

async fn ensure_eip(ctx: &Context, ec2: &Client, live: &Live, logical: &str) -> Result<String> {
    let resource = label("elastic-ip", logical);
    let tags = desired_tags(ctx, logical);
    let l = select(&live.eips, logical);
    match (decide_tagged(ctx, logical, l), l) {
        (Action::Create, _) | (_, None) => {
            let out = ctx
                .call("AllocateAddress", &resource, || {
                    ec2.allocate_address()
                        .domain(DomainType::Vpc)
                        .tag_specifications(tag_spec(ResourceType::ElasticIp, &tags))
                        .send()
                })
                .await?;
            Ok(out.allocation_id().unwrap_or_default().to_string())
        }
        (action, Some(l)) => adopt(ctx, ec2, &resource, l, &action, &tags).await,
    }
}

async fn ensure_subnet(
    ctx: &Context,
    ec2: &Client,
    logical: &str,
    cidr: &ipnet::Ipv4Net,
    az: &str,
    vpc_id: &str,
    live: &Live,
) -> Result<String> {
    let resource = format!("subnet {logical} ({cidr})");
    let tags = desired_tags(ctx, logical);
    let l = select(&live.subnets, logical);
    match (decide_subnet(ctx, logical, cidr, az, l), l) {
        (Action::Create, _) | (_, None) => {
            let out = ctx
                .call("CreateSubnet", &resource, || {
                    ec2.create_subnet()
                        .vpc_id(vpc_id)
                        .cidr_block(cidr.to_string())
                        .availability_zone(az)
                        .tag_specifications(tag_spec(ResourceType::Subnet, &tags))
                        .send()
                })
                .await?;
            Ok(out
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_default()
                .to_string())
        }
        (action, Some(l)) => adopt(ctx, ec2, &resource, l, &action, &tags).await,
    }
}

async fn ensure_igw(ctx: &Context, ec2: &Client, live: &Live, vpc_id: &str) -> Result<String> {
    let resource = label("internet-gateway", IGW);
    let tags = desired_tags(ctx, IGW);
    let l = select(&live.igws, IGW);
    let action = decide_igw(ctx, l, vpc_id);
    let (id, attached, live_tags) = match (&action, l) {
        (Action::NoChange, Some(l)) => return Ok(l.id.clone()),
        (Action::Create, _) | (_, None) => {
            let out = ctx
                .call("CreateInternetGateway", &resource, || {
                    ec2.create_internet_gateway()
                        .tag_specifications(tag_spec(ResourceType::InternetGateway, &tags))
                        .send()
                })
                .await?;
            let id = out
                .internet_gateway()
                .and_then(|g| g.internet_gateway_id())
                .unwrap_or_default()
                .to_string();
            (id, None, tags.clone())
        }
        (_, Some(l)) => (l.id.clone(), l.attached_vpc.clone(), l.tags.clone()),
    };
    if attached.as_deref() != Some(vpc_id) {
        if let Some(other) = &attached {
            ctx.call("DetachInternetGateway", &resource, || {
                ec2.detach_internet_gateway()
                    .internet_gateway_id(&id)
                    .vpc_id(other)
                    .send()
            })
            .await?;
        }
        ctx.call("AttachInternetGateway", &resource, || {
            ec2.attach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(vpc_id)
                .send()
        })
        .await?;
    }
    sync_tags(ctx, ec2, &resource, &id, &live_tags, &tags).await?;
    Ok(id)
}

/// Creates the route table when missing (routes and associations come later); returns its id.
async fn ensure_route_table(
    ctx: &Context,
    ec2: &Client,
    logical: &str,
    live: &Live,
    vpc_id: &str,
) -> Result<String> {
    if let Some(l) = select(&live.route_tables, logical) {
        return Ok(l.id.clone());
    }
    let resource = label("route-table", logical);
    let tags = desired_tags(ctx, logical);
    let token = ctx.client_token(logical, vpc_id);
    let out = ctx
        .call("CreateRouteTable", &resource, || {
            ec2.create_route_table()
                .vpc_id(vpc_id)
                .client_token(&token)
                .tag_specifications(tag_spec(ResourceType::RouteTable, &tags))
                .send()
        })
        .await?;
    Ok(out
        .route_table()
        .and_then(|t| t.route_table_id())
        .unwrap_or_default()
        .to_string())
}

/// Brings a route table's default route, subnet associations and tags to what is desired
/// (`table_id` is its id, when `plan` did not find it).
async fn sync_route_table(
    ctx: &Context,
    ec2: &Client,
    logical: &str,
    table_id: &str,
    target: Option<&str>,
    subnets: &BTreeSet<String>,
    live: &Live,
) -> Result<()> {
    let empty = LiveRouteTable {
        id: table_id.to_string(),
        tags: desired_tags(ctx, logical),
        default_target: None,
        associations: Vec::new(),
    };
    let l = select(&live.route_tables, logical).unwrap_or(&empty);
    if !decide_route_table(ctx, logical, target, subnets, Some(l)).is_change() {
        return Ok(());
    }
    let resource = label("route-table", logical);
    let id = &l.id;
    if l.default_target.as_deref() != target {
        let nat = |t: &str| t.starts_with("nat-");
        match (&l.default_target, target) {
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
    }
    let current: BTreeSet<&str> = l.associations.iter().map(|(_, s)| s.as_str()).collect();
    for (assoc, subnet) in &l.associations {
        if !subnets.contains(subnet) {
            ok_if_gone(
                ctx.call("DisassociateRouteTable", &resource, || {
                    ec2.disassociate_route_table().association_id(assoc).send()
                })
                .await,
            )?;
        }
    }
    for subnet in subnets.iter().filter(|s| !current.contains(s.as_str())) {
        ctx.call("AssociateRouteTable", &resource, || {
            ec2.associate_route_table()
                .route_table_id(id)
                .subnet_id(subnet)
                .send()
        })
        .await?;
    }
    sync_tags(
        ctx,
        ec2,
        &resource,
        id,
        &l.tags,
        &desired_tags(ctx, logical),
    )
    .await
}

/// Creates (or adopts) the NAT gateway of `zone` in its public subnet `subnet`, with the
/// address `allocation`; returns its id.
async fn ensure_nat(
    ctx: &Context,
    ec2: &Client,
    live: &Live,
    subnet: &str,
    allocation: &str,
    zone: &str,
) -> Result<String> {
    let logical = nat_id(zone);
    let resource = label("nat-gateway", &logical);
    let tags = desired_tags(ctx, &logical);
    let l = select(&live.nats, &logical);
    match (decide_nat(ctx, &logical, subnet, l), l) {
        (Action::Create, _) | (_, None) => {
            let token = ctx.client_token(&logical, &format!("{subnet} {allocation}"));
            let out = ctx
                .call("CreateNatGateway", &resource, || {
                    ec2.create_nat_gateway()
                        .subnet_id(subnet)
                        .allocation_id(allocation)
                        .client_token(&token)
                        .tag_specifications(tag_spec(ResourceType::Natgateway, &tags))
                        .send()
                })
                .await?;
            Ok(out
                .nat_gateway()
                .and_then(|n| n.nat_gateway_id())
                .unwrap_or_default()
                .to_string())
        }
        (action, Some(l)) => adopt(ctx, ec2, &resource, l, &action, &tags).await,
    }
}

/// Creates the security group `sg` when missing (without its rules); returns its id.
async fn ensure_security_group(
    ctx: &Context,
    ec2: &Client,
    live: &Live,
    sg: &str,
    vpc_id: &str,
) -> Result<String> {
    if let Some(l) = select(&live.sgs, sg) {
        return Ok(l.id.clone());
    }
    let resource = label("security-group", sg);
    let tags = desired_tags(ctx, sg);
    let short = sg.replace("sg/", "");
    let name = ctx.stack().name(NameKind::SecurityGroup, &short);
    let out = ctx
        .call("CreateSecurityGroup", &resource, || {
            ec2.create_security_group()
                .group_name(&name)
                .description(format!("{short} of stack {}", ctx.stack()))
                .vpc_id(vpc_id)
                .tag_specifications(tag_spec(ResourceType::SecurityGroup, &tags))
                .send()
        })
        .await?;
    Ok(out.group_id().unwrap_or_default().to_string())
}

/// Brings the rules and tags of the group `sg` to what is desired; `ids` has every group's id
/// (the rules reference the groups).
async fn sync_security_group(
    ctx: &Context,
    ec2: &Client,
    desired: &Desired,
    live: &Live,
    sg: &str,
    ids: &Ids,
) -> Result<()> {
    let (ingress, egress) = desired.sg_rules(sg, ids);
    let fresh;
    let l = match select(&live.sgs, sg) {
        Some(l) => l,
        None => {
            // AWS gives every new group one egress rule allowing everything.
            fresh = LiveSg {
                id: ids.get(sg),
                tags: desired_tags(ctx, sg),
                ingress: BTreeSet::new(),
                egress: [Rule::all(Peer::Cidr("0.0.0.0/0".into()))].into(),
            };
            &fresh
        }
    };
    if !decide_sg(ctx, sg, &ingress, &egress, Some(l)).is_change() {
        return Ok(());
    }
    let resource = label("security-group", sg);
    sync_rules(ctx, ec2, &resource, &l.id, true, &l.ingress, &ingress).await?;
    sync_rules(ctx, ec2, &resource, &l.id, false, &l.egress, &egress).await?;
    sync_tags(ctx, ec2, &resource, &l.id, &l.tags, &desired_tags(ctx, sg)).await
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

async fn ensure_endpoint(
    ctx: &Context,
    ec2: &Client,
    v: &DesiredVpc,
    e: &DesiredEndpoint,
    live: &Live,
    ids: &Ids,
    vpc_id: &str,
) -> Result<String> {
    let resource = label("vpc-endpoint", &e.logical);
    let tags = desired_tags(ctx, &e.logical);
    let (rts, subnets) = endpoint_targets(v, ids);
    let (rts, subnets) = if e.gateway {
        (rts, BTreeSet::new())
    } else {
        (BTreeSet::new(), subnets)
    };
    let l = select(&live.endpoints, &e.logical);
    match (decide_endpoint(ctx, &e.logical, &rts, &subnets, l), l) {
        (Action::Create, _) | (_, None) => {
            let token = ctx.client_token(&e.logical, vpc_id);
            let out = ctx
                .call("CreateVpcEndpoint", &resource, || {
                    let b = ec2
                        .create_vpc_endpoint()
                        .vpc_id(vpc_id)
                        .service_name(&e.service_name)
                        .client_token(&token)
                        .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &tags));
                    if e.gateway {
                        b.vpc_endpoint_type(VpcEndpointType::Gateway)
                            .set_route_table_ids(Some(rts.iter().cloned().collect()))
                    } else {
                        b.vpc_endpoint_type(VpcEndpointType::Interface)
                            .set_subnet_ids(Some(subnets.iter().cloned().collect()))
                            .security_group_ids(ids.get(SG_ENDPOINTS))
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
        (Action::NoChange, Some(l)) => Ok(l.id.clone()),
        (_, Some(l)) => {
            let diff = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Option<Vec<String>> {
                let d: Vec<String> = a.difference(b).cloned().collect();
                (!d.is_empty()).then_some(d)
            };
            if l.route_tables != rts || l.subnets != subnets {
                ctx.call("ModifyVpcEndpoint", &resource, || {
                    ec2.modify_vpc_endpoint()
                        .vpc_endpoint_id(&l.id)
                        .set_add_route_table_ids(diff(&rts, &l.route_tables))
                        .set_remove_route_table_ids(diff(&l.route_tables, &rts))
                        .set_add_subnet_ids(diff(&subnets, &l.subnets))
                        .set_remove_subnet_ids(diff(&l.subnets, &subnets))
                        .send()
                })
                .await?;
            }
            sync_tags(ctx, ec2, &resource, &l.id, &l.tags, &tags).await?;
            Ok(l.id.clone())
        }
    }
}

/// Deletes everything in `doomed`, in the order AWS requires, as one [`Graph`]: endpoints and
/// NAT gateways first (waited until gone); then addresses, route tables, the internet gateway,
/// subnets and security groups (retrying while their network interfaces linger; a group's
/// references to other groups are revoked first, once every subnet is gone); last the VPC.
pub(crate) async fn teardown(ctx: &Context, ec2: &Client, doomed: &Live) -> Result<()> {
    let mut g = Graph::<Error>::new();
    let mut first: Vec<Dep> = Vec::new();
    if !doomed.endpoints.is_empty() {
        let ids: Vec<String> = doomed.endpoints.iter().map(|e| e.id.clone()).collect();
        let resource = format!("vpc-endpoint {}", ids.join(","));
        let step = g
            .step(resource.clone())
            .action("delete")
            .run(move |_| async move { delete_endpoints(ctx, ec2, &resource, &ids).await });
        first.push(step.into());
    }
    let nat_deletes: Vec<Step<()>> = doomed
        .nats
        .iter()
        .map(|n| {
            let resource = format!("nat-gateway {}", n.id);
            g.step(resource.clone())
                .action("delete")
                .run(move |_| async move {
                    ok_if_gone(
                        ctx.call("DeleteNatGateway", &resource, || {
                            ec2.delete_nat_gateway().nat_gateway_id(&n.id).send()
                        })
                        .await,
                    )
                    .map_err(Error::from)
                })
        })
        .collect();
    if !doomed.nats.is_empty() {
        let ids: Vec<String> = doomed.nats.iter().map(|n| n.id.clone()).collect();
        let resource = format!("nat-gateway {}", ids.join(","));
        // The addresses stay mapped until the NAT gateways are `deleted`.
        let step = g
            .step(resource.clone())
            .after_all(nat_deletes)
            .action("wait")
            .run_with_detail(
                |_: &()| "deleted".to_string(),
                move |_| async move { wait_nats_deleted(ctx, ec2, &resource, &ids).await },
            );
        first.push(step.into());
    }

    let mut second: Vec<Dep> = Vec::new();
    for a in &doomed.eips {
        let resource = format!("elastic-ip {}", a.id);
        let step = g
            .step(resource.clone())
            .after_all(first.iter().copied())
            .action("release")
            .run_with_detail(
                |_: &()| "released".to_string(),
                move |_| async move {
                    let retry = RetryOn::codes(
                        &["InvalidIPAddress.InUse", "AuthFailure"],
                        Duration::from_secs(120),
                    );
                    ok_if_gone(
                        ctx.call_retrying("ReleaseAddress", &resource, &retry, || {
                            ec2.release_address().allocation_id(&a.id).send()
                        })
                        .await,
                    )
                    .map_err(Error::from)
                },
            );
        second.push(step.into());
    }
    for t in &doomed.route_tables {
        let resource = format!("route-table {}", t.id);
        let step = g
            .step(resource.clone())
            .after_all(first.iter().copied())
            .action("delete")
            .run(move |_| async move {
                for (assoc, _) in &t.associations {
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
                        || ec2.delete_route_table().route_table_id(&t.id).send(),
                    )
                    .await,
                )
                .map_err(Error::from)
            });
        second.push(step.into());
    }
    for gw in &doomed.igws {
        let resource = format!("internet-gateway {}", gw.id);
        let step = g
            .step(resource.clone())
            .after_all(first.iter().copied())
            .action("delete")
            .run(move |_| async move {
                if let Some(vpc) = &gw.attached_vpc {
                    ok_if_gone(
                        ctx.call_retrying(
                            "DetachInternetGateway",
                            &resource,
                            &dependency_violation(),
                            || {
                                ec2.detach_internet_gateway()
                                    .internet_gateway_id(&gw.id)
                                    .vpc_id(vpc)
                                    .send()
                            },
                        )
                        .await,
                    )?;
                }
                ok_if_gone(
                    ctx.call("DeleteInternetGateway", &resource, || {
                        ec2.delete_internet_gateway()
                            .internet_gateway_id(&gw.id)
                            .send()
                    })
                    .await,
                )
                .map_err(Error::from)
            });
        second.push(step.into());
    }
    // Subnets and groups whose network interfaces linger (load balancer and task ENIs go a
    // while after their owners) fail with DependencyViolation: retried within the budget,
    // each failure reported as a Retrying event that says what is still attached.
    let subnets: Vec<Step<()>> = doomed
        .subnets
        .iter()
        .map(|s| {
            let resource = format!("subnet {}", s.id);
            g.step(resource.clone())
                .after_all(first.iter().copied())
                .action("delete")
                .run(move |_| async move {
                    ok_if_gone(
                        ctx.call_retrying(
                            "DeleteSubnet",
                            &resource,
                            &dependency_violation(),
                            || ec2.delete_subnet().subnet_id(&s.id).send(),
                        )
                        .await,
                    )
                    .map_err(Error::from)
                })
        })
        .collect();
    second.extend(subnets.iter().map(Dep::from));
    // Groups that reference each other cannot be deleted until the references go.
    let references: Vec<Step<()>> = doomed
        .sgs
        .iter()
        .map(|sg| {
            let resource = format!("security-group {}", sg.id);
            g.step(resource.clone())
                .after_all(first.iter().copied())
                .after_all(subnets.iter().copied())
                .run(move |_| async move {
                    let refs = |rules: &BTreeSet<Rule>| -> BTreeSet<Rule> {
                        rules
                            .iter()
                            .filter(|r| matches!(r.peer, Peer::Group(_)))
                            .cloned()
                            .collect()
                    };
                    let none = BTreeSet::new();
                    let revoked = async {
                        sync_rules(ctx, ec2, &resource, &sg.id, true, &refs(&sg.ingress), &none)
                            .await?;
                        sync_rules(ctx, ec2, &resource, &sg.id, false, &refs(&sg.egress), &none)
                            .await
                    };
                    match revoked.await {
                        Err(e) if e.as_aws().is_some_and(already_gone) => Ok(()),
                        other => other,
                    }
                })
        })
        .collect();
    for sg in &doomed.sgs {
        let resource = format!("security-group {}", sg.id);
        let step = g
            .step(resource.clone())
            .after_all(references.iter().copied())
            .action("delete")
            .run(move |_| async move {
                ok_if_gone(
                    ctx.call_retrying(
                        "DeleteSecurityGroup",
                        &resource,
                        &dependency_violation(),
                        || ec2.delete_security_group().group_id(&sg.id).send(),
                    )
                    .await,
                )
                .map_err(Error::from)
            });
        second.push(step.into());
    }

    for v in &doomed.vpcs {
        let resource = format!("vpc {}", v.id);
        g.step(resource.clone())
            .after_all(first.iter().copied())
            .after_all(second.iter().copied())
            .action("delete")
            .run(move |_| async move {
                ok_if_gone(
                    ctx.call_retrying("DeleteVpc", &resource, &dependency_violation(), || {
                        ec2.delete_vpc().vpc_id(&v.id).send()
                    })
                    .await,
                )
                .map_err(Error::from)
            });
    }
    g.run(ctx).await?;
    Ok(())
}

/// Deletes the VPC endpoints `ids` and waits until they are gone.
async fn delete_endpoints(
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

/// Waits until the NAT gateways `ids` are `deleted` (no SDK waiter exists for this).
async fn wait_nats_deleted(
    ctx: &Context,
    ec2: &Client,
    resource: &str,
    ids: &[String],
) -> Result<()> {
    ctx.poll(
        resource,
        "state deleted",
        &PollPolicy::with_timeout(DEPENDENCY_BUDGET),
        || async {
            let out = ctx
                .call("DescribeNatGateways", resource, || {
                    ec2.describe_nat_gateways()
                        .set_nat_gateway_ids(Some(ids.to_vec()))
                        .send()
                })
                .await;
            let out = match out {
                Err(e) if already_gone(&e) => return Ok(Poll::Ready(())),
                other => other?,
            };
            let states: Vec<String> = out
                .nat_gateways()
                .iter()
                .map(|n| {
                    n.state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default()
                })
                .filter(|s| s != "deleted" && s != "failed")
                .collect();
            Ok(if states.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(states.join(","))
            })
        },
    )
    .await?;
    Ok(())
}

/// Waits until every NAT gateway is `available` (fails at once on `failed`).
pub(crate) async fn wait_for_nats(
    ctx: &Context,
    ec2: &Client,
    nats: &[String],
    timeout: Duration,
) -> Result<()> {
    if nats.is_empty() {
        return Ok(());
    }
    let resource = format!("nat-gateway {}", nats.join(","));
    ctx.poll(
        &resource,
        "state available",
        &PollPolicy::with_timeout(timeout),
        || async {
            let out = ctx
                .call("DescribeNatGateways", &resource, || {
                    ec2.describe_nat_gateways()
                        .set_nat_gateway_ids(Some(nats.to_vec()))
                        .send()
                })
                .await?;
            let mut pending = Vec::new();
            for n in out.nat_gateways() {
                let id = n.nat_gateway_id().unwrap_or_default();
                match n.state().map(|s| s.as_str()).unwrap_or("unknown") {
                    "available" => {}
                    "failed" | "deleting" | "deleted" => {
                        return Err(AwsError::new(
                            "DescribeNatGateways",
                            format!("nat-gateway {id}"),
                            n.failure_code(),
                            n.failure_message().unwrap_or("the NAT gateway failed"),
                            AwsErrorKind::Service,
                        ))
                    }
                    other => pending.push(format!("{id} {other}")),
                }
            }
            Ok(if pending.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(pending.join(", "))
            })
        },
    )
    .await?;
    Ok(())
}
