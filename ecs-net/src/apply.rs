//! Carrying out a plan, tearing down what is no longer wanted, and the waits.

use std::time::Duration;

use aws_sdk_ec2::Client;
use ecs_core::graph::{Dep, Graph, Inputs, Step};
use ecs_core::resource;
use ecs_core::{AwsError, AwsErrorKind, Context, Poll, PollPolicy};

use crate::default_sg::{self, DEFAULT_SG, DEFAULT_SG_KIND};
use crate::ec2::{already_gone, DEPENDENCY_BUDGET};
use crate::endpoint;
use crate::error::{Error, Result};
use crate::live::{Live, LiveRouteTable, LiveSg, LiveVpc};
use crate::plan::*;
use crate::security_group::{self as sg_kind, SecurityGroup};
use crate::subnet::Subnet;
use crate::{eip, igw, nat, route_table, subnet, vpc, NetworkOutputs};

fn label(kind: &str, logical: &str) -> String {
    format!("{kind} {logical}")
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

/// Creates or brings to the plan every resource of the network, as one [`Graph`] with one
/// step per resource (two for a [`Staged`](ecs_core::resource::Staged) kind): each step
/// builds its desired resource with the plan's own builders from the ids the steps before it
/// gave, and converges it (no call when it is as desired). Each step starts as soon as what
/// it needs exists, and waits for nothing else:
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
    // Declared before the graph, whose steps borrow them.
    let base = Ids::new(desired, live);
    let base = &base;
    let nat_zones: Vec<String> = desired
        .managed()
        .map(DesiredVpc::nat_zones)
        .unwrap_or_default();
    let mut g = Graph::<Error>::new();

    // The VPC, its id available as soon as it is created or found (its DNS attributes are
    // set by a later step).
    let made_vpc: Option<Step<LiveVpc>> = desired.managed().map(|v| {
        g.step(label(vpc::KIND, VPC))
            .action_if(create_verb(plan, vpc::KIND, VPC))
            .make(ctx, ec2, select(&live.vpcs, VPC).cloned(), move |_| {
                v.vpc(ctx)
            })
    });
    // The ids known so far, with the VPC's.
    let ids_with_vpc = move |i: &Inputs| {
        let mut ids = base.clone();
        if let Some(step) = made_vpc {
            ids.set(VPC, i.get(step).id.clone());
        }
        ids
    };

    // The security groups: made once the VPC exists, their rules written once they all
    // exist (rules reference them).
    let groups: Vec<(&'static str, Step<LiveSg>)> = desired
        .security_groups()
        .into_iter()
        .map(|sg| {
            let step = g
                .step(label(sg_kind::KIND, sg))
                .after_all(made_vpc)
                .action_if(create_verb(plan, sg_kind::KIND, sg))
                .make(ctx, ec2, select(&live.sgs, sg).cloned(), move |i| {
                    desired.security_group(ctx, sg, &ids_with_vpc(i))
                });
            (sg, step)
        })
        .collect();
    let with_groups = {
        let groups = groups.clone();
        move |i: &Inputs| {
            let mut ids = ids_with_vpc(i);
            for (sg, step) in &groups {
                ids.set(sg, i.get(*step).id.clone());
            }
            ids
        }
    };
    for &(sg, made) in &groups {
        let with_groups = with_groups.clone();
        g.step(label(sg_kind::KIND, sg))
            .after_all(made_vpc)
            .after_all(groups.iter().map(|(_, s)| *s))
            .action_if(update_verb(plan, sg_kind::KIND, sg))
            .finish(ctx, ec2, made, move |i| -> SecurityGroup {
                desired.security_group(ctx, sg, &with_groups(i))
            });
    }

    let (Some(v), Some(made_vpc)) = (desired.managed(), made_vpc) else {
        let out = g.run(ctx).await?;
        let group = |sg: &str| {
            groups
                .iter()
                .find(|(l, _)| *l == sg)
                .map(|(_, s)| out.get(*s).id.clone())
                .unwrap_or_default()
        };
        let DesiredNetwork::Existing(e) = &desired.network else {
            unreachable!("only an existing VPC has no managed part")
        };
        return Ok(NetworkOutputs {
            vpc_id: e.vpc_id.clone(),
            vpc_cidr: e.cidr.clone(),
            availability_zones: e.zones.clone(),
            public_subnets: e.public.clone(),
            private_subnets: e.private.clone(),
            alb_sg: group(SG_ALB),
            task_sg: group(SG_TASK),
            nat_gateways: Vec::new(),
            vpc_endpoints: Vec::new(),
        });
    };

    let vpc_settings = g
        .step(label(vpc::KIND, VPC))
        .action_if(update_verb(plan, vpc::KIND, VPC))
        .finish(ctx, ec2, made_vpc, move |_| v.vpc(ctx));

    // The default security group AWS gives the VPC: left with no rules (EC2.2).
    let live_vpc = select(&live.vpcs, VPC);
    g.step(label(DEFAULT_SG_KIND, DEFAULT_SG))
        .after(made_vpc)
        .action_if(verb(plan, DEFAULT_SG_KIND, DEFAULT_SG))
        .run(move |i| {
            let vpc_id = i.get(made_vpc).id.clone();
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
            g.step(label(eip::KIND, &logical))
                .action_if(create_verb(plan, eip::KIND, &logical))
                .converge(ctx, ec2, select(&live.eips, &logical).cloned(), move |_| {
                    v.eip(ctx, z)
                })
        })
        .collect();

    let igw = g
        .step(label(igw::KIND, IGW))
        .after(made_vpc)
        .action_if(verb(plan, igw::KIND, IGW))
        .converge(ctx, ec2, select(&live.igws, IGW).cloned(), move |i| {
            v.igw(ctx, &ids_with_vpc(i))
        });

    // The public subnets in zone order, then the private ones.
    let subnets: Vec<Step<String>> = v
        .subnets(ctx, base)
        .into_iter()
        .map(|s| {
            let found = select(&live.subnets, &s.logical).cloned();
            g.step(s.label())
                .after(made_vpc)
                .action_if(create_verb(plan, subnet::KIND, &s.logical))
                .converge(ctx, ec2, found, move |i| Subnet {
                    vpc_id: i.get(made_vpc).id.clone(),
                    ..s
                })
        })
        .collect();
    let (public, private) = subnets.split_at(v.zones.len());

    // The route tables, made once the VPC exists: the public one, then the private ones in
    // zone order.
    let mut table_names: Vec<String> = vec![RT_PUBLIC.to_string()];
    table_names.extend(v.zones.iter().map(|z| rt_private_id(z)));
    let tables: Vec<Step<LiveRouteTable>> = table_names
        .iter()
        .enumerate()
        .map(|(index, logical)| {
            g.step(label(route_table::KIND, logical))
                .after(made_vpc)
                .action_if(create_verb(plan, route_table::KIND, logical))
                .make(
                    ctx,
                    ec2,
                    select(&live.route_tables, logical).cloned(),
                    move |i| match index {
                        0 => v.public_route_table(ctx, &ids_with_vpc(i)),
                        k => v.private_route_table(ctx, &v.zones[k - 1], &ids_with_vpc(i)),
                    },
                )
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
            g.step(label(nat::KIND, &logical))
                .after(subnet)
                .after(eip)
                .after(igw)
                .action_if(create_verb(plan, nat::KIND, &logical))
                .converge(ctx, ec2, select(&live.nats, &logical).cloned(), move |i| {
                    let mut ids = base.clone();
                    ids.set(&subnet_id("public", z), i.get(subnet).clone());
                    ids.set(&eip_id(z), i.get(eip).clone());
                    v.nat(ctx, z, &ids)
                })
        })
        .collect();

    // The public route table's route and associations: the internet gateway and the public
    // subnets.
    let public_steps = public.to_vec();
    g.step(label(route_table::KIND, RT_PUBLIC))
        .after(made_vpc)
        .after(igw)
        .after_all(public.iter().copied())
        .action_if(update_verb(plan, route_table::KIND, RT_PUBLIC))
        .finish(ctx, ec2, tables[0], move |i| {
            let mut ids = ids_with_vpc(i);
            ids.set(IGW, i.get(igw).clone());
            for (z, s) in v.zones.iter().zip(&public_steps) {
                ids.set(&subnet_id("public", z), i.get(*s).clone());
            }
            v.public_route_table(ctx, &ids)
        });
    // Private route table z's: its subnet and the NAT gateway it routes through.
    for (index, z) in v.zones.iter().enumerate() {
        let nat = v
            .nat_zone_for(z)
            .and_then(|nz| nat_zones.iter().position(|x| *x == nz))
            .map(|k| (nat_zones[k].clone(), nats[k]));
        let subnet = private[index];
        let logical = rt_private_id(z);
        g.step(label(route_table::KIND, &logical))
            .after(made_vpc)
            .after(subnet)
            .after_all(nat.as_ref().map(|(_, s)| *s))
            .action_if(update_verb(plan, route_table::KIND, &logical))
            .finish(ctx, ec2, tables[1 + index], move |i| {
                let mut ids = ids_with_vpc(i);
                ids.set(&subnet_id("private", z), i.get(subnet).clone());
                if let Some((nz, step)) = &nat {
                    ids.set(&nat_id(nz), i.get(*step).clone());
                }
                v.private_route_table(ctx, z, &ids)
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
                .step(label(endpoint::KIND, &e.logical))
                .after(made_vpc)
                .action_if(verb(plan, endpoint::KIND, &e.logical));
            let step = if e.gateway {
                step.after_all(private_tables.iter().copied())
            } else {
                step.after_all(private_subnets.iter().copied())
                    .after_all(endpoint_group)
                    .after(vpc_settings)
            };
            let (private_tables, private_subnets) =
                (private_tables.clone(), private_subnets.clone());
            let found = select(&live.endpoints, &e.logical).cloned();
            step.converge(ctx, ec2, found, move |i| {
                let mut ids = ids_with_vpc(i);
                if e.gateway {
                    for (z, t) in v.zones.iter().zip(&private_tables) {
                        ids.set(&rt_private_id(z), i.get(*t).id.clone());
                    }
                } else {
                    for (z, s) in v.zones.iter().zip(&private_subnets) {
                        ids.set(&subnet_id("private", z), i.get(*s).clone());
                    }
                    if let Some(group) = endpoint_group {
                        ids.set(SG_ENDPOINTS, i.get(group).id.clone());
                    }
                }
                v.endpoint(ctx, e, &ids)
            })
        })
        .collect();

    let out = g.run(ctx).await?;
    let group = |sg: &str| {
        groups
            .iter()
            .find(|(l, _)| *l == sg)
            .map(|(_, s)| out.get(*s).id.clone())
            .unwrap_or_default()
    };
    let ids_of = |steps: &[Step<String>]| -> Vec<String> {
        steps.iter().map(|s| out.get(*s).clone()).collect()
    };
    Ok(NetworkOutputs {
        vpc_id: out.get(made_vpc).id.clone(),
        vpc_cidr: v.cidr.to_string(),
        availability_zones: v.zones.clone(),
        public_subnets: ids_of(public),
        private_subnets: ids_of(private),
        alb_sg: group(SG_ALB),
        task_sg: group(SG_TASK),
        nat_gateways: ids_of(&nats),
        vpc_endpoints: ids_of(&endpoints),
    })
}

/// A teardown step that deletes `live` through its kind (only what the stack owns).
fn delete_step<'a, R>(
    g: &mut Graph<'a, Error>,
    ctx: &'a Context,
    ec2: &'a Client,
    live: &'a R::Live,
    id: &str,
    after: &[Dep],
    verb: &'static str,
) -> Step<()>
where
    R: resource::Resource<Client = Client, Error = Error> + 'a,
{
    g.step(label(R::KIND, id))
        .after_all(after.iter().copied())
        .action(verb)
        .run(move |_| async move {
            resource::delete::<R>(ctx, ec2, live).await?;
            Ok(())
        })
}

/// Deletes everything in `doomed`, in the order AWS requires, as one [`Graph`], each resource
/// through its kind's delete: endpoints (in one call) and NAT gateways first (waited until
/// gone); then addresses, route tables, the internet gateway, subnets and security groups
/// (retrying while their network interfaces linger; a group's references to other groups are
/// revoked first, once every subnet is gone); last the VPC.
pub(crate) async fn teardown(ctx: &Context, ec2: &Client, doomed: &Live) -> Result<()> {
    let mut g = Graph::<Error>::new();
    let mut first: Vec<Dep> = Vec::new();
    if !doomed.endpoints.is_empty() {
        let ids: Vec<String> = doomed.endpoints.iter().map(|e| e.id.clone()).collect();
        let resource = label(endpoint::KIND, &ids.join(","));
        let step = g
            .step(resource.clone())
            .action("delete")
            .run(move |_| async move { endpoint::delete_all(ctx, ec2, &resource, &ids).await });
        first.push(step.into());
    }
    let nat_deletes: Vec<Step<()>> = doomed
        .nats
        .iter()
        .map(|n| delete_step::<nat::NatGateway>(&mut g, ctx, ec2, n, &n.id, &[], "delete"))
        .collect();
    if !doomed.nats.is_empty() {
        let ids: Vec<String> = doomed.nats.iter().map(|n| n.id.clone()).collect();
        let resource = label(nat::KIND, &ids.join(","));
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
        let step = g
            .step(label(eip::KIND, &a.id))
            .after_all(first.iter().copied())
            .action("release")
            .run_with_detail(
                |_: &()| "released".to_string(),
                move |_| async move {
                    resource::delete::<eip::ElasticIp>(ctx, ec2, a).await?;
                    Ok(())
                },
            );
        second.push(step.into());
    }
    for t in &doomed.route_tables {
        let step =
            delete_step::<route_table::RouteTable>(&mut g, ctx, ec2, t, &t.id, &first, "delete");
        second.push(step.into());
    }
    for gw in &doomed.igws {
        let step =
            delete_step::<igw::InternetGateway>(&mut g, ctx, ec2, gw, &gw.id, &first, "delete");
        second.push(step.into());
    }
    // Subnets and groups whose network interfaces linger (load balancer and task ENIs go a
    // while after their owners) fail with DependencyViolation: retried within the budget,
    // each failure reported as a Retrying event that says what is still attached.
    let subnets: Vec<Step<()>> = doomed
        .subnets
        .iter()
        .map(|s| delete_step::<subnet::Subnet>(&mut g, ctx, ec2, s, &s.id, &first, "delete"))
        .collect();
    second.extend(subnets.iter().map(Dep::from));
    // Groups that reference each other cannot be deleted until the references go.
    let after_subnets: Vec<Dep> = first
        .iter()
        .copied()
        .chain(subnets.iter().map(Dep::from))
        .collect();
    let references: Vec<Dep> = doomed
        .sgs
        .iter()
        .map(|sg| {
            g.step(label(sg_kind::KIND, &sg.id))
                .after_all(after_subnets.iter().copied())
                .run(move |_| async move { sg_kind::revoke_references(ctx, ec2, sg).await })
                .into()
        })
        .collect();
    for sg in &doomed.sgs {
        let step =
            delete_step::<SecurityGroup>(&mut g, ctx, ec2, sg, &sg.id, &references, "delete");
        second.push(step.into());
    }

    let before_vpc: Vec<Dep> = first.iter().chain(&second).copied().collect();
    for v in &doomed.vpcs {
        delete_step::<vpc::Vpc>(&mut g, ctx, ec2, v, &v.id, &before_vpc, "delete");
    }
    g.run(ctx).await?;
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
