//! The networking layer of `ecs-facade`: a VPC over two or more availability zones with public
//! and private subnets, an internet gateway, NAT gateways (none, one, or one per zone), route
//! tables, the load balancer's and the tasks' security groups and optional VPC endpoints —
//! or the security groups alone in a VPC you already have.
//!
//! It follows the project's reconcile model: [`NetworkLayer::plan`] reads what the stack owns
//! (found by its `ecs:stack` tag, applied at creation) and diffs it against the
//! [`NetworkSpec`]; [`NetworkLayer::apply`] carries out exactly that plan and returns typed
//! [`NetworkOutputs`]; re-running it on an unchanged spec makes no mutating call;
//! [`NetworkLayer::destroy`] deletes what carries the stack's tag, in the order AWS requires,
//! and nothing else. An interrupted run is safe: the next one adopts what exists.
//!
//! # Example
//!
//! ```no_run
//! use ecs_core::{Context, Event, StackName};
//! use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkSpec};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let ctx = Context::builder()
//!     .stack(StackName::new("web")?)
//!     .events(|e: Event| eprintln!("{e}"))
//!     .build();
//! let spec = NetworkSpec::builder()
//!     .vpc(Network::Managed(ManagedVpc::builder().az_count(3).nat(NatStrategy::PerAz).build()))
//!     .container_port(8080)
//!     .build();
//!
//! let network = NetworkLayer::new(&config);
//! let plan = network.plan(&ctx, &spec).await?;
//! println!("{plan}");
//! let outputs = network.apply(&ctx, &plan).await?;
//! println!("tasks go in {:?} with security group {}", outputs.private_subnets, outputs.task_sg);
//!
//! network.destroy(&ctx).await?;
//! # Ok(()) }
//! ```

mod apply;
mod default_sg;
mod ec2;
mod eip;
mod endpoint;
mod error;
mod ids;
mod igw;
mod live;
mod nat;
mod plan;
mod route_table;
mod rules;
mod security_group;
mod spec;
mod subnet;
mod vpc;

use std::time::Duration;

use aws_sdk_ec2::Client;
use ecs_core::{Action, Change, Context, Plan};

pub use error::{Error, Result};
pub use plan::NetworkPlan;
pub use spec::{
    ExistingVpc, ManagedVpc, NatStrategy, Network, NetworkSpec, SubnetLayout, VpcEndpoints,
};

/// What the network layer gives the layers above it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkOutputs {
    /// The VPC id.
    pub vpc_id: String,
    /// The VPC's IPv4 block.
    pub vpc_cidr: String,
    /// The zones spanned, in order.
    pub availability_zones: Vec<String>,
    /// Public subnet ids (load balancer), one per zone in zone order.
    pub public_subnets: Vec<String>,
    /// Private subnet ids (tasks), one per zone in zone order.
    pub private_subnets: Vec<String>,
    /// The load balancer's security group.
    pub alb_sg: String,
    /// The tasks' security group.
    pub task_sg: String,
    /// NAT gateway ids (possibly still provisioning; see [`NetworkLayer::wait_ready`]).
    pub nat_gateways: Vec<String>,
    /// VPC endpoint ids.
    pub vpc_endpoints: Vec<String>,
}

pub use ecs_core::KNOWN_AFTER_APPLY;

impl NetworkOutputs {
    /// Outputs whose every id is [`KNOWN_AFTER_APPLY`] (two zones): what the layers above
    /// plan on while the network is still to be made.
    pub fn unknown() -> Self {
        let unknown = || KNOWN_AFTER_APPLY.to_string();
        Self {
            vpc_id: unknown(),
            vpc_cidr: unknown(),
            availability_zones: vec![unknown()],
            public_subnets: vec![unknown(), unknown()],
            private_subnets: vec![unknown(), unknown()],
            alb_sg: unknown(),
            task_sg: unknown(),
            nat_gateways: Vec::new(),
            vpc_endpoints: Vec::new(),
        }
    }
}

/// One resource the stack owns, as found by its tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct OwnedResource {
    /// Its kind, e.g. `subnet`.
    pub kind: String,
    /// Its AWS id.
    pub id: String,
}

/// The networking layer, over an EC2 client the caller provides.
#[derive(Debug, Clone)]
pub struct NetworkLayer {
    ec2: Client,
}

impl NetworkLayer {
    /// A layer using an EC2 client built from `config`.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    /// A layer using this EC2 client (for custom configuration, interceptors or mocks).
    pub fn from_client(ec2: Client) -> Self {
        Self { ec2 }
    }

    fn region(&self) -> String {
        ecs_core::region_or_default(self.ec2.config().region())
    }

    /// Validates the specification (every problem at once, before any AWS call), reads what
    /// the stack owns and returns the changes `apply` would make. Makes no change.
    pub async fn plan(&self, ctx: &Context, spec: &NetworkSpec) -> Result<NetworkPlan> {
        let mut problems = ctx.tags().validate("tags");
        if let Err(p) = spec.validate() {
            problems.extend(p);
        }
        problems.into_result()?;
        let region = self.region();
        let zones = async {
            match &spec.vpc {
                Network::Managed(_) => self.zones(ctx).await,
                Network::Existing(_) => Ok(Vec::new()),
            }
        };
        let existing = async {
            match &spec.vpc {
                Network::Existing(e) => self.resolve_existing(ctx, e).await.map(Some),
                Network::Managed(_) => Ok(None),
            }
        };
        let (zones, existing, live) =
            futures_util::try_join!(zones, existing, live::observe(ctx, &self.ec2))?;
        let desired = plan::desired(spec, &region, &zones, existing)?;
        let changes = plan::changes(ctx, &desired, &live)?;
        Ok(NetworkPlan {
            desired,
            live,
            changes,
        })
    }

    /// Carries out `plan` and returns the outputs. Each resource is created as soon as what it
    /// needs exists, and waits for nothing else: a NAT gateway, for instance, as soon as its
    /// public subnet, its Elastic IP and the attached internet gateway are there, while the
    /// security groups' rules and the VPC's DNS attributes are still being written (only
    /// interface endpoints wait for those). NAT gateways are not waited for (use
    /// [`wait_ready`](Self::wait_ready) before something needs their traffic). Fails before
    /// any change when the plan replaces a VPC, subnet or NAT gateway; otherwise the first
    /// failed call stops the apply and is returned.
    pub async fn apply(&self, ctx: &Context, plan: &NetworkPlan) -> Result<NetworkOutputs> {
        apply::apply(ctx, &self.ec2, plan).await
    }

    /// Waits until the NAT gateways of `outputs` are available (their traffic flows), for at
    /// most `timeout`.
    pub async fn wait_ready(
        &self,
        ctx: &Context,
        outputs: &NetworkOutputs,
        timeout: Duration,
    ) -> Result<()> {
        apply::wait_for_nats(ctx, &self.ec2, &outputs.nat_gateways, timeout).await
    }

    /// Plans, applies and waits until the network is ready: the whole job in one call.
    pub async fn deploy(
        &self,
        ctx: &Context,
        spec: &NetworkSpec,
    ) -> Result<(Plan, NetworkOutputs)> {
        let plan = self.plan(ctx, spec).await?;
        let outputs = self.apply(ctx, &plan).await?;
        self.wait_ready(ctx, &outputs, Duration::from_secs(600))
            .await?;
        Ok((plan.changes, outputs))
    }

    /// The network of the environment `ctx.stack()` as its services use it (read-only, found
    /// by the environment's tags): its subnets, security groups and NAT gateways. `None` when
    /// the environment has no network (it is not deployed). Makes no change.
    pub async fn environment_outputs(&self, ctx: &Context) -> Result<Option<NetworkOutputs>> {
        let live = live::observe(ctx, &self.ec2).await?;
        Ok(plan::shared_outputs(&live))
    }

    /// Everything the stack owns in EC2 (found by its tag).
    pub async fn inventory(&self, ctx: &Context) -> Result<Vec<OwnedResource>> {
        let live = live::observe(ctx, &self.ec2).await?;
        let mut out: Vec<OwnedResource> = live
            .inventory()
            .into_iter()
            .map(|(kind, id)| OwnedResource {
                kind: kind.to_string(),
                id,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// What [`destroy`](Self::destroy) would delete: every resource carrying the stack's tag.
    pub async fn plan_destroy(&self, ctx: &Context) -> Result<Plan> {
        let live = live::observe(ctx, &self.ec2).await?;
        Ok(destroy_plan(&live))
    }

    /// Deletes every resource carrying the stack's tag, in the order AWS requires, waiting out
    /// NAT gateway deletion and lingering network interfaces; returns what it deleted.
    /// Resources without the tag are never touched.
    pub async fn destroy(&self, ctx: &Context) -> Result<Plan> {
        let live = live::observe(ctx, &self.ec2).await?;
        apply::teardown(ctx, &self.ec2, &live).await?;
        Ok(destroy_plan(&live))
    }

    async fn zones(&self, ctx: &Context) -> Result<Vec<String>> {
        let out = ctx
            .call("DescribeAvailabilityZones", "region", || {
                self.ec2
                    .describe_availability_zones()
                    .filters(live::filter("state", ["available"]))
                    .send()
            })
            .await?;
        let mut zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        zones.sort();
        Ok(zones)
    }

    async fn resolve_existing(
        &self,
        ctx: &Context,
        e: &ExistingVpc,
    ) -> Result<plan::ExistingResolved> {
        let not_found = |resource: &str, id: String| {
            Error::from(ecs_core::resource::NotFound::new(resource, id))
        };
        let vpcs = ctx
            .call("DescribeVpcs", &format!("vpc {}", e.vpc_id), || {
                self.ec2.describe_vpcs().vpc_ids(&e.vpc_id).send()
            })
            .await;
        let vpc = match vpcs {
            Err(err) if err.code().is_some_and(|c| c.ends_with("NotFound")) => {
                return Err(not_found("vpc", e.vpc_id.clone()))
            }
            other => other?,
        };
        let cidr = vpc
            .vpcs()
            .first()
            .and_then(|v| v.cidr_block())
            .ok_or_else(|| not_found("vpc", e.vpc_id.clone()))?
            .to_string();
        let ids: Vec<String> = e
            .public_subnets
            .iter()
            .chain(&e.private_subnets)
            .cloned()
            .collect();
        let subnets = ctx
            .call("DescribeSubnets", "existing subnets", || {
                self.ec2
                    .describe_subnets()
                    .set_subnet_ids(Some(ids.clone()))
                    .send()
            })
            .await;
        let subnets = match subnets {
            Err(err) if err.code().is_some_and(|c| c.ends_with("NotFound")) => {
                return Err(not_found("subnet", err.message().to_string()))
            }
            other => other?,
        };
        let mut problems = ecs_core::Problems::new();
        let mut zones = Vec::new();
        for (tier, list) in [
            ("public_subnets", &e.public_subnets),
            ("private_subnets", &e.private_subnets),
        ] {
            // The load balancer and the service need their subnets in two zones at least.
            let mut tier_zones: Vec<&str> = list
                .iter()
                .filter_map(|id| subnets.subnets().iter().find(|s| s.subnet_id() == Some(id)))
                .filter_map(|s| s.availability_zone())
                .collect();
            tier_zones.sort_unstable();
            tier_zones.dedup();
            if tier_zones.len() == 1 {
                problems.push(
                    format!("vpc.existing.{tier}"),
                    format!(
                        "every subnet is in {}: a load-balanced service needs subnets in two zones at least",
                        tier_zones[0]
                    ),
                );
            }
            for (i, id) in list.iter().enumerate() {
                match subnets.subnets().iter().find(|s| s.subnet_id() == Some(id)) {
                    None => return Err(not_found("subnet", id.clone())),
                    Some(s) if s.vpc_id() != Some(e.vpc_id.as_str()) => problems.push(
                        format!("vpc.existing.{tier}[{i}]"),
                        format!(
                            "{id} is in {}, not in {}",
                            s.vpc_id().unwrap_or("another VPC"),
                            e.vpc_id
                        ),
                    ),
                    Some(s) => {
                        if tier == "private_subnets" {
                            zones.push(s.availability_zone().unwrap_or_default().to_string());
                        }
                    }
                }
            }
        }
        problems.into_result()?;
        zones.sort();
        zones.dedup();
        Ok(plan::ExistingResolved {
            vpc_id: e.vpc_id.clone(),
            cidr,
            zones,
            public: e.public_subnets.clone(),
            private: e.private_subnets.clone(),
        })
    }
}

fn destroy_plan(live: &live::Live) -> Plan {
    live.inventory()
        .into_iter()
        .map(|(kind, id)| Change::new(kind, id, Action::Delete))
        .collect::<Vec<_>>()
        .into()
}
