//! Step policies' alarms: each triggers its policy by ARN, carries the stack's tag (the rule
//! every alarm of the stack follows) and has its tags set back when they drift.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_sdk_cloudwatch::Client;
use ecs_core::resource::{Diff, Known, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, TagDiff, Tags};

use crate::{Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "alarm";

/// A step policy's alarm in comparable form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepAlarm {
    pub(crate) namespace: String,
    pub(crate) metric: String,
    pub(crate) dimensions: BTreeMap<String, String>,
    pub(crate) statistic: String,
    pub(crate) threshold: f64,
    pub(crate) comparison: String,
    pub(crate) period: i32,
    pub(crate) evaluation_periods: i32,
}

/// A step alarm as a read found it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveAlarm {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) doc: StepAlarm,
    /// What it triggers (its policy's ARN).
    pub(crate) actions: Vec<String>,
    pub(crate) tags: Tags,
}

/// A field of a step alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlarmField {
    Namespace,
    Metric,
    Dimensions,
    Statistic,
    Threshold,
    Comparison,
    Period,
    EvaluationPeriods,
    /// The policy it triggers.
    Action,
}

impl AlarmField {
    fn name(self) -> &'static str {
        match self {
            AlarmField::Namespace => "namespace",
            AlarmField::Metric => "metric",
            AlarmField::Dimensions => "dimensions",
            AlarmField::Statistic => "statistic",
            AlarmField::Threshold => "threshold",
            AlarmField::Comparison => "comparison",
            AlarmField::Period => "period",
            AlarmField::EvaluationPeriods => "evaluation_periods",
            AlarmField::Action => "action",
        }
    }
}

/// One typed difference of a step alarm: the fields are set by one `PutMetricAlarm` with the
/// whole alarm; the tags (which `PutMetricAlarm` sets only on creation) by their own calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AlarmDiff {
    Field {
        field: AlarmField,
        live: String,
        want: String,
    },
    Tags(TagDiff),
}

impl Diff for AlarmDiff {
    fn field(&self) -> FieldDiff {
        match self {
            AlarmDiff::Field { field, live, want } => FieldDiff::new(field.name(), live, want),
            AlarmDiff::Tags(t) => t.field(),
        }
    }
}

/// The fields of `have` and `want` that differ.
pub(crate) fn alarm_diffs(have: &StepAlarm, want: &StepAlarm) -> Vec<AlarmDiff> {
    use AlarmField as F;
    let mut d = Vec::new();
    let mut cmp = |field: AlarmField, live: String, want: String| {
        if live != want {
            d.push(AlarmDiff::Field { field, live, want });
        }
    };
    let dims = |d: &BTreeMap<String, String>| {
        let items: Vec<String> = d.iter().map(|(k, v)| format!("{k}={v}")).collect();
        items.join(",")
    };
    cmp(F::Namespace, have.namespace.clone(), want.namespace.clone());
    cmp(F::Metric, have.metric.clone(), want.metric.clone());
    cmp(
        F::Dimensions,
        dims(&have.dimensions),
        dims(&want.dimensions),
    );
    cmp(F::Statistic, have.statistic.clone(), want.statistic.clone());
    cmp(
        F::Threshold,
        have.threshold.to_string(),
        want.threshold.to_string(),
    );
    cmp(
        F::Comparison,
        have.comparison.clone(),
        want.comparison.clone(),
    );
    cmp(F::Period, have.period.to_string(), want.period.to_string());
    cmp(
        F::EvaluationPeriods,
        have.evaluation_periods.to_string(),
        want.evaluation_periods.to_string(),
    );
    d
}

/// A step alarm as desired: its name, what it watches, its tags, and the ARN of the policy it
/// triggers (known once that policy exists).
#[derive(Debug, Clone)]
pub(crate) struct Alarm<'a> {
    pub(crate) name: &'a str,
    pub(crate) doc: &'a StepAlarm,
    pub(crate) tags: Tags,
    pub(crate) policy_arn: Known<String>,
}

impl Alarm<'_> {
    fn resource(&self) -> String {
        format!("{KIND} {}", self.name)
    }

    /// Puts the whole alarm, with its tags (CloudWatch applies them on creation).
    async fn put(&self, ctx: &Context, cw: &Client) -> Result<()> {
        let a = self.doc;
        let tags = self.tags.to_sdk(|k, v| {
            aws_sdk_cloudwatch::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        });
        let action = self.policy_arn.get().cloned().unwrap_or_default();
        ctx.call("PutMetricAlarm", &self.resource(), || {
            cw.put_metric_alarm()
                .alarm_name(self.name)
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
        Ok(())
    }

    /// Sets and removes its tags.
    async fn retag(&self, ctx: &Context, cw: &Client, arn: &str, diff: &TagDiff) -> Result<()> {
        let resource = &self.resource();
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
}

impl Resource for Alarm<'_> {
    const KIND: &'static str = KIND;
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

    /// Its fields, the policy it triggers (a policy made in this run has a new ARN), and its
    /// tags.
    fn diff(&self, live: &LiveAlarm) -> Vec<AlarmDiff> {
        let mut d = alarm_diffs(&live.doc, self.doc);
        let want = self.policy_arn.to_string();
        if self
            .policy_arn
            .get()
            .is_none_or(|arn| live.actions != [arn.clone()])
        {
            d.push(AlarmDiff::Field {
                field: AlarmField::Action,
                live: live.actions.join(","),
                want,
            });
        }
        d.extend(self.tags.diff_from(&live.tags).map(AlarmDiff::Tags));
        d
    }

    fn output(_live: &LiveAlarm) {}

    fn created(_: &()) -> Option<String> {
        Some("put".to_string())
    }

    async fn create(&self, ctx: &Context, cw: &Client) -> Result<()> {
        self.put(ctx, cw).await
    }

    /// The whole alarm again when a field differs, then its tags.
    async fn update(
        &self,
        ctx: &Context,
        cw: &Client,
        live: &LiveAlarm,
        diffs: &[AlarmDiff],
    ) -> Result<()> {
        if diffs.iter().any(|d| matches!(d, AlarmDiff::Field { .. })) {
            self.put(ctx, cw).await?;
        }
        for diff in diffs {
            if let AlarmDiff::Tags(t) = diff {
                self.retag(ctx, cw, &live.arn, t).await?;
            }
        }
        Ok(())
    }

    async fn delete(ctx: &Context, cw: &Client, live: &LiveAlarm) -> Result<()> {
        delete_all(ctx, cw, std::slice::from_ref(&live.name)).await
    }
}

/// Deletes the alarms `names` (the stack's, at most 100) in one call.
pub(crate) async fn delete_all(ctx: &Context, cw: &Client, names: &[String]) -> Result<()> {
    ctx.call(
        "DeleteAlarms",
        &format!("{KIND} {}", names.join(",")),
        || {
            cw.delete_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .send()
        },
    )
    .await?;
    Ok(())
}
