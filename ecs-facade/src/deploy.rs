//! Plan, deploy, status, rollback and destroy of a whole stack, as one dependency graph over
//! the layers.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use ecs_core::graph::Graph;
use ecs_core::{Clock, Context, Event, EventSink, Plan, StackName, Tags, TokioClock};
use ecs_net::{NetworkLayer, NetworkOutputs, NetworkPlan};
use ecs_observe::{AlarmState, ObserveLayer, ObserveState, ObserveTarget};
use ecs_scaling::{ScalingLayer, ScalingState, ScalingTarget};
use ecs_service::{
    RolloutReport, ServiceLayer, ServiceNames, ServiceOutputs, ServiceState, ServiceStatus,
};
use serde::Serialize;

use crate::lease::SsmLeaseStore;
use crate::{Error, Preflight, Result, Stack, Verification};
use ecs_core::lease::{self, Holder, Lease, LeaseOptions, LeaseScope, LeaseStore};

pub use ecs_net::KNOWN_AFTER_APPLY;

/// The four layers, over SDK clients the caller provides.
#[derive(Debug, Clone)]
pub struct Layers {
    /// Networking.
    pub network: NetworkLayer,
    /// ECR, IAM, cluster, task definition, load balancer, service.
    pub service: ServiceLayer,
    /// Autoscaling.
    pub scaling: ScalingLayer,
    /// Logs, alarms, dashboard.
    pub observe: ObserveLayer,
    /// Where the stack's lease lives (SSM Parameter Store; see [`ecs_core::lease`]).
    pub lease: Arc<dyn LeaseStore>,
    /// The checks of what the stack refers to but does not make ([`crate::verify`]).
    pub preflight: Preflight,
}

impl Layers {
    /// Layers whose clients are built from one SDK configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            network: NetworkLayer::new(config),
            service: ServiceLayer::new(config),
            scaling: ScalingLayer::new(config),
            observe: ObserveLayer::new(config),
            lease: Arc::new(SsmLeaseStore::new(aws_sdk_ssm::Client::new(config))),
            preflight: Preflight::new(config),
        }
    }
}

/// Outputs of a deployed stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StackOutputs {
    /// The network.
    pub network: NetworkOutputs,
    /// The service layer's resources.
    pub service: ServiceOutputs,
    /// The log group.
    pub log_group: String,
    /// The dashboard in the CloudWatch console, with advanced monitoring.
    pub dashboard_url: Option<String>,
    /// The alarms' names.
    pub alarms: Vec<String>,
    /// The autoscaling resource id, when autoscaling is on.
    pub scaling_resource_id: Option<String>,
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeployReport {
    /// The changes, across every layer, as planned before applying.
    pub changes: Plan,
    /// What was deployed.
    pub outputs: StackOutputs,
    /// How long the deploy took.
    pub duration: Duration,
    /// The rollout waited for, when the deploy started one and waited.
    pub rollout: Option<RolloutReport>,
    /// The generation of the stack's lease the deploy held; `None` when the plan was empty
    /// (a no-op takes no lease).
    pub lease: Option<u64>,
}

/// What [`Deployer::status`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StackStatus {
    /// The service, when it exists.
    pub service: Option<ServiceStatus>,
    /// The alarms' states.
    pub alarms: Vec<AlarmState>,
}

/// What [`Deployer::destroy`] did (or, from [`Deployer::plan_destroy`], would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DestroyReport {
    /// What is deleted.
    pub deleted: Plan,
    /// What is kept on purpose (images, logs) unless asked.
    pub kept: Vec<String>,
}

/// What destroy also deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestroyOptions {
    /// Delete the ECR repository with its images.
    pub force_delete_images: bool,
    /// Delete the log group with its logs.
    pub delete_logs: bool,
}

impl DestroyOptions {
    /// Everything goes, the repository with its images and the log group with its logs
    /// included (`--force-delete-images --delete-logs`).
    pub const fn everything() -> Self {
        Self {
            force_delete_images: true,
            delete_logs: true,
        }
    }
}

/// Plans, deploys, inspects and destroys stacks, with progress events going to one sink.
///
/// ```no_run
/// # async fn example(stack: ecs_facade::Stack) -> Result<(), ecs_facade::Error> {
/// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let deployer = ecs_facade::Deployer::new(&config).events(|e: ecs_facade::Event| eprintln!("{e}"));
/// println!("{}", deployer.plan(&stack).await?);
/// let report = deployer.deploy(&stack).await?;
/// println!("{:?}", report.outputs.service.url);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Deployer {
    layers: Layers,
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    wait: bool,
    lease: LeaseOptions,
    infrastructure_only: bool,
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field("layers", &self.layers)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Deployer {
    /// A deployer whose clients are built from `config`.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self::from_layers(Layers::new(config))
    }

    /// A deployer over these layers (custom clients, interceptors, mocks).
    pub fn from_layers(layers: Layers) -> Self {
        Self {
            layers,
            events: Arc::new(ecs_core::NoEvents),
            clock: Arc::new(TokioClock),
            wait: true,
            lease: LeaseOptions::default(),
            infrastructure_only: false,
        }
    }

    /// Sends progress events (every step and every wait) to `sink`.
    #[must_use]
    pub fn events(mut self, sink: impl EventSink + 'static) -> Self {
        self.events = Arc::new(sink);
        self
    }

    /// Uses `clock` for every wait and retry (tests use `ecs_core::FakeClock`).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether `deploy` waits for the service's rollout (default true); without waiting it
    /// returns once the update is accepted.
    #[must_use]
    pub fn wait_for_rollout(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// How the stack's lease is taken (default: a 5-minute time to live, renewed while the
    /// run works; fail at once when another run holds it). Every deploy that changes
    /// something, every destroy, rollback and image release holds the lease of its stack.
    #[must_use]
    pub fn lease(mut self, options: LeaseOptions) -> Self {
        self.lease = options;
        self
    }

    /// Whether `plan` and `deploy` make the stack without tasks (default false): every
    /// resource, but the service runs no task and autoscaling is left for later (see
    /// [`Stack::infrastructure_only`]), and the pre-flight does not look for the images. For
    /// a first deploy whose image goes to the repository the stack itself creates: deploy
    /// without tasks, push the image, deploy again. Refused once the service exists.
    #[must_use]
    pub fn infrastructure_only(mut self, yes: bool) -> Self {
        self.infrastructure_only = yes;
        self
    }

    /// The layers.
    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// Takes the stack's lease for `operation` (waiting as [`lease`](Self::lease) says),
    /// then makes sure nothing it must not overlap writes meanwhile (`excluding`): a
    /// service of an environment gives way to a run that writes the environment (it lets
    /// its own lease go, waits, and takes it again), and an environment, holding its
    /// lease, waits for the runs that write its services to end (new ones give way to it).
    /// So services deploy at once, and an environment's deploy or destroy excludes them.
    async fn take_lease(
        &self,
        ctx: &Context,
        operation: &str,
        excluding: &Exclusion,
    ) -> Result<Arc<Lease>> {
        let start = ctx.clock().now();
        'take: loop {
            let scope = LeaseScope::stack(ctx.stack());
            let holder = Holder::this_process(ctx, operation, self.lease.ttl);
            let taken =
                lease::acquire(ctx, self.layers.lease.clone(), &scope, holder, &self.lease).await?;
            loop {
                let Some((other, holder)) = self.blocker(ctx, excluding).await? else {
                    ctx.emit(Event::Progress {
                        resource: format!("lease of {scope}"),
                        message: format!(
                            "taken (generation {}) for {operation}",
                            taken.generation()
                        ),
                    });
                    return Ok(Arc::new(taken));
                };
                let elapsed = ctx.clock().now() - start;
                let give_way = matches!(excluding, Exclusion::Environment(_));
                if give_way || elapsed >= self.lease.wait {
                    // A service lets the environment's run go first; an environment that
                    // waited long enough lets go.
                    if let Err(e) = taken.release(ctx).await {
                        warn_unreleased(ctx, &e);
                    }
                }
                if elapsed >= self.lease.wait {
                    return Err(ecs_core::lease::LeaseError::Held {
                        scope: other,
                        holder,
                    }
                    .into());
                }
                ctx.emit(Event::Waiting {
                    resource: format!("lease of {other}"),
                    awaiting: format!("release by {holder}"),
                    elapsed,
                });
                ctx.clock()
                    .sleep(self.lease.poll.min(self.lease.wait - elapsed))
                    .await;
                if give_way {
                    continue 'take;
                }
            }
        }
    }

    /// The first lease `excluding` names that another run holds, with its holder.
    async fn blocker(
        &self,
        ctx: &Context,
        excluding: &Exclusion,
    ) -> Result<Option<(LeaseScope, Holder)>> {
        let store = self.layers.lease.as_ref();
        Ok(match excluding {
            Exclusion::Nothing => None,
            Exclusion::Environment(env) => {
                let env = LeaseScope::stack(env);
                lease::holder(ctx, store, &env).await?.map(|h| (env, h))
            }
            Exclusion::Services(services) => {
                let held =
                    futures_util::future::try_join_all(services.iter().map(|s| async move {
                        let scope = LeaseScope::stack(s);
                        Ok::<_, ecs_core::lease::LeaseError>(
                            lease::holder(ctx, store, &scope).await?.map(|h| (scope, h)),
                        )
                    }))
                    .await?;
                held.into_iter().flatten().next()
            }
        })
    }

    /// What a run of `stack` must not overlap: a service of an environment, the
    /// environment's writes.
    fn exclusion(stack: &Stack) -> Exclusion {
        match stack
            .service
            .environment
            .as_ref()
            .and_then(|p| StackName::new(p.environment.clone()).ok())
        {
            Some(env) => Exclusion::Environment(env),
            None => Exclusion::Nothing,
        }
    }

    /// Runs `work` under the stack's lease for `operation`, with a context that renews it at
    /// every AWS call; releases it afterwards, whatever the outcome.
    async fn under_lease<T, F, Fut>(&self, stack: &Stack, operation: &str, work: F) -> Result<T>
    where
        F: FnOnce(Context) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let ctx = self.context(stack)?;
        self.under_lease_ctx(ctx, operation, &Self::exclusion(stack), |ctx, _| work(ctx))
            .await
    }

    /// [`under_lease`](Self::under_lease) for the stack of `ctx` (an environment's, say);
    /// `work` also gets the lease's generation.
    pub(crate) async fn under_lease_ctx<T, F, Fut>(
        &self,
        ctx: Context,
        operation: &str,
        excluding: &Exclusion,
        work: F,
    ) -> Result<T>
    where
        F: FnOnce(Context, u64) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let held = self.take_lease(&ctx, operation, excluding).await?;
        let out = work(ctx.with_guard(held.guard(&ctx)), held.generation()).await;
        // A destroyed stack leaves no lease behind; otherwise the lease is released.
        let released = match (&out, operation) {
            (Ok(_), "destroy") => held.remove(&ctx).await,
            _ => held.release(&ctx).await,
        };
        if let Err(e) = released {
            warn_unreleased(&ctx, &e);
        }
        out
    }

    /// Releases the stack's lease for an operator, when the run that held it is gone (killed,
    /// its machine lost): the next run takes it at once instead of waiting for it to expire.
    /// Returns who held it, or `None` when nobody did.
    pub async fn unlock(&self, stack: &Stack) -> Result<Option<Holder>> {
        self.unlock_ctx(&self.context(stack)?).await
    }

    /// Releases the lease of the stack of `ctx` (see [`unlock`](Self::unlock)).
    pub(crate) async fn unlock_ctx(&self, ctx: &Context) -> Result<Option<Holder>> {
        let scope = LeaseScope::stack(ctx.stack());
        let by = Holder::this_process(ctx, "unlock", self.lease.ttl);
        Ok(lease::unlock(ctx, self.layers.lease.as_ref(), &scope, by).await?)
    }

    fn context(&self, stack: &Stack) -> Result<Context> {
        stack.stack_name()?;
        self.context_of(&stack.name, &stack.tags)
    }

    /// A context for the stack `name` with its user `tags`, this deployer's events and clock.
    pub(crate) fn context_of(&self, name: &str, tags: &Tags) -> Result<Context> {
        let name = StackName::new(name).map_err(|p| {
            let mut problems = ecs_core::Problems::new();
            problems.push("name", p.message);
            Error::Invalid(problems)
        })?;
        let sink = self.events.clone();
        let clock = self.clock.clone();
        Ok(Context::builder()
            .stack(name)
            .tags(tags.clone())
            .events(move |e: Event| sink.emit(e))
            .clock(SharedClock(clock))
            .build())
    }

    /// The changes a deploy would make, across every layer (read-only). Values that only
    /// exist after the network is created show as `(known after apply)`.
    pub async fn plan(&self, stack: &Stack) -> Result<Plan> {
        Ok(self.prepare(stack).await?.plan)
    }

    /// Reads every layer once and plans the deploy: the plan to show (as [`plan`](Self::plan)
    /// returns it), kept together with what [`PreparedDeploy::apply`] needs to carry it out.
    /// This is how a tool shows a plan, asks, and then applies the plan it showed (an empty
    /// plan without any other call; a non-empty one under the stack's lease, after one more
    /// read).
    ///
    /// ```no_run
    /// # async fn example(deployer: ecs_facade::Deployer, stack: ecs_facade::Stack) -> Result<(), ecs_facade::Error> {
    /// let prepared = deployer.prepare(&stack).await?;
    /// println!("{}", prepared.plan());
    /// if prepared.plan().pending().count() > 0 {
    ///     let report = prepared.apply().await?;
    ///     println!("{:?}", report.outputs.service.url);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn prepare(&self, stack: &Stack) -> Result<PreparedDeploy> {
        // Boxed: the whole graph is a large future, and debug builds poll it on small stacks.
        Box::pin(self.prepare_inner(stack)).await
    }

    async fn prepare_inner(&self, stack: &Stack) -> Result<PreparedDeploy> {
        stack.validate()?;
        let (mut prepared, verification) = self.prepare_and_verify(stack).await?;
        prepared.verification = verification.into_result(&stack.name)?;
        Ok(prepared)
    }

    /// The plan's reads and the pre-flight checks, at once.
    async fn prepare_and_verify(&self, stack: &Stack) -> Result<(PreparedDeploy, Verification)> {
        let ctx = self.context(stack)?;
        let stack = match self.infrastructure_only {
            true => stack.infrastructure_only(),
            false => stack.clone(),
        };
        let checks = self
            .layers
            .preflight
            .run(&ctx, &stack, !self.infrastructure_only);
        // Boxed: debug builds poll these large futures on small stacks.
        let (prepared, verification) = futures_util::try_join!(
            Box::pin(self.prepare_with(&stack, ctx.clone())),
            Box::pin(checks)
        )?;
        if self.infrastructure_only && prepared.reads.service.service_exists() {
            return Err(Error::InfrastructureOnly {
                stack: stack.name.clone(),
            });
        }
        Ok((prepared, verification))
    }

    /// Checks, before any change, what the stack refers to but does not make: certificates,
    /// secrets and SSM parameters (never their values), SNS topics, images, an existing
    /// VPC's subnets (see [`crate::verify`]). Reads every layer as a plan does, and makes no
    /// change. Returns every check's outcome; a failed check is in
    /// [`Verification::failures`] (`plan` and `deploy` refuse with [`Error::Preflight`]).
    ///
    /// ```no_run
    /// # async fn example(deployer: ecs_facade::Deployer, stack: ecs_facade::Stack) -> Result<(), ecs_facade::Error> {
    /// let checks = deployer.verify(&stack).await?;
    /// print!("{checks}");
    /// assert!(checks.passed());
    /// # Ok(()) }
    /// ```
    pub async fn verify(&self, stack: &Stack) -> Result<Verification> {
        stack.validate()?;
        Ok(Box::pin(self.prepare_and_verify(stack)).await?.1)
    }

    /// [`prepare`](Self::prepare) through `ctx` (a context renewing the lease, under it).
    async fn prepare_with(&self, stack: &Stack, ctx: Context) -> Result<PreparedDeploy> {
        let mut service_spec = stack.service_spec();
        let wait = self.wait && service_spec.service.rollout.wait;
        service_spec.service.rollout.wait = false;
        let names = ServiceNames::new(ctx.stack(), &service_spec);
        let mut reads = Box::pin(self.read_all(&ctx, stack, &service_spec, &names)).await?;
        // Once the scalable target is registered, the count is autoscaling's, 0 included.
        if reads
            .scaling
            .as_ref()
            .is_some_and(ScalingState::target_registered)
        {
            reads.service.keep_autoscaled_count();
        }
        let plan = self
            .plan_from(&ctx, stack, &service_spec, &names, &reads)
            .await?;
        Ok(PreparedDeploy {
            deployer: self.clone(),
            stack: stack.clone(),
            ctx,
            service_spec,
            names,
            wait,
            reads,
            plan,
            expected: None,
            verification: Verification::default(),
        })
    }

    /// The plan across every layer, from one round of reads.
    async fn plan_from(
        &self,
        ctx: &Context,
        stack: &Stack,
        service_spec: &ecs_service::ServiceSpec,
        names: &ServiceNames,
        reads: &Reads,
    ) -> Result<Plan> {
        let l = &self.layers;
        let has_lb = service_spec.has_load_balancer();
        let network = reads
            .network
            .known_outputs()
            .unwrap_or_else(NetworkOutputs::unknown);
        let svc_plan = l.service.plan_with(&reads.service, &network);
        let lb = reads.service.existing_load_balancer_arn();
        let tg = reads.service.existing_target_group_arn();
        let mut plan = reads.network.changes();
        plan.extend(svc_plan.changes().clone());
        if let Some(state) = &reads.scaling {
            let target = scaling_target(names, lb, tg, stack, has_lb);
            plan.extend(l.scaling.plan_with(ctx, state, &target)?.changes().clone());
        }
        // An alarm with the stack's name that would change but is not the stack's (its tag
        // is read only when the alarm would change) is refused here, before any change.
        let target = observe_target(names, lb, tg, has_lb);
        let observe = l.observe.plan_with(ctx, &reads.observe, &target).await?;
        plan.extend(observe.changes().clone());
        Ok(plan)
    }

    /// Every layer's planning reads, all at once: none of them needs another layer's
    /// outputs (only the diffs do, later).
    async fn read_all(
        &self,
        ctx: &Context,
        stack: &Stack,
        service_spec: &ecs_service::ServiceSpec,
        names: &ServiceNames,
    ) -> Result<Reads> {
        let l = &self.layers;
        let has_lb = service_spec.has_load_balancer();
        let network = async {
            match &service_spec.environment {
                // A service of an environment plans on the environment's network, found by
                // the environment's tags, and never changes it.
                Some(placement) => {
                    let env = self.context_of(&placement.environment, &Tags::new())?;
                    // Boxed: debug builds poll these large futures on small stacks.
                    match Box::pin(l.network.environment_outputs(&env)).await? {
                        Some(outputs) => Ok::<_, Error>(NetworkRead::Environment(outputs)),
                        None => Err(Error::Service(ecs_service::Error::EnvironmentMissing {
                            environment: placement.environment.clone(),
                            missing: "network (no VPC, subnets or security groups carry its tag)"
                                .to_string(),
                        })),
                    }
                }
                None => Ok(NetworkRead::Own(
                    Box::pin(l.network.plan(ctx, &stack.network_spec())).await?,
                )),
            }
        };
        let service = async { Ok::<_, Error>(l.service.read(ctx, service_spec).await?) };
        let scaling = async {
            match &stack.scaling {
                Some(spec) => {
                    let target = scaling_target(names, None, None, stack, has_lb);
                    Ok::<_, Error>(Some(l.scaling.read(ctx, spec, &target).await?))
                }
                None => Ok(None),
            }
        };
        let observe = async {
            Ok::<_, Error>(
                l.observe
                    .read(ctx, &stack.observe, &names.log_group)
                    .await?,
            )
        };
        let (network, service, scaling, observe) = futures_util::try_join!(
            Box::pin(network),
            Box::pin(service),
            Box::pin(scaling),
            Box::pin(observe)
        )?;
        Ok(Reads {
            network,
            service,
            scaling,
            observe,
        })
    }

    /// Deploys the stack: creates what is missing, updates what differs, deletes what the
    /// stack no longer wants, and waits for the rollout. Independent work runs concurrently:
    /// every layer is read at once; the repository, roles, task definition, cluster and log
    /// group are made while the network is built; the load balancer provisions while the NAT
    /// gateways do; scaling, alarms and the dashboard are made while the rollout runs.
    pub async fn deploy(&self, stack: &Stack) -> Result<DeployReport> {
        // Boxed: the prepared deploy is large, and debug builds poll it on small stacks.
        Box::pin(async move { self.prepare(stack).await?.apply().await }).await
    }

    /// Applies `prepared` under the stack's lease: takes it, reads again through a context
    /// that renews it (so what another run changed meanwhile is seen — after a concurrent
    /// deploy of the same manifest, nothing is left to do), refuses a plan that changed in a
    /// way the caller did not see, applies, and releases the lease.
    async fn apply_leased(&self, prepared: PreparedDeploy) -> Result<DeployReport> {
        let ctx = prepared.ctx.without_guard();
        let held = self
            .take_lease(&ctx, "deploy", &Self::exclusion(&prepared.stack))
            .await?;
        let guarded = ctx.with_guard(held.guard(&ctx));
        let out = async {
            let fresh = Box::pin(self.prepare_with(&prepared.stack, guarded)).await?;
            // Another run made the service meanwhile: an infrastructure-only plan would stop
            // its tasks.
            if self.infrastructure_only && fresh.reads.service.service_exists() {
                return Err(Error::InfrastructureOnly {
                    stack: prepared.stack.name.clone(),
                });
            }
            let stale = |reason: String| Error::StalePlan {
                stack: prepared.stack.name.clone(),
                reason,
            };
            match &prepared.expected {
                Some(saved) => {
                    let differ = crate::saved::differences(saved, &fresh.plan);
                    if !differ.is_empty() {
                        return Err(stale(format!(
                            "the stack changed since it was planned; now: {}",
                            differ.join("; ")
                        )));
                    }
                }
                None => {
                    let unseen: Vec<String> = fresh
                        .plan
                        .pending()
                        .filter(|c| matches!(c.action, ecs_core::Action::Delete | ecs_core::Action::Replace(_)))
                        .filter(|c| !prepared.plan.changes().contains(c))
                        .map(|c| format!("{} {}", c.resource, c.id))
                        .collect();
                    if !unseen.is_empty() {
                        return Err(stale(format!(
                            "the stack changed while this run waited for its lease, and the plan now also deletes or replaces {}",
                            unseen.join(", ")
                        )));
                    }
                }
            }
            Box::pin(self.apply_inner(fresh, Some(held.generation()))).await
        }
        .await;
        if let Err(e) = held.release(&ctx).await {
            warn_unreleased(&ctx, &e);
        }
        out
    }

    async fn apply_inner(
        &self,
        prepared: PreparedDeploy,
        lease: Option<u64>,
    ) -> Result<DeployReport> {
        let PreparedDeploy {
            deployer: _,
            stack,
            ctx,
            service_spec,
            names,
            wait,
            reads,
            plan: _,
            expected: _,
            verification: _,
        } = prepared;
        let stack = &stack;
        let start = ctx.clock().now();
        let l = &self.layers;
        let mut changes = Plan::new();

        // 1. The reads were made by `prepare`, every layer's at once.
        let Reads {
            network: net_plan,
            service: mut svc_state,
            scaling: scaling_state,
            observe: mut observe_state,
        } = reads;
        changes.extend(net_plan.changes());

        // What apply would refuse later is refused before anything changes: a replacement
        // of the network's or the service layer's (a resource that is not the stack's was
        // refused by the plan already).
        net_plan.check_replacements()?;
        l.service
            .check_replacements(&svc_state, net_plan.known_outputs().as_ref())?;
        let has_lb = service_spec.has_load_balancer();

        // 2. One graph of the layers, each step a layer's (or a part of one) that reports its
        //    own steps: the network, and meanwhile what does not need it (the repository,
        //    roles, task definition and cluster; the log group); the service layer once the
        //    network and its foundation are made, its service behind a gate that opens once
        //    the NAT gateways its tasks pull images through are available and the log group
        //    they write to exists (a failure of either closes it: then the layer starts no
        //    further step, lets those in flight finish and leaves the service alone, and the
        //    first error is the one reported); then the rollout, autoscaling and observability
        //    at once. After a failure no layer
        //    starts and started ones run to their end (a request dropped half-way could
        //    still land in AWS after the deploy returned, unseen by the next deploy's reads),
        //    except the NAT wait, which only reads.
        let (ctx, stack, names) = (&ctx, stack, &names);
        let (net_plan, scaling_state) = (&net_plan, &scaling_state);
        let (nat_ready, gate) = tokio::sync::oneshot::channel::<bool>();
        let (log_ready, log_gate) = tokio::sync::oneshot::channel::<bool>();
        let mut g = Graph::<Error>::new();
        let network = g
            .step("network")
            .reports_itself()
            .run(move |_| async move { net_plan.apply(ctx, &l.network).await });
        let foundation = g
            .step("service foundation")
            .reports_itself()
            .run(move |_| async move {
                l.service.apply_foundation(ctx, &mut svc_state).await?;
                Ok::<_, Error>(svc_state)
            });
        let log_group = g
            .step("log group")
            .reports_itself()
            .run(move |_| async move {
                let made = l.observe.apply_log_group(ctx, &mut observe_state).await;
                // The receiver is gone only when the service layer already ended.
                let _ = log_ready.send(made.is_ok());
                made?;
                Ok::<_, Error>(observe_state)
            });
        let nat = g
            .step("NAT gateways")
            .after(network)
            .reports_itself()
            .abandonable()
            .run(move |i| async move {
                let waited = if net_plan.is_empty() {
                    Ok(())
                } else {
                    l.network
                        .wait_ready(ctx, i.get(network), Duration::from_secs(600))
                        .await
                };
                // The receiver is gone only when the service layer already ended.
                let _ = nat_ready.send(waited.is_ok());
                Ok::<_, Error>(waited?)
            });
        let service = g
            .step("service layer")
            .after(network)
            .after(foundation)
            .reports_itself()
            .run(move |i| async move {
                let svc_plan = l.service.plan_with(i.get(foundation), i.get(network));
                let out = l
                    .service
                    .apply_after(ctx, &svc_plan, async {
                        // Closed as soon as either fails; open once both succeeded.
                        let ready = |r: std::result::Result<bool, _>| match r {
                            Ok(true) => Ok(()),
                            _ => Err(()),
                        };
                        futures_util::future::try_join(gate.map(ready), log_gate.map(ready))
                            .await
                            .is_ok()
                    })
                    .await?;
                Ok::<_, Error>((svc_plan.changes().clone(), out))
            });
        let rollout = g
            .step("rollout")
            .after(service)
            .after(nat)
            .reports_itself()
            .run(move |i| async move {
                let (_, service) = i.get(service);
                match (&service.deployment, wait) {
                    (Some(d), true) => Ok::<_, Error>(Some(
                        l.service
                            .wait_for_rollout(ctx, &stack.service, service, d)
                            .await?,
                    )),
                    _ => Ok(None),
                }
            });
        let scaling = g
            .step("autoscaling")
            .after(service)
            .after(nat)
            .reports_itself()
            .run(move |i| async move {
                let (_, service) = i.get(service);
                match scaling_state {
                    Some(state) => {
                        let target = scaling_target(
                            names,
                            service.load_balancer_arn.as_deref(),
                            service.target_group_arn.as_deref(),
                            stack,
                            has_lb,
                        );
                        let plan = l.scaling.plan_with(ctx, state, &target)?;
                        let out = l.scaling.apply(ctx, &plan).await?;
                        Ok::<_, Error>((plan.changes().clone(), Some(out.resource_id)))
                    }
                    None => Ok((Plan::new(), None)),
                }
            });
        let observe = g
            .step("observability")
            .after(service)
            .after(nat)
            .after(log_group)
            .reports_itself()
            .run(move |i| async move {
                let (_, service) = i.get(service);
                let target = ObserveTarget::from_outputs(service);
                let plan = l.observe.plan_with(ctx, i.get(log_group), &target).await?;
                let out = l.observe.apply(ctx, &plan).await?;
                Ok::<_, Error>((plan.changes().clone(), out))
            });
        let out = g.run(ctx).await?;
        let network = out.get(network).clone();
        let (service_changes, service) = out.get(service).clone();
        let rollout = out.get(rollout).clone();
        let (scaling_changes, scaling_id) = out.get(scaling).clone();
        let (observe_changes, observe_out) = out.get(observe).clone();
        changes.extend(service_changes);
        changes.extend(scaling_changes);
        changes.extend(observe_changes);
        Ok(DeployReport {
            changes,
            outputs: StackOutputs {
                network,
                service,
                log_group: observe_out.log_group,
                dashboard_url: observe_out.dashboard_url,
                alarms: observe_out.alarms,
                scaling_resource_id: scaling_id,
            },
            duration: ctx.clock().now() - start,
            rollout,
            lease,
        })
    }

    /// Opens an ECS Exec session in a running task of the stack's service (see
    /// [`ecs_service::ServiceLayer::exec`]); the caller hands it to the Session Manager
    /// plugin, as `ecs-stack exec` does.
    pub async fn exec(
        &self,
        stack: &Stack,
        request: &ecs_service::ExecRequest,
    ) -> Result<ecs_service::ExecSession> {
        stack.validate()?;
        let ctx = self.context(stack)?;
        Ok(self
            .layers
            .service
            .exec(&ctx, &stack.service_spec(), request)
            .await?)
    }

    /// The stack's log events (its log group, every container's stream) from `start_ms`
    /// (milliseconds since the Unix epoch) on, oldest first, at most `limit`. Poll it with
    /// the last event's time to follow the logs (events of that same millisecond come again:
    /// skip the ids already seen).
    ///
    /// ```no_run
    /// # async fn example(deployer: ecs_facade::Deployer, stack: ecs_facade::Stack) -> Result<(), ecs_facade::Error> {
    /// let ten_minutes_ago = 1_765_000_000_000;
    /// for event in deployer.log_events(&stack, ten_minutes_ago, 1000).await? {
    ///     println!("{} {}", event.stream, event.message);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn log_events(
        &self,
        stack: &Stack,
        start_ms: i64,
        limit: usize,
    ) -> Result<Vec<ecs_observe::LogEvent>> {
        stack.validate()?;
        let ctx = self.context(stack)?;
        let names = ServiceNames::new(ctx.stack(), &stack.service_spec());
        Ok(self
            .layers
            .observe
            .log_events(&ctx, &names.log_group, start_ms, limit)
            .await?)
    }

    /// The service's state (counts, deployments, target health, recent events) and the
    /// alarms' states.
    pub async fn status(&self, stack: &Stack) -> Result<StackStatus> {
        // Boxed: debug builds poll large futures on small stacks.
        Box::pin(self.status_inner(stack)).await
    }

    async fn status_inner(&self, stack: &Stack) -> Result<StackStatus> {
        stack.validate()?;
        let ctx = self.context(stack)?;
        let (service, alarms) = futures_util::try_join!(
            async {
                Ok::<_, Error>(
                    self.layers
                        .service
                        .status(&ctx, &stack.service_spec())
                        .await?,
                )
            },
            async { Ok::<_, Error>(self.layers.observe.alarm_states(&ctx).await?) },
        )?;
        Ok(StackStatus { service, alarms })
    }

    /// An image-only release (`ecs-stack deploy FILE --image URI`): exactly one new task
    /// definition revision (a copy of the one the service runs, with `release.image` in the
    /// selected container) and one `UpdateService`, whatever else the manifest says; then the
    /// wait for the rollout, unless [`wait_for_rollout`](Self::wait_for_rollout) is off. The
    /// selector ([`ImageRelease::service`](ecs_service::ImageRelease::service),
    /// [`container`](ecs_service::ImageRelease::container)) names a service of the stack and a
    /// container of its task; see [`ecs_service::ImageRelease`].
    ///
    /// ```no_run
    /// # async fn example(deployer: ecs_facade::Deployer, stack: ecs_facade::Stack) -> ecs_facade::Result<()> {
    /// let release = ecs_facade::service::ImageRelease::builder()
    ///     .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop-app:v43")
    ///     .build();
    /// let report = deployer.release_image(&stack, &release).await?;
    /// println!("{} now runs {}", report.service, report.task_definition);
    /// # Ok(()) }
    /// ```
    pub async fn release_image(
        &self,
        stack: &Stack,
        release: &ecs_service::ImageRelease,
    ) -> Result<ecs_service::ReleaseReport> {
        stack.validate()?;
        let mut spec = stack.service_spec();
        spec.service.rollout.wait &= self.wait;
        let service = &self.layers.service;
        let ctx = self.context(stack)?;
        // The same image again: no lease, no change. An image missing from its ECR registry
        // is refused before any change, found by a read made beside the plan's.
        let (planned, check) = futures_util::try_join!(
            async { Ok::<_, Error>(service.plan_release(&ctx, &spec, release).await?) },
            self.layers.preflight.image(&ctx, "image", &release.image),
        )?;
        if let Some(check) = check {
            Verification {
                checks: vec![check],
            }
            .into_result(&stack.name)?;
        }
        if !planned.changes_anything() {
            return Ok(planned.report().clone());
        }
        // Under the lease, read again: what another run did meanwhile is seen.
        self.under_lease(stack, "release", |ctx| async move {
            let planned = service.plan_release(&ctx, &spec, release).await?;
            Ok(service.apply_release(&ctx, &planned).await?)
        })
        .await
    }

    /// Credentials for `docker login` to the account's ECR registry, where the stack's
    /// repository is (`ecs-stack registry-login FILE` hands them to `docker login` on its
    /// standard input). The password is redacted in `Debug`.
    pub async fn registry_login(&self, stack: &Stack) -> Result<ecs_service::RegistryLogin> {
        let ctx = self.context(stack)?;
        Ok(self.layers.service.registry_login(&ctx).await?)
    }

    /// Returns the service to the previous task definition revision and waits.
    pub async fn rollback(&self, stack: &Stack) -> Result<RolloutReport> {
        stack.validate()?;
        self.under_lease(stack, "rollback", |ctx| async move {
            Ok(self
                .layers
                .service
                .rollback(&ctx, &stack.service_spec())
                .await?)
        })
        .await
    }

    /// What [`destroy`](Self::destroy) would delete, and what it would keep.
    pub async fn plan_destroy(
        &self,
        stack: &Stack,
        options: DestroyOptions,
    ) -> Result<DestroyReport> {
        // Boxed: debug builds poll large futures on small stacks.
        Box::pin(self.plan_destroy_inner(stack, options)).await
    }

    async fn plan_destroy_inner(
        &self,
        stack: &Stack,
        options: DestroyOptions,
    ) -> Result<DestroyReport> {
        stack.validate()?;
        let ctx = self.context(stack)?;
        let l = &self.layers;
        let spec = stack.service_spec();
        let names = ServiceNames::new(ctx.stack(), &spec);
        let target = scaling_target(&names, None, None, stack, false);
        let (scaling, service, network) = futures_util::try_join!(
            async { Ok::<_, Error>(l.scaling.plan_destroy(&ctx, &target).await?) },
            async {
                Ok::<_, Error>(
                    l.service
                        .plan_destroy(&ctx, &spec, options.force_delete_images)
                        .await?,
                )
            },
            async {
                match &spec.environment {
                    // The environment's network is not the service's.
                    Some(_) => Ok::<_, Error>(Plan::new()),
                    None => Ok(l.network.plan_destroy(&ctx).await?),
                }
            },
        )?;
        let (observed, observe_kept) = l
            .observe
            .plan_destroy(&ctx, &names.log_group, options.delete_logs)
            .await?;
        let mut deleted = scaling;
        deleted.extend(observed);
        deleted.extend(service.deleted.clone());
        deleted.extend(network);
        let mut kept = service.kept.clone();
        kept.extend(observe_kept);
        Ok(DestroyReport { deleted, kept })
    }

    /// Deletes everything the stack owns, in the order AWS requires: autoscaling; then the
    /// alarms and dashboard together with the service layer; then the network. The ECR
    /// repository and the log group are kept unless `options` say otherwise.
    ///
    /// A stack whose cluster runs services of its environment besides its own (a stack that
    /// is its own environment, with `services`) is refused before any change
    /// ([`ecs_service::Error::EnvironmentInUse`]): destroy those first.
    pub async fn destroy(&self, stack: &Stack, options: DestroyOptions) -> Result<DestroyReport> {
        // Boxed: debug builds poll large futures on small stacks.
        Box::pin(self.destroy_checked(stack, options)).await
    }

    async fn destroy_checked(
        &self,
        stack: &Stack,
        options: DestroyOptions,
    ) -> Result<DestroyReport> {
        stack.validate()?;
        if stack.service.environment.is_none() {
            let ctx = self.context(stack)?;
            let own = ServiceNames::new(ctx.stack(), &stack.service_spec()).service;
            let others: Vec<String> = Box::pin(self.layers.service.environment_services(&ctx))
                .await?
                .into_iter()
                .filter(|s| *s != own)
                .collect();
            if !others.is_empty() {
                return Err(ecs_service::Error::EnvironmentInUse {
                    environment: stack.name.clone(),
                    services: others,
                }
                .into());
            }
        }
        // Boxed: the whole graph is a large future, and debug builds poll it on small stacks.
        self.under_lease(stack, "destroy", |ctx| {
            Box::pin(self.destroy_inner(ctx, stack, options))
        })
        .await
    }

    async fn destroy_inner(
        &self,
        ctx: Context,
        stack: &Stack,
        options: DestroyOptions,
    ) -> Result<DestroyReport> {
        let l = &self.layers;
        let spec = stack.service_spec();
        let names = ServiceNames::new(ctx.stack(), &spec);
        let mut deleted = l
            .scaling
            .destroy(&ctx, &scaling_target(&names, None, None, stack, false))
            .await?;
        // Observability and the service layer at once, as one graph: when one fails, the
        // other still runs to its end.
        let (ctx, names, spec) = (&ctx, &names, &spec);
        let mut g = Graph::<Error>::new();
        let observe = g
            .step("observability")
            .reports_itself()
            .run(move |_| async move {
                Ok(l.observe
                    .destroy(ctx, &names.log_group, options.delete_logs)
                    .await?)
            });
        let service = g
            .step("service layer")
            .reports_itself()
            .run(move |_| async move {
                Ok(Box::pin(l.service.destroy(ctx, spec, options.force_delete_images)).await?)
            });
        let out = g.run(ctx).await?;
        let (observed, mut kept) = out.get(observe).clone();
        let service = out.get(service).clone();
        deleted.extend(observed);
        deleted.extend(service.deleted);
        kept.extend(service.kept);
        if spec.environment.is_none() {
            deleted.extend(l.network.destroy(ctx).await?);
        }
        Ok(DestroyReport { deleted, kept })
    }
}

/// A deploy planned from one round of reads ([`Deployer::prepare`]): the plan to show, and
/// what [`apply`](Self::apply) needs to carry it out, with the deployer that prepared it.
#[derive(Debug)]
pub struct PreparedDeploy {
    deployer: Deployer,
    stack: Stack,
    ctx: Context,
    service_spec: ecs_service::ServiceSpec,
    names: ServiceNames,
    wait: bool,
    reads: Reads,
    plan: Plan,
    /// The plan a saved plan promised ([`Deployer::prepare_saved`]): what the re-read under
    /// the lease must find again.
    expected: Option<Plan>,
    /// The pre-flight checks (all passed or warnings).
    verification: Verification,
}

impl PreparedDeploy {
    /// The changes the deploy will make, across every layer (values only known once their
    /// resources exist show as `(known after apply)`).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The stack it was planned for (without tasks, for an infrastructure-only deploy).
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The pre-flight checks: none failed (the plan would have been refused); some may be
    /// warnings (a check the caller may not make).
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// What the re-read under the lease must find again (a saved plan's).
    pub(crate) fn expect(&mut self, plan: Plan) {
        self.expected = Some(plan);
    }

    /// Carries out the deploy: creates what is missing, updates what differs, deletes what the
    /// stack no longer wants, and waits for the rollout. Values the plan showed as `(known
    /// after apply)` are filled in as their resources are made (the service, scaling and
    /// observability layers plan those parts again from the same reads, with the new ids), so
    /// the report's changes may name them. A replacement the plan showed is refused before any
    /// change.
    ///
    /// An empty plan makes no call at all: no lease, no read, no change. Otherwise the deploy
    /// takes the stack's lease (waiting as [`Deployer::lease`] says; [`Error::Lease`] when
    /// another run holds it), reads every layer again under it — so that what another run did
    /// meanwhile is seen: after a concurrent deploy of the same manifest nothing is left to do
    /// — and applies that plan, renewing the lease at its calls and releasing it at the end.
    /// It refuses, before any change, a plan that now deletes or replaces something the shown
    /// plan did not ([`Error::StalePlan`]); for a saved plan, any difference.
    ///
    /// [`Error::Lease`]: crate::Error::Lease
    /// [`Error::StalePlan`]: crate::Error::StalePlan
    pub async fn apply(self) -> Result<DeployReport> {
        let deployer = self.deployer.clone();
        // Boxed: the whole graph is a large future, and debug builds poll it on small stacks.
        if self.plan.is_empty() {
            // Nothing to change: no lease, no second read, no mutating call.
            return Box::pin(deployer.apply_inner(self, None)).await;
        }
        Box::pin(deployer.apply_leased(self)).await
    }
}

/// What a run must not overlap (see [`Deployer::take_lease`]).
#[derive(Debug, Clone)]
pub(crate) enum Exclusion {
    /// Nothing: a stack on its own.
    Nothing,
    /// Runs that write this environment (for one of its services).
    Environment(StackName),
    /// Runs that write these services (for their environment).
    Services(Vec<StackName>),
}

/// The network a deploy plans on: the stack's own, or (a service of an environment) the
/// environment's, found by its tags and never changed.
#[derive(Debug)]
enum NetworkRead {
    Own(NetworkPlan),
    Environment(NetworkOutputs),
}

impl NetworkRead {
    fn changes(&self) -> Plan {
        match self {
            NetworkRead::Own(p) => p.changes().clone(),
            NetworkRead::Environment(_) => Plan::new(),
        }
    }

    fn known_outputs(&self) -> Option<NetworkOutputs> {
        match self {
            NetworkRead::Own(p) => p.known_outputs(),
            NetworkRead::Environment(o) => Some(o.clone()),
        }
    }

    /// Whether it changes nothing (then nothing waits for NAT gateways).
    fn is_empty(&self) -> bool {
        match self {
            NetworkRead::Own(p) => p.is_empty(),
            NetworkRead::Environment(_) => true,
        }
    }

    fn check_replacements(&self) -> Result<()> {
        match self {
            NetworkRead::Own(p) => Ok(p.check_replacements()?),
            NetworkRead::Environment(_) => Ok(()),
        }
    }

    async fn apply(&self, ctx: &Context, layer: &NetworkLayer) -> Result<NetworkOutputs> {
        match self {
            NetworkRead::Own(p) => Ok(layer.apply(ctx, p).await?),
            NetworkRead::Environment(o) => Ok(o.clone()),
        }
    }
}

/// What every layer's planning reads saw ([`Deployer::read_all`]).
#[derive(Debug)]
struct Reads {
    network: NetworkRead,
    service: ServiceState,
    scaling: Option<ScalingState>,
    observe: ObserveState,
}

fn scaling_target(
    names: &ServiceNames,
    lb: Option<&str>,
    tg: Option<&str>,
    stack: &Stack,
    has_lb: bool,
) -> ScalingTarget {
    ScalingTarget {
        cluster: names.cluster.clone(),
        service: names.service.clone(),
        desired_count: Some(stack.service.service.desired_count),
        resource_label: match (lb, tg) {
            (Some(lb), Some(tg)) => ecs_scaling::resource_label(lb, tg),
            _ if has_lb => Some(KNOWN_AFTER_APPLY.to_string()),
            _ => None,
        },
    }
}

fn observe_target(
    names: &ServiceNames,
    lb: Option<&str>,
    tg: Option<&str>,
    has_lb: bool,
) -> ObserveTarget {
    let dim = |v: Option<String>| v.or_else(|| has_lb.then(|| KNOWN_AFTER_APPLY.to_string()));
    ObserveTarget {
        cluster: names.cluster.clone(),
        service: names.service.clone(),
        load_balancer: dim(lb.and_then(ecs_observe::load_balancer_dimension)),
        target_group: dim(tg.and_then(ecs_observe::target_group_dimension)),
        log_group: names.log_group.clone(),
    }
}

/// The work is done (or failed on its own); a lease that could not be released expires by
/// itself after its time to live: said, not made the run's failure.
fn warn_unreleased(ctx: &Context, e: &ecs_core::lease::LeaseError) {
    ctx.emit(Event::Progress {
        resource: format!("lease of {}", LeaseScope::stack(ctx.stack())),
        message: format!("not released ({e}); it expires after its time to live, or `unlock` it"),
    });
}

/// A clock shared by reference count, so one deployer's clock reaches every context.
#[derive(Debug, Clone)]
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> std::time::Instant {
        self.0.now()
    }

    fn sleep(&self, duration: Duration) -> ecs_core::BoxFuture<'static, ()> {
        self.0.sleep(duration)
    }
}
