//! The whole stack as one typed value, and its validation across every layer.

use ecs_core::{Problems, StackName, Tags};
use ecs_net::{ManagedVpc, Network, NetworkSpec};
use ecs_observe::ObserveSpec;
use ecs_scaling::ScalingSpec;
use ecs_service::ServiceSpec;
use serde::Serialize;
use typed_builder::TypedBuilder;

/// `name` as a stack's name, or the problem of its `name` field.
pub(crate) fn checked_name(name: &str) -> Result<StackName, Problems> {
    StackName::new(name).map_err(|p| {
        let mut problems = Problems::new();
        problems.push("name", p.message);
        problems
    })
}

/// A load-balanced Fargate stack: network, service, autoscaling and observability.
///
/// ```
/// use ecs_facade::Stack;
/// use ecs_facade::service::{ContainerSpec, LoadBalancerSpec, ServiceSpec, TaskSpec};
///
/// let service = ServiceSpec::builder()
///     .task(TaskSpec::builder()
///         .containers(vec![ContainerSpec::builder().name("web").image("nginx:1.27").ports(vec![8080]).build()])
///         .build())
///     .load_balancer(LoadBalancerSpec::default())
///     .build();
/// let stack = Stack::builder().name("web").service(service).build();
/// assert!(stack.validate().is_ok());
/// assert_eq!(stack.network_spec().container_port, 8080);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, TypedBuilder)]
pub struct Stack {
    /// The stack's name: 1–32 lower-case letters, digits and hyphens, starting with a letter.
    /// Every resource's name derives from it, and every resource carries it as the
    /// `ecs:stack` tag.
    #[builder(setter(into))]
    pub name: String,
    /// Tags added to every resource.
    #[builder(default)]
    pub tags: Tags,
    /// The network; by default a managed VPC over two zones with one NAT gateway, whose
    /// container port and listener ports follow the service.
    #[builder(default, setter(strip_option))]
    pub network: Option<NetworkSpec>,
    /// The service layer.
    pub service: ServiceSpec,
    /// Autoscaling of the service's desired count (then redeploys never reset it).
    #[builder(default, setter(strip_option))]
    pub scaling: Option<ScalingSpec>,
    /// Logs, alarms and the dashboard.
    #[builder(default)]
    pub observe: ObserveSpec,
}

impl Stack {
    /// The stack name, checked.
    pub fn stack_name(&self) -> Result<StackName, Problems> {
        checked_name(&self.name)
    }

    /// The network spec in effect: the given one, or the default managed network for the
    /// service's container port and listener ports.
    pub fn network_spec(&self) -> NetworkSpec {
        self.network.clone().unwrap_or_else(|| {
            let port = self.service.target().map_or(8080, |(_, p)| p);
            let mut listener_ports: Vec<u16> = self
                .service
                .load_balancer
                .as_ref()
                .map(|lb| lb.listeners.iter().map(|l| l.port).collect())
                .unwrap_or_default();
            listener_ports.sort();
            listener_ports.dedup();
            if listener_ports.is_empty() {
                listener_ports = vec![80];
            }
            NetworkSpec::builder()
                .vpc(Network::Managed(ManagedVpc::default()))
                .container_port(port)
                .listener_ports(listener_ports)
                .build()
        })
    }

    /// The service spec in effect: with autoscaling on, the service's desired count is
    /// owned by autoscaling.
    pub fn service_spec(&self) -> ServiceSpec {
        let mut s = self.service.clone();
        if let Some(scaling) = &self.scaling {
            s.service.autoscaled = true;
            s.service.autoscaled_min = scaling.min;
        }
        s
    }

    /// This stack without tasks: every resource, but the service runs none and has no
    /// autoscaling yet (a registered range would start tasks). For a first deploy whose image
    /// is to be pushed to the repository the stack itself creates; the next deploy of the
    /// whole stack starts the tasks. See [`Deployer::infrastructure_only`].
    ///
    /// [`Deployer::infrastructure_only`]: crate::Deployer::infrastructure_only
    #[must_use]
    pub fn infrastructure_only(&self) -> Stack {
        let mut s = self.clone();
        s.service.service.desired_count = 0;
        s.scaling = None;
        s
    }

    /// Checks every layer and the links between them; returns every problem at once, each
    /// naming its field (prefixed by its layer: `network.`, `service.`, `scaling.`,
    /// `observe.`), before any AWS call.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::new();
        if let Err(e) = self.stack_name() {
            p.extend(e);
        }
        p.extend(self.tags.validate("tags"));
        let network = self.network_spec();
        // A service of an environment runs on the environment's network.
        let placed = self.service.environment.is_some();
        if placed && self.network.is_some() {
            p.push(
                "network",
                "a service of an environment runs on the environment's network: set it on the environment",
            );
        }
        if let (false, Err(e)) = (placed, network.validate()) {
            p.extend(e.iter().map(|x| {
                ecs_core::Problem::new(format!("network.{}", x.field), x.message.clone())
            }));
        }
        if let Err(e) = self.service.validate() {
            p.extend(e.iter().map(|x| {
                ecs_core::Problem::new(format!("service.{}", x.field), x.message.clone())
            }));
        }
        if let Some(scaling) = &self.scaling {
            // A count outside a range that is itself wrong is not a second problem.
            let desired =
                Some(self.service.service.desired_count).filter(|_| scaling.min <= scaling.max);
            if let Err(e) = scaling.validate(desired, self.service.has_load_balancer()) {
                p.extend(e);
            }
        }
        if let Err(e) = self.observe.validate() {
            p.extend(e.iter().map(|x| {
                ecs_core::Problem::new(format!("observe.{}", x.field), x.message.clone())
            }));
        }
        // The links between layers.
        if let (false, Some((container, port))) = (placed, self.service.target()) {
            if network.container_port != port {
                p.push(
                    "network.container_port",
                    format!(
                        "is {} but container `{}` receives traffic on {port}",
                        network.container_port, container.name
                    ),
                );
            }
        }
        if let Some(lb) = &self.service.load_balancer {
            for (i, l) in lb.listeners.iter().enumerate() {
                if !network.listener_ports.contains(&l.port) {
                    p.push(
                        format!("service.load_balancer.listeners[{i}].port"),
                        format!("{} is not one of network.listener_ports {:?}: the load balancer's security group would block it", l.port, network.listener_ports),
                    );
                }
            }
        }
        p.into_result()
    }
}
