//! Tests of ecs-observe through its public API against mocked SDK clients (aws-smithy-mocks):
//! plan, apply, `ensure_log_group`, `alarm_states` and destroy of the stack's log group, alarms
//! and dashboard, with retries timed by a [`FakeClock`] so nothing sleeps for real.
//!
//! Every test builds a [`Mock`]: the shared stateful fakes of CloudWatch and CloudWatch Logs
//! (`ecs_core::testing::{FakeCloudWatch, FakeLogs}`) behind both clients. Describes and gets
//! answer from them and creates, puts and deletes change them, so what an apply made is what
//! the next plan finds. They behave as AWS does where it matters here: `DescribeAlarms` answers by name prefix or names, in pages (so the
//! layer's pagination is exercised), and returns each alarm as it was put (metric-math alarms
//! with their `Metrics`); tags given to `PutMetricAlarm` are kept only when it creates the alarm;
//! `GetDashboard` of a missing dashboard answers `ResourceNotFound`; `ListTagsForResource` of
//! CloudWatch Logs wants the log group's ARN without the trailing `:*`; creating a log group that
//! exists answers `ResourceAlreadyExistsException`. Every call is recorded, input included, in a
//! [`Journal`]. A test puts its own rules in front of the fakes' (in `RuleMode::MatchAny` the
//! first matching rule answers) to inject errors.

// The mock closures return the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use ecs_core::testing::Journal;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::MutexGuard;
use std::time::Duration;

use aws_sdk_cloudwatch::error::ErrorMetadata;
use aws_sdk_cloudwatch::operation as cw_op;
use aws_sdk_cloudwatch::operation::delete_alarms::DeleteAlarmsInput;
use aws_sdk_cloudwatch::operation::delete_dashboards::DeleteDashboardsInput;
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsInput;
use aws_sdk_cloudwatch::operation::put_dashboard::PutDashboardInput;
use aws_sdk_cloudwatch::operation::put_metric_alarm::{PutMetricAlarmError, PutMetricAlarmInput};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDataQuery, StateValue, Statistic,
};
use aws_sdk_cloudwatchlogs::operation as logs_op;
use aws_sdk_cloudwatchlogs::operation::create_log_group::CreateLogGroupInput;
use aws_sdk_cloudwatchlogs::operation::delete_log_group::DeleteLogGroupInput;
use aws_sdk_cloudwatchlogs::operation::put_retention_policy::PutRetentionPolicyInput;
use serde_json::Value;

use ecs_core::testing::fake_cloudwatch::{alarm_arn, Alarm};
use ecs_core::testing::fake_logs::LogGroupRecord;
use ecs_core::testing::{mock, CloudWatchState, FakeCloudWatch, FakeLogs, LogsState, Rule};
use ecs_core::{Action, Context, Event, EventLog, FakeClock, StackName, Tags};
use ecs_observe::{
    dashboard_body, Error, Monitoring, ObserveClients, ObserveLayer, ObserveOutputs, ObservePlan,
    ObserveSpec, ObserveTarget,
};

/// `ListTagsForResource` of CloudWatch (alarms), as opposed to that of CloudWatch Logs.
type AlarmTagsInput = cw_op::list_tags_for_resource::ListTagsForResourceInput;
/// `ListTagsForResource` of CloudWatch Logs.
type LogTagsInput = logs_op::list_tags_for_resource::ListTagsForResourceInput;
type CwTag = aws_sdk_cloudwatch::types::Tag;

// ---------------------------------------------------------------------------------------------
// Names used throughout (stack `web`).

const REGION: &str = "us-east-1";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops";
const CLUSTER: &str = "web";
const SERVICE: &str = "web-app";
const LB: &str = "app/web-alb/0123456789abcdef";
const TG: &str = "targetgroup/web-app/fedcba9876543210";
const LOG_GROUP: &str = "/ecs/web";
const LOG_GROUP_ARN: &str = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web";
const DASHBOARD: &str = "web";
const DASHBOARD_URL: &str =
    "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=web";
const MARK: &str = "Managed by ecs-facade stack `web`.";

const CPU: &str = "web-cpu-high";
const MEMORY: &str = "web-memory-high";
const TARGET_5XX: &str = "web-target-5xx";
const LATENCY: &str = "web-latency-p99";
const UNHEALTHY: &str = "web-unhealthy-hosts";
const RUNNING: &str = "web-running-below-desired";
/// Every alarm of an advanced stack with a load balancer.
const ALL_ALARMS: [&str; 6] = [CPU, MEMORY, TARGET_5XX, LATENCY, UNHEALTHY, RUNNING];

/// A dashboard called like the stack's, made by someone else (no ownership mark).
const FOREIGN_DASHBOARD: &str = r##"{"widgets":[{"type":"text","x":0,"y":0,"width":24,"height":2,"properties":{"markdown":"# Ops overview\nMaintained by the platform team."}}]}"##;

/// Alarms per `DescribeAlarms` page: fewer than a stack has, so paging is exercised.
const ALARM_PAGE: usize = 4;

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn dim_map(dims: &[Dimension]) -> BTreeMap<String, String> {
    dims.iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn cw_tag(key: &str, value: &str) -> CwTag {
    CwTag::builder().key(key).value(value).build()
}

fn cw_tag_map(tags: &[CwTag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The dimensions of the service's metrics.
fn service_dims() -> BTreeMap<String, String> {
    pairs(&[("ClusterName", CLUSTER), ("ServiceName", SERVICE)])
}

/// The dimensions of the target group's metrics.
fn target_dims() -> BTreeMap<String, String> {
    pairs(&[("LoadBalancer", LB), ("TargetGroup", TG)])
}

/// The tags the stack's log group carries.
fn our_log_group_tags() -> BTreeMap<String, String> {
    pairs(&[
        ("ecs:stack", "web"),
        ("ecs:resource", "log-group"),
        ("team", "payments"),
    ])
}

// ---------------------------------------------------------------------------------------------
// Recording calls.

// The journal of calls: `ecs_core::testing::Journal`, shared by every mock test.

/// The one element of `items`.
fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

fn only<T: Debug>(items: Vec<T>) -> T {
    assert_eq!(items.len(), 1, "expected exactly one: {items:?}");
    items.into_iter().next().expect("one element")
}

// ---------------------------------------------------------------------------------------------
// The mocked clients.

/// The fake CloudWatch and CloudWatch Logs accounts (`ecs_core::testing`), and the journal
/// they record into.
#[derive(Clone)]
struct Mock {
    journal: Journal,
    cw: FakeCloudWatch,
    logs: FakeLogs,
}

impl Default for Mock {
    fn default() -> Self {
        let journal = Journal::default();
        let mut alarms = CloudWatchState::default();
        alarms.page_size = ALARM_PAGE;
        Self {
            cw: FakeCloudWatch::new(&journal, alarms),
            logs: FakeLogs::new(&journal, LogsState::default()),
            journal,
        }
    }
}

impl Mock {
    /// The alarms and dashboards, for setting them up and inspecting them (never held across
    /// an `await`).
    fn cw(&self) -> MutexGuard<'_, CloudWatchState> {
        self.cw.state()
    }

    /// The log groups, likewise.
    fn logs(&self) -> MutexGuard<'_, LogsState> {
        self.logs.state()
    }

    /// The layer over the fakes.
    fn layer(&self) -> ObserveLayer {
        self.layer_with(&[])
    }

    /// The layer over the fakes, with `cw_overrides` answering CloudWatch calls first.
    fn layer_with(&self, cw_overrides: &[&Rule]) -> ObserveLayer {
        ObserveLayer::from_clients(ObserveClients {
            logs: self.logs.client(),
            cloudwatch: self.cw.client_with(cw_overrides),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The context, the target and the specifications.

struct Harness {
    clock: FakeClock,
    events: EventLog,
    ctx: Context,
}

impl Harness {
    fn new() -> Self {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = Context::builder()
            .stack(StackName::new("web").unwrap())
            .tags(Tags::new().with("team", "payments"))
            .clock(clock.clone())
            .events(events.clone())
            .run_id("run-1")
            .build();
        Self { clock, events, ctx }
    }

    /// The `Event::Retrying` of `operation`: (resource, reason, attempt).
    fn retries(&self, operation: &str) -> Vec<(String, String, u32)> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Retrying {
                    resource,
                    operation: op,
                    reason,
                    attempt,
                } if op == operation => Some((resource, reason, attempt)),
                _ => None,
            })
            .collect()
    }
}

fn target() -> ObserveTarget {
    ObserveTarget {
        cluster: CLUSTER.into(),
        service: SERVICE.into(),
        load_balancer: Some(LB.into()),
        target_group: Some(TG.into()),
        log_group: LOG_GROUP.into(),
    }
}

/// Advanced monitoring, every alarm notifying the ops topic.
fn spec() -> ObserveSpec {
    ObserveSpec::builder()
        .monitoring(Monitoring::Advanced)
        .alarm_actions(vec![TOPIC.into()])
        .build()
}

async fn deploy(layer: &ObserveLayer, h: &Harness, spec: &ObserveSpec) -> ObserveOutputs {
    let plan = layer.plan(&h.ctx, spec, &target()).await.expect("plan");
    layer.apply(&h.ctx, &plan).await.expect("apply")
}

fn action_of<'a>(plan: &'a ObservePlan, resource: &str, id: &str) -> Option<&'a Action> {
    plan.changes().find(resource, id).map(|c| &c.action)
}

/// The pending changes as (resource, id).
fn pending(plan: &ObservePlan) -> BTreeSet<(String, String)> {
    plan.changes()
        .pending()
        .map(|c| (c.resource.clone(), c.id.clone()))
        .collect()
}

fn change(resource: &str, id: &str) -> (String, String) {
    (resource.to_string(), id.to_string())
}

/// The diffs of an update, as (field, old, new).
fn updated(plan: &ObservePlan, resource: &str, id: &str) -> Vec<(String, String, String)> {
    match action_of(plan, resource, id) {
        Some(Action::Update(diffs)) => diffs
            .iter()
            .map(|d| (d.field.clone(), d.old.clone(), d.new.clone()))
            .collect(),
        other => panic!("{resource} {id}: expected an update, got {other:?}\n{plan}"),
    }
}

/// The ARNs listed by the alarm widget of a dashboard body.
fn widget_alarms(body: &Value) -> Vec<String> {
    body["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| {
            w["properties"]["alarms"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|a| a.as_str().expect("an ARN").to_string())
        .collect()
}

/// A CPU alarm of the service called `name`, as someone else might have made it.
fn cpu_alarm_input(name: &str, threshold: f64) -> PutMetricAlarmInput {
    PutMetricAlarmInput::builder()
        .alarm_name(name)
        .namespace("AWS/ECS")
        .metric_name("CPUUtilization")
        .statistic(Statistic::Average)
        .dimensions(
            Dimension::builder()
                .name("ClusterName")
                .value(CLUSTER)
                .build(),
        )
        .dimensions(
            Dimension::builder()
                .name("ServiceName")
                .value(SERVICE)
                .build(),
        )
        .period(60)
        .evaluation_periods(5)
        .threshold(threshold)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .build()
        .expect("a complete input")
}

// ---------------------------------------------------------------------------------------------
// 1. Creating everything.

#[tokio::test]
async fn fresh_create_makes_the_log_group_six_alarms_and_the_dashboard() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();

    let plan = layer.plan(&h.ctx, &spec(), &target()).await.unwrap();
    let s = plan.changes().summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.delete, s.unchanged),
        (8, 0, 0, 0, 0),
        "{plan}"
    );
    assert_eq!(
        action_of(&plan, "log-group", LOG_GROUP),
        Some(&Action::Create)
    );
    for name in ALL_ALARMS {
        assert_eq!(
            action_of(&plan, "alarm", name),
            Some(&Action::Create),
            "{plan}"
        );
    }
    assert_eq!(
        action_of(&plan, "dashboard", DASHBOARD),
        Some(&Action::Create)
    );
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());
    assert!(
        m.journal.inputs::<AlarmTagsInput>().is_empty(),
        "no alarm exists, so none is checked for its tag"
    );

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    let j = &m.journal;
    let expected: Vec<&str> = ["CreateLogGroup", "PutDashboard"]
        .into_iter()
        .chain(["PutMetricAlarm"; 6])
        .chain(["PutRetentionPolicy"])
        .collect();
    assert_eq!(sorted(j.mutating()), expected);

    // The log group: tagged at creation, retention set.
    let create = only(j.inputs::<CreateLogGroupInput>());
    assert_eq!(create.log_group_name(), Some(LOG_GROUP));
    assert_eq!(create.kms_key_id(), None);
    let tags: BTreeMap<String, String> = create
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    assert_eq!(tags.get("ecs:stack").map(String::as_str), Some("web"));
    assert_eq!(tags.get("team").map(String::as_str), Some("payments"));
    let retention = only(j.inputs::<PutRetentionPolicyInput>());
    assert_eq!(
        (retention.log_group_name(), retention.retention_in_days()),
        (Some(LOG_GROUP), Some(30))
    );
    assert!(j.first("CreateLogGroup") < j.first("PutRetentionPolicy"));

    // The alarms.
    let puts: BTreeMap<String, PutMetricAlarmInput> = j
        .inputs::<PutMetricAlarmInput>()
        .into_iter()
        .map(|p| (p.alarm_name().unwrap_or_default().to_string(), p))
        .collect();
    assert_eq!(
        puts.keys().cloned().collect::<BTreeSet<_>>(),
        set(&ALL_ALARMS)
    );
    for (name, p) in &puts {
        let tags = cw_tag_map(p.tags());
        assert_eq!(
            tags.get("ecs:stack").map(String::as_str),
            Some("web"),
            "{name}"
        );
        assert_eq!(
            tags.get("team").map(String::as_str),
            Some("payments"),
            "{name}"
        );
        assert_eq!(p.alarm_actions(), [TOPIC], "{name}");
        assert!(p.ok_actions().is_empty(), "{name}");
        assert_eq!(p.actions_enabled(), Some(true), "{name}");
        assert_eq!(
            p.comparison_operator(),
            Some(&ComparisonOperator::GreaterThanThreshold),
            "{name}"
        );
    }

    let cpu = &puts[CPU];
    assert_eq!(
        (cpu.namespace(), cpu.metric_name()),
        (Some("AWS/ECS"), Some("CPUUtilization"))
    );
    assert_eq!(cpu.statistic(), Some(&Statistic::Average));
    assert_eq!(cpu.extended_statistic(), None);
    assert_eq!(dim_map(cpu.dimensions()), service_dims());
    assert_eq!(cpu.threshold(), Some(80.0));
    assert_eq!(
        (
            cpu.period(),
            cpu.evaluation_periods(),
            cpu.datapoints_to_alarm()
        ),
        (Some(60), Some(5), Some(3))
    );
    assert_eq!(cpu.treat_missing_data(), Some("missing"));
    assert!(cpu.metrics().is_empty());

    let memory = &puts[MEMORY];
    assert_eq!(
        (memory.namespace(), memory.metric_name()),
        (Some("AWS/ECS"), Some("MemoryUtilization"))
    );
    assert_eq!(dim_map(memory.dimensions()), service_dims());

    let errors = &puts[TARGET_5XX];
    assert_eq!(
        (errors.namespace(), errors.metric_name()),
        (
            Some("AWS/ApplicationELB"),
            Some("HTTPCode_Target_5XX_Count")
        )
    );
    assert_eq!(errors.statistic(), Some(&Statistic::Sum));
    assert_eq!(dim_map(errors.dimensions()), target_dims());
    assert_eq!(errors.threshold(), Some(10.0));
    assert_eq!(errors.treat_missing_data(), Some("notBreaching"));

    let latency = &puts[LATENCY];
    assert_eq!(
        (latency.namespace(), latency.metric_name()),
        (Some("AWS/ApplicationELB"), Some("TargetResponseTime"))
    );
    assert_eq!(latency.extended_statistic(), Some("p99"));
    assert_eq!(latency.statistic(), None);
    assert_eq!(latency.threshold(), Some(2.0));
    assert_eq!(dim_map(latency.dimensions()), target_dims());

    let unhealthy = &puts[UNHEALTHY];
    assert_eq!(unhealthy.metric_name(), Some("UnHealthyHostCount"));
    assert_eq!(unhealthy.statistic(), Some(&Statistic::Maximum));
    assert_eq!(dim_map(unhealthy.dimensions()), target_dims());

    // Running below desired: metric math over two Container Insights metrics.
    let running = &puts[RUNNING];
    assert_eq!(
        (running.namespace(), running.metric_name(), running.period()),
        (None, None, None)
    );
    assert!(running.dimensions().is_empty());
    assert_eq!(running.metrics().len(), 3, "{:?}", running.metrics());
    let queries: BTreeMap<&str, &MetricDataQuery> = running
        .metrics()
        .iter()
        .map(|q| (q.id().unwrap_or_default(), q))
        .collect();
    for (id, metric) in [("m1", "DesiredTaskCount"), ("m2", "RunningTaskCount")] {
        let q = queries.get(id).unwrap_or_else(|| panic!("no query {id}"));
        let stat = q.metric_stat().expect("a metric stat");
        let measured = stat.metric().expect("a metric");
        assert_eq!(
            (measured.namespace(), measured.metric_name()),
            (Some("ECS/ContainerInsights"), Some(metric))
        );
        assert_eq!(dim_map(measured.dimensions()), service_dims());
        assert_eq!((stat.stat(), stat.period()), (Some("Average"), Some(60)));
        assert_eq!(q.return_data(), Some(false), "{id}");
    }
    let e1 = queries.get("e1").expect("the expression");
    assert_eq!(e1.expression(), Some("m1 - m2"));
    assert_eq!(e1.return_data(), Some(true));
    assert!(e1.metric_stat().is_none());
    assert_eq!(running.threshold(), Some(0.0));

    // The dashboard: after the alarms, listing their ARNs, carrying the stack's mark.
    assert!(j.last("PutMetricAlarm") < j.first("PutDashboard"));
    let put = only(j.inputs::<PutDashboardInput>());
    assert_eq!(put.dashboard_name(), Some(DASHBOARD));
    let body: Value =
        serde_json::from_str(put.dashboard_body().unwrap_or_default()).expect("valid JSON");
    let listed: BTreeSet<String> = widget_alarms(&body).into_iter().collect();
    let arns: BTreeSet<String> = ALL_ALARMS.into_iter().map(alarm_arn).collect();
    assert_eq!(listed, arns);
    assert_eq!(widget_alarms(&body).len(), 6);
    let widgets = body["widgets"].as_array().expect("widgets");
    assert!(
        widgets.iter().any(|w| w["type"] == "text"
            && w["properties"]["markdown"]
                .as_str()
                .is_some_and(|md| md.contains(MARK))),
        "{body}"
    );
    let text = body.to_string();
    assert!(text.contains(LB) && text.contains(TG), "{body}");
    let sorted_arns: Vec<String> = arns.into_iter().collect();
    assert_eq!(
        body,
        dashboard_body("web", &target(), REGION, &sorted_arns),
        "the body is the layer's own rendering"
    );
    let widgets_done = format!("{} widgets", widgets.len());
    assert!(
        h.events.events().iter().any(|e| matches!(
            e,
            Event::Done { resource, detail }
                if resource == "dashboard web" && *detail == widgets_done
        )),
        "{:?}",
        h.events.events()
    );

    // The outputs.
    assert_eq!(out.log_group, LOG_GROUP);
    assert_eq!(out.log_group_arn, LOG_GROUP_ARN);
    assert_eq!(
        out.alarms.iter().cloned().collect::<BTreeSet<_>>(),
        set(&ALL_ALARMS)
    );
    assert_eq!(out.dashboard.as_deref(), Some(DASHBOARD));
    assert_eq!(out.dashboard_url.as_deref(), Some(DASHBOARD_URL));

    // What exists now.
    let (w, l) = (m.cw(), m.logs());
    assert_eq!(l.log_groups[LOG_GROUP].retention, Some(30));
    assert_eq!(l.log_groups[LOG_GROUP].tags, our_log_group_tags());
    assert_eq!(
        w.alarms.keys().cloned().collect::<BTreeSet<_>>(),
        set(&ALL_ALARMS)
    );
    assert!(w.dashboards.contains_key(DASHBOARD));
}

// ---------------------------------------------------------------------------------------------
// 2. Nothing to do.

#[tokio::test]
async fn unchanged_spec_plans_nothing_and_applies_without_mutating_calls() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let first = deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let plan = layer.plan(&h.ctx, &spec(), &target()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    assert_eq!(plan.changes().summary().unchanged, 8, "{plan}");
    assert!(
        m.journal.inputs::<AlarmTagsInput>().is_empty(),
        "alarms that are not about to change are not checked for their tag: {:?}",
        m.journal.ops()
    );
    // The log group's tag is read to know it is the stack's (without `:*`).
    let log_tags = only(m.journal.inputs::<LogTagsInput>());
    assert_eq!(log_tags.resource_arn(), Some(LOG_GROUP_ARN));
    // The alarms are read by prefix, in pages.
    let describes = m.journal.inputs::<DescribeAlarmsInput>();
    assert_eq!(describes.len(), 2, "{describes:?}");
    assert!(describes
        .iter()
        .all(|d| d.alarm_name_prefix() == Some("web-")));
    assert_eq!(
        (describes[0].next_token(), describes[1].next_token()),
        (None, Some("4"))
    );

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(out, first);

    // Status: the alarms' states, read without changing anything.
    m.cw().alarms.get_mut(CPU).expect("the CPU alarm").state = StateValue::Alarm;
    let states = layer.alarm_states(&h.ctx).await.unwrap();
    let states: BTreeMap<String, String> = states.into_iter().map(|s| (s.name, s.state)).collect();
    assert_eq!(
        states.keys().cloned().collect::<BTreeSet<_>>(),
        set(&ALL_ALARMS)
    );
    assert_eq!(states[CPU], "ALARM");
    assert_eq!(states[MEMORY], "INSUFFICIENT_DATA");
    assert!(m.journal.mutating().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. A changed threshold.

#[tokio::test]
async fn changed_threshold_puts_only_that_alarm_again() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let mut changed = spec();
    changed
        .alarms
        .cpu_high
        .as_mut()
        .expect("CPU alarm on")
        .threshold = 70.0;
    let plan = layer.plan(&h.ctx, &changed, &target()).await.unwrap();
    assert_eq!(
        pending(&plan),
        BTreeSet::from([change("alarm", CPU)]),
        "{plan}"
    );
    let diffs = updated(&plan, "alarm", CPU);
    assert_eq!(
        diffs[0],
        ("threshold".to_string(), "80".to_string(), "70".to_string())
    );
    assert!(
        diffs
            .iter()
            .all(|(f, _, _)| f == "threshold" || f == "description"),
        "{diffs:?}"
    );
    // Its tag was checked before planning to change it; no other alarm's was.
    let checked = only(m.journal.inputs::<AlarmTagsInput>());
    assert_eq!(checked.resource_arn(), Some(alarm_arn(CPU).as_str()));
    assert!(m.journal.mutating().is_empty());

    m.journal.clear();
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["PutMetricAlarm"]);
    let put = only(m.journal.inputs::<PutMetricAlarmInput>());
    assert_eq!(put.alarm_name(), Some(CPU));
    assert_eq!(put.threshold(), Some(70.0));
    assert_eq!(put.metric_name(), Some("CPUUtilization"));
    assert_eq!(
        m.journal.count("PutDashboard"),
        0,
        "the dashboard is unchanged"
    );
    assert_eq!(out.dashboard_url.as_deref(), Some(DASHBOARD_URL));
    {
        let w = m.cw();
        let cpu = &w.alarms[CPU];
        assert_eq!(cpu.input.threshold(), Some(70.0));
        assert_eq!(
            cw_tag_map(&cpu.tags).get("ecs:stack").map(String::as_str),
            Some("web")
        );
    }

    let again = layer.plan(&h.ctx, &changed, &target()).await.unwrap();
    assert!(again.changes().is_empty(), "{again}");
}

// ---------------------------------------------------------------------------------------------
// 4. A removed alarm.

#[tokio::test]
async fn removed_alarm_is_deleted_and_the_dashboard_follows() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let mut changed = spec();
    changed.alarms.latency_p99 = None;
    let plan = layer.plan(&h.ctx, &changed, &target()).await.unwrap();
    assert_eq!(
        pending(&plan),
        BTreeSet::from([change("alarm", LATENCY), change("dashboard", DASHBOARD)]),
        "{plan}"
    );
    assert_eq!(action_of(&plan, "alarm", LATENCY), Some(&Action::Delete));
    assert_eq!(
        updated(&plan, "dashboard", DASHBOARD)
            .into_iter()
            .map(|(f, _, _)| f)
            .collect::<Vec<_>>(),
        ["body"]
    );
    let checked = only(m.journal.inputs::<AlarmTagsInput>());
    assert_eq!(checked.resource_arn(), Some(alarm_arn(LATENCY).as_str()));

    m.journal.clear();
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["DeleteAlarms", "PutDashboard"]);
    let delete = only(m.journal.inputs::<DeleteAlarmsInput>());
    assert_eq!(delete.alarm_names(), [LATENCY]);
    let put = only(m.journal.inputs::<PutDashboardInput>());
    let body: Value =
        serde_json::from_str(put.dashboard_body().unwrap_or_default()).expect("valid JSON");
    let listed: BTreeSet<String> = widget_alarms(&body).into_iter().collect();
    let expected: BTreeSet<String> = [CPU, MEMORY, TARGET_5XX, UNHEALTHY, RUNNING]
        .into_iter()
        .map(alarm_arn)
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(out.alarms.len(), 5);
    assert!(out.alarms.iter().all(|a| a != LATENCY), "{:?}", out.alarms);
    assert!(!m.cw().alarms.contains_key(LATENCY));

    let again = layer.plan(&h.ctx, &changed, &target()).await.unwrap();
    assert!(again.changes().is_empty(), "{again}");
}

// ---------------------------------------------------------------------------------------------
// 5. Basic monitoring.

/// Dashboards are deleted by name: a dashboard that someone else's replaced between the plan
/// and the apply (no mark) stops the apply and stays; one already gone counts as deleted.
#[tokio::test]
async fn a_dashboard_replaced_after_the_plan_is_never_deleted() {
    let h = Harness::new();
    let basic = ObserveSpec::builder()
        .monitoring(Monitoring::Basic)
        .alarm_actions(vec![TOPIC.into()])
        .build();
    for replaced in [true, false] {
        let m = Mock::default();
        let layer = m.layer();
        deploy(&layer, &h, &spec()).await;
        let plan = layer.plan(&h.ctx, &basic, &target()).await.unwrap();
        assert_eq!(
            action_of(&plan, "dashboard", DASHBOARD),
            Some(&Action::Delete)
        );
        if replaced {
            m.cw().dashboards.insert(
                DASHBOARD.to_string(),
                r#"{"widgets":[{"type":"text","properties":{"markdown":"theirs"}}]}"#.into(),
            );
        } else {
            m.cw().dashboards.remove(DASHBOARD);
        }
        m.journal.clear();
        let result = layer.apply(&h.ctx, &plan).await;
        assert_eq!(
            m.journal.count("DeleteDashboards"),
            0,
            "replaced: {replaced}"
        );
        if replaced {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::Changed(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("dashboard {DASHBOARD} was replaced by someone else since the plan read it; run the plan again")
            );
            assert!(m.cw().dashboards[DASHBOARD].contains("theirs"));
        } else {
            result.unwrap();
        }
    }
}

#[tokio::test]
async fn basic_monitoring_keeps_cpu_and_memory_and_deletes_the_rest_and_the_dashboard() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let basic = ObserveSpec::builder()
        .monitoring(Monitoring::Basic)
        .alarm_actions(vec![TOPIC.into()])
        .build();
    let plan = layer.plan(&h.ctx, &basic, &target()).await.unwrap();
    let removed = [TARGET_5XX, LATENCY, UNHEALTHY, RUNNING];
    let mut expected: BTreeSet<(String, String)> =
        removed.iter().map(|n| change("alarm", n)).collect();
    expected.insert(change("dashboard", DASHBOARD));
    assert_eq!(pending(&plan), expected, "{plan}");
    for name in removed {
        assert_eq!(action_of(&plan, "alarm", name), Some(&Action::Delete));
    }
    assert_eq!(
        action_of(&plan, "dashboard", DASHBOARD),
        Some(&Action::Delete)
    );
    assert_eq!(action_of(&plan, "alarm", CPU), Some(&Action::NoChange));
    assert_eq!(action_of(&plan, "alarm", MEMORY), Some(&Action::NoChange));
    assert_eq!(
        m.journal
            .inputs::<AlarmTagsInput>()
            .iter()
            .filter_map(|i| i.resource_arn().map(str::to_string))
            .collect::<BTreeSet<_>>(),
        removed.into_iter().map(alarm_arn).collect::<BTreeSet<_>>(),
        "each alarm about to be deleted is checked for its tag"
    );

    m.journal.clear();
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["DeleteAlarms", "DeleteDashboards"]);
    let delete = only(m.journal.inputs::<DeleteAlarmsInput>());
    assert_eq!(
        delete
            .alarm_names()
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        set(&removed)
    );
    let dashboards = only(m.journal.inputs::<DeleteDashboardsInput>());
    assert_eq!(dashboards.dashboard_names(), [DASHBOARD]);
    assert_eq!(out.alarms, [CPU, MEMORY]);
    assert_eq!((out.dashboard, out.dashboard_url), (None, None));
    {
        let w = m.cw();
        assert_eq!(
            w.alarms.keys().cloned().collect::<BTreeSet<_>>(),
            set(&[CPU, MEMORY])
        );
        assert!(w.dashboards.is_empty());
    }

    let again = layer.plan(&h.ctx, &basic, &target()).await.unwrap();
    assert!(again.changes().is_empty(), "{again}");
    let dashboard = again
        .changes()
        .find("dashboard", DASHBOARD)
        .expect("the dashboard is in the plan");
    assert_eq!(dashboard.detail, "basic monitoring: no dashboard");
}

// ---------------------------------------------------------------------------------------------
// 6. Names taken by someone else.

#[tokio::test]
async fn plan_refuses_to_change_an_alarm_without_the_stack_tag() {
    let h = Harness::new();
    let m = Mock::default();
    m.cw().alarms.insert(
        CPU.to_string(),
        Alarm {
            input: cpu_alarm_input(CPU, 50.0),
            tags: vec![cw_tag("owner", "another-team")],
            state: StateValue::Ok,
        },
    );

    let err = m
        .layer()
        .plan(&h.ctx, &spec(), &target())
        .await
        .unwrap_err();
    match &err {
        Error::Foreign(f) => assert_eq!(
            (f.kind, f.name.as_str(), f.stack.as_str()),
            ("alarm", CPU, "web")
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(err.to_string().contains("alarm `web-cpu-high`"), "{err}");
    let checked = only(m.journal.inputs::<AlarmTagsInput>());
    assert_eq!(checked.resource_arn(), Some(alarm_arn(CPU).as_str()));
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    let w = m.cw();
    assert_eq!(w.alarms.len(), 1);
    assert_eq!(w.alarms[CPU].input.threshold(), Some(50.0));
}

#[tokio::test]
async fn plan_refuses_a_dashboard_without_the_stack_mark() {
    let h = Harness::new();
    let m = Mock::default();
    m.cw()
        .dashboards
        .insert(DASHBOARD.to_string(), FOREIGN_DASHBOARD.to_string());

    let err = m
        .layer()
        .plan(&h.ctx, &spec(), &target())
        .await
        .unwrap_err();
    match &err {
        Error::Foreign(f) => assert_eq!(
            (f.kind, f.name.as_str(), f.stack.as_str()),
            ("dashboard", DASHBOARD, "web")
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(m.journal.count("GetDashboard"), 1);
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(m.cw().dashboards[DASHBOARD], FOREIGN_DASHBOARD);
}

// ---------------------------------------------------------------------------------------------
// 7. The log group.

#[tokio::test]
async fn drifted_retention_is_put_back() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.logs()
        .log_groups
        .get_mut(LOG_GROUP)
        .expect("the log group")
        .retention = Some(7);
    m.journal.clear();

    let plan = layer.plan(&h.ctx, &spec(), &target()).await.unwrap();
    assert_eq!(
        pending(&plan),
        BTreeSet::from([change("log-group", LOG_GROUP)]),
        "{plan}"
    );
    assert_eq!(
        updated(&plan, "log-group", LOG_GROUP),
        [(
            "retention_days".to_string(),
            "7".to_string(),
            "30".to_string()
        )]
    );

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["PutRetentionPolicy"]);
    let put = only(m.journal.inputs::<PutRetentionPolicyInput>());
    assert_eq!(
        (put.log_group_name(), put.retention_in_days()),
        (Some(LOG_GROUP), Some(30))
    );
    assert_eq!(out.log_group_arn, LOG_GROUP_ARN);
    assert_eq!(m.logs().log_groups[LOG_GROUP].retention, Some(30));
}

#[tokio::test]
async fn drifted_log_group_tags_are_set_back_and_aws_tags_left_alone() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    {
        let mut l = m.logs();
        let tags = &mut l.log_groups.get_mut(LOG_GROUP).expect("the log group").tags;
        let team = tags.remove("team").expect("the user's tag");
        tags.insert("extra".into(), "x".into());
        tags.insert("aws:cloudformation:stack-name".into(), "other".into());
        assert_eq!(team, "payments");
    }
    m.journal.clear();

    let plan = layer.plan(&h.ctx, &spec(), &target()).await.unwrap();
    assert_eq!(
        pending(&plan),
        BTreeSet::from([change("log-group", LOG_GROUP)]),
        "{plan}"
    );
    let fields: Vec<String> = updated(&plan, "log-group", LOG_GROUP)
        .into_iter()
        .map(|(f, _, _)| f)
        .collect();
    assert_eq!(fields, ["tags"]);

    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["TagResource", "UntagResource"]);
    let set = only(
        m.journal
            .inputs::<aws_sdk_cloudwatchlogs::operation::tag_resource::TagResourceInput>(),
    );
    assert_eq!(set.resource_arn(), Some(LOG_GROUP_ARN));
    assert_eq!(
        set.tags(),
        Some(&std::collections::HashMap::from([(
            "team".to_string(),
            "payments".to_string()
        )]))
    );
    let unset = only(
        m.journal
            .inputs::<aws_sdk_cloudwatchlogs::operation::untag_resource::UntagResourceInput>(),
    );
    assert_eq!(unset.tag_keys(), ["extra"]);
    assert_eq!(
        m.logs().log_groups[LOG_GROUP]
            .tags
            .get("aws:cloudformation:stack-name")
            .map(String::as_str),
        Some("other")
    );

    m.journal.clear();
    let plan = layer.plan(&h.ctx, &spec(), &target()).await.unwrap();
    assert_eq!(pending(&plan), BTreeSet::new(), "{plan}");
}

#[tokio::test]
async fn plan_refuses_a_log_group_without_the_stack_tag() {
    let h = Harness::new();
    let m = Mock::default();
    m.logs().log_groups.insert(
        LOG_GROUP.to_string(),
        LogGroupRecord {
            retention: Some(30),
            kms_key: None,
            tags: pairs(&[("owner", "another-team")]),
        },
    );

    let err = m
        .layer()
        .plan(&h.ctx, &spec(), &target())
        .await
        .unwrap_err();
    match &err {
        Error::Foreign(f) => {
            assert_eq!((f.kind, f.name.as_str()), ("log-group", LOG_GROUP))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        only(m.journal.inputs::<LogTagsInput>()).resource_arn(),
        Some(LOG_GROUP_ARN)
    );
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
}

#[tokio::test]
async fn log_group_created_concurrently_is_adopted() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let plan = layer.plan(&h.ctx, &spec(), &target()).await.unwrap();
    assert_eq!(
        action_of(&plan, "log-group", LOG_GROUP),
        Some(&Action::Create)
    );
    // Another run of the stack creates the group between this plan and its apply.
    m.logs().log_groups.insert(
        LOG_GROUP.to_string(),
        LogGroupRecord {
            retention: None,
            kms_key: None,
            tags: our_log_group_tags(),
        },
    );
    m.journal.clear();

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        m.journal.count("CreateLogGroup"),
        1,
        "answered ResourceAlreadyExistsException"
    );
    let put = only(m.journal.inputs::<PutRetentionPolicyInput>());
    assert_eq!(put.retention_in_days(), Some(30));
    assert!(m.journal.first("CreateLogGroup") < m.journal.first("PutRetentionPolicy"));
    assert_eq!(out.log_group_arn, LOG_GROUP_ARN);
    let (w, l) = (m.cw(), m.logs());
    assert_eq!(l.log_groups.len(), 1);
    assert_eq!(l.log_groups[LOG_GROUP].retention, Some(30));
    assert_eq!(l.log_groups[LOG_GROUP].tags, our_log_group_tags());
    assert_eq!(w.alarms.len(), 6);
}

#[tokio::test]
async fn ensure_log_group_creates_the_group_once() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();

    let arn = layer
        .ensure_log_group(&h.ctx, &spec(), LOG_GROUP)
        .await
        .unwrap();
    assert_eq!(arn, LOG_GROUP_ARN);
    assert_eq!(
        m.journal.mutating(),
        ["CreateLogGroup", "PutRetentionPolicy"]
    );
    assert_eq!(m.logs().log_groups[LOG_GROUP].retention, Some(30));

    m.journal.clear();
    let again = layer
        .ensure_log_group(&h.ctx, &spec(), LOG_GROUP)
        .await
        .unwrap();
    assert_eq!(again, LOG_GROUP_ARN);
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Destroy.

#[tokio::test]
async fn destroy_deletes_only_the_stacks_alarms_the_dashboard_and_the_logs_when_asked() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    {
        let mut w = m.cw();
        // The memory alarm's name is now someone else's alarm.
        w.alarms.get_mut(MEMORY).expect("the memory alarm").tags =
            vec![cw_tag("owner", "someone-else")];
        // Another stack's alarm shares the name prefix.
        w.alarms.insert(
            "web-api-cpu-high".to_string(),
            Alarm {
                input: cpu_alarm_input("web-api-cpu-high", 90.0),
                tags: vec![cw_tag("ecs:stack", "web-api")],
                state: StateValue::Ok,
            },
        );
    }
    m.journal.clear();

    let (deleted, kept) = layer.destroy(&h.ctx, LOG_GROUP, true).await.unwrap();
    let j = &m.journal;
    let ours = [CPU, TARGET_5XX, LATENCY, UNHEALTHY, RUNNING];
    let names: BTreeSet<String> = j
        .inputs::<DeleteAlarmsInput>()
        .iter()
        .flat_map(|d| d.alarm_names().to_vec())
        .collect();
    assert_eq!(names, set(&ours));
    assert_eq!(
        only(j.inputs::<DeleteDashboardsInput>()).dashboard_names(),
        [DASHBOARD]
    );
    assert_eq!(
        only(j.inputs::<DeleteLogGroupInput>()).log_group_name(),
        Some(LOG_GROUP)
    );
    let mut mutating = sorted(j.mutating());
    mutating.dedup();
    assert_eq!(
        mutating,
        ["DeleteAlarms", "DeleteDashboards", "DeleteLogGroup"]
    );

    for name in ours {
        assert_eq!(
            deleted.find("alarm", name).map(|c| &c.action),
            Some(&Action::Delete),
            "{deleted}"
        );
    }
    assert!(deleted.find("alarm", MEMORY).is_none(), "{deleted}");
    assert_eq!(
        deleted.find("dashboard", DASHBOARD).map(|c| &c.action),
        Some(&Action::Delete)
    );
    assert_eq!(
        deleted.find("log-group", LOG_GROUP).map(|c| &c.action),
        Some(&Action::Delete)
    );
    assert_eq!(deleted.summary().delete, 7, "{deleted}");
    assert!(kept.is_empty(), "{kept:?}");

    let (w, l) = (m.cw(), m.logs());
    assert_eq!(
        w.alarms.keys().cloned().collect::<BTreeSet<_>>(),
        set(&[MEMORY, "web-api-cpu-high"])
    );
    assert!(w.dashboards.is_empty());
    assert!(l.log_groups.is_empty());
}

#[tokio::test]
async fn destroy_keeps_the_log_group_unless_asked() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let (deleted, kept) = layer.destroy(&h.ctx, LOG_GROUP, false).await.unwrap();
    assert_eq!(m.journal.count("DeleteLogGroup"), 0);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].contains("log-group")
            && kept[0].contains(LOG_GROUP)
            && kept[0].contains("`--delete-logs`"),
        "{kept:?}"
    );
    assert!(deleted.find("log-group", LOG_GROUP).is_none(), "{deleted}");
    assert_eq!(deleted.summary().delete, 7, "{deleted}");
    let (w, l) = (m.cw(), m.logs());
    assert!(l.log_groups.contains_key(LOG_GROUP));
    assert!(w.alarms.is_empty());
    assert!(w.dashboards.is_empty());
}

#[tokio::test]
async fn destroy_leaves_a_dashboard_without_the_stack_mark_alone() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.cw()
        .dashboards
        .insert(DASHBOARD.to_string(), FOREIGN_DASHBOARD.to_string());
    m.journal.clear();

    let (deleted, _) = layer.destroy(&h.ctx, LOG_GROUP, true).await.unwrap();
    assert_eq!(m.journal.count("DeleteDashboards"), 0);
    assert!(deleted.find("dashboard", DASHBOARD).is_none(), "{deleted}");
    assert_eq!(m.cw().dashboards[DASHBOARD], FOREIGN_DASHBOARD);
    assert!(m.cw().alarms.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 9. Throttling.

#[tokio::test]
async fn throttled_put_metric_alarm_is_retried_on_the_fake_clock() {
    let h = Harness::new();
    let m = Mock::default();
    let throttled = mock!(aws_sdk_cloudwatch::Client::put_metric_alarm)
        .match_requests(|r| r.alarm_name() == Some(CPU))
        .sequence()
        .error(|| PutMetricAlarmError::generic(meta("Throttling", "Rate exceeded")))
        .times(2)
        .build();
    let layer = m.layer_with(&[&throttled]);

    let out = deploy(&layer, &h, &spec()).await;

    assert_eq!(throttled.num_calls(), 2);
    let cpu_puts = m
        .journal
        .inputs::<PutMetricAlarmInput>()
        .iter()
        .filter(|p| p.alarm_name() == Some(CPU))
        .count();
    assert_eq!(cpu_puts, 1, "the third attempt reached CloudWatch");
    assert_eq!(m.journal.count("PutMetricAlarm"), 6);
    assert_eq!(out.alarms.len(), 6);
    assert!(m.cw().alarms.contains_key(CPU));

    let retries = h.retries("PutMetricAlarm");
    assert_eq!(
        retries.iter().map(|(_, _, a)| *a).collect::<Vec<_>>(),
        [1, 2],
        "{retries:?}"
    );
    for (resource, reason, _) in &retries {
        assert_eq!(resource, "alarm web-cpu-high");
        assert_eq!(reason, "Throttling: Rate exceeded");
    }
    // The two delays (jittered: half to all of 500 ms, then of 1 s) went through the fake clock.
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert!(
        (Duration::from_millis(250)..=Duration::from_millis(500)).contains(&sleeps[0]),
        "{sleeps:?}"
    );
    assert!(
        (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&sleeps[1]),
        "{sleeps:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Invalid specification.

#[tokio::test]
async fn invalid_spec_reports_every_problem_before_any_call() {
    let h = Harness::new();
    let m = Mock::default();
    let mut invalid = spec();
    invalid.log_retention_days = 31;
    invalid
        .alarms
        .cpu_high
        .as_mut()
        .expect("CPU alarm on")
        .period = 45;
    invalid.alarm_actions = vec!["arn:aws:sqs:us-east-1:123456789012:ops".into()];

    let err = m
        .layer()
        .plan(&h.ctx, &invalid, &target())
        .await
        .unwrap_err();
    let problems = err.problems().expect("validation problems");
    for field in [
        "log_retention_days",
        "alarms.cpu_high.period",
        "alarm_actions[0]",
    ] {
        assert!(problems.mentions(field), "{field}: {problems}");
    }
    assert_eq!(problems.len(), 3, "{problems}");
    assert!(
        m.journal.ops().is_empty(),
        "AWS was called: {:?}",
        m.journal.ops()
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Planning in two phases: the reads before the dimensions are known, the diff after.

/// The log group calls among `ops` (CloudWatch Logs' `ListTagsForResource` aside, which shares
/// its name with CloudWatch's).
fn log_group_calls(ops: &[&'static str]) -> Vec<&'static str> {
    const LOGS: [&str; 6] = [
        "DescribeLogGroups",
        "CreateLogGroup",
        "PutRetentionPolicy",
        "AssociateKmsKey",
        "DisassociateKmsKey",
        "DeleteLogGroup",
    ];
    ops.iter().copied().filter(|op| LOGS.contains(op)).collect()
}

#[tokio::test]
async fn read_makes_the_reads_plan_made_and_plan_with_the_tag_checks() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    let mut changed = spec();
    changed
        .alarms
        .cpu_high
        .as_mut()
        .expect("CPU alarm on")
        .threshold = 70.0;

    m.journal.clear();
    let direct = layer.plan(&h.ctx, &changed, &target()).await.unwrap();
    let mut plan_ops = m.journal.ops();
    plan_ops.sort_unstable();

    m.journal.clear();
    let state = layer.read(&h.ctx, &changed, LOG_GROUP).await.unwrap();
    let mut read_ops = m.journal.ops();
    read_ops.sort_unstable();
    // The log group (and its tag), the alarms by prefix in two pages, the dashboard.
    assert_eq!(
        read_ops,
        [
            "DescribeAlarms",
            "DescribeAlarms",
            "DescribeLogGroups",
            "GetDashboard",
            "ListTagsForResource",
        ]
    );
    assert_eq!(
        only(m.journal.inputs::<LogTagsInput>()).resource_arn(),
        Some(LOG_GROUP_ARN)
    );
    assert!(m.journal.inputs::<AlarmTagsInput>().is_empty());
    assert_eq!(state.log_group(), LOG_GROUP);
    assert_eq!(state.log_group_arn(), None);

    m.journal.clear();
    let plan = layer.plan_with(&h.ctx, &state, &target()).await.unwrap();
    // Only the tag of the alarm about to change.
    assert_eq!(m.journal.ops(), ["ListTagsForResource"]);
    assert_eq!(
        only(m.journal.inputs::<AlarmTagsInput>()).resource_arn(),
        Some(alarm_arn(CPU).as_str())
    );
    assert_eq!(plan.changes(), direct.changes());
    assert_eq!(
        pending(&plan),
        BTreeSet::from([change("alarm", CPU)]),
        "{plan}"
    );

    let mut both = read_ops;
    both.extend(m.journal.ops());
    both.sort_unstable();
    assert_eq!(
        both, plan_ops,
        "read and plan_with together make plan's calls"
    );
}

#[tokio::test]
async fn log_group_made_before_the_plan_is_created_once_and_reported_as_created() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();

    let mut state = layer.read(&h.ctx, &spec(), LOG_GROUP).await.unwrap();
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());

    m.journal.clear();
    let arn = layer.apply_log_group(&h.ctx, &mut state).await.unwrap();
    assert_eq!(arn, LOG_GROUP_ARN);
    assert_eq!(state.log_group_arn(), Some(LOG_GROUP_ARN));
    // Made from what `read` saw: no read before the creation.
    assert_eq!(
        m.journal.ops()[0],
        "CreateLogGroup",
        "{:?}",
        m.journal.ops()
    );
    assert_eq!(
        m.journal.mutating(),
        ["CreateLogGroup", "PutRetentionPolicy"]
    );
    {
        let l = m.logs();
        assert_eq!(l.log_groups[LOG_GROUP].retention, Some(30));
        assert_eq!(l.log_groups[LOG_GROUP].tags, our_log_group_tags());
    }
    // Once recorded, the ARN is returned without any call.
    let n = m.journal.ops().len();
    assert_eq!(
        layer.apply_log_group(&h.ctx, &mut state).await.unwrap(),
        LOG_GROUP_ARN
    );
    assert_eq!(m.journal.ops().len(), n, "{:?}", m.journal.ops());

    // The target's log group is ignored: the plan is for the one `read` was given.
    let elsewhere = ObserveTarget {
        log_group: "/ecs/elsewhere".into(),
        ..target()
    };
    let plan = layer.plan_with(&h.ctx, &state, &elsewhere).await.unwrap();
    assert_eq!(
        action_of(&plan, "log-group", LOG_GROUP),
        Some(&Action::Create),
        "the log group's change as it was read: {plan}"
    );
    assert!(
        plan.changes().find("log-group", "/ecs/elsewhere").is_none(),
        "{plan}"
    );
    assert_eq!(plan.changes().summary().create, 8, "{plan}");

    let n = m.journal.ops().len();
    let log_tags = m.journal.inputs::<LogTagsInput>().len();
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    let ops = m.journal.ops();
    let applied = &ops[n..];
    assert!(
        log_group_calls(applied).is_empty(),
        "apply touched the log group: {applied:?}"
    );
    assert_eq!(m.journal.inputs::<LogTagsInput>().len(), log_tags);
    assert_eq!(m.journal.count("CreateLogGroup"), 1);
    assert_eq!(out.log_group, LOG_GROUP);
    assert_eq!(out.log_group_arn, LOG_GROUP_ARN);
    assert_eq!(out.alarms.len(), 6);
    assert_eq!(out.dashboard.as_deref(), Some(DASHBOARD));
    {
        let (w, l) = (m.cw(), m.logs());
        assert_eq!(l.log_groups.len(), 1);
        assert_eq!(w.alarms.len(), 6);
    }

    let again = layer.plan(&h.ctx, &spec(), &target()).await.unwrap();
    assert!(again.changes().is_empty(), "{again}");
}

#[tokio::test]
async fn plan_with_takes_dimensions_known_after_read_without_reading_the_alarms_again() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;

    // Read while the load balancer's dimensions are unknown; it is replaced meanwhile.
    m.journal.clear();
    let state = layer.read(&h.ctx, &spec(), LOG_GROUP).await.unwrap();
    assert_eq!(m.journal.count("DescribeAlarms"), 2);
    let (new_lb, new_tg) = (
        "app/web-alb/1111111111111111",
        "targetgroup/web-app/2222222222222222",
    );
    let moved = ObserveTarget {
        load_balancer: Some(new_lb.into()),
        target_group: Some(new_tg.into()),
        ..target()
    };

    m.journal.clear();
    let plan = layer.plan_with(&h.ctx, &state, &moved).await.unwrap();
    assert_eq!(
        m.journal.count("DescribeAlarms"),
        0,
        "{:?}",
        m.journal.ops()
    );
    assert!(
        log_group_calls(&m.journal.ops()).is_empty(),
        "{:?}",
        m.journal.ops()
    );
    assert_eq!(m.journal.count("GetDashboard"), 0);
    assert!(m.journal.mutating().is_empty());
    let lb_alarms = [TARGET_5XX, LATENCY, UNHEALTHY];
    let mut expected: BTreeSet<(String, String)> =
        lb_alarms.iter().map(|n| change("alarm", n)).collect();
    expected.insert(change("dashboard", DASHBOARD));
    assert_eq!(pending(&plan), expected, "{plan}");
    for name in lb_alarms {
        let diffs = updated(&plan, "alarm", name);
        assert_eq!(
            diffs.iter().map(|(f, _, _)| f.as_str()).collect::<Vec<_>>(),
            ["metrics"],
            "{name}"
        );
        assert!(
            diffs[0].2.contains(new_lb) && diffs[0].2.contains(new_tg),
            "{diffs:?}"
        );
    }
    // The alarms about to change were checked for the stack's tag.
    assert_eq!(
        m.journal
            .inputs::<AlarmTagsInput>()
            .iter()
            .filter_map(|i| i.resource_arn().map(str::to_string))
            .collect::<BTreeSet<_>>(),
        lb_alarms
            .into_iter()
            .map(alarm_arn)
            .collect::<BTreeSet<_>>()
    );

    m.journal.clear();
    layer.apply(&h.ctx, &plan).await.unwrap();
    let puts = m.journal.inputs::<PutMetricAlarmInput>();
    assert_eq!(
        puts.iter()
            .filter_map(|p| p.alarm_name().map(str::to_string))
            .collect::<BTreeSet<_>>(),
        set(&lb_alarms)
    );
    for p in &puts {
        assert_eq!(
            dim_map(p.dimensions()),
            pairs(&[("LoadBalancer", new_lb), ("TargetGroup", new_tg)]),
            "{p:?}"
        );
    }
    let again = layer.plan(&h.ctx, &spec(), &moved).await.unwrap();
    assert!(again.changes().is_empty(), "{again}");
}

#[tokio::test]
async fn read_refuses_a_foreign_dashboard_only_when_the_spec_wants_one() {
    let h = Harness::new();
    let m = Mock::default();
    m.cw()
        .dashboards
        .insert(DASHBOARD.to_string(), FOREIGN_DASHBOARD.to_string());
    let layer = m.layer();

    let err = layer.read(&h.ctx, &spec(), LOG_GROUP).await.unwrap_err();
    assert!(
        matches!(&err, Error::Foreign(f) if f.kind == "dashboard"),
        "{err:?}"
    );

    let basic = ObserveSpec::builder()
        .monitoring(Monitoring::Basic)
        .alarm_actions(vec![TOPIC.into()])
        .build();
    let state = layer.read(&h.ctx, &basic, LOG_GROUP).await.unwrap();
    let plan = layer.plan_with(&h.ctx, &state, &target()).await.unwrap();
    assert_eq!(
        action_of(&plan, "dashboard", DASHBOARD),
        Some(&Action::NoChange),
        "{plan}"
    );
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
}
