//! Carrying out a plan, tearing down what is no longer wanted, and the waits.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, ResourceType, Tag, TagSpecification, VpcEndpointType,
};
use aws_sdk_ec2::Client;
use futures_util::future::{join_all, try_join_all, FutureExt};

use ecs_core::{
    Action, AwsError, AwsErrorKind, Context, Event, NameKind, Poll, PollPolicy, RetryOn, Tags,
};

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
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
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

fn started(ctx: &Context, resource: &str, action: &str) {
    ctx.emit(Event::Started {
        resource: resource.to_string(),
        action: action.to_string(),
    });
}

fn done(ctx: &Context, resource: &str, detail: impl Into<String>) {
    ctx.emit(Event::Done {
        resource: resource.to_string(),
        detail: detail.into(),
    });
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
    let set: Vec<Tag> = desired
        .iter()
        .filter(|(k, v)| live.get(k) != Some(v))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let unset: Vec<Tag> = live
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:") && desired.get(k).is_none())
        .map(|(k, _)| Tag::builder().key(k).build())
        .collect();
    if !set.is_empty() {
        ctx.call("CreateTags", resource, || {
            ec2.create_tags()
                .resources(id)
                .set_tags(Some(set.clone()))
                .send()
        })
        .await?;
    }
    if !unset.is_empty() {
        ctx.call("DeleteTags", resource, || {
            ec2.delete_tags()
                .resources(id)
                .set_tags(Some(unset.clone()))
                .send()
        })
        .await?;
    }
    Ok(())
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
    if let Some(c) = plan
        .changes
        .changes
        .iter()
        .find(|c| matches!(c.action, Action::Replace(_)))
    {
        let Action::Replace(reason) = &c.action else {
            unreachable!()
        };
        return Err(Error::ReplacementRequired {
            resource: label(&c.resource, &c.id),
            reason: reason.clone(),
        });
    }
    let (desired, live) = (&plan.desired, &plan.live);
    let mut ids = Ids::from_live(live);
    let outputs = match &desired.network {
        DesiredNetwork::Managed(v) => apply_managed(ctx, ec2, desired, v, live, &ids).await?,
        DesiredNetwork::Existing(e) => {
            for (sg, id) in ensure_security_groups(ctx, ec2, desired, live, &ids, &e.vpc_id).await?
            {
                ids.set(sg, id);
            }
            NetworkOutputs {
                vpc_id: e.vpc_id.clone(),
                vpc_cidr: e.cidr.clone(),
                availability_zones: e.zones.clone(),
                public_subnets: e.public.clone(),
                private_subnets: e.private.clone(),
                alb_sg: ids.get(SG_ALB),
                task_sg: ids.get(SG_TASK),
                nat_gateways: Vec::new(),
                vpc_endpoints: Vec::new(),
            }
        }
    };
    teardown(ctx, ec2, &surplus_live(live, &desired.logical_ids())).await?;
    Ok(outputs)
}

/// Why a step of [`apply_managed`] did not finish: it, or a step it needs, failed. The error
/// itself is kept once, in [`FirstError`]: the steps several others wait for are shared
/// futures, whose output must be `Clone`, which [`Error`] is not.
#[derive(Debug, Clone, Copy)]
struct Failed;

/// The first error of an apply, returned as is once the apply stops.
#[derive(Debug, Default)]
struct FirstError(Mutex<Option<Error>>);

impl FirstError {
    /// `r`, with its error kept (when it is the first) and replaced by [`Failed`].
    fn keep<T>(&self, r: Result<T>) -> std::result::Result<T, Failed> {
        r.map_err(|e| {
            let mut first = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if first.is_none() {
                *first = Some(e);
            }
            Failed
        })
    }

    /// Runs `step` and keeps its error, unless a step failed already: then it makes no call
    /// at all (the apply stops starting work at the first error, and lets what is in flight
    /// finish, so that nothing it asked AWS for lands after it returned).
    async fn run<T>(
        &self,
        step: impl std::future::Future<Output = Result<T>>,
    ) -> std::result::Result<T, Failed> {
        if self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return Err(Failed);
        }
        self.keep(step.await)
    }

    /// The kept error (there is one once a step returned [`Failed`], as only `keep` makes one).
    fn take(&self) -> Error {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("a step failed, so its error was kept")
    }
}

/// Creates or adopts every resource of a managed VPC. Each step starts as soon as what it
/// needs exists, and waits for nothing else:
///
/// * the VPC and the NAT gateways' addresses first (they need nothing);
/// * once the VPC id is known: the VPC's DNS attributes and tags, the internet gateway
///   (created and attached), the subnets, the route tables and the security groups (created,
///   then their rules written);
/// * NAT gateway *z*: its public subnet, its address and the attached internet gateway (AWS
///   fails a public NAT gateway in a VPC without one);
/// * the public route table's routes and associations: the internet gateway and the public
///   subnets; private route table *z*'s: its subnet and the NAT gateway it routes through
///   (which need not be available yet);
/// * a gateway endpoint: the private route tables; an interface endpoint: the private subnets,
///   the endpoints' security group and the VPC's DNS attributes (for its private DNS name).
///
/// The first error stops the whole apply and is returned as is.
async fn apply_managed(
    ctx: &Context,
    ec2: &Client,
    desired: &Desired,
    v: &DesiredVpc,
    live: &Live,
    known: &Ids,
) -> Result<NetworkOutputs> {
    let first = FirstError::default();
    let first = &first;
    let nat_zones = v.nat_zones();
    let nat_zones = &nat_zones;

    // The VPC, its id available as soon as it is created or adopted.
    let vpc = async { first.run(ensure_vpc(ctx, ec2, v, live)).await }.shared();
    let vpc = &vpc;
    let vpc_settings = async {
        let (id, pending) = vpc.clone().await?;
        first.run(sync_vpc(ctx, ec2, &id, pending)).await
    }
    .shared();
    let vpc_settings = &vpc_settings;

    // The NAT gateways' addresses, in the order of `nat_zones`.
    let eips: Vec<_> = nat_zones
        .iter()
        .map(|z| {
            async move {
                first
                    .run(ensure_eip(ctx, ec2, live, z.clone()))
                    .await
                    .map(|(_, id)| id)
            }
            .shared()
        })
        .collect();
    let eips = &eips;

    let igw = async {
        let (vpc_id, _) = vpc.clone().await?;
        first.run(ensure_igw(ctx, ec2, live, &vpc_id)).await
    }
    .shared();
    let igw = &igw;

    // The public subnets in zone order, then the private ones.
    let subnets: Vec<_> = ["public", "private"]
        .into_iter()
        .flat_map(move |tier| {
            let blocks = if tier == "public" {
                &v.public
            } else {
                &v.private
            };
            v.zones.iter().enumerate().map(move |(index, z)| {
                let (logical, cidr) = (subnet_id(tier, z), blocks[index]);
                async move {
                    let (vpc_id, _) = vpc.clone().await?;
                    first
                        .run(ensure_subnet(ctx, ec2, &logical, &cidr, z, &vpc_id, live))
                        .await
                }
                .shared()
            })
        })
        .collect();
    let (public, private) = subnets.split_at(v.zones.len());

    // The public route table, then the private ones in zone order.
    let mut table_names: Vec<String> = vec![RT_PUBLIC.to_string()];
    table_names.extend(v.zones.iter().map(|z| rt_private_id(z)));
    let tables: Vec<_> = table_names
        .iter()
        .map(|logical| {
            async move {
                let (vpc_id, _) = vpc.clone().await?;
                first
                    .run(ensure_route_table(ctx, ec2, logical, live, &vpc_id))
                    .await
                    .map(|(_, id)| id)
            }
            .shared()
        })
        .collect();
    let tables = &tables;

    // The security groups: created once the VPC exists (interface endpoints need the
    // endpoints' group), their rules written once they all exist (rules reference them).
    let groups = async {
        let (vpc_id, _) = vpc.clone().await?;
        first
            .run(create_security_groups(
                ctx, ec2, desired, live, known, &vpc_id,
            ))
            .await
    }
    .shared();
    let groups = &groups;
    let rules = async {
        let ids = groups.clone().await?;
        first
            .run(sync_security_groups(ctx, ec2, desired, live, &ids))
            .await
    };

    // NAT gateway z: its public subnet, its address and the attached internet gateway.
    let nats: Vec<_> = nat_zones
        .iter()
        .zip(eips.iter())
        .map(move |(z, eip)| {
            let index = v.zones.iter().position(|x| x == z).unwrap_or(0);
            let subnet = &public[index];
            async move {
                let (subnet, allocation, _) =
                    futures_util::try_join!(subnet.clone(), eip.clone(), igw.clone())?;
                first
                    .run(ensure_nat(ctx, ec2, live, &subnet, &allocation, z))
                    .await
            }
            .shared()
        })
        .collect();
    let nats = &nats;

    let public_routes = async {
        let (igw, table, subnets) = futures_util::try_join!(
            igw.clone(),
            tables[0].clone(),
            try_join_all(public.iter().cloned()),
        )?;
        let subnets: BTreeSet<String> = subnets.into_iter().collect();
        first
            .run(sync_route_table(
                ctx,
                ec2,
                RT_PUBLIC,
                &table,
                Some(&igw),
                &subnets,
                live,
            ))
            .await
    };
    let private_routes = join_all(v.zones.iter().enumerate().map(move |(index, z)| {
        let nat = v
            .nat_zone_for(z)
            .and_then(|nz| nat_zones.iter().position(|x| *x == nz))
            .map(|k| &nats[k]);
        let (logical, table, subnet) = (rt_private_id(z), &tables[1 + index], &private[index]);
        async move {
            let target = async {
                match nat {
                    Some(nat) => nat.clone().await.map(Some),
                    None => Ok(None),
                }
            };
            let (table, subnet, target) =
                futures_util::try_join!(table.clone(), subnet.clone(), target)?;
            let subnets: BTreeSet<String> = [subnet].into();
            first
                .run(sync_route_table(
                    ctx,
                    ec2,
                    &logical,
                    &table,
                    target.as_deref(),
                    &subnets,
                    live,
                ))
                .await
        }
    }));

    let endpoints = join_all(v.endpoints.iter().map(|e| async move {
        let mut ids = known.clone();
        if e.gateway {
            let rts = try_join_all(tables[1..].iter().cloned()).await?;
            for (z, id) in v.zones.iter().zip(rts) {
                ids.set(&rt_private_id(z), id);
            }
        } else {
            let (subnets, groups, ()) = futures_util::try_join!(
                try_join_all(private.iter().cloned()),
                groups.clone(),
                vpc_settings.clone(),
            )?;
            for (z, id) in v.zones.iter().zip(subnets) {
                ids.set(&subnet_id("private", z), id);
            }
            ids.set(SG_ENDPOINTS, groups.get(SG_ENDPOINTS));
        }
        let (vpc_id, _) = vpc.clone().await?;
        first
            .run(ensure_endpoint(ctx, ec2, v, e, live, &ids, &vpc_id))
            .await
    }));

    // Everything joined at the end, every shared step included, so that all run from the
    // start and every step that started runs to its end even after another failed (a
    // dropped request may still land in AWS after the apply returned, and the next plan
    // would not see it). The route branches come first, so that a failed subnet stops the
    // apply before a NAT gateway is asked for when the mocks answer at once.
    let (
        vpc_r,
        settings_r,
        public_r,
        private_r,
        rules_r,
        groups_r,
        subnet_rs,
        nat_rs,
        endpoint_rs,
        eip_rs,
        igw_r,
        table_rs,
    ) = futures_util::join!(
        vpc.clone(),
        vpc_settings.clone(),
        public_routes,
        private_routes,
        rules,
        groups.clone(),
        join_all(subnets.iter().cloned()),
        join_all(nats.iter().cloned()),
        endpoints,
        join_all(eips.iter().cloned()),
        igw.clone(),
        join_all(tables.iter().cloned()),
    );
    let all = || -> std::result::Result<_, Failed> {
        let (vpc_id, _) = vpc_r?;
        settings_r?;
        public_r?;
        private_r
            .into_iter()
            .collect::<std::result::Result<Vec<()>, Failed>>()?;
        rules_r?;
        eip_rs
            .into_iter()
            .collect::<std::result::Result<Vec<String>, Failed>>()?;
        igw_r?;
        table_rs
            .into_iter()
            .collect::<std::result::Result<Vec<String>, Failed>>()?;
        Ok((
            vpc_id,
            groups_r?,
            subnet_rs
                .into_iter()
                .collect::<std::result::Result<Vec<String>, Failed>>()?,
            nat_rs
                .into_iter()
                .collect::<std::result::Result<Vec<String>, Failed>>()?,
            endpoint_rs
                .into_iter()
                .collect::<std::result::Result<Vec<_>, Failed>>()?,
        ))
    };
    let (vpc_id, groups, subnet_ids, nat_ids, endpoints) = all().map_err(|Failed| first.take())?;
    let (public_ids, private_ids) = subnet_ids.split_at(v.zones.len());
    Ok(NetworkOutputs {
        vpc_id,
        vpc_cidr: v.cidr.to_string(),
        availability_zones: v.zones.clone(),
        public_subnets: public_ids.to_vec(),
        private_subnets: private_ids.to_vec(),
        alb_sg: groups.get(SG_ALB),
        task_sg: groups.get(SG_TASK),
        nat_gateways: nat_ids,
        vpc_endpoints: endpoints,
    })
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
            started(ctx, &resource, "create");
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
            started(ctx, &resource, "update");
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
    sync_tags(ctx, ec2, &resource, id, &settings.tags, &tags).await?;
    done(ctx, &resource, id);
    Ok(())
}

async fn ensure_eip(
    ctx: &Context,
    ec2: &Client,
    live: &Live,
    zone: String,
) -> Result<(String, String)> {
    let logical = eip_id(&zone);
    let resource = label("elastic-ip", &logical);
    let tags = desired_tags(ctx, &logical);
    let l = select(&live.eips, &logical);
    let id = match (decide_tagged(ctx, &logical, l), l) {
        (Action::Create, _) | (_, None) => {
            started(ctx, &resource, "allocate");
            let out = ctx
                .call("AllocateAddress", &resource, || {
                    ec2.allocate_address()
                        .domain(DomainType::Vpc)
                        .tag_specifications(tag_spec(ResourceType::ElasticIp, &tags))
                        .send()
                })
                .await?;
            let id = out.allocation_id().unwrap_or_default().to_string();
            done(ctx, &resource, id.clone());
            id
        }
        (action, Some(l)) => adopt(ctx, ec2, &resource, l, &action, &tags).await?,
    };
    Ok((logical, id))
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
            started(ctx, &resource, "create");
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
            let id = out
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_default()
                .to_string();
            done(ctx, &resource, id.clone());
            Ok(id)
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
            started(ctx, &resource, "create");
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
    done(ctx, &resource, format!("{id} attached to {vpc_id}"));
    Ok(id)
}

/// Creates the route table when missing (routes and associations come later).
async fn ensure_route_table(
    ctx: &Context,
    ec2: &Client,
    logical: &str,
    live: &Live,
    vpc_id: &str,
) -> Result<(String, String)> {
    if let Some(l) = select(&live.route_tables, logical) {
        return Ok((logical.to_string(), l.id.clone()));
    }
    let resource = label("route-table", logical);
    let tags = desired_tags(ctx, logical);
    started(ctx, &resource, "create");
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
    let id = out
        .route_table()
        .and_then(|t| t.route_table_id())
        .unwrap_or_default()
        .to_string();
    done(ctx, &resource, id.clone());
    Ok((logical.to_string(), id))
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
    .await?;
    done(
        ctx,
        &resource,
        format!("{id} routes and associations in place"),
    );
    Ok(())
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
    let id = match (decide_nat(ctx, &logical, subnet, l), l) {
        (Action::Create, _) | (_, None) => {
            started(ctx, &resource, "create");
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
            let id = out
                .nat_gateway()
                .and_then(|n| n.nat_gateway_id())
                .unwrap_or_default()
                .to_string();
            done(
                ctx,
                &resource,
                format!("{id} (provisioning; not waited for here)"),
            );
            id
        }
        (action, Some(l)) => adopt(ctx, ec2, &resource, l, &action, &tags).await?,
    };
    Ok(id)
}

/// Creates the missing security groups, then brings every group's rules and tags to what is
/// desired (rules reference each other, so all groups exist before any rule is written).
async fn ensure_security_groups(
    ctx: &Context,
    ec2: &Client,
    desired: &Desired,
    live: &Live,
    ids: &Ids,
    vpc_id: &str,
) -> Result<Vec<(&'static str, String)>> {
    let ids = create_security_groups(ctx, ec2, desired, live, ids, vpc_id).await?;
    sync_security_groups(ctx, ec2, desired, live, &ids).await?;
    Ok(desired
        .security_groups()
        .iter()
        .map(|sg| (*sg, ids.get(sg)))
        .collect())
}

/// Creates the missing security groups (without their rules); returns `ids` with their ids.
async fn create_security_groups(
    ctx: &Context,
    ec2: &Client,
    desired: &Desired,
    live: &Live,
    ids: &Ids,
    vpc_id: &str,
) -> Result<Ids> {
    let wanted = desired.security_groups();
    let mut ids = ids.clone();
    let created = try_join_all(
        wanted
            .iter()
            .filter(|sg| select(&live.sgs, sg).is_none())
            .map(|sg| async move {
                let resource = label("security-group", sg);
                let tags = desired_tags(ctx, sg);
                let name = ctx
                    .stack()
                    .name(NameKind::SecurityGroup, &sg.replace("sg/", ""));
                started(ctx, &resource, "create");
                let out = ctx
                    .call("CreateSecurityGroup", &resource, || {
                        ec2.create_security_group()
                            .group_name(&name)
                            .description(format!(
                                "{} of stack {}",
                                sg.replace("sg/", ""),
                                ctx.stack()
                            ))
                            .vpc_id(vpc_id)
                            .tag_specifications(tag_spec(ResourceType::SecurityGroup, &tags))
                            .send()
                    })
                    .await?;
                Ok::<_, Error>((*sg, out.group_id().unwrap_or_default().to_string()))
            }),
    )
    .await?;
    for (sg, id) in created {
        ids.set(sg, id);
    }
    Ok(ids)
}

/// Brings every group's rules and tags to what is desired; `ids` has every group's id (the
/// rules reference the groups).
async fn sync_security_groups(
    ctx: &Context,
    ec2: &Client,
    desired: &Desired,
    live: &Live,
    ids: &Ids,
) -> Result<()> {
    let wanted = desired.security_groups();
    try_join_all(wanted.iter().map(|sg| async move {
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
        sync_tags(ctx, ec2, &resource, &l.id, &l.tags, &desired_tags(ctx, sg)).await?;
        done(ctx, &resource, format!("{} rules in place", l.id));
        Ok::<_, Error>(())
    }))
    .await?;
    Ok(())
}

/// Adds the missing rules and revokes the extra ones, in one call each.
async fn sync_rules(
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
            started(ctx, &resource, "create");
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
            let id = out
                .vpc_endpoint()
                .and_then(|x| x.vpc_endpoint_id())
                .unwrap_or_default()
                .to_string();
            done(ctx, &resource, id.clone());
            Ok(id)
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
            done(ctx, &resource, format!("{} updated", l.id));
            Ok(l.id.clone())
        }
    }
}

/// Deletes everything in `doomed`, in the order AWS requires: endpoints and NAT gateways
/// (waited until gone), then addresses, route tables, the internet gateway, subnets and
/// security groups (retrying while their network interfaces linger), and last the VPC.
pub(crate) async fn teardown(ctx: &Context, ec2: &Client, doomed: &Live) -> Result<()> {
    let endpoints = async {
        if doomed.endpoints.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = doomed.endpoints.iter().map(|e| e.id.clone()).collect();
        let resource = format!("vpc-endpoint {}", ids.join(","));
        started(ctx, &resource, "delete");
        ok_if_gone(
            ctx.call("DeleteVpcEndpoints", &resource, || {
                ec2.delete_vpc_endpoints()
                    .set_vpc_endpoint_ids(Some(ids.clone()))
                    .send()
            })
            .await,
        )?;
        ctx.poll(&resource, "deletion", &PollPolicy::with_timeout(DEPENDENCY_BUDGET), || async {
            let out = ctx
                .call("DescribeVpcEndpoints", &resource, || {
                    ec2.describe_vpc_endpoints().set_vpc_endpoint_ids(Some(ids.clone())).send()
                })
                .await;
            let out = match out {
                Err(e) if already_gone(&e) => return Ok(Poll::Ready(())),
                other => other?,
            };
            let left: Vec<String> = out
                .vpc_endpoints()
                .iter()
                .filter(|e| !matches!(e.state().map(|s| s.as_str().to_ascii_lowercase()), Some(s) if s == "deleted"))
                .map(|e| e.vpc_endpoint_id().unwrap_or_default().to_string())
                .collect();
            Ok(if left.is_empty() { Poll::Ready(()) } else { Poll::Pending(format!("{} left", left.len())) })
        })
        .await?;
        done(ctx, &resource, "deleted");
        Ok::<_, Error>(())
    };
    let nats = async {
        if doomed.nats.is_empty() {
            return Ok(());
        }
        try_join_all(doomed.nats.iter().map(|n| async move {
            let resource = format!("nat-gateway {}", n.id);
            started(ctx, &resource, "delete");
            ok_if_gone(
                ctx.call("DeleteNatGateway", &resource, || {
                    ec2.delete_nat_gateway().nat_gateway_id(&n.id).send()
                })
                .await,
            )
        }))
        .await?;
        let ids: Vec<String> = doomed.nats.iter().map(|n| n.id.clone()).collect();
        let resource = format!("nat-gateway {}", ids.join(","));
        // No SDK waiter exists for this; the addresses stay mapped until `deleted`.
        ctx.poll(
            &resource,
            "state deleted",
            &PollPolicy::with_timeout(DEPENDENCY_BUDGET),
            || async {
                let out = ctx
                    .call("DescribeNatGateways", &resource, || {
                        ec2.describe_nat_gateways()
                            .set_nat_gateway_ids(Some(ids.clone()))
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
        done(ctx, &resource, "deleted");
        Ok::<_, Error>(())
    };
    futures_util::try_join!(endpoints, nats)?;

    let eips = try_join_all(doomed.eips.iter().map(|a| async move {
        let resource = format!("elastic-ip {}", a.id);
        started(ctx, &resource, "release");
        let retry = RetryOn::codes(
            &["InvalidIPAddress.InUse", "AuthFailure"],
            Duration::from_secs(120),
        );
        ok_if_gone(
            ctx.call_retrying("ReleaseAddress", &resource, &retry, || {
                ec2.release_address().allocation_id(&a.id).send()
            })
            .await,
        )?;
        done(ctx, &resource, "released");
        Ok::<_, Error>(())
    }));
    let tables = try_join_all(doomed.route_tables.iter().map(|t| async move {
        let resource = format!("route-table {}", t.id);
        started(ctx, &resource, "delete");
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
        )?;
        done(ctx, &resource, "deleted");
        Ok::<_, Error>(())
    }));
    let igws = try_join_all(doomed.igws.iter().map(|g| async move {
        let resource = format!("internet-gateway {}", g.id);
        started(ctx, &resource, "delete");
        if let Some(vpc) = &g.attached_vpc {
            ok_if_gone(
                ctx.call_retrying(
                    "DetachInternetGateway",
                    &resource,
                    &dependency_violation(),
                    || {
                        ec2.detach_internet_gateway()
                            .internet_gateway_id(&g.id)
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
                    .internet_gateway_id(&g.id)
                    .send()
            })
            .await,
        )?;
        done(ctx, &resource, "deleted");
        Ok::<_, Error>(())
    }));
    // Subnets and groups whose network interfaces linger (load balancer and task ENIs go a
    // while after their owners) fail with DependencyViolation: retried within the budget,
    // each failure reported as a Retrying event that says what is still attached.
    let subnets_and_groups = async {
        try_join_all(doomed.subnets.iter().map(|s| async move {
            let resource = format!("subnet {}", s.id);
            started(ctx, &resource, "delete");
            ok_if_gone(
                ctx.call_retrying("DeleteSubnet", &resource, &dependency_violation(), || {
                    ec2.delete_subnet().subnet_id(&s.id).send()
                })
                .await,
            )?;
            done(ctx, &resource, "deleted");
            Ok::<_, Error>(())
        }))
        .await?;
        // Groups that reference each other cannot be deleted until the references go.
        try_join_all(doomed.sgs.iter().map(|g| async move {
            let resource = format!("security-group {}", g.id);
            let refs = |rules: &BTreeSet<Rule>| -> BTreeSet<Rule> {
                rules
                    .iter()
                    .filter(|r| matches!(r.peer, Peer::Group(_)))
                    .cloned()
                    .collect()
            };
            sync_rules(
                ctx,
                ec2,
                &resource,
                &g.id,
                true,
                &refs(&g.ingress),
                &BTreeSet::new(),
            )
            .await?;
            sync_rules(
                ctx,
                ec2,
                &resource,
                &g.id,
                false,
                &refs(&g.egress),
                &BTreeSet::new(),
            )
            .await
        }))
        .await
        .or_else(|e| {
            if e.as_aws().is_some_and(already_gone) {
                Ok(Vec::new())
            } else {
                Err(e)
            }
        })?;
        try_join_all(doomed.sgs.iter().map(|g| async move {
            let resource = format!("security-group {}", g.id);
            started(ctx, &resource, "delete");
            ok_if_gone(
                ctx.call_retrying(
                    "DeleteSecurityGroup",
                    &resource,
                    &dependency_violation(),
                    || ec2.delete_security_group().group_id(&g.id).send(),
                )
                .await,
            )?;
            done(ctx, &resource, "deleted");
            Ok::<_, Error>(())
        }))
        .await?;
        Ok::<_, Error>(())
    };
    futures_util::try_join!(eips, tables, igws, subnets_and_groups)?;

    for v in &doomed.vpcs {
        let resource = format!("vpc {}", v.id);
        started(ctx, &resource, "delete");
        ok_if_gone(
            ctx.call_retrying("DeleteVpc", &resource, &dependency_violation(), || {
                ec2.delete_vpc().vpc_id(&v.id).send()
            })
            .await,
        )?;
        done(ctx, &resource, "deleted");
    }
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
