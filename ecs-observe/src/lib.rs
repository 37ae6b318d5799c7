//! The observability layer of `ecs-facade`: the stack's log group (retention always set), its
//! CloudWatch alarms (CPU, memory, target 5XX, p99 latency, unhealthy hosts, running below
//! desired) with SNS actions, and a dashboard generated from the deployed resources.
//!
//! Dimensions are never typed by hand: an [`ObserveTarget`] is built from the service layer's
//! outputs ([`ObserveTarget::from_outputs`]). Everything is reconciled exactly: a changed
//! threshold updates the alarm, a removed alarm is deleted, an unchanged spec makes no
//! mutating call, and `destroy` removes only the stack's resources (alarms by their tag, the
//! dashboard by the ownership mark in its body, the log group by its tag and only when asked).
//!
//! Planning comes in two phases, so that a deploy can issue every layer's reads at once,
//! before the load balancer's and target group's dimensions are known:
//! [`ObserveLayer::read`] validates the spec and reads the log group, the alarms and the
//! dashboard; [`ObserveLayer::plan_with`] diffs them against a target (checking the tag of the
//! alarms it would change or delete). [`ObserveLayer::apply_log_group`] makes the log group
//! from what was read, before the service's tasks start. [`ObserveLayer::plan`] does both
//! phases at once.
//!
//! # Example
//!
//! ```no_run
//! use ecs_core::{Context, StackName};
//! use ecs_observe::{Monitoring, ObserveLayer, ObserveSpec, ObserveTarget};
//!
//! # async fn example(service: ecs_service::ServiceOutputs) -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let ctx = Context::builder().stack(StackName::new("web")?).build();
//! let spec = ObserveSpec::builder()
//!     .monitoring(Monitoring::Advanced)
//!     .alarm_actions(vec!["arn:aws:sns:us-east-1:123456789012:ops".into()])
//!     .build();
//! let layer = ObserveLayer::new(&config);
//! let plan = layer.plan(&ctx, &spec, &ObserveTarget::from_outputs(&service)).await?;
//! println!("{plan}");
//! let outputs = layer.apply(&ctx, &plan).await?;
//! println!("dashboard: {}", outputs.dashboard_url.unwrap_or_default());
//! # Ok(()) }
//! ```

mod alarms;
mod dashboard;
mod error;
mod logs;
mod spec;

use std::collections::BTreeMap;
use std::fmt;

use ecs_core::graph::{Dep, Graph};
use ecs_core::resource::{self, Known, Resource};
use ecs_core::{Action, Change, Context, NameKind, Plan};
use serde_json::Value;

pub use dashboard::body as dashboard_body;
pub use error::{Error, Result};
pub use spec::{
    valid_period, AlarmKind, AlarmSpec, Alarms, Monitoring, ObserveSpec, TreatMissingData,
    RETENTION_DAYS,
};

/// The deployed resources the alarms and the dashboard watch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObserveTarget {
    /// The ECS cluster's name.
    pub cluster: String,
    /// The ECS service's name.
    pub service: String,
    /// The load balancer's CloudWatch dimension (`app/<name>/<id>`), when there is one.
    pub load_balancer: Option<String>,
    /// The target group's CloudWatch dimension (`targetgroup/<name>/<id>`).
    pub target_group: Option<String>,
    /// The log group's name.
    pub log_group: String,
}

impl ObserveTarget {
    /// The target for what the service layer deployed: names from its outputs, dimensions
    /// from the load balancer and target group ARNs.
    pub fn from_outputs(o: &ecs_service::ServiceOutputs) -> Self {
        Self {
            cluster: o.names.cluster.clone(),
            service: o.names.service.clone(),
            load_balancer: o
                .load_balancer_arn
                .as_deref()
                .and_then(load_balancer_dimension),
            target_group: o
                .target_group_arn
                .as_deref()
                .and_then(target_group_dimension),
            log_group: o.names.log_group.clone(),
        }
    }
}

/// The `LoadBalancer` dimension of an ALB ARN (`…:loadbalancer/app/<name>/<id>` →
/// `app/<name>/<id>`).
///
/// ```
/// let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188";
/// assert_eq!(ecs_observe::load_balancer_dimension(arn).as_deref(), Some("app/web-alb/50dc6c495c0c9188"));
/// ```
pub fn load_balancer_dimension(arn: &str) -> Option<String> {
    arn.split_once(":loadbalancer/").map(|(_, s)| s.to_string())
}

/// The `TargetGroup` dimension of a target group ARN (`…:targetgroup/<name>/<id>` →
/// `targetgroup/<name>/<id>`).
///
/// ```
/// let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-app/73e2d6bc24d8a067";
/// assert_eq!(ecs_observe::target_group_dimension(arn).as_deref(), Some("targetgroup/web-app/73e2d6bc24d8a067"));
/// ```
pub fn target_group_dimension(arn: &str) -> Option<String> {
    arn.rsplit_once(':')
        .map(|(_, s)| s)
        .filter(|s| s.starts_with("targetgroup/"))
        .map(str::to_string)
}

/// The SDK clients the layer uses.
#[derive(Debug, Clone)]
pub struct ObserveClients {
    /// CloudWatch Logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl ObserveClients {
    /// Clients built from one SDK configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
        }
    }
}

/// What the observability layer made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ObserveOutputs {
    /// The log group's name.
    pub log_group: String,
    /// The log group's ARN.
    pub log_group_arn: String,
    /// The alarms' names.
    pub alarms: Vec<String>,
    /// The dashboard's name, when there is one.
    pub dashboard: Option<String>,
    /// The dashboard in the CloudWatch console.
    pub dashboard_url: Option<String>,
}

/// One log event of the stack's log group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LogEvent {
    /// The event's id (unique in its log group).
    pub id: String,
    /// When it was logged, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Its log stream (`ecs/<container>/<task id>` for a task's container).
    pub stream: String,
    /// The line the container wrote.
    pub message: String,
}

/// One alarm's current state, for status displays.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AlarmState {
    /// The alarm's name.
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Live {
    log_group: Option<logs::LiveLogGroup>,
    alarms: BTreeMap<String, alarms::LiveAlarm>,
    /// The dashboard's body, when it exists and is the stack's.
    dashboard: Option<Value>,
}

/// What [`ObserveLayer::read`] saw: the input of [`ObserveLayer::plan_with`] and
/// [`ObserveLayer::apply_log_group`].
#[derive(Debug, Clone)]
pub struct ObserveState {
    spec: ObserveSpec,
    /// The log group's name.
    log_group: String,
    live_log_group: Option<logs::LiveLogGroup>,
    /// Every live alarm with one of the stack's names, the stack's or not.
    alarms: BTreeMap<String, alarms::LiveAlarm>,
    /// The dashboard's body, when it exists and is the stack's.
    dashboard: Option<Value>,
    /// Set by [`ObserveLayer::apply_log_group`].
    log_group_arn: Option<String>,
}

impl ObserveState {
    /// The log group's name (the one [`ObserveLayer::read`] was given).
    pub fn log_group(&self) -> &str {
        &self.log_group
    }

    /// The log group's ARN, once [`ObserveLayer::apply_log_group`] has made it.
    pub fn log_group_arn(&self) -> Option<&str> {
        self.log_group_arn.as_deref()
    }
}

/// The result of [`ObserveLayer::plan`] or [`ObserveLayer::plan_with`]; pass it to
/// [`ObserveLayer::apply`].
#[derive(Debug, Clone)]
pub struct ObservePlan {
    spec: ObserveSpec,
    target: ObserveTarget,
    region: String,
    live: Live,
    /// The log group's ARN when [`ObserveLayer::apply_log_group`] made it before the plan:
    /// `apply` then leaves the log group alone.
    log_group_arn: Option<String>,
    changes: Plan,
}

impl ObservePlan {
    /// The changes, resource by resource.
    pub fn changes(&self) -> &Plan {
        &self.changes
    }
}

impl fmt::Display for ObservePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.changes, f)
    }
}

/// The observability layer, over SDK clients the caller provides.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    clients: ObserveClients,
}

impl ObserveLayer {
    /// A layer using clients built from `config`.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self::from_clients(ObserveClients::new(config))
    }

    /// A layer using these clients (for custom configuration, interceptors or mocks).
    pub fn from_clients(clients: ObserveClients) -> Self {
        Self { clients }
    }

    fn region(&self) -> String {
        ecs_core::region_or_default(self.clients.cloudwatch.config().region())
    }

    /// The dashboard's name for the context's stack.
    pub fn dashboard_name(ctx: &Context) -> String {
        ctx.stack().name(NameKind::Dashboard, "")
    }

    async fn dashboard(&self, ctx: &Context) -> Result<Option<Value>> {
        let name = Self::dashboard_name(ctx);
        let resource = format!("{} {name}", dashboard::KIND);
        match ctx
            .call("GetDashboard", &resource, || {
                self.clients
                    .cloudwatch
                    .get_dashboard()
                    .dashboard_name(&name)
                    .send()
            })
            .await
        {
            Ok(out) => {
                let body: Value = out
                    .dashboard_body()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null);
                if dashboard::is_owned(&body, ctx.stack().as_str()) {
                    Ok(Some(body))
                } else {
                    Err(Error::Foreign(resource::Foreign::new(
                        ctx,
                        dashboard::KIND,
                        name,
                        "it lacks the stack's mark",
                    )))
                }
            }
            Err(e) if e.is_code("ResourceNotFound") || e.is_code("ResourceNotFoundException") => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Validates the spec (every problem at once, before any AWS call), reads the log group,
    /// the alarms and the dashboard, and returns the changes `apply` would make. An alarm
    /// that would be changed or deleted is checked for the stack's tag first.
    ///
    /// The same as [`read`](Self::read) of `target.log_group` then
    /// [`plan_with`](Self::plan_with) of `target`.
    pub async fn plan(
        &self,
        ctx: &Context,
        spec: &ObserveSpec,
        target: &ObserveTarget,
    ) -> Result<ObservePlan> {
        let state = self.read(ctx, spec, &target.log_group).await?;
        self.plan_with(ctx, &state, target).await
    }

    /// The planning reads, which need no target: validates the spec (every problem at once,
    /// before any AWS call), then reads the log group `log_group`, the alarms with the
    /// stack's names and the dashboard concurrently. Makes no change.
    ///
    /// A log group with that name that is not the stack's is a conflict, and so is a
    /// dashboard with the stack's name but without its mark when the spec wants a dashboard
    /// ([`Monitoring::Advanced`]). Pass the result to [`plan_with`](Self::plan_with) once the
    /// alarms' dimensions are known, and to [`apply_log_group`](Self::apply_log_group) to
    /// make the log group before that.
    pub async fn read(
        &self,
        ctx: &Context,
        spec: &ObserveSpec,
        log_group: &str,
    ) -> Result<ObserveState> {
        let mut problems = ctx.tags().validate("tags");
        if let Err(p) = spec.validate() {
            problems.extend(p);
        }
        problems.into_result()?;
        let c = &self.clients;
        let advanced = spec.monitoring == Monitoring::Advanced;
        let dashboard = async {
            match self.dashboard(ctx).await {
                // Someone else's dashboard blocks only a stack that wants its own.
                Err(Error::Foreign(_)) if !advanced => Ok(None),
                other => other,
            }
        };
        let (live_log_group, live_alarms, dashboard) = futures_util::try_join!(
            logs::observe(ctx, &c.logs, log_group),
            alarms::observe(ctx, &c.cloudwatch),
            dashboard,
        )?;
        if let Some(live) = &live_log_group {
            logs::check_owned(ctx, live)?;
        }
        Ok(ObserveState {
            spec: spec.clone(),
            log_group: log_group.to_string(),
            live_log_group,
            alarms: live_alarms,
            dashboard,
            log_group_arn: None,
        })
    }

    /// The changes `apply` would make for `target`, against what [`read`](Self::read) saw
    /// (the spec included). The only calls are the tag checks of the alarms the plan would
    /// change or delete: an alarm with the stack's name but without its tag is left out of the
    /// plan when the spec no longer wants it, and is a conflict when the spec wants it
    /// changed.
    ///
    /// The log group is the one `read` was given: `target.log_group` is ignored, and the
    /// plan's target carries the state's log group instead. Its change is the one `read`
    /// saw, even after [`apply_log_group`](Self::apply_log_group) (whose ARN the plan then
    /// carries, so that `apply` leaves the log group alone).
    pub async fn plan_with(
        &self,
        ctx: &Context,
        state: &ObserveState,
        target: &ObserveTarget,
    ) -> Result<ObservePlan> {
        let c = &self.clients;
        let spec = &state.spec;
        let target = ObserveTarget {
            log_group: state.log_group.clone(),
            ..target.clone()
        };
        // An alarm with one of the stack's names is changed or deleted only when it carries
        // the stack's tag: the tags of those a call would touch (the ones the spec no longer
        // wants, and the ones that differ) are read, all at once. One that differs without the
        // tag is refused; one no longer wanted without it is left alone (and out of the plan);
        // one that already matches the spec is left as it is, its tags unread.
        let want = alarms::desired(ctx.stack(), spec, &target);
        let mut live_alarms = state.alarms.clone();
        let touched: Vec<alarms::LiveAlarm> = live_alarms
            .values()
            .filter(|a| match want.get(&a.name) {
                None => true,
                Some((kind, doc)) => !alarms::Alarm {
                    name: &a.name,
                    kind: *kind,
                    doc,
                }
                .diff(a)
                .is_empty(),
            })
            .cloned()
            .collect();
        let read = futures_util::future::try_join_all(touched.into_iter().map(|mut a| async {
            let owned = alarms::read_tags(ctx, &c.cloudwatch, &mut a).await?;
            Ok::<_, Error>((a, owned))
        }))
        .await?;
        for (a, owned) in read {
            match (want.contains_key(&a.name), owned) {
                (true, false) => {
                    return Err(Error::Foreign(resource::Foreign::untagged(
                        ctx,
                        alarms::KIND,
                        a.name,
                    )))
                }
                (false, false) => {
                    live_alarms.remove(&a.name);
                }
                _ => {
                    live_alarms.insert(a.name.clone(), a);
                }
            }
        }
        let live = Live {
            log_group: state.live_log_group.clone(),
            alarms: live_alarms,
            dashboard: state.dashboard.clone(),
        };
        let region = self.region();
        let alarm_plan = alarms::changes(&want, &live.alarms);
        let mut changes = Plan::new();
        let log_group = logs::LogGroup::new(ctx, &state.log_group, spec);
        changes.push(resource::decide(&log_group, live.log_group.clone()).change(&log_group));
        changes.extend(alarm_plan);
        changes.push(self.dashboard_change(ctx, spec, &target, &region, &want, &live));
        Ok(ObservePlan {
            spec: spec.clone(),
            target,
            region,
            live,
            log_group_arn: state.log_group_arn.clone(),
            changes,
        })
    }

    /// Creates the log group, or brings it in line with the spec, from what
    /// [`read`](Self::read) saw (it is not read again first; after a creation it is
    /// described once, to learn its ARN). Records the ARN in `state` and returns it: a later
    /// [`plan_with`](Self::plan_with) of `state` still shows the log group's change as it was
    /// read (a creation, say), and [`apply`](Self::apply) of that plan does not touch the log
    /// group again. So a deploy can make the log group before the service's tasks start and
    /// still report it truthfully. Once the ARN is recorded, calling this again makes no call.
    pub async fn apply_log_group(&self, ctx: &Context, state: &mut ObserveState) -> Result<String> {
        if let Some(arn) = &state.log_group_arn {
            return Ok(arn.clone());
        }
        let arn = self
            .converge_log_group(ctx, &state.log_group, &state.spec, &state.live_log_group)
            .await?;
        state.log_group_arn = Some(arn.clone());
        Ok(arn)
    }

    fn dashboard_change(
        &self,
        ctx: &Context,
        spec: &ObserveSpec,
        target: &ObserveTarget,
        region: &str,
        want: &BTreeMap<String, (AlarmKind, alarms::AlarmDoc)>,
        live: &Live,
    ) -> Change {
        let name = Self::dashboard_name(ctx);
        let wanted = spec.monitoring == Monitoring::Advanced;
        let found = Self::live_dashboard(&name, ctx.stack().as_str(), live);
        match (found, wanted) {
            (Some(_), false) => Change::new(dashboard::KIND, name, Action::Delete),
            (None, false) => Change::new(dashboard::KIND, name, Action::NoChange)
                .with_detail("basic monitoring: no dashboard"),
            (found, true) => {
                // The alarm widget needs the alarms' ARNs: the body is known only when all
                // exist.
                let arns: Option<Vec<String>> = want
                    .keys()
                    .map(|n| live.alarms.get(n).map(|a| a.arn.clone()))
                    .collect();
                let desired = dashboard::Dashboard {
                    name: &name,
                    body: arns
                        .map(|arns| dashboard::body(ctx.stack().as_str(), target, region, &arns))
                        .into(),
                };
                resource::decide(&desired, found).change(&desired)
            }
        }
    }

    /// The stack's dashboard as read (the read keeps only one that carries its mark).
    fn live_dashboard(name: &str, stack: &str, live: &Live) -> Option<dashboard::LiveDashboard> {
        live.dashboard
            .as_ref()
            .map(|body| dashboard::LiveDashboard {
                name: name.to_string(),
                body: body.clone(),
                marked: dashboard::is_owned(body, stack),
            })
    }

    /// Carries out `plan`: the log group (unless [`apply_log_group`](Self::apply_log_group)
    /// made it already) and the alarms concurrently, then the dashboard with the alarms'
    /// ARNs.
    pub async fn apply(&self, ctx: &Context, plan: &ObservePlan) -> Result<ObserveOutputs> {
        let c = &self.clients;
        let (spec, target, live) = (&plan.spec, &plan.target, &plan.live);
        let want = alarms::desired(ctx.stack(), spec, target);
        let alarm_plan = alarms::changes(&want, &live.alarms);
        let doomed: Vec<String> = alarm_plan
            .pending()
            .filter(|c| matches!(c.action, Action::Delete))
            .map(|c| c.id.clone())
            .collect();
        let name = Self::dashboard_name(ctx);
        let dashboard_action = plan
            .changes
            .find(dashboard::KIND, &name)
            .map(|c| c.action.clone());
        let mut g = Graph::<Error>::new();

        // The log group (unless `apply_log_group` made it already).
        let log_group_label = format!("{} {}", logs::KIND, target.log_group);
        let log_group = match &plan.log_group_arn {
            Some(arn) => {
                let arn = arn.clone();
                g.step(log_group_label).run(|_| async { Ok(arn) })
            }
            None => g
                .step(log_group_label)
                .action_if(
                    plan.changes
                        .find(logs::KIND, &target.log_group)
                        .and_then(|c| c.action.verb()),
                )
                .converge(ctx, &c.logs, live.log_group.clone(), |_| {
                    logs::LogGroup::new(ctx, &target.log_group, spec)
                }),
        };
        // Each alarm that differs, concurrently; the removed ones, 100 a call.
        let mut alarm_steps: Vec<Dep> = Vec::new();
        for (name, (kind, doc)) in &want {
            let step = g
                .step(format!("{} {name}", alarms::KIND))
                .action_if(
                    alarm_plan
                        .find(alarms::KIND, name)
                        .and_then(|c| c.action.verb()),
                )
                .converge(ctx, &c.cloudwatch, live.alarms.get(name).cloned(), |_| {
                    alarms::Alarm {
                        name,
                        kind: *kind,
                        doc,
                    }
                });
            alarm_steps.push(step.into());
        }
        for chunk in doomed.chunks(100) {
            let step = g
                .step(format!("{} {}", alarms::KIND, chunk.join(",")))
                .action("delete")
                .run(move |_| alarms::delete(ctx, &c.cloudwatch, chunk));
            alarm_steps.push(step.into());
        }
        // The dashboard once the alarms are in place: its alarm widget needs their ARNs (read
        // again when an alarm was made or changed).
        let alarms_changed = alarm_plan.pending().next().is_some();
        let found = Self::live_dashboard(&name, ctx.stack().as_str(), live);
        match &dashboard_action {
            Some(Action::Create | Action::Update(_)) => {
                let want = &want;
                let arns = g
                    .step(format!("{} ARNs", alarms::KIND))
                    .after_all(alarm_steps)
                    .run(move |_| async move {
                        let now = match alarms_changed {
                            true => alarms::observe(ctx, &c.cloudwatch).await?,
                            false => live.alarms.clone(),
                        };
                        Ok::<_, Error>(
                            want.keys()
                                .filter_map(|n| now.get(n).map(|a| a.arn.clone()))
                                .collect::<Vec<String>>(),
                        )
                    });
                let name = &name;
                g.step(format!("{} {name}", dashboard::KIND))
                    .after(arns)
                    .action_if(dashboard_action.as_ref().and_then(Action::verb))
                    .converge(ctx, &c.cloudwatch, found, move |i| dashboard::Dashboard {
                        name,
                        body: Known::Known(dashboard::body(
                            ctx.stack().as_str(),
                            target,
                            &plan.region,
                            i.get::<Vec<String>>(arns),
                        )),
                    });
            }
            Some(Action::Delete) => {
                if let Some(found) = found {
                    g.step(format!("{} {name}", dashboard::KIND))
                        .after_all(alarm_steps)
                        .action("delete")
                        .run(move |_| async move {
                            resource::delete::<dashboard::Dashboard<'_>>(ctx, &c.cloudwatch, &found)
                                .await
                        });
                }
            }
            _ => {}
        }
        let out = g.run(ctx).await?;
        let dashboard = match &dashboard_action {
            Some(Action::Create | Action::Update(_)) => Some(name.clone()),
            Some(Action::Delete) => None,
            _ => live.dashboard.as_ref().map(|_| name.clone()),
        };
        let dashboard_url = dashboard.as_ref().map(|d| {
            format!(
                "https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#dashboards:name={d}",
                r = plan.region
            )
        });
        Ok(ObserveOutputs {
            log_group: target.log_group.clone(),
            log_group_arn: out.get(log_group).clone(),
            alarms: want.keys().cloned().collect(),
            dashboard,
            dashboard_url,
        })
    }

    /// Plans and applies.
    pub async fn deploy(
        &self,
        ctx: &Context,
        spec: &ObserveSpec,
        target: &ObserveTarget,
    ) -> Result<(Plan, ObserveOutputs)> {
        let plan = self.plan(ctx, spec, target).await?;
        let outputs = self.apply(ctx, &plan).await?;
        Ok((plan.changes, outputs))
    }

    /// Creates the log group (or brings it in line with the spec) on its own, so that it can
    /// exist before the service's tasks start, without waiting for the service.
    pub async fn ensure_log_group(
        &self,
        ctx: &Context,
        spec: &ObserveSpec,
        log_group: &str,
    ) -> Result<String> {
        spec.validate()?;
        let live = logs::observe(ctx, &self.clients.logs, log_group).await?;
        if let Some(live) = &live {
            logs::check_owned(ctx, live)?;
        }
        self.converge_log_group(ctx, log_group, spec, &live).await
    }

    /// Brings the log group `name` from `live` (read, its ownership checked) to `spec`: a
    /// graph of that one step, which the executor reports.
    async fn converge_log_group(
        &self,
        ctx: &Context,
        name: &str,
        spec: &ObserveSpec,
        live: &Option<logs::LiveLogGroup>,
    ) -> Result<String> {
        let desired = logs::LogGroup::new(ctx, name, spec);
        let verb = resource::decide(&desired, live.clone()).verb();
        let mut g = Graph::<Error>::new();
        let step = g
            .step(format!("{} {name}", logs::KIND))
            .action_if(verb)
            .converge(ctx, &self.clients.logs, live.clone(), move |_| desired);
        Ok(g.run(ctx).await?.get(step).clone())
    }

    /// The log events of `log_group` from `start_ms` (milliseconds since the Unix epoch) on,
    /// oldest first: `FilterLogEvents` over every stream, page after page (at most `limit`
    /// events). `StartLiveTail` would stream them, but it does not reach a custom endpoint
    /// (the SDK puts `stream-` before the host), so polling this is the portable way to follow
    /// a service's logs. A log group that does not exist yet has no events.
    pub async fn log_events(
        &self,
        ctx: &Context,
        log_group: &str,
        start_ms: i64,
        limit: usize,
    ) -> Result<Vec<LogEvent>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = ctx
                .call("FilterLogEvents", &format!("log-group {log_group}"), || {
                    self.clients
                        .logs
                        .filter_log_events()
                        .log_group_name(log_group)
                        .start_time(start_ms)
                        .set_next_token(token.clone())
                        .send()
                })
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if e.is_code("ResourceNotFoundException") => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            out.extend(page.events().iter().map(|e| LogEvent {
                id: e.event_id().unwrap_or_default().to_string(),
                timestamp_ms: e.timestamp().unwrap_or_default(),
                stream: e.log_stream_name().unwrap_or_default().to_string(),
                message: e.message().unwrap_or_default().trim_end().to_string(),
            }));
            token = page.next_token().map(str::to_string);
            if token.is_none() || out.len() >= limit {
                break;
            }
        }
        out.sort_by_key(|e| e.timestamp_ms);
        out.truncate(limit);
        Ok(out)
    }

    /// The current state of the stack's alarms.
    pub async fn alarm_states(&self, ctx: &Context) -> Result<Vec<AlarmState>> {
        Ok(alarms::observe(ctx, &self.clients.cloudwatch)
            .await?
            .into_iter()
            .map(|(name, a)| AlarmState {
                name,
                state: a.state,
            })
            .collect())
    }

    /// What [`destroy`](Self::destroy) would delete (the stack's alarms and dashboard, and the
    /// log group when `delete_logs`) and keep. Makes no change.
    pub async fn plan_destroy(
        &self,
        ctx: &Context,
        log_group: &str,
        delete_logs: bool,
    ) -> Result<(Plan, Vec<String>)> {
        let c = &self.clients;
        let mine = |r: Result<Option<Value>>| match r {
            Err(Error::Foreign(_)) => Ok(None),
            other => other,
        };
        let (live_alarms, dashboard, group) = futures_util::try_join!(
            alarms::observe(ctx, &c.cloudwatch),
            async { mine(self.dashboard(ctx).await) },
            logs::observe(ctx, &c.logs, log_group),
        )?;
        let group = group.filter(|l| resource::owned::<logs::LogGroup<'_>>(ctx, l));
        let owned =
            futures_util::future::try_join_all(live_alarms.values().map(|a| async move {
                alarms::read_tags(ctx, &c.cloudwatch, &mut a.clone()).await
            }))
            .await?;
        let mut deleted = Plan::new();
        for (name, owned) in live_alarms.keys().zip(owned) {
            if owned {
                deleted.push(Change::new(alarms::KIND, name, Action::Delete));
            }
        }
        if dashboard.is_some() {
            deleted.push(Change::new(
                dashboard::KIND,
                Self::dashboard_name(ctx),
                Action::Delete,
            ));
        }
        let mut kept = Vec::new();
        if group.is_some() {
            if delete_logs {
                deleted.push(Change::new(logs::KIND, log_group, Action::Delete));
            } else {
                kept.push(format!(
                    "{} {log_group} (with its logs; to delete them too, destroy with `--delete-logs`, or `DestroyOptions::delete_logs` in the library)",
                    logs::KIND
                ));
            }
        }
        Ok((deleted, kept))
    }

    /// Deletes the stack's alarms (those carrying its tag) and dashboard (carrying its mark),
    /// and the log group with its logs only when `delete_logs` (it is kept otherwise).
    /// Returns what was deleted and what was kept.
    pub async fn destroy(
        &self,
        ctx: &Context,
        log_group: &str,
        delete_logs: bool,
    ) -> Result<(Plan, Vec<String>)> {
        let c = &self.clients;
        let (live_alarms, group, found) = futures_util::try_join!(
            alarms::observe(ctx, &c.cloudwatch),
            async {
                match delete_logs {
                    true => logs::observe(ctx, &c.logs, log_group).await,
                    false => Ok(None),
                }
            },
            async {
                // Someone else's dashboard under the name is left alone.
                match self.dashboard(ctx).await {
                    Err(Error::Foreign(_)) => Ok(None),
                    other => other,
                }
            },
        )?;
        let name = Self::dashboard_name(ctx);
        let found = found.map(|body| dashboard::LiveDashboard {
            name: name.clone(),
            marked: dashboard::is_owned(&body, ctx.stack().as_str()),
            body,
        });
        let group = group.filter(|l| resource::owned::<logs::LogGroup<'_>>(ctx, l));
        let owned =
            futures_util::future::try_join_all(live_alarms.values().map(|a| async move {
                alarms::read_tags(ctx, &c.cloudwatch, &mut a.clone()).await
            }))
            .await?;
        let names: Vec<String> = live_alarms
            .keys()
            .zip(owned)
            .filter(|(_, o)| *o)
            .map(|(n, _)| n.clone())
            .collect();
        let mut deleted = Plan::new();
        let mut kept = Vec::new();
        let mut g = Graph::<Error>::new();
        let mut alarm_steps: Vec<Dep> = Vec::new();
        for chunk in names.chunks(100) {
            let step = g
                .step(format!("{} {}", alarms::KIND, chunk.join(",")))
                .action("delete")
                .run(move |_| alarms::delete(ctx, &c.cloudwatch, chunk));
            alarm_steps.push(step.into());
        }
        // The dashboard and the log group were read with the alarms, above.
        if let Some(found) = &found {
            g.step(format!("{} {name}", dashboard::KIND))
                .after_all(alarm_steps)
                .action("delete")
                .run(move |_| {
                    resource::delete::<dashboard::Dashboard<'_>>(ctx, &c.cloudwatch, found)
                });
        }
        if let Some(group) = &group {
            g.step(format!("{} {log_group}", logs::KIND))
                .action("delete")
                .run_with_detail(
                    |_: &bool| "deleted with its logs".to_string(),
                    move |_| resource::delete::<logs::LogGroup<'_>>(ctx, &c.logs, group),
                );
        }
        g.run(ctx).await?;
        let (dashboard, logs_deleted) = (found.is_some(), group.is_some());
        for n in &names {
            deleted.push(Change::new(alarms::KIND, n, Action::Delete));
        }
        if dashboard {
            deleted.push(Change::new(
                dashboard::KIND,
                Self::dashboard_name(ctx),
                Action::Delete,
            ));
        }
        if logs_deleted {
            deleted.push(Change::new(logs::KIND, log_group, Action::Delete));
        } else if !delete_logs {
            kept.push(format!(
                "{} {log_group} (with its logs; to delete them too, destroy with `--delete-logs`, or `DestroyOptions::delete_logs` in the library)",
                logs::KIND
            ));
        }
        Ok((deleted, kept))
    }
}
