//! The desired network, and the one set of builders of its desired resources that both
//! `plan` (from the ids the read found) and `apply`'s steps (from those and the ids the steps
//! before them gave) use, so the two never disagree; each kind's `Resource::diff` and
//! `replacement` decide.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::Ipv4Net;

use ecs_core::resource::{self, Resource};
use ecs_core::{Action, Change, Context, NameKind, Plan, Problems, Tags};

use crate::eip::ElasticIp;
use crate::endpoint::VpcEndpoint;
use crate::igw::InternetGateway;
use crate::live::{Live, Owned};
use crate::nat::NatGateway;
use crate::route_table::RouteTable;
use crate::rules::{Peer, Rule};
use crate::security_group::SecurityGroup;
use crate::spec::{NatStrategy, Network, NetworkSpec};
use crate::subnet::Subnet;
use crate::vpc::Vpc;

pub(crate) use crate::ids::*;

/// A VPC endpoint wanted in the stack's VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredEndpoint {
    pub(crate) logical: String,
    pub(crate) service_name: String,
    pub(crate) gateway: bool,
}

/// The managed VPC as it should be, with zones resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredVpc {
    pub(crate) cidr: Ipv4Net,
    pub(crate) zones: Vec<String>,
    pub(crate) public: Vec<Ipv4Net>,
    pub(crate) private: Vec<Ipv4Net>,
    pub(crate) nat: NatStrategy,
    pub(crate) endpoints: Vec<DesiredEndpoint>,
}

impl DesiredVpc {
    /// Zones that get a NAT gateway.
    pub(crate) fn nat_zones(&self) -> Vec<String> {
        match self.nat {
            NatStrategy::None => Vec::new(),
            NatStrategy::Single => self.zones.iter().take(1).cloned().collect(),
            NatStrategy::PerAz => self.zones.clone(),
        }
    }

    /// The zone of the NAT gateway that zone `az`'s private subnet routes through.
    pub(crate) fn nat_zone_for(&self, az: &str) -> Option<String> {
        match self.nat {
            NatStrategy::None => None,
            NatStrategy::Single => self.zones.first().cloned(),
            NatStrategy::PerAz => Some(az.to_string()),
        }
    }

    fn has_interface_endpoints(&self) -> bool {
        self.endpoints.iter().any(|e| !e.gateway)
    }
}

/// An existing VPC, checked against AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExistingResolved {
    pub(crate) vpc_id: String,
    pub(crate) cidr: String,
    pub(crate) zones: Vec<String>,
    pub(crate) public: Vec<String>,
    pub(crate) private: Vec<String>,
}

/// Everything the stack should own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DesiredNetwork {
    Managed(DesiredVpc),
    Existing(ExistingResolved),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Desired {
    pub(crate) network: DesiredNetwork,
    pub(crate) container_port: u16,
    pub(crate) listener_ports: Vec<u16>,
    /// An environment's network (see [`crate::NetworkSpec::shared`]).
    pub(crate) shared: bool,
    pub(crate) ingress: Vec<Ipv4Net>,
}

impl Desired {
    pub(crate) fn managed(&self) -> Option<&DesiredVpc> {
        match &self.network {
            DesiredNetwork::Managed(v) => Some(v),
            DesiredNetwork::Existing(_) => None,
        }
    }

    /// The security groups wanted, by logical id.
    pub(crate) fn security_groups(&self) -> Vec<&'static str> {
        let mut out = vec![SG_ALB, SG_TASK];
        if self
            .managed()
            .is_some_and(DesiredVpc::has_interface_endpoints)
        {
            out.push(SG_ENDPOINTS);
        }
        out
    }

    /// The ingress and egress rules of security group `logical`, with group references
    /// resolved through `ids`.
    pub(crate) fn sg_rules(&self, logical: &str, ids: &Ids) -> (BTreeSet<Rule>, BTreeSet<Rule>) {
        let anywhere = || Peer::Cidr("0.0.0.0/0".into());
        let group = |l: &str| Peer::Group(ids.get(l));
        match logical {
            SG_ALB => (
                self.listener_ports
                    .iter()
                    .flat_map(|p| {
                        self.ingress
                            .iter()
                            .map(move |c| Rule::tcp(*p, Peer::Cidr(c.to_string())))
                    })
                    .collect(),
                match self.shared {
                    true => [Rule::tcp_all(group(SG_TASK))].into(),
                    false => [Rule::tcp(self.container_port, group(SG_TASK))].into(),
                },
            ),
            SG_TASK if self.shared => (
                [Rule::tcp_all(group(SG_ALB)), Rule::all(group(SG_TASK))].into(),
                [Rule::all(anywhere())].into(),
            ),
            SG_TASK => (
                [Rule::tcp(self.container_port, group(SG_ALB))].into(),
                [Rule::all(anywhere())].into(),
            ),
            _ => ([Rule::tcp(443, group(SG_TASK))].into(), BTreeSet::new()),
        }
    }

    /// Every logical id the stack should own.
    pub(crate) fn logical_ids(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .security_groups()
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(v) = self.managed() {
            out.extend([VPC, IGW, RT_PUBLIC].map(String::from));
            for z in &v.zones {
                out.insert(subnet_id("public", z));
                out.insert(subnet_id("private", z));
                out.insert(rt_private_id(z));
            }
            for z in v.nat_zones() {
                out.insert(nat_id(&z));
                out.insert(eip_id(&z));
            }
            out.extend(v.endpoints.iter().map(|e| e.logical.clone()));
        }
        out
    }
}

/// Logical id → AWS id of the stack's resources: live ones, then the ones created by apply.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ids(BTreeMap<String, String>);

impl Ids {
    /// The ids a plan knows: the live resources', and an imported VPC's.
    pub(crate) fn new(desired: &Desired, live: &Live) -> Self {
        let mut ids = Self::from_live(live);
        if let DesiredNetwork::Existing(e) = &desired.network {
            ids.set(VPC, e.vpc_id.clone());
        }
        ids
    }

    pub(crate) fn from_live(live: &Live) -> Self {
        let mut ids = Ids::default();
        ids.adopt(&live.vpcs);
        ids.adopt(&live.igws);
        ids.adopt(&live.subnets);
        ids.adopt(&live.route_tables);
        ids.adopt(&live.eips);
        ids.adopt(&live.nats);
        ids.adopt(&live.sgs);
        ids.adopt(&live.endpoints);
        ids
    }

    fn adopt<T: Owned>(&mut self, items: &[T]) {
        for item in items {
            if let Some(l) = item.logical() {
                self.0
                    .entry(l.to_string())
                    .or_insert_with(|| item.id().to_string());
            }
        }
    }

    /// The id of `logical`, or `(logical)` when it does not exist yet.
    pub(crate) fn get(&self, logical: &str) -> String {
        self.0
            .get(logical)
            .cloned()
            .unwrap_or_else(|| format!("({logical})"))
    }

    pub(crate) fn set(&mut self, logical: &str, id: String) {
        self.0.insert(logical.to_string(), id);
    }
}

/// The first live resource with logical id `logical` (later duplicates are surplus).
pub(crate) fn select<'a, T: Owned>(items: &'a [T], logical: &str) -> Option<&'a T> {
    items.iter().find(|i| i.logical() == Some(logical))
}

/// The live resources no longer wanted: unknown logical ids and duplicates.
pub(crate) fn surplus<T: Owned + Clone>(items: &[T], wanted: &BTreeSet<String>) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .filter(|i| match i.logical() {
            Some(l) if wanted.contains(l) => !seen.insert(l.to_string()),
            _ => true,
        })
        .cloned()
        .collect()
}

/// The `Name` tag value of a logical resource.
pub(crate) fn ec2_name(ctx: &Context, logical: &str) -> String {
    ctx.stack()
        .name(NameKind::Ec2Name, &logical.replace('/', "-"))
}

/// The full desired tag set of a logical resource.
pub(crate) fn desired_tags(ctx: &Context, logical: &str) -> Tags {
    ctx.resource_tags(Some(logical), Some(&ec2_name(ctx, logical)))
}

impl DesiredVpc {
    /// The VPC.
    pub(crate) fn vpc(&self, ctx: &Context) -> Vpc {
        Vpc {
            cidr: self.cidr,
            tags: desired_tags(ctx, VPC),
        }
    }

    /// The internet gateway, attached to the VPC.
    pub(crate) fn igw(&self, ctx: &Context, ids: &Ids) -> InternetGateway {
        InternetGateway {
            vpc_id: ids.get(VPC),
            tags: desired_tags(ctx, IGW),
        }
    }

    /// The subnet of tier `tier` (`public` or `private`) in zone `z`, with block `cidr`.
    pub(crate) fn subnet(
        &self,
        ctx: &Context,
        tier: &str,
        z: &str,
        cidr: &Ipv4Net,
        ids: &Ids,
    ) -> Subnet {
        let logical = subnet_id(tier, z);
        Subnet {
            tags: desired_tags(ctx, &logical),
            logical,
            cidr: *cidr,
            az: z.to_string(),
            vpc_id: ids.get(VPC),
        }
    }

    /// Every subnet: the public ones in zone order, then the private ones.
    pub(crate) fn subnets(&self, ctx: &Context, ids: &Ids) -> Vec<Subnet> {
        [("public", &self.public), ("private", &self.private)]
            .into_iter()
            .flat_map(|(tier, blocks)| {
                self.zones
                    .iter()
                    .zip(blocks.iter())
                    .map(move |(z, cidr)| self.subnet(ctx, tier, z, cidr, ids))
            })
            .collect()
    }

    /// The public route table: `0.0.0.0/0` through the internet gateway, every public subnet.
    pub(crate) fn public_route_table(&self, ctx: &Context, ids: &Ids) -> RouteTable {
        RouteTable {
            logical: RT_PUBLIC.to_string(),
            vpc_id: ids.get(VPC),
            target: Some(ids.get(IGW)),
            subnets: self
                .zones
                .iter()
                .map(|z| ids.get(&subnet_id("public", z)))
                .collect(),
            detail: "0.0.0.0/0 via the internet gateway".into(),
            tags: desired_tags(ctx, RT_PUBLIC),
        }
    }

    /// The private route table of zone `z`: `0.0.0.0/0` through its NAT gateway, if any, and
    /// its private subnet.
    pub(crate) fn private_route_table(&self, ctx: &Context, z: &str, ids: &Ids) -> RouteTable {
        let logical = rt_private_id(z);
        let nat = self.nat_zone_for(z).map(|nz| nat_id(&nz));
        RouteTable {
            tags: desired_tags(ctx, &logical),
            logical,
            vpc_id: ids.get(VPC),
            target: nat.as_deref().map(|n| ids.get(n)),
            subnets: [ids.get(&subnet_id("private", z))].into(),
            detail: match &nat {
                Some(n) => format!("0.0.0.0/0 via {n}"),
                None => "no internet route".into(),
            },
        }
    }

    /// The address of zone `z`'s NAT gateway.
    pub(crate) fn eip(&self, ctx: &Context, z: &str) -> ElasticIp {
        let logical = eip_id(z);
        ElasticIp {
            tags: desired_tags(ctx, &logical),
            logical,
            nat: nat_id(z),
        }
    }

    /// Zone `z`'s NAT gateway, in its public subnet with its address.
    pub(crate) fn nat(&self, ctx: &Context, z: &str, ids: &Ids) -> NatGateway {
        let logical = nat_id(z);
        NatGateway {
            tags: desired_tags(ctx, &logical),
            logical,
            zone: z.to_string(),
            subnet: ids.get(&subnet_id("public", z)),
            allocation: ids.get(&eip_id(z)),
        }
    }

    /// The endpoint `e`: a gateway endpoint in the private route tables, an interface
    /// endpoint in the private subnets with the endpoints' group.
    pub(crate) fn endpoint(&self, ctx: &Context, e: &DesiredEndpoint, ids: &Ids) -> VpcEndpoint {
        let (rts, subnets) = endpoint_targets(self, ids);
        let (route_tables, subnets) = if e.gateway {
            (rts, BTreeSet::new())
        } else {
            (BTreeSet::new(), subnets)
        };
        VpcEndpoint {
            logical: e.logical.clone(),
            service_name: e.service_name.clone(),
            gateway: e.gateway,
            vpc_id: ids.get(VPC),
            route_tables,
            subnets,
            security_group: ids.get(SG_ENDPOINTS),
            tags: desired_tags(ctx, &e.logical),
        }
    }
}

impl Desired {
    /// The security group `logical`, its rules naming the other groups through `ids`.
    pub(crate) fn security_group(
        &self,
        ctx: &Context,
        logical: &'static str,
        ids: &Ids,
    ) -> SecurityGroup {
        let (ingress, egress) = self.sg_rules(logical, ids);
        let mut tags = desired_tags(ctx, logical);
        // An environment on an existing VPC publishes the network its services join on the
        // tasks' group (its subnets carry no tag of the environment's).
        if let (DesiredNetwork::Existing(e), true, SG_TASK) = (&self.network, self.shared, logical)
        {
            tags.insert(VPC_TAG, format!("{} {}", e.vpc_id, e.cidr));
            tags.insert(PUBLIC_SUBNETS_TAG, e.public.join(" "));
            tags.insert(PRIVATE_SUBNETS_TAG, e.private.join(" "));
            tags.insert(ZONES_TAG, e.zones.join(" "));
        }
        SecurityGroup {
            logical,
            vpc_id: ids.get(VPC),
            ingress,
            egress,
            tags,
        }
    }
}

/// Plans `desired` against what the read found, and adds its line to `plan`.
fn push<R: Resource>(
    ctx: &Context,
    plan: &mut Plan,
    desired: &R,
    live: Option<&R::Live>,
) -> crate::Result<()> {
    let planned = resource::plan(ctx, desired, live.cloned())?;
    plan.push(planned.change(desired));
    Ok(())
}

/// What `plan` found: the changes, and the snapshot they were computed from, which `apply`
/// carries out.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub(crate) desired: Desired,
    pub(crate) live: Live,
    pub(crate) changes: Plan,
}

impl NetworkPlan {
    /// The changes, resource by resource.
    pub fn changes(&self) -> &Plan {
        &self.changes
    }

    /// Whether applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Refuses, with [`Error::ReplacementRequired`](crate::Error::ReplacementRequired), a plan
    /// that replaces a VPC, subnet or NAT gateway (which `apply` never does in place): what a
    /// caller runs before it changes anything, so that nothing is half-made.
    pub fn check_replacements(&self) -> crate::Result<()> {
        for c in &self.changes.changes {
            if let Action::Replace(reason) = &c.action {
                return Err(resource::Replacement::new(&c.resource, &c.id, reason).into());
            }
        }
        Ok(())
    }

    /// The outputs, when what the layers above use — the VPC, the subnets and the two
    /// security groups — exists already and stays (other parts, such as NAT gateways, may
    /// still change; their ids are left out). `None` when any of them is still to be made.
    pub fn known_outputs(&self) -> Option<crate::NetworkOutputs> {
        let ids = Ids::from_live(&self.live);
        let known = |logical: &str| {
            let id = ids.get(logical);
            let replaced = self.changes.pending().any(|c| {
                c.id == logical && matches!(c.action, Action::Create | Action::Replace(_))
            });
            (!id.starts_with('(') && !replaced).then_some(id)
        };
        let (alb_sg, task_sg) = (known(SG_ALB)?, known(SG_TASK)?);
        match &self.desired.network {
            DesiredNetwork::Existing(e) => Some(crate::NetworkOutputs {
                vpc_id: e.vpc_id.clone(),
                vpc_cidr: e.cidr.clone(),
                availability_zones: e.zones.clone(),
                public_subnets: e.public.clone(),
                private_subnets: e.private.clone(),
                alb_sg,
                task_sg,
                nat_gateways: Vec::new(),
                vpc_endpoints: Vec::new(),
            }),
            DesiredNetwork::Managed(v) => {
                let tier = |t: &str| -> Option<Vec<String>> {
                    v.zones.iter().map(|z| known(&subnet_id(t, z))).collect()
                };
                Some(crate::NetworkOutputs {
                    vpc_id: known(VPC)?,
                    vpc_cidr: v.cidr.to_string(),
                    availability_zones: v.zones.clone(),
                    public_subnets: tier("public")?,
                    private_subnets: tier("private")?,
                    alb_sg,
                    task_sg,
                    nat_gateways: Vec::new(),
                    vpc_endpoints: Vec::new(),
                })
            }
        }
    }
}

/// The tag of an environment's tasks' group on an existing VPC: `<vpc id> <block>`.
pub(crate) const VPC_TAG: &str = "ecs:vpc";
/// Likewise: the public subnets, space-separated.
pub(crate) const PUBLIC_SUBNETS_TAG: &str = "ecs:public-subnets";
/// Likewise: the private subnets, space-separated.
pub(crate) const PRIVATE_SUBNETS_TAG: &str = "ecs:private-subnets";
/// Likewise: the zones, space-separated.
pub(crate) const ZONES_TAG: &str = "ecs:zones";

/// An environment's network as its services use it, from what the environment owns: its
/// VPC, subnets (by their logical ids, zone by zone), NAT gateways and endpoints when the VPC
/// is its own; the VPC and subnets its tasks' group names on an existing VPC. `None` when the
/// environment has no such network.
pub(crate) fn shared_outputs(live: &Live) -> Option<crate::NetworkOutputs> {
    let ids = Ids::from_live(live);
    let have = |logical: &str| {
        let id = ids.get(logical);
        (!id.starts_with('(')).then_some(id)
    };
    let (alb_sg, task_sg) = (have(SG_ALB)?, have(SG_TASK)?);
    let task = live.sgs.iter().find(|s| s.id == task_sg)?;
    let words = |tag: &str| -> Option<Vec<String>> {
        Some(
            task.tags
                .get(tag)?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        )
    };
    match live.vpcs.iter().find(|v| v.logical() == Some(VPC)) {
        Some(vpc) => {
            let mut zones: Vec<String> = live.subnets.iter().map(|s| s.az.clone()).collect();
            zones.sort();
            zones.dedup();
            let tier = |t: &str| -> Option<Vec<String>> {
                zones.iter().map(|z| have(&subnet_id(t, z))).collect()
            };
            Some(crate::NetworkOutputs {
                vpc_id: vpc.id.clone(),
                vpc_cidr: vpc.cidr.clone(),
                public_subnets: tier("public")?,
                private_subnets: tier("private")?,
                availability_zones: zones,
                alb_sg,
                task_sg,
                nat_gateways: live.nats.iter().map(|n| n.id.clone()).collect(),
                vpc_endpoints: live.endpoints.iter().map(|e| e.id.clone()).collect(),
            })
        }
        None => {
            let vpc = words(VPC_TAG)?;
            Some(crate::NetworkOutputs {
                vpc_id: vpc.first()?.clone(),
                vpc_cidr: vpc.get(1).cloned().unwrap_or_default(),
                availability_zones: words(ZONES_TAG).unwrap_or_default(),
                public_subnets: words(PUBLIC_SUBNETS_TAG)?,
                private_subnets: words(PRIVATE_SUBNETS_TAG)?,
                alb_sg,
                task_sg,
                nat_gateways: Vec::new(),
                vpc_endpoints: Vec::new(),
            })
        }
    }
}

impl fmt::Display for NetworkPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.changes, f)
    }
}

/// Computes every change, in apply order.
pub(crate) fn changes(ctx: &Context, desired: &Desired, live: &Live) -> crate::Result<Plan> {
    let ids = Ids::new(desired, live);
    let mut plan = Plan::new();
    if let Some(v) = desired.managed() {
        let vpc = select(&live.vpcs, VPC);
        push(ctx, &mut plan, &v.vpc(ctx), vpc)?;
        let default_sg = crate::default_sg::plan(
            ctx,
            vpc.map(|l| l.id.as_str()),
            vpc.and_then(|l| l.default_sg.as_ref()),
        )?;
        if let Some(planned) = default_sg {
            let desired = crate::default_sg::DefaultSecurityGroup {
                vpc_id: vpc.map(|l| l.id.clone()).into(),
            };
            plan.push(planned.change(&desired));
        }
        push(ctx, &mut plan, &v.igw(ctx, &ids), select(&live.igws, IGW))?;
        for s in v.subnets(ctx, &ids) {
            let found = select(&live.subnets, &s.logical);
            push(ctx, &mut plan, &s, found)?;
        }
        push(
            ctx,
            &mut plan,
            &v.public_route_table(ctx, &ids),
            select(&live.route_tables, RT_PUBLIC),
        )?;
        for z in v.nat_zones() {
            push(
                ctx,
                &mut plan,
                &v.eip(ctx, &z),
                select(&live.eips, &eip_id(&z)),
            )?;
            push(
                ctx,
                &mut plan,
                &v.nat(ctx, &z, &ids),
                select(&live.nats, &nat_id(&z)),
            )?;
        }
        for z in &v.zones {
            let found = select(&live.route_tables, &rt_private_id(z));
            push(ctx, &mut plan, &v.private_route_table(ctx, z, &ids), found)?;
        }
    }
    for sg in desired.security_groups() {
        let found = select(&live.sgs, sg);
        push(
            ctx,
            &mut plan,
            &desired.security_group(ctx, sg, &ids),
            found,
        )?;
    }
    if let Some(v) = desired.managed() {
        for e in &v.endpoints {
            let found = select(&live.endpoints, &e.logical);
            push(ctx, &mut plan, &v.endpoint(ctx, e, &ids), found)?;
        }
    }
    let wanted = desired.logical_ids();
    for (kind, items) in surplus_inventory(live, &wanted) {
        for (logical, id) in items {
            plan.push(Change::new(kind, &logical, Action::Delete).with_detail(id));
        }
    }
    Ok(plan)
}

/// The private route tables (for gateway endpoints) and private subnets (for interface
/// endpoints) of a managed VPC.
pub(crate) fn endpoint_targets(v: &DesiredVpc, ids: &Ids) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        v.zones.iter().map(|z| ids.get(&rt_private_id(z))).collect(),
        v.zones
            .iter()
            .map(|z| ids.get(&subnet_id("private", z)))
            .collect(),
    )
}

/// Live resources no longer wanted, as (kind, [(logical id or "untracked", aws id)]).
pub(crate) fn surplus_inventory(
    live: &Live,
    wanted: &BTreeSet<String>,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    fn ids<T: Owned + Clone>(items: &[T], wanted: &BTreeSet<String>) -> Vec<(String, String)> {
        surplus(items, wanted)
            .iter()
            .map(|i| {
                (
                    i.logical().unwrap_or("untracked").to_string(),
                    i.id().to_string(),
                )
            })
            .collect()
    }
    vec![
        ("vpc-endpoint", ids(&live.endpoints, wanted)),
        ("nat-gateway", ids(&live.nats, wanted)),
        ("elastic-ip", ids(&live.eips, wanted)),
        ("route-table", ids(&live.route_tables, wanted)),
        ("subnet", ids(&live.subnets, wanted)),
        ("security-group", ids(&live.sgs, wanted)),
        ("internet-gateway", ids(&live.igws, wanted)),
        ("vpc", ids(&live.vpcs, wanted)),
    ]
}

/// The part of the live state that is no longer wanted.
pub(crate) fn surplus_live(live: &Live, wanted: &BTreeSet<String>) -> Live {
    Live {
        vpcs: surplus(&live.vpcs, wanted),
        igws: surplus(&live.igws, wanted),
        subnets: surplus(&live.subnets, wanted),
        route_tables: surplus(&live.route_tables, wanted),
        eips: surplus(&live.eips, wanted),
        nats: surplus(&live.nats, wanted),
        sgs: surplus(&live.sgs, wanted),
        endpoints: surplus(&live.endpoints, wanted),
    }
}

/// Resolves the specification into the desired network. `zones` are the region's available
/// zones, in name order; `existing` is the checked existing VPC, when the spec names one.
pub(crate) fn desired(
    spec: &NetworkSpec,
    region: &str,
    zones: &[String],
    existing: Option<ExistingResolved>,
) -> Result<Desired, Problems> {
    let mut problems = Problems::new();
    let network = match (&spec.vpc, existing) {
        (Network::Managed(m), _) => {
            let chosen: Vec<String> = match &m.availability_zones {
                Some(named) => {
                    for (i, z) in named.iter().enumerate() {
                        if !zones.contains(z) {
                            problems.push(
                                format!("vpc.managed.availability_zones[{i}]"),
                                format!(
                                    "{z} is not an available zone of {region} (available: {})",
                                    zones.join(", ")
                                ),
                            );
                        }
                    }
                    named.clone()
                }
                None => {
                    if zones.len() < usize::from(m.az_count) {
                        problems.push(
                            "vpc.managed.az_count",
                            format!(
                                "{} zones wanted but {region} has only {} available ({})",
                                m.az_count,
                                zones.len(),
                                zones.join(", ")
                            ),
                        );
                    }
                    zones
                        .iter()
                        .take(usize::from(m.az_count))
                        .cloned()
                        .collect()
                }
            };
            let (public, private) = m.subnet_blocks();
            let endpoints = m
                .endpoints
                .wanted()
                .into_iter()
                .map(|(name, suffix, gateway)| DesiredEndpoint {
                    logical: endpoint_id(name),
                    service_name: format!("com.amazonaws.{region}.{suffix}"),
                    gateway,
                })
                .collect();
            DesiredNetwork::Managed(DesiredVpc {
                cidr: m.cidr,
                zones: chosen,
                public,
                private,
                nat: m.nat,
                endpoints,
            })
        }
        (Network::Existing(_), Some(resolved)) => DesiredNetwork::Existing(resolved),
        (Network::Existing(e), None) => {
            problems.push(
                "vpc.existing.vpc_id",
                format!("{} could not be resolved", e.vpc_id),
            );
            return Err(problems);
        }
    };
    problems.into_result()?;
    Ok(Desired {
        network,
        container_port: spec.container_port,
        listener_ports: spec.listener_ports.clone(),
        shared: spec.shared,
        ingress: spec.alb_ingress_cidrs.clone(),
    })
}
