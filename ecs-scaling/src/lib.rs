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

mod error;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, MetricType, PolicyType, PredefinedMetricSpecification,
    ScalableDimension, ScalableTargetAction, ServiceNamespace, StepAdjustment,
    StepScalingPolicyConfiguration, SuspendedState, TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use ecs_core::{Action, Change, Context, Event, FieldDiff, Plan, RetryOn};

pub use error::{Error, Result};
pub use spec::{CustomMetric, ScalingSpec, ScheduledScaling, Step, StepPolicy, TargetTracking};

const TARGET_KIND: &str = "scalable-target";
const POLICY_KIND: &str = "scaling-policy";
const SCHEDULE_KIND: &str = "scheduled-action";
const ALARM_KIND: &str = "alarm";

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

/// A policy in comparable form.
#[derive(Debug, Clone, PartialEq)]
enum PolicyDoc {
    Tracking {
        metric: String,
        label: Option<String>,
        target: f64,
        scale_in_cooldown: i32,
        scale_out_cooldown: i32,
        disable_scale_in: bool,
    },
    Step {
        adjustments: Vec<(Option<f64>, Option<f64>, i32)>,
        cooldown: i32,
        aggregation: String,
    },
}

/// A step policy's alarm in comparable form.
#[derive(Debug, Clone, PartialEq)]
struct StepAlarm {
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
    statistic: String,
    threshold: f64,
    comparison: String,
    period: i32,
    evaluation_periods: i32,
}

/// A scheduled action in comparable form: schedule, time zone, min, max.
type Schedule = (String, Option<String>, Option<i32>, Option<i32>);

#[derive(Debug, Clone, PartialEq)]
struct Desired {
    min: i32,
    max: i32,
    policies: BTreeMap<String, PolicyDoc>,
    alarms: BTreeMap<String, (String, StepAlarm)>,
    scheduled: BTreeMap<String, Schedule>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Live {
    target: Option<(i32, i32, bool)>,
    policies: BTreeMap<String, (String, PolicyDoc)>,
    alarms: BTreeMap<String, StepAlarm>,
    /// The live step alarms' ARNs, by name (their tags are read by ARN).
    alarm_arns: BTreeMap<String, String>,
    scheduled: BTreeMap<String, Schedule>,
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
}

/// The result of [`ScalingLayer::plan`] or [`ScalingLayer::plan_with`]; pass it to
/// [`ScalingLayer::apply`].
#[derive(Debug, Clone)]
pub struct ScalingPlan {
    target: ScalingTarget,
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
        min: spec.min as i32,
        max: spec.max as i32,
        policies,
        alarms,
        scheduled,
    }
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
    let action = match l.target {
        None => Action::Create,
        Some((min, max, _)) => {
            let mut diffs = Vec::new();
            if min != d.min {
                diffs.push(FieldDiff::new("min", min, d.min));
            }
            if max != d.max {
                diffs.push(FieldDiff::new("max", max, d.max));
            }
            Action::from_diffs(diffs)
        }
    };
    plan.push(Change::new(TARGET_KIND, "desired count", action));
    for (name, want) in &d.policies {
        let action = match l.policies.get(name) {
            None => Action::Create,
            Some((_, have)) if have == want => Action::NoChange,
            Some((_, have)) => Action::Update(vec![FieldDiff::new(
                "configuration",
                format!("{have:?}"),
                format!("{want:?}"),
            )]),
        };
        plan.push(Change::new(POLICY_KIND, name, action));
    }
    for name in l.policies.keys().filter(|n| !d.policies.contains_key(*n)) {
        plan.push(Change::new(POLICY_KIND, name, Action::Delete));
    }
    for (name, (_, want)) in &d.alarms {
        let action = match l.alarms.get(name) {
            None => Action::Create,
            Some(have) if have == want => Action::NoChange,
            Some(have) => Action::Update(vec![FieldDiff::new(
                "alarm",
                format!("{have:?}"),
                format!("{want:?}"),
            )]),
        };
        plan.push(Change::new(ALARM_KIND, name, action));
    }
    for name in l.alarms.keys().filter(|n| !d.alarms.contains_key(*n)) {
        plan.push(Change::new(ALARM_KIND, name, Action::Delete));
    }
    for (name, want) in &d.scheduled {
        let action = match l.scheduled.get(name) {
            None => Action::Create,
            Some(have) if have == want => Action::NoChange,
            Some(have) => Action::Update(vec![FieldDiff::new(
                "schedule",
                format!("{have:?}"),
                format!("{want:?}"),
            )]),
        };
        plan.push(Change::new(SCHEDULE_KIND, name, action));
    }
    for name in l.scheduled.keys().filter(|n| !d.scheduled.contains_key(*n)) {
        plan.push(Change::new(SCHEDULE_KIND, name, Action::Delete));
    }
    plan
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
        let resource = format!("{TARGET_KIND} {id}");
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
            .map(|s| {
                let suspended = s
                    .suspended_state()
                    .is_some_and(|x| x.dynamic_scaling_in_suspended() == Some(true));
                (s.min_capacity(), s.max_capacity(), suspended)
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
                    (p.policy_arn().to_string(), doc),
                ))
            })
            .collect();
        let scheduled = scheduled
            .scheduled_actions()
            .iter()
            .filter(|a| a.scheduled_action_name().starts_with(&prefix))
            .map(|a| {
                let action = a.scalable_target_action();
                (
                    a.scheduled_action_name().to_string(),
                    (
                        a.schedule().to_string(),
                        a.timezone()
                            .filter(|z| !z.is_empty() && *z != "UTC")
                            .map(str::to_string),
                        action.and_then(|x| x.min_capacity()),
                        action.and_then(|x| x.max_capacity()),
                    ),
                )
            })
            .collect();
        let mut live = Live {
            target,
            policies,
            alarms: BTreeMap::new(),
            alarm_arns: BTreeMap::new(),
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
                    &format!("{ALARM_KIND} {prefix}step-*"),
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
                live.alarm_arns.insert(
                    name.to_string(),
                    a.alarm_arn().unwrap_or_default().to_string(),
                );
                live.alarms.insert(
                    name.to_string(),
                    StepAlarm {
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
                );
            }
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
        Ok(ScalingPlan {
            target: target.clone(),
            desired,
            live: state.live.clone(),
            changes,
        })
    }

    async fn register(
        &self,
        ctx: &Context,
        t: &ScalingTarget,
        min: i32,
        max: i32,
        suspended: Option<bool>,
        create: bool,
    ) -> Result<()> {
        let id = t.resource_id();
        let resource = format!("{TARGET_KIND} {id}");
        // Tags apply when the target is registered for the first time.
        let tags = if create {
            ctx.resource_tags(Some("scalable-target"), None)
        } else {
            ecs_core::Tags::new()
        };
        ctx.call("RegisterScalableTarget", &resource, || {
            let mut req = self
                .clients
                .autoscaling
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(min)
                .max_capacity(max)
                .set_suspended_state(suspended.map(|s| {
                    SuspendedState::builder()
                        .dynamic_scaling_in_suspended(s)
                        .dynamic_scaling_out_suspended(s)
                        .scheduled_scaling_suspended(s)
                        .build()
                }));
            for (k, v) in tags.iter() {
                req = req.tags(k, v);
            }
            req.send()
        })
        .await?;
        Ok(())
    }

    /// Carries out `plan`: registers (or updates) the scalable target first — policies
    /// cannot exist without it — then puts and deletes policies, step alarms and scheduled
    /// actions concurrently.
    pub async fn apply(&self, ctx: &Context, plan: &ScalingPlan) -> Result<ScalingOutputs> {
        let (t, d, l) = (&plan.target, &plan.desired, &plan.live);
        let id = t.resource_id();
        let aas = &self.clients.autoscaling;
        // A live step alarm is changed or deleted only when it carries the stack's tag, the
        // rule every alarm of the stack follows: one that would change without it stops the
        // apply before any change; one no longer wanted without it is left alone.
        let touched: Vec<&String> = l
            .alarms
            .keys()
            .filter(|n| {
                plan.changes
                    .find(ALARM_KIND, n)
                    .is_some_and(|c| c.action.is_change())
            })
            .collect();
        let foreign = self.foreign_alarms(ctx, l, touched).await?;
        if let Some(name) = foreign.iter().find(|n| d.alarms.contains_key(*n)) {
            return Err(Error::Foreign(ecs_core::resource::Foreign {
                kind: ALARM_KIND,
                id: name.clone(),
                why: "it lacks the stack's tag",
            }));
        }
        if plan
            .changes
            .find(TARGET_KIND, "desired count")
            .is_some_and(|c| c.action.is_change())
        {
            let resource = format!("{TARGET_KIND} {id}");
            ctx.emit(Event::Started {
                resource: resource.clone(),
                action: "register".into(),
            });
            self.register(ctx, t, d.min, d.max, None, l.target.is_none())
                .await?;
            ctx.emit(Event::Done {
                resource,
                detail: format!("{}–{} tasks", d.min, d.max),
            });
        }
        // Right after registration the target can be briefly unknown to the policy APIs.
        let retry = RetryOn::codes(&["ObjectNotFoundException"], Duration::from_secs(60));
        let pending = |kind: &str, name: &str| {
            plan.changes
                .find(kind, name)
                .is_some_and(|c| c.action.is_change())
        };
        let puts = d
            .policies
            .iter()
            .filter(|(n, _)| pending(POLICY_KIND, n))
            .map(|(name, doc)| {
                let resource = format!("{POLICY_KIND} {name}");
                let retry = retry.clone();
                let id = id.as_str();
                async move {
                    ctx.emit(Event::Started {
                        resource: resource.clone(),
                        action: "put".into(),
                    });
                    let out = ctx
                        .call_retrying("PutScalingPolicy", &resource, &retry, || {
                            let req = aas
                                .put_scaling_policy()
                                .policy_name(name)
                                .service_namespace(ServiceNamespace::Ecs)
                                .resource_id(id)
                                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount);
                            match doc {
                                PolicyDoc::Tracking {
                                    metric,
                                    label,
                                    target,
                                    scale_in_cooldown,
                                    scale_out_cooldown,
                                    disable_scale_in,
                                } => req
                                    .policy_type(PolicyType::TargetTrackingScaling)
                                    .target_tracking_scaling_policy_configuration(
                                        TargetTrackingScalingPolicyConfiguration::builder()
                                            .target_value(*target)
                                            .predefined_metric_specification(
                                                PredefinedMetricSpecification::builder()
                                                    .predefined_metric_type(MetricType::from(
                                                        metric.as_str(),
                                                    ))
                                                    .set_resource_label(label.clone())
                                                    .build()
                                                    .expect("metric type is set"),
                                            )
                                            .scale_in_cooldown(*scale_in_cooldown)
                                            .scale_out_cooldown(*scale_out_cooldown)
                                            .disable_scale_in(*disable_scale_in)
                                            .build()
                                            .expect("target value is set"),
                                    ),
                                PolicyDoc::Step {
                                    adjustments,
                                    cooldown,
                                    aggregation,
                                } => req
                                    .policy_type(PolicyType::StepScaling)
                                    .step_scaling_policy_configuration(
                                        StepScalingPolicyConfiguration::builder()
                                            .adjustment_type(AdjustmentType::ChangeInCapacity)
                                            .cooldown(*cooldown)
                                            .metric_aggregation_type(MetricAggregationType::from(
                                                aggregation.as_str(),
                                            ))
                                            .set_step_adjustments(Some(
                                                adjustments
                                                    .iter()
                                                    .map(|(lo, hi, adj)| {
                                                        StepAdjustment::builder()
                                                            .set_metric_interval_lower_bound(*lo)
                                                            .set_metric_interval_upper_bound(*hi)
                                                            .scaling_adjustment(*adj)
                                                            .build()
                                                            .expect("adjustment is set")
                                                    })
                                                    .collect(),
                                            ))
                                            .build(),
                                    ),
                            }
                            .send()
                        })
                        .await?;
                    ctx.emit(Event::Done {
                        resource,
                        detail: "put".into(),
                    });
                    Ok::<_, Error>((name.clone(), out.policy_arn().to_string()))
                }
            });
        let policy_arns: BTreeMap<String, String> = futures_util::future::try_join_all(puts)
            .await?
            .into_iter()
            .collect();
        let arn_of = |name: &str| {
            policy_arns
                .get(name)
                .cloned()
                .or_else(|| l.policies.get(name).map(|(arn, _)| arn.clone()))
        };
        let alarm_puts = d
            .alarms
            .iter()
            .filter(|(n, _)| pending(ALARM_KIND, n) || policy_arns.contains_key(*n))
            .map(|(name, (policy, a))| {
                let resource = format!("{ALARM_KIND} {name}");
                let action = arn_of(policy).unwrap_or_default();
                let tags: Vec<_> = ctx
                    .resource_tags(Some(&format!("alarm/{name}")), None)
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_cloudwatch::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect();
                async move {
                    ctx.call("PutMetricAlarm", &resource, || {
                        self.clients
                            .cloudwatch
                            .put_metric_alarm()
                            .alarm_name(name)
                            .namespace(&a.namespace)
                            .metric_name(&a.metric)
                            .set_dimensions(Some(
                                a.dimensions
                                    .iter()
                                    .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                                    .collect(),
                            ))
                            .statistic(Statistic::from(a.statistic.as_str()))
                            .threshold(a.threshold)
                            .comparison_operator(ComparisonOperator::from(a.comparison.as_str()))
                            .period(a.period)
                            .evaluation_periods(a.evaluation_periods)
                            .alarm_actions(&action)
                            .set_tags(Some(tags.clone()))
                            .send()
                    })
                    .await?;
                    Ok::<_, Error>(())
                }
            });
        let scheduled = d
            .scheduled
            .iter()
            .filter(|(n, _)| pending(SCHEDULE_KIND, n))
            .map(|(name, (schedule, tz, min, max))| {
                let resource = format!("{SCHEDULE_KIND} {name}");
                let retry = retry.clone();
                let id = id.clone();
                async move {
                    ctx.emit(Event::Started {
                        resource: resource.clone(),
                        action: "put".into(),
                    });
                    ctx.call_retrying("PutScheduledAction", &resource, &retry, || {
                        aas.put_scheduled_action()
                            .service_namespace(ServiceNamespace::Ecs)
                            .resource_id(&id)
                            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                            .scheduled_action_name(name)
                            .schedule(schedule)
                            .set_timezone(tz.clone())
                            .scalable_target_action(
                                ScalableTargetAction::builder()
                                    .set_min_capacity(*min)
                                    .set_max_capacity(*max)
                                    .build(),
                            )
                            .send()
                    })
                    .await?;
                    ctx.emit(Event::Done {
                        resource,
                        detail: schedule.clone(),
                    });
                    Ok::<_, Error>(())
                }
            });
        let deletes = async {
            self.delete_named(
                ctx,
                &id,
                l.policies
                    .keys()
                    .filter(|n| !d.policies.contains_key(*n))
                    .cloned()
                    .collect(),
                l.alarms
                    .keys()
                    .filter(|n| !d.alarms.contains_key(*n) && !foreign.contains(*n))
                    .cloned()
                    .collect(),
                l.scheduled
                    .keys()
                    .filter(|n| !d.scheduled.contains_key(*n))
                    .cloned()
                    .collect(),
            )
            .await
        };
        futures_util::try_join!(
            futures_util::future::try_join_all(alarm_puts),
            futures_util::future::try_join_all(scheduled),
            deletes
        )?;
        Ok(ScalingOutputs {
            resource_id: id.clone(),
            policies: d.policies.keys().cloned().collect(),
            scheduled_actions: d.scheduled.keys().cloned().collect(),
        })
    }

    /// Which of the live step alarms `names` lack the stack's owner tag (read by ARN, all at
    /// once; no call when `names` is empty).
    async fn foreign_alarms(
        &self,
        ctx: &Context,
        live: &Live,
        names: Vec<&String>,
    ) -> Result<BTreeSet<String>> {
        let cw = &self.clients.cloudwatch;
        let owned = futures_util::future::try_join_all(names.iter().map(|name| async move {
            let arn = live
                .alarm_arns
                .get(*name)
                .map(String::as_str)
                .unwrap_or_default();
            let tags = ctx
                .call(
                    "ListTagsForResource",
                    &format!("{ALARM_KIND} {name}"),
                    || cw.list_tags_for_resource().resource_arn(arn).send(),
                )
                .await?;
            Ok::<_, Error>(ctx.owns(tags.tags().iter().map(|t| (t.key(), t.value()))))
        }))
        .await?;
        Ok(names
            .into_iter()
            .zip(owned)
            .filter(|(_, owned)| !owned)
            .map(|(name, _)| name.clone())
            .collect())
    }

    async fn delete_named(
        &self,
        ctx: &Context,
        id: &str,
        policies: Vec<String>,
        alarms: Vec<String>,
        scheduled: Vec<String>,
    ) -> Result<()> {
        let aas = &self.clients.autoscaling;
        let gone = |r: std::result::Result<(), ecs_core::AwsError>| match r {
            Err(e) if e.is_code("ObjectNotFoundException") => Ok(()),
            other => other,
        };
        let p = policies.iter().map(|name| async move {
            let resource = format!("{POLICY_KIND} {name}");
            ctx.emit(Event::Started {
                resource: resource.clone(),
                action: "delete".into(),
            });
            gone(
                ctx.call("DeleteScalingPolicy", &resource, || {
                    aas.delete_scaling_policy()
                        .policy_name(name)
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send()
                })
                .await
                .map(|_| ()),
            )?;
            ctx.emit(Event::Done {
                resource,
                detail: "deleted".into(),
            });
            Ok::<_, Error>(())
        });
        let s = scheduled.iter().map(|name| async move {
            let resource = format!("{SCHEDULE_KIND} {name}");
            ctx.emit(Event::Started {
                resource: resource.clone(),
                action: "delete".into(),
            });
            gone(
                ctx.call("DeleteScheduledAction", &resource, || {
                    aas.delete_scheduled_action()
                        .scheduled_action_name(name)
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send()
                })
                .await
                .map(|_| ()),
            )?;
            ctx.emit(Event::Done {
                resource,
                detail: "deleted".into(),
            });
            Ok::<_, Error>(())
        });
        let a = async {
            if !alarms.is_empty() {
                let resource = format!("{ALARM_KIND} {}", alarms.join(","));
                ctx.call("DeleteAlarms", &resource, || {
                    self.clients
                        .cloudwatch
                        .delete_alarms()
                        .set_alarm_names(Some(alarms.clone()))
                        .send()
                })
                .await?;
            }
            Ok::<_, Error>(())
        };
        futures_util::try_join!(
            futures_util::future::try_join_all(p),
            futures_util::future::try_join_all(s),
            a
        )?;
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

    async fn current(&self, ctx: &Context, t: &ScalingTarget) -> Result<(i32, i32, bool)> {
        self.observe(ctx, t, &[])
            .await?
            .target
            .ok_or_else(|| Error::NotRegistered {
                resource_id: t.resource_id(),
            })
    }

    /// Suspends dynamic and scheduled scaling (for maintenance); the range is kept.
    pub async fn suspend(&self, ctx: &Context, t: &ScalingTarget) -> Result<()> {
        let (min, max, _) = self.current(ctx, t).await?;
        self.register(ctx, t, min, max, Some(true), false).await
    }

    /// Resumes scaling after [`suspend`](Self::suspend).
    pub async fn resume(&self, ctx: &Context, t: &ScalingTarget) -> Result<()> {
        let (min, max, _) = self.current(ctx, t).await?;
        self.register(ctx, t, min, max, Some(false), false).await
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
        self.register(ctx, t, min as i32, max as i32, None, false)
            .await?;
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
        Ok(destroy_plan(&self.observe_owned(ctx, t).await?))
    }

    /// What the stack owns of the target's scaling: step alarms without the stack's tag are
    /// left out (never deleted).
    async fn observe_owned(&self, ctx: &Context, t: &ScalingTarget) -> Result<Live> {
        let mut live = self.observe(ctx, t, &[]).await?;
        let foreign = self
            .foreign_alarms(ctx, &live, live.alarms.keys().collect())
            .await?;
        live.alarms.retain(|name, _| !foreign.contains(name));
        Ok(live)
    }

    /// Deletes the stack's policies (and step alarms) and scheduled actions, then deregisters
    /// the scalable target. Deregistering the target makes AWS delete whatever else is
    /// attached to the stack's own service as well.
    pub async fn destroy(&self, ctx: &Context, t: &ScalingTarget) -> Result<Plan> {
        let live = self.observe_owned(ctx, t).await?;
        let plan = destroy_plan(&live);
        let id = t.resource_id();
        self.delete_named(
            ctx,
            &id,
            live.policies.keys().cloned().collect(),
            live.alarms.keys().cloned().collect(),
            live.scheduled.keys().cloned().collect(),
        )
        .await?;
        if live.target.is_some() {
            let resource = format!("{TARGET_KIND} {id}");
            ctx.emit(Event::Started {
                resource: resource.clone(),
                action: "deregister".into(),
            });
            match ctx
                .call("DeregisterScalableTarget", &resource, || {
                    self.clients
                        .autoscaling
                        .deregister_scalable_target()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send()
                })
                .await
            {
                Err(e) if !e.is_code("ObjectNotFoundException") => return Err(e.into()),
                _ => {}
            }
            ctx.emit(Event::Done {
                resource,
                detail: "deregistered".into(),
            });
        }
        Ok(plan)
    }
}

fn destroy_plan(live: &Live) -> Plan {
    let mut plan = Plan::new();
    for n in live.policies.keys() {
        plan.push(Change::new(POLICY_KIND, n, Action::Delete));
    }
    for n in live.alarms.keys() {
        plan.push(Change::new(ALARM_KIND, n, Action::Delete));
    }
    for n in live.scheduled.keys() {
        plan.push(Change::new(SCHEDULE_KIND, n, Action::Delete));
    }
    if live.target.is_some() {
        plan.push(Change::new(TARGET_KIND, "desired count", Action::Delete));
    }
    plan
}
