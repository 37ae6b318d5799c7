//! A monthly cost estimate of a stack, from price tables shipped in the crate.
//!
//! It is an **estimate**: list prices (on-demand, no savings plans, no free tier), 730 hours a
//! month, one ALB LCU on average, Fargate Spot at its typical discount, and no data transfer,
//! NAT data processing or log ingestion (those depend on traffic). The prices are dated
//! ([`PRICES_DATE`]); check the AWS pricing pages before relying on them.

use std::fmt;

use ecs_net::{NatStrategy, Network};
use ecs_observe::Monitoring;
use ecs_service::{Architecture, CapacityProvider};
use serde::Serialize;

use crate::Stack;

/// When the shipped prices were taken from the AWS pricing pages.
pub const PRICES_DATE: &str = "2026-11-01";

const HOURS_PER_MONTH: f64 = 730.0;

/// List prices of one region, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Prices {
    region: &'static str,
    /// Fargate Linux x86: per vCPU-hour and per GB-hour.
    vcpu_hour: f64,
    gb_hour: f64,
    /// Fargate Linux ARM.
    arm_vcpu_hour: f64,
    arm_gb_hour: f64,
    /// Fargate Spot (x86), typical.
    spot_vcpu_hour: f64,
    spot_gb_hour: f64,
    /// NAT gateway per hour.
    nat_hour: f64,
    /// ALB per hour and per LCU-hour.
    alb_hour: f64,
    lcu_hour: f64,
    /// Public IPv4 address per hour.
    ipv4_hour: f64,
    /// CloudWatch: per alarm metric per month, per dashboard per month.
    alarm_metric_month: f64,
    dashboard_month: f64,
}

const TABLE: &[Prices] = &[
    Prices {
        region: "us-east-1",
        vcpu_hour: 0.04048,
        gb_hour: 0.004445,
        arm_vcpu_hour: 0.03238,
        arm_gb_hour: 0.00356,
        spot_vcpu_hour: 0.012144,
        spot_gb_hour: 0.0013335,
        nat_hour: 0.045,
        alb_hour: 0.0225,
        lcu_hour: 0.008,
        ipv4_hour: 0.005,
        alarm_metric_month: 0.10,
        dashboard_month: 3.00,
    },
    Prices {
        region: "us-west-2",
        vcpu_hour: 0.04048,
        gb_hour: 0.004445,
        arm_vcpu_hour: 0.03238,
        arm_gb_hour: 0.00356,
        spot_vcpu_hour: 0.012144,
        spot_gb_hour: 0.0013335,
        nat_hour: 0.045,
        alb_hour: 0.0225,
        lcu_hour: 0.008,
        ipv4_hour: 0.005,
        alarm_metric_month: 0.10,
        dashboard_month: 3.00,
    },
    Prices {
        region: "eu-west-1",
        vcpu_hour: 0.04048,
        gb_hour: 0.004445,
        arm_vcpu_hour: 0.03238,
        arm_gb_hour: 0.00356,
        spot_vcpu_hour: 0.012144,
        spot_gb_hour: 0.0013335,
        nat_hour: 0.048,
        alb_hour: 0.0252,
        lcu_hour: 0.008,
        ipv4_hour: 0.005,
        alarm_metric_month: 0.10,
        dashboard_month: 3.00,
    },
];

/// One line of the estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CostLine {
    /// What is priced, e.g. `Fargate vCPU (on-demand)`.
    pub item: String,
    /// How much of it per month, in `unit`s.
    pub quantity: f64,
    /// The unit, e.g. `vCPU-hours`.
    pub unit: String,
    /// USD per unit.
    pub unit_price: f64,
    /// USD per month.
    pub monthly: f64,
}

/// The estimate for one task count.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CostScenario {
    /// `min`, `typical` or `max` (or `fixed` without autoscaling).
    pub name: String,
    /// Tasks running all month.
    pub tasks: u32,
    /// The lines.
    pub lines: Vec<CostLine>,
    /// USD per month.
    pub total: f64,
}

/// A monthly cost estimate (see [`estimate_cost`] for what it assumes and leaves out).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CostEstimate {
    /// The region whose prices were used.
    pub region: String,
    /// When the prices were taken.
    pub prices_date: String,
    /// One scenario, or min / typical / max with autoscaling.
    pub scenarios: Vec<CostScenario>,
    /// What the estimate assumes and leaves out.
    pub notes: Vec<String>,
}

impl CostEstimate {
    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&CostScenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

fn line(item: &str, quantity: f64, unit: &str, unit_price: f64) -> CostLine {
    CostLine {
        item: item.to_string(),
        quantity,
        unit: unit.to_string(),
        unit_price,
        monthly: quantity * unit_price,
    }
}

/// Estimates the monthly cost of `stack` in `region`.
///
/// It is an **estimate**: list prices (on-demand, no savings plans, no free tier), 730 hours
/// a month, one ALB LCU on average, Fargate Spot at its typical discount, and no data
/// transfer, NAT data processing or log ingestion (those depend on traffic). The prices are
/// dated ([`PRICES_DATE`]); regions without a shipped table use us-east-1's and say so in
/// the notes.
///
/// ```
/// let stack = ecs_facade::Stack::from_manifest("name: shop\nprofile: prod\nimage: nginx\n").unwrap();
/// let estimate = ecs_facade::estimate_cost(&stack, "us-east-1");
/// let (min, max) = (estimate.scenario("min").unwrap(), estimate.scenario("max").unwrap());
/// assert_eq!((min.tasks, max.tasks), (2, 10));
/// assert!(max.total > min.total);
/// ```
pub fn estimate_cost(stack: &Stack, region: &str) -> CostEstimate {
    let mut notes = vec![
        "list prices, 730 hours a month, no savings plans or free tier".to_string(),
        "not included: data transfer, NAT data processing ($ per GB), log ingestion and storage, ECR storage".to_string(),
        "the load balancer is priced with 1 LCU on average".to_string(),
    ];
    let prices = match TABLE.iter().find(|p| p.region == region) {
        Some(p) => *p,
        None => {
            notes.push(format!(
                "no price table for {region}: us-east-1 prices were used (shipped: {})",
                TABLE
                    .iter()
                    .map(|p| p.region)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            TABLE[0]
        }
    };
    let task = &stack.service.task;
    let vcpu = f64::from(task.cpu) / 1024.0;
    let gb = f64::from(task.memory) / 1024.0;
    let arm = task.architecture == Architecture::Arm64;
    // The share of tasks on Spot, by the strategy's weights (bases ignored).
    let strategy = &stack.service.service.capacity_provider_strategy;
    let total_weight: u32 = strategy.iter().map(|s| s.weight).sum();
    let spot_share = if total_weight == 0 {
        0.0
    } else {
        f64::from(
            strategy
                .iter()
                .filter(|s| s.provider == CapacityProvider::FargateSpot)
                .map(|s| s.weight)
                .sum::<u32>(),
        ) / f64::from(total_weight)
    };
    if spot_share > 0.0 && arm {
        notes.push("Fargate Spot for ARM64 is priced like x86 Spot".to_string());
    }
    let network = stack.network_spec();
    // A service of an environment: the network and the load balancer are the environment's
    // (see `estimate_environment_cost`); only the service's own part is priced.
    let placed = stack.service.environment.is_some();
    let (zones, nats) = match &network.vpc {
        _ if placed => (0, 0),
        Network::Managed(m) => (
            u32::from(m.az_count),
            match m.nat {
                NatStrategy::None => 0,
                NatStrategy::Single => 1,
                NatStrategy::PerAz => u32::from(m.az_count),
            },
        ),
        Network::Existing(e) => {
            notes.push("existing VPC: its NAT gateways are not counted".to_string());
            (e.public_subnets.len().max(2) as u32, 0)
        }
    };
    let has_lb = stack.service.load_balancer.is_some();
    let has_target = stack.service.target().is_some();
    let alarms_on_lb = stack.service.has_load_balancer() && has_target;
    let internal = stack
        .service
        .load_balancer
        .as_ref()
        .is_some_and(|l| l.internal);
    let alarm_metrics: u32 = stack
        .observe
        .enabled_alarms(alarms_on_lb)
        .keys()
        .map(|k| {
            if *k == ecs_observe::AlarmKind::RunningBelowDesired {
                2
            } else {
                1
            }
        })
        .sum();
    let dashboards = u32::from(stack.observe.monitoring == Monitoring::Advanced);

    let counts: Vec<(&str, u32)> = match &stack.scaling {
        Some(s) => {
            let typical = stack.service.service.desired_count.clamp(s.min, s.max);
            vec![("min", s.min), ("typical", typical), ("max", s.max)]
        }
        None => vec![("fixed", stack.service.service.desired_count)],
    };
    let scenarios = counts
        .into_iter()
        .map(|(name, tasks)| {
            let hours = f64::from(tasks) * HOURS_PER_MONTH;
            let (on_demand, spot) = (hours * (1.0 - spot_share), hours * spot_share);
            let (vcpu_price, gb_price) = if arm {
                (prices.arm_vcpu_hour, prices.arm_gb_hour)
            } else {
                (prices.vcpu_hour, prices.gb_hour)
            };
            let mut lines = Vec::new();
            if on_demand > 0.0 {
                lines.push(line(
                    "Fargate vCPU (on-demand)",
                    on_demand * vcpu,
                    "vCPU-hours",
                    vcpu_price,
                ));
                lines.push(line(
                    "Fargate memory (on-demand)",
                    on_demand * gb,
                    "GB-hours",
                    gb_price,
                ));
            }
            if spot > 0.0 {
                lines.push(line(
                    "Fargate vCPU (Spot)",
                    spot * vcpu,
                    "vCPU-hours",
                    prices.spot_vcpu_hour,
                ));
                lines.push(line(
                    "Fargate memory (Spot)",
                    spot * gb,
                    "GB-hours",
                    prices.spot_gb_hour,
                ));
            }
            if nats > 0 {
                lines.push(line(
                    "NAT gateways",
                    f64::from(nats) * HOURS_PER_MONTH,
                    "hours",
                    prices.nat_hour,
                ));
            }
            if has_lb {
                lines.push(line(
                    "Application load balancer",
                    HOURS_PER_MONTH,
                    "hours",
                    prices.alb_hour,
                ));
                lines.push(line(
                    "Load balancer capacity (1 LCU)",
                    HOURS_PER_MONTH,
                    "LCU-hours",
                    prices.lcu_hour,
                ));
            }
            let public_ips = nats + if has_lb && !internal { zones } else { 0 };
            if public_ips > 0 {
                lines.push(line(
                    "Public IPv4 addresses",
                    f64::from(public_ips) * HOURS_PER_MONTH,
                    "address-hours",
                    prices.ipv4_hour,
                ));
            }
            if alarm_metrics > 0 {
                lines.push(line(
                    "CloudWatch alarms",
                    f64::from(alarm_metrics),
                    "alarm metrics",
                    prices.alarm_metric_month,
                ));
            }
            if dashboards > 0 {
                lines.push(line(
                    "CloudWatch dashboard",
                    f64::from(dashboards),
                    "dashboards",
                    prices.dashboard_month,
                ));
            }
            let total = lines.iter().map(|l| l.monthly).sum();
            CostScenario {
                name: name.to_string(),
                tasks,
                lines,
                total,
            }
        })
        .collect();
    CostEstimate {
        region: prices.region.to_string(),
        prices_date: PRICES_DATE.to_string(),
        scenarios,
        notes,
    }
}

/// The items an environment shares: its NAT gateways, load balancers and public addresses.
const SHARED_ITEMS: [&str; 4] = [
    "NAT gateways",
    "Application load balancer",
    "Load balancer capacity (1 LCU)",
    "Public IPv4 addresses",
];

/// The monthly cost of an environment with its services, against the same services each
/// deployed as a stack of its own (with its own NAT gateways and load balancer): see
/// [`estimate_environment_cost`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentCost {
    /// The environment.
    pub environment: String,
    /// The region whose prices were used.
    pub region: String,
    /// When the prices were taken.
    pub prices_date: String,
    /// What the services share: NAT gateways, load balancers, public addresses.
    pub shared: Vec<CostLine>,
    /// Each stack's own part (tasks at their typical count, alarms, dashboard), by name: the
    /// environment's own service first, when it has one.
    pub services: Vec<(String, f64)>,
    /// The whole environment, USD per month.
    pub total: f64,
    /// The same services, each a stack of its own, USD per month.
    pub separate_total: f64,
    /// `separate_total - total`.
    pub saving: f64,
    /// What the estimate assumes and leaves out.
    pub notes: Vec<String>,
}

/// The typical month of `estimate`: its `typical` scenario, else its only one.
fn typical(estimate: &CostEstimate) -> &CostScenario {
    estimate
        .scenario("typical")
        .unwrap_or_else(|| &estimate.scenarios[0])
}

/// Estimates the monthly cost of the environment of `d` with every service, and what the
/// same services would cost each as a stack of its own — each with its own NAT gateways and
/// load balancer, as one manifest per service makes them. Services are priced at their
/// typical task count; the shared part once. The same assumptions as [`estimate_cost`].
///
/// ```
/// let d = ecs_facade::Deployment::from_manifest(
///     "name: shop\nprofile: prod\nservices:\n  api:\n    image: nginx\n    path: /api/*\n  web:\n    image: nginx\n    path: /*\n",
/// ).unwrap();
/// let cost = ecs_facade::estimate_environment_cost(&d, "us-east-1");
/// assert_eq!(cost.services.len(), 2);
/// assert!(cost.saving > 0.0, "two load balancers and two NAT sets fewer");
/// ```
pub fn estimate_environment_cost(d: &crate::Deployment, region: &str) -> EnvironmentCost {
    use crate::Root;
    let shared_line = |l: &CostLine| SHARED_ITEMS.contains(&l.item.as_str());
    let own = |s: &CostScenario| {
        s.lines
            .iter()
            .filter(|l| !shared_line(l))
            .map(|l| l.monthly)
            .sum::<f64>()
    };
    let mut services = Vec::new();
    let mut separate_total = 0.0;
    let mut notes = Vec::new();
    // The shared part, and the environment's own service.
    let (shared, network) = match &d.root {
        Some(Root::Stack(s)) => {
            let e = estimate_cost(s, region);
            let t = typical(&e);
            services.push((s.name.clone(), own(t)));
            separate_total += t.total;
            notes = e.notes.clone();
            let shared: Vec<CostLine> =
                t.lines.iter().filter(|l| shared_line(l)).cloned().collect();
            (shared, s.network_spec())
        }
        Some(Root::Environment(env)) => {
            let front = env.shared.load_balancer.as_ref().map(|f| {
                ecs_service::LoadBalancerSpec::builder()
                    .listeners(f.listeners.clone())
                    .build()
            });
            let mut anchor = standalone(&env.network_spec(), d.services.first(), front.clone());
            anchor.service.service.desired_count = 0;
            anchor.service.load_balancer = front;
            let e = estimate_cost(&anchor, region);
            notes = e.notes.clone();
            let mut shared: Vec<CostLine> = typical(&e)
                .lines
                .iter()
                .filter(|l| shared_line(l))
                .cloned()
                .collect();
            if env.shared.internal_load_balancer.is_some() {
                let prices = shared
                    .iter()
                    .filter(|l| l.item.to_lowercase().contains("load balancer"))
                    .map(|l| CostLine {
                        item: format!("Internal {}", l.item.to_lowercase()),
                        ..l.clone()
                    })
                    .collect::<Vec<_>>();
                shared.extend(prices);
            }
            (shared, env.network_spec())
        }
        None => (
            Vec::new(),
            crate::Stack::builder()
                .name("x")
                .service(d.services[0].service.clone())
                .build()
                .network_spec(),
        ),
    };
    // Each service: its own part here; alone, its own network and load balancer too.
    for s in &d.services {
        let e = estimate_cost(s, region);
        services.push((s.name.clone(), typical(&e).total));
        let front = s
            .service
            .environment
            .as_ref()
            .filter(|p| !p.routes.is_empty())
            .map(|_| ecs_service::LoadBalancerSpec::builder().build());
        let alone = standalone(&network, Some(s), front);
        separate_total += typical(&estimate_cost(&alone, region)).total;
    }
    if d.root.is_none() {
        notes.push(
            "one service of an environment: the environment's shared part is not included"
                .to_string(),
        );
    }
    let total = shared.iter().map(|l| l.monthly).sum::<f64>()
        + services.iter().map(|(_, c)| c).sum::<f64>();
    EnvironmentCost {
        environment: d.environment_name().to_string(),
        region: region.to_string(),
        prices_date: PRICES_DATE.to_string(),
        shared,
        services,
        total,
        separate_total,
        saving: separate_total - total,
        notes,
    }
}

/// `service` (or an empty one) as a stack of its own on a network like `network` (its own,
/// not shared), with `front` as its load balancer.
fn standalone(
    network: &ecs_net::NetworkSpec,
    service: Option<&Stack>,
    front: Option<ecs_service::LoadBalancerSpec>,
) -> Stack {
    let mut stack = match service {
        Some(s) => s.clone(),
        None => Stack::builder()
            .name("environment")
            .service(
                ecs_service::ServiceSpec::builder()
                    .task(
                        ecs_service::TaskSpec::builder()
                            .containers(Vec::new())
                            .build(),
                    )
                    .build(),
            )
            .build(),
    };
    stack.service.environment = None;
    stack.service.load_balancer = front;
    let mut network = network.clone();
    network.shared = false;
    stack.network = Some(network);
    stack
}

impl fmt::Display for EnvironmentCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Estimated monthly cost of environment `{}` in {} (USD, prices of {}):",
            self.environment, self.region, self.prices_date
        )?;
        writeln!(
            f,
            "
  shared by every service:"
        )?;
        for l in &self.shared {
            writeln!(
                f,
                "    {:<34} {:>10.1} {:<14} × {:>9.5} = {:>9.2}",
                l.item, l.quantity, l.unit, l.unit_price, l.monthly
            )?;
        }
        writeln!(
            f,
            "
  each service (its tasks at their typical count, alarms, dashboard):"
        )?;
        for (name, cost) in &self.services {
            writeln!(f, "    {name:<34} {cost:>47.2}")?;
        }
        writeln!(
            f,
            "
    {:<34} {:>47.2}",
            "total", self.total
        )?;
        writeln!(
            f,
            "    {:<34} {:>47.2}",
            "one stack per service instead", self.separate_total
        )?;
        writeln!(f, "    {:<34} {:>47.2}", "saved a month", self.saving)?;
        writeln!(
            f,
            "
  This is an estimate:"
        )?;
        for n in &self.notes {
            writeln!(f, "  - {n}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CostEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Estimated monthly cost in {} (USD, prices of {}):",
            self.region, self.prices_date
        )?;
        for s in &self.scenarios {
            writeln!(
                f,
                "\n  {} ({} task{}):",
                s.name,
                s.tasks,
                if s.tasks == 1 { "" } else { "s" }
            )?;
            for l in &s.lines {
                writeln!(
                    f,
                    "    {:<34} {:>10.1} {:<14} × {:>9.5} = {:>9.2}",
                    l.item, l.quantity, l.unit, l.unit_price, l.monthly
                )?;
            }
            writeln!(f, "    {:<34} {:>47.2}", "total", s.total)?;
        }
        writeln!(f, "\n  This is an estimate:")?;
        for n in &self.notes {
            writeln!(f, "  - {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(yaml: &str) -> Stack {
        crate::Manifest::parse(yaml).unwrap().to_stack()
    }

    #[test]
    fn dev_is_one_spot_task_with_one_nat() {
        let e = estimate_cost(&stack("name: d\nimage: x\n"), "us-east-1");
        let s = e.scenario("fixed").unwrap();
        assert_eq!(s.tasks, 1);
        let spot = s
            .lines
            .iter()
            .find(|l| l.item == "Fargate vCPU (Spot)")
            .unwrap();
        assert!((spot.quantity - 0.25 * 730.0).abs() < 1e-9);
        assert!(!s.lines.iter().any(|l| l.item.contains("on-demand")));
        let nat = s.lines.iter().find(|l| l.item == "NAT gateways").unwrap();
        assert!((nat.monthly - 730.0 * 0.045).abs() < 1e-9);
        assert!(
            !s.lines.iter().any(|l| l.item.contains("dashboard")),
            "basic monitoring has no dashboard"
        );
        let total: f64 = s.lines.iter().map(|l| l.monthly).sum();
        assert!((total - s.total).abs() < 1e-9);
    }

    #[test]
    fn prod_has_three_scenarios_per_az_nat_and_a_dashboard() {
        let e = estimate_cost(&stack("name: p\nprofile: prod\nimage: x\n"), "eu-west-1");
        assert_eq!(e.region, "eu-west-1");
        let names: Vec<&str> = e.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["min", "typical", "max"]);
        let max = e.scenario("max").unwrap();
        let vcpu = max
            .lines
            .iter()
            .find(|l| l.item == "Fargate vCPU (on-demand)")
            .unwrap();
        assert!((vcpu.quantity - 10.0 * 0.5 * 730.0).abs() < 1e-9);
        assert_eq!(
            max.lines
                .iter()
                .find(|l| l.item == "NAT gateways")
                .unwrap()
                .quantity,
            2.0 * 730.0
        );
        assert!(max.lines.iter().any(|l| l.item == "CloudWatch dashboard"));
        // 5 single-metric alarms + the running < desired alarm's 2 metrics.
        assert_eq!(
            max.lines
                .iter()
                .find(|l| l.item == "CloudWatch alarms")
                .unwrap()
                .quantity,
            7.0
        );
        assert!(e.scenario("min").unwrap().total < e.scenario("max").unwrap().total);
        assert!(e.to_string().contains("estimate"));
    }

    #[test]
    fn unknown_regions_say_which_prices_were_used() {
        let e = estimate_cost(&stack("name: d\nimage: x\n"), "ap-south-2");
        assert_eq!(e.region, "us-east-1");
        assert!(e.notes.iter().any(|n| n.contains("ap-south-2")));
    }

    #[test]
    fn an_environment_shares_its_nat_and_load_balancer_and_prices_each_service_once() {
        let d = crate::Deployment::from_manifest(
            "name: e\nservices:\n  a:\n    image: x\n    path: /a/*\n  b:\n    image: x\n    path: /b/*\n",
        )
        .unwrap();
        let env = estimate_environment_cost(&d, "us-east-1");
        let items: Vec<&str> = env.shared.iter().map(|l| l.item.as_str()).collect();
        assert_eq!(
            items,
            [
                "NAT gateways",
                "Application load balancer",
                "Load balancer capacity (1 LCU)",
                "Public IPv4 addresses"
            ]
        );
        // One service alone (dev: one NAT, one load balancer, its public addresses).
        let alone = estimate_cost(&stack("name: a\nimage: x\n"), "us-east-1");
        let alone = typical(&alone).total;
        assert!((env.separate_total - 2.0 * alone).abs() < 1e-6, "{env}");
        let shared: f64 = env.shared.iter().map(|l| l.monthly).sum();
        // The saving is exactly one stack's shared part.
        assert!((env.saving - shared).abs() < 1e-6, "{env}");
        assert!((env.total + env.saving - env.separate_total).abs() < 1e-9);
    }
}
