//! The service layer of `ecs-facade`: the ECR repository, the IAM execution and task roles,
//! the ECS cluster, the task definition, the application load balancer (target group,
//! listeners, rules) and the Fargate service, with safe rollouts.
//!
//! It takes the network from `ecs-net` as plain typed values ([`ecs_net::NetworkOutputs`]:
//! subnets and security groups), so it works over any network. It follows the project's
//! reconcile model: [`ServiceLayer::plan`] reads what exists under the stack's deterministic
//! names (refusing anything without the stack's `ecs:stack` tag) and diffs it against the
//! [`ServiceSpec`]; [`ServiceLayer::apply`] carries out exactly that plan, concurrently where
//! nothing depends on something else, and waits for the service's rollout, failing with the
//! reasons when ECS fails it or the circuit breaker rolls it back. An unchanged spec makes no
//! mutating call; a changed image makes one `RegisterTaskDefinition` and one `UpdateService`.
//!
//! # Example
//!
//! ```no_run
//! use ecs_core::{Context, Event, StackName};
//! use ecs_service::{ContainerSpec, LoadBalancerSpec, ServiceLayer, ServiceSpec, TaskSpec};
//!
//! # async fn example(network: ecs_net::NetworkOutputs) -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let ctx = Context::builder()
//!     .stack(StackName::new("web")?)
//!     .events(|e: Event| eprintln!("{e}"))
//!     .build();
//! let spec = ServiceSpec::builder()
//!     .task(TaskSpec::builder()
//!         .cpu(512)
//!         .memory(1024)
//!         .containers(vec![ContainerSpec::builder().name("web").image("nginx:1.27").ports(vec![8080]).build()])
//!         .build())
//!     .load_balancer(LoadBalancerSpec::https("arn:aws:acm:us-east-1:123456789012:certificate/abc"))
//!     .build();
//!
//! let layer = ServiceLayer::new(&config);
//! layer.verify(&ctx, &spec).await?;
//! let plan = layer.plan(&ctx, &spec, &network).await?;
//! println!("{plan}");
//! let outputs = layer.apply(&ctx, &plan).await?;
//! println!("serving on {}", outputs.url.unwrap_or_default());
//!
//! layer.destroy(&ctx, &spec, false).await?;
//! # Ok(()) }
//! ```

mod cluster;
mod ecr;
pub mod environment;
mod error;
mod exec;
mod iam;
mod lb;
mod names;
mod release;
pub mod routing;
mod service;
mod spec;
mod tagging;
mod taskdef;

use std::fmt;
use std::time::Duration;

use ecs_core::graph::{Dep, Graph, Step};
use ecs_core::resource::{self, Known, Resource};
use ecs_core::{Action, Change, Context, Plan, Problems, TagDiff};
use ecs_net::NetworkOutputs;

use tagging::StackTags;

pub use ecr::{EcrImage, ImageLookup, RegistryLogin};
pub use error::{Error, Result};
pub use exec::{ExecRequest, ExecSession};
pub use names::ServiceNames;
pub use release::{release_policy, ImageRelease, ReleasePlan, ReleaseReport};
pub use service::RolloutReport;
pub use spec::{
    default_log_group, fargate_memory_options, is_secret_arn, AccessLogs, Architecture,
    CapacityProvider, ClusterSpec, ContainerHealthCheck, ContainerSpec, Effect, EfsVolume,
    Environment, EnvironmentPlacement, HealthCheckSpec, IamSpec, ListenerAction, ListenerSpec,
    LoadBalancerSpec, MountPoint, PolicyStatement, PropagateTags, Protocol, RepositorySpec,
    RolloutSpec, RuleSpec, SecretRef, ServiceSettings, ServiceSpec, StrategyItem, TargetGroupSpec,
    TaskSpec, Ulimit, DEFAULT_TLS_POLICY,
};
pub use taskdef::RUNNING_IMAGE;

/// The SDK clients the layer uses.
#[derive(Debug, Clone)]
pub struct ServiceClients {
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// Elastic Load Balancing v2.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// EC2 (only to wait for the load balancer's network interfaces to go away on destroy).
    pub ec2: aws_sdk_ec2::Client,
}

impl ServiceClients {
    /// Clients built from one SDK configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            ecr: aws_sdk_ecr::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
        }
    }
}

/// What the service layer gives the layers above it and the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ServiceOutputs {
    /// The names of every resource.
    pub names: ServiceNames,
    /// The ECR repository's URI (push images here), when the spec has a repository.
    pub repository_uri: Option<String>,
    /// The execution role's ARN.
    pub execution_role_arn: String,
    /// The task role's ARN.
    pub task_role_arn: String,
    /// The cluster's ARN.
    pub cluster_arn: String,
    /// The task definition revision the service runs.
    pub task_definition_arn: String,
    /// The service's ARN.
    pub service_arn: String,
    /// The load balancer's ARN, when there is one.
    pub load_balancer_arn: Option<String>,
    /// The load balancer's DNS name.
    pub load_balancer_dns: Option<String>,
    /// The target group's ARN.
    pub target_group_arn: Option<String>,
    /// The URL the service answers on (HTTPS when there is an HTTPS listener).
    pub url: Option<String>,
    /// The deployment the create or update started, when there was one (see
    /// [`ServiceLayer::wait_for_rollout`]).
    pub deployment: Option<String>,
    /// The rollout waited for, when `apply` started one and waited.
    pub rollout: Option<RolloutReport>,
}

#[derive(Debug, Clone, PartialEq)]
struct Live {
    repo: Option<ecr::LiveRepo>,
    execution_role: Option<iam::LiveRole>,
    task_role: Option<iam::LiveRole>,
    cluster: Option<cluster::LiveCluster>,
    taskdef: Option<taskdef::LiveTaskDef>,
    /// How many active revisions the family has (read for destroy only, else 0).
    revisions: usize,
    lb: lb::LiveLb,
    service: Option<service::LiveService>,
    /// A service of an environment: the environment's load balancer as read, with the
    /// service's rules and target group on it.
    shared: lb::shared::LiveShared,
    /// The priorities of the service's routes there (allocated when it was read).
    priorities: Vec<u32>,
}

impl Live {
    /// The load balancer in front of the service, when it exists: its own, or (a service of
    /// an environment with routes) the environment's.
    fn existing_load_balancer_arn(&self) -> Option<&str> {
        self.lb
            .lb
            .as_ref()
            .or(self
                .shared
                .lb
                .as_ref()
                .filter(|_| !self.priorities.is_empty()))
            .map(|l| l.arn.as_str())
    }

    /// The service's target group, when it exists.
    fn existing_target_group_arn(&self) -> Option<&str> {
        self.lb
            .tg
            .as_ref()
            .or(self.shared.tg.as_ref())
            .map(|t| t.arn.as_str())
    }
}

/// What [`ServiceLayer::apply_foundation`] made, so that `apply` does not make it again.
#[derive(Debug, Clone, PartialEq)]
struct Foundation {
    repository_uri: Option<String>,
    execution_role_arn: String,
    task_role_arn: String,
    task_definition_arn: String,
    cluster_arn: String,
}

/// What [`ServiceLayer::read`] saw of the layer's resources. It needs no network, so a
/// caller reads it while the network is still being read or built, then turns it into a
/// plan with [`ServiceLayer::plan_with`] once the network's outputs are known.
#[derive(Debug, Clone)]
pub struct ServiceState {
    names: ServiceNames,
    spec: ServiceSpec,
    region: String,
    tags: tagging::StackTags,
    live: Live,
    foundation: Option<Foundation>,
}

impl ServiceState {
    /// The resources' names.
    pub fn names(&self) -> &ServiceNames {
        &self.names
    }

    /// The load balancer's ARN, when it exists already.
    pub fn existing_load_balancer_arn(&self) -> Option<&str> {
        self.live.existing_load_balancer_arn()
    }

    /// The target group's ARN, when it exists already.
    pub fn existing_target_group_arn(&self) -> Option<&str> {
        self.live.existing_target_group_arn()
    }

    /// Whether the ECS service exists already.
    pub fn service_exists(&self) -> bool {
        self.live.service.is_some()
    }

    /// Leaves a live count below the scaling range alone (see
    /// [`ServiceSettings::autoscaled_min`]): for a caller that knows the count is already
    /// autoscaling's (its scalable target is registered; an operator may have set 0 tasks
    /// with scaling suspended).
    pub fn keep_autoscaled_count(&mut self) {
        self.spec.service.autoscaled_min = 0;
    }
}

/// The result of [`ServiceLayer::plan`]: what exists, what the spec wants and the changes.
/// Pass it to [`ServiceLayer::apply`].
#[derive(Debug, Clone)]
pub struct ServicePlan {
    names: ServiceNames,
    spec: ServiceSpec,
    network: NetworkOutputs,
    region: String,
    tags: tagging::StackTags,
    live: Live,
    foundation: Option<Foundation>,
    changes: Plan,
}

impl ServicePlan {
    /// The changes, resource by resource.
    pub fn changes(&self) -> &Plan {
        &self.changes
    }

    /// The resources' names.
    pub fn names(&self) -> &ServiceNames {
        &self.names
    }

    /// The load balancer's ARN, when it exists already.
    pub fn existing_load_balancer_arn(&self) -> Option<&str> {
        self.live.existing_load_balancer_arn()
    }

    /// The target group's ARN, when it exists already.
    pub fn existing_target_group_arn(&self) -> Option<&str> {
        self.live.existing_target_group_arn()
    }
}

/// The service's state, for status displays.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ServiceStatus {
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// Tasks running.
    pub running: i32,
    /// Tasks pending.
    pub pending: i32,
    /// Tasks desired.
    pub desired: i32,
    /// The task definition the service runs.
    pub task_definition: String,
    /// Deployments: id, status (`PRIMARY`/`ACTIVE`), rollout state and reason.
    pub deployments: Vec<DeploymentStatus>,
    /// Target health of the load balancer's targets: healthy, unhealthy, other.
    pub targets: Option<(usize, usize, usize)>,
    /// The most recent service events, newest first.
    pub events: Vec<String>,
}

/// One deployment of the service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DeploymentStatus {
    /// Its id.
    pub id: String,
    /// `PRIMARY` or `ACTIVE`.
    pub status: String,
    /// Its task definition.
    pub task_definition: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub rollout_state: String,
    /// Why.
    pub reason: String,
    /// Tasks running, pending, desired and failed.
    pub counts: (i32, i32, i32, i32),
}

impl fmt::Display for ServicePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.changes, f)
    }
}

/// What [`ServiceLayer::destroy`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DestroyReport {
    /// What was deleted.
    pub deleted: Plan,
    /// What was kept on purpose (the ECR repository and its images unless forced).
    pub kept: Vec<String>,
}

/// The service layer, over SDK clients the caller provides.
#[derive(Debug, Clone)]
pub struct ServiceLayer {
    clients: ServiceClients,
}

impl ServiceLayer {
    /// A layer using clients built from `config`.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self::from_clients(ServiceClients::new(config))
    }

    /// A layer using these clients (for custom configuration, interceptors or mocks).
    pub fn from_clients(clients: ServiceClients) -> Self {
        Self { clients }
    }

    /// The region the layer's clients call (`us-east-1` when none is configured).
    pub fn region(&self) -> String {
        ecs_core::region_or_default(self.clients.ecs.config().region())
    }

    async fn observe(
        &self,
        ctx: &Context,
        names: &ServiceNames,
        spec: &ServiceSpec,
    ) -> Result<Live> {
        let c = &self.clients;
        let repo = async {
            match spec.repository {
                Some(_) => ecr::observe(ctx, &c.ecr, &names.repository).await,
                None => Ok(None),
            }
        };
        // A service of an environment reads the environment's load balancer with its own
        // rules and target group on it; a service on its own, its own load balancer.
        let placement = spec.environment.as_ref();
        let own_lb = async {
            match placement {
                Some(_) => Ok(lb::LiveLb::default()),
                None => lb::observe(ctx, &c.elb, names).await,
            }
        };
        let shared = async {
            match placement {
                Some(_) => {
                    lb::shared::observe(ctx, &c.elb, &names.load_balancer, &names.target_group)
                        .await
                }
                None => Ok(lb::shared::LiveShared::default()),
            }
        };
        // A service of an environment that ran as a stack of its own (its own cluster,
        // called after it) would leave that stack behind: refused.
        let standalone = async {
            match placement {
                Some(_) => cluster::observe(ctx, &c.ecs, ctx.stack().as_str()).await,
                None => Ok(None),
            }
        };
        // Boxed: the joined futures are large, and debug builds run them on small stacks.
        let (repo, execution_role, task_role, cluster, taskdef, (lb, shared, standalone), service) =
            futures_util::try_join!(
                Box::pin(repo),
                Box::pin(iam::observe(ctx, &c.iam, &names.execution_role)),
                Box::pin(iam::observe(ctx, &c.iam, &names.task_role)),
                Box::pin(cluster::observe(ctx, &c.ecs, &names.cluster)),
                Box::pin(taskdef::describe(ctx, &c.ecs, &names.family)),
                Box::pin(async { futures_util::try_join!(own_lb, shared, standalone) }),
                Box::pin(service::observe(
                    ctx,
                    &c.ecs,
                    &names.cluster,
                    &names.service
                )),
            )?;
        if let Some(live) = &repo {
            owned_or_conflict::<ecr::Repository<'_>>(ctx, &names.repository, live)?;
        }
        for (name, role) in [
            (&names.execution_role, &execution_role),
            (&names.task_role, &task_role),
        ] {
            if let Some(live) = role {
                owned_or_conflict::<iam::Role>(ctx, name, live)?;
            }
        }
        match placement {
            // The environment's cluster must exist and be the environment's.
            Some(p) => {
                if standalone
                    .as_ref()
                    .is_some_and(|c| resource::owned::<cluster::Cluster<'_>>(ctx, c))
                {
                    return Err(Error::Placement(format!(
                        "stack `{}` runs on its own (its cluster `{}` exists): destroy it before deploying it into environment `{}`",
                        ctx.stack(),
                        ctx.stack(),
                        p.environment
                    )));
                }
                let env_owned = cluster.as_ref().is_some_and(|c| {
                    c.tags.get(ecs_core::OWNER_TAG) == Some(p.environment.as_str())
                });
                if !env_owned {
                    return Err(Error::EnvironmentMissing {
                        environment: p.environment.clone(),
                        missing: format!("{} {}", cluster::KIND, names.cluster),
                    });
                }
                lb::shared::check_owned(
                    ctx,
                    &p.environment,
                    &names.load_balancer,
                    &shared,
                    !p.routes.is_empty(),
                )?;
            }
            None => {
                if let Some(live) = &cluster {
                    owned_or_conflict::<cluster::Cluster<'_>>(ctx, &names.cluster, live)?;
                }
            }
        }
        // The family is the stack's when the stack's own service runs one of its revisions,
        // even one registered outside the stack.
        let runs = service
            .as_ref()
            .filter(|s| resource::owned::<service::Service<'_>>(ctx, s))
            .map(|s| s.task_definition.as_str());
        let taskdef = taskdef::resolve(ctx, &c.ecs, &names.family, taskdef, runs).await?;
        if let Some(live) = &taskdef {
            resource::check_owned::<taskdef::TaskDef>(ctx, &names.family, live).map_err(|_| {
                resource::Foreign::new(ctx, taskdef::KIND, &names.family, taskdef::NOT_OWNED)
            })?;
        }
        lb::check_owned(ctx, &lb)?;
        if let Some(live) = &service {
            owned_or_conflict::<service::Service<'_>>(ctx, &names.service, live)?;
        }
        // Priorities for the routes, refused before any change on a conflict.
        let priorities = match placement.filter(|p| !p.routes.is_empty()) {
            Some(p) => {
                let allocation = shared.allocate(&names.target_group, &p.routes)?;
                if let Some(warning) = &allocation.warning {
                    ctx.emit(ecs_core::Event::Progress {
                        resource: format!("load-balancer {}", names.load_balancer),
                        message: format!("warning: {warning}"),
                    });
                }
                allocation.priorities
            }
            None => Vec::new(),
        };
        Ok(Live {
            repo,
            execution_role,
            task_role,
            cluster,
            taskdef,
            revisions: 0,
            lb,
            service,
            shared,
            priorities,
        })
    }

    /// Validates the spec (every problem at once, before any AWS call), reads what exists and
    /// returns the changes `apply` would make. Makes no change. The same as
    /// [`read`](Self::read) followed by [`plan_with`](Self::plan_with).
    pub async fn plan(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        network: &NetworkOutputs,
    ) -> Result<ServicePlan> {
        let state = self.read(ctx, spec).await?;
        Ok(self.plan_with(&state, network))
    }

    /// Validates the spec (every problem at once, before any AWS call) and reads every
    /// resource of the layer concurrently. Needs no network: a deploy reads this while it
    /// reads (or builds) the network. Makes no change.
    ///
    /// ```no_run
    /// # async fn example(layer: ecs_service::ServiceLayer, ctx: ecs_core::Context, spec: ecs_service::ServiceSpec, network: ecs_net::NetworkOutputs) -> ecs_service::Result<()> {
    /// let state = layer.read(&ctx, &spec).await?;
    /// // ... the network is read or built meanwhile ...
    /// let plan = layer.plan_with(&state, &network);
    /// println!("{plan}");
    /// # Ok(()) }
    /// ```
    pub async fn read(&self, ctx: &Context, spec: &ServiceSpec) -> Result<ServiceState> {
        let mut problems = ctx.tags().validate("tags");
        if let Err(p) = spec.validate() {
            problems.extend(p);
        }
        problems.into_result()?;
        let names = ServiceNames::new(ctx.stack(), spec);
        let region = self.region();
        let live = Box::pin(self.observe(ctx, &names, spec)).await?;
        let spec = with_running_images(spec, &names, &live)?;
        Ok(ServiceState {
            names,
            spec,
            region,
            tags: tagging::StackTags::new(ctx),
            live,
            foundation: None,
        })
    }

    /// The changes `apply` would make to what [`read`](Self::read) saw, on `network`. Makes
    /// no AWS call. What [`apply_foundation`](Self::apply_foundation) already made shows
    /// as it was read (e.g. a created role as `Create`) and is not made again by `apply`.
    pub fn plan_with(&self, state: &ServiceState, network: &NetworkOutputs) -> ServicePlan {
        let changes = changes(
            &state.names,
            &state.spec,
            network,
            &state.region,
            &state.tags,
            &state.live,
        );
        ServicePlan {
            names: state.names.clone(),
            spec: state.spec.clone(),
            network: network.clone(),
            region: state.region.clone(),
            tags: state.tags.clone(),
            live: state.live.clone(),
            foundation: state.foundation.clone(),
            changes,
        }
    }

    /// Carries out `plan`: the repository, the roles (then the task definition), the cluster
    /// and the load balancer concurrently, then the service; then waits for the rollout
    /// unless the spec says not to. Fails before any change when the plan replaces something.
    pub async fn apply(&self, ctx: &Context, plan: &ServicePlan) -> Result<ServiceOutputs> {
        self.apply_after(ctx, plan, std::future::ready(true)).await
    }

    /// Like [`apply`](Self::apply), but creates or updates the service only once `gate` has
    /// resolved to `true`, while everything before it (the repository, the roles, the task
    /// definition, the cluster, the load balancer) goes ahead at once. A caller passes, for
    /// example, the outcome of the wait for the NAT gateways the tasks pull their images
    /// through, run beside this call and signalled through a channel, so that the load
    /// balancer provisions meanwhile. `gate` is polled from the start: when it resolves to
    /// `false` (what the service waits for failed), no further step starts, the steps in
    /// flight run to their end, the service is not touched, and the apply fails with
    /// [`Error::GateClosed`]. Nothing is abandoned half-way.
    ///
    /// ```no_run
    /// # async fn example(layer: ecs_service::ServiceLayer, net: ecs_net::NetworkLayer, ctx: ecs_core::Context, plan: ecs_service::ServicePlan, network: ecs_net::NetworkOutputs) -> Result<(), Box<dyn std::error::Error>> {
    /// let (ready, gate) = tokio::sync::oneshot::channel::<bool>();
    /// let nat_wait = async {
    ///     let waited = net.wait_ready(&ctx, &network, std::time::Duration::from_secs(600)).await;
    ///     let _ = ready.send(waited.is_ok());
    ///     waited
    /// };
    /// let apply = layer.apply_after(&ctx, &plan, async { gate.await.unwrap_or(false) });
    /// // Both run to their end; the wait's error, if any, is the one to report.
    /// let (waited, applied) = futures_util::join!(nat_wait, apply);
    /// waited?;
    /// let outputs = applied?;
    /// # Ok(()) }
    /// ```
    pub async fn apply_after<G>(
        &self,
        ctx: &Context,
        plan: &ServicePlan,
        gate: G,
    ) -> Result<ServiceOutputs>
    where
        G: std::future::Future<Output = bool> + Send,
    {
        use futures_util::FutureExt;
        refuse_replacements(&plan.changes)?;
        let c = &self.clients;
        let (spec, names, live, net) = (&plan.spec, &plan.names, &plan.live, &plan.network);
        // One graph: the foundation (unless `apply_foundation` made it) and the load balancer
        // at once; the service after both, and once `gate` has completed; then, when the load
        // balancer left the spec, its teardown.
        let lb_want = spec
            .load_balancer
            .as_ref()
            .map(|lb_spec| desired_lb(names, spec, lb_spec, net, &plan.tags));
        let shared_want = desired_shared(names, spec, net, &plan.tags, live);
        let svc_want =
            service::desired(spec, names, &net.private_subnets, &net.task_sg, &plan.tags);
        let mut g = Graph::<Error>::new();
        let foundation = match &plan.foundation {
            Some(f) => {
                let f = f.clone();
                g.step("foundation (made already)")
                    .run(move |_| async move { Ok(f) })
            }
            None => self.add_foundation(
                &mut g,
                ctx,
                names,
                spec,
                &plan.region,
                &plan.tags,
                live,
                &plan.changes,
            ),
        };
        let load_balancer = match (&lb_want, &shared_want) {
            (Some(d), _) => Some(lb::add_steps(
                &mut g,
                ctx,
                &c.elb,
                d,
                &live.lb,
                &plan.changes,
            )),
            (None, Some(d)) => Some(lb::shared::add_steps(
                &mut g,
                ctx,
                &c.elb,
                d,
                &live.shared,
                &plan.changes,
            )),
            (None, None) => None,
        };
        let svc_want = &svc_want;
        // The caller's gate, once what the service uses is ready (so that a failure before
        // it never waits for the gate); while it is pending the service is not touched.
        // The gate both opens the service's step and, when it closes, stops the graph (polled
        // from the start, so the steps in flight finish and no other starts).
        let gate = gate.shared();
        let closed = {
            let gate = gate.clone();
            let service = names.service.clone();
            async move {
                if gate.await {
                    std::future::pending::<()>().await;
                }
                Error::GateClosed { service }
            }
        };
        let gate = g
            .step(format!("{} {} gate", service::KIND, names.service))
            .after(foundation)
            .after_all(load_balancer)
            // A closed gate is the caller's failure, reported by the caller. It only waits: a
            // graph that failed meanwhile does not wait for it.
            .reports_itself()
            .abandonable()
            .run(move |_| async move {
                if gate.await {
                    Ok(())
                } else {
                    Err(Error::GateClosed {
                        service: names.service.clone(),
                    })
                }
            });
        let applied = g
            .step(format!("{} {}", service::KIND, names.service))
            .after(foundation)
            .after_all(load_balancer)
            .after(gate)
            .action_if(
                plan.changes
                    .find(service::KIND, &names.service)
                    .and_then(|c| c.action.verb()),
            )
            .converge(
                ctx,
                &c.ecs,
                service::comparable(live.service.as_ref()),
                move |i| service::Service {
                    want: svc_want,
                    task_definition: Known::Known(i.get(foundation).task_definition_arn.clone()),
                    tg_arn: load_balancer.and_then(|l| i.get(l).tg_arn.clone()),
                    after_draining: live.service.as_ref().is_some_and(|l| l.draining),
                },
            );
        if spec.load_balancer.is_none() && (live.lb.lb.is_some() || live.lb.tg.is_some()) {
            // The load balancer left the spec: it goes once the service no longer uses it.
            lb::teardown(
                &mut g,
                ctx,
                &c.elb,
                &c.ec2,
                &live.lb,
                vec![applied.into()],
                vec![applied.into()],
            );
        }
        if spec.environment.is_some() && shared_want.is_none() {
            // The routes left the spec: the rules go at once, the target group once the
            // service no longer uses it.
            lb::shared::teardown(
                &mut g,
                ctx,
                &c.elb,
                &live.shared,
                Vec::new(),
                vec![applied.into()],
            );
        }
        let out = g.run_until(ctx, closed).await?;
        let Foundation {
            repository_uri,
            execution_role_arn,
            task_role_arn,
            task_definition_arn,
            cluster_arn,
        } = out.get(foundation).clone();
        let lb_out = load_balancer.map(|l| out.get(l).clone());
        let tg_arn = lb_out.as_ref().and_then(|l| l.tg_arn.as_deref());
        let applied = out.get(applied).clone();
        // The deployment the create or update started; asked for when the response did not
        // name it.
        let wait = applied.changed && spec.service.rollout.wait;
        let deployment = match (&applied.deployment, wait) {
            (Some(d), _) => Some(d.clone()),
            (None, true) => {
                service::primary_deployment(ctx, &c.ecs, &names.cluster, &names.service).await?
            }
            (None, false) => None,
        };
        let rollout = match deployment.as_ref().filter(|_| wait) {
            Some(deployment) => Some(
                service::wait_rollout(
                    ctx,
                    &c.ecs,
                    tg_arn.map(|tg| (&c.elb, tg)),
                    &names.cluster,
                    &names.service,
                    deployment,
                    &task_definition_arn,
                    Duration::from_secs(spec.service.rollout.timeout),
                )
                .await?,
            ),
            None => None,
        };
        let https = spec
            .load_balancer
            .as_ref()
            .and_then(|l| l.listeners.iter().find(|l| l.protocol == Protocol::Https));
        let url = match (&spec.environment, &lb_out) {
            (Some(p), Some(l)) => Some(lb::shared::url(&p.routes, &l.dns_name, &live.shared)),
            _ => None,
        };
        let url = url.or_else(|| {
            lb_out.as_ref().map(|l| match https {
                Some(h) if h.port == 443 => format!("https://{}/", l.dns_name),
                Some(h) => format!("https://{}:{}/", l.dns_name, h.port),
                None => {
                    let port = spec
                        .load_balancer
                        .as_ref()
                        .and_then(|l| l.listeners.first())
                        .map_or(80, |l| l.port);
                    if port == 80 {
                        format!("http://{}/", l.dns_name)
                    } else {
                        format!("http://{}:{port}/", l.dns_name)
                    }
                }
            })
        });
        Ok(ServiceOutputs {
            names: names.clone(),
            repository_uri,
            execution_role_arn,
            task_role_arn,
            cluster_arn,
            task_definition_arn,
            service_arn: applied.arn,
            load_balancer_arn: lb_out.as_ref().map(|l| l.lb_arn.clone()),
            load_balancer_dns: lb_out.as_ref().map(|l| l.dns_name.clone()),
            target_group_arn: lb_out.as_ref().and_then(|l| l.tg_arn.clone()),
            url,
            deployment,
            rollout,
        })
    }

    /// Waits for `deployment` (from [`ServiceOutputs::deployment`]) to complete, as `apply`
    /// does when the spec's `rollout.wait` is on: for callers that apply without waiting and
    /// do other work meanwhile.
    pub async fn wait_for_rollout(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        outputs: &ServiceOutputs,
        deployment: &str,
    ) -> Result<RolloutReport> {
        let c = &self.clients;
        service::wait_rollout(
            ctx,
            &c.ecs,
            outputs.target_group_arn.as_deref().map(|tg| (&c.elb, tg)),
            &outputs.names.cluster,
            &outputs.names.service,
            deployment,
            &outputs.task_definition_arn,
            Duration::from_secs(spec.service.rollout.timeout),
        )
        .await
    }

    /// Fails with [`Error::ReplacementRequired`] when `apply` of a plan made from `state`
    /// would refuse it, so that a caller can refuse before it changes anything else (the
    /// network, say). `network` is the network's outputs when they are known already; with
    /// `None` (the network is still to be made) what depends on it is not checked, and the
    /// target group is taken to stay in its VPC. Makes no AWS call.
    pub fn check_replacements(
        &self,
        state: &ServiceState,
        network: Option<&NetworkOutputs>,
    ) -> Result<()> {
        let assumed;
        let network = match network {
            Some(n) => n,
            None => {
                assumed = NetworkOutputs {
                    vpc_id: state.live.lb.tg.as_ref().map_or_else(
                        || ecs_net::KNOWN_AFTER_APPLY.to_string(),
                        |t| t.vpc_id.clone(),
                    ),
                    ..NetworkOutputs::unknown()
                };
                &assumed
            }
        };
        refuse_replacements(&changes(
            &state.names,
            &state.spec,
            network,
            &state.region,
            &state.tags,
            &state.live,
        ))
    }

    /// Creates or updates what does not depend on the network — the repository, the roles,
    /// the task definition and the cluster — from what [`read`](Self::read) saw, so that a
    /// caller can do it while the network is still being built. Records what it made in
    /// `state`: a plan made from it with [`plan_with`](Self::plan_with) still shows these
    /// changes, and its `apply` does not make them again. Makes no read of its own.
    ///
    /// ```no_run
    /// # async fn example(layer: ecs_service::ServiceLayer, ctx: ecs_core::Context, spec: ecs_service::ServiceSpec, network: impl std::future::Future<Output = ecs_net::NetworkOutputs>) -> ecs_service::Result<()> {
    /// let mut state = layer.read(&ctx, &spec).await?;
    /// let (network, ()) = futures_util::join!(network, async {
    ///     layer.apply_foundation(&ctx, &mut state).await.expect("the foundation");
    /// });
    /// let outputs = layer.apply(&ctx, &layer.plan_with(&state, &network)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn apply_foundation(&self, ctx: &Context, state: &mut ServiceState) -> Result<()> {
        if state.foundation.is_some() {
            return Ok(());
        }
        let (foundation, _) = foundation_changes(
            &state.names,
            &state.spec,
            &state.region,
            &state.tags,
            &state.live,
        );
        refuse_replacements(&foundation)?;
        let mut g = Graph::<Error>::new();
        let made = self.add_foundation(
            &mut g,
            ctx,
            &state.names,
            &state.spec,
            &state.region,
            &state.tags,
            &state.live,
            &foundation,
        );
        let out = g.run(ctx).await?;
        state.foundation = Some(out.get(made).clone());
        Ok(())
    }

    /// Adds to `g` the steps of the foundation — the repository, each role, the task
    /// definition (after both roles, for their ARNs) and the cluster — and one that gathers
    /// what they made.
    #[allow(clippy::too_many_arguments)]
    fn add_foundation<'a>(
        &'a self,
        g: &mut Graph<'a, Error>,
        ctx: &'a Context,
        names: &'a ServiceNames,
        spec: &'a ServiceSpec,
        region: &'a str,
        tags: &StackTags,
        live: &'a Live,
        changes: &'a Plan,
    ) -> Step<Foundation> {
        let c = &self.clients;
        let verb = |kind: &str, id: &str| changes.find(kind, id).and_then(|c| c.action.verb());
        let repo = spec.repository.as_ref().map(|r| {
            let tags = tags.of(ecr::LOGICAL);
            g.step(format!("{} {}", ecr::KIND, names.repository))
                .action_if(verb(ecr::KIND, &names.repository))
                .converge(ctx, &c.ecr, live.repo.clone(), move |_| ecr::Repository {
                    name: &names.repository,
                    spec: r,
                    tags,
                })
        });
        let [exec_want, task_want] = iam::desired(names, spec, region);
        let [exec, task] = [
            (exec_want, live.execution_role.as_ref()),
            (task_want, live.task_role.as_ref()),
        ]
        .map(|(want, live)| {
            let tags = tags.of(want.logical);
            g.step(format!("{} {}", iam::KIND, want.name))
                .action_if(verb(iam::KIND, &want.name))
                .converge(ctx, &c.iam, live.cloned(), move |_| iam::Role {
                    want,
                    tags,
                })
        });
        // A new revision is registered, or the latest one's tags are set back.
        let td_action = changes
            .find(taskdef::KIND, &names.family)
            .and_then(|c| match &c.action {
                Action::NoChange => None,
                Action::Update(d) if d.iter().all(|f| f.field == TagDiff::FIELD) => Some("update"),
                _ => Some("register revision"),
            });
        let td_tags = tags.of(taskdef::LOGICAL);
        let taskdef = g
            .step(format!("{} {}", taskdef::KIND, names.family))
            .after(exec)
            .after(task)
            .action_if(td_action)
            .converge(ctx, &c.ecs, live.taskdef.clone(), move |i| {
                let (exec_arn, task_arn): (&String, &String) = (i.get(exec), i.get(task));
                taskdef::TaskDef {
                    want: taskdef::render(spec, names, region, exec_arn, task_arn),
                    tags: td_tags,
                }
            });
        let cluster_tags = tags.of(cluster::LOGICAL);
        let cluster = match (&spec.environment, &live.cluster) {
            // The environment's cluster, as read (the read checked it is there).
            (Some(_), Some(env_cluster)) => {
                let arn = env_cluster.arn.clone();
                g.step(format!(
                    "{} {} (the environment's)",
                    cluster::KIND,
                    names.cluster
                ))
                .reports_itself()
                .run(move |_| async move { Ok(arn) })
            }
            _ => g
                .step(format!("{} {}", cluster::KIND, names.cluster))
                .action_if(verb(cluster::KIND, &names.cluster))
                .converge(ctx, &c.ecs, live.cluster.clone(), move |_| {
                    cluster::Cluster {
                        name: &names.cluster,
                        spec: &spec.cluster,
                        tags: cluster_tags,
                    }
                }),
        };
        g.step("foundation")
            .after_all(repo)
            .after(exec)
            .after(task)
            .after(taskdef)
            .after(cluster)
            .run(move |i| {
                let made = Foundation {
                    repository_uri: repo.map(|r| i.get(r).clone()),
                    execution_role_arn: i.get(exec).clone(),
                    task_role_arn: i.get(task).clone(),
                    task_definition_arn: i.get(taskdef).arn.clone(),
                    cluster_arn: i.get(cluster).clone(),
                };
                async move { Ok(made) }
            })
    }

    /// Plans and applies: the whole job in one call.
    pub async fn deploy(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        network: &NetworkOutputs,
    ) -> Result<(Plan, ServiceOutputs)> {
        let plan = self.plan(ctx, spec, network).await?;
        let outputs = self.apply(ctx, &plan).await?;
        Ok((plan.changes, outputs))
    }

    /// Pre-flight checks, like ecspresso's `verify`: the spec is valid (Fargate CPU/memory
    /// pair, well-formed secret ARNs, the target group's container and port exist in the task
    /// definition), images in this account's ECR exist, an existing target group's port
    /// matches the container port, and existing roles trust `ecs-tasks.amazonaws.com`.
    /// Makes no change; reports every failed check at once.
    pub async fn verify(&self, ctx: &Context, spec: &ServiceSpec) -> Result<()> {
        spec.validate()?;
        let names = ServiceNames::new(ctx.stack(), spec);
        let c = &self.clients;
        let mut problems = Problems::new();
        // Only images in an ECR registry need the registry's address (and so a login call).
        let registry = if spec
            .task
            .containers
            .iter()
            .any(|c| c.image.contains(".dkr.ecr."))
        {
            ecr::login(ctx, &c.ecr).await?.registry
        } else {
            String::new()
        };
        let images =
            futures_util::future::try_join_all(spec.task.containers.iter().enumerate().map(
                |(i, container)| {
                    let registry = registry.clone();
                    async move {
                        let image = EcrImage::parse(&container.image).filter(|_| {
                            !registry.is_empty()
                                && container.image.starts_with(&format!("{registry}/"))
                        });
                        let Some(image) = image else {
                            return Ok::<_, Error>(None);
                        };
                        match image.lookup(ctx, &c.ecr).await? {
                            ImageLookup::Found => Ok(None),
                            ImageLookup::NoSuchImage => {
                                Ok(Some((i, "not found in ECR".to_string())))
                            }
                            ImageLookup::NoSuchRepository => Ok(Some((
                                i,
                                format!("not found in ECR (no repository `{}`)", image.repository),
                            ))),
                        }
                    }
                },
            ))
            .await?;
        for (i, why) in images.into_iter().flatten() {
            problems.push(
                format!("task.containers[{i}].image"),
                format!("{}: {why}", spec.task.containers[i].image),
            );
        }
        let (exec, task, live_lb) = futures_util::try_join!(
            iam::observe(ctx, &c.iam, &names.execution_role),
            iam::observe(ctx, &c.iam, &names.task_role),
            lb::observe(ctx, &c.elb, &names),
        )?;
        // A service of an environment reads the environment's load balancer: only its own
        // target group counts.
        let live_lb = match &spec.environment {
            Some(_) => lb::owned_only(ctx, live_lb),
            None => {
                lb::check_owned(ctx, &live_lb)?;
                live_lb
            }
        };
        for (field, name, role) in [
            ("iam.execution_role", &names.execution_role, exec),
            ("iam.task_role", &names.task_role, task),
        ] {
            if let Some(r) = role {
                owned_or_conflict::<iam::Role>(ctx, name, &r)?;
                if r.trust != iam::normalize(iam::trust_policy())
                    && !r.trust.to_string().contains(iam::TASKS_PRINCIPAL)
                {
                    problems.push(
                        field,
                        format!("{} cannot be assumed by {}", r.arn, iam::TASKS_PRINCIPAL),
                    );
                }
            }
        }
        if let (Some(tg), Some((container, port))) = (&live_lb.tg, spec.target()) {
            if tg.port != port {
                problems.push(
                    "load_balancer.target_group.port",
                    format!("target group {} sends traffic to port {}, but container `{}` listens on {port}", names.target_group, tg.port, container.name),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Verification(problems))
        }
    }

    /// Opens an ECS Exec session in a running task of the service (`ExecuteCommand`,
    /// interactive), for the Session Manager plugin: refused before any session is made when
    /// the service has exec off, runs no task, or has no such container.
    pub async fn exec(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        request: &ExecRequest,
    ) -> Result<ExecSession> {
        exec::open(ctx, &self.clients.ecs, spec, request).await
    }

    /// Returns the service to the previous active revision of its family and waits for the
    /// rollout. A later `apply` of the unchanged spec rolls forward again.
    pub async fn rollback(&self, ctx: &Context, spec: &ServiceSpec) -> Result<RolloutReport> {
        let names = ServiceNames::new(ctx.stack(), spec);
        let c = &self.clients;
        let live = service::observe(ctx, &c.ecs, &names.cluster, &names.service)
            .await?
            .ok_or_else(|| resource::NotFound::new(service::KIND, &names.service))?;
        // Only the stack's own service is rolled back.
        owned_or_conflict::<service::Service<'_>>(ctx, &names.service, &live)?;
        let revisions = taskdef::active_revisions(ctx, &c.ecs, &names.family).await?;
        // The newest active revision older than the one running (which may itself have been
        // deregistered since).
        let running = taskdef::revision_of(&live.task_definition);
        let previous = revisions
            .iter()
            .find(|a| taskdef::revision_of(a) < running)
            .ok_or_else(|| {
                resource::NotFound::new("previous task definition revision of", &names.family)
            })?;
        let deployment = service::point_at(
            ctx,
            &c.ecs,
            (&names.cluster, &names.service),
            previous,
            format!("roll back to {previous}"),
        )
        .await?;
        // Only the stack's own target group is watched.
        let live_lb = lb::owned_only(ctx, lb::observe(ctx, &c.elb, &names).await?);
        let tg = live_lb.tg.as_ref().map(|t| t.arn.clone());
        service::wait_rollout(
            ctx,
            &c.ecs,
            tg.as_deref().map(|t| (&c.elb, t)),
            &names.cluster,
            &names.service,
            &deployment,
            previous,
            Duration::from_secs(spec.service.rollout.timeout),
        )
        .await
    }

    /// An image-only release: a new image for one container of the stack's service (see
    /// [`ImageRelease`]), whatever else the spec says. Exactly one `RegisterTaskDefinition` (a
    /// copy of the revision the service runs, with the new image and the stack's tags) and
    /// one `UpdateService` naming it, then the wait for the rollout (unless the spec's
    /// `rollout.wait` is off), which must run that revision; no call that changes anything
    /// when the container runs this image already. The service must exist and be the stack's.
    ///
    /// ```no_run
    /// # async fn example(layer: ecs_service::ServiceLayer, ctx: ecs_core::Context, spec: ecs_service::ServiceSpec) -> ecs_service::Result<()> {
    /// let release = ecs_service::ImageRelease::builder()
    ///     .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@sha256:4f1c…")
    ///     .build();
    /// let report = layer.release_image(&ctx, &spec, &release).await?;
    /// println!("{} → {}", report.previous_image, report.image);
    /// # Ok(()) }
    /// ```
    pub async fn release_image(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        release: &ImageRelease,
    ) -> Result<ReleaseReport> {
        let planned = release::plan(ctx, &self.clients.ecs, spec, release).await?;
        release::apply(ctx, &self.clients.ecs, &self.clients.elb, &planned).await
    }

    /// The first half of [`release_image`](Self::release_image): reads the service and the
    /// revision it runs and decides the release, without a change. A caller that holds a
    /// lease to change the stack checks [`ReleasePlan::changes_anything`] before taking it.
    pub async fn plan_release(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        release: &ImageRelease,
    ) -> Result<ReleasePlan> {
        release::plan(ctx, &self.clients.ecs, spec, release).await
    }

    /// The second half of [`release_image`](Self::release_image): carries out `planned`.
    pub async fn apply_release(
        &self,
        ctx: &Context,
        planned: &ReleasePlan,
    ) -> Result<ReleaseReport> {
        release::apply(ctx, &self.clients.ecs, &self.clients.elb, planned).await
    }

    /// The service's current state: counts, deployments, target health and recent events;
    /// `None` when the service does not exist.
    pub async fn status(&self, ctx: &Context, spec: &ServiceSpec) -> Result<Option<ServiceStatus>> {
        let names = ServiceNames::new(ctx.stack(), spec);
        let c = &self.clients;
        let out = match ctx
            .call(
                "DescribeServices",
                &format!("{} {}", service::KIND, names.service),
                || {
                    c.ecs
                        .describe_services()
                        .cluster(&names.cluster)
                        .services(&names.service)
                        .send()
                },
            )
            .await
        {
            Err(e) if e.is_code("ClusterNotFoundException") => return Ok(None),
            other => other?,
        };
        let Some(s) = out
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
        else {
            return Ok(None);
        };
        let targets = match lb::observe(ctx, &c.elb, &names).await {
            Ok(live) => match &lb::owned_only(ctx, live).tg {
                Some(tg) => lb::target_health(ctx, &c.elb, &tg.arn)
                    .await
                    .ok()
                    .map(|(h, u, o, _)| (h, u, o)),
                None => None,
            },
            Err(_) => None,
        };
        Ok(Some(ServiceStatus {
            status: s.status().unwrap_or_default().to_string(),
            running: s.running_count(),
            pending: s.pending_count(),
            desired: s.desired_count(),
            task_definition: s.task_definition().unwrap_or_default().to_string(),
            deployments: s
                .deployments()
                .iter()
                .map(|d| DeploymentStatus {
                    id: d.id().unwrap_or_default().to_string(),
                    status: d.status().unwrap_or_default().to_string(),
                    task_definition: d.task_definition().unwrap_or_default().to_string(),
                    rollout_state: d
                        .rollout_state()
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_default(),
                    reason: d.rollout_state_reason().unwrap_or_default().to_string(),
                    counts: (
                        d.running_count(),
                        d.pending_count(),
                        d.desired_count(),
                        d.failed_tasks(),
                    ),
                })
                .collect(),
            targets,
            events: s
                .events()
                .iter()
                .take(10)
                .filter_map(|e| e.message().map(str::to_string))
                .collect(),
        }))
    }

    /// What [`destroy`](Self::destroy) would delete.
    pub async fn plan_destroy(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        force_delete_repository: bool,
    ) -> Result<DestroyReport> {
        let names = ServiceNames::new(ctx.stack(), spec);
        let live = self.observe_owned(ctx, &names, spec).await?;
        Ok(destroy_plan(&names, &live, force_delete_repository))
    }

    /// Deletes everything of the stack's service layer that carries the stack's tag: the
    /// service (scaled to 0, deleted, waited until inactive) and concurrently the listeners
    /// and the load balancer (waited until gone, then its network interfaces); then the target
    /// group, the task definition revisions, the cluster and the roles; the ECR repository
    /// only when `force_delete_repository` (it is kept with its images otherwise, and the
    /// report says so). Resources without the stack's tag are never touched.
    ///
    /// It reads once, then deletes what it read as one [`Graph`]: each delete starts as soon
    /// as what it waits for is gone, and after a failure no new delete starts while those
    /// already started finish.
    pub async fn destroy(
        &self,
        ctx: &Context,
        spec: &ServiceSpec,
        force_delete_repository: bool,
    ) -> Result<DestroyReport> {
        let names = ServiceNames::new(ctx.stack(), spec);
        let c = &self.clients;
        let live = self.observe_owned(ctx, &names, spec).await?;
        let report = destroy_plan(&names, &live, force_delete_repository);
        let (names, live) = (&names, &live);
        let mut g = Graph::<Error>::new();
        // The service goes first; what it uses (its target group, revisions, cluster and
        // roles) after it. The listeners and the load balancer go at once, concurrently.
        let service: Vec<Step<bool>> = live
            .service
            .iter()
            .map(|s| {
                g.step(format!("{} {}", service::KIND, names.service))
                    .action("delete")
                    .run(move |_| resource::delete::<service::Service<'_>>(ctx, &c.ecs, s))
            })
            .collect();
        let after_service = || service.iter().map(|s| Dep::from(*s)).collect::<Vec<_>>();
        lb::teardown(
            &mut g,
            ctx,
            &c.elb,
            &c.ec2,
            &live.lb,
            Vec::new(),
            after_service(),
        );
        lb::shared::teardown(
            &mut g,
            ctx,
            &c.elb,
            &live.shared,
            Vec::new(),
            after_service(),
        );
        if live.taskdef.is_some() {
            g.step(format!("{} {}", taskdef::KIND, names.family))
                .after_all(after_service())
                .action("deregister")
                .run_with_detail(
                    |n: &usize| format!("{n} revisions deregistered"),
                    move |_| taskdef::deregister_all(ctx, &c.ecs, &names.family),
                );
        }
        if let Some(cluster) = &live.cluster {
            g.step(format!("{} {}", cluster::KIND, names.cluster))
                .after_all(after_service())
                .action("delete")
                .run(move |_| resource::delete::<cluster::Cluster<'_>>(ctx, &c.ecs, cluster));
        }
        for (role, name) in [
            (&live.execution_role, &names.execution_role),
            (&live.task_role, &names.task_role),
        ] {
            if let Some(role) = role {
                g.step(format!("{} {name}", iam::KIND))
                    .after_all(after_service())
                    .action("delete")
                    .run(move |_| resource::delete::<iam::Role>(ctx, &c.iam, role));
            }
        }
        if let (Some(repo), true) = (&live.repo, force_delete_repository) {
            // After the service: its tasks pull their images from it.
            g.step(format!("{} {}", ecr::KIND, names.repository))
                .after_all(after_service())
                .action("delete")
                .run_with_detail(
                    |_: &bool| "deleted with its images".to_string(),
                    move |_| resource::delete::<ecr::Repository<'_>>(ctx, &c.ecr, repo),
                );
        }
        g.run(ctx).await?;
        Ok(report)
    }

    /// Credentials for `docker login` to this account's ECR registry (for CI pipelines that
    /// push the image before deploying).
    pub async fn registry_login(&self, ctx: &Context) -> Result<RegistryLogin> {
        ecr::login(ctx, &self.clients.ecr).await
    }

    /// Reads every service-layer resource under the stack's names, skipping (not failing on)
    /// those that are not the stack's.
    async fn observe_owned(
        &self,
        ctx: &Context,
        names: &ServiceNames,
        spec: &ServiceSpec,
    ) -> Result<Live> {
        let c = &self.clients;
        fn mine<T>(r: Result<Option<T>>) -> Result<Option<T>> {
            match r {
                Err(Error::Foreign(_)) => Ok(None),
                other => other,
            }
        }
        // A service of an environment: its rules and target group on the environment's load
        // balancer (which is not its own, and so is left out).
        let shared = async {
            match &spec.environment {
                Some(_) => {
                    lb::shared::observe(ctx, &c.elb, &names.load_balancer, &names.target_group)
                        .await
                        .map(|l| lb::shared::owned_only(ctx, l))
                }
                None => Ok(lb::shared::LiveShared::default()),
            }
        };
        let (repo, execution_role, task_role, cluster, taskdef, lb, service, shared) = futures_util::join!(
            Box::pin(ecr::observe(ctx, &c.ecr, &names.repository)),
            Box::pin(iam::observe(ctx, &c.iam, &names.execution_role)),
            Box::pin(iam::observe(ctx, &c.iam, &names.task_role)),
            Box::pin(cluster::observe(ctx, &c.ecs, &names.cluster)),
            Box::pin(taskdef::describe(ctx, &c.ecs, &names.family)),
            Box::pin(async {
                match &spec.environment {
                    Some(_) => Ok(lb::LiveLb::default()),
                    None => lb::observe(ctx, &c.elb, names).await,
                }
            }),
            Box::pin(service::observe(
                ctx,
                &c.ecs,
                &names.cluster,
                &names.service
            )),
            Box::pin(shared),
        );
        let lb = lb::owned_only(ctx, lb?);
        let shared = shared?;
        let service = mine(service)?.filter(|l| resource::owned::<service::Service<'_>>(ctx, l));
        let runs = service.as_ref().map(|s| s.task_definition.as_str());
        let taskdef = taskdef::resolve(ctx, &c.ecs, &names.family, taskdef?, runs)
            .await?
            .filter(|l| resource::owned::<taskdef::TaskDef>(ctx, l));
        let revisions = match &taskdef {
            Some(_) => taskdef::active_revisions(ctx, &c.ecs, &names.family)
                .await?
                .len(),
            None => 0,
        };
        Ok(Live {
            repo: mine(repo)?.filter(|l| resource::owned::<ecr::Repository<'_>>(ctx, l)),
            execution_role: mine(execution_role)?.filter(|l| resource::owned::<iam::Role>(ctx, l)),
            task_role: mine(task_role)?.filter(|l| resource::owned::<iam::Role>(ctx, l)),
            cluster: mine(cluster)?.filter(|l| resource::owned::<cluster::Cluster<'_>>(ctx, l)),
            taskdef,
            revisions,
            lb,
            service,
            shared,
            priorities: Vec::new(),
        })
    }
}

/// A web service of an environment's part of the environment's load balancer: its target
/// group and its routes at their priorities; `None` for a service without routes.
fn desired_shared(
    names: &ServiceNames,
    spec: &ServiceSpec,
    net: &NetworkOutputs,
    tags: &tagging::StackTags,
    live: &Live,
) -> Option<lb::shared::DesiredShared> {
    let placement = spec.environment.as_ref().filter(|p| !p.routes.is_empty())?;
    let port = spec.target().map_or(80, |(_, p)| p);
    Some(lb::shared::DesiredShared {
        lb_name: names.load_balancer.clone(),
        tg: lb::desired_tg(
            &names.target_group,
            &placement.target_group,
            port,
            &net.vpc_id,
            tags,
        ),
        routes: placement
            .routes
            .iter()
            .cloned()
            .zip(live.priorities.iter().copied())
            .collect(),
        rule_tags: tags.of("listener-rule"),
    })
}

fn desired_lb(
    names: &ServiceNames,
    spec: &ServiceSpec,
    lb_spec: &LoadBalancerSpec,
    net: &NetworkOutputs,
    tags: &tagging::StackTags,
) -> lb::DesiredLb {
    let port = spec.target().map_or(80, |(_, p)| p);
    let subnets = if lb_spec.internal {
        &net.private_subnets
    } else {
        &net.public_subnets
    };
    lb::desired(
        names,
        lb_spec,
        port,
        &net.vpc_id,
        subnets,
        &net.alb_sg,
        tags,
    )
}

/// The one function that decides what changes; `plan` shows it and `apply` carries it out.
fn changes(
    names: &ServiceNames,
    spec: &ServiceSpec,
    net: &NetworkOutputs,
    region: &str,
    tags: &tagging::StackTags,
    live: &Live,
) -> Plan {
    let (mut plan, td_arn) = foundation_changes(names, spec, region, tags, live);
    let lb_plan = match (
        &spec.load_balancer,
        desired_shared(names, spec, net, tags, live),
    ) {
        (Some(lb_spec), _) => {
            lb::changes(Some(&desired_lb(names, spec, lb_spec, net, tags)), &live.lb)
        }
        (None, Some(d)) => lb::shared::changes(&d, &live.shared),
        // A service of an environment without routes: its rules and target group go.
        (None, None) if spec.environment.is_some() => lb::shared::destroy_changes(&live.shared),
        (None, None) => lb::changes(None, &live.lb),
    };
    let tg_arn = match (&spec.load_balancer, &live.lb.tg, &live.shared.tg) {
        (Some(_), Some(tg), _) => Some(tg.arn.as_str()),
        (None, _, Some(tg)) if spec.target().is_some() => Some(tg.arn.as_str()),
        _ => None,
    };
    let want = service::desired(spec, names, &net.private_subnets, &net.task_sg, tags);
    let svc = service::Service {
        want: &want,
        task_definition: td_arn.map(str::to_string).into(),
        tg_arn: tg_arn.map(str::to_string),
        after_draining: false,
    };
    let svc = resource::decide(&svc, service::comparable(live.service.as_ref())).change(&svc);
    plan.extend(lb_plan);
    plan.push(svc);
    plan
}

/// The changes of what needs no network (the repository, the roles, the cluster and the
/// task definition), and the ARN of the task definition when it stays as it is.
fn foundation_changes<'a>(
    names: &ServiceNames,
    spec: &ServiceSpec,
    region: &str,
    tags: &tagging::StackTags,
    live: &'a Live,
) -> (Plan, Option<&'a str>) {
    let mut plan = Plan::new();
    if let Some(r) = &spec.repository {
        let repo = ecr::Repository {
            name: &names.repository,
            spec: r,
            tags: tags.of(ecr::LOGICAL),
        };
        plan.push(resource::decide(&repo, live.repo.clone()).change(&repo));
    }
    let [exec, task] = iam::desired(names, spec, region);
    for (want, live) in [(exec, &live.execution_role), (task, &live.task_role)] {
        let role = iam::Role {
            tags: tags.of(want.logical),
            want,
        };
        plan.push(resource::decide(&role, live.clone()).change(&role));
    }
    // A service of an environment runs in the environment's cluster, which it never changes.
    if spec.environment.is_none() {
        let cluster = cluster::Cluster {
            name: &names.cluster,
            spec: &spec.cluster,
            tags: tags.of(cluster::LOGICAL),
        };
        plan.push(resource::decide(&cluster, live.cluster.clone()).change(&cluster));
    }
    let role_ref = |live: &Option<iam::LiveRole>, name: &str| {
        live.as_ref()
            .map_or_else(|| format!("role/{name}"), |r| r.arn.clone())
    };
    let td_want = taskdef::render(
        spec,
        names,
        region,
        &role_ref(&live.execution_role, &names.execution_role),
        &role_ref(&live.task_role, &names.task_role),
    );
    let td_arn = live
        .taskdef
        .as_ref()
        .filter(|l| !taskdef::needs_revision(&td_want, Some(l)))
        .map(|l| l.arn.as_str());
    let td = taskdef::TaskDef {
        want: td_want,
        tags: tags.of(taskdef::LOGICAL),
    };
    plan.push(taskdef::change(
        &td,
        &resource::decide(&td, live.taskdef.clone()),
    ));
    (plan, td_arn)
}

/// `spec` with the image of each container that says [`RUNNING_IMAGE`] replaced by the one
/// that container runs in the revision the family was compared with (the service's, else the
/// latest active one); an error naming every such container when there is none.
fn with_running_images(
    spec: &ServiceSpec,
    names: &ServiceNames,
    live: &Live,
) -> Result<ServiceSpec> {
    let mut spec = spec.clone();
    let mut problems = ecs_core::Problems::new();
    for (i, c) in spec.task.containers.iter_mut().enumerate() {
        if c.image != RUNNING_IMAGE {
            continue;
        }
        match live
            .taskdef
            .as_ref()
            .and_then(|l| taskdef::running_image(l, &c.name))
        {
            Some(image) => c.image = image.to_string(),
            None => problems.push(
                format!("task.containers[{i}].image"),
                format!(
                    "`{RUNNING_IMAGE}` keeps the image the service runs, but no revision of \
                     task definition {} has a container `{}` yet: give an image for the first \
                     deploy",
                    names.family, c.name
                ),
            ),
        }
    }
    problems.into_result().map_err(ecs_core::Error::Invalid)?;
    Ok(spec)
}

/// The first replacement of `plan`, as the error `apply` refuses it with.
pub(crate) fn refuse_replacements(plan: &Plan) -> Result<()> {
    for c in plan.pending() {
        if let Action::Replace(reason) = &c.action {
            return Err(resource::Replacement::new(&c.resource, &c.id, reason).into());
        }
    }
    Ok(())
}

/// `Ok` when `live`, read under the stack's name `name` for kind `R`, is the stack's by the
/// kind's ownership rule (checked by the engine); else the conflict that stops the plan.
pub(crate) fn owned_or_conflict<R: Resource>(
    ctx: &Context,
    name: &str,
    live: &R::Live,
) -> Result<()> {
    resource::check_owned::<R>(ctx, name, live).map_err(|_| names::conflict(ctx, R::KIND, name))
}

fn destroy_plan(names: &ServiceNames, live: &Live, force_repo: bool) -> DestroyReport {
    let mut deleted = Plan::new();
    let mut kept = Vec::new();
    if live.service.is_some() {
        deleted.push(Change::new(service::KIND, &names.service, Action::Delete));
    }
    deleted.extend(lb::changes(None, &live.lb));
    deleted.extend(lb::shared::destroy_changes(&live.shared));
    if live.taskdef.is_some() {
        deleted.push(
            Change::new(taskdef::KIND, &names.family, Action::Delete).with_detail(format!(
                "{} active revision{} deregistered, those registered outside the stack included",
                live.revisions,
                if live.revisions == 1 { "" } else { "s" }
            )),
        );
    }
    if live.cluster.is_some() {
        deleted.push(Change::new(cluster::KIND, &names.cluster, Action::Delete));
    }
    for (role, name) in [
        (&live.execution_role, &names.execution_role),
        (&live.task_role, &names.task_role),
    ] {
        if role.is_some() {
            deleted.push(Change::new(iam::KIND, name, Action::Delete));
        }
    }
    if live.repo.is_some() {
        if force_repo {
            deleted.push(
                Change::new(ecr::KIND, &names.repository, Action::Delete)
                    .with_detail("with its images"),
            );
        } else {
            kept.push(format!(
                "{} {} (with its images; to delete them too, destroy with `--force-delete-images`, or `DestroyOptions::force_delete_images` in the library)",
                ecr::KIND,
                names.repository
            ));
        }
    }
    DestroyReport { deleted, kept }
}
