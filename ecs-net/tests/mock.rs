//! Tests of ecs-net through its public API against a mocked EC2 client (aws-smithy-mocks):
//! plan, apply, wait_ready, deploy, inventory, plan_destroy and destroy, with retries and waits
//! timed by a [`FakeClock`] so nothing sleeps for real.
//!
//! Every test builds a [`Mock`] from an [`Ec2State`]: the shared stateful fake EC2
//! ([`FakeEc2`], `ecs_core::testing`) answers the describes from it and changes it as each
//! mutating call would, giving a new resource an id derived from the `ecs:resource` tag it
//! carries (`subnet/public/us-east-1a` → `subnet-public-us-east-1a`); every call is recorded,
//! input included, in a [`Journal`]. A test puts its own rules in front of the fake's (in
//! `RuleMode::MatchAny` the first matching rule answers) to inject errors or sequences.

use ecs_core::testing::Journal;
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::allocate_address::AllocateAddressInput;
use aws_sdk_ec2::operation::associate_route_table::AssociateRouteTableInput;
use aws_sdk_ec2::operation::authorize_security_group_egress::AuthorizeSecurityGroupEgressInput;
use aws_sdk_ec2::operation::authorize_security_group_ingress::{
    AuthorizeSecurityGroupIngressError, AuthorizeSecurityGroupIngressInput,
};
use aws_sdk_ec2::operation::create_internet_gateway::CreateInternetGatewayInput;
use aws_sdk_ec2::operation::create_nat_gateway::CreateNatGatewayInput;
use aws_sdk_ec2::operation::create_route::CreateRouteInput;
use aws_sdk_ec2::operation::create_route_table::CreateRouteTableInput;
use aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupInput;
use aws_sdk_ec2::operation::create_subnet::{CreateSubnetError, CreateSubnetInput};
use aws_sdk_ec2::operation::create_vpc::CreateVpcInput;
use aws_sdk_ec2::operation::create_vpc_endpoint::CreateVpcEndpointInput;
use aws_sdk_ec2::operation::delete_nat_gateway::DeleteNatGatewayInput;
use aws_sdk_ec2::operation::delete_subnet::{DeleteSubnetError, DeleteSubnetInput};
use aws_sdk_ec2::operation::describe_nat_gateways::{
    DescribeNatGatewaysInput, DescribeNatGatewaysOutput,
};
use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesInput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsInput;
use aws_sdk_ec2::operation::describe_subnets::{
    DescribeSubnetsError, DescribeSubnetsInput, DescribeSubnetsOutput,
};
use aws_sdk_ec2::operation::describe_vpcs::{
    DescribeVpcsError, DescribeVpcsInput, DescribeVpcsOutput,
};
use aws_sdk_ec2::operation::detach_internet_gateway::DetachInternetGatewayInput;
use aws_sdk_ec2::operation::modify_vpc_attribute::{
    ModifyVpcAttributeError, ModifyVpcAttributeInput,
};
use aws_sdk_ec2::operation::release_address::ReleaseAddressInput;
use aws_sdk_ec2::operation::revoke_security_group_egress::RevokeSecurityGroupEgressInput;
use aws_sdk_ec2::operation::revoke_security_group_ingress::RevokeSecurityGroupIngressInput;
use aws_sdk_ec2::types::{
    Address, AttachmentStatus, Filter, InternetGateway, InternetGatewayAttachment, IpPermission,
    IpRange, NatGateway, NatGatewayState, ResourceType, Route, RouteTable, RouteTableAssociation,
    SecurityGroup, Subnet, Tag, TagSpecification, UserIdGroupPair, Vpc,
};
use aws_sdk_ec2::Client;

use ecs_core::testing::fake_ec2::{derived_id, zone};
use ecs_core::testing::{mock, Ec2State, FakeEc2, Rule, RuleMode};
use ecs_core::{Action, BoxFuture, Clock, Context, Event, EventLog, FakeClock, StackName, Tags};
use ecs_net::{
    Error, ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkOutputs, NetworkSpec,
    OwnedResource, VpcEndpoints,
};

// ---------------------------------------------------------------------------------------------
// Names used throughout.

const AZ_A: &str = "us-east-1a";
const AZ_B: &str = "us-east-1b";
const VPC: &str = "vpc-1";
const IGW: &str = "igw-1";
const NAT: &str = "nat-us-east-1a";
const EIP: &str = "eipalloc-us-east-1a";
const PUB_A: &str = "subnet-public-us-east-1a";
const PUB_B: &str = "subnet-public-us-east-1b";
const PRIV_A: &str = "subnet-private-us-east-1a";
const PRIV_B: &str = "subnet-private-us-east-1b";
const SG_ALB: &str = "sg-alb";
const SG_TASK: &str = "sg-task";
const DEFAULT_SG: &str = "sg-default";
const PORT: u16 = 8080;

/// The tags a resource of stack `web` must carry (the harness context has the user tag
/// `team=payments`).
fn tags_for(logical: &str) -> Vec<Tag> {
    let name = format!("web-{}", logical.replace('/', "-"));
    [
        ("team", "payments"),
        ("ecs:stack", "web"),
        ("ecs:resource", logical),
        ("Name", name.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| Tag::builder().key(k).value(v).build())
    .collect()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Specifications and expected results.

fn managed_spec() -> NetworkSpec {
    NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder()
                .az_count(2)
                .nat(NatStrategy::Single)
                .build(),
        ))
        .container_port(PORT)
        .build()
}

fn existing_spec() -> NetworkSpec {
    NetworkSpec::builder()
        .vpc(Network::existing(
            VPC,
            ["subnet-p1", "subnet-p2"],
            ["subnet-q1", "subnet-q2"],
        ))
        .container_port(PORT)
        .build()
}

/// The 13 logical ids of a managed 2-zone network with a single NAT gateway.
fn managed_logical_ids() -> BTreeSet<String> {
    let mut ids = set(&[
        "vpc",
        "igw",
        "rt/public",
        "sg/alb",
        "sg/task",
        "eip/us-east-1a",
        "nat/us-east-1a",
    ]);
    for az in [AZ_A, AZ_B] {
        ids.extend([
            format!("subnet/public/{az}"),
            format!("subnet/private/{az}"),
            format!("rt/private/{az}"),
        ]);
    }
    ids
}

fn managed_outputs() -> NetworkOutputs {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    NetworkOutputs {
        vpc_id: VPC.into(),
        vpc_cidr: "10.0.0.0/16".into(),
        availability_zones: s(&[AZ_A, AZ_B]),
        public_subnets: s(&[PUB_A, PUB_B]),
        private_subnets: s(&[PRIV_A, PRIV_B]),
        alb_sg: SG_ALB.into(),
        task_sg: SG_TASK.into(),
        nat_gateways: s(&[NAT]),
        vpc_endpoints: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The live state the describes report.

/// The account the tests start from: the stack has nothing yet; the region's zones come out
/// of order, with a local zone that must not be chosen. (As in AWS, the VPC the stack is about
/// to create, `vpc-1`, comes with its default security group `sg-default` and that group's
/// rules: the fake makes both.)
fn account() -> Ec2State {
    let mut state = Ec2State::default();
    state.availability_zones = vec![
        zone("us-east-1c", "availability-zone"),
        zone("us-east-1-bos-1a", "local-zone"),
        zone(AZ_A, "availability-zone"),
        zone(AZ_B, "availability-zone"),
    ];
    state
}

/// The default security group AWS gives the VPC `vpc`: all traffic in from itself, all out.
fn default_group(vpc: &str, with_aws_rules: bool) -> SecurityGroup {
    let itself = IpPermission::builder()
        .ip_protocol("-1")
        .user_id_group_pairs(UserIdGroupPair::builder().group_id(DEFAULT_SG).build())
        .build();
    let (ingress, egress) = if with_aws_rules {
        (vec![itself], vec![all_traffic("0.0.0.0/0")])
    } else {
        (Vec::new(), Vec::new())
    };
    SecurityGroup::builder()
        .group_id(DEFAULT_SG)
        .group_name("default")
        .vpc_id(vpc)
        .set_ip_permissions(Some(ingress))
        .set_ip_permissions_egress(Some(egress))
        .build()
}

/// The value of the filter `name`, when the request has it with one value.
fn filter_value<'a>(filters: &'a [Filter], name: &str) -> Option<&'a str> {
    filters
        .iter()
        .find(|f| f.name() == Some(name))
        .and_then(|f| f.values().first())
        .map(String::as_str)
}

fn subnet(tier: &str, az: &str, cidr: &str) -> Subnet {
    let logical = format!("subnet/{tier}/{az}");
    Subnet::builder()
        .subnet_id(derived_id("subnet", &logical))
        .vpc_id(VPC)
        .cidr_block(cidr)
        .availability_zone(az)
        .set_tags(Some(tags_for(&logical)))
        .build()
}

fn route_table(logical: &str, default_target: &str, subnets: &[&str]) -> RouteTable {
    let default = Route::builder().destination_cidr_block("0.0.0.0/0");
    let default = if default_target.starts_with("nat-") {
        default.nat_gateway_id(default_target)
    } else {
        default.gateway_id(default_target)
    };
    RouteTable::builder()
        .route_table_id(derived_id("rtb", logical))
        .vpc_id(VPC)
        .routes(
            Route::builder()
                .destination_cidr_block("10.0.0.0/16")
                .gateway_id("local")
                .build(),
        )
        .routes(default.build())
        .set_associations(Some(
            subnets
                .iter()
                .map(|s| {
                    RouteTableAssociation::builder()
                        .route_table_association_id(format!("rtbassoc-{s}"))
                        .subnet_id(*s)
                        .main(false)
                        .build()
                })
                .collect(),
        ))
        .set_tags(Some(tags_for(logical)))
        .build()
}

/// A TCP rule for one port from (or to) a CIDR or, for `sg-…`, a security group.
fn tcp(port: i32, peer: &str) -> IpPermission {
    let b = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port);
    if peer.starts_with("sg-") {
        b.user_id_group_pairs(UserIdGroupPair::builder().group_id(peer).build())
    } else {
        b.ip_ranges(IpRange::builder().cidr_ip(peer).build())
    }
    .build()
}

fn all_traffic(cidr: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build()
}

fn security_group(
    logical: &str,
    ingress: Vec<IpPermission>,
    egress: Vec<IpPermission>,
) -> SecurityGroup {
    SecurityGroup::builder()
        .group_id(derived_id("sg", logical))
        .vpc_id(VPC)
        .set_ip_permissions(Some(ingress))
        .set_ip_permissions_egress(Some(egress))
        .set_tags(Some(tags_for(logical)))
        .build()
}

/// Exactly what `managed_spec()` asks for, as AWS would describe it.
fn converged() -> Ec2State {
    /// The resources, kind by kind.
    struct Fixture {
        vpcs: Vec<Vpc>,
        internet_gateways: Vec<InternetGateway>,
        subnets: Vec<Subnet>,
        route_tables: Vec<RouteTable>,
        addresses: Vec<Address>,
        nat_gateways: Vec<NatGateway>,
        security_groups: Vec<SecurityGroup>,
    }
    let mut state = account();
    let converged = Fixture {
        vpcs: vec![Vpc::builder()
            .vpc_id(VPC)
            .cidr_block("10.0.0.0/16")
            .set_tags(Some(tags_for("vpc")))
            .build()],
        internet_gateways: vec![InternetGateway::builder()
            .internet_gateway_id(IGW)
            .attachments(
                InternetGatewayAttachment::builder()
                    .vpc_id(VPC)
                    .state(AttachmentStatus::Attached)
                    .build(),
            )
            .set_tags(Some(tags_for("igw")))
            .build()],
        subnets: vec![
            subnet("public", AZ_A, "10.0.0.0/20"),
            subnet("public", AZ_B, "10.0.16.0/20"),
            subnet("private", AZ_A, "10.0.128.0/20"),
            subnet("private", AZ_B, "10.0.144.0/20"),
        ],
        route_tables: vec![
            route_table("rt/public", IGW, &[PUB_A, PUB_B]),
            route_table("rt/private/us-east-1a", NAT, &[PRIV_A]),
            route_table("rt/private/us-east-1b", NAT, &[PRIV_B]),
        ],
        addresses: vec![Address::builder()
            .allocation_id(EIP)
            .set_tags(Some(tags_for("eip/us-east-1a")))
            .build()],
        nat_gateways: vec![NatGateway::builder()
            .nat_gateway_id(NAT)
            .subnet_id(PUB_A)
            .state(NatGatewayState::Available)
            .set_tags(Some(tags_for("nat/us-east-1a")))
            .build()],
        security_groups: vec![
            security_group(
                "sg/alb",
                vec![tcp(80, "0.0.0.0/0"), tcp(443, "0.0.0.0/0")],
                vec![tcp(PORT.into(), SG_TASK)],
            ),
            security_group(
                "sg/task",
                vec![tcp(PORT.into(), SG_ALB)],
                vec![all_traffic("0.0.0.0/0")],
            ),
        ],
    };
    state.vpcs = converged.vpcs;
    state.internet_gateways = converged.internet_gateways;
    state.subnets = converged.subnets;
    state.route_tables = converged.route_tables;
    state.addresses = converged.addresses;
    state.nat_gateways = converged.nat_gateways;
    state.security_groups = converged.security_groups;
    state.security_groups.push(default_group(VPC, false));
    state
}

// ---------------------------------------------------------------------------------------------
// Recording calls.

// The journal of calls: `ecs_core::testing::Journal`, shared by every mock test.

/// A NAT gateway poll (`DescribeNatGateways` by id) answering `answers` in turn, the last one
/// repeatedly.
fn nat_poll(j: &Journal, answers: Vec<NatGateway>) -> Rule {
    let calls = AtomicUsize::new(0);
    j.answer(
        "DescribeNatGateways(ids)",
        mock!(Client::describe_nat_gateways).match_requests(|r| !r.nat_gateway_ids().is_empty()),
        move |_| {
            let i = calls.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
            DescribeNatGatewaysOutput::builder()
                .nat_gateways(answers[i].clone())
                .build()
        },
    )
}

fn nat_in(state: NatGatewayState) -> NatGateway {
    NatGateway::builder()
        .nat_gateway_id(NAT)
        .subnet_id(PUB_A)
        .state(state)
        .build()
}

const EXISTING_SUBNETS: [(&str, &str); 4] = [
    ("subnet-p1", AZ_A),
    ("subnet-p2", AZ_B),
    ("subnet-q1", AZ_A),
    ("subnet-q2", AZ_B),
];

/// `DescribeVpcs` by id answering `vpc-1` (10.1.0.0/16).
fn existing_vpc(j: &Journal) -> Rule {
    j.answer(
        "DescribeVpcs(ids)",
        mock!(Client::describe_vpcs).match_requests(|r| !r.vpc_ids().is_empty()),
        |r| {
            let vpcs = r
                .vpc_ids()
                .iter()
                .map(|id| Vpc::builder().vpc_id(id).cidr_block("10.1.0.0/16").build());
            DescribeVpcsOutput::builder()
                .set_vpcs(Some(vpcs.collect()))
                .build()
        },
    )
}

/// `DescribeSubnets` by id answering the known subnets of `vpc-1`.
fn existing_subnets(j: &Journal) -> Rule {
    j.answer(
        "DescribeSubnets(ids)",
        mock!(Client::describe_subnets).match_requests(|r| !r.subnet_ids().is_empty()),
        |r| {
            let found = EXISTING_SUBNETS
                .iter()
                .filter(|(id, _)| r.subnet_ids().iter().any(|x| x.as_str() == *id))
                .map(|(id, az)| {
                    Subnet::builder()
                        .subnet_id(*id)
                        .vpc_id(VPC)
                        .availability_zone(*az)
                        .build()
                });
            DescribeSubnetsOutput::builder()
                .set_subnets(Some(found.collect()))
                .build()
        },
    )
}

/// Rules that fail a describe of the stack's resources made with neither a filter nor ids:
/// the layer reads only what carries the stack's tag (the fake would answer every resource
/// of the account, which in these tests is all the stack's, and hide the mistake).
fn unfiltered_describes_refused() -> Vec<Rule> {
    use aws_sdk_ec2::operation as op;
    fn refused() -> ErrorMetadata {
        meta("UnfilteredDescribe", "a describe without a filter or ids")
    }
    vec![
        mock!(Client::describe_vpcs)
            .match_requests(|r| r.filters().is_empty() && r.vpc_ids().is_empty())
            .then_error(|| op::describe_vpcs::DescribeVpcsError::generic(refused())),
        mock!(Client::describe_subnets)
            .match_requests(|r| r.filters().is_empty() && r.subnet_ids().is_empty())
            .then_error(|| op::describe_subnets::DescribeSubnetsError::generic(refused())),
        mock!(Client::describe_internet_gateways)
            .match_requests(|r| r.filters().is_empty() && r.internet_gateway_ids().is_empty())
            .then_error(|| {
                op::describe_internet_gateways::DescribeInternetGatewaysError::generic(refused())
            }),
        mock!(Client::describe_route_tables)
            .match_requests(|r| r.filters().is_empty() && r.route_table_ids().is_empty())
            .then_error(|| op::describe_route_tables::DescribeRouteTablesError::generic(refused())),
        mock!(Client::describe_addresses)
            .match_requests(|r| r.filters().is_empty() && r.allocation_ids().is_empty())
            .then_error(|| op::describe_addresses::DescribeAddressesError::generic(refused())),
        mock!(Client::describe_nat_gateways)
            .match_requests(|r| r.filter().is_empty() && r.nat_gateway_ids().is_empty())
            .then_error(|| op::describe_nat_gateways::DescribeNatGatewaysError::generic(refused())),
        mock!(Client::describe_security_groups)
            .match_requests(|r| r.filters().is_empty() && r.group_ids().is_empty())
            .then_error(|| {
                op::describe_security_groups::DescribeSecurityGroupsError::generic(refused())
            }),
        mock!(Client::describe_vpc_endpoints)
            .match_requests(|r| r.filters().is_empty() && r.vpc_endpoint_ids().is_empty())
            .then_error(|| {
                op::describe_vpc_endpoints::DescribeVpcEndpointsError::generic(refused())
            }),
    ]
}

/// The fake account the layer's client answers from (its rules), and the journal it records
/// into.
struct Mock {
    journal: Journal,
    fake: FakeEc2,
    rules: Vec<Rule>,
}

impl Mock {
    fn new(world: &Ec2State) -> Self {
        let journal = Journal::default();
        let fake = FakeEc2::new(&journal, world.clone());
        let mut rules = unfiltered_describes_refused();
        rules.extend(fake.rules());
        Self {
            journal,
            fake,
            rules,
        }
    }

    /// A layer whose client answers with `overrides` first, then the fake account.
    fn layer(&self, overrides: &[&Rule]) -> NetworkLayer {
        let rules = overrides.iter().copied().chain(&self.rules);
        NetworkLayer::from_client(ecs_core::mock_client!(
            aws_sdk_ec2,
            RuleMode::MatchAny,
            rules
        ))
    }
}

/// A fake clock whose sleeps also let everything else run first: the sleeper yields to the
/// runtime a few times before its sleep returns. With a [`FakeClock`] alone, a sleep returns
/// at once and the mocks answer at once, so a retried call finishes in the same poll as if
/// it had not failed; with this one, a throttled call stands aside while every step that does
/// not need it goes ahead (the test runtime has one thread, so the order is deterministic).
#[derive(Debug, Clone)]
struct YieldingClock(FakeClock);

impl Clock for YieldingClock {
    fn now(&self) -> std::time::Instant {
        self.0.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let slept = self.0.sleep(duration);
        Box::pin(async move {
            slept.await;
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        })
    }
}

/// The context (stack `web`, user tag `team=payments`), its fake clock and its event log.
struct Harness {
    clock: FakeClock,
    events: EventLog,
    ctx: Context,
}

impl Harness {
    fn new() -> Self {
        Self::with_tags(Tags::new().with("team", "payments"))
    }

    fn with_tags(tags: Tags) -> Self {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = Context::builder()
            .stack(StackName::new("web").unwrap())
            .tags(tags)
            .clock(clock.clone())
            .events(events.clone())
            .build();
        Self { clock, events, ctx }
    }

    /// Like [`new`](Self::new), with a [`YieldingClock`] over `clock`.
    fn yielding() -> Self {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = Context::builder()
            .stack(StackName::new("web").unwrap())
            .tags(Tags::new().with("team", "payments"))
            .clock(YieldingClock(clock.clone()))
            .events(events.clone())
            .build();
        Self { clock, events, ctx }
    }

    /// The attempts reported by `Event::Retrying` for `operation`.
    fn retries(&self, operation: &str) -> Vec<u32> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Retrying {
                    operation: op,
                    attempt,
                    ..
                } if op == operation => Some(attempt),
                _ => None,
            })
            .collect()
    }

    /// `resource: awaiting` of every `Event::Waiting`.
    fn waits(&self) -> Vec<String> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Waiting {
                    resource, awaiting, ..
                } => Some(format!("{resource}: {awaiting}")),
                _ => None,
            })
            .collect()
    }
}

/// Security group rules as `tcp/80 0.0.0.0/0`, `tcp/8080 sg-alb`, `all 0.0.0.0/0`.
fn rendered(perms: &[IpPermission]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in perms {
        let proto = match (p.ip_protocol(), p.from_port(), p.to_port()) {
            (Some("-1") | None, _, _) => "all".to_string(),
            (Some(proto), Some(from), Some(to)) if from == to => format!("{proto}/{from}"),
            (Some(proto), from, to) => format!("{proto}/{from:?}-{to:?}"),
        };
        let peers = p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
            .chain(p.user_id_group_pairs().iter().filter_map(|g| g.group_id()))
            .chain(
                p.prefix_list_ids()
                    .iter()
                    .filter_map(|l| l.prefix_list_id()),
            );
        out.extend(peers.map(|peer| format!("{proto} {peer}")));
    }
    out
}

/// The rules of several authorize/revoke calls, by group id.
fn by_group<T>(
    calls: &[T],
    parts: impl Fn(&T) -> (Option<&str>, &[IpPermission]),
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for call in calls {
        let (group, perms) = parts(call);
        out.entry(group.unwrap_or("?").to_string())
            .or_default()
            .extend(rendered(perms));
    }
    out
}

/// The TagSpecifications of every create call, with the operation and the resource type it
/// should name.
fn create_tag_specs(j: &Journal) -> Vec<(&'static str, ResourceType, Vec<TagSpecification>)> {
    fn of<T: Any + Clone>(
        j: &Journal,
        op: &'static str,
        kind: ResourceType,
        specs: fn(&T) -> &[TagSpecification],
    ) -> Vec<(&'static str, ResourceType, Vec<TagSpecification>)> {
        j.inputs::<T>()
            .iter()
            .map(|i| (op, kind.clone(), specs(i).to_vec()))
            .collect()
    }
    [
        of::<CreateVpcInput>(
            j,
            "CreateVpc",
            ResourceType::Vpc,
            CreateVpcInput::tag_specifications,
        ),
        of::<AllocateAddressInput>(
            j,
            "AllocateAddress",
            ResourceType::ElasticIp,
            AllocateAddressInput::tag_specifications,
        ),
        of::<CreateSubnetInput>(
            j,
            "CreateSubnet",
            ResourceType::Subnet,
            CreateSubnetInput::tag_specifications,
        ),
        of::<CreateInternetGatewayInput>(
            j,
            "CreateInternetGateway",
            ResourceType::InternetGateway,
            CreateInternetGatewayInput::tag_specifications,
        ),
        of::<CreateRouteTableInput>(
            j,
            "CreateRouteTable",
            ResourceType::RouteTable,
            CreateRouteTableInput::tag_specifications,
        ),
        of::<CreateNatGatewayInput>(
            j,
            "CreateNatGateway",
            ResourceType::Natgateway,
            CreateNatGatewayInput::tag_specifications,
        ),
        of::<CreateSecurityGroupInput>(
            j,
            "CreateSecurityGroup",
            ResourceType::SecurityGroup,
            CreateSecurityGroupInput::tag_specifications,
        ),
    ]
    .concat()
}

/// A client token of ecs-core (32 hex digits), not one the SDK filled in (a UUID).
fn is_ecs_token(token: Option<&str>) -> bool {
    token.is_some_and(|t| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_default_group_of_the_stacks_vpc(filters: &[Filter]) -> bool {
    let has = |name: &str, value: &str| {
        filters
            .iter()
            .any(|f| f.name() == Some(name) && f.values() == [value.to_string()])
    };
    let one_vpc = filters
        .iter()
        .any(|f| f.name() == Some("vpc-id") && f.values().len() == 1);
    one_vpc && has("group-name", "default") && filters.len() == 2
}

fn has_owner_filter(filters: &[Filter]) -> bool {
    filters
        .iter()
        .any(|f| f.name() == Some("tag:ecs:stack") && f.values() == ["web".to_string()])
}

// ---------------------------------------------------------------------------------------------
// 1. Fresh create.

#[tokio::test]
async fn fresh_managed_network_is_created_tagged_and_wired() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let net = m.layer(&[]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    let s = plan.changes().summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.delete, s.unchanged),
        (14, 0, 0, 0, 0),
        "{plan}"
    );
    let planned: BTreeSet<String> = plan
        .changes()
        .changes
        .iter()
        .map(|c| c.id.clone())
        .collect();
    // The 13 resources the stack creates, and the VPC's default security group, which AWS
    // makes with the VPC and the stack strips of its rules (EC2.2).
    let mut expected = managed_logical_ids();
    expected.insert("default-sg".to_string());
    assert_eq!(planned, expected);
    assert!(plan
        .changes()
        .changes
        .iter()
        .all(|c| c.action == Action::Create));
    assert!(
        plan.changes()
            .find("nat-gateway", "nat/us-east-1b")
            .is_none(),
        "single NAT: only in the first zone"
    );
    assert!(plan.to_string().contains("14 to add"), "{plan}");
    assert!(
        m.journal.mutating().is_empty(),
        "plan changed something: {:?}",
        m.journal.mutating()
    );

    let outputs = net.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(outputs, managed_outputs());
    let j = &m.journal;

    // Every create carried its ownership tags (and Name, and the user's tags) at creation.
    let mut tagged = BTreeSet::new();
    for (op, kind, specs) in create_tag_specs(j) {
        assert_eq!(specs.len(), 1, "{op}: {specs:?}");
        assert_eq!(specs[0].resource_type(), Some(&kind), "{op}");
        let tags = tag_map(specs[0].tags());
        let logical = tags.get("ecs:resource").cloned().unwrap_or_default();
        assert_eq!(
            tags.get("ecs:stack").map(String::as_str),
            Some("web"),
            "{op}"
        );
        assert_eq!(tags, tag_map(&tags_for(&logical)), "{op} {logical}");
        assert!(tagged.insert(logical.clone()), "{logical} created twice");
    }
    assert_eq!(tagged, managed_logical_ids());
    assert_eq!(
        j.count("CreateTags"),
        0,
        "tags are applied at creation, not afterwards"
    );

    // Subnets carved from 10.0.0.0/16, in the chosen zones (not the local zone).
    let subnets: BTreeSet<(String, String, String)> = j
        .inputs::<CreateSubnetInput>()
        .iter()
        .map(|s| {
            let f = |v: Option<&str>| v.unwrap_or_default().to_string();
            (f(s.vpc_id()), f(s.cidr_block()), f(s.availability_zone()))
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        ("10.0.0.0/20", AZ_A),
        ("10.0.16.0/20", AZ_B),
        ("10.0.128.0/20", AZ_A),
        ("10.0.144.0/20", AZ_B),
    ]
    .iter()
    .map(|(c, az)| (VPC.to_string(), c.to_string(), az.to_string()))
    .collect();
    assert_eq!(subnets, expected);

    // DNS hostnames switched on (a new VPC has them off).
    let modified = j.inputs::<ModifyVpcAttributeInput>();
    assert_eq!(modified.len(), 1);
    assert_eq!(modified[0].vpc_id(), Some(VPC));
    assert_eq!(
        modified[0].enable_dns_hostnames().and_then(|v| v.value()),
        Some(true)
    );

    // Idempotent creates carry ecs-core's client tokens.
    let nats = j.inputs::<CreateNatGatewayInput>();
    assert_eq!(nats.len(), 1);
    assert!(
        is_ecs_token(nats[0].client_token()),
        "{:?}",
        nats[0].client_token()
    );
    assert_eq!(nats[0].subnet_id(), Some(PUB_A));
    assert_eq!(nats[0].allocation_id(), Some(EIP));
    let tables = j.inputs::<CreateRouteTableInput>();
    assert_eq!(tables.len(), 3);
    assert!(
        tables
            .iter()
            .all(|t| is_ecs_token(t.client_token()) && t.vpc_id() == Some(VPC)),
        "{tables:?}"
    );
    let tokens: BTreeSet<_> = tables
        .iter()
        .map(|t| t.client_token().map(str::to_string))
        .collect();
    assert_eq!(tokens.len(), 3, "one token per route table");

    // The internet gateway is attached before the NAT gateway (which needs it) is created.
    assert!(
        j.first("AttachInternetGateway") < j.first("CreateNatGateway"),
        "{:?}",
        j.ops()
    );

    // Routes: public via the internet gateway, both private tables via the single NAT.
    let routes: BTreeSet<String> = j
        .inputs::<CreateRouteInput>()
        .iter()
        .map(|r| {
            format!(
                "{} {} gw={} nat={}",
                r.route_table_id().unwrap_or_default(),
                r.destination_cidr_block().unwrap_or_default(),
                r.gateway_id().unwrap_or("-"),
                r.nat_gateway_id().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        routes,
        set(&[
            "rtb-public 0.0.0.0/0 gw=igw-1 nat=-",
            "rtb-private-us-east-1a 0.0.0.0/0 gw=- nat=nat-us-east-1a",
            "rtb-private-us-east-1b 0.0.0.0/0 gw=- nat=nat-us-east-1a",
        ])
    );
    let associations: BTreeSet<String> = j
        .inputs::<AssociateRouteTableInput>()
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a.route_table_id().unwrap_or_default(),
                a.subnet_id().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        associations,
        set(&[
            "rtb-public subnet-public-us-east-1a",
            "rtb-public subnet-public-us-east-1b",
            "rtb-private-us-east-1a subnet-private-us-east-1a",
            "rtb-private-us-east-1b subnet-private-us-east-1b",
        ])
    );

    // Security groups: the ALB admits 80 and 443 from anywhere and reaches only the tasks;
    // the tasks admit only the container port, only from the ALB's group.
    let groups = j.inputs::<CreateSecurityGroupInput>();
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| g.vpc_id() == Some(VPC)));
    let ingress = by_group(&j.inputs::<AuthorizeSecurityGroupIngressInput>(), |i| {
        (i.group_id(), i.ip_permissions())
    });
    assert_eq!(
        ingress,
        BTreeMap::from([
            (
                SG_ALB.to_string(),
                set(&["tcp/80 0.0.0.0/0", "tcp/443 0.0.0.0/0"])
            ),
            (SG_TASK.to_string(), set(&["tcp/8080 sg-alb"])),
        ])
    );
    let revoked = by_group(&j.inputs::<RevokeSecurityGroupEgressInput>(), |i| {
        (i.group_id(), i.ip_permissions())
    });
    // The load balancer's group loses the egress AWS gives every group; the VPC's default
    // group loses both of its rules (EC2.2).
    assert_eq!(
        revoked,
        BTreeMap::from([
            (SG_ALB.to_string(), set(&["all 0.0.0.0/0"])),
            (DEFAULT_SG.to_string(), set(&["all 0.0.0.0/0"])),
        ])
    );
    let egress = by_group(&j.inputs::<AuthorizeSecurityGroupEgressInput>(), |i| {
        (i.group_id(), i.ip_permissions())
    });
    assert_eq!(
        egress,
        BTreeMap::from([(SG_ALB.to_string(), set(&["tcp/8080 sg-task"]))])
    );
    let ingress = j.inputs::<RevokeSecurityGroupIngressInput>();
    assert_eq!(ingress.len(), 1, "{:?}", j.ops());
    assert_eq!(ingress[0].group_id(), Some(DEFAULT_SG));

    // Nothing was deleted and nothing slept (NAT gateways are not waited for by apply).
    assert!(
        j.mutating().iter().all(|op| !op.starts_with("Delete")),
        "{:?}",
        j.ops()
    );
    assert!(h.clock.sleeps().is_empty());

    // The fake account now holds the network: read again, it plans nothing, and the default
    // group and the DNS attributes are as the apply left them.
    {
        let state = m.fake.state();
        assert_eq!(
            (
                state.vpcs.len(),
                state.subnets.len(),
                state.route_tables.len()
            ),
            (1, 4, 3)
        );
        assert_eq!(state.dns.get(VPC), Some(&(true, true)));
        let default = state
            .security_groups
            .iter()
            .find(|g| g.group_id() == Some(DEFAULT_SG))
            .unwrap();
        assert!(default.ip_permissions().is_empty() && default.ip_permissions_egress().is_empty());
    }
    j.clear();
    let again = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    assert!(again.is_empty(), "{again}");
    assert!(j.mutating().is_empty(), "{:?}", j.ops());
}

/// A NAT gateway waits only for its public subnet, its address and the attached internet
/// gateway: not for the security groups' rules, nor for the VPC's DNS attributes, nor for the
/// other subnets. Both are held back here (their first calls throttled, the retries let
/// everything else go first); under an apply in stages, the NAT gateway came after both.
/// An interface endpoint, in turn, waits for the DNS attributes and its security group.
#[tokio::test]
async fn nat_gateway_waits_neither_for_security_group_rules_nor_for_dns_attributes() {
    let h = Harness::yielding();
    let m = Mock::new(&account());
    let throttled = || meta("RequestLimitExceeded", "Request limit exceeded.");
    // The first AuthorizeSecurityGroupIngress of each group is throttled.
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let rules = mock!(Client::authorize_security_group_ingress)
        .match_requests(move |r| {
            let group = r.group_id().unwrap_or_default().to_string();
            seen.lock().unwrap_or_else(|e| e.into_inner()).insert(group)
        })
        .then_error(move || AuthorizeSecurityGroupIngressError::generic(throttled()));
    let dns = mock!(Client::modify_vpc_attribute)
        .sequence()
        .error(move || ModifyVpcAttributeError::generic(throttled()))
        .times(1)
        .build();
    let net = m.layer(&[&rules, &dns]);
    let spec = NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder()
                .az_count(2)
                .nat(NatStrategy::Single)
                .endpoints(VpcEndpoints::builder().logs(true).build())
                .build(),
        ))
        .container_port(PORT)
        .build();

    let plan = net.plan(&h.ctx, &spec).await.unwrap();
    let outputs = net.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        outputs,
        NetworkOutputs {
            vpc_endpoints: vec!["vpce-logs".to_string()],
            ..managed_outputs()
        }
    );
    assert_eq!(h.retries("AuthorizeSecurityGroupIngress"), [1, 1, 1]);
    assert_eq!(h.retries("ModifyVpcAttribute"), [1]);
    assert_eq!(dns.num_calls(), 1);

    let j = &m.journal;
    let ops = j.ops();
    let nat = j.first("CreateNatGateway");
    // What the NAT gateway needs came first...
    let public_a = j.first_where("CreateSubnet", |s: &CreateSubnetInput| {
        s.cidr_block() == Some("10.0.0.0/20")
    });
    for before in [
        public_a,
        j.first("AllocateAddress"),
        j.first("AttachInternetGateway"),
    ] {
        assert!(before < nat, "{ops:?}");
    }
    // ... and what it does not need did not hold it back (only the answered calls are in the
    // journal: the rules and the DNS attribute were written after it).
    assert!(nat < j.first("AuthorizeSecurityGroupIngress"), "{ops:?}");
    assert!(nat < j.first("AuthorizeSecurityGroupEgress"), "{ops:?}");
    assert!(nat < j.first("ModifyVpcAttribute"), "{ops:?}");
    assert!(
        j.last("CreateSubnet") < j.first("ModifyVpcAttribute"),
        "{ops:?}"
    );
    assert!(
        j.last("CreateRoute") < j.first("ModifyVpcAttribute"),
        "{ops:?}"
    );

    // The interface endpoint waited for the DNS attributes and for its security group.
    let endpoint = j.first("CreateVpcEndpoint");
    assert!(j.last("ModifyVpcAttribute") < endpoint, "{ops:?}");
    let group = j.first_where("CreateSecurityGroup", |g: &CreateSecurityGroupInput| {
        g.group_name() == Some("web-endpoints")
    });
    assert!(group < endpoint, "{ops:?}");
    let created = j.inputs::<CreateVpcEndpointInput>();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].security_group_ids(),
        ["sg-endpoints".to_string()]
    );
    assert_eq!(
        created[0].subnet_ids(),
        [PRIV_A.to_string(), PRIV_B.to_string()]
    );
    assert_eq!(created[0].private_dns_enabled(), Some(true));
}

// ---------------------------------------------------------------------------------------------
// 2. No-op.

#[tokio::test]
async fn converged_network_plans_nothing_and_apply_makes_no_call() {
    let h = Harness::new();
    let m = Mock::new(&converged());
    let net = m.layer(&[]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(plan.changes().summary().unchanged, 14);
    assert!(plan.to_string().starts_with("No changes."), "{plan}");
    assert_eq!(
        m.journal.count("DescribeVpcAttribute"),
        2,
        "both DNS attributes are read"
    );

    let calls_after_plan = m.journal.len();
    let outputs = net.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(outputs, managed_outputs());
    assert_eq!(
        m.journal.len(),
        calls_after_plan,
        "apply called AWS: {:?}",
        m.journal.ops()
    );
    assert!(m.journal.mutating().is_empty());
    assert!(h.clock.sleeps().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. Throttling.

#[tokio::test]
async fn throttled_describe_is_retried_with_backoff() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let throttled = mock!(Client::describe_vpcs)
        .match_requests(|r| !r.filters().is_empty())
        .sequence()
        .error(|| {
            DescribeVpcsError::generic(meta("RequestLimitExceeded", "Request limit exceeded."))
        })
        .times(2)
        .output(|| DescribeVpcsOutput::builder().build())
        .build();
    let net = m.layer(&[&throttled]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    assert_eq!(plan.changes().summary().create, 14);
    assert_eq!(throttled.num_calls(), 3);
    assert_eq!(
        m.journal.count("DescribeVpcs"),
        0,
        "the retries were answered by the throttling rule"
    );
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert!(
        sleeps
            .iter()
            .all(|d| *d > Duration::ZERO && *d <= Duration::from_secs(1)),
        "{sleeps:?}"
    );
    assert_eq!(h.retries("DescribeVpcs"), [1, 2]);
    let reasons: Vec<String> = h
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        reasons.iter().all(|r| r.contains("RequestLimitExceeded")),
        "{reasons:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. DependencyViolation.

const STUCK: &str = PRIV_B;

fn dependency_violation() -> DeleteSubnetError {
    DeleteSubnetError::generic(meta(
        "DependencyViolation",
        "The subnet has dependencies and cannot be deleted.",
    ))
}

#[tokio::test]
async fn dependency_violation_is_retried_for_the_budget_then_surfaced() {
    let h = Harness::new();
    let m = Mock::new(&converged());
    let stuck = mock!(Client::delete_subnet)
        .match_requests(|r| r.subnet_id() == Some(STUCK))
        .then_error(dependency_violation);
    let net = m.layer(&[&stuck]);

    let err = net.destroy(&h.ctx).await.unwrap_err();
    assert_eq!(err.code(), Some("DependencyViolation"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(STUCK) && text.contains("DeleteSubnet"),
        "{text}"
    );
    assert_eq!(err.as_aws().map(|e| e.operation()), Some("DeleteSubnet"));

    // Retried within the 600 s budget, and for (nearly) all of it: the last delay is ≤ 20 s.
    let total = h.clock.total_slept();
    assert!(
        total > Duration::ZERO && total <= Duration::from_secs(600),
        "{total:?}"
    );
    assert!(
        total >= Duration::from_secs(580),
        "gave up early, after {total:?}"
    );
    let retries = h.retries("DeleteSubnet");
    assert!(retries.len() > 5, "{retries:?}");
    assert_eq!(stuck.num_calls(), retries.len() + 1);

    // What depends on the subnet being gone was not attempted.
    assert_eq!(
        m.journal.count("DeleteSecurityGroup"),
        0,
        "{:?}",
        m.journal.ops()
    );
    assert_eq!(m.journal.count("DeleteVpc"), 0, "{:?}", m.journal.ops());
}

#[tokio::test]
async fn dependency_violation_that_clears_lets_destroy_finish() {
    let h = Harness::new();
    let m = Mock::new(&converged());
    let twice = mock!(Client::delete_subnet)
        .match_requests(|r| r.subnet_id() == Some(STUCK))
        .sequence()
        .error(dependency_violation)
        .times(2)
        .build();
    let net = m.layer(&[&twice]);

    let deleted = net.destroy(&h.ctx).await.unwrap();
    let s = deleted.summary();
    assert_eq!((s.delete, s.create, s.update), (13, 0, 0), "{deleted}");
    assert_eq!(twice.num_calls(), 2);
    assert_eq!(h.retries("DeleteSubnet"), [1, 2]);
    assert_eq!(h.clock.sleeps().len(), 2);
    let subnets: BTreeSet<String> = m
        .journal
        .inputs::<DeleteSubnetInput>()
        .iter()
        .filter_map(|d| d.subnet_id().map(str::to_string))
        .collect();
    assert_eq!(subnets, set(&[PUB_A, PUB_B, PRIV_A, PRIV_B]));
    assert_eq!(m.journal.ops().last(), Some(&"DeleteVpc"));
}

// ---------------------------------------------------------------------------------------------
// 5. Subnet conflict.

#[tokio::test]
async fn subnet_conflict_fails_apply_naming_the_subnet_and_its_cidr() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let conflict = mock!(Client::create_subnet)
        .match_requests(|r| r.cidr_block() == Some("10.0.16.0/20"))
        .then_error(|| {
            CreateSubnetError::generic(meta(
                "InvalidSubnet.Conflict",
                "The CIDR conflicts with another subnet",
            ))
        });
    let net = m.layer(&[&conflict]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    let err = net.apply(&h.ctx, &plan).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidSubnet.Conflict"), "{err}");
    let text = err.to_string();
    assert!(text.contains("subnet/public/us-east-1b"), "{text}");
    assert!(text.contains("10.0.16.0/20"), "{text}");
    assert_eq!(conflict.num_calls(), 1, "a conflict is not retried");
    assert!(h.clock.sleeps().is_empty());
    assert_eq!(
        m.journal.count("CreateNatGateway"),
        0,
        "later steps did not run: {:?}",
        m.journal.ops()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Destroy order.

#[tokio::test]
async fn destroy_waits_for_nat_deletion_before_releasing_and_detaching() {
    let h = Harness::new();
    let m = Mock::new(&converged());
    let poll = nat_poll(
        &m.journal,
        vec![
            nat_in(NatGatewayState::Deleting),
            nat_in(NatGatewayState::Deleted),
        ],
    );
    let net = m.layer(&[&poll]);

    let deleted = net.destroy(&h.ctx).await.unwrap();
    assert_eq!(deleted.summary().delete, 13, "{deleted}");
    // Everything is gone from the fake account, which refuses a delete EC2 would refuse
    // (a VPC with subnets, a group another names, …): the order held.
    {
        let state = m.fake.state();
        assert!(state.vpcs.is_empty() && state.subnets.is_empty() && state.route_tables.is_empty());
        assert!(state.security_groups.is_empty() && state.addresses.is_empty());
        assert!(state.internet_gateways.is_empty());
        assert!(state
            .nat_gateways
            .iter()
            .all(|n| n.state() == Some(&NatGatewayState::Deleted)));
    }
    assert!(deleted
        .find("nat-gateway", NAT)
        .is_some_and(|c| c.action == Action::Delete));

    let j = &m.journal;
    let ops = j.ops();
    let polled = "DescribeNatGateways(ids)";
    assert_eq!(poll.num_calls(), 2);
    assert_eq!(j.count(polled), 2);
    assert!(j.first("DeleteNatGateway") < j.first(polled), "{ops:?}");
    for after in [
        "ReleaseAddress",
        "DetachInternetGateway",
        "DeleteSubnet",
        "DeleteRouteTable",
    ] {
        assert!(
            j.last(polled) < j.first(after),
            "{after} before the NAT gateway was gone: {ops:?}"
        );
    }
    assert!(
        j.first("DetachInternetGateway") < j.first("DeleteInternetGateway"),
        "{ops:?}"
    );
    assert!(
        j.first("DisassociateRouteTable") < j.first("DeleteRouteTable"),
        "{ops:?}"
    );
    assert!(
        j.last("DeleteSubnet") < j.first("DeleteSecurityGroup"),
        "{ops:?}"
    );
    assert_eq!(ops.last(), Some(&"DeleteVpc"), "{ops:?}");

    assert_eq!(
        j.inputs::<DeleteNatGatewayInput>()[0].nat_gateway_id(),
        Some(NAT)
    );
    assert_eq!(
        j.inputs::<ReleaseAddressInput>()[0].allocation_id(),
        Some(EIP)
    );
    let detached = j.inputs::<DetachInternetGatewayInput>();
    assert_eq!(
        (detached[0].internet_gateway_id(), detached[0].vpc_id()),
        (Some(IGW), Some(VPC))
    );

    // One wait between `deleting` and `deleted`, reported as progress.
    assert_eq!(h.clock.sleeps().len(), 1, "{:?}", h.clock.sleeps());
    let waits = h.waits();
    assert!(
        waits
            .iter()
            .any(|w| w.contains(NAT) && w.contains("deleting")),
        "{waits:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Invalid specification.

#[tokio::test]
async fn invalid_spec_reports_every_problem_before_any_call() {
    let h = Harness::with_tags(Tags::new().with("aws:owner", "me"));
    let m = Mock::new(&account());
    let net = m.layer(&[]);

    let spec = NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder()
                .cidr("10.0.0.0/12".parse().unwrap())
                .az_count(7)
                .build(),
        ))
        .container_port(0)
        .listener_ports(vec![])
        .build();
    let err = net.plan(&h.ctx, &spec).await.unwrap_err();
    let problems = err
        .problems()
        .unwrap_or_else(|| panic!("not a validation error: {err}"));
    for field in [
        "tags[\"aws:owner\"]",
        "container_port",
        "listener_ports",
        "vpc.managed.cidr",
        "vpc.managed.az_count",
    ] {
        assert!(problems.mentions(field), "{field} missing from {problems}");
    }
    assert_eq!(err.code(), None);

    let existing = NetworkSpec::builder()
        .vpc(Network::existing(
            "vpc1",
            ["subnet-a"],
            ["sn-b", "subnet-c"],
        ))
        .container_port(PORT)
        .build();
    let err = net.plan(&Harness::new().ctx, &existing).await.unwrap_err();
    let problems = err
        .problems()
        .unwrap_or_else(|| panic!("not a validation error: {err}"));
    for field in [
        "vpc.existing.vpc_id",
        "vpc.existing.public_subnets",
        "vpc.existing.private_subnets[0]",
    ] {
        assert!(problems.mentions(field), "{field} missing from {problems}");
    }

    assert!(
        m.rules.iter().all(|r| r.num_calls() == 0),
        "an AWS call was made"
    );
    assert_eq!(m.journal.len(), 0, "{:?}", m.journal.ops());
}

// ---------------------------------------------------------------------------------------------
// 8. Existing VPC.

#[tokio::test]
async fn existing_vpc_gets_only_security_groups() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let (vpc, subnets) = (existing_vpc(&m.journal), existing_subnets(&m.journal));
    let net = m.layer(&[&vpc, &subnets]);

    let plan = net.plan(&h.ctx, &existing_spec()).await.unwrap();
    let ids: Vec<(&str, &str)> = plan
        .changes()
        .changes
        .iter()
        .map(|c| (c.resource.as_str(), c.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [("security-group", "sg/alb"), ("security-group", "sg/task")]
    );
    assert_eq!(plan.changes().summary().create, 2);
    assert_eq!(m.journal.count("DescribeAvailabilityZones"), 0);
    assert_eq!((vpc.num_calls(), subnets.num_calls()), (1, 1));

    let outputs = net.apply(&h.ctx, &plan).await.unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        outputs,
        NetworkOutputs {
            vpc_id: VPC.into(),
            vpc_cidr: "10.1.0.0/16".into(),
            availability_zones: s(&[AZ_A, AZ_B]),
            public_subnets: s(&["subnet-p1", "subnet-p2"]),
            private_subnets: s(&["subnet-q1", "subnet-q2"]),
            alb_sg: SG_ALB.into(),
            task_sg: SG_TASK.into(),
            nat_gateways: Vec::new(),
            vpc_endpoints: Vec::new(),
        }
    );
    let mutating: BTreeSet<&str> = m.journal.mutating().into_iter().collect();
    assert_eq!(
        mutating,
        BTreeSet::from([
            "CreateSecurityGroup",
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
            "RevokeSecurityGroupEgress",
        ])
    );
    let groups = m.journal.inputs::<CreateSecurityGroupInput>();
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| g.vpc_id() == Some(VPC)), "{groups:?}");
    let names: BTreeSet<String> = groups
        .iter()
        .filter_map(|g| g.group_name().map(str::to_string))
        .collect();
    assert_eq!(names, set(&["web-alb", "web-task"]));
    // An imported VPC is never changed: its default group is not even read.
    assert!(m
        .journal
        .inputs::<DescribeSecurityGroupsInput>()
        .iter()
        .all(|i| filter_value(i.filters(), "group-name").is_none()));
}

// ---------------------------------------------------------------------------------------------
// 8b. The default security group of the stack's VPC (EC2.2).

/// The permission AWS gives a default group: all traffic from itself.
fn from_itself() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .user_id_group_pairs(UserIdGroupPair::builder().group_id(DEFAULT_SG).build())
        .build()
}

#[tokio::test]
async fn the_default_security_group_of_a_new_vpc_is_left_with_no_rules() {
    let h = Harness::new();
    // AWS makes the group, with its rules, together with the VPC.
    let m = Mock::new(&account());
    let net = m.layer(&[]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    let change = plan
        .changes()
        .find("default-security-group", "default-sg")
        .expect("the default group is planned");
    assert_eq!(change.action, Action::Create);
    assert!(change.detail.contains("EC2.2"), "{change}");

    net.apply(&h.ctx, &plan).await.unwrap();
    let j = &m.journal;
    let ingress = j.inputs::<RevokeSecurityGroupIngressInput>();
    assert_eq!(ingress.len(), 1, "{:?}", j.ops());
    assert_eq!(ingress[0].group_id(), Some(DEFAULT_SG));
    assert_eq!(ingress[0].ip_permissions(), [from_itself()]);
    let egress: Vec<_> = j
        .inputs::<RevokeSecurityGroupEgressInput>()
        .into_iter()
        .filter(|r| r.group_id() == Some(DEFAULT_SG))
        .collect();
    assert_eq!(egress.len(), 1, "{:?}", j.ops());
    assert_eq!(egress[0].ip_permissions(), [all_traffic("0.0.0.0/0")]);
    // The group was looked up in the new VPC, once it existed.
    let read = j.first_where(
        "DescribeSecurityGroups",
        |i: &DescribeSecurityGroupsInput| {
            filter_value(i.filters(), "group-name") == Some("default")
        },
    );
    assert!(j.first("CreateVpc") < read, "{:?}", j.ops());
    assert!(h.events.events().contains(&Event::Started {
        resource: "default-security-group default-sg".into(),
        action: "create".into(),
    }));
}

#[tokio::test]
async fn rules_added_to_the_default_security_group_are_revoked_and_then_left_alone() {
    let h = Harness::new();
    let mut world = converged();
    world
        .security_groups
        .retain(|g| g.group_name() != Some("default"));
    world.security_groups.push(default_group(VPC, true));
    let m = Mock::new(&world);
    let net = m.layer(&[]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    let pending: Vec<String> = plan.changes().pending().map(|c| c.to_string()).collect();
    assert_eq!(
        pending,
        ["  ~ default-security-group default-sg (the VPC's default group, with no rules (EC2.2))\n      \
         ~ ingress: [all sg-default] → []\n      ~ egress: [all 0.0.0.0/0] → []"]
    );
    net.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        m.journal.mutating(),
        ["RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"]
    );

    // Once it has no rules, nothing is planned and nothing is called.
    let m = Mock::new(&converged());
    let net = m.layer(&[]);
    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(
        plan.changes()
            .find("default-security-group", "default-sg")
            .map(|c| &c.action),
        Some(&Action::NoChange)
    );
    net.apply(&h.ctx, &plan).await.unwrap();
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());
}

#[tokio::test]
async fn existing_vpc_with_an_unknown_subnet_is_not_found() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let missing = mock!(Client::describe_subnets)
        .match_requests(|r| !r.subnet_ids().is_empty())
        .then_error(|| {
            DescribeSubnetsError::generic(meta(
                "InvalidSubnetID.NotFound",
                "The subnet ID 'subnet-q2' does not exist",
            ))
        });
    let (vpc, subnets) = (existing_vpc(&m.journal), existing_subnets(&m.journal));
    let net = m.layer(&[&missing, &vpc, &subnets]);

    let err = net.plan(&h.ctx, &existing_spec()).await.unwrap_err();
    match &err {
        Error::NotFound(e) => {
            assert_eq!(e.resource, "subnet");
            assert!(e.id.contains("subnet-q2"), "{}", e.id);
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(missing.num_calls(), 1);
    assert!(m.journal.mutating().is_empty());
}

#[tokio::test]
async fn existing_subnets_in_one_zone_are_refused_before_any_change() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let (vpc, subnets) = (existing_vpc(&m.journal), existing_subnets(&m.journal));
    let net = m.layer(&[&vpc, &subnets]);
    // Both public subnets in zone a, the private ones in a and b.
    let spec = NetworkSpec::builder()
        .vpc(Network::existing(
            VPC,
            ["subnet-p1", "subnet-q1"],
            ["subnet-q1", "subnet-q2"],
        ))
        .container_port(PORT)
        .build();
    let err = net.plan(&h.ctx, &spec).await.unwrap_err();
    let problems = err.problems().expect("a validation error");
    assert!(problems.mentions("vpc.existing.public_subnets"), "{err}");
    assert!(!problems.mentions("vpc.existing.private_subnets"), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "every subnet is in {AZ_A}: a load-balanced service needs subnets in two zones"
        )),
        "{err}"
    );
    assert!(m.journal.mutating().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 9. wait_ready.

#[tokio::test]
async fn wait_ready_polls_until_the_nat_gateway_is_available() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let poll = nat_poll(
        &m.journal,
        vec![
            nat_in(NatGatewayState::Pending),
            nat_in(NatGatewayState::Available),
        ],
    );
    let net = m.layer(&[&poll]);

    net.wait_ready(&h.ctx, &managed_outputs(), Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(poll.num_calls(), 2);
    assert_eq!(m.journal.ops(), ["DescribeNatGateways(ids)"; 2]);
    let asked = m.journal.inputs::<DescribeNatGatewaysInput>();
    assert_eq!(asked[0].nat_gateway_ids().to_vec(), vec![NAT.to_string()]);
    assert_eq!(h.clock.sleeps().len(), 1);
    let waits = h.waits();
    assert!(
        waits
            .iter()
            .any(|w| w.contains(NAT) && w.contains("pending")),
        "{waits:?}"
    );

    // Without NAT gateways there is nothing to wait for.
    let no_nat = NetworkOutputs {
        nat_gateways: Vec::new(),
        ..managed_outputs()
    };
    net.wait_ready(&h.ctx, &no_nat, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(poll.num_calls(), 2);
}

#[tokio::test]
async fn wait_ready_fails_at_once_on_a_failed_nat_gateway() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let failed = NatGateway::builder()
        .nat_gateway_id(NAT)
        .state(NatGatewayState::Failed)
        .failure_code("Gateway.NotAttached")
        .failure_message("Network vpc-1 has no Internet gateway attached")
        .build();
    let poll = nat_poll(&m.journal, vec![failed]);
    let net = m.layer(&[&poll]);

    let err = net
        .wait_ready(&h.ctx, &managed_outputs(), Duration::from_secs(300))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Network vpc-1 has no Internet gateway attached"),
        "{err}"
    );
    assert!(err.to_string().contains(NAT), "{err}");
    assert_eq!(err.code(), Some("Gateway.NotAttached"));
    assert_eq!(poll.num_calls(), 1);
    assert!(h.clock.sleeps().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 10. Security group drift.

#[tokio::test]
async fn extra_ingress_rule_is_planned_as_update_and_revoked() {
    let h = Harness::new();
    let mut world = converged();
    let alb = world
        .security_groups
        .iter_mut()
        .find(|g| g.group_id() == Some(SG_ALB))
        .unwrap();
    alb.ip_permissions
        .get_or_insert_with(Vec::new)
        .push(tcp(22, "0.0.0.0/0"));
    let m = Mock::new(&world);
    let net = m.layer(&[]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    let s = plan.changes().summary();
    assert_eq!(
        (s.update, s.create, s.delete, s.unchanged),
        (1, 0, 0, 13),
        "{plan}"
    );
    let change = plan.changes().find("security-group", "sg/alb").unwrap();
    let Action::Update(diffs) = &change.action else {
        panic!("expected an update: {change}")
    };
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].field, "ingress");
    assert!(diffs[0].old.contains("tcp/22 0.0.0.0/0"), "{:?}", diffs[0]);
    assert!(!diffs[0].new.contains("tcp/22"), "{:?}", diffs[0]);

    let outputs = net.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(outputs, managed_outputs());
    assert_eq!(m.journal.mutating(), ["RevokeSecurityGroupIngress"]);
    let revoked = by_group(
        &m.journal.inputs::<RevokeSecurityGroupIngressInput>(),
        |i| (i.group_id(), i.ip_permissions()),
    );
    assert_eq!(
        revoked,
        BTreeMap::from([(SG_ALB.to_string(), set(&["tcp/22 0.0.0.0/0"]))])
    );
}

// ---------------------------------------------------------------------------------------------
// The other paths: surplus deletion, refused replacement, deploy, inventory and plan_destroy.

#[tokio::test]
async fn resource_no_longer_wanted_is_deleted_by_apply() {
    let h = Harness::new();
    let mut world = converged();
    world
        .subnets
        .push(subnet("public", "us-east-1c", "10.0.32.0/20"));
    let m = Mock::new(&world);
    let net = m.layer(&[]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    let s = plan.changes().summary();
    assert_eq!(
        (s.delete, s.create, s.update, s.unchanged),
        (1, 0, 0, 14),
        "{plan}"
    );
    let change = plan
        .changes()
        .find("subnet", "subnet/public/us-east-1c")
        .unwrap();
    assert_eq!(change.action, Action::Delete);
    assert_eq!(change.detail, "subnet-public-us-east-1c");

    assert_eq!(net.apply(&h.ctx, &plan).await.unwrap(), managed_outputs());
    assert_eq!(m.journal.mutating(), ["DeleteSubnet"]);
    assert_eq!(
        m.journal.inputs::<DeleteSubnetInput>()[0].subnet_id(),
        Some("subnet-public-us-east-1c")
    );
    // Lingering interfaces are handled by retrying DeleteSubnet on DependencyViolation,
    // not by a pre-wait (moto never removes a deleted NAT gateway's interface).
    assert!(m
        .journal
        .inputs::<DescribeNetworkInterfacesInput>()
        .is_empty());
}

#[tokio::test]
async fn moved_subnet_is_refused_before_any_change() {
    let h = Harness::new();
    let mut world = converged();
    let moved = world
        .subnets
        .iter_mut()
        .find(|s| s.subnet_id() == Some(PUB_B))
        .unwrap();
    moved.cidr_block = Some("10.0.48.0/20".into());
    let m = Mock::new(&world);
    let net = m.layer(&[]);

    let plan = net.plan(&h.ctx, &managed_spec()).await.unwrap();
    assert_eq!(plan.changes().summary().replace, 1, "{plan}");
    let calls_after_plan = m.journal.len();
    let err = net.apply(&h.ctx, &plan).await.unwrap_err();
    match &err {
        Error::ReplacementRequired(r) => {
            assert_eq!(
                format!("{} {}", r.kind, r.id),
                "subnet subnet/public/us-east-1b"
            );
            assert!(
                r.reason.contains("10.0.48.0/20") && r.reason.contains("10.0.16.0/20"),
                "{}",
                r.reason
            );
        }
        other => panic!("expected ReplacementRequired, got {other:?}"),
    }
    assert_eq!(
        m.journal.len(),
        calls_after_plan,
        "apply called AWS: {:?}",
        m.journal.ops()
    );
}

#[tokio::test]
async fn deploy_plans_applies_and_waits_for_the_nat_gateway() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let poll = nat_poll(
        &m.journal,
        vec![
            nat_in(NatGatewayState::Pending),
            nat_in(NatGatewayState::Available),
        ],
    );
    let net = m.layer(&[&poll]);

    let (plan, outputs) = net.deploy(&h.ctx, &managed_spec()).await.unwrap();
    assert_eq!(plan.summary().create, 14, "{plan}");
    assert_eq!(outputs, managed_outputs());
    assert_eq!(poll.num_calls(), 2);
    assert!(m.journal.last("CreateNatGateway") < m.journal.first("DescribeNatGateways(ids)"));
    assert_eq!(h.clock.sleeps().len(), 1);
}

#[tokio::test]
async fn inventory_and_plan_destroy_list_what_the_stack_owns_without_changing_it() {
    let h = Harness::new();
    let m = Mock::new(&converged());
    let net = m.layer(&[]);

    let inventory = net.inventory(&h.ctx).await.unwrap();
    let mut expected: Vec<OwnedResource> = [
        ("vpc", VPC),
        ("internet-gateway", IGW),
        ("subnet", PUB_A),
        ("subnet", PUB_B),
        ("subnet", PRIV_A),
        ("subnet", PRIV_B),
        ("route-table", "rtb-public"),
        ("route-table", "rtb-private-us-east-1a"),
        ("route-table", "rtb-private-us-east-1b"),
        ("elastic-ip", EIP),
        ("nat-gateway", NAT),
        ("security-group", SG_ALB),
        ("security-group", SG_TASK),
    ]
    .into_iter()
    .map(|(kind, id)| OwnedResource {
        kind: kind.into(),
        id: id.into(),
    })
    .collect();
    expected.sort();
    assert_eq!(inventory, expected);

    let doomed = net.plan_destroy(&h.ctx).await.unwrap();
    let s = doomed.summary();
    assert_eq!(
        (s.delete, s.create, s.update, s.unchanged),
        (13, 0, 0, 0),
        "{doomed}"
    );
    assert!(doomed
        .find("subnet", PUB_A)
        .is_some_and(|c| c.action == Action::Delete));
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());

    // The stack's resources are found by its owner tag only.
    let j = &m.journal;
    assert!(j
        .inputs::<DescribeVpcsInput>()
        .iter()
        .all(|i| has_owner_filter(i.filters())));
    assert!(j
        .inputs::<DescribeSubnetsInput>()
        .iter()
        .all(|i| has_owner_filter(i.filters())));
    // Security groups too, but for the default group of the stack's own VPC (read by the
    // VPC's id and the name AWS gives it).
    assert!(j
        .inputs::<DescribeSecurityGroupsInput>()
        .iter()
        .all(|i| has_owner_filter(i.filters()) || is_default_group_of_the_stacks_vpc(i.filters())));
    assert!(j
        .inputs::<DescribeNatGatewaysInput>()
        .iter()
        .all(|i| has_owner_filter(i.filter())));
    assert_eq!(j.count("DescribeVpcs"), 2, "one observe per call");
}

#[tokio::test]
async fn an_environments_network_admits_every_port_from_its_load_balancer_and_tasks_from_each_other(
) {
    let h = Harness::new();
    let m = Mock::new(&account());
    let poll = nat_poll(&m.journal, vec![nat_in(NatGatewayState::Available)]);
    let net = m.layer(&[&poll]);
    let spec = NetworkSpec {
        shared: true,
        ..managed_spec()
    };
    net.deploy(&h.ctx, &spec).await.unwrap();
    let j = &m.journal;
    let ingress = by_group(&j.inputs::<AuthorizeSecurityGroupIngressInput>(), |i| {
        (i.group_id(), i.ip_permissions())
    });
    // Any service, on any port, joins without a rule change: the load balancer reaches every
    // TCP port of the tasks' group, which admits itself (Service Connect, the internal load
    // balancer).
    assert_eq!(
        ingress[SG_TASK],
        set(&["tcp/Some(0)-Some(65535) sg-alb", "all sg-task"])
    );
    let egress = by_group(&j.inputs::<AuthorizeSecurityGroupEgressInput>(), |i| {
        (i.group_id(), i.ip_permissions())
    });
    assert_eq!(egress[SG_ALB], set(&["tcp/Some(0)-Some(65535) sg-task"]));
    // Read again, it plans nothing: the rules compare exactly.
    let plan = net.plan(&h.ctx, &spec).await.unwrap();
    assert!(plan.is_empty(), "{}", plan.changes());
    // Its services find it by its tags alone.
    assert_eq!(
        net.environment_outputs(&h.ctx).await.unwrap(),
        Some(managed_outputs())
    );
}

#[tokio::test]
async fn an_environment_on_an_existing_vpc_publishes_its_subnets_on_its_tasks_group() {
    let h = Harness::new();
    let m = Mock::new(&account());
    let (vpc, subnets) = (existing_vpc(&m.journal), existing_subnets(&m.journal));
    let net = m.layer(&[&vpc, &subnets]);
    assert_eq!(net.environment_outputs(&h.ctx).await.unwrap(), None);
    let spec = NetworkSpec {
        shared: true,
        ..existing_spec()
    };
    let plan = net.plan(&h.ctx, &spec).await.unwrap();
    let made = net.apply(&h.ctx, &plan).await.unwrap();
    let found = net.environment_outputs(&h.ctx).await.unwrap().unwrap();
    assert_eq!(found.private_subnets, made.private_subnets);
    assert_eq!(found.public_subnets, made.public_subnets);
    assert_eq!(
        (found.vpc_id.as_str(), found.task_sg.as_str()),
        (VPC, made.task_sg.as_str())
    );
}
