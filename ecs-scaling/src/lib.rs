//! The scaling layer of `ecs-facade`: Application Auto Scaling of the Fargate service's
//! desired count: the scalable target (`service/<cluster>/<service>`), target tracking on
//! average CPU, average memory and ALB requests per target, step scaling on a custom
//! CloudWatch metric (with its alarm), scheduled range changes, suspend/resume, and a
//! `scale(min, max, desired)` helper.
//!
//! Everything is reconciled exactly: a changed target value updates the policy in place, a
//! removed policy or scheduled action is deleted, and an unchanged spec makes no mutating
//! call. Policies and scheduled actions are the stack's when they sit on the stack's own
//! service and carry the stack's name prefix (Application Auto Scaling policies cannot be
//! tagged); the scalable target is tagged at registration.
//!
//! Planning comes in two phases, so that a deploy can issue every layer's reads at once,
//! before the load balancer's resource label is known: [`ScalingLayer::read`] validates the
//! spec and reads the scalable target, its policies, step alarms and scheduled actions;
//! [`ScalingLayer::plan_with`] diffs them against the target with its real label, without any
//! AWS call. [`ScalingLayer::plan`] does both at once.
//!
//! # Example
//!
//! ```no_run
//! use ecs_core::{Context, StackName};
//! use ecs_scaling::{ScalingLayer, ScalingSpec, ScalingTarget};
//!
//! # async fn example(service: ecs_service::ServiceOutputs) -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let ctx = Context::builder().stack(StackName::new("web")?).build();
//! let layer = ScalingLayer::new(&config);
//! let target = ScalingTarget::from_outputs(&service);
//! let plan = layer.plan(&ctx, &ScalingSpec::cpu_and_memory(2, 10), &target).await?;
//! println!("{plan}");
//! layer.apply(&ctx, &plan).await?;
//! # Ok(()) }
//! ```

mod alarm;
mod error;
mod policy;
mod schedule;
mod spec;
mod target;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use ecs_core::graph::{self, Dep, Graph};
use ecs_core::resource::{self, Known};
use ecs_core::{Action, Change, Context, Plan, Tags};

use alarm::{Alarm, LiveAlarm, StepAlarm};
use policy::{LivePolicy, Policy, PolicyDoc};
use schedule::{LiveSchedule, Schedule, ScheduleDoc};
use target::{LiveTarget, ScalableTarget};

pub use error::{Error, Result};
pub use spec::{CustomMetric, ScalingSpec, ScheduledScaling, Step, StepPolicy, TargetTracking};

/// The service being scaled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScalingTarget {
    /// The cluster's name.
    pub cluster: String,
    /// The service's name.
    pub service: String,
    /// The service's desired count as the spec gives it (checked against min/max).
    pub desired_count: Option<u32>,
    /// The ALB resource label (`app/<lb>/<id>/targetgroup/<tg>/<id>`) for request-count
    /// tracking, when there is a load balancer.
    pub resource_label: Option<String>,
}

impl ScalingTarget {
    /// The target for what the service layer deployed.
    pub fn from_outputs(o: &ecs_service::ServiceOutputs) -> Self {
        Self {
            cluster: o.names.cluster.clone(),
            service: o.names.service.clone(),
            desired_count: None,
            resource_label: o
                .load_balancer_arn
                .as_deref()
                .zip(o.target_group_arn.as_deref())
                .and_then(|(lb, tg)| resource_label(lb, tg)),
        }
    }

    /// The Application Auto Scaling resource id: `service/<cluster>/<service>` (names, not
    /// ARNs).
    pub fn resource_id(&self) -> String {
        format!("service/{}/{}", self.cluster, self.service)
    }
}

/// The resource label of ALB request-count tracking, from the load balancer's and the target
/// group's ARNs.
///
/// ```
/// let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188";
/// let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-app/73e2d6bc24d8a067";
/// assert_eq!(
///     ecs_scaling::resource_label(lb, tg).as_deref(),
///     Some("app/web-alb/50dc6c495c0c9188/targetgroup/web-app/73e2d6bc24d8a067"),
/// );
/// ```
pub fn resource_label(load_balancer_arn: &str, target_group_arn: &str) -> Option<String> {
    let lb = load_balancer_arn.split_once(":loadbalancer/")?.1;
    let tg = target_group_arn.rsplit_once(':')?.1;
    tg.starts_with("targetgroup/").then(|| format!("{lb}/{tg}"))
}

/// The SDK clients the layer uses.
#[derive(Debug, Clone)]
pub struct ScalingClients {
    /// Application Auto Scaling.
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// CloudWatch (the alarms of step policies).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// ECS (for [`ScalingLayer::scale`]).
    pub ecs: aws_sdk_ecs::Client,
}

impl ScalingClients {
    /// Clients built from one SDK configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            autoscaling: aws_sdk_applicationautoscaling::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Desired {
    resource_id: String,
    min: i32,
    max: i32,
    policies: BTreeMap<String, PolicyDoc>,
    /// Each step alarm with the name of the policy it triggers.
    alarms: BTreeMap<String, (String, StepAlarm)>,
    /// The tags each step alarm should carry, by name.
    alarm_tags: BTreeMap<String, Tags>,
    scheduled: BTreeMap<String, ScheduleDoc>,
}

impl Desired {
    fn target(&self) -> ScalableTarget {
        ScalableTarget {
            resource_id: self.resource_id.clone(),
            min: self.min,
            max: self.max,
        }
    }

    /// The step alarm `name`, triggering `policy_arn`.
    fn alarm<'a>(&'a self, name: &'a str, policy_arn: Known<String>) -> Option<Alarm<'a>> {
        let (_, doc) = self.alarms.get(name)?;
        Some(Alarm {
            name,
            doc,
            tags: self.alarm_tags.get(name).cloned().unwrap_or_default(),
            policy_arn,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Live {
    target: Option<LiveTarget>,
    policies: BTreeMap<String, LivePolicy>,
    alarms: BTreeMap<String, LiveAlarm>,
    /// The live step alarms that lack the stack's tag: never changed or deleted.
    foreign_alarms: BTreeSet<String>,
    scheduled: BTreeMap<String, LiveSchedule>,
}

/// What [`ScalingLayer::read`] saw: the input of [`ScalingLayer::plan_with`].
#[derive(Debug, Clone)]
pub struct ScalingState {
    /// The resource id of the target that was read.
    resource_id: String,
    spec: ScalingSpec,
    live: Live,
}

impl ScalingState {
    /// The Application Auto Scaling resource id of the service that was read.
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// Whether the service's scalable target is registered already.
    pub fn target_registered(&self) -> bool {
        self.live.target.is_some()
    }
}

/// The result of [`ScalingLayer::plan`] or [`ScalingLayer::plan_with`]; pass it to
/// [`ScalingLayer::apply`].
#[derive(Debug, Clone)]
pub struct ScalingPlan {
    desired: Desired,
    live: Live,
    changes: Plan,
}

impl ScalingPlan {
    /// The changes, resource by resource.
    pub fn changes(&self) -> &Plan {
        &self.changes
    }
}

impl fmt::Display for ScalingPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.changes, f)
    }
}

/// What the scaling layer made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ScalingOutputs {
    /// The scalable target's resource id.
    pub resource_id: String,
    /// The policies' names.
    pub policies: Vec<String>,
    /// The scheduled actions' names.
    pub scheduled_actions: Vec<String>,
}

/// The scaling layer, over SDK clients the caller provides.
#[derive(Debug, Clone)]
pub struct ScalingLayer {
    clients: ScalingClients,
}

fn policy_name(ctx: &Context, suffix: &str) -> String {
    ctx.stack().name(ecs_core::NameKind::Alarm, suffix)
}

/// The name of a step policy and of its alarm: the stack's and the policy's names only.
fn step_name(ctx: &Context, s: &StepPolicy) -> String {
    policy_name(ctx, &format!("step-{}", s.name))
}

/// Every problem of `spec` for `target`, and of the context's tags.
fn spec_problems(ctx: &Context, spec: &ScalingSpec, target: &ScalingTarget) -> ecs_core::Problems {
    let mut problems = ctx.tags().validate("tags");
    if let Err(p) = spec.validate(target.desired_count, target.resource_label.is_some()) {
        problems.extend(p);
    }
    problems
}

fn desired(ctx: &Context, spec: &ScalingSpec, t: &ScalingTarget) -> Desired {
    let mut policies = BTreeMap::new();
    for (suffix, metric, tracking, label) in [
        ("cpu", "ECSServiceAverageCPUUtilization", &spec.cpu, None),
        (
            "memory",
            "ECSServiceAverageMemoryUtilization",
            &spec.memory,
            None,
        ),
        (
            "requests",
            "ALBRequestCountPerTarget",
            &spec.requests_per_target,
            t.resource_label.clone(),
        ),
    ] {
        if let Some(tt) = tracking {
            policies.insert(
                policy_name(ctx, suffix),
                PolicyDoc::Tracking {
                    metric: metric.to_string(),
                    label,
                    target: tt.target,
                    scale_in_cooldown: tt.scale_in_cooldown as i32,
                    scale_out_cooldown: tt.scale_out_cooldown as i32,
                    disable_scale_in: tt.disable_scale_in,
                },
            );
        }
    }
    let mut alarms = BTreeMap::new();
    let mut alarm_tags = BTreeMap::new();
    for s in &spec.step {
        let name = step_name(ctx, s);
        let mut adjustments: Vec<_> = s
            .steps
            .iter()
            .map(|x| (x.lower, x.upper, x.adjustment))
            .collect();
        adjustments.sort_by(|a, b| a.0.unwrap_or(f64::MIN).total_cmp(&b.0.unwrap_or(f64::MIN)));
        policies.insert(
            name.clone(),
            PolicyDoc::Step {
                adjustments,
                cooldown: s.cooldown as i32,
                aggregation: aggregation(&s.metric.statistic).to_string(),
            },
        );
        alarm_tags.insert(name.clone(), alarm_tags_of(ctx, &name));
        alarms.insert(
            name.clone(),
            (
                name,
                StepAlarm {
                    namespace: s.metric.namespace.clone(),
                    metric: s.metric.name.clone(),
                    dimensions: s.metric.dimensions.clone(),
                    statistic: s.metric.statistic.clone(),
                    threshold: s.threshold,
                    comparison: if s.below {
                        "LessThanThreshold"
                    } else {
                        "GreaterThanOrEqualToThreshold"
                    }
                    .to_string(),
                    period: s.period as i32,
                    evaluation_periods: s.evaluation_periods as i32,
                },
            ),
        );
    }
    let scheduled = spec
        .scheduled
        .iter()
        .map(|s| {
            (
                policy_name(ctx, &s.name),
                (
                    s.schedule.clone(),
                    s.timezone.clone().filter(|z| z != "UTC"),
                    s.min.map(|v| v as i32),
                    s.max.map(|v| v as i32),
                ),
            )
        })
        .collect();
    Desired {
        resource_id: t.resource_id(),
        min: spec.min as i32,
        max: spec.max as i32,
        policies,
        alarms,
        alarm_tags,
        scheduled,
    }
}

/// The tags the step alarm `name` carries (CloudWatch sets them when the alarm is created).
fn alarm_tags_of(ctx: &Context, name: &str) -> Tags {
    ctx.resource_tags(Some(&format!("alarm/{name}")), None)
}

fn aggregation(statistic: &str) -> &'static str {
    match statistic {
        "Maximum" => "Maximum",
        "Minimum" => "Minimum",
        _ => "Average",
    }
}

fn changes(d: &Desired, l: &Live) -> Plan {
    let mut plan = Plan::new();
    let target = d.target();
    plan.push(resource::decide(&target, l.target.clone()).change(&target));
    for (name, doc) in &d.policies {
        let policy = Policy {
            resource_id: &d.resource_id,
            name,
            doc,
        };
        plan.push(resource::decide(&policy, l.policies.get(name).cloned()).change(&policy));
    }
    for name in l.policies.keys().filter(|n| !d.policies.contains_key(*n)) {
        plan.push(Change::new(policy::KIND, name, Action::Delete));
    }
    for (name, (policy, _)) in &d.alarms {
        let policy_arn = l.policies.get(policy).map(|p| p.arn.clone()).into();
        let mut alarm = d.alarm(name, policy_arn).expect("a desired alarm");
        // Someone else's alarm under the name is compared without its tags (never set): one
        // that matches is left alone, one that differs is refused by `plan_with`.
        if let (true, Some(live)) = (l.foreign_alarms.contains(name), l.alarms.get(name)) {
            alarm.tags = live.tags.clone();
        }
        plan.push(resource::decide(&alarm, l.alarms.get(name).cloned()).change(&alarm));
    }
    for name in l
        .alarms
        .keys()
        .filter(|n| !d.alarms.contains_key(*n) && !l.foreign_alarms.contains(*n))
    {
        plan.push(Change::new(alarm::KIND, name, Action::Delete));
    }
    for (name, doc) in &d.scheduled {
        let schedule = Schedule {
            resource_id: &d.resource_id,
            name,
            doc,
        };
        plan.push(resource::decide(&schedule, l.scheduled.get(name).cloned()).change(&schedule));
    }
    for name in l.scheduled.keys().filter(|n| !d.scheduled.contains_key(*n)) {
        plan.push(Change::new(schedule::KIND, name, Action::Delete));
    }
    plan
}

/// An optional value as the plan shows it (`none` when unset).
fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string)
}

impl ScalingLayer {
    /// A layer using clients built from `config`.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self::from_clients(ScalingClients::new(config))
    }

    /// A layer using these clients (for custom configuration, interceptors or mocks).
    pub fn from_clients(clients: ScalingClients) -> Self {
        Self { clients }
    }

    async fn observe(
        &self,
        ctx: &Context,
        t: &ScalingTarget,
        step_alarms: &[String],
    ) -> Result<Live> {
        let aas = &self.clients.autoscaling;
        let id = t.resource_id();
        let resource = format!("{} {id}", target::KIND);
        let prefix = format!("{}-", ctx.stack());
        let (targets, policies, scheduled) = futures_util::try_join!(
            ctx.call("DescribeScalableTargets", &resource, || {
                aas.describe_scalable_targets()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_ids(&id)
                    .send()
            }),
            ctx.call("DescribeScalingPolicies", &resource, || {
                aas.describe_scaling_policies()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(&id)
                    .send()
            }),
            ctx.call("DescribeScheduledActions", &resource, || {
                aas.describe_scheduled_actions()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(&id)
                    .send()
            }),
        )?;
        let target = targets
            .scalable_targets()
            .iter()
            .find(|s| {
                s.resource_id() == id
                    && s.scalable_dimension() == &ScalableDimension::EcsServiceDesiredCount
            })
            .map(|s| LiveTarget {
                resource_id: id.clone(),
                min: s.min_capacity(),
                max: s.max_capacity(),
                suspended: s
                    .suspended_state()
                    .is_some_and(|x| x.dynamic_scaling_in_suspended() == Some(true)),
            });
        let policies = policies
            .scaling_policies()
            .iter()
            .filter(|p| p.policy_name().starts_with(&prefix))
            .filter_map(|p| {
                let doc = if let Some(c) = p.target_tracking_scaling_policy_configuration() {
                    let spec = c.predefined_metric_specification();
                    PolicyDoc::Tracking {
                        metric: spec
                            .map(|s| s.predefined_metric_type().as_str().to_string())
                            .unwrap_or_default(),
                        label: spec.and_then(|s| s.resource_label()).map(str::to_string),
                        target: c.target_value(),
                        scale_in_cooldown: c.scale_in_cooldown().unwrap_or(300),
                        scale_out_cooldown: c.scale_out_cooldown().unwrap_or(300),
                        disable_scale_in: c.disable_scale_in().unwrap_or(false),
                    }
                } else if let Some(c) = p.step_scaling_policy_configuration() {
                    let mut adjustments: Vec<_> = c
                        .step_adjustments()
                        .iter()
                        .map(|a| {
                            (
                                a.metric_interval_lower_bound(),
                                a.metric_interval_upper_bound(),
                                a.scaling_adjustment(),
                            )
                        })
                        .collect();
                    adjustments.sort_by(|a, b| {
                        a.0.unwrap_or(f64::MIN).total_cmp(&b.0.unwrap_or(f64::MIN))
                    });
                    PolicyDoc::Step {
                        adjustments,
                        cooldown: c.cooldown().unwrap_or_default(),
                        aggregation: c
                            .metric_aggregation_type()
                            .map_or("Average", |a| a.as_str())
                            .to_string(),
                    }
                } else {
                    return None;
                };
                Some((
                    p.policy_name().to_string(),
                    LivePolicy {
                        resource_id: id.clone(),
                        name: p.policy_name().to_string(),
                        arn: p.policy_arn().to_string(),
                        doc,
                    },
                ))
            })
            .collect();
        let scheduled = scheduled
            .scheduled_actions()
            .iter()
            .filter(|a| a.scheduled_action_name().starts_with(&prefix))
            .map(|a| {
                let action = a.scalable_target_action();
                let name = a.scheduled_action_name().to_string();
                (
                    name.clone(),
                    LiveSchedule {
                        resource_id: id.clone(),
                        name,
                        doc: (
                            a.schedule().to_string(),
                            a.timezone()
                                .filter(|z| !z.is_empty() && *z != "UTC")
                                .map(str::to_string),
                            action.and_then(|x| x.min_capacity()),
                            action.and_then(|x| x.max_capacity()),
                        ),
                    },
                )
            })
            .collect();
        let mut live = Live {
            target,
            policies,
            alarms: BTreeMap::new(),
            foreign_alarms: BTreeSet::new(),
            scheduled,
        };
        let mut names: Vec<String> = live
            .policies
            .keys()
            .filter(|n| n.starts_with(&format!("{prefix}step-")))
            .cloned()
            .collect();
        names.extend(step_alarms.iter().cloned());
        names.sort();
        names.dedup();
        if !names.is_empty() {
            let out = ctx
                .call(
                    "DescribeAlarms",
                    &format!("{} {prefix}step-*", alarm::KIND),
                    || {
                        self.clients
                            .cloudwatch
                            .describe_alarms()
                            .set_alarm_names(Some(names.clone()))
                            .send()
                    },
                )
                .await?;
            for a in out.metric_alarms() {
                let Some(name) = a.alarm_name() else { continue };
                live.alarms.insert(
                    name.to_string(),
                    LiveAlarm {
                        name: name.to_string(),
                        arn: a.alarm_arn().unwrap_or_default().to_string(),
                        doc: StepAlarm {
                            namespace: a.namespace().unwrap_or_default().to_string(),
                            metric: a.metric_name().unwrap_or_default().to_string(),
                            dimensions: a
                                .dimensions()
                                .iter()
                                .map(|d| {
                                    (
                                        d.name().unwrap_or_default().to_string(),
                                        d.value().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect(),
                            statistic: a
                                .statistic()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                            threshold: a.threshold().unwrap_or_default(),
                            comparison: a
                                .comparison_operator()
                                .map(|c| c.as_str().to_string())
                                .unwrap_or_default(),
                            period: a.period().unwrap_or_default(),
                            evaluation_periods: a.evaluation_periods().unwrap_or_default(),
                        },
                        actions: a.alarm_actions().to_vec(),
                        tags: Tags::new(),
                    },
                );
            }
            // Their tags, read with the plan so that a foreign one is refused before any
            // change of any layer, and drifted ones are set back.
            self.read_alarm_tags(ctx, &mut live).await?;
            live.foreign_alarms = live
                .alarms
                .values()
                .filter(|a| !resource::owned::<Alarm<'_>>(ctx, a))
                .map(|a| a.name.clone())
                .collect();
        }
        Ok(live)
    }

    /// Validates the spec (every problem at once, before any AWS call), reads the scalable
    /// target, its policies and scheduled actions, and returns the changes `apply` would make.
    ///
    /// The same as [`read`](Self::read) then [`plan_with`](Self::plan_with) of `target`.
    pub async fn plan(
        &self,
        ctx: &Context,
        spec: &ScalingSpec,
        target: &ScalingTarget,
    ) -> Result<ScalingPlan> {
        let state = self.read(ctx, spec, target).await?;
        self.plan_with(ctx, &state, target)
    }

    /// The planning reads: validates `spec` for `target` (every problem at once, before any
    /// AWS call), then reads the scalable target, its policies and scheduled actions, and the
    /// alarms of the step policies. Makes no change.
    ///
    /// Only the target's cluster and service (its [resource id](ScalingTarget::resource_id)),
    /// its desired count and whether it has a resource label matter here: the label itself
    /// may still be a placeholder (such as `(known after apply)`), as the reads do not depend
    /// on it. Pass the result to [`plan_with`](Self::plan_with) with the real label once it
    /// is known.
    pub async fn read(
        &self,
        ctx: &Context,
        spec: &ScalingSpec,
        target: &ScalingTarget,
    ) -> Result<ScalingState> {
        spec_problems(ctx, spec, target).into_result()?;
        let alarm_names: Vec<String> = spec.step.iter().map(|s| step_name(ctx, s)).collect();
        let live = self.observe(ctx, target, &alarm_names).await?;
        Ok(ScalingState {
            resource_id: target.resource_id(),
            spec: spec.clone(),
            live,
        })
    }

    /// The changes `apply` would make for `target`, against what [`read`](Self::read) saw
    /// (the spec included). Makes no AWS call.
    ///
    /// The spec is validated again for this target, and `target` must be the service `read`
    /// was given (the same [resource id](ScalingTarget::resource_id)); every problem is
    /// reported at once, as [`Error::problems`], a different service under the field
    /// `target.resource_id`.
    pub fn plan_with(
        &self,
        ctx: &Context,
        state: &ScalingState,
        target: &ScalingTarget,
    ) -> Result<ScalingPlan> {
        let mut problems = spec_problems(ctx, &state.spec, target);
        let id = target.resource_id();
        if id != state.resource_id {
            problems.push(
                "target.resource_id",
                format!(
                    "`{id}` is not `{}`, the service that was read: read again for this target",
                    state.resource_id
                ),
            );
        }
        problems.into_result()?;
        let desired = desired(ctx, &state.spec, target);
        let changes = changes(&desired, &state.live);
        // A step alarm is changed only when it carries the stack's tag, the rule every alarm
        // of the stack follows (one no longer wanted without it is left alone: `changes`).
        if let Some(name) = state.live.foreign_alarms.iter().find(|n| {
            changes
                .find(alarm::KIND, n)
                .is_some_and(|c| c.action.is_change())
        }) {
            return Err(Error::Foreign(ecs_core::resource::Foreign::untagged(
                ctx,
                alarm::KIND,
                name.clone(),
            )));
        }
        Ok(ScalingPlan {
            desired,
            live: state.live.clone(),
            changes,
        })
    }

    /// Carries out `plan`: registers (or updates) the scalable target first — policies
    /// cannot exist without it — then puts and deletes policies, step alarms (each after its
    /// policy, which it triggers by ARN) and scheduled actions concurrently.
    pub async fn apply(&self, ctx: &Context, plan: &ScalingPlan) -> Result<ScalingOutputs> {
        let (d, l) = (&plan.desired, &plan.live);
        let aas = &self.clients.autoscaling;
        let cw = &self.clients.cloudwatch;
        let verb =
            |kind: &str, name: &str| plan.changes.find(kind, name).and_then(|c| c.action.verb());
        // What goes, declared before the graph whose steps borrow it.
        let gone_policies: Vec<&LivePolicy> = l
            .policies
            .values()
            .filter(|p| !d.policies.contains_key(&p.name))
            .collect();
        let gone_alarms: Vec<String> = l
            .alarms
            .keys()
            .filter(|n| !d.alarms.contains_key(*n) && !l.foreign_alarms.contains(*n))
            .cloned()
            .collect();
        let gone_scheduled: Vec<&LiveSchedule> = l
            .scheduled
            .values()
            .filter(|s| !d.scheduled.contains_key(&s.name))
            .collect();
        let mut g = Graph::<Error>::new();

        // The scalable target first: policies and scheduled actions cannot exist without it.
        let target = g
            .step(format!("{} {}", target::KIND, d.resource_id))
            .action_if(verb(target::KIND, target::LOGICAL))
            .converge(ctx, aas, l.target.clone(), |_| d.target());
        let mut policies: BTreeMap<&str, graph::Step<String>> = BTreeMap::new();
        for (name, doc) in &d.policies {
            let step = g
                .step(format!("{} {name}", policy::KIND))
                .after(target)
                .action_if(verb(policy::KIND, name))
                .converge(ctx, aas, l.policies.get(name).cloned(), move |_| Policy {
                    resource_id: &d.resource_id,
                    name,
                    doc,
                });
            policies.insert(name.as_str(), step);
        }
        // A step alarm triggers its policy by the ARN the policy's step gives. Someone else's
        // alarm under the name is left alone (the plan refused changing it).
        for (name, (policy, _)) in d
            .alarms
            .iter()
            .filter(|(n, _)| !l.foreign_alarms.contains(*n))
        {
            let policy_step = policies[policy.as_str()];
            g.step(format!("{} {name}", alarm::KIND))
                .after(target)
                .after(policy_step)
                .action_if(verb(alarm::KIND, name))
                .converge(ctx, cw, l.alarms.get(name).cloned(), move |i| {
                    d.alarm(name, Known::Known(i.get(policy_step).clone()))
                        .expect("a desired alarm")
                });
        }
        for (name, doc) in &d.scheduled {
            g.step(format!("{} {name}", schedule::KIND))
                .after(target)
                .action_if(verb(schedule::KIND, name))
                .converge(ctx, aas, l.scheduled.get(name).cloned(), move |_| {
                    Schedule {
                        resource_id: &d.resource_id,
                        name,
                        doc,
                    }
                });
        }
        self.add_deletes(
            &mut g,
            ctx,
            &gone_policies,
            &gone_alarms,
            &gone_scheduled,
            Some(target.into()),
        );
        g.run(ctx).await?;
        Ok(ScalingOutputs {
            resource_id: d.resource_id.clone(),
            policies: d.policies.keys().cloned().collect(),
            scheduled_actions: d.scheduled.keys().cloned().collect(),
        })
    }

    /// Adds to `g` a delete step for each of `policies` and `scheduled` and one for every
    /// hundred of `alarms` (one call each), each after `after`; returns them.
    fn add_deletes<'a>(
        &'a self,
        g: &mut Graph<'a, Error>,
        ctx: &'a Context,
        policies: &[&'a LivePolicy],
        alarms: &'a [String],
        scheduled: &[&'a LiveSchedule],
        after: Option<Dep>,
    ) -> Vec<Dep> {
        let aas = &self.clients.autoscaling;
        let mut steps: Vec<Dep> = Vec::new();
        for &p in policies {
            let step = g
                .step(format!("{} {}", policy::KIND, p.name))
                .after_all(after)
                .action("delete")
                .run(move |_| resource::delete::<Policy<'_>>(ctx, aas, p));
            steps.push(step.into());
        }
        for &s in scheduled {
            let step = g
                .step(format!("{} {}", schedule::KIND, s.name))
                .after_all(after)
                .action("delete")
                .run(move |_| resource::delete::<Schedule<'_>>(ctx, aas, s));
            steps.push(step.into());
        }
        for chunk in alarms.chunks(100) {
            let step = g
                .step(format!("{} {}", alarm::KIND, chunk.join(",")))
                .after_all(after)
                .action("delete")
                .run(move |_| alarm::delete_all(ctx, &self.clients.cloudwatch, chunk));
            steps.push(step.into());
        }
        steps
    }

    /// The tags of every live step alarm (read by ARN, all at once; no call when there is
    /// none).
    async fn read_alarm_tags(&self, ctx: &Context, live: &mut Live) -> Result<()> {
        let cw = &self.clients.cloudwatch;
        let tags = futures_util::future::try_join_all(live.alarms.values().map(|a| async move {
            let out = ctx
                .call(
                    "ListTagsForResource",
                    &format!("{} {}", alarm::KIND, a.name),
                    || cw.list_tags_for_resource().resource_arn(&a.arn).send(),
                )
                .await?;
            let tags = Tags::from_pairs(out.tags().iter().map(|t| (t.key(), t.value())));
            Ok::<_, Error>((a.name.clone(), tags))
        }))
        .await?;
        for (name, t) in tags {
            if let Some(a) = live.alarms.get_mut(&name) {
                a.tags = t;
            }
        }
        Ok(())
    }

    /// Plans and applies.
    pub async fn deploy(
        &self,
        ctx: &Context,
        spec: &ScalingSpec,
        target: &ScalingTarget,
    ) -> Result<(Plan, ScalingOutputs)> {
        let plan = self.plan(ctx, spec, target).await?;
        let outputs = self.apply(ctx, &plan).await?;
        Ok((plan.changes, outputs))
    }

    async fn current(&self, ctx: &Context, t: &ScalingTarget) -> Result<LiveTarget> {
        self.observe(ctx, t, &[])
            .await?
            .target
            .ok_or_else(|| Error::NotRegistered {
                resource_id: t.resource_id(),
            })
    }

    /// Registers the target `t` again with `min` and `max` and, when given, the suspended
    /// state.
    async fn register(
        &self,
        ctx: &Context,
        t: &ScalingTarget,
        min: i32,
        max: i32,
        suspended: Option<bool>,
    ) -> Result<()> {
        let aas = &self.clients.autoscaling;
        target::register(
            ctx,
            aas,
            &t.resource_id(),
            min,
            max,
            suspended,
            &Tags::new(),
        )
        .await
    }

    /// Suspends dynamic and scheduled scaling (for maintenance); the range is kept.
    pub async fn suspend(&self, ctx: &Context, t: &ScalingTarget) -> Result<()> {
        let live = self.current(ctx, t).await?;
        self.register(ctx, t, live.min, live.max, Some(true)).await
    }

    /// Resumes scaling after [`suspend`](Self::suspend).
    pub async fn resume(&self, ctx: &Context, t: &ScalingTarget) -> Result<()> {
        let live = self.current(ctx, t).await?;
        self.register(ctx, t, live.min, live.max, Some(false)).await
    }

    /// Sets the scaling range and the service's desired count now (`min ≤ desired ≤ max`).
    pub async fn scale(
        &self,
        ctx: &Context,
        t: &ScalingTarget,
        min: u32,
        max: u32,
        desired: u32,
    ) -> Result<()> {
        let mut p = ecs_core::Problems::new();
        if max == 0 || min > max || desired < min || desired > max {
            p.push(
                "scale",
                format!("need min ≤ desired ≤ max (got {min}, {desired}, {max})"),
            );
        }
        p.into_result()?;
        self.register(ctx, t, min as i32, max as i32, None).await?;
        let resource = format!("ecs-service {}", t.service);
        ctx.call("UpdateService", &resource, || {
            self.clients
                .ecs
                .update_service()
                .cluster(&t.cluster)
                .service(&t.service)
                .desired_count(desired as i32)
                .send()
        })
        .await?;
        Ok(())
    }

    /// What [`destroy`](Self::destroy) would delete.
    pub async fn plan_destroy(&self, ctx: &Context, t: &ScalingTarget) -> Result<Plan> {
        Ok(destroy_plan(&self.observe(ctx, t, &[]).await?))
    }

    /// Deletes the stack's policies (and step alarms) and scheduled actions, then deregisters
    /// the scalable target. Deregistering the target makes AWS delete whatever else is
    /// attached to the stack's own service as well.
    pub async fn destroy(&self, ctx: &Context, t: &ScalingTarget) -> Result<Plan> {
        let live = self.observe(ctx, t, &[]).await?;
        let plan = destroy_plan(&live);
        let policies: Vec<&LivePolicy> = live.policies.values().collect();
        let alarms: Vec<String> = live
            .alarms
            .keys()
            .filter(|n| !live.foreign_alarms.contains(*n))
            .cloned()
            .collect();
        let scheduled: Vec<&LiveSchedule> = live.scheduled.values().collect();
        let mut g = Graph::<Error>::new();
        let deletes = self.add_deletes(&mut g, ctx, &policies, &alarms, &scheduled, None);
        if let Some(registered) = &live.target {
            let aas = &self.clients.autoscaling;
            g.step(format!("{} {}", target::KIND, registered.resource_id))
                .after_all(deletes)
                .action("deregister")
                .run_with_detail(
                    |_: &bool| "deregistered".to_string(),
                    move |_| resource::delete::<ScalableTarget>(ctx, aas, registered),
                );
        }
        g.run(ctx).await?;
        Ok(plan)
    }
}

fn destroy_plan(live: &Live) -> Plan {
    let mut plan = Plan::new();
    for n in live.policies.keys() {
        plan.push(Change::new(policy::KIND, n, Action::Delete));
    }
    for n in live
        .alarms
        .keys()
        .filter(|n| !live.foreign_alarms.contains(*n))
    {
        plan.push(Change::new(alarm::KIND, n, Action::Delete));
    }
    for n in live.scheduled.keys() {
        plan.push(Change::new(schedule::KIND, n, Action::Delete));
    }
    if live.target.is_some() {
        plan.push(Change::new(target::KIND, target::LOGICAL, Action::Delete));
    }
    plan
}

#[cfg(test)]
mod diff_tests {
    use super::*;
    use ecs_core::resource::{Diff, Resource};
    use ecs_core::FieldDiff;

    fn alarm(threshold: f64) -> StepAlarm {
        StepAlarm {
            namespace: "App".into(),
            metric: "QueueDepth".into(),
            dimensions: BTreeMap::from([("Queue".to_string(), "jobs".to_string())]),
            statistic: "Maximum".into(),
            threshold,
            comparison: "GreaterThanOrEqualToThreshold".into(),
            period: 60,
            evaluation_periods: 2,
        }
    }

    fn tracking(target: f64) -> PolicyDoc {
        PolicyDoc::Tracking {
            metric: "ECSServiceAverageCPUUtilization".into(),
            label: None,
            target,
            scale_in_cooldown: 300,
            scale_out_cooldown: 60,
            disable_scale_in: false,
        }
    }

    fn lines<D: Diff>(diffs: Vec<D>) -> Vec<FieldDiff> {
        diffs.iter().map(Diff::field).collect()
    }

    #[test]
    fn typed_diffs_name_each_field_that_differs() {
        assert_eq!(
            lines(alarm::alarm_diffs(&alarm(100.0), &alarm(100.0))),
            vec![]
        );
        assert_eq!(
            lines(alarm::alarm_diffs(&alarm(100.0), &alarm(7.5))),
            vec![FieldDiff::new("threshold", "100", "7.5")]
        );
        assert_eq!(
            lines(policy::policy_diffs(&tracking(70.0), &tracking(60.0))),
            vec![FieldDiff::new("target", "70", "60")]
        );
        let step = PolicyDoc::Step {
            adjustments: vec![(Some(0.0), Some(50.0), 1), (Some(50.0), None, 3)],
            cooldown: 60,
            aggregation: "Maximum".into(),
        };
        assert_eq!(
            lines(policy::policy_diffs(&tracking(70.0), &step)),
            vec![FieldDiff::new("type", "target tracking", "step scaling")]
        );
        let mut fewer = step.clone();
        if let PolicyDoc::Step { adjustments, .. } = &mut fewer {
            adjustments.pop();
        }
        assert_eq!(
            lines(policy::policy_diffs(&step, &fewer)),
            vec![FieldDiff::new(
                "steps",
                "[0, 50) +1, [50, none) +3",
                "[0, 50) +1"
            )]
        );
        let night = |min| ("cron(0 22 * * ? *)".to_string(), None, Some(min), Some(4));
        assert_eq!(
            lines(schedule::schedule_diffs(&night(1), &night(2))),
            vec![FieldDiff::new("min", "1", "2")]
        );
    }

    #[test]
    fn a_step_alarm_follows_its_policy_and_its_tags() {
        let doc = alarm(100.0);
        let tags = Tags::new().with("ecs:stack", "web");
        let live = LiveAlarm {
            name: "web-step-queue".into(),
            arn: "arn:alarm".into(),
            doc: doc.clone(),
            actions: vec!["arn:policy".into()],
            tags: tags.clone(),
        };
        let want = |policy_arn: Known<String>, tags: Tags| Alarm {
            name: "web-step-queue",
            doc: &doc,
            tags,
            policy_arn,
        };
        // (the policy's ARN, the tags it should carry, the plan lines)
        let cases = [
            (Known::Known("arn:policy".to_string()), tags.clone(), vec![]),
            (
                Known::Known("arn:new-policy".to_string()),
                tags.clone(),
                vec![FieldDiff::new("action", "arn:policy", "arn:new-policy")],
            ),
            (
                Known::AfterApply,
                tags.clone(),
                vec![FieldDiff::new(
                    "action",
                    "arn:policy",
                    "(known after apply)",
                )],
            ),
            (
                Known::Known("arn:policy".to_string()),
                tags.clone().with("team", "a"),
                vec![tags
                    .clone()
                    .with("team", "a")
                    .diff_from(&tags)
                    .unwrap()
                    .field()],
            ),
        ];
        for (arn, tags, expected) in cases {
            assert_eq!(lines(want(arn, tags).diff(&live)), expected);
        }
        let target = ScalableTarget {
            resource_id: "service/web/web-app".into(),
            min: 2,
            max: 10,
        };
        let registered = LiveTarget {
            resource_id: "service/web/web-app".into(),
            min: 1,
            max: 10,
            suspended: false,
        };
        assert_eq!(
            lines(target.diff(&registered)),
            [FieldDiff::new("min", 1, 2)]
        );
    }
}
