//! The desired network, and the one set of decision functions that both `plan` (to report)
//! and `apply` (to act) use, so the two never disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::Ipv4Net;

use ecs_core::{Action, Change, Context, FieldDiff, NameKind, Plan, Problems, Tags};

use crate::live::{Live, LiveNat, LiveRouteTable, LiveSg, LiveSubnet, LiveVpc, Owned};
use crate::rules::{render, Peer, Rule};
use crate::spec::{NatStrategy, Network, NetworkSpec};

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
                [Rule::tcp(self.container_port, group(SG_TASK))].into(),
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

fn with_tags(mut diffs: Vec<FieldDiff>, live: &Tags, desired: &Tags) -> Action {
    diffs.extend(desired.diff_from(live).map(|d| d.field()));
    Action::from_diffs(diffs)
}

pub(crate) fn decide_vpc(ctx: &Context, d: &DesiredVpc, live: Option<&LiveVpc>) -> Action {
    let Some(l) = live else { return Action::Create };
    if l.cidr != d.cidr.to_string() {
        return Action::Replace(format!(
            "cidr {} → {} cannot change in place",
            l.cidr, d.cidr
        ));
    }
    let mut diffs = Vec::new();
    if !l.dns_support {
        diffs.push(FieldDiff::new("enable_dns_support", false, true));
    }
    if !l.dns_hostnames {
        diffs.push(FieldDiff::new("enable_dns_hostnames", false, true));
    }
    with_tags(diffs, &l.tags, &desired_tags(ctx, VPC))
}

pub(crate) fn decide_igw(
    ctx: &Context,
    live: Option<&crate::live::LiveIgw>,
    vpc_id: &str,
) -> Action {
    let Some(l) = live else { return Action::Create };
    let mut diffs = Vec::new();
    if l.attached_vpc.as_deref() != Some(vpc_id) {
        diffs.push(FieldDiff::new(
            "attachment",
            l.attached_vpc.as_deref().unwrap_or("detached"),
            vpc_id,
        ));
    }
    with_tags(diffs, &l.tags, &desired_tags(ctx, IGW))
}

pub(crate) fn decide_subnet(
    ctx: &Context,
    logical: &str,
    cidr: &Ipv4Net,
    az: &str,
    live: Option<&LiveSubnet>,
) -> Action {
    let Some(l) = live else { return Action::Create };
    if l.cidr != cidr.to_string() || l.az != az {
        return Action::Replace(format!(
            "{} in {} → {cidr} in {az} cannot change in place",
            l.cidr, l.az
        ));
    }
    with_tags(Vec::new(), &l.tags, &desired_tags(ctx, logical))
}

/// A route table: its default route's target and its subnet associations.
pub(crate) fn decide_route_table(
    ctx: &Context,
    logical: &str,
    target: Option<&str>,
    subnets: &BTreeSet<String>,
    live: Option<&LiveRouteTable>,
) -> Action {
    let Some(l) = live else { return Action::Create };
    let mut diffs = Vec::new();
    if l.default_target.as_deref() != target {
        diffs.push(FieldDiff::new(
            "route 0.0.0.0/0",
            l.default_target.as_deref().unwrap_or("none"),
            target.unwrap_or("none"),
        ));
    }
    let live_subnets: BTreeSet<String> = l.associations.iter().map(|(_, s)| s.clone()).collect();
    if &live_subnets != subnets {
        diffs.push(FieldDiff::new(
            "subnets",
            format!("{live_subnets:?}"),
            format!("{subnets:?}"),
        ));
    }
    with_tags(diffs, &l.tags, &desired_tags(ctx, logical))
}

pub(crate) fn decide_tagged<T: Owned>(ctx: &Context, logical: &str, live: Option<&T>) -> Action {
    match live {
        None => Action::Create,
        Some(l) => with_tags(Vec::new(), l.tags(), &desired_tags(ctx, logical)),
    }
}

pub(crate) fn decide_nat(
    ctx: &Context,
    logical: &str,
    subnet: &str,
    live: Option<&LiveNat>,
) -> Action {
    let Some(l) = live else { return Action::Create };
    if !subnet.starts_with('(') && l.subnet_id != subnet {
        return Action::Replace(format!("subnet {} → {subnet}", l.subnet_id));
    }
    with_tags(Vec::new(), &l.tags, &desired_tags(ctx, logical))
}

pub(crate) fn decide_sg(
    ctx: &Context,
    logical: &str,
    ingress: &BTreeSet<Rule>,
    egress: &BTreeSet<Rule>,
    live: Option<&LiveSg>,
) -> Action {
    let Some(l) = live else { return Action::Create };
    let mut diffs = Vec::new();
    if &l.ingress != ingress {
        diffs.push(FieldDiff::new(
            "ingress",
            render(&l.ingress),
            render(ingress),
        ));
    }
    if &l.egress != egress {
        diffs.push(FieldDiff::new("egress", render(&l.egress), render(egress)));
    }
    with_tags(diffs, &l.tags, &desired_tags(ctx, logical))
}

pub(crate) fn decide_endpoint(
    ctx: &Context,
    logical: &str,
    route_tables: &BTreeSet<String>,
    subnets: &BTreeSet<String>,
    live: Option<&crate::live::LiveEndpoint>,
) -> Action {
    let Some(l) = live else { return Action::Create };
    let mut diffs = Vec::new();
    if &l.route_tables != route_tables {
        diffs.push(FieldDiff::new(
            "route_tables",
            format!("{:?}", l.route_tables),
            format!("{route_tables:?}"),
        ));
    }
    if &l.subnets != subnets {
        diffs.push(FieldDiff::new(
            "subnets",
            format!("{:?}", l.subnets),
            format!("{subnets:?}"),
        ));
    }
    with_tags(diffs, &l.tags, &desired_tags(ctx, logical))
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
                return Err(crate::Error::ReplacementRequired {
                    resource: format!("{} {}", c.resource, c.id),
                    reason: reason.clone(),
                });
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

impl fmt::Display for NetworkPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.changes, f)
    }
}

/// Computes every change, in apply order.
pub(crate) fn changes(ctx: &Context, desired: &Desired, live: &Live) -> crate::Result<Plan> {
    let ids = Ids::from_live(live);
    let mut plan = Plan::new();
    let mut push = |kind: &str, logical: &str, action: Action, detail: String| {
        plan.push(Change::new(kind, logical, action).with_detail(detail));
    };
    if let Some(v) = desired.managed() {
        push(
            "vpc",
            VPC,
            decide_vpc(ctx, v, select(&live.vpcs, VPC)),
            v.cidr.to_string(),
        );
        let vpc = select(&live.vpcs, VPC);
        let default_sg = crate::default_sg::plan(
            ctx,
            vpc.map(|l| l.id.as_str()),
            vpc.and_then(|l| l.default_sg.as_ref()),
        )?;
        if let Some(planned) = default_sg {
            let desired = crate::default_sg::DefaultSecurityGroup {
                vpc_id: vpc.map(|l| l.id.clone()).into(),
            };
            let change = planned.change(&desired);
            push(&change.resource, &change.id, change.action, change.detail);
        }
        let vpc_id = ids.get(VPC);
        push(
            "internet-gateway",
            IGW,
            decide_igw(ctx, select(&live.igws, IGW), &vpc_id),
            String::new(),
        );
        for (tier, blocks) in [("public", &v.public), ("private", &v.private)] {
            for (z, cidr) in v.zones.iter().zip(blocks.iter()) {
                let l = subnet_id(tier, z);
                push(
                    "subnet",
                    &l,
                    decide_subnet(ctx, &l, cidr, z, select(&live.subnets, &l)),
                    format!("{cidr} in {z}"),
                );
            }
        }
        let public_subnets: BTreeSet<String> = v
            .zones
            .iter()
            .map(|z| ids.get(&subnet_id("public", z)))
            .collect();
        let igw = ids.get(IGW);
        push(
            "route-table",
            RT_PUBLIC,
            decide_route_table(
                ctx,
                RT_PUBLIC,
                Some(&igw),
                &public_subnets,
                select(&live.route_tables, RT_PUBLIC),
            ),
            "0.0.0.0/0 via the internet gateway".into(),
        );
        for z in v.nat_zones() {
            let (e, n) = (eip_id(&z), nat_id(&z));
            push(
                "elastic-ip",
                &e,
                decide_tagged(ctx, &e, select(&live.eips, &e)),
                format!("for {n}"),
            );
            let subnet = ids.get(&subnet_id("public", &z));
            push(
                "nat-gateway",
                &n,
                decide_nat(ctx, &n, &subnet, select(&live.nats, &n)),
                format!("in {z}"),
            );
        }
        for z in &v.zones {
            let l = rt_private_id(z);
            let target = v.nat_zone_for(z).map(|nz| ids.get(&nat_id(&nz)));
            let subnets = [ids.get(&subnet_id("private", z))].into();
            let detail = match &target {
                Some(_) => format!(
                    "0.0.0.0/0 via {}",
                    nat_id(&v.nat_zone_for(z).unwrap_or_default())
                ),
                None => "no internet route".into(),
            };
            push(
                "route-table",
                &l,
                decide_route_table(
                    ctx,
                    &l,
                    target.as_deref(),
                    &subnets,
                    select(&live.route_tables, &l),
                ),
                detail,
            );
        }
    }
    for sg in desired.security_groups() {
        let (ingress, egress) = desired.sg_rules(sg, &ids);
        let detail = format!("ingress {} egress {}", render(&ingress), render(&egress));
        push(
            "security-group",
            sg,
            decide_sg(ctx, sg, &ingress, &egress, select(&live.sgs, sg)),
            detail,
        );
    }
    if let Some(v) = desired.managed() {
        let (rts, subnets) = endpoint_targets(v, &ids);
        for e in &v.endpoints {
            let (r, s) = if e.gateway {
                (rts.clone(), BTreeSet::new())
            } else {
                (BTreeSet::new(), subnets.clone())
            };
            push(
                "vpc-endpoint",
                &e.logical,
                decide_endpoint(ctx, &e.logical, &r, &s, select(&live.endpoints, &e.logical)),
                e.service_name.clone(),
            );
        }
    }
    let wanted = desired.logical_ids();
    for (kind, items) in surplus_inventory(live, &wanted) {
        for (logical, id) in items {
            push(kind, &logical, Action::Delete, id);
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
        ingress: spec.alb_ingress_cidrs.clone(),
    })
}
