//! Tests of ecs-scaling through its public API against mocked SDK clients (aws-smithy-mocks).
//!
//! Every test builds a [`Mock`]: the shared stateful fakes of Application Auto Scaling,
//! CloudWatch and ECS (`ecs_core::testing`) behind the three clients. Describes answer from
//! them, and registers, puts and deletes change them, so what an apply made is what the next
//! plan finds. They also enforce the rules of AWS that matter here: a policy or a scheduled action needs a
//! registered scalable target, and deregistering a target deletes its policies and scheduled
//! actions. Every call is recorded, input included, in a [`Journal`]. Retries are timed by a
//! [`FakeClock`], so nothing sleeps for real. A test puts its own rules in front of the fakes'
//! (in `RuleMode::MatchAny` the first matching rule answers) to inject errors.

// The mock closures return the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use ecs_core::testing::Journal;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use aws_sdk_applicationautoscaling::operation::delete_scaling_policy::DeleteScalingPolicyInput;
use aws_sdk_applicationautoscaling::operation::delete_scheduled_action::DeleteScheduledActionInput;
use aws_sdk_applicationautoscaling::operation::deregister_scalable_target::DeregisterScalableTargetInput;
use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::DescribeScalableTargetsInput;
use aws_sdk_applicationautoscaling::operation::put_scaling_policy::{
    PutScalingPolicyError, PutScalingPolicyInput, PutScalingPolicyOutput,
};
use aws_sdk_applicationautoscaling::operation::put_scheduled_action::PutScheduledActionInput;
use aws_sdk_applicationautoscaling::operation::register_scalable_target::RegisterScalableTargetInput;
use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, MetricType, PolicyType, PredefinedMetricSpecification,
    ScalableDimension, ScalableTargetAction, ServiceNamespace, StepScalingPolicyConfiguration,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_cloudwatch::operation::delete_alarms::DeleteAlarmsInput;
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsInput;
use aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmInput;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use aws_sdk_ecs::operation::update_service::UpdateServiceInput;

use ecs_core::testing::fake_autoscaling::{all_suspended, key, no_target, policy_arn, Policy};
use ecs_core::testing::fake_cloudwatch::alarm_arn;
use ecs_core::testing::fake_ecs::cluster_arn;
use ecs_core::testing::{
    mock, AutoScalingState, CloudWatchState, EcsState, FakeAutoScaling, FakeCloudWatch, FakeEcs,
    Rule,
};
use ecs_core::{Action, Context, Event, EventLog, FakeClock, FieldDiff, Plan, StackName, Tags};
use ecs_scaling::{
    CustomMetric, Error, ScalingClients, ScalingLayer, ScalingSpec, ScalingTarget,
    ScheduledScaling, Step, StepPolicy, TargetTracking,
};

// ---------------------------------------------------------------------------------------------
// Names used throughout.

const CLUSTER: &str = "web";
const SERVICE: &str = "web-app";
/// The Application Auto Scaling resource id of the service.
const RESOURCE_ID: &str = "service/web/web-app";
/// The ALB resource label of the service's target group.
const LABEL: &str = "app/web-alb/0123456789abcdef/targetgroup/web-app/fedcba9876543210";
const NIGHT_CRON: &str = "cron(0 20 ? * MON-FRI *)";

// The resource kinds of the layer's plans, and the id of the scalable target in them.
const TARGET: &str = "scalable-target";
const POLICY: &str = "scaling-policy";
const SCHEDULE: &str = "scheduled-action";
const ALARM: &str = "alarm";
const DESIRED_COUNT: &str = "desired count";

// ---------------------------------------------------------------------------------------------
// What the fakes hold.

/// The target tracking configuration of the service's policy `name`.
trait Tracking {
    fn tracking(&self, name: &str) -> TargetTrackingScalingPolicyConfiguration;
}

impl Tracking for AutoScalingState {
    fn tracking(&self, name: &str) -> TargetTrackingScalingPolicyConfiguration {
        self.policies
            .get(&key(RESOURCE_ID, name))
            .and_then(|p| p.input.target_tracking_scaling_policy_configuration())
            .cloned()
            .unwrap_or_else(|| panic!("no target tracking policy {name}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Recording calls.

// The journal of calls: `ecs_core::testing::Journal`, shared by every mock test.

/// The one element of `items`.
fn only<T: Debug>(items: Vec<T>) -> T {
    assert_eq!(items.len(), 1, "expected exactly one: {items:?}");
    items.into_iter().next().expect("one element")
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

// ---------------------------------------------------------------------------------------------
// The mocked clients.

/// The shared stateful fakes of Application Auto Scaling, CloudWatch and ECS
/// (`ecs_core::testing`), and the journal they record into.
struct Mock {
    journal: Journal,
    /// ECS: the shared stateful fake (`ecs_core::testing::FakeEcs`).
    ecs: FakeEcs,
    /// CloudWatch: the shared stateful fake (`FakeCloudWatch`).
    cw: FakeCloudWatch,
    /// Application Auto Scaling: the shared stateful fake (`FakeAutoScaling`).
    aas: FakeAutoScaling,
}

impl Mock {
    /// An empty account, except for the ECS service `web/web-app` running 2 tasks.
    fn new() -> Self {
        let journal = Journal::default();
        let ecs = FakeEcs::new(&journal, EcsState::default());
        {
            let mut s = ecs.state();
            s.clusters.insert(
                CLUSTER.into(),
                aws_sdk_ecs::types::Cluster::builder()
                    .cluster_name(CLUSTER)
                    .cluster_arn(cluster_arn(CLUSTER))
                    .status("ACTIVE")
                    .build(),
            );
            s.services.push(
                aws_sdk_ecs::types::Service::builder()
                    .service_name(SERVICE)
                    .cluster_arn(cluster_arn(CLUSTER))
                    .status("ACTIVE")
                    .desired_count(2)
                    .build(),
            );
        }
        Self {
            cw: FakeCloudWatch::new(&journal, CloudWatchState::default()),
            aas: FakeAutoScaling::new(&journal, AutoScalingState::default()),
            ecs,
            journal,
        }
    }

    /// The alarms, for setting them up and inspecting them (never held across an `await`).
    fn cw(&self) -> MutexGuard<'_, CloudWatchState> {
        self.cw.state()
    }

    /// The scalable targets, policies and scheduled actions, likewise.
    fn aas(&self) -> MutexGuard<'_, AutoScalingState> {
        self.aas.state()
    }

    /// The services' desired counts, likewise.
    fn ecs(&self) -> MutexGuard<'_, EcsState> {
        self.ecs.state()
    }

    /// The layer over the fakes.
    fn layer(&self) -> ScalingLayer {
        self.layer_with(&[])
    }

    /// The layer over the fakes, with `overrides` answering Application Auto Scaling calls
    /// first.
    fn layer_with(&self, overrides: &[&Rule]) -> ScalingLayer {
        ScalingLayer::from_clients(ScalingClients {
            autoscaling: self.aas.client_with(overrides),
            cloudwatch: self.cw.client(),
            ecs: self.ecs.client(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The harness, the specifications and plan helpers.

struct Harness {
    clock: FakeClock,
    events: EventLog,
    ctx: Context,
}

impl Harness {
    /// Stack `web` with the user tag `team=payments`, a fake clock and an event log.
    fn new() -> Self {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = Context::builder()
            .stack(StackName::new("web").expect("a valid stack name"))
            .tags(Tags::new().with("team", "payments"))
            .clock(clock.clone())
            .events(events.clone())
            .run_id("run-1")
            .build();
        Self { clock, events, ctx }
    }

    /// The attempts reported by `Event::Retrying` for `operation`.
    fn retries(&self, operation: &str) -> Vec<u32> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Retrying {
                    operation: op,
                    attempt,
                    ..
                } if op == operation => Some(attempt),
                _ => None,
            })
            .collect()
    }
}

/// The service `web/web-app`, desired count 2, behind an ALB.
fn target() -> ScalingTarget {
    ScalingTarget {
        cluster: CLUSTER.to_string(),
        service: SERVICE.to_string(),
        desired_count: Some(2),
        resource_label: Some(LABEL.to_string()),
    }
}

fn tracking(value: f64) -> TargetTracking {
    TargetTracking::builder().target(value).build()
}

/// Down to 1–2 tasks on weekday evenings, Paris time.
fn night() -> ScheduledScaling {
    ScheduledScaling::builder()
        .name("night")
        .schedule(NIGHT_CRON)
        .timezone("Europe/Paris")
        .min(1)
        .max(2)
        .build()
}

/// CPU 70 %, memory 80 %, 500 requests per target, 2–10 tasks, and the `night` schedule.
fn full_spec() -> ScalingSpec {
    let mut spec = ScalingSpec::cpu_and_memory(2, 10);
    spec.requests_per_target = Some(tracking(500.0));
    spec.scheduled.push(night());
    spec
}

/// Step scaling on the maximum of `App/QueueDepth` (queue `jobs`) at or above 100:
/// +1 task up to 50 above the threshold, +3 beyond.
fn queue() -> StepPolicy {
    StepPolicy::builder()
        .name("queue")
        .metric(
            CustomMetric::builder()
                .namespace("App")
                .name("QueueDepth")
                .dimensions(BTreeMap::from([("Queue".to_string(), "jobs".to_string())]))
                .statistic("Maximum")
                .build(),
        )
        .threshold(100.0)
        .steps(vec![
            Step::builder().lower(0.0).upper(50.0).adjustment(1).build(),
            Step::builder().lower(50.0).adjustment(3).build(),
        ])
        .build()
}

/// 1–4 tasks driven by the `queue` step policy only.
fn step_spec() -> ScalingSpec {
    ScalingSpec::builder()
        .min(1)
        .max(4)
        .step(vec![queue()])
        .build()
}

/// CPU and memory tracking, the `queue` step policy and the `night` schedule, 2–10 tasks.
fn everything_spec() -> ScalingSpec {
    let mut spec = ScalingSpec::cpu_and_memory(2, 10);
    spec.step.push(queue());
    spec.scheduled.push(night());
    spec
}

/// A planned change: resource kind, id and what happens to it.
type Row = (String, String, &'static str);

fn verb(action: &Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update(_) => "update",
        Action::Replace(_) => "replace",
        Action::Delete => "delete",
        Action::NoChange => "unchanged",
        _ => "unknown",
    }
}

/// The changes of `plan` that change something, sorted.
fn pending(plan: &Plan) -> Vec<Row> {
    sorted(
        plan.pending()
            .map(|c| (c.resource.clone(), c.id.clone(), verb(&c.action)))
            .collect(),
    )
}

fn rows(items: &[(&str, &str, &'static str)]) -> Vec<Row> {
    sorted(
        items
            .iter()
            .map(|(kind, id, what)| (kind.to_string(), id.to_string(), *what))
            .collect(),
    )
}

/// The `PutScalingPolicy` inputs by policy name.
fn puts_by_name(journal: &Journal) -> BTreeMap<String, PutScalingPolicyInput> {
    journal
        .inputs::<PutScalingPolicyInput>()
        .into_iter()
        .map(|p| (p.policy_name().unwrap_or_default().to_string(), p))
        .collect()
}

fn tracking_of(p: &PutScalingPolicyInput) -> &TargetTrackingScalingPolicyConfiguration {
    p.target_tracking_scaling_policy_configuration()
        .unwrap_or_else(|| panic!("not a target tracking policy: {p:?}"))
}

/// The predefined metric of a target tracking configuration and its resource label.
fn metric_of(c: &TargetTrackingScalingPolicyConfiguration) -> (String, Option<String>) {
    let spec = c
        .predefined_metric_specification()
        .expect("a predefined metric");
    (
        spec.predefined_metric_type().as_str().to_string(),
        spec.resource_label().map(str::to_string),
    )
}

fn adjustments(c: &StepScalingPolicyConfiguration) -> Vec<(Option<f64>, Option<f64>, i32)> {
    c.step_adjustments()
        .iter()
        .map(|a| {
            (
                a.metric_interval_lower_bound(),
                a.metric_interval_upper_bound(),
                a.scaling_adjustment(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. A fresh create.

#[tokio::test]
async fn fresh_create_registers_the_target_before_any_policy_or_schedule() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();

    let plan = layer.plan(&h.ctx, &full_spec(), &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[
            (TARGET, DESIRED_COUNT, "create"),
            (POLICY, "web-cpu", "create"),
            (POLICY, "web-memory", "create"),
            (POLICY, "web-requests", "create"),
            (SCHEDULE, "web-night", "create"),
        ]),
        "{plan}"
    );
    let s = plan.changes().summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.delete, s.unchanged),
        (5, 0, 0, 0, 0),
        "{plan}"
    );
    assert!(
        m.journal.mutating().is_empty(),
        "plan changed something: {:?}",
        m.journal.mutating()
    );

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(out.resource_id, RESOURCE_ID);
    assert_eq!(out.policies, ["web-cpu", "web-memory", "web-requests"]);
    assert_eq!(out.scheduled_actions, ["web-night"]);

    let j = &m.journal;
    assert_eq!(
        sorted(j.mutating()),
        sorted(vec![
            "RegisterScalableTarget",
            "PutScalingPolicy",
            "PutScalingPolicy",
            "PutScalingPolicy",
            "PutScheduledAction",
        ])
    );
    // Policies and schedules cannot exist without the target: it is registered first.
    let registered = j.first("RegisterScalableTarget");
    for (at, input) in j.indexed::<PutScalingPolicyInput>() {
        assert!(registered < at, "put before the registration: {input:?}");
    }
    for (at, input) in j.indexed::<PutScheduledActionInput>() {
        assert!(registered < at, "put before the registration: {input:?}");
    }

    let reg = only(j.inputs::<RegisterScalableTargetInput>());
    assert_eq!(reg.service_namespace(), Some(&ServiceNamespace::Ecs));
    assert_eq!(reg.resource_id(), Some(RESOURCE_ID));
    assert_eq!(
        reg.scalable_dimension(),
        Some(&ScalableDimension::EcsServiceDesiredCount)
    );
    assert_eq!(
        (reg.min_capacity(), reg.max_capacity()),
        (Some(2), Some(10))
    );
    assert!(reg.suspended_state().is_none(), "{reg:?}");
    let tags = reg.tags().expect("the target is tagged");
    assert_eq!(
        tags.get("ecs:stack").map(String::as_str),
        Some("web"),
        "{tags:?}"
    );
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("payments"),
        "{tags:?}"
    );

    let puts = puts_by_name(j);
    assert_eq!(
        puts.keys().map(String::as_str).collect::<Vec<_>>(),
        ["web-cpu", "web-memory", "web-requests"]
    );
    for (name, p) in &puts {
        assert_eq!(
            p.service_namespace(),
            Some(&ServiceNamespace::Ecs),
            "{name}"
        );
        assert_eq!(p.resource_id(), Some(RESOURCE_ID), "{name}");
        assert_eq!(
            p.scalable_dimension(),
            Some(&ScalableDimension::EcsServiceDesiredCount),
            "{name}"
        );
        assert_eq!(
            p.policy_type(),
            Some(&PolicyType::TargetTrackingScaling),
            "{name}"
        );
        assert!(p.step_scaling_policy_configuration().is_none(), "{name}");
    }
    for (name, metric, label, value) in [
        ("web-cpu", "ECSServiceAverageCPUUtilization", None, 70.0),
        (
            "web-memory",
            "ECSServiceAverageMemoryUtilization",
            None,
            80.0,
        ),
        (
            "web-requests",
            "ALBRequestCountPerTarget",
            Some(LABEL),
            500.0,
        ),
    ] {
        let c = tracking_of(&puts[name]);
        assert_eq!(
            metric_of(c),
            (metric.to_string(), label.map(str::to_string)),
            "{name}"
        );
        assert_eq!(c.target_value(), value, "{name}");
        assert_eq!(
            (c.scale_in_cooldown(), c.scale_out_cooldown()),
            (Some(300), Some(60)),
            "{name}"
        );
        assert_eq!(c.disable_scale_in(), Some(false), "{name}");
    }

    let night = only(j.inputs::<PutScheduledActionInput>());
    assert_eq!(night.scheduled_action_name(), Some("web-night"));
    assert_eq!(night.service_namespace(), Some(&ServiceNamespace::Ecs));
    assert_eq!(night.resource_id(), Some(RESOURCE_ID));
    assert_eq!(
        night.scalable_dimension(),
        Some(&ScalableDimension::EcsServiceDesiredCount)
    );
    assert_eq!(night.schedule(), Some(NIGHT_CRON));
    assert_eq!(night.timezone(), Some("Europe/Paris"));
    let range = night.scalable_target_action().expect("a new range");
    assert_eq!(
        (range.min_capacity(), range.max_capacity()),
        (Some(1), Some(2))
    );

    {
        let w = m.aas();
        let t = &w.targets[RESOURCE_ID];
        assert_eq!((t.min, t.max), (2, 10));
        assert_eq!(t.tags.get("ecs:stack").map(String::as_str), Some("web"));
        assert_eq!(w.policy_names(), ["web-cpu", "web-memory", "web-requests"]);
        assert_eq!(w.scheduled_names(), ["web-night"]);
    }
    assert!(
        h.events.events().iter().any(|e| matches!(
            e,
            Event::Done { resource, .. } if resource == "scalable-target service/web/web-app"
        )),
        "{:?}",
        h.events.events()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. No change.

#[tokio::test]
async fn unchanged_spec_plans_nothing_with_three_reads_and_applies_without_a_call() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    layer.deploy(&h.ctx, &full_spec(), &target()).await.unwrap();
    m.journal.clear();

    let plan = layer.plan(&h.ctx, &full_spec(), &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    assert_eq!(plan.changes().summary().unchanged, 5, "{plan}");
    assert!(plan.to_string().starts_with("No changes."), "{plan}");
    assert_eq!(
        sorted(m.journal.ops()),
        sorted(vec![
            "DescribeScalableTargets",
            "DescribeScalingPolicies",
            "DescribeScheduledActions",
        ])
    );
    let read = only(m.journal.inputs::<DescribeScalableTargetsInput>());
    assert_eq!(read.service_namespace(), Some(&ServiceNamespace::Ecs));
    assert_eq!(read.resource_ids(), [RESOURCE_ID]);

    layer.apply(&h.ctx, &plan).await.unwrap();
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(
        m.journal.ops().len(),
        3,
        "apply called AWS: {:?}",
        m.journal.ops()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Updates and deletes.

#[tokio::test]
async fn changed_target_value_updates_one_policy_and_removed_items_are_deleted() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    layer.deploy(&h.ctx, &full_spec(), &target()).await.unwrap();
    m.journal.clear();

    // CPU 70 → 60: one policy is put again, nothing else.
    let mut spec = full_spec();
    spec.cpu = Some(tracking(60.0));
    let plan = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[(POLICY, "web-cpu", "update")]),
        "{plan}"
    );
    let diff = match &plan
        .changes()
        .find(POLICY, "web-cpu")
        .expect("web-cpu")
        .action
    {
        Action::Update(diffs) => only(diffs.clone()),
        other => panic!("expected an update, got {other:?}"),
    };
    // The one field that differs, typed: not the whole configuration as text.
    assert_eq!(
        (diff.field.as_str(), diff.old.as_str(), diff.new.as_str()),
        ("target", "70", "60")
    );
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["PutScalingPolicy"]);
    assert_eq!(m.journal.count("RegisterScalableTarget"), 0);
    let put = only(m.journal.inputs::<PutScalingPolicyInput>());
    assert_eq!(put.policy_name(), Some("web-cpu"));
    let c = tracking_of(&put);
    assert_eq!(c.target_value(), 60.0);
    assert_eq!(metric_of(c).0, "ECSServiceAverageCPUUtilization");
    assert_eq!(m.aas().tracking("web-cpu").target_value(), 60.0);

    // No memory tracking and no schedule any more: both are deleted.
    m.journal.clear();
    spec.memory = None;
    spec.scheduled.clear();
    let plan = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[
            (POLICY, "web-memory", "delete"),
            (SCHEDULE, "web-night", "delete"),
        ]),
        "{plan}"
    );
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        sorted(m.journal.mutating()),
        sorted(vec!["DeleteScalingPolicy", "DeleteScheduledAction"])
    );
    let deleted = only(m.journal.inputs::<DeleteScalingPolicyInput>());
    assert_eq!(
        (deleted.policy_name(), deleted.resource_id()),
        (Some("web-memory"), Some(RESOURCE_ID))
    );
    assert_eq!(deleted.service_namespace(), Some(&ServiceNamespace::Ecs));
    assert_eq!(
        deleted.scalable_dimension(),
        Some(&ScalableDimension::EcsServiceDesiredCount)
    );
    let deleted = only(m.journal.inputs::<DeleteScheduledActionInput>());
    assert_eq!(
        (deleted.scheduled_action_name(), deleted.resource_id()),
        (Some("web-night"), Some(RESOURCE_ID))
    );
    assert_eq!(deleted.service_namespace(), Some(&ServiceNamespace::Ecs));
    {
        let w = m.aas();
        assert_eq!(w.policy_names(), ["web-cpu", "web-requests"]);
        assert!(w.scheduled_names().is_empty());
        let t = &w.targets[RESOURCE_ID];
        assert_eq!((t.min, t.max), (2, 10));
    }

    m.journal.clear();
    let plan = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
}

// ---------------------------------------------------------------------------------------------
// 4. Ownership.

#[tokio::test]
async fn policies_and_schedules_of_others_are_left_alone() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    layer.deploy(&h.ctx, &full_spec(), &target()).await.unwrap();

    // Someone else's policy and schedule on the same scalable target.
    let foreign_policy = PutScalingPolicyInput::builder()
        .policy_name("other-cpu")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(RESOURCE_ID)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(
            TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(40.0)
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
                        .build()
                        .expect("the metric type is set"),
                )
                .build()
                .expect("the target value is set"),
        )
        .build()
        .expect("a valid input");
    let foreign_schedule = PutScheduledActionInput::builder()
        .scheduled_action_name("other-weekend")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(RESOURCE_ID)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .schedule("cron(0 0 ? * SAT *)")
        .scalable_target_action(ScalableTargetAction::builder().min_capacity(0).build())
        .build()
        .expect("a valid input");
    {
        let mut w = m.aas();
        w.policies.insert(
            key(RESOURCE_ID, "other-cpu"),
            Policy {
                input: foreign_policy.clone(),
                arn: policy_arn(RESOURCE_ID, "other-cpu"),
            },
        );
        w.scheduled
            .insert(key(RESOURCE_ID, "other-weekend"), foreign_schedule.clone());
    }
    let no_foreign_item = |plan: &Plan| plan.changes.iter().all(|c| !c.id.starts_with("other-"));

    // The same spec: nothing to do, and the others' items are not even mentioned.
    m.journal.clear();
    let plan = layer.plan(&h.ctx, &full_spec(), &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    assert!(no_foreign_item(plan.changes()), "{:?}", plan.changes());

    // A changed spec updates and deletes the stack's own only.
    let mut spec = full_spec();
    spec.cpu = Some(tracking(65.0));
    spec.memory = None;
    spec.scheduled.clear();
    let plan = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert!(no_foreign_item(plan.changes()), "{:?}", plan.changes());
    assert_eq!(
        pending(plan.changes()),
        rows(&[
            (POLICY, "web-cpu", "update"),
            (POLICY, "web-memory", "delete"),
            (SCHEDULE, "web-night", "delete"),
        ]),
        "{plan}"
    );
    layer.apply(&h.ctx, &plan).await.unwrap();
    let touched: Vec<String> = m
        .journal
        .inputs::<PutScalingPolicyInput>()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_string))
        .chain(
            m.journal
                .inputs::<DeleteScalingPolicyInput>()
                .iter()
                .filter_map(|p| p.policy_name().map(str::to_string)),
        )
        .chain(
            m.journal
                .inputs::<DeleteScheduledActionInput>()
                .iter()
                .filter_map(|a| a.scheduled_action_name().map(str::to_string)),
        )
        .chain(
            m.journal
                .inputs::<PutScheduledActionInput>()
                .iter()
                .filter_map(|a| a.scheduled_action_name().map(str::to_string)),
        )
        .collect();
    assert_eq!(sorted(touched), ["web-cpu", "web-memory", "web-night"]);
    {
        let w = m.aas();
        assert_eq!(
            w.policies
                .get(&key(RESOURCE_ID, "other-cpu"))
                .map(|p| &p.input),
            Some(&foreign_policy)
        );
        assert_eq!(
            w.scheduled.get(&key(RESOURCE_ID, "other-weekend")),
            Some(&foreign_schedule)
        );
        assert_eq!(w.policy_names(), ["other-cpu", "web-cpu", "web-requests"]);
        assert_eq!(w.scheduled_names(), ["other-weekend"]);
    }

    m.journal.clear();
    let plan = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    assert!(no_foreign_item(plan.changes()), "{:?}", plan.changes());
}

// ---------------------------------------------------------------------------------------------
// 5. Step scaling.

#[tokio::test]
async fn step_policy_alarm_triggers_the_arn_put_returned_and_goes_with_the_policy() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();

    let plan = layer.plan(&h.ctx, &step_spec(), &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[
            (TARGET, DESIRED_COUNT, "create"),
            (POLICY, "web-step-queue", "create"),
            (ALARM, "web-step-queue", "create"),
        ]),
        "{plan}"
    );
    assert_eq!(
        only(m.journal.inputs::<DescribeAlarmsInput>()).alarm_names(),
        ["web-step-queue"]
    );

    m.journal.clear();
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        m.journal.mutating(),
        [
            "RegisterScalableTarget",
            "PutScalingPolicy",
            "PutMetricAlarm"
        ]
    );
    let put = only(m.journal.inputs::<PutScalingPolicyInput>());
    assert_eq!(put.policy_name(), Some("web-step-queue"));
    assert_eq!(put.resource_id(), Some(RESOURCE_ID));
    assert_eq!(put.policy_type(), Some(&PolicyType::StepScaling));
    assert!(put.target_tracking_scaling_policy_configuration().is_none());
    let c = put
        .step_scaling_policy_configuration()
        .expect("a step scaling configuration");
    assert_eq!(c.adjustment_type(), Some(&AdjustmentType::ChangeInCapacity));
    assert_eq!(
        c.metric_aggregation_type(),
        Some(&MetricAggregationType::Maximum)
    );
    assert_eq!(c.cooldown(), Some(60));
    assert_eq!(
        adjustments(c),
        [(Some(0.0), Some(50.0), 1), (Some(50.0), None, 3)]
    );

    // The alarm triggers the policy by the ARN PutScalingPolicy returned.
    let arn = m.aas().policies[&key(RESOURCE_ID, "web-step-queue")]
        .arn
        .clone();
    assert_eq!(arn, policy_arn(RESOURCE_ID, "web-step-queue"));
    let alarm = only(m.journal.inputs::<PutMetricAlarmInput>());
    assert_eq!(alarm.alarm_name(), Some("web-step-queue"));
    assert_eq!(alarm.alarm_actions(), [arn.as_str()]);
    assert_eq!(
        (alarm.namespace(), alarm.metric_name()),
        (Some("App"), Some("QueueDepth"))
    );
    let dimensions: Vec<(Option<&str>, Option<&str>)> = alarm
        .dimensions()
        .iter()
        .map(|d| (d.name(), d.value()))
        .collect();
    assert_eq!(dimensions, [(Some("Queue"), Some("jobs"))]);
    assert_eq!(alarm.statistic(), Some(&Statistic::Maximum));
    assert_eq!(alarm.threshold(), Some(100.0));
    assert_eq!(
        alarm.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
    );
    assert_eq!(
        (alarm.period(), alarm.evaluation_periods()),
        (Some(60), Some(2))
    );
    assert!(
        alarm
            .tags()
            .iter()
            .any(|t| t.key() == Some("ecs:stack") && t.value() == Some("web")),
        "{:?}",
        alarm.tags()
    );

    // Unchanged: five reads (the alarm's, and its tags: a step alarm without the stack's tag
    // is refused by the plan) and no mutating call.
    m.journal.clear();
    let plan = layer.plan(&h.ctx, &step_spec(), &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    assert_eq!(
        sorted(m.journal.ops()),
        sorted(vec![
            "DescribeAlarms",
            "DescribeScalableTargets",
            "DescribeScalingPolicies",
            "DescribeScheduledActions",
            "ListTagsForResource",
        ])
    );
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );

    // Without the step policy: the policy and its alarm are deleted.
    m.journal.clear();
    let without = ScalingSpec::builder().min(1).max(4).build();
    let plan = layer.plan(&h.ctx, &without, &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[
            (POLICY, "web-step-queue", "delete"),
            (ALARM, "web-step-queue", "delete"),
        ]),
        "{plan}"
    );
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        sorted(m.journal.mutating()),
        sorted(vec!["DeleteScalingPolicy", "DeleteAlarms"])
    );
    assert_eq!(
        only(m.journal.inputs::<DeleteScalingPolicyInput>()).policy_name(),
        Some("web-step-queue")
    );
    assert_eq!(
        only(m.journal.inputs::<DeleteAlarmsInput>()).alarm_names(),
        ["web-step-queue"]
    );
    {
        let w = m.aas();
        assert!(w.policies.is_empty());
        assert!(m.cw().alarms.is_empty());
        assert!(w.targets.contains_key(RESOURCE_ID));
    }
}

#[tokio::test]
async fn drifted_step_alarm_tags_are_set_back_without_putting_the_alarm_again() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    let plan = layer.plan(&h.ctx, &step_spec(), &target()).await.unwrap();
    layer.apply(&h.ctx, &plan).await.unwrap();
    {
        let mut w = m.cw();
        let tags = &mut w
            .alarms
            .get_mut("web-step-queue")
            .expect("the alarm's tags")
            .tags;
        let before = tags.len();
        tags.retain(|t| t.key() != Some("team"));
        assert_eq!(tags.len(), before - 1, "the user's tag was set at creation");
        tags.push(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key("extra")
                .value("x")
                .build(),
        );
    }
    m.journal.clear();

    let plan = layer.plan(&h.ctx, &step_spec(), &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[(ALARM, "web-step-queue", "update")]),
        "{plan}"
    );
    let change = plan.changes().find(ALARM, "web-step-queue").unwrap();
    match &change.action {
        Action::Update(d) => assert_eq!(
            d.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(),
            ["tags"]
        ),
        other => panic!("{other:?}"),
    }
    m.journal.clear();
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["TagResource", "UntagResource"]);
    let set = only(
        m.journal
            .inputs::<aws_sdk_cloudwatch::operation::tag_resource::TagResourceInput>(),
    );
    let arn = alarm_arn("web-step-queue");
    assert_eq!(set.resource_arn(), Some(arn.as_str()));
    assert_eq!(
        set.tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect::<Vec<_>>(),
        [("team", "payments")]
    );
    assert_eq!(
        only(
            m.journal
                .inputs::<aws_sdk_cloudwatch::operation::untag_resource::UntagResourceInput>()
        )
        .tag_keys(),
        ["extra"]
    );

    m.journal.clear();
    let plan = layer.plan(&h.ctx, &step_spec(), &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
}

/// A step alarm is put again only when it differs: a step policy changed in place keeps its
/// ARN, so its alarm is left alone; an alarm pointed elsewhere by hand is pointed back at its
/// policy, and the plan says so.
#[tokio::test]
async fn a_step_alarm_is_put_again_only_when_it_no_longer_triggers_its_policy() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    layer.deploy(&h.ctx, &step_spec(), &target()).await.unwrap();

    let mut steeper = step_spec();
    steeper.step[0].steps[1].adjustment = 5;
    let plan = layer.plan(&h.ctx, &steeper, &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[(POLICY, "web-step-queue", "update")]),
        "{plan}"
    );
    m.journal.clear();
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["PutScalingPolicy"]);

    let arn = m.aas().policies[&key(RESOURCE_ID, "web-step-queue")]
        .arn
        .clone();
    m.cw()
        .alarms
        .get_mut("web-step-queue")
        .expect("the step alarm")
        .input
        .alarm_actions = Some(vec!["arn:aws:sns:us-east-1:123456789012:elsewhere".into()]);
    let plan = layer.plan(&h.ctx, &steeper, &target()).await.unwrap();
    let change = plan
        .changes()
        .find(ALARM, "web-step-queue")
        .expect("the alarm's change");
    assert_eq!(
        change.action,
        Action::Update(vec![FieldDiff::new(
            "action",
            "arn:aws:sns:us-east-1:123456789012:elsewhere",
            arn.as_str()
        )])
    );
    m.journal.clear();
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["PutMetricAlarm"]);
    let put = only(m.journal.inputs::<PutMetricAlarmInput>());
    assert_eq!(put.alarm_actions(), [arn.as_str()]);
    let next = layer.plan(&h.ctx, &steeper, &target()).await.unwrap();
    assert!(next.changes().is_empty(), "{next}");
}

/// A put that answers a policy ARN of its own (as an emulator may: AWS keeps the ARN) points
/// the step alarm at that ARN in the same apply: the alarm follows the ARN its policy's step
/// gives, not the one the plan read.
#[tokio::test]
async fn a_step_alarm_follows_the_arn_its_policys_put_answered() {
    let h = Harness::new();
    let m = Mock::new();
    m.layer()
        .deploy(&h.ctx, &step_spec(), &target())
        .await
        .unwrap();
    // From now on every put answers a new ARN.
    let puts = Arc::new(AtomicUsize::new(0));
    let renamed = {
        let puts = puts.clone();
        m.aas.on(
            "PutScalingPolicy",
            mock!(aws_sdk_applicationautoscaling::Client::put_scaling_policy),
            move |w, r, _| {
                let (id, name) = (
                    r.resource_id().unwrap_or_default(),
                    r.policy_name().unwrap_or_default(),
                );
                let n = puts.fetch_add(1, Ordering::SeqCst) + 2;
                let arn = format!("{}-v{n}", policy_arn(id, name));
                w.policies.insert(
                    key(id, name),
                    Policy {
                        input: r.clone(),
                        arn: arn.clone(),
                    },
                );
                Ok(PutScalingPolicyOutput::builder()
                    .policy_arn(arn)
                    .build()
                    .expect("the policy ARN is set"))
            },
        )
    };
    let layer = m.layer_with(&[&renamed]);
    let mut steeper = step_spec();
    steeper.step[0].steps[1].adjustment = 5;
    m.journal.clear();
    let plan = layer.plan(&h.ctx, &steeper, &target()).await.unwrap();
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["PutScalingPolicy", "PutMetricAlarm"]);
    let arn = format!("{}-v2", policy_arn(RESOURCE_ID, "web-step-queue"));
    assert_eq!(
        only(m.journal.inputs::<PutMetricAlarmInput>()).alarm_actions(),
        [arn.as_str()]
    );
    let next = layer.plan(&h.ctx, &steeper, &target()).await.unwrap();
    assert!(next.changes().is_empty(), "{next}");
}

#[tokio::test]
async fn step_alarms_without_the_stack_tag_are_never_changed_or_deleted() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    layer.deploy(&h.ctx, &step_spec(), &target()).await.unwrap();
    // Someone else's alarm now stands under the step alarm's name (no stack tag), and the
    // stack wants another threshold.
    for alarm in m.cw().alarms.values_mut() {
        alarm.tags.clear();
    }
    let mut changed = step_spec();
    changed.step[0].threshold = 7.0;

    // Changing it is refused by the plan, before any change (of this or any other layer).
    m.journal.clear();
    let err = layer.plan(&h.ctx, &changed, &target()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "alarm `web-step-queue` already exists and is not owned by stack `web` (it lacks the stack's tag); \
         it is left untouched: rename the stack or the application, or remove the other resource"
    );
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());
    assert_eq!(m.journal.count("ListTagsForResource"), 1);
    // One that already matches the spec is left as it is: neither refused nor retagged.
    let plan = layer.plan(&h.ctx, &step_spec(), &target()).await.unwrap();
    assert!(
        plan.changes()
            .find(ALARM, "web-step-queue")
            .is_some_and(|c| !c.action.is_change()),
        "{plan}"
    );

    // Neither destroy nor its preview lists or deletes it; the rest goes.
    let planned = layer.plan_destroy(&h.ctx, &target()).await.unwrap();
    assert!(planned.find(ALARM, "web-step-queue").is_none(), "{planned}");
    assert!(
        planned.find(POLICY, "web-step-queue").is_some(),
        "{planned}"
    );
    m.journal.clear();
    layer.destroy(&h.ctx, &target()).await.unwrap();
    assert_eq!(
        sorted(m.journal.mutating()),
        sorted(vec!["DeleteScalingPolicy", "DeregisterScalableTarget"])
    );
    assert!(m.cw().alarms.contains_key("web-step-queue"));

    // Without the step policy, the policy goes and a foreign alarm of its name stays.
    let m = Mock::new();
    let layer = m.layer();
    layer.deploy(&h.ctx, &step_spec(), &target()).await.unwrap();
    for alarm in m.cw().alarms.values_mut() {
        alarm.tags.clear();
    }
    m.journal.clear();
    let without = ScalingSpec::builder().min(1).max(4).build();
    let plan = layer.plan(&h.ctx, &without, &target()).await.unwrap();
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["DeleteScalingPolicy"]);
    assert!(m.cw().alarms.contains_key("web-step-queue"));
}

// ---------------------------------------------------------------------------------------------
// 6. Eventual consistency.

#[tokio::test]
async fn policy_put_before_the_registration_is_visible_is_retried() {
    let h = Harness::new();
    let m = Mock::new();
    let not_yet = mock!(aws_sdk_applicationautoscaling::Client::put_scaling_policy)
        .sequence()
        .error(|| PutScalingPolicyError::generic(no_target(RESOURCE_ID)))
        .times(1)
        .build();
    let layer = m.layer_with(&[&not_yet]);
    let spec = ScalingSpec::builder()
        .min(2)
        .max(10)
        .cpu(tracking(70.0))
        .build();

    let (plan, out) = layer.deploy(&h.ctx, &spec, &target()).await.unwrap();

    assert_eq!(plan.summary().create, 2, "{plan}");
    assert_eq!(out.policies, ["web-cpu"]);
    assert_eq!(not_yet.num_calls(), 1);
    assert_eq!(
        m.journal.count("PutScalingPolicy"),
        1,
        "the second attempt reached the world"
    );
    assert!(m.journal.first("RegisterScalableTarget") < m.journal.first("PutScalingPolicy"));
    assert!(m.aas().policies.contains_key(&key(RESOURCE_ID, "web-cpu")));
    assert_eq!(h.retries("PutScalingPolicy"), [1]);
    let (resource, reason) = h
        .events
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Retrying {
                resource, reason, ..
            } => Some((resource, reason)),
            _ => None,
        })
        .expect("a Retrying event");
    assert_eq!(resource, "scaling-policy web-cpu");
    assert!(
        reason.starts_with("ObjectNotFoundException: No scalable target registered"),
        "{reason}"
    );
    // The one retry delay (jittered: between half and all of 500 ms) went through the clock.
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 1, "{sleeps:?}");
    assert!(
        (Duration::from_millis(250)..=Duration::from_millis(500)).contains(&sleeps[0]),
        "{sleeps:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Validation.

#[tokio::test]
async fn invalid_spec_reports_every_problem_before_any_call() {
    let h = Harness::new();
    let m = Mock::new();
    let mut spec = ScalingSpec::cpu_and_memory(5, 3);
    spec.cpu = Some(tracking(150.0));
    spec.requests_per_target = Some(tracking(500.0));
    let without_alb = ScalingTarget {
        desired_count: Some(9),
        resource_label: None,
        ..target()
    };

    let err = m
        .layer()
        .plan(&h.ctx, &spec, &without_alb)
        .await
        .unwrap_err();

    let problems = err.problems().expect("validation problems");
    for field in [
        "scaling.min",
        "service.desired_count",
        "scaling.cpu.target",
        "scaling.requests_per_target",
    ] {
        assert!(problems.mentions(field), "{field}: {problems}");
    }
    assert!(!problems.mentions("scaling.max"), "{problems}");
    assert!(!problems.mentions("scaling.memory.target"), "{problems}");
    assert!(
        m.journal.ops().is_empty(),
        "AWS was called: {:?}",
        m.journal.ops()
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Suspend and resume.

#[tokio::test]
async fn suspend_and_resume_keep_the_range_and_flip_every_suspension() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    let spec = ScalingSpec::cpu_and_memory(2, 10);
    layer.deploy(&h.ctx, &spec, &target()).await.unwrap();

    m.journal.clear();
    layer.suspend(&h.ctx, &target()).await.unwrap();
    assert_eq!(m.journal.mutating(), ["RegisterScalableTarget"]);
    let reg = only(m.journal.inputs::<RegisterScalableTargetInput>());
    assert_eq!(
        (reg.resource_id(), reg.min_capacity(), reg.max_capacity()),
        (Some(RESOURCE_ID), Some(2), Some(10))
    );
    assert_eq!(
        reg.scalable_dimension(),
        Some(&ScalableDimension::EcsServiceDesiredCount)
    );
    assert_eq!(reg.suspended_state(), Some(&all_suspended(true)));
    {
        let w = m.aas();
        let t = &w.targets[RESOURCE_ID];
        assert_eq!((t.min, t.max), (2, 10));
        assert_eq!(t.suspended, all_suspended(true));
    }

    // Redeploying the same spec leaves the suspension alone.
    m.journal.clear();
    let (plan, _) = layer.deploy(&h.ctx, &spec, &target()).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(m.aas().targets[RESOURCE_ID].suspended, all_suspended(true));

    m.journal.clear();
    layer.resume(&h.ctx, &target()).await.unwrap();
    assert_eq!(m.journal.mutating(), ["RegisterScalableTarget"]);
    let reg = only(m.journal.inputs::<RegisterScalableTargetInput>());
    assert_eq!(
        (reg.resource_id(), reg.min_capacity(), reg.max_capacity()),
        (Some(RESOURCE_ID), Some(2), Some(10))
    );
    assert_eq!(reg.suspended_state(), Some(&all_suspended(false)));
    {
        let w = m.aas();
        let t = &w.targets[RESOURCE_ID];
        assert_eq!((t.min, t.max), (2, 10));
        assert_eq!(t.suspended, all_suspended(false));
    }
}

#[tokio::test]
async fn suspend_and_resume_without_a_registered_target_fail_with_not_registered() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();

    for suspend in [true, false] {
        let result = if suspend {
            layer.suspend(&h.ctx, &target()).await
        } else {
            layer.resume(&h.ctx, &target()).await
        };
        match result {
            Err(Error::NotRegistered { resource_id, .. }) => {
                assert_eq!(resource_id, RESOURCE_ID);
            }
            other => panic!("expected NotRegistered, got {other:?}"),
        }
    }
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(m.journal.count("DescribeScalableTargets"), 2);
    assert!(m.aas().targets.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 9. Scale.

#[tokio::test]
async fn scale_sets_the_range_then_the_desired_count_and_checks_its_arguments() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();

    layer.scale(&h.ctx, &target(), 3, 6, 4).await.unwrap();
    assert_eq!(
        m.journal.mutating(),
        ["RegisterScalableTarget", "UpdateService"]
    );
    let reg = only(m.journal.inputs::<RegisterScalableTargetInput>());
    assert_eq!(
        (reg.resource_id(), reg.min_capacity(), reg.max_capacity()),
        (Some(RESOURCE_ID), Some(3), Some(6))
    );
    assert_eq!(reg.service_namespace(), Some(&ServiceNamespace::Ecs));
    assert!(reg.suspended_state().is_none(), "{reg:?}");
    let update = only(m.journal.inputs::<UpdateServiceInput>());
    assert_eq!(
        (update.cluster(), update.service(), update.desired_count()),
        (Some(CLUSTER), Some(SERVICE), Some(4))
    );
    {
        let (w, e) = (m.aas(), m.ecs());
        let t = &w.targets[RESOURCE_ID];
        assert_eq!((t.min, t.max), (3, 6));
        let service = &e.services[0];
        assert_eq!(
            (service.cluster_arn(), service.service_name()),
            (Some(cluster_arn(CLUSTER).as_str()), Some(SERVICE))
        );
        assert_eq!(service.desired_count(), 4);
    }

    // min 5 > max 3: refused before any call.
    m.journal.clear();
    let err = layer.scale(&h.ctx, &target(), 5, 3, 4).await.unwrap_err();
    let problems = err.problems().expect("a validation error");
    assert!(problems.mentions("scale"), "{problems}");
    assert!(
        m.journal.ops().is_empty(),
        "AWS was called: {:?}",
        m.journal.ops()
    );
    {
        let (w, e) = (m.aas(), m.ecs());
        let t = &w.targets[RESOURCE_ID];
        assert_eq!((t.min, t.max), (3, 6));
        let service = &e.services[0];
        assert_eq!(
            (service.cluster_arn(), service.service_name()),
            (Some(cluster_arn(CLUSTER).as_str()), Some(SERVICE))
        );
        assert_eq!(service.desired_count(), 4);
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Destroy.

#[tokio::test]
async fn destroy_deletes_policies_alarms_and_schedules_then_deregisters_the_target() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    layer
        .deploy(&h.ctx, &everything_spec(), &target())
        .await
        .unwrap();
    m.journal.clear();

    let planned = layer.plan_destroy(&h.ctx, &target()).await.unwrap();
    assert_eq!(
        pending(&planned),
        rows(&[
            (POLICY, "web-cpu", "delete"),
            (POLICY, "web-memory", "delete"),
            (POLICY, "web-step-queue", "delete"),
            (ALARM, "web-step-queue", "delete"),
            (SCHEDULE, "web-night", "delete"),
            (TARGET, DESIRED_COUNT, "delete"),
        ]),
        "{planned}"
    );
    assert_eq!(planned.changes.len(), 6, "{planned}");
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );

    m.journal.clear();
    let done = layer.destroy(&h.ctx, &target()).await.unwrap();
    assert_eq!(done, planned);
    let j = &m.journal;
    assert_eq!(
        sorted(j.mutating()),
        sorted(vec![
            "DeleteScalingPolicy",
            "DeleteScalingPolicy",
            "DeleteScalingPolicy",
            "DeleteAlarms",
            "DeleteScheduledAction",
            "DeregisterScalableTarget",
        ])
    );
    // The target goes last.
    assert_eq!(j.mutating().last(), Some(&"DeregisterScalableTarget"));
    let deregistered = j.last("DeregisterScalableTarget");
    for op in [
        "DeleteScalingPolicy",
        "DeleteAlarms",
        "DeleteScheduledAction",
    ] {
        assert!(
            j.last(op) < deregistered,
            "{op} after the deregistration: {:?}",
            j.ops()
        );
    }
    let deleted: Vec<String> = j
        .inputs::<DeleteScalingPolicyInput>()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_string))
        .collect();
    assert_eq!(sorted(deleted), ["web-cpu", "web-memory", "web-step-queue"]);
    assert_eq!(
        only(j.inputs::<DeleteAlarmsInput>()).alarm_names(),
        ["web-step-queue"]
    );
    assert_eq!(
        only(j.inputs::<DeleteScheduledActionInput>()).scheduled_action_name(),
        Some("web-night")
    );
    let dereg = only(j.inputs::<DeregisterScalableTargetInput>());
    assert_eq!(dereg.service_namespace(), Some(&ServiceNamespace::Ecs));
    assert_eq!(dereg.resource_id(), Some(RESOURCE_ID));
    assert_eq!(
        dereg.scalable_dimension(),
        Some(&ScalableDimension::EcsServiceDesiredCount)
    );
    {
        let w = m.aas();
        assert!(w.targets.is_empty());
        assert!(w.policies.is_empty());
        assert!(w.scheduled.is_empty());
        assert!(m.cw().alarms.is_empty());
    }

    // Nothing left: nothing to plan, nothing to delete.
    m.journal.clear();
    let planned = layer.plan_destroy(&h.ctx, &target()).await.unwrap();
    assert!(planned.changes.is_empty(), "{planned}");
    let done = layer.destroy(&h.ctx, &target()).await.unwrap();
    assert!(done.changes.is_empty(), "{done}");
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(m.journal.count("DescribeScalableTargets"), 2);
}

// ---------------------------------------------------------------------------------------------
// 11. How live state is read.

#[tokio::test]
async fn live_utc_or_empty_time_zone_and_absent_cooldowns_count_as_defaults() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    let spec = ScalingSpec::builder()
        .min(2)
        .max(10)
        .cpu(
            TargetTracking::builder()
                .target(70.0)
                .scale_out_cooldown(300)
                .build(),
        )
        .scheduled(vec![
            ScheduledScaling::builder()
                .name("night")
                .schedule(NIGHT_CRON)
                .min(1)
                .build(),
            ScheduledScaling::builder()
                .name("morning")
                .schedule("cron(0 7 ? * MON-FRI *)")
                .min(2)
                .build(),
        ])
        .build();
    layer.deploy(&h.ctx, &spec, &target()).await.unwrap();
    let puts = m.journal.inputs::<PutScheduledActionInput>();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(puts.iter().all(|p| p.timezone().is_none()), "{puts:?}");

    {
        let mut w = m.aas();
        // What AWS may report for schedules put without a time zone.
        w.scheduled
            .get_mut(&key(RESOURCE_ID, "web-night"))
            .expect("web-night")
            .timezone = Some("UTC".to_string());
        w.scheduled
            .get_mut(&key(RESOURCE_ID, "web-morning"))
            .expect("web-morning")
            .timezone = Some(String::new());
        // And for a policy whose cooldowns are the defaults.
        let cpu = w
            .policies
            .get_mut(&key(RESOURCE_ID, "web-cpu"))
            .expect("web-cpu");
        let c = cpu
            .input
            .target_tracking_scaling_policy_configuration
            .as_mut()
            .expect("a target tracking configuration");
        c.scale_in_cooldown = None;
        c.scale_out_cooldown = None;
    }

    m.journal.clear();
    let plan = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
}

// ---------------------------------------------------------------------------------------------
// 12. A new range.

#[tokio::test]
async fn changed_range_registers_the_target_again_and_nothing_else() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    layer
        .deploy(&h.ctx, &ScalingSpec::cpu_and_memory(2, 10), &target())
        .await
        .unwrap();
    m.journal.clear();

    let spec = ScalingSpec::cpu_and_memory(1, 12);
    let plan = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert_eq!(
        pending(plan.changes()),
        rows(&[(TARGET, DESIRED_COUNT, "update")]),
        "{plan}"
    );
    match &plan
        .changes()
        .find(TARGET, DESIRED_COUNT)
        .expect("the target")
        .action
    {
        Action::Update(diffs) => {
            let fields: Vec<(&str, &str, &str)> = diffs
                .iter()
                .map(|d| (d.field.as_str(), d.old.as_str(), d.new.as_str()))
                .collect();
            assert_eq!(fields, [("min", "2", "1"), ("max", "10", "12")]);
        }
        other => panic!("expected an update, got {other:?}"),
    }

    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["RegisterScalableTarget"]);
    let reg = only(m.journal.inputs::<RegisterScalableTargetInput>());
    assert_eq!(
        (reg.min_capacity(), reg.max_capacity()),
        (Some(1), Some(12))
    );
    assert!(reg.suspended_state().is_none(), "{reg:?}");
    let w = m.aas();
    let t = &w.targets[RESOURCE_ID];
    assert_eq!((t.min, t.max), (1, 12));
}

// ---------------------------------------------------------------------------------------------
// 13. Planning in two phases: the reads before the resource label is known, the diff after.

#[tokio::test]
async fn read_with_a_placeholder_label_then_plan_with_the_real_one_matches_plan_without_a_call() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    // Deployed behind a load balancer that has since been replaced.
    let old_label = "app/web-alb/1111111111111111/targetgroup/web-app/2222222222222222";
    let before = ScalingTarget {
        resource_label: Some(old_label.to_string()),
        ..target()
    };
    layer.deploy(&h.ctx, &full_spec(), &before).await.unwrap();
    let mut spec = full_spec();
    spec.step.push(queue());
    // What a deploy knows before the service layer has run.
    let placeholder = ScalingTarget {
        resource_label: Some("(known after apply)".to_string()),
        ..target()
    };

    m.journal.clear();
    let state = layer.read(&h.ctx, &spec, &placeholder).await.unwrap();
    assert_eq!(state.resource_id(), RESOURCE_ID);
    assert_eq!(
        sorted(m.journal.ops()),
        sorted(vec![
            "DescribeAlarms",
            "DescribeScalableTargets",
            "DescribeScalingPolicies",
            "DescribeScheduledActions",
        ])
    );
    // The step alarm is read by a name that depends on the spec and the stack only.
    assert_eq!(
        only(m.journal.inputs::<DescribeAlarmsInput>()).alarm_names(),
        ["web-step-queue"]
    );

    m.journal.clear();
    let plan = layer.plan_with(&h.ctx, &state, &target()).unwrap();
    assert!(
        m.journal.ops().is_empty(),
        "plan_with called AWS: {:?}",
        m.journal.ops()
    );
    assert_eq!(
        pending(plan.changes()),
        rows(&[
            (POLICY, "web-requests", "update"),
            (POLICY, "web-step-queue", "create"),
            (ALARM, "web-step-queue", "create"),
        ]),
        "{plan}"
    );
    let direct = layer.plan(&h.ctx, &spec, &target()).await.unwrap();
    assert_eq!(plan.changes(), direct.changes());

    // The plan carries the real label, not the placeholder.
    m.journal.clear();
    layer.apply(&h.ctx, &plan).await.unwrap();
    let puts = puts_by_name(&m.journal);
    assert_eq!(
        metric_of(tracking_of(&puts["web-requests"])),
        (
            "ALBRequestCountPerTarget".to_string(),
            Some(LABEL.to_string())
        )
    );
    assert_eq!(
        metric_of(&m.aas().tracking("web-requests")).1.as_deref(),
        Some(LABEL)
    );
    assert!(layer
        .plan(&h.ctx, &spec, &target())
        .await
        .unwrap()
        .changes()
        .is_empty());
}

#[tokio::test]
async fn plan_with_another_service_than_the_one_read_fails_naming_both() {
    let h = Harness::new();
    let m = Mock::new();
    let layer = m.layer();
    let state = layer.read(&h.ctx, &full_spec(), &target()).await.unwrap();
    m.journal.clear();
    let other = ScalingTarget {
        service: "web-api".to_string(),
        // Outside the spec's 2–10: reported along with the other service.
        desired_count: Some(50),
        ..target()
    };

    let err = layer.plan_with(&h.ctx, &state, &other).unwrap_err();

    let problems = err.problems().expect("validation problems");
    assert!(problems.mentions("target.resource_id"), "{problems}");
    assert!(problems.mentions("service.desired_count"), "{problems}");
    assert_eq!(problems.len(), 2, "{problems}");
    let text = err.to_string();
    assert!(
        text.contains("service/web/web-api") && text.contains(RESOURCE_ID),
        "{text}"
    );
    assert!(
        m.journal.ops().is_empty(),
        "AWS was called: {:?}",
        m.journal.ops()
    );
}
