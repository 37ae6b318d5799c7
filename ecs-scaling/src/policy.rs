//! Scaling policies: target tracking and step scaling, the stack's by their name prefix.

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, MetricType, PolicyType, PredefinedMetricSpecification,
    ScalableDimension, ServiceNamespace, StepAdjustment, StepScalingPolicyConfiguration,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_applicationautoscaling::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, RetryOn};

use crate::{opt, Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "scaling-policy";

/// A policy in comparable form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PolicyDoc {
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

/// A policy as a read found it: its ARN and what it does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LivePolicy {
    pub(crate) resource_id: String,
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) doc: PolicyDoc,
}

/// A field of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyField {
    Metric,
    ResourceLabel,
    Target,
    ScaleInCooldown,
    ScaleOutCooldown,
    DisableScaleIn,
    Steps,
    Cooldown,
    Aggregation,
    /// Target tracking against step scaling.
    Type,
}

impl PolicyField {
    fn name(self) -> &'static str {
        match self {
            PolicyField::Metric => "metric",
            PolicyField::ResourceLabel => "resource_label",
            PolicyField::Target => "target",
            PolicyField::ScaleInCooldown => "scale_in_cooldown",
            PolicyField::ScaleOutCooldown => "scale_out_cooldown",
            PolicyField::DisableScaleIn => "disable_scale_in",
            PolicyField::Steps => "steps",
            PolicyField::Cooldown => "cooldown",
            PolicyField::Aggregation => "aggregation",
            PolicyField::Type => "type",
        }
    }
}

/// One typed difference of a policy, rendered live and desired: all are set by one
/// `PutScalingPolicy` with the whole desired policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyDiff {
    pub(crate) field: PolicyField,
    pub(crate) live: String,
    pub(crate) want: String,
}

impl Diff for PolicyDiff {
    fn field(&self) -> FieldDiff {
        FieldDiff::new(self.field.name(), &self.live, &self.want)
    }
}

/// The fields of `have` and `want` that differ, each rendered with `show`.
struct Fields(Vec<PolicyDiff>);

impl Fields {
    fn cmp<T: PartialEq>(
        &mut self,
        field: PolicyField,
        have: &T,
        want: &T,
        show: impl Fn(&T) -> String,
    ) {
        if have != want {
            self.0.push(PolicyDiff {
                field,
                live: show(have),
                want: show(want),
            });
        }
    }
}

/// A policy's differences, field by field (a change of kind shows as `type`).
pub(crate) fn policy_diffs(have: &PolicyDoc, want: &PolicyDoc) -> Vec<PolicyDiff> {
    use PolicyField as F;
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
            f.cmp(F::Metric, m1, m2, String::clone);
            f.cmp(F::ResourceLabel, l1, l2, opt);
            f.cmp(F::Target, t1, t2, ToString::to_string);
            f.cmp(F::ScaleInCooldown, i1, i2, ToString::to_string);
            f.cmp(F::ScaleOutCooldown, o1, o2, ToString::to_string);
            f.cmp(F::DisableScaleIn, d1, d2, ToString::to_string);
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
            f.cmp(F::Steps, a1, a2, steps);
            f.cmp(F::Cooldown, c1, c2, ToString::to_string);
            f.cmp(F::Aggregation, g1, g2, String::clone);
        }
        (PolicyDoc::Tracking { .. }, _) => f.0.push(PolicyDiff {
            field: F::Type,
            live: "target tracking".into(),
            want: "step scaling".into(),
        }),
        (PolicyDoc::Step { .. }, _) => f.0.push(PolicyDiff {
            field: F::Type,
            live: "step scaling".into(),
            want: "target tracking".into(),
        }),
    }
    f.0
}

/// A policy as desired, on the target `resource_id`.
#[derive(Debug, Clone)]
pub(crate) struct Policy<'a> {
    pub(crate) resource_id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) doc: &'a PolicyDoc,
}

impl Policy<'_> {
    /// Puts it whole; returns its ARN. Right after registration the target can be briefly
    /// unknown to the policy APIs: retried then.
    async fn put(&self, ctx: &Context, aas: &Client) -> Result<String> {
        let retry = RetryOn::codes(&["ObjectNotFoundException"], Duration::from_secs(60));
        let resource = format!("{KIND} {}", self.name);
        let out = ctx
            .call_retrying("PutScalingPolicy", &resource, &retry, || {
                let req = aas
                    .put_scaling_policy()
                    .policy_name(self.name)
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(self.resource_id)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount);
                match self.doc {
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
}

impl Resource for Policy<'_> {
    const KIND: &'static str = KIND;
    /// Policies cannot be tagged: one is the stack's when it sits on the stack's own service
    /// and carries the stack's name prefix (the read keeps only those).
    const OWNERSHIP: Ownership = Ownership::Mark;
    type Client = Client;
    type Live = LivePolicy;
    type Diff = PolicyDiff;
    /// Its ARN (a step alarm triggers it by it).
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.name.to_string()
    }

    fn owner(_live: &LivePolicy) -> Owner<'_> {
        Owner::Mark(true)
    }

    fn diff(&self, live: &LivePolicy) -> Vec<PolicyDiff> {
        policy_diffs(&live.doc, self.doc)
    }

    fn output(live: &LivePolicy) -> String {
        live.arn.clone()
    }

    fn created(_arn: &String) -> Option<String> {
        Some("put".to_string())
    }

    async fn create(&self, ctx: &Context, aas: &Client) -> Result<String> {
        self.put(ctx, aas).await
    }

    async fn update(
        &self,
        ctx: &Context,
        aas: &Client,
        live: &LivePolicy,
        diffs: &[PolicyDiff],
    ) -> Result<()> {
        self.update_output(ctx, aas, live, diffs).await.map(|_| ())
    }

    /// Puts it whole and returns the ARN the put answered: the one its step alarm must
    /// trigger (AWS keeps a policy's ARN across puts; an emulator may not).
    async fn update_output(
        &self,
        ctx: &Context,
        aas: &Client,
        _live: &LivePolicy,
        _diffs: &[PolicyDiff],
    ) -> Result<String> {
        self.put(ctx, aas).await
    }

    /// Deletes it; one already gone counts as deleted.
    async fn delete(ctx: &Context, aas: &Client, live: &LivePolicy) -> Result<()> {
        match ctx
            .call(
                "DeleteScalingPolicy",
                &format!("{KIND} {}", live.name),
                || {
                    aas.delete_scaling_policy()
                        .policy_name(&live.name)
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&live.resource_id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send()
                },
            )
            .await
        {
            Err(e) if !e.is_code("ObjectNotFoundException") => Err(e.into()),
            _ => Ok(()),
        }
    }
}
