//! What the scaling layer builds: the scalable target and its policies, as typed values with
//! serde support (unknown keys are errors) and validation that names every field.

use std::collections::{BTreeMap, BTreeSet};

use ecs_core::Problems;
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

/// Autoscaling of the service's desired count.
///
/// ```
/// use ecs_scaling::ScalingSpec;
/// let spec = ScalingSpec::cpu_and_memory(2, 10);
/// assert_eq!(spec.cpu.as_ref().unwrap().target, 70.0);
/// assert_eq!(spec.memory.as_ref().unwrap().target, 80.0);
/// assert!(spec.validate(Some(2), true).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ScalingSpec {
    /// The fewest tasks.
    pub min: u32,
    /// The most tasks.
    pub max: u32,
    /// Track average CPU utilisation (%).
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub cpu: Option<TargetTracking>,
    /// Track average memory utilisation (%).
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub memory: Option<TargetTracking>,
    /// Track ALB requests per target (requests per minute per task).
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub requests_per_target: Option<TargetTracking>,
    /// Step scaling on custom CloudWatch metrics.
    #[builder(default)]
    #[serde(default)]
    pub step: Vec<StepPolicy>,
    /// Scheduled changes of min/max (e.g. scale down off-hours).
    #[builder(default)]
    #[serde(default)]
    pub scheduled: Vec<ScheduledScaling>,
}

impl ScalingSpec {
    /// Common practice: CPU at 70 %, memory at 80 %, between `min` and `max` tasks.
    pub fn cpu_and_memory(min: u32, max: u32) -> Self {
        Self::builder()
            .min(min)
            .max(max)
            .cpu(TargetTracking::builder().target(70.0).build())
            .memory(TargetTracking::builder().target(80.0).build())
            .build()
    }

    /// Checks every field; `desired` is the service's desired count when known, and
    /// `load_balancer` whether the service has one (needed for request-count tracking).
    pub fn validate(&self, desired: Option<u32>, load_balancer: bool) -> Result<(), Problems> {
        let mut p = Problems::new();
        if self.max == 0 || self.max > 5000 {
            p.push("scaling.max", "must be between 1 and 5000");
        }
        if self.min > self.max {
            p.push("scaling.min", format!("must be at most max ({})", self.max));
        }
        if let Some(d) = desired {
            if d < self.min || d > self.max {
                p.push(
                    "service.desired_count",
                    format!("{d} is outside the scaling range {}–{}", self.min, self.max),
                );
            }
        }
        for (field, t, percent) in [
            ("scaling.cpu", &self.cpu, true),
            ("scaling.memory", &self.memory, true),
            (
                "scaling.requests_per_target",
                &self.requests_per_target,
                false,
            ),
        ] {
            let Some(t) = t else { continue };
            if !t.target.is_finite() || t.target <= 0.0 || (percent && t.target > 100.0) {
                p.push(
                    format!("{field}.target"),
                    if percent {
                        "must be a percentage in (0, 100]"
                    } else {
                        "must be above 0"
                    },
                );
            }
            for (name, v) in [
                ("scale_in_cooldown", t.scale_in_cooldown),
                ("scale_out_cooldown", t.scale_out_cooldown),
            ] {
                if v > 86_400 {
                    p.push(format!("{field}.{name}"), "must be at most 86400 seconds");
                }
            }
        }
        if self.requests_per_target.is_some() && !load_balancer {
            p.push("scaling.requests_per_target", "needs a load balancer");
        }
        let mut names = BTreeSet::new();
        for (i, s) in self.step.iter().enumerate() {
            let f = format!("scaling.step[{i}]");
            if !valid_name(&s.name) {
                p.push(
                    format!("{f}.name"),
                    "must be 1-64 lower-case letters, digits and hyphens",
                );
            } else if !names.insert(format!("step-{}", s.name)) {
                p.push(format!("{f}.name"), format!("`{}` is used twice", s.name));
            }
            if s.metric.namespace.is_empty() || s.metric.name.is_empty() {
                p.push(format!("{f}.metric"), "needs a namespace and a name");
            }
            if s.steps.is_empty() {
                p.push(format!("{f}.steps"), "at least one step is required");
            }
            if !s.threshold.is_finite() {
                p.push(format!("{f}.threshold"), "must be a finite number");
            }
            let mut bounds: Vec<(Option<f64>, Option<f64>)> =
                s.steps.iter().map(|x| (x.lower, x.upper)).collect();
            bounds.sort_by(|a, b| a.0.unwrap_or(f64::MIN).total_cmp(&b.0.unwrap_or(f64::MIN)));
            for (j, (lo, hi)) in bounds.iter().enumerate() {
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    if lo >= hi {
                        p.push(
                            format!("{f}.steps"),
                            "each step's lower bound must be below its upper bound",
                        );
                    }
                }
                if let Some((_, next_lo)) = bounds.get(j + 1).map(|n| ((), n.0)) {
                    if hi.is_none() || next_lo != *hi {
                        p.push(format!("{f}.steps"), "steps must not overlap or leave gaps");
                    }
                }
            }
            if s.period == 0 || !(matches!(s.period, 10 | 20 | 30) || s.period.is_multiple_of(60)) {
                p.push(
                    format!("{f}.period"),
                    "must be 10, 20, 30 or a multiple of 60 seconds",
                );
            }
            if s.evaluation_periods == 0 {
                p.push(format!("{f}.evaluation_periods"), "must be at least 1");
            }
        }
        for (i, s) in self.scheduled.iter().enumerate() {
            let f = format!("scaling.scheduled[{i}]");
            if !valid_name(&s.name) {
                p.push(
                    format!("{f}.name"),
                    "must be 1-64 lower-case letters, digits and hyphens",
                );
            } else if !names.insert(s.name.clone()) {
                p.push(format!("{f}.name"), format!("`{}` is used twice", s.name));
            }
            let sched = s.schedule.as_str();
            let ok = ["cron(", "rate(", "at("]
                .iter()
                .any(|p| sched.starts_with(p))
                && sched.ends_with(')');
            if !ok {
                p.push(
                    format!("{f}.schedule"),
                    "must be `cron(…)`, `rate(…)` or `at(…)`",
                );
            } else if let Some(fields) = sched
                .strip_prefix("cron(")
                .and_then(|r| r.strip_suffix(')'))
            {
                if fields.split_whitespace().count() != 6 {
                    p.push(format!("{f}.schedule"), "a cron expression has 6 fields: minutes hours day-of-month month day-of-week year");
                }
            }
            if s.timezone
                .as_deref()
                .is_some_and(|z| z.is_empty() || z.contains(' '))
            {
                p.push(
                    format!("{f}.timezone"),
                    "must be an IANA time zone such as `Europe/Paris`",
                );
            }
            if s.min.is_none() && s.max.is_none() {
                p.push(f.clone(), "needs min, max or both");
            }
            if let (Some(lo), Some(hi)) = (s.min, s.max) {
                if lo > hi {
                    p.push(format!("{f}.min"), "must be at most max");
                }
            }
        }
        p.into_result()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A target-tracking policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct TargetTracking {
    /// The value to hold the metric at.
    pub target: f64,
    /// Seconds after a scale-in before another (default 300).
    #[builder(default = 300)]
    #[serde(default = "three_hundred")]
    pub scale_in_cooldown: u32,
    /// Seconds after a scale-out before another (default 60).
    #[builder(default = 60)]
    #[serde(default = "sixty")]
    pub scale_out_cooldown: u32,
    /// Never scale in through this policy.
    #[builder(default)]
    #[serde(default)]
    pub disable_scale_in: bool,
}

fn three_hundred() -> u32 {
    300
}
fn sixty() -> u32 {
    60
}

/// A custom CloudWatch metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct CustomMetric {
    /// The namespace, e.g. `MyApp`.
    #[builder(setter(into))]
    pub namespace: String,
    /// The metric name, e.g. `QueueDepth`.
    #[builder(setter(into))]
    pub name: String,
    /// Its dimensions.
    #[builder(default)]
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// The statistic (`Average`, `Sum`, `Maximum`, `Minimum`, `SampleCount`; default `Average`).
    #[builder(default = "Average".to_string(), setter(into))]
    #[serde(default = "average")]
    pub statistic: String,
}

fn average() -> String {
    "Average".to_string()
}

/// Step scaling driven by an alarm on a custom metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct StepPolicy {
    /// The policy's short name (names the policy and its alarm).
    #[builder(setter(into))]
    pub name: String,
    /// The metric.
    pub metric: CustomMetric,
    /// The alarm fires when the metric is at or above this value (or below, with `below`).
    pub threshold: f64,
    /// Fire when the metric is below the threshold instead of above.
    #[builder(default)]
    #[serde(default)]
    pub below: bool,
    /// The steps, relative to the threshold.
    pub steps: Vec<Step>,
    /// Seconds between scaling activities (default 60).
    #[builder(default = 60)]
    #[serde(default = "sixty")]
    pub cooldown: u32,
    /// The alarm's period in seconds (default 60).
    #[builder(default = 60)]
    #[serde(default = "sixty")]
    pub period: u32,
    /// Periods the alarm evaluates (default 2).
    #[builder(default = 2)]
    #[serde(default = "two")]
    pub evaluation_periods: u32,
}

fn two() -> u32 {
    2
}

/// One step: when the metric minus the threshold is within [lower, upper), add `adjustment`
/// tasks (negative to remove).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Lower bound (none = −∞).
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub lower: Option<f64>,
    /// Upper bound (none = +∞).
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub upper: Option<f64>,
    /// Tasks to add (or remove).
    pub adjustment: i32,
}

/// A scheduled change of the scaling range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ScheduledScaling {
    /// The action's short name.
    #[builder(setter(into))]
    pub name: String,
    /// `cron(0 20 ? * MON-FRI *)`, `rate(1 day)` or `at(2026-12-24T18:00:00)`.
    #[builder(setter(into))]
    pub schedule: String,
    /// The time zone of the schedule (default UTC), e.g. `Europe/Paris`.
    #[builder(default, setter(strip_option, into))]
    #[serde(default)]
    pub timezone: Option<String>,
    /// The new minimum.
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub min: Option<u32>,
    /// The new maximum.
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub max: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn problems_name_their_fields() {
        let mut s = ScalingSpec::cpu_and_memory(5, 3);
        s.cpu.as_mut().unwrap().target = 150.0;
        s.requests_per_target = Some(TargetTracking::builder().target(0.0).build());
        s.scheduled.push(
            ScheduledScaling::builder()
                .name("night")
                .schedule("cron(0 20 * *)")
                .build(),
        );
        let p = s.validate(Some(9), false).unwrap_err();
        for f in [
            "scaling.min",
            "service.desired_count",
            "scaling.cpu.target",
            "scaling.requests_per_target.target",
            "scaling.requests_per_target",
            "scaling.scheduled[0].schedule",
            "scaling.scheduled[0]",
        ] {
            assert!(p.mentions(f), "{f}: {p}");
        }
    }

    #[test]
    fn steps_must_tile_the_line() {
        let metric = CustomMetric::builder()
            .namespace("App")
            .name("Queue")
            .build();
        let good = StepPolicy::builder()
            .name("queue")
            .metric(metric.clone())
            .threshold(100.0)
            .steps(vec![
                Step::builder().lower(0.0).upper(50.0).adjustment(1).build(),
                Step::builder().lower(50.0).adjustment(3).build(),
            ])
            .build();
        let mut s = ScalingSpec::builder()
            .min(1)
            .max(4)
            .step(vec![good.clone()])
            .build();
        s.validate(None, false).unwrap();
        s.step[0].steps[1].lower = Some(60.0);
        assert!(s
            .validate(None, false)
            .unwrap_err()
            .mentions("scaling.step[0].steps"));
    }

    proptest! {
        #[test]
        fn ranges(min in 0u32..20, max in 0u32..20, desired in 0u32..20, cpu in -10.0f64..150.0) {
            let mut s = ScalingSpec::cpu_and_memory(min, max);
            s.cpu.as_mut().unwrap().target = cpu;
            let ok = max >= 1 && min <= max && (min..=max).contains(&desired) && cpu > 0.0 && cpu <= 100.0;
            prop_assert_eq!(s.validate(Some(desired), true).is_ok(), ok);
        }
    }
}
