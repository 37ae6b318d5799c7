//! What the observability layer builds: the log group, the alarms and the dashboard, as typed
//! values with serde support (unknown keys are errors) and validation that names every field.

use std::collections::BTreeMap;
use std::fmt;

use ecs_core::Problems;
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

/// The retention periods (days) CloudWatch Logs accepts.
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Logs, alarms and dashboard of one stack.
///
/// ```
/// use ecs_observe::{Monitoring, ObserveSpec};
/// let spec = ObserveSpec::builder()
///     .monitoring(Monitoring::Advanced)
///     .alarm_actions(vec!["arn:aws:sns:us-east-1:123456789012:ops".into()])
///     .build();
/// assert!(spec.validate().is_ok());
/// assert_eq!(spec.log_retention_days, 30);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct ObserveSpec {
    /// How long logs are kept, in days (one of [`RETENTION_DAYS`]; default 30).
    #[builder(default = 30)]
    pub log_retention_days: u32,
    /// Encrypt the log group with this KMS key ARN.
    #[builder(default, setter(strip_option, into))]
    pub log_kms_key: Option<String>,
    /// `basic`: CPU and memory alarms, no dashboard; `advanced` (default): every alarm and
    /// the dashboard.
    #[builder(default)]
    pub monitoring: Monitoring,
    /// The alarms and their settings (each can be turned off with `null`).
    #[builder(default)]
    pub alarms: Alarms,
    /// SNS topic ARNs notified when an alarm fires.
    #[builder(default)]
    pub alarm_actions: Vec<String>,
    /// SNS topic ARNs notified when an alarm recovers.
    #[builder(default)]
    pub ok_actions: Vec<String>,
}

impl Default for ObserveSpec {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// How much monitoring a stack gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitoring {
    /// CPU and memory alarms only; no dashboard.
    Basic,
    /// Every alarm and the dashboard.
    #[default]
    Advanced,
}

/// The kinds of alarm the layer knows how to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Service average CPU above the threshold (%).
    CpuHigh,
    /// Service average memory above the threshold (%).
    MemoryHigh,
    /// Target 5XX responses per period above the threshold.
    Target5xx,
    /// Target response time p99 above the threshold (seconds).
    LatencyP99,
    /// Unhealthy targets above the threshold.
    UnhealthyHosts,
    /// Running tasks below desired tasks (Container Insights).
    RunningBelowDesired,
}

impl AlarmKind {
    /// Every kind, in order.
    pub const ALL: [AlarmKind; 6] = [
        AlarmKind::CpuHigh,
        AlarmKind::MemoryHigh,
        AlarmKind::Target5xx,
        AlarmKind::LatencyP99,
        AlarmKind::UnhealthyHosts,
        AlarmKind::RunningBelowDesired,
    ];

    /// The suffix of the alarm's name, e.g. `cpu-high`.
    pub fn suffix(self) -> &'static str {
        match self {
            AlarmKind::CpuHigh => "cpu-high",
            AlarmKind::MemoryHigh => "memory-high",
            AlarmKind::Target5xx => "target-5xx",
            AlarmKind::LatencyP99 => "latency-p99",
            AlarmKind::UnhealthyHosts => "unhealthy-hosts",
            AlarmKind::RunningBelowDesired => "running-below-desired",
        }
    }

    /// Whether the alarm needs a load balancer.
    pub fn needs_load_balancer(self) -> bool {
        matches!(
            self,
            AlarmKind::Target5xx | AlarmKind::LatencyP99 | AlarmKind::UnhealthyHosts
        )
    }

    /// The defaults from common practice: CPU and memory > 80 %, 5XX > 10 per minute, p99 >
    /// 2 s, any unhealthy host, running < desired; 1-minute periods.
    pub fn default_spec(self) -> AlarmSpec {
        let (threshold, evaluation_periods, datapoints) = match self {
            AlarmKind::CpuHigh | AlarmKind::MemoryHigh => (80.0, 5, 3),
            AlarmKind::Target5xx => (10.0, 3, 2),
            AlarmKind::LatencyP99 => (2.0, 5, 3),
            AlarmKind::UnhealthyHosts => (0.0, 3, 2),
            AlarmKind::RunningBelowDesired => (0.0, 5, 5),
        };
        AlarmSpec {
            threshold,
            period: 60,
            evaluation_periods,
            datapoints_to_alarm: datapoints,
            treat_missing_data: if matches!(self, AlarmKind::Target5xx) {
                TreatMissingData::NotBreaching
            } else {
                TreatMissingData::Missing
            },
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// One alarm's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct AlarmSpec {
    /// The threshold (per kind: %, count, seconds).
    pub threshold: f64,
    /// The period in seconds: 10, 20, 30 or a multiple of 60 (default 60).
    #[builder(default = 60)]
    #[serde(default = "sixty")]
    pub period: u32,
    /// Periods evaluated.
    #[builder(default = 5)]
    #[serde(default = "five")]
    pub evaluation_periods: u32,
    /// Breaching periods among them that fire the alarm (≤ `evaluation_periods`).
    #[builder(default = 3)]
    #[serde(default = "three")]
    pub datapoints_to_alarm: u32,
    /// What missing data counts as.
    #[builder(default)]
    #[serde(default)]
    pub treat_missing_data: TreatMissingData,
}

fn sixty() -> u32 {
    60
}
fn five() -> u32 {
    5
}
fn three() -> u32 {
    3
}

/// What missing data counts as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreatMissingData {
    /// Neither good nor bad (AWS's default).
    #[default]
    Missing,
    /// Good.
    NotBreaching,
    /// Bad.
    Breaching,
    /// Keep the current state.
    Ignore,
}

impl TreatMissingData {
    /// The name CloudWatch uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissingData::Missing => "missing",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::Ignore => "ignore",
        }
    }
}

/// The alarms: each is on with its defaults unless set to `None` (`null` in a manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct Alarms {
    /// Service CPU high.
    #[builder(default = Some(AlarmKind::CpuHigh.default_spec()))]
    pub cpu_high: Option<AlarmSpec>,
    /// Service memory high.
    #[builder(default = Some(AlarmKind::MemoryHigh.default_spec()))]
    pub memory_high: Option<AlarmSpec>,
    /// Target 5XX count high.
    #[builder(default = Some(AlarmKind::Target5xx.default_spec()))]
    pub target_5xx: Option<AlarmSpec>,
    /// Target response time p99 high.
    #[builder(default = Some(AlarmKind::LatencyP99.default_spec()))]
    pub latency_p99: Option<AlarmSpec>,
    /// Unhealthy targets.
    #[builder(default = Some(AlarmKind::UnhealthyHosts.default_spec()))]
    pub unhealthy_hosts: Option<AlarmSpec>,
    /// Running tasks below desired.
    #[builder(default = Some(AlarmKind::RunningBelowDesired.default_spec()))]
    pub running_below_desired: Option<AlarmSpec>,
}

impl Default for Alarms {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl Alarms {
    /// The alarm of `kind`, if on.
    pub fn get(&self, kind: AlarmKind) -> Option<&AlarmSpec> {
        match kind {
            AlarmKind::CpuHigh => self.cpu_high.as_ref(),
            AlarmKind::MemoryHigh => self.memory_high.as_ref(),
            AlarmKind::Target5xx => self.target_5xx.as_ref(),
            AlarmKind::LatencyP99 => self.latency_p99.as_ref(),
            AlarmKind::UnhealthyHosts => self.unhealthy_hosts.as_ref(),
            AlarmKind::RunningBelowDesired => self.running_below_desired.as_ref(),
        }
    }
}

fn field_of(kind: AlarmKind) -> &'static str {
    match kind {
        AlarmKind::CpuHigh => "cpu_high",
        AlarmKind::MemoryHigh => "memory_high",
        AlarmKind::Target5xx => "target_5xx",
        AlarmKind::LatencyP99 => "latency_p99",
        AlarmKind::UnhealthyHosts => "unhealthy_hosts",
        AlarmKind::RunningBelowDesired => "running_below_desired",
    }
}

/// Whether `period` is a valid alarm period: 10, 20, 30 or a multiple of 60.
pub fn valid_period(period: u32) -> bool {
    matches!(period, 10 | 20 | 30) || (period >= 60 && period.is_multiple_of(60))
}

impl ObserveSpec {
    /// The SNS topics the alarms notify (alarm and OK actions), each once, sorted.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self
            .alarm_actions
            .iter()
            .chain(&self.ok_actions)
            .map(String::as_str)
            .filter(|a| a.starts_with("arn:") && a.split(':').nth(2) == Some("sns"))
            .collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// The alarms this spec turns on, given whether there is a load balancer.
    pub fn enabled_alarms(&self, load_balancer: bool) -> BTreeMap<AlarmKind, &AlarmSpec> {
        AlarmKind::ALL
            .into_iter()
            .filter(|k| {
                self.monitoring == Monitoring::Advanced
                    || matches!(k, AlarmKind::CpuHigh | AlarmKind::MemoryHigh)
            })
            .filter(|k| load_balancer || !k.needs_load_balancer())
            .filter_map(|k| self.alarms.get(k).map(|s| (k, s)))
            .collect()
    }

    /// Checks every field; returns every problem at once, each naming its field.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::new();
        if !RETENTION_DAYS.contains(&self.log_retention_days) {
            p.push(
                "log_retention_days",
                format!(
                    "{} is not a retention CloudWatch Logs accepts ({})",
                    self.log_retention_days,
                    RETENTION_DAYS
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if self
            .log_kms_key
            .as_deref()
            .is_some_and(|k| !k.starts_with("arn:"))
        {
            p.push("log_kms_key", "must be a KMS key ARN");
        }
        for (field, arns) in [
            ("alarm_actions", &self.alarm_actions),
            ("ok_actions", &self.ok_actions),
        ] {
            if arns.len() > 5 {
                p.push(field, "at most 5 actions are allowed");
            }
            for (i, arn) in arns.iter().enumerate() {
                if !arn.starts_with("arn:") || !arn.contains(":sns:") {
                    p.push(format!("{field}[{i}]"), "must be an SNS topic ARN");
                }
            }
        }
        for kind in AlarmKind::ALL {
            let Some(a) = self.alarms.get(kind) else {
                continue;
            };
            let f = format!("alarms.{}", field_of(kind));
            if !valid_period(a.period) {
                p.push(
                    format!("{f}.period"),
                    "must be 10, 20, 30 or a multiple of 60 seconds",
                );
            }
            if a.evaluation_periods == 0 {
                p.push(format!("{f}.evaluation_periods"), "must be at least 1");
            }
            if a.period < 3600 && u64::from(a.period) * u64::from(a.evaluation_periods) > 86_400 {
                p.push(
                    format!("{f}.evaluation_periods"),
                    "period × evaluation periods must be at most 86400 s (one day) for periods under an hour",
                );
            }
            if a.datapoints_to_alarm == 0 || a.datapoints_to_alarm > a.evaluation_periods {
                p.push(
                    format!("{f}.datapoints_to_alarm"),
                    "must be between 1 and evaluation_periods",
                );
            }
            if !a.threshold.is_finite() || a.threshold < 0.0 {
                p.push(
                    format!("{f}.threshold"),
                    "must be a finite number, at least 0",
                );
            }
            if matches!(kind, AlarmKind::CpuHigh | AlarmKind::MemoryHigh) && a.threshold > 100.0 {
                p.push(format!("{f}.threshold"), "is a percentage: at most 100");
            }
        }
        p.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basic_monitoring_has_cpu_and_memory_only() {
        let spec = ObserveSpec::builder().monitoring(Monitoring::Basic).build();
        let kinds: Vec<AlarmKind> = spec.enabled_alarms(true).into_keys().collect();
        assert_eq!(kinds, [AlarmKind::CpuHigh, AlarmKind::MemoryHigh]);
        let spec = ObserveSpec::default();
        assert_eq!(spec.enabled_alarms(true).len(), 6);
        assert_eq!(spec.enabled_alarms(false).len(), 3);
    }

    #[test]
    fn problems_name_their_fields() {
        let mut spec = ObserveSpec::builder()
            .log_retention_days(31)
            .alarm_actions(vec!["topic".into()])
            .build();
        spec.alarms.cpu_high = Some(
            AlarmSpec::builder()
                .threshold(120.0)
                .period(45)
                .datapoints_to_alarm(9)
                .build(),
        );
        let p = spec.validate().unwrap_err();
        for f in [
            "log_retention_days",
            "alarm_actions[0]",
            "alarms.cpu_high.threshold",
            "alarms.cpu_high.period",
            "alarms.cpu_high.datapoints_to_alarm",
        ] {
            assert!(p.mentions(f), "{f}: {p}");
        }
    }

    #[test]
    fn manifests_can_turn_alarms_off_and_reject_unknown_keys() {
        let spec: ObserveSpec = serde_json::from_str(
            r#"{"alarms": {"latency_p99": null, "cpu_high": {"threshold": 70}}}"#,
        )
        .unwrap();
        assert!(spec.alarms.latency_p99.is_none());
        assert_eq!(spec.alarms.cpu_high.as_ref().unwrap().threshold, 70.0);
        assert!(spec.alarms.memory_high.is_some());
        let err = serde_json::from_str::<ObserveSpec>(r#"{"retention": 30}"#).unwrap_err();
        assert!(err.to_string().contains("retention"), "{err}");
    }

    proptest! {
        #[test]
        fn periods_and_retention_follow_the_tables(period in 0u32..100_000, evals in 0u32..3000, days in 0u32..4000) {
            let mut spec = ObserveSpec::builder().log_retention_days(days).build();
            spec.alarms.cpu_high = Some(AlarmSpec::builder().threshold(50.0).period(period).evaluation_periods(evals).datapoints_to_alarm(1).build());
            let period_ok = matches!(period, 10 | 20 | 30) || (period >= 60 && period % 60 == 0);
            let evals_ok = evals >= 1 && (period >= 3600 || u64::from(period) * u64::from(evals) <= 86_400);
            let days_ok = RETENTION_DAYS.contains(&days);
            prop_assert_eq!(spec.validate().is_ok(), period_ok && evals_ok && days_ok);
        }
    }
}
