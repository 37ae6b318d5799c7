//! CloudWatch alarms built from typed specs, with dimensions derived from the deployed
//! resources; reconciled exactly (changed → put again, removed → deleted, unchanged → nothing).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, Statistic,
};
use aws_sdk_cloudwatch::Client;
use ecs_core::resource::{self, Diff, Owner, Ownership, Resource};
use ecs_core::{Action, Change, Context, FieldDiff, NameKind, Plan, StackName, Tags};

use crate::spec::{AlarmKind, AlarmSpec, ObserveSpec};
use crate::{Error, ObserveTarget, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "alarm";

/// One metric of an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricDoc {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// `Average`, `Sum`, `Maximum`, … or a percentile such as `p99`.
    pub(crate) stat: String,
    pub(crate) dimensions: BTreeMap<String, String>,
}

/// An alarm in comparable form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlarmDoc {
    pub(crate) description: String,
    /// A single metric, or metrics combined by `expression` (ids `m1`, `m2`, …).
    pub(crate) metrics: Vec<MetricDoc>,
    pub(crate) expression: Option<String>,
    pub(crate) period: i32,
    pub(crate) evaluation_periods: i32,
    pub(crate) datapoints: i32,
    pub(crate) threshold: f64,
    pub(crate) comparison: String,
    pub(crate) treat_missing: String,
    pub(crate) alarm_actions: BTreeSet<String>,
    pub(crate) ok_actions: BTreeSet<String>,
}

/// The name of the stack's alarm of `kind`.
pub(crate) fn name(stack: &StackName, kind: AlarmKind) -> String {
    stack.name(NameKind::Alarm, kind.suffix())
}

fn metric(namespace: &str, name: &str, stat: &str, dims: &[(&str, &str)]) -> MetricDoc {
    MetricDoc {
        namespace: namespace.into(),
        name: name.into(),
        stat: stat.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The alarms the spec wants, by name.
pub(crate) fn desired(
    stack: &StackName,
    spec: &ObserveSpec,
    t: &ObserveTarget,
) -> BTreeMap<String, (AlarmKind, AlarmDoc)> {
    let lb = t.load_balancer.as_deref().zip(t.target_group.as_deref());
    let service = [
        ("ClusterName", t.cluster.as_str()),
        ("ServiceName", t.service.as_str()),
    ];
    spec.enabled_alarms(lb.is_some())
        .into_iter()
        .filter_map(|(kind, a)| {
            let (metrics, expression, comparison, description) = match (kind, lb) {
                (AlarmKind::CpuHigh, _) => (
                    vec![metric("AWS/ECS", "CPUUtilization", "Average", &service)],
                    None,
                    "GreaterThanThreshold",
                    format!("{} average CPU above {} %", t.service, a.threshold),
                ),
                (AlarmKind::MemoryHigh, _) => (
                    vec![metric("AWS/ECS", "MemoryUtilization", "Average", &service)],
                    None,
                    "GreaterThanThreshold",
                    format!("{} average memory above {} %", t.service, a.threshold),
                ),
                (AlarmKind::Target5xx, Some((lb, tg))) => (
                    vec![metric(
                        "AWS/ApplicationELB",
                        "HTTPCode_Target_5XX_Count",
                        "Sum",
                        &[("LoadBalancer", lb), ("TargetGroup", tg)],
                    )],
                    None,
                    "GreaterThanThreshold",
                    format!(
                        "{} answers more than {} 5XX per {} s",
                        t.service, a.threshold, a.period
                    ),
                ),
                (AlarmKind::LatencyP99, Some((lb, tg))) => (
                    vec![metric(
                        "AWS/ApplicationELB",
                        "TargetResponseTime",
                        "p99",
                        &[("LoadBalancer", lb), ("TargetGroup", tg)],
                    )],
                    None,
                    "GreaterThanThreshold",
                    format!("{} p99 response time above {} s", t.service, a.threshold),
                ),
                (AlarmKind::UnhealthyHosts, Some((lb, tg))) => (
                    vec![metric(
                        "AWS/ApplicationELB",
                        "UnHealthyHostCount",
                        "Maximum",
                        &[("LoadBalancer", lb), ("TargetGroup", tg)],
                    )],
                    None,
                    "GreaterThanThreshold",
                    format!(
                        "{} has more than {} unhealthy targets",
                        t.service, a.threshold
                    ),
                ),
                (AlarmKind::RunningBelowDesired, _) => (
                    vec![
                        metric(
                            "ECS/ContainerInsights",
                            "DesiredTaskCount",
                            "Average",
                            &service,
                        ),
                        metric(
                            "ECS/ContainerInsights",
                            "RunningTaskCount",
                            "Average",
                            &service,
                        ),
                    ],
                    Some("m1 - m2".to_string()),
                    "GreaterThanThreshold",
                    format!(
                        "{} runs fewer tasks than desired (Container Insights)",
                        t.service
                    ),
                ),
                _ => return None,
            };
            Some((
                name(stack, kind),
                (
                    kind,
                    doc(a, metrics, expression, comparison, description, spec),
                ),
            ))
        })
        .collect()
}

fn doc(
    a: &AlarmSpec,
    metrics: Vec<MetricDoc>,
    expression: Option<String>,
    comparison: &str,
    description: String,
    spec: &ObserveSpec,
) -> AlarmDoc {
    AlarmDoc {
        description,
        metrics,
        expression,
        period: a.period as i32,
        evaluation_periods: a.evaluation_periods as i32,
        datapoints: a.datapoints_to_alarm as i32,
        threshold: a.threshold,
        comparison: comparison.to_string(),
        treat_missing: a.treat_missing_data.as_str().to_string(),
        alarm_actions: spec.alarm_actions.iter().cloned().collect(),
        ok_actions: spec.ok_actions.iter().cloned().collect(),
    }
}

fn dims(d: &[Dimension]) -> BTreeMap<String, String> {
    d.iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The comparable form of a live alarm.
pub(crate) fn from_live(a: &MetricAlarm) -> AlarmDoc {
    let (metrics, expression, period) = if a.metrics().is_empty() {
        (
            vec![MetricDoc {
                namespace: a.namespace().unwrap_or_default().to_string(),
                name: a.metric_name().unwrap_or_default().to_string(),
                stat: a
                    .extended_statistic()
                    .map(str::to_string)
                    .or_else(|| a.statistic().map(|s| s.as_str().to_string()))
                    .unwrap_or_default(),
                dimensions: dims(a.dimensions()),
            }],
            None,
            a.period().unwrap_or_default(),
        )
    } else {
        let mut queries: Vec<&MetricDataQuery> = a
            .metrics()
            .iter()
            .filter(|q| q.metric_stat().is_some())
            .collect();
        queries.sort_by_key(|q| q.id().unwrap_or_default().to_string());
        let metrics = queries
            .iter()
            .filter_map(|q| q.metric_stat())
            .map(|s| MetricDoc {
                namespace: s
                    .metric()
                    .and_then(|m| m.namespace())
                    .unwrap_or_default()
                    .to_string(),
                name: s
                    .metric()
                    .and_then(|m| m.metric_name())
                    .unwrap_or_default()
                    .to_string(),
                stat: s.stat().unwrap_or_default().to_string(),
                dimensions: s.metric().map(|m| dims(m.dimensions())).unwrap_or_default(),
            })
            .collect();
        let period = queries
            .first()
            .and_then(|q| q.metric_stat())
            .and_then(|s| s.period())
            .unwrap_or_default();
        let expression = a
            .metrics()
            .iter()
            .find_map(|q| q.expression())
            .map(str::to_string);
        (metrics, expression, period)
    };
    AlarmDoc {
        description: a.alarm_description().unwrap_or_default().to_string(),
        metrics,
        expression,
        period,
        evaluation_periods: a.evaluation_periods().unwrap_or_default(),
        datapoints: a
            .datapoints_to_alarm()
            .or(a.evaluation_periods())
            .unwrap_or_default(),
        threshold: a.threshold().unwrap_or_default(),
        comparison: a
            .comparison_operator()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        treat_missing: a.treat_missing_data().unwrap_or("missing").to_string(),
        alarm_actions: a.alarm_actions().iter().cloned().collect(),
        ok_actions: a.ok_actions().iter().cloned().collect(),
    }
}

/// A live alarm with one of the stack's alarm names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveAlarm {
    pub(crate) name: String,
    pub(crate) arn: String,
    /// Its tags once read ([`read_tags`]); empty until then.
    pub(crate) tags: Tags,
    pub(crate) doc: AlarmDoc,
    pub(crate) state: String,
}

/// Reads the alarms carrying the stack's alarm names (one `DescribeAlarms` by prefix).
pub(crate) async fn observe(ctx: &Context, cw: &Client) -> Result<BTreeMap<String, LiveAlarm>> {
    let ours: BTreeSet<String> = AlarmKind::ALL
        .iter()
        .map(|k| name(ctx.stack(), *k))
        .collect();
    let prefix = format!("{}-", ctx.stack());
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .call("DescribeAlarms", &format!("{KIND} {prefix}*"), || {
                cw.describe_alarms()
                    .alarm_name_prefix(&prefix)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        for a in page.metric_alarms() {
            let Some(n) = a.alarm_name().filter(|n| ours.contains(*n)) else {
                continue;
            };
            out.insert(
                n.to_string(),
                LiveAlarm {
                    name: n.to_string(),
                    arn: a.alarm_arn().unwrap_or_default().to_string(),
                    tags: Tags::new(),
                    doc: from_live(a),
                    state: a
                        .state_value()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                },
            );
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Reads the alarm's tags into it; returns whether they make it the stack's (the engine's
/// rule for the kind, checked before an alarm is changed or deleted).
pub(crate) async fn read_tags(ctx: &Context, cw: &Client, alarm: &mut LiveAlarm) -> Result<bool> {
    let out = ctx
        .call(
            "ListTagsForResource",
            &format!("{KIND} {}", alarm.arn),
            || cw.list_tags_for_resource().resource_arn(&alarm.arn).send(),
        )
        .await?;
    alarm.tags = Tags::from_pairs(out.tags().iter().map(|t| (t.key(), t.value())));
    Ok(resource::owned::<Alarm<'_>>(ctx, alarm))
}

/// A field of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlarmField {
    Threshold,
    Period,
    EvaluationPeriods,
    DatapointsToAlarm,
    Comparison,
    TreatMissingData,
    Description,
    Metrics,
    Expression,
    AlarmActions,
    OkActions,
}

impl AlarmField {
    fn name(self) -> &'static str {
        match self {
            AlarmField::Threshold => "threshold",
            AlarmField::Period => "period",
            AlarmField::EvaluationPeriods => "evaluation_periods",
            AlarmField::DatapointsToAlarm => "datapoints_to_alarm",
            AlarmField::Comparison => "comparison",
            AlarmField::TreatMissingData => "treat_missing_data",
            AlarmField::Description => "description",
            AlarmField::Metrics => "metrics",
            AlarmField::Expression => "expression",
            AlarmField::AlarmActions => "alarm_actions",
            AlarmField::OkActions => "ok_actions",
        }
    }
}

/// One typed difference of an alarm, rendered live and desired: all are set by one
/// `PutMetricAlarm` with the whole alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlarmDiff {
    pub(crate) field: AlarmField,
    pub(crate) live: String,
    pub(crate) want: String,
}

impl Diff for AlarmDiff {
    fn field(&self) -> FieldDiff {
        FieldDiff::new(self.field.name(), &self.live, &self.want)
    }
}

fn diffs(want: &AlarmDoc, have: &AlarmDoc) -> Vec<AlarmDiff> {
    use AlarmField as F;
    let mut d = Vec::new();
    let mut cmp = |field, live: String, want: String| {
        if live != want {
            d.push(AlarmDiff { field, live, want });
        }
    };
    cmp(
        F::Threshold,
        have.threshold.to_string(),
        want.threshold.to_string(),
    );
    cmp(F::Period, have.period.to_string(), want.period.to_string());
    cmp(
        F::EvaluationPeriods,
        have.evaluation_periods.to_string(),
        want.evaluation_periods.to_string(),
    );
    cmp(
        F::DatapointsToAlarm,
        have.datapoints.to_string(),
        want.datapoints.to_string(),
    );
    cmp(
        F::Comparison,
        have.comparison.clone(),
        want.comparison.clone(),
    );
    cmp(
        F::TreatMissingData,
        have.treat_missing.clone(),
        want.treat_missing.clone(),
    );
    cmp(
        F::Description,
        have.description.clone(),
        want.description.clone(),
    );
    cmp(
        F::Metrics,
        format!("{:?}", have.metrics),
        format!("{:?}", want.metrics),
    );
    cmp(
        F::Expression,
        format!("{:?}", have.expression),
        format!("{:?}", want.expression),
    );
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
    cmp(
        F::AlarmActions,
        list(&have.alarm_actions),
        list(&want.alarm_actions),
    );
    cmp(F::OkActions, list(&have.ok_actions), list(&want.ok_actions));
    d
}

/// An alarm as desired: its name, its kind (its tags name it) and what it watches.
#[derive(Debug, Clone)]
pub(crate) struct Alarm<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: AlarmKind,
    pub(crate) doc: &'a AlarmDoc,
}

impl Resource for Alarm<'_> {
    const KIND: &'static str = KIND;
    /// The stack's tag, read only for an alarm the plan would change or delete (the rule
    /// every alarm of the stack follows; reading it for every alarm would cost a no-op one
    /// call per alarm).
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveAlarm;
    type Diff = AlarmDiff;
    type Output = ();
    type Error = Error;

    fn logical_id(&self) -> String {
        self.name.to_string()
    }

    fn owner(live: &LiveAlarm) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveAlarm) -> Vec<AlarmDiff> {
        diffs(self.doc, &live.doc)
    }

    fn output(_live: &LiveAlarm) {}

    async fn create(&self, ctx: &Context, cw: &Client) -> Result<()> {
        put(ctx, cw, self.name, self.kind, self.doc).await
    }

    async fn update(
        &self,
        ctx: &Context,
        cw: &Client,
        _live: &LiveAlarm,
        _diffs: &[AlarmDiff],
    ) -> Result<()> {
        put(ctx, cw, self.name, self.kind, self.doc).await
    }

    async fn delete(ctx: &Context, cw: &Client, live: &LiveAlarm) -> Result<()> {
        delete(ctx, cw, std::slice::from_ref(&live.name)).await
    }
}

/// The plan entries for the alarms.
pub(crate) fn changes(
    want: &BTreeMap<String, (AlarmKind, AlarmDoc)>,
    live: &BTreeMap<String, LiveAlarm>,
) -> Plan {
    let mut plan = Plan::new();
    for (name, (kind, doc)) in want {
        let alarm = Alarm {
            name,
            kind: *kind,
            doc,
        };
        plan.push(resource::decide(&alarm, live.get(name).cloned()).change(&alarm));
    }
    for name in live.keys().filter(|n| !want.contains_key(*n)) {
        plan.push(Change::new(KIND, name, Action::Delete));
    }
    plan
}

fn cw_dims(m: &MetricDoc) -> Vec<Dimension> {
    m.dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect()
}

/// Puts one whole alarm, with the stack's tags (CloudWatch applies them on creation).
async fn put(ctx: &Context, cw: &Client, name: &str, kind: AlarmKind, d: &AlarmDoc) -> Result<()> {
    let resource = format!("{KIND} {name}");
    let tags: Vec<_> = ctx
        .resource_tags(Some(&format!("alarm/{}", kind.suffix())), None)
        .iter()
        .map(|(k, v)| {
            aws_sdk_cloudwatch::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect();
    ctx.call("PutMetricAlarm", &resource, || {
        let mut req = cw
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(&d.description)
            .evaluation_periods(d.evaluation_periods)
            .datapoints_to_alarm(d.datapoints)
            .threshold(d.threshold)
            .comparison_operator(ComparisonOperator::from(d.comparison.as_str()))
            .treat_missing_data(&d.treat_missing)
            .actions_enabled(true)
            .set_alarm_actions(Some(d.alarm_actions.iter().cloned().collect()))
            .set_ok_actions(Some(d.ok_actions.iter().cloned().collect()))
            .set_tags(Some(tags.clone()));
        match (&d.expression, d.metrics.as_slice()) {
            (None, [m]) => {
                req = req
                    .namespace(&m.namespace)
                    .metric_name(&m.name)
                    .set_dimensions(Some(cw_dims(m)))
                    .period(d.period);
                req = if m.stat.starts_with('p') {
                    req.extended_statistic(&m.stat)
                } else {
                    req.statistic(Statistic::from(m.stat.as_str()))
                };
            }
            (expression, metrics) => {
                let mut queries: Vec<MetricDataQuery> = metrics
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        MetricDataQuery::builder()
                            .id(format!("m{}", i + 1))
                            .metric_stat(
                                MetricStat::builder()
                                    .metric(
                                        Metric::builder()
                                            .namespace(&m.namespace)
                                            .metric_name(&m.name)
                                            .set_dimensions(Some(cw_dims(m)))
                                            .build(),
                                    )
                                    .period(d.period)
                                    .stat(&m.stat)
                                    .build(),
                            )
                            .return_data(false)
                            .build()
                    })
                    .collect();
                if let Some(e) = expression {
                    queries.push(
                        MetricDataQuery::builder()
                            .id("e1")
                            .expression(e)
                            .label(name)
                            .return_data(true)
                            .build(),
                    );
                }
                req = req.set_metrics(Some(queries));
            }
        }
        req.send()
    })
    .await?;
    Ok(())
}

/// Deletes the alarms `names` (at most 100: one call).
pub(crate) async fn delete(ctx: &Context, cw: &Client, names: &[String]) -> Result<()> {
    let resource = format!("{KIND} {}", names.join(","));
    ctx.call("DeleteAlarms", &resource, || {
        cw.delete_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .send()
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod typed_diff_tests {
    use super::*;

    fn doc() -> AlarmDoc {
        AlarmDoc {
            description: "web average CPU above 80 %".into(),
            metrics: vec![metric("AWS/ECS", "CPUUtilization", "Average", &[])],
            expression: None,
            period: 60,
            evaluation_periods: 3,
            datapoints: 3,
            threshold: 80.0,
            comparison: "GreaterThanThreshold".into(),
            treat_missing: "missing".into(),
            alarm_actions: BTreeSet::from(["arn:sns:ops".to_string()]),
            ok_actions: BTreeSet::new(),
        }
    }

    #[test]
    fn each_difference_is_one_typed_diff_rendered_under_its_plan_name() {
        let want = doc();
        let alarm = Alarm {
            name: "web-cpu-high",
            kind: AlarmKind::CpuHigh,
            doc: &want,
        };
        let live = |doc: AlarmDoc| LiveAlarm {
            name: "web-cpu-high".into(),
            arn: "arn:alarm".into(),
            tags: Tags::new(),
            doc,
            state: "OK".into(),
        };
        assert_eq!(alarm.diff(&live(doc())), vec![]);
        // (what drifted, the plan line)
        let cases: Vec<(AlarmDoc, FieldDiff)> = vec![
            (
                AlarmDoc {
                    threshold: 90.0,
                    ..doc()
                },
                FieldDiff::new("threshold", "90", "80"),
            ),
            (
                AlarmDoc {
                    datapoints: 1,
                    ..doc()
                },
                FieldDiff::new("datapoints_to_alarm", "1", "3"),
            ),
            (
                AlarmDoc {
                    treat_missing: "breaching".into(),
                    ..doc()
                },
                FieldDiff::new("treat_missing_data", "breaching", "missing"),
            ),
            (
                AlarmDoc {
                    alarm_actions: BTreeSet::new(),
                    ..doc()
                },
                FieldDiff::new("alarm_actions", "", "arn:sns:ops"),
            ),
        ];
        for (drifted, line) in cases {
            let d = alarm.diff(&live(drifted));
            assert_eq!(d.len(), 1, "{d:?}");
            assert_eq!(d[0].field(), line);
        }
    }
}
