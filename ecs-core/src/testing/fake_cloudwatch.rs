//! A stateful fake of CloudWatch alarms and dashboards (feature `fake-cloudwatch`): what a
//! mocked CloudWatch client answers from, and what its mutating calls change.
//!
//! [`FakeCloudWatch`] holds a [`CloudWatchState`] (alarms as they were put, with their tags
//! and state; dashboard bodies) and builds the mock rules that answer from it; every call is
//! recorded, input included, in the [`Journal`] the fake was made with. As CloudWatch does:
//! * `PutMetricAlarm` refuses an input CloudWatch refuses (a metric and metric math at once,
//!   a missing statistic, a math query set where not exactly one query returns data, …), and
//!   an update keeps the alarm's tags (the tags of an update are ignored);
//! * `DescribeAlarms` pages its answers ([`CloudWatchState::page_size`]) and refuses names and
//!   a prefix together;
//! * `DeleteAlarms` and `DeleteDashboards` delete nothing when one name is unknown;
//! * `PutDashboard` refuses a body that is not a JSON object with `widgets`;
//! * tags are read, set and removed by the alarm's ARN ([`alarm_arn`]).
//!
//! ```
//! use ecs_core::testing::{FakeCloudWatch, Journal};
//! use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeCloudWatch::new(&Journal::default(), Default::default());
//! fake.client()
//!     .put_metric_alarm()
//!     .alarm_name("web-cpu-high")
//!     .namespace("AWS/ECS")
//!     .metric_name("CPUUtilization")
//!     .statistic(Statistic::Average)
//!     .period(60)
//!     .evaluation_periods(3)
//!     .threshold(80.0)
//!     .comparison_operator(ComparisonOperator::GreaterThanThreshold)
//!     .send()
//!     .await
//!     .unwrap();
//! assert_eq!(fake.state().alarms["web-cpu-high"].input.threshold(), Some(80.0));
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

// The rules answer with the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::error::ErrorMetadata;
use aws_sdk_cloudwatch::operation::delete_alarms::*;
use aws_sdk_cloudwatch::operation::delete_dashboards::*;
use aws_sdk_cloudwatch::operation::describe_alarms::*;
use aws_sdk_cloudwatch::operation::get_dashboard::*;
use aws_sdk_cloudwatch::operation::list_tags_for_resource::*;
use aws_sdk_cloudwatch::operation::put_dashboard::*;
use aws_sdk_cloudwatch::operation::put_metric_alarm::*;
use aws_sdk_cloudwatch::operation::tag_resource::*;
use aws_sdk_cloudwatch::operation::untag_resource::*;
use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm, StateValue, Tag};
use aws_sdk_cloudwatch::Client;

use super::{aws_error as error, mock, Rule, ACCOUNT, REGION};

/// The ARN of the alarm `name`.
pub fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
}

/// One alarm: the `PutMetricAlarm` input that made it what it is, its tags, its state.
#[derive(Debug, Clone)]
pub struct Alarm {
    /// The input of the last `PutMetricAlarm` (a test may change it to make drift).
    pub input: PutMetricAlarmInput,
    /// Its tags (those of the `PutMetricAlarm` that created it, then `TagResource`'s).
    pub tags: Vec<Tag>,
    /// Its state (`INSUFFICIENT_DATA` when put).
    pub state: StateValue,
}

impl Alarm {
    /// The alarm as `DescribeAlarms` returns it.
    pub fn described(&self, name: &str) -> MetricAlarm {
        let i = &self.input;
        let non_empty = |v: &[Dimension]| (!v.is_empty()).then(|| v.to_vec());
        MetricAlarm::builder()
            .alarm_name(name)
            .alarm_arn(alarm_arn(name))
            .set_alarm_description(i.alarm_description().map(str::to_string))
            .actions_enabled(i.actions_enabled().unwrap_or(true))
            .set_ok_actions(Some(i.ok_actions().to_vec()))
            .set_alarm_actions(Some(i.alarm_actions().to_vec()))
            .set_insufficient_data_actions(Some(i.insufficient_data_actions().to_vec()))
            .state_value(self.state.clone())
            .set_metric_name(i.metric_name().map(str::to_string))
            .set_namespace(i.namespace().map(str::to_string))
            .set_statistic(i.statistic().cloned())
            .set_extended_statistic(i.extended_statistic().map(str::to_string))
            .set_dimensions(non_empty(i.dimensions()))
            .set_period(i.period())
            .set_evaluation_periods(i.evaluation_periods())
            .set_datapoints_to_alarm(i.datapoints_to_alarm())
            .set_threshold(i.threshold())
            .set_comparison_operator(i.comparison_operator().cloned())
            .set_treat_missing_data(i.treat_missing_data().map(str::to_string))
            .set_metrics((!i.metrics().is_empty()).then(|| i.metrics().to_vec()))
            .build()
    }
}

/// What the fake account holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CloudWatchState {
    /// The alarms, by name.
    pub alarms: BTreeMap<String, Alarm>,
    /// The dashboards' bodies, by name.
    pub dashboards: BTreeMap<String, String>,
    /// Alarms per `DescribeAlarms` page (CloudWatch's default is 50; a test sets fewer to
    /// exercise paging).
    pub page_size: usize,
}

impl Default for CloudWatchState {
    fn default() -> Self {
        Self {
            alarms: BTreeMap::new(),
            dashboards: BTreeMap::new(),
            page_size: 50,
        }
    }
}

/// Why CloudWatch would refuse a `PutMetricAlarm` input, if it would.
pub fn put_problem(r: &PutMetricAlarmInput) -> Option<(&'static str, &'static str)> {
    const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
    let single = r.metric_name().is_some() || r.namespace().is_some();
    let math = !r.metrics().is_empty();
    if r.alarm_name().is_none_or(str::is_empty) {
        return Some(("ValidationError", "AlarmName is required"));
    }
    if single == math {
        return Some((
            "InvalidParameterCombination",
            "Exactly one of MetricName and Metrics must be specified",
        ));
    }
    if r.evaluation_periods().is_none()
        || r.threshold().is_none()
        || r.comparison_operator().is_none()
    {
        return Some((
            "ValidationError",
            "EvaluationPeriods, Threshold and ComparisonOperator are required",
        ));
    }
    if single {
        if r.metric_name().is_none() || r.namespace().is_none() || r.period().is_none() {
            return Some((
                "ValidationError",
                "MetricName, Namespace and Period are required",
            ));
        }
        if r.statistic().is_some() == r.extended_statistic().is_some() {
            return Some((
                "InvalidParameterCombination",
                "Exactly one of Statistic and ExtendedStatistic must be specified",
            ));
        }
        if r.statistic()
            .is_some_and(|s| !STATISTICS.contains(&s.as_str()))
        {
            return Some(("InvalidParameterValue", "Unknown Statistic"));
        }
    } else {
        if r.period().is_some() || r.statistic().is_some() || !r.dimensions().is_empty() {
            return Some((
                "InvalidParameterCombination",
                "Period, Statistic and Dimensions must not be set with Metrics",
            ));
        }
        let returning = r
            .metrics()
            .iter()
            .filter(|q| q.return_data() != Some(false))
            .count();
        if returning != 1 {
            return Some((
                "ValidationError",
                "Exactly one element of the Metrics array must return data",
            ));
        }
    }
    None
}

fake_handle! {
    /// A stateful fake of CloudWatch alarms and dashboards over a [`CloudWatchState`]. See the
    /// [module](self) docs.
    FakeCloudWatch,
    CloudWatchState,
    aws_sdk_cloudwatch
}

impl FakeCloudWatch {
    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        fn no_dashboard(name: &str) -> ErrorMetadata {
            error(
                "ResourceNotFound",
                format!("Dashboard {name} does not exist"),
            )
        }
        fn alarm_of<'a>(
            s: &'a mut CloudWatchState,
            arn: &str,
        ) -> Result<&'a mut Alarm, ErrorMetadata> {
            s.alarms
                .iter_mut()
                .find(|(name, _)| alarm_arn(name) == arn)
                .map(|(_, a)| a)
                .ok_or_else(|| {
                    error(
                        "ResourceNotFoundException",
                        format!("Alarm {arn} does not exist"),
                    )
                })
        }
        vec![
            j.on(
                w,
                "DescribeAlarms",
                mock!(Client::describe_alarms),
                |s, r, _| {
                    let (prefix, names) = (r.alarm_name_prefix(), r.alarm_names());
                    if prefix.is_some() && !names.is_empty() {
                        return Err(DescribeAlarmsError::generic(error(
                            "InvalidParameterCombination",
                            "AlarmNames and AlarmNamePrefix cannot be used together",
                        )));
                    }
                    let matching: Vec<MetricAlarm> = s
                        .alarms
                        .iter()
                        .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
                        .filter(|(name, _)| names.is_empty() || names.contains(*name))
                        .map(|(name, a)| a.described(name))
                        .collect();
                    let start = match r.next_token() {
                        None => 0,
                        Some(token) => token.parse::<usize>().map_err(|_| {
                            DescribeAlarmsError::generic(error(
                                "InvalidNextToken",
                                "The next token is invalid",
                            ))
                        })?,
                    }
                    .min(matching.len());
                    let end = (start + s.page_size.max(1)).min(matching.len());
                    Ok(DescribeAlarmsOutput::builder()
                        .set_metric_alarms(Some(matching[start..end].to_vec()))
                        .set_next_token((end < matching.len()).then(|| end.to_string()))
                        .build())
                },
            ),
            j.on(
                w,
                "ListTagsForResource",
                mock!(Client::list_tags_for_resource),
                |s, r, _| {
                    let a = alarm_of(s, r.resource_arn().unwrap_or_default())
                        .map_err(ListTagsForResourceError::generic)?;
                    Ok(ListTagsForResourceOutput::builder()
                        .set_tags(Some(a.tags.clone()))
                        .build())
                },
            ),
            j.on(w, "TagResource", mock!(Client::tag_resource), |s, r, _| {
                let a = alarm_of(s, r.resource_arn().unwrap_or_default())
                    .map_err(TagResourceError::generic)?;
                for t in r.tags() {
                    a.tags.retain(|x| x.key() != t.key());
                    a.tags.push(t.clone());
                }
                Ok(TagResourceOutput::builder().build())
            }),
            j.on(
                w,
                "UntagResource",
                mock!(Client::untag_resource),
                |s, r, _| {
                    let a = alarm_of(s, r.resource_arn().unwrap_or_default())
                        .map_err(UntagResourceError::generic)?;
                    a.tags
                        .retain(|x| !r.tag_keys().iter().any(|k| Some(k.as_str()) == x.key()));
                    Ok(UntagResourceOutput::builder().build())
                },
            ),
            j.on(
                w,
                "PutMetricAlarm",
                mock!(Client::put_metric_alarm),
                |s, r, _| {
                    if let Some((code, message)) = put_problem(r) {
                        return Err(PutMetricAlarmError::generic(error(code, message)));
                    }
                    let name = r.alarm_name().unwrap_or_default();
                    match s.alarms.get_mut(name) {
                        // As in AWS, tags given when updating an alarm are ignored.
                        Some(a) => a.input = r.clone(),
                        None => {
                            s.alarms.insert(
                                name.to_string(),
                                Alarm {
                                    input: r.clone(),
                                    tags: r.tags().to_vec(),
                                    state: StateValue::InsufficientData,
                                },
                            );
                        }
                    }
                    Ok(PutMetricAlarmOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteAlarms",
                mock!(Client::delete_alarms),
                |s, r, _| {
                    if let Some(missing) =
                        r.alarm_names().iter().find(|n| !s.alarms.contains_key(*n))
                    {
                        return Err(DeleteAlarmsError::generic(error(
                            "ResourceNotFound",
                            format!("Alarm {missing} does not exist"),
                        )));
                    }
                    for name in r.alarm_names() {
                        s.alarms.remove(name);
                    }
                    Ok(DeleteAlarmsOutput::builder().build())
                },
            ),
            j.on(
                w,
                "GetDashboard",
                mock!(Client::get_dashboard),
                |s, r, _| {
                    let name = r.dashboard_name().unwrap_or_default();
                    match s.dashboards.get(name) {
                        Some(body) => Ok(GetDashboardOutput::builder()
                            .dashboard_arn(format!(
                                "arn:aws:cloudwatch::{ACCOUNT}:dashboard/{name}"
                            ))
                            .dashboard_name(name)
                            .dashboard_body(body)
                            .build()),
                        None => Err(GetDashboardError::generic(no_dashboard(name))),
                    }
                },
            ),
            j.on(
                w,
                "PutDashboard",
                mock!(Client::put_dashboard),
                |s, r, _| {
                    let (name, body) = (
                        r.dashboard_name().unwrap_or_default(),
                        r.dashboard_body().unwrap_or_default(),
                    );
                    let valid = serde_json::from_str::<serde_json::Value>(body)
                        .is_ok_and(|b| b["widgets"].is_array());
                    if name.is_empty() || !valid {
                        return Err(PutDashboardError::generic(error(
                            "InvalidParameterInput",
                            "The field DashboardBody must be a valid JSON object with widgets",
                        )));
                    }
                    s.dashboards.insert(name.to_string(), body.to_string());
                    Ok(PutDashboardOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteDashboards",
                mock!(Client::delete_dashboards),
                |s, r, _| {
                    if let Some(missing) = r
                        .dashboard_names()
                        .iter()
                        .find(|n| !s.dashboards.contains_key(*n))
                    {
                        return Err(DeleteDashboardsError::generic(no_dashboard(missing)));
                    }
                    for name in r.dashboard_names() {
                        s.dashboards.remove(name);
                    }
                    Ok(DeleteDashboardsOutput::builder().build())
                },
            ),
        ]
    }
}
