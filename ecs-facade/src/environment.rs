//! Environments: one network, load balancer, cluster (and namespace) that many services
//! share, each service deployed on its own.
//!
//! An [`Environment`] owns what its services share: the network (its own VPC or an existing
//! one), the internet-facing load balancer with its listeners (which answer `404` to what no
//! service's rule takes, or redirect HTTP to HTTPS), an optional internal load balancer, and
//! the cluster. It is a stack of its own (its resources carry its name as their owner tag)
//! and is planned, deployed and destroyed with [`Deployer::plan_environment`],
//! [`Deployer::deploy_environment`] and [`Deployer::destroy_environment`].
//!
//! A service of the environment is a [`Stack`] placed in it ([`Environment::service`]): its
//! name is `<environment>-<service>`, and it owns its task definition, ECS service, target
//! group and listener rules, roles, repository, scaling, alarms and log group — never
//! anything of the environment's or of another service's. It is deployed, planned and
//! destroyed as any stack ([`Deployer::deploy`] …), finding the environment by its tags.
//!
//! ```no_run
//! use ecs_facade::prelude::*;
//! use ecs_facade::service::routing::Route;
//!
//! # async fn example() -> Result<(), ecs_facade::Error> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let deployer = Deployer::new(&config);
//! let env = Environment::builder().name("shop").build();
//! deployer.deploy_environment(&env).await?;
//!
//! let api = ServiceSpec::builder()
//!     .task(TaskSpec::builder()
//!         .containers(vec![ContainerSpec::builder().name("api").image("nginx:1.27").ports(vec![8080]).build()])
//!         .build())
//!     .build();
//! let api = env.service("api", api, vec![Route::paths(["/api/*"])]);
//! let report = deployer.deploy(&api).await?;
//! println!("serving on {}", report.outputs.service.url.unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! [`Deployer::deploy`]: crate::Deployer::deploy

use std::time::Duration;

use ecs_core::graph::Graph;
use ecs_core::{Context, Plan, Problems, StackName, Tags};
use ecs_net::{ManagedVpc, Network, NetworkOutputs, NetworkSpec};
use ecs_service::environment::{EnvironmentOutputs, EnvironmentSpec};
use ecs_service::routing::Route;
use ecs_service::{EnvironmentPlacement, ServiceSpec};
use serde::Serialize;
use typed_builder::TypedBuilder;

use crate::deploy::{Deployer, Exclusion};
use crate::{DestroyReport, Error, Result, Stack};

/// An environment: the network, load balancers and cluster its services share. See the
/// [module](self) docs.
///
/// ```
/// use ecs_facade::Environment;
/// let env = Environment::builder().name("shop").build();
/// assert!(env.validate().is_ok());
/// assert!(env.network_spec().shared);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, TypedBuilder)]
#[non_exhaustive]
pub struct Environment {
    /// Its name: the owner tag of what it owns, and the prefix of its services' names.
    #[builder(setter(into))]
    pub name: String,
    /// Tags for every resource it owns (its services add their own).
    #[builder(default)]
    pub tags: Tags,
    /// The network (default: a managed VPC over two zones with one NAT gateway); it is
    /// always made an environment's ([`NetworkSpec::shared`]).
    #[builder(default, setter(strip_option))]
    pub network: Option<NetworkSpec>,
    /// The load balancers and the cluster (default: an internet-facing load balancer with
    /// HTTP on 80 answering 404, no internal one).
    #[builder(default = EnvironmentSpec::builder().build())]
    pub shared: EnvironmentSpec,
}

impl Environment {
    /// Its name, checked.
    pub fn stack_name(&self) -> std::result::Result<StackName, Problems> {
        crate::stack::checked_name(&self.name)
    }

    /// The network in effect: the given one (or a managed VPC), made an environment's, with
    /// the internet-facing load balancer's listener ports.
    pub fn network_spec(&self) -> NetworkSpec {
        let mut listener_ports: Vec<u16> = self
            .shared
            .load_balancer
            .iter()
            .flat_map(|f| f.listeners.iter().map(|l| l.port))
            .collect();
        listener_ports.sort();
        listener_ports.dedup();
        if listener_ports.is_empty() {
            listener_ports = vec![80];
        }
        let mut spec = self.network.clone().unwrap_or_else(|| {
            NetworkSpec::builder()
                .vpc(Network::Managed(ManagedVpc::default()))
                .container_port(80)
                .listener_ports(listener_ports.clone())
                .build()
        });
        spec.shared = true;
        spec
    }

    /// Every problem at once, each naming its field (`network.`…, `load_balancer.`…).
    pub fn validate(&self) -> std::result::Result<(), Problems> {
        let mut p = Problems::new();
        if let Err(e) = self.stack_name() {
            p.extend(e);
        }
        p.extend(self.tags.validate("tags"));
        if let Err(e) = self.network_spec().validate() {
            p.extend(e.iter().map(|x| {
                ecs_core::Problem::new(format!("network.{}", x.field), x.message.clone())
            }));
        }
        if let Err(e) = self.shared.validate() {
            p.extend(e);
        }
        let ports = self.network_spec().listener_ports;
        if let Some(front) = &self.shared.load_balancer {
            for (i, l) in front.listeners.iter().enumerate() {
                if !ports.contains(&l.port) {
                    p.push(
                        format!("load_balancer.listeners[{i}].port"),
                        format!("{} is not one of network.listener_ports {ports:?}: the load balancer's security group would block it", l.port),
                    );
                }
            }
        }
        p.into_result()
    }

    /// Its service `name` running `service`, taking the requests of `routes` from the
    /// internet-facing load balancer (none: a service without a public entry): a stack named
    /// `<environment>-<name>`, placed in the environment, with the environment's tags.
    pub fn service(&self, name: &str, mut service: ServiceSpec, routes: Vec<Route>) -> Stack {
        let mut placement = service.environment.take().unwrap_or_else(|| {
            EnvironmentPlacement::builder()
                .environment(self.name.clone())
                .build()
        });
        placement.environment = self.name.clone();
        if !routes.is_empty() {
            placement.routes = routes;
        }
        service.environment = Some(placement);
        Stack::builder()
            .name(format!("{}-{name}", self.name))
            .tags(self.tags.clone())
            .service(service)
            .build()
    }
}

/// What an environment's deploy made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentReport {
    /// The changes, as planned before applying.
    pub changes: Plan,
    /// The network.
    pub network: NetworkOutputs,
    /// The load balancers and the cluster.
    pub shared: EnvironmentOutputs,
    /// How long the deploy took.
    pub duration: Duration,
    /// The generation of the environment's lease the deploy held; `None` when the plan was
    /// empty (a no-op takes no lease).
    pub lease: Option<u64>,
}

impl Deployer {
    /// The changes deploying `env` would make (read-only).
    pub async fn plan_environment(&self, env: &Environment) -> Result<Plan> {
        let ctx = self.environment_context(env)?;
        Ok(Box::pin(self.plan_environment_with(&ctx, env)).await?.0)
    }

    /// The environment's plan, with what apply needs.
    async fn plan_environment_with(
        &self,
        ctx: &Context,
        env: &Environment,
    ) -> Result<(
        Plan,
        ecs_net::NetworkPlan,
        ecs_service::environment::EnvironmentState,
    )> {
        env.validate()?;
        let l = self.layers();
        let (network, state) = futures_util::try_join!(
            async { Ok::<_, Error>(l.network.plan(ctx, &env.network_spec()).await?) },
            async { Ok::<_, Error>(l.service.read_environment(ctx, &env.shared).await?) },
        )?;
        let outputs = network
            .known_outputs()
            .unwrap_or_else(NetworkOutputs::unknown);
        let front = l.service.plan_environment(&state, &outputs);
        let mut plan = network.changes().clone();
        plan.extend(front.changes().clone());
        Ok((plan, network, state))
    }

    /// Deploys `env` (create or update, idempotent): the network, then the load balancers
    /// and the cluster; waits for the NAT gateways its services pull images through. An
    /// unchanged environment makes no mutating call and takes no lease; otherwise the deploy
    /// holds the environment's lease and reads again under it.
    pub async fn deploy_environment(&self, env: &Environment) -> Result<EnvironmentReport> {
        Box::pin(self.deploy_environment_inner(env)).await
    }

    async fn deploy_environment_inner(&self, env: &Environment) -> Result<EnvironmentReport> {
        let ctx = self.environment_context(env)?;
        let start = ctx.clock().now();
        let (plan, network, state) = self.plan_environment_with(&ctx, env).await?;
        if plan.is_empty() {
            let outputs = self.apply_environment(&ctx, &network, &state).await?;
            return Ok(EnvironmentReport {
                changes: plan,
                network: outputs.0,
                shared: outputs.1,
                duration: ctx.clock().now() - start,
                lease: None,
            });
        }
        let services = self.services_exclusion(&ctx).await?;
        self.under_lease_ctx(ctx, "deploy", &services, |ctx, generation| async move {
            let (plan, network, state) = self.plan_environment_with(&ctx, env).await?;
            let (network, shared) = self.apply_environment(&ctx, &network, &state).await?;
            Ok(EnvironmentReport {
                changes: plan,
                network,
                shared,
                duration: ctx.clock().now() - start,
                lease: Some(generation),
            })
        })
        .await
    }

    /// The network, then the load balancers and cluster; the NAT wait beside them.
    async fn apply_environment(
        &self,
        ctx: &Context,
        network: &ecs_net::NetworkPlan,
        state: &ecs_service::environment::EnvironmentState,
    ) -> Result<(NetworkOutputs, EnvironmentOutputs)> {
        let l = self.layers();
        network.check_replacements()?;
        if let Some(outputs) = network.known_outputs() {
            l.service
                .check_environment_replacements(&l.service.plan_environment(state, &outputs))?;
        }
        let mut g = Graph::<Error>::new();
        let made = g
            .step("network")
            .reports_itself()
            .run(move |_| async move { Ok::<_, Error>(l.network.apply(ctx, network).await?) });
        let front = g
            .step("load balancers and cluster")
            .after(made)
            .reports_itself()
            .run(move |i| async move {
                let plan = l.service.plan_environment(state, i.get(made));
                Ok::<_, Error>(l.service.apply_environment(ctx, &plan).await?)
            });
        let nat = g
            .step("NAT gateways")
            .after(made)
            .reports_itself()
            .run(move |i| async move {
                match network.is_empty() {
                    true => Ok::<_, Error>(()),
                    false => Ok(l
                        .network
                        .wait_ready(ctx, i.get(made), Duration::from_secs(600))
                        .await?),
                }
            });
        let out = g.run(ctx).await?;
        let _: &() = out.get(nat);
        Ok((out.get(made).clone(), out.get(front).clone()))
    }

    /// The services in the environment's cluster, by name.
    pub async fn environment_services(&self, env: &Environment) -> Result<Vec<String>> {
        let ctx = self.environment_context(env)?;
        Ok(self.layers().service.environment_services(&ctx).await?)
    }

    /// What [`destroy_environment`](Self::destroy_environment) would delete.
    pub async fn plan_destroy_environment(&self, env: &Environment) -> Result<DestroyReport> {
        let ctx = self.environment_context(env)?;
        let l = self.layers();
        let (front, network) = futures_util::try_join!(
            async { Ok::<_, Error>(l.service.plan_destroy_environment(&ctx).await?) },
            async { Ok::<_, Error>(l.network.plan_destroy(&ctx).await?) },
        )?;
        let mut deleted = front;
        deleted.extend(network);
        Ok(DestroyReport {
            deleted,
            kept: Vec::new(),
        })
    }

    /// Deletes everything the environment owns: its load balancers and cluster, then its
    /// network. Refused before any change ([`ecs_service::Error::EnvironmentInUse`], with the
    /// list of services) while any service runs in its cluster.
    pub async fn destroy_environment(&self, env: &Environment) -> Result<DestroyReport> {
        env.validate()?;
        let ctx = self.environment_context(env)?;
        // Refused before the lease is even taken, and again under it.
        let services = self.layers().service.environment_services(&ctx).await?;
        if !services.is_empty() {
            return Err(ecs_service::Error::EnvironmentInUse {
                environment: env.name.clone(),
                services,
            }
            .into());
        }
        // No service in its cluster: no service's run to wait for.
        let excluding = Exclusion::Services(Vec::new());
        Box::pin(
            self.under_lease_ctx(ctx, "destroy", &excluding, |ctx, _| async move {
                let l = self.layers();
                // Checked again under the lease (a service made meanwhile).
                let mut deleted = l.service.destroy_environment(&ctx).await?;
                deleted.extend(l.network.destroy(&ctx).await?);
                Ok(DestroyReport {
                    deleted,
                    kept: Vec::new(),
                })
            }),
        )
        .await
    }

    /// Releases the environment's own lease for an operator, when the run that held it is
    /// gone (see [`Deployer::unlock`]); its services' leases are their own. Returns who held
    /// it, or `None` when nobody did.
    pub async fn unlock_environment(
        &self,
        env: &Environment,
    ) -> Result<Option<ecs_core::lease::Holder>> {
        self.unlock_ctx(&self.environment_context(env)?).await
    }

    /// The runs an environment's write waits for: those of its services (in its cluster).
    async fn services_exclusion(&self, ctx: &Context) -> Result<Exclusion> {
        let services = self.layers().service.environment_services(ctx).await?;
        Ok(Exclusion::Services(
            services
                .into_iter()
                .filter_map(|s| StackName::new(s).ok())
                .collect(),
        ))
    }

    fn environment_context(&self, env: &Environment) -> Result<Context> {
        env.stack_name()?;
        self.context_of(&env.name, &env.tags)
    }
}
