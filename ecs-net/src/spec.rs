//! The network specification: typed builders with serde support, validated before any AWS call.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use ecs_core::Problems;

/// What the stack's network looks like.
///
/// ```
/// use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkSpec};
/// let spec = NetworkSpec::builder()
///     .vpc(Network::Managed(
///         ManagedVpc::builder().cidr("10.20.0.0/16".parse().unwrap()).az_count(3).nat(NatStrategy::PerAz).build(),
///     ))
///     .container_port(8080)
///     .build();
/// assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The VPC: one the stack creates and owns, or an existing one (then only the security
    /// groups are created).
    #[builder(default)]
    #[serde(default)]
    pub vpc: Network,
    /// The port the containers listen on; the task security group admits it from the load
    /// balancer's group only.
    pub container_port: u16,
    /// Ports the load balancer listens on (default 80 and 443).
    #[builder(default = vec![80, 443])]
    #[serde(default = "default_listener_ports")]
    pub listener_ports: Vec<u16>,
    /// Who may reach the load balancer (default `0.0.0.0/0`).
    #[builder(default = vec![Ipv4Net::default()])]
    #[serde(default = "default_ingress")]
    pub alb_ingress_cidrs: Vec<Ipv4Net>,
    /// An environment's network, which many services share: the load balancer's group
    /// reaches the tasks' group on every TCP port, and the tasks' group admits itself (for
    /// Service Connect and an internal load balancer, which joins it), so that a service
    /// on any port joins without a rule change (`container_port` is not used).
    #[builder(default)]
    #[serde(default)]
    pub shared: bool,
}

fn default_listener_ports() -> Vec<u16> {
    vec![80, 443]
}

fn default_ingress() -> Vec<Ipv4Net> {
    vec![Ipv4Net::default()]
}

/// Where the stack's network comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Network {
    /// A VPC the stack creates, owns and deletes.
    Managed(ManagedVpc),
    /// A VPC the user already has; the stack only adds its security groups to it.
    Existing(ExistingVpc),
}

impl Network {
    /// An existing VPC with its public subnets (for the load balancer) and private subnets
    /// (for the tasks).
    pub fn existing(
        vpc_id: impl Into<String>,
        public_subnets: impl IntoIterator<Item = impl Into<String>>,
        private_subnets: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Network::Existing(ExistingVpc {
            vpc_id: vpc_id.into(),
            public_subnets: public_subnets.into_iter().map(Into::into).collect(),
            private_subnets: private_subnets.into_iter().map(Into::into).collect(),
        })
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::Managed(ManagedVpc::default())
    }
}

/// A VPC the stack owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ManagedVpc {
    /// The VPC's IPv4 block, /16 to /28 (default `10.0.0.0/16`).
    #[builder(default = default_cidr())]
    #[serde(default = "default_cidr")]
    pub cidr: Ipv4Net,
    /// How many availability zones to span, 2 to 6 (default 2); the first ones of the region
    /// in name order unless `availability_zones` names them.
    #[builder(default = 2)]
    #[serde(default = "default_az_count")]
    pub az_count: u8,
    /// The zones to use, by name; when given, their number must equal `az_count`.
    #[builder(default, setter(strip_option))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zones: Option<Vec<String>>,
    /// Explicit subnet blocks; by default they are carved from `cidr` (which then must be /24
    /// or larger): the VPC is cut into 16 equal blocks, public subnet *i* is block *i* and
    /// private subnet *i* is block 8 + *i*, so adding zones never moves existing subnets.
    #[builder(default, setter(strip_option))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<SubnetLayout>,
    /// NAT gateways for the private subnets' internet access (default: a single one).
    #[builder(default)]
    #[serde(default)]
    pub nat: NatStrategy,
    /// Optional VPC endpoints, so tasks reach AWS services without the NAT.
    #[builder(default)]
    #[serde(default)]
    pub endpoints: VpcEndpoints,
}

fn default_cidr() -> Ipv4Net {
    Ipv4Net::new(std::net::Ipv4Addr::new(10, 0, 0, 0), 16).expect("valid prefix")
}

fn default_az_count() -> u8 {
    2
}

impl Default for ManagedVpc {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Explicit subnet blocks, one per availability zone, in zone order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct SubnetLayout {
    /// Public subnets (load balancer, NAT gateways).
    pub public: Vec<Ipv4Net>,
    /// Private subnets (tasks).
    pub private: Vec<Ipv4Net>,
}

/// How the private subnets reach the internet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatStrategy {
    /// No NAT gateway: tasks reach AWS services only through VPC endpoints.
    None,
    /// One NAT gateway in the first zone, shared by all private subnets (cheaper; one zone's
    /// outage cuts the others' egress).
    #[default]
    Single,
    /// One NAT gateway per zone (highly available).
    PerAz,
}

/// Which VPC endpoints to create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct VpcEndpoints {
    /// S3 gateway endpoint (free; ECR image layers come from S3).
    #[builder(default)]
    pub s3: bool,
    /// ECR API and Docker registry interface endpoints.
    #[builder(default)]
    pub ecr: bool,
    /// CloudWatch Logs interface endpoint.
    #[builder(default)]
    pub logs: bool,
    /// Secrets Manager interface endpoint.
    #[builder(default)]
    pub secrets_manager: bool,
}

impl VpcEndpoints {
    /// Every endpoint (what tasks need to run without a NAT gateway).
    pub fn all() -> Self {
        Self {
            s3: true,
            ecr: true,
            logs: true,
            secrets_manager: true,
        }
    }

    /// The endpoints wanted, as (logical name, service suffix, is gateway).
    pub(crate) fn wanted(&self) -> Vec<(&'static str, &'static str, bool)> {
        let mut out = Vec::new();
        if self.s3 {
            out.push(("s3", "s3", true));
        }
        if self.ecr {
            out.push(("ecr.api", "ecr.api", false));
            out.push(("ecr.dkr", "ecr.dkr", false));
        }
        if self.logs {
            out.push(("logs", "logs", false));
        }
        if self.secrets_manager {
            out.push(("secretsmanager", "secretsmanager", false));
        }
        out
    }
}

/// A VPC the user already has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ExistingVpc {
    /// Its id, `vpc-…`.
    #[builder(setter(into))]
    pub vpc_id: String,
    /// Public subnets for the load balancer (at least two zones).
    pub public_subnets: Vec<String>,
    /// Private subnets for the tasks.
    pub private_subnets: Vec<String>,
}

/// Number of equal blocks the VPC is cut into when subnets are carved automatically.
const CARVE_BLOCKS: u8 = 16;
/// Index of the first private block.
const PRIVATE_OFFSET: usize = 8;

impl ManagedVpc {
    /// The public and private subnet blocks, one of each per zone, in zone order.
    pub fn subnet_blocks(&self) -> (Vec<Ipv4Net>, Vec<Ipv4Net>) {
        if let Some(layout) = &self.subnets {
            return (layout.public.clone(), layout.private.clone());
        }
        let n = usize::from(self.az_count);
        let Ok(blocks) = self.cidr.subnets(self.cidr.prefix_len() + 4) else {
            return (Vec::new(), Vec::new());
        };
        let blocks: Vec<Ipv4Net> = blocks.collect();
        debug_assert_eq!(blocks.len(), usize::from(CARVE_BLOCKS));
        (
            blocks[..n.min(PRIVATE_OFFSET)].to_vec(),
            blocks[PRIVATE_OFFSET..PRIVATE_OFFSET + n.min(PRIVATE_OFFSET)].to_vec(),
        )
    }
}

impl NetworkSpec {
    /// Checks the specification without calling AWS; returns every problem at once, each
    /// naming its field.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::new();
        if self.container_port == 0 && !self.shared {
            p.push("container_port", "must be between 1 and 65535");
        }
        if self.listener_ports.is_empty() {
            p.push("listener_ports", "at least one port is needed");
        }
        for (i, port) in self.listener_ports.iter().enumerate() {
            if *port == 0 {
                p.push(
                    format!("listener_ports[{i}]"),
                    "must be between 1 and 65535",
                );
            }
        }
        if self.alb_ingress_cidrs.is_empty() {
            p.push(
                "alb_ingress_cidrs",
                "at least one CIDR is needed (0.0.0.0/0 for everyone)",
            );
        }
        for (i, cidr) in self.alb_ingress_cidrs.iter().enumerate() {
            if cidr.trunc() != *cidr {
                p.push(
                    format!("alb_ingress_cidrs[{i}]"),
                    format!("{cidr} has host bits set (did you mean {}?)", cidr.trunc()),
                );
            }
        }
        match &self.vpc {
            Network::Managed(vpc) => vpc.validate_into("vpc.managed", &mut p),
            Network::Existing(vpc) => vpc.validate_into("vpc.existing", &mut p),
        }
        p.into_result()
    }
}

impl ManagedVpc {
    fn validate_into(&self, at: &str, p: &mut Problems) {
        let cidr = self.cidr;
        let cidr_ok = (16..=28).contains(&cidr.prefix_len()) && cidr.trunc() == cidr;
        if !(16..=28).contains(&cidr.prefix_len()) {
            p.push(
                format!("{at}.cidr"),
                format!("{cidr}: a VPC block must be between /16 and /28"),
            );
        } else if cidr.trunc() != cidr {
            p.push(
                format!("{at}.cidr"),
                format!("{cidr} has host bits set (did you mean {}?)", cidr.trunc()),
            );
        }
        if !(2..=6).contains(&self.az_count) {
            p.push(
                format!("{at}.az_count"),
                format!("{} zones: must be 2 to 6", self.az_count),
            );
        }
        if let Some(zones) = &self.availability_zones {
            if zones.len() != usize::from(self.az_count) {
                p.push(
                    format!("{at}.availability_zones"),
                    format!(
                        "{} zones named but az_count is {}",
                        zones.len(),
                        self.az_count
                    ),
                );
            }
            let mut seen = std::collections::HashSet::new();
            for (i, z) in zones.iter().enumerate() {
                if !seen.insert(z) {
                    p.push(
                        format!("{at}.availability_zones[{i}]"),
                        format!("{z} is listed twice"),
                    );
                }
            }
        }
        match &self.subnets {
            None => {
                if cidr_ok && cidr.prefix_len() > 24 {
                    p.push(
                        format!("{at}.subnets"),
                        format!(
                            "{cidr} is too small to carve subnets automatically (/24 or larger needed): give subnets explicitly"
                        ),
                    );
                }
            }
            Some(layout) => {
                let n = usize::from(self.az_count);
                let mut all: Vec<(String, Ipv4Net)> = Vec::new();
                for (tier, list) in [("public", &layout.public), ("private", &layout.private)] {
                    if list.len() != n {
                        p.push(
                            format!("{at}.subnets.{tier}"),
                            format!("{} subnets given, one per zone ({n}) needed", list.len()),
                        );
                    }
                    for (i, s) in list.iter().enumerate() {
                        let field = format!("{at}.subnets.{tier}[{i}]");
                        if !(16..=28).contains(&s.prefix_len()) {
                            p.push(&field, format!("{s}: a subnet must be between /16 and /28"));
                        } else if s.trunc() != *s {
                            p.push(
                                &field,
                                format!("{s} has host bits set (did you mean {}?)", s.trunc()),
                            );
                        } else if cidr_ok && !cidr.contains(s) {
                            p.push(&field, format!("{s} is outside the VPC block {cidr}"));
                        }
                        all.push((field, *s));
                    }
                }
                for (i, (fa, a)) in all.iter().enumerate() {
                    for (fb, b) in &all[i + 1..] {
                        if a.contains(b) || b.contains(a) {
                            p.push(fb, format!("{b} overlaps {a} ({fa})"));
                        }
                    }
                }
            }
        }
        if self.nat == NatStrategy::None {
            let e = self.endpoints;
            if !(e.s3 && e.ecr && e.logs) {
                p.push(
                    format!("{at}.nat"),
                    "without a NAT gateway tasks cannot pull images or ship logs: choose `single` or `per_az`, \
                     or enable the s3, ecr and logs endpoints",
                );
            }
        }
    }
}

impl ExistingVpc {
    fn validate_into(&self, at: &str, p: &mut Problems) {
        if !self.vpc_id.starts_with("vpc-") {
            p.push(
                format!("{at}.vpc_id"),
                format!("{:?} is not a VPC id (vpc-…)", self.vpc_id),
            );
        }
        for (tier, list) in [
            ("public_subnets", &self.public_subnets),
            ("private_subnets", &self.private_subnets),
        ] {
            if list.len() < 2 {
                p.push(
                    format!("{at}.{tier}"),
                    "at least two subnets (in two zones) are needed for a load-balanced service",
                );
            }
            for (i, s) in list.iter().enumerate() {
                if !s.starts_with("subnet-") {
                    p.push(
                        format!("{at}.{tier}[{i}]"),
                        format!("{s:?} is not a subnet id (subnet-…)"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn managed(vpc: ManagedVpc) -> NetworkSpec {
        NetworkSpec::builder()
            .vpc(Network::Managed(vpc))
            .container_port(8080)
            .build()
    }

    #[test]
    fn default_spec_is_valid_and_carves_stable_subnets() {
        let spec = managed(ManagedVpc::default());
        spec.validate().unwrap();
        let Network::Managed(vpc) = &spec.vpc else {
            unreachable!()
        };
        let (public, private) = vpc.subnet_blocks();
        assert_eq!(public, [net("10.0.0.0/20"), net("10.0.16.0/20")]);
        assert_eq!(private, [net("10.0.128.0/20"), net("10.0.144.0/20")]);
        // Adding zones keeps the existing subnets where they are.
        let three = ManagedVpc::builder().az_count(3).build();
        let (public3, private3) = three.subnet_blocks();
        assert_eq!(public3[..2], public[..]);
        assert_eq!(private3[..2], private[..]);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_field() {
        let spec = NetworkSpec::builder()
            .vpc(Network::Managed(
                ManagedVpc::builder()
                    .cidr(net("10.0.0.0/12"))
                    .az_count(7)
                    .nat(NatStrategy::None)
                    .build(),
            ))
            .container_port(0)
            .alb_ingress_cidrs(vec![net("10.1.2.3/8")])
            .build();
        let problems = spec.validate().unwrap_err();
        for field in [
            "container_port",
            "alb_ingress_cidrs[0]",
            "vpc.managed.cidr",
            "vpc.managed.az_count",
            "vpc.managed.nat",
        ] {
            assert!(problems.mentions(field), "{field} missing from {problems}");
        }
    }

    #[test]
    fn explicit_subnets_must_be_inside_and_disjoint() {
        let spec = managed(
            ManagedVpc::builder()
                .cidr(net("10.0.0.0/16"))
                .subnets(SubnetLayout {
                    public: vec![net("10.0.0.0/24"), net("10.1.0.0/24")],
                    private: vec![net("10.0.0.128/25"), net("10.0.2.0/24")],
                })
                .build(),
        );
        let problems = spec.validate().unwrap_err();
        assert!(
            problems.mentions("vpc.managed.subnets.public[1]"),
            "{problems}"
        );
        assert!(
            problems.mentions("vpc.managed.subnets.private[0]"),
            "{problems}"
        );
        assert_eq!(problems.len(), 2, "{problems}");
        assert!(problems.to_string().contains("outside the VPC block"));
        assert!(problems.to_string().contains("overlaps 10.0.0.0/24"));
    }

    #[test]
    fn small_vpc_needs_explicit_subnets_and_existing_ids_are_checked() {
        let spec = managed(ManagedVpc::builder().cidr(net("10.0.0.0/26")).build());
        assert!(spec.validate().unwrap_err().mentions("vpc.managed.subnets"));
        let spec = NetworkSpec::builder()
            .vpc(Network::existing(
                "vpc1",
                ["subnet-a"],
                ["sn-b", "subnet-c"],
            ))
            .container_port(80)
            .build();
        let problems = spec.validate().unwrap_err();
        assert!(problems.mentions("vpc.existing.vpc_id"));
        assert!(problems.mentions("vpc.existing.public_subnets"));
        assert!(problems.mentions("vpc.existing.private_subnets[0]"));
    }

    #[test]
    fn serde_round_trip_and_unknown_keys_are_rejected() {
        let spec = managed(ManagedVpc::builder().nat(NatStrategy::PerAz).build());
        let json = serde_json::to_string(&spec).unwrap();
        let back: NetworkSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        let err = serde_json::from_str::<NetworkSpec>(
            r#"{"container_port": 80, "vpc": {"managed": {"cidrr": "10.0.0.0/16"}}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cidrr"), "{err}");
    }

    proptest! {
        #[test]
        fn carved_subnets_are_inside_disjoint_and_valid(a in 0u8..=255, b in 0u8..=255, prefix in 16u8..=24, n in 2u8..=6) {
            let cidr = Ipv4Net::new(std::net::Ipv4Addr::new(10, a, b, 0), prefix).unwrap().trunc();
            let vpc = ManagedVpc::builder().cidr(cidr).az_count(n).build();
            let spec = managed(vpc.clone());
            prop_assert!(spec.validate().is_ok());
            let (public, private) = vpc.subnet_blocks();
            prop_assert_eq!(public.len(), usize::from(n));
            prop_assert_eq!(private.len(), usize::from(n));
            let all: Vec<_> = public.iter().chain(private.iter()).collect();
            for (i, x) in all.iter().enumerate() {
                prop_assert!(cidr.contains(*x));
                prop_assert!(x.prefix_len() <= 28);
                for y in &all[i + 1..] {
                    prop_assert!(!x.contains(*y) && !y.contains(*x));
                }
            }
        }

        #[test]
        fn validation_never_panics(cidr in any::<u32>(), prefix in 0u8..=32, n in any::<u8>(), port in any::<u16>(),
                                   subnets in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..8)) {
            let mk = |addr: u32, p: u8| Ipv4Net::new(std::net::Ipv4Addr::from(addr), p).unwrap();
            let half = subnets.len() / 2;
            let layout = SubnetLayout {
                public: subnets[..half].iter().map(|(a, p)| mk(*a, *p)).collect(),
                private: subnets[half..].iter().map(|(a, p)| mk(*a, *p)).collect(),
            };
            let vpc = ManagedVpc { cidr: mk(cidr, prefix), az_count: n, availability_zones: None,
                                   subnets: Some(layout), nat: NatStrategy::Single, endpoints: VpcEndpoints::default() };
            let spec = managed(vpc.clone());
            let spec = NetworkSpec { container_port: port, ..spec };
            if spec.validate().is_ok() {
                let (public, private) = vpc.subnet_blocks();
                for s in public.iter().chain(private.iter()) {
                    prop_assert!(vpc.cidr.contains(s));
                }
            }
        }
    }
}
