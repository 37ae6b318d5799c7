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
use ecs_core::graph::{self, Dep, Graph};
use ecs_core::{Action, Change, Context, FieldDiff, Plan, RetryOn, TagDiff, Tags};

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
    /// The tags each step alarm should carry, by name.
    alarm_tags: BTreeMap<String, Tags>,
    scheduled: BTreeMap<String, Schedule>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Live {
    target: Option<(i32, i32, bool)>,
    policies: BTreeMap<String, (String, PolicyDoc)>,
    alarms: BTreeMap<String, StepAlarm>,
    /// The live step alarms' ARNs, by name (their tags are read by ARN).
    alarm_arns: BTreeMap<String, String>,
    /// The live step alarms' tags, by name.
    alarm_tags: BTreeMap<String, Tags>,
    /// The live step alarms that lack the stack's tag: never changed or deleted.
    foreign_alarms: BTreeSet<String>,
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
            Some((_, have)) => Action::Update(policy_diffs(have, want)),
        };
        plan.push(Change::new(POLICY_KIND, name, action));
    }
    for name in l.policies.keys().filter(|n| !d.policies.contains_key(*n)) {
        plan.push(Change::new(POLICY_KIND, name, Action::Delete));
    }
    for (name, (_, want)) in &d.alarms {
        let action = match l.alarms.get(name) {
            None => Action::Create,
            Some(have) => {
                let mut diffs = alarm_diffs(have, want);
                diffs.extend(alarm_tag_diff(d, l, name).map(|t| t.field()));
                Action::from_diffs(diffs)
            }
        };
        plan.push(Change::new(ALARM_KIND, name, action));
    }
    for name in l
        .alarms
        .keys()
        .filter(|n| !d.alarms.contains_key(*n) && !l.foreign_alarms.contains(*n))
    {
        plan.push(Change::new(ALARM_KIND, name, Action::Delete));
    }
    for (name, want) in &d.scheduled {
        let action = match l.scheduled.get(name) {
            None => Action::Create,
            Some(have) if have == want => Action::NoChange,
            Some(have) => Action::Update(schedule_diffs(have, want)),
        };
        plan.push(Change::new(SCHEDULE_KIND, name, action));
    }
    for name in l.scheduled.keys().filter(|n| !d.scheduled.contains_key(*n)) {
        plan.push(Change::new(SCHEDULE_KIND, name, Action::Delete));
    }
    plan
}

/// The fields that differ, `field: live → desired`, each rendered with `show`.
struct Fields(Vec<FieldDiff>);

impl Fields {
    fn cmp<T: PartialEq>(&mut self, field: &str, have: &T, want: &T, show: impl Fn(&T) -> String) {
        if have != want {
            self.0.push(FieldDiff::new(field, show(have), show(want)));
        }
    }
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string)
}

/// A policy's differences, field by field (a change of kind shows as `type`).
fn policy_diffs(have: &PolicyDoc, want: &PolicyDoc) -> Vec<FieldDiff> {
    let mut f = Fields(Vec::new());
    match (have, want) {
        (
            PolicyDoc::Tracking {
                metric: m1,
                label: l1,
                target: t1,
                scale_in_cooldown: i1,
                scale_out_cooldown: o1,
                disable_scale_in: d1,
            },
            PolicyDoc::Tracking {
                metric: m2,
                label: l2,
                target: t2,
                scale_in_cooldown: i2,
                scale_out_cooldown: o2,
                disable_scale_in: d2,
            },
        ) => {
            f.cmp("metric", m1, m2, String::clone);
            f.cmp("resource_label", l1, l2, opt);
            f.cmp("target", t1, t2, ToString::to_string);
            f.cmp("scale_in_cooldown", i1, i2, ToString::to_string);
            f.cmp("scale_out_cooldown", o1, o2, ToString::to_string);
            f.cmp("disable_scale_in", d1, d2, ToString::to_string);
        }
        (
            PolicyDoc::Step {
                adjustments: a1,
                cooldown: c1,
                aggregation: g1,
            },
            PolicyDoc::Step {
                adjustments: a2,
                cooldown: c2,
                aggregation: g2,
            },
        ) => {
            let steps = |a: &Vec<(Option<f64>, Option<f64>, i32)>| {
                let items: Vec<String> = a
                    .iter()
                    .map(|(lo, hi, adj)| format!("[{}, {}) {adj:+}", opt(lo), opt(hi)))
                    .collect();
                items.join(", ")
            };
            f.cmp("steps", a1, a2, steps);
            f.cmp("cooldown", c1, c2, ToString::to_string);
            f.cmp("aggregation", g1, g2, String::clone);
        }
        (PolicyDoc::Tracking { .. }, _) => {
            f.0.push(FieldDiff::new("type", "target tracking", "step scaling"))
        }
        (PolicyDoc::Step { .. }, _) => {
            f.0.push(FieldDiff::new("type", "step scaling", "target tracking"))
        }
    }
    f.0
}

/// How the live step alarm `name`'s tags differ from those it should carry (`None` when it
/// does not exist yet, is not the stack's — its tags are never set — or they match).
fn alarm_tag_diff(d: &Desired, l: &Live, name: &str) -> Option<TagDiff> {
    if l.foreign_alarms.contains(name) {
        return None;
    }
    let want = d.alarm_tags.get(name)?;
    want.diff_from(l.alarm_tags.get(name)?)
}

/// A step alarm's differences, field by field.
fn alarm_diffs(have: &StepAlarm, want: &StepAlarm) -> Vec<FieldDiff> {
    let mut f = Fields(Vec::new());
    let dims = |d: &BTreeMap<String, String>| {
        let items: Vec<String> = d.iter().map(|(k, v)| format!("{k}={v}")).collect();
        items.join(",")
    };
    f.cmp("namespace", &have.namespace, &want.namespace, String::clone);
    f.cmp("metric", &have.metric, &want.metric, String::clone);
    f.cmp("dimensions", &have.dimensions, &want.dimensions, dims);
    f.cmp("statistic", &have.statistic, &want.statistic, String::clone);
    f.cmp(
        "threshold",
        &have.threshold,
        &want.threshold,
        ToString::to_string,
    );
    f.cmp(
        "comparison",
        &have.comparison,
        &want.comparison,
        String::clone,
    );
    f.cmp("period", &have.period, &want.period, ToString::to_string);
    f.cmp(
        "evaluation_periods",
        &have.evaluation_periods,
        &want.evaluation_periods,
        ToString::to_string,
    );
    f.0
}

/// A scheduled action's differences, field by field.
fn schedule_diffs(have: &Schedule, want: &Schedule) -> Vec<FieldDiff> {
    let mut f = Fields(Vec::new());
    f.cmp("schedule", &have.0, &want.0, String::clone);
    f.cmp("time_zone", &have.1, &want.1, opt);
    f.cmp("min", &have.2, &want.2, opt);
    f.cmp("max", &have.3, &want.3, opt);
    f.0
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
            alarm_tags: BTreeMap::new(),
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
            // Their tags, read with the plan so that a foreign one is refused before any
            // change of any layer, and drifted ones are set back.
            live.alarm_tags = self.alarm_tags(ctx, &live).await?;
            live.foreign_alarms = live
                .alarm_tags
                .iter()
                .filter(|(_, tags)| !ctx.owns(tags.iter().map(|(k, v)| (Some(k), Some(v)))))
                .map(|(name, _)| name.clone())
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
                .find(ALARM_KIND, n)
                .is_some_and(|c| c.action.is_change())
        }) {
            return Err(Error::Foreign(ecs_core::resource::Foreign {
                kind: ALARM_KIND,
                id: name.clone(),
                why: "it lacks the stack's tag",
            }));
        }
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
        let id = id.as_str();
        let pending = |kind: &str, name: &str| {
            plan.changes
                .find(kind, name)
                .is_some_and(|c| c.action.is_change())
        };
        // What goes, declared before the graph whose steps borrow it.
        let gone_policies: Vec<String> = l
            .policies
            .keys()
            .filter(|n| !d.policies.contains_key(*n))
            .cloned()
            .collect();
        let gone_alarms: Vec<String> = l
            .alarms
            .keys()
            .filter(|n| !d.alarms.contains_key(*n) && !l.foreign_alarms.contains(*n))
            .cloned()
            .collect();
        let gone_scheduled: Vec<String> = l
            .scheduled
            .keys()
            .filter(|n| !d.scheduled.contains_key(*n))
            .cloned()
            .collect();
        // Right after registration the target can be briefly unknown to the policy APIs.
        let retry = RetryOn::codes(&["ObjectNotFoundException"], Duration::from_secs(60));
        let retry = &retry;
        let mut g = Graph::<Error>::new();

        // The scalable target first: policies and scheduled actions cannot exist without it.
        let register = pending(TARGET_KIND, "desired count");
        let (min, max) = (d.min, d.max);
        let target = g
            .step(format!("{TARGET_KIND} {id}"))
            .action_if(register.then_some("register"))
            .run_with_detail(
                move |_: &()| format!("{min}–{max} tasks"),
                move |_| async move {
                    if register {
                        self.register(ctx, t, min, max, None, l.target.is_none())
                            .await?;
                    }
                    Ok(())
                },
            );
        let mut policies: BTreeMap<&str, graph::Step<String>> = BTreeMap::new();
        for (name, doc) in d.policies.iter().filter(|(n, _)| pending(POLICY_KIND, n)) {
            let step = g
                .step(format!("{POLICY_KIND} {name}"))
                .after(target)
                .action("put")
                .run_with_detail(
                    |_: &String| "put".to_string(),
                    move |_| self.put_policy(ctx, id, name, doc, retry),
                );
            policies.insert(name.as_str(), step);
        }
        // A step alarm triggers its policy by ARN: the one its put returned, else the live one.
        for (name, (policy, alarm)) in d
            .alarms
            .iter()
            .filter(|(n, _)| pending(ALARM_KIND, n) || policies.contains_key(n.as_str()))
        {
            let put = policies.get(policy.as_str()).copied();
            let live_arn = l.policies.get(policy).map(|(arn, _)| arn.clone());
            // The alarm is put again when it differs or its policy was put; its tags (which
            // `PutMetricAlarm` sets only on creation) are set back on their own.
            let differs = put.is_some() || l.alarms.get(name) != Some(alarm);
            let retag = alarm_tag_diff(d, l, name).zip(l.alarm_arns.get(name));
            g.step(format!("{ALARM_KIND} {name}"))
                .after(target)
                .after_all(put)
                .action(if differs { "put" } else { "update" })
                .run(move |i| {
                    let action = put.map(|p| i.get(p).clone()).or(live_arn);
                    async move {
                        if differs {
                            self.put_alarm(ctx, name, alarm, &action.unwrap_or_default())
                                .await?;
                        }
                        if let Some((diff, arn)) = &retag {
                            self.retag_alarm(ctx, name, arn, diff).await?;
                        }
                        Ok(())
                    }
                });
        }
        for (name, (schedule, tz, min, max)) in d
            .scheduled
            .iter()
            .filter(|(n, _)| pending(SCHEDULE_KIND, n))
        {
            let resource = format!("{SCHEDULE_KIND} {name}");
            let detail = schedule.clone();
            g.step(resource.clone())
                .after(target)
                .action("put")
                .run_with_detail(
                    move |_: &()| detail.clone(),
                    move |_| async move {
                        ctx.call_retrying("PutScheduledAction", &resource, retry, || {
                            self.clients
                                .autoscaling
                                .put_scheduled_action()
                                .service_namespace(ServiceNamespace::Ecs)
                                .resource_id(id)
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
                        Ok(())
                    },
                );
        }
        self.add_deletes(
            &mut g,
            ctx,
            id,
            &gone_policies,
            &gone_alarms,
            &gone_scheduled,
            Some(target.into()),
        );
        g.run(ctx).await?;
        Ok(ScalingOutputs {
            resource_id: id.to_string(),
            policies: d.policies.keys().cloned().collect(),
            scheduled_actions: d.scheduled.keys().cloned().collect(),
        })
    }

    /// Puts the scaling policy `name` of the target `id`; returns its ARN.
    async fn put_policy(
        &self,
        ctx: &Context,
        id: &str,
        name: &str,
        doc: &PolicyDoc,
        retry: &RetryOn,
    ) -> Result<String> {
        let resource = format!("{POLICY_KIND} {name}");
        let out = ctx
            .call_retrying("PutScalingPolicy", &resource, retry, || {
                let req = self
                    .clients
                    .autoscaling
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
                                        .predefined_metric_type(MetricType::from(metric.as_str()))
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
        Ok(out.policy_arn().to_string())
    }

    /// Puts the step alarm `name`, triggering the policy `action` (its ARN), with the stack's
    /// tags (CloudWatch applies them when the alarm is created).
    async fn put_alarm(
        &self,
        ctx: &Context,
        name: &str,
        a: &StepAlarm,
        action: &str,
    ) -> Result<()> {
        let resource = format!("{ALARM_KIND} {name}");
        let tags = alarm_tags_of(ctx, name).to_sdk(|k, v| {
            aws_sdk_cloudwatch::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        });
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
                .alarm_actions(action)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await?;
        Ok(())
    }

    /// The tags of every live step alarm, by name (read by ARN, all at once; no call when
    /// there is none).
    async fn alarm_tags(&self, ctx: &Context, live: &Live) -> Result<BTreeMap<String, Tags>> {
        let cw = &self.clients.cloudwatch;
        let tags = futures_util::future::try_join_all(live.alarm_arns.iter().map(
            |(name, arn)| async move {
                let out = ctx
                    .call(
                        "ListTagsForResource",
                        &format!("{ALARM_KIND} {name}"),
                        || cw.list_tags_for_resource().resource_arn(arn).send(),
                    )
                    .await?;
                let tags = Tags::from_pairs(out.tags().iter().map(|t| (t.key(), t.value())));
                Ok::<_, Error>((name.clone(), tags))
            },
        ))
        .await?;
        Ok(tags.into_iter().collect())
    }

    /// Sets and removes the step alarm `name`'s tags (`arn`).
    async fn retag_alarm(
        &self,
        ctx: &Context,
        name: &str,
        arn: &str,
        diff: &TagDiff,
    ) -> Result<()> {
        let cw = &self.clients.cloudwatch;
        let resource = &format!("{ALARM_KIND} {name}");
        diff.apply(
            |set| {
                let tags = set.to_sdk(|k, v| {
                    aws_sdk_cloudwatch::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                });
                async move {
                    ctx.call("TagResource", resource, || {
                        cw.tag_resource()
                            .resource_arn(arn)
                            .set_tags(Some(tags.clone()))
                            .send()
                    })
                    .await?;
                    Ok::<_, Error>(())
                }
            },
            |keys| {
                let keys = keys.to_vec();
                async move {
                    ctx.call("UntagResource", resource, || {
                        cw.untag_resource()
                            .resource_arn(arn)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                    .await?;
                    Ok::<_, Error>(())
                }
            },
        )
        .await
    }

    /// Adds to `g` a delete step for each of `policies` and `scheduled` and one for all of
    /// `alarms` (one call), each after `after`; returns them. A policy or scheduled action
    /// already gone counts as deleted.
    #[allow(clippy::too_many_arguments)]
    fn add_deletes<'a>(
        &'a self,
        g: &mut Graph<'a, Error>,
        ctx: &'a Context,
        id: &'a str,
        policies: &'a [String],
        alarms: &'a [String],
        scheduled: &'a [String],
        after: Option<Dep>,
    ) -> Vec<Dep> {
        let aas = &self.clients.autoscaling;
        let gone = |r: std::result::Result<(), ecs_core::AwsError>| match r {
            Err(e) if e.is_code("ObjectNotFoundException") => Ok(()),
            other => other,
        };
        let mut steps: Vec<Dep> = Vec::new();
        for name in policies {
            let resource = format!("{POLICY_KIND} {name}");
            let step = g
                .step(resource.clone())
                .after_all(after)
                .action("delete")
                .run(move |_| async move {
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
                    Ok(())
                });
            steps.push(step.into());
        }
        for name in scheduled {
            let resource = format!("{SCHEDULE_KIND} {name}");
            let step = g
                .step(resource.clone())
                .after_all(after)
                .action("delete")
                .run(move |_| async move {
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
                    Ok(())
                });
            steps.push(step.into());
        }
        if !alarms.is_empty() {
            let resource = format!("{ALARM_KIND} {}", alarms.join(","));
            let step = g
                .step(resource.clone())
                .after_all(after)
                .action("delete")
                .run(move |_| async move {
                    ctx.call("DeleteAlarms", &resource, || {
                        self.clients
                            .cloudwatch
                            .delete_alarms()
                            .set_alarm_names(Some(alarms.to_vec()))
                            .send()
                    })
                    .await?;
                    Ok(())
                });
            steps.push(step.into());
        }
        steps
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
        Ok(destroy_plan(&self.observe(ctx, t, &[]).await?))
    }

    /// Deletes the stack's policies (and step alarms) and scheduled actions, then deregisters
    /// the scalable target. Deregistering the target makes AWS delete whatever else is
    /// attached to the stack's own service as well.
    pub async fn destroy(&self, ctx: &Context, t: &ScalingTarget) -> Result<Plan> {
        let live = self.observe(ctx, t, &[]).await?;
        let plan = destroy_plan(&live);
        let id = t.resource_id();
        let policies: Vec<String> = live.policies.keys().cloned().collect();
        let alarms: Vec<String> = live
            .alarms
            .keys()
            .filter(|n| !live.foreign_alarms.contains(*n))
            .cloned()
            .collect();
        let scheduled: Vec<String> = live.scheduled.keys().cloned().collect();
        let mut g = Graph::<Error>::new();
        let deletes = self.add_deletes(&mut g, ctx, &id, &policies, &alarms, &scheduled, None);
        if live.target.is_some() {
            let resource = format!("{TARGET_KIND} {id}");
            let id = &id;
            g.step(resource.clone())
                .after_all(deletes)
                .action("deregister")
                .run_with_detail(
                    |_: &()| "deregistered".to_string(),
                    move |_| async move {
                        match ctx
                            .call("DeregisterScalableTarget", &resource, || {
                                self.clients
                                    .autoscaling
                                    .deregister_scalable_target()
                                    .service_namespace(ServiceNamespace::Ecs)
                                    .resource_id(id)
                                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                                    .send()
                            })
                            .await
                        {
                            Err(e) if !e.is_code("ObjectNotFoundException") => Err(e.into()),
                            _ => Ok(()),
                        }
                    },
                );
        }
        g.run(ctx).await?;
        Ok(plan)
    }
}

fn destroy_plan(live: &Live) -> Plan {
    let mut plan = Plan::new();
    for n in live.policies.keys() {
        plan.push(Change::new(POLICY_KIND, n, Action::Delete));
    }
    for n in live
        .alarms
        .keys()
        .filter(|n| !live.foreign_alarms.contains(*n))
    {
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

#[cfg(test)]
mod diff_tests {
    use super::*;

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

    #[test]
    fn typed_diffs_name_each_field_that_differs() {
        assert_eq!(alarm_diffs(&alarm(100.0), &alarm(100.0)), vec![]);
        assert_eq!(
            alarm_diffs(&alarm(100.0), &alarm(7.5)),
            vec![FieldDiff::new("threshold", "100", "7.5")]
        );
        assert_eq!(
            policy_diffs(&tracking(70.0), &tracking(60.0)),
            vec![FieldDiff::new("target", "70", "60")]
        );
        let step = PolicyDoc::Step {
            adjustments: vec![(Some(0.0), Some(50.0), 1), (Some(50.0), None, 3)],
            cooldown: 60,
            aggregation: "Maximum".into(),
        };
        assert_eq!(
            policy_diffs(&tracking(70.0), &step),
            vec![FieldDiff::new("type", "target tracking", "step scaling")]
        );
        let mut fewer = step.clone();
        if let PolicyDoc::Step { adjustments, .. } = &mut fewer {
            adjustments.pop();
        }
        assert_eq!(
            policy_diffs(&step, &fewer),
            vec![FieldDiff::new(
                "steps",
                "[0, 50) +1, [50, none) +3",
                "[0, 50) +1"
            )]
        );
        let night = |min| ("cron(0 22 * * ? *)".to_string(), None, Some(min), Some(4));
        assert_eq!(
            schedule_diffs(&night(1), &night(2)),
            vec![FieldDiff::new("min", "1", "2")]
        );
    }
}
