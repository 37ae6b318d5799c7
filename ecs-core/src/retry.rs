//! Retry and polling policies.
//!
//! Every AWS call of every layer goes through [`Context::call`](crate::Context::call), which
//! retries throttling and transient failures within [`RetryPolicy::transient_budget`], and —
//! only where the caller names them with [`RetryOn`] — known eventual-consistency errors (for
//! example `DependencyViolation` while an ENI lingers) within their own budget. Waits go
//! through [`Context::poll`](crate::Context::poll), which backs off, backs off further on
//! throttling, reports progress and gives up at [`PollPolicy::timeout`]. All sleeping goes
//! through the context's [`Clock`](crate::Clock).

use std::time::Duration;

use crate::aws::AwsError;

/// How calls that failed with throttling or a transient error are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay before the first retry; doubled at each retry.
    pub initial_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// How long one call may keep failing with throttling or transient errors before the
    /// error is returned.
    pub transient_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            transient_budget: Duration::from_secs(90),
        }
    }
}

impl RetryPolicy {
    /// The delay to wait after `attempt` (from 1) failed: exponential, capped, with jitter
    /// (between half and all of the nominal delay).
    pub fn delay(&self, attempt: u32) -> Duration {
        let nominal = self
            .initial_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        jitter(nominal)
    }
}

/// Errors that, for one particular call, are known to be eventual-consistency effects and are
/// retried within a budget, e.g. `DependencyViolation` when deleting a subnet whose ENIs are
/// still going away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOn {
    conditions: Vec<(String, Option<String>)>,
    budget: Duration,
}

impl RetryOn {
    /// Retry errors with any of these codes for at most `budget`.
    pub fn codes(codes: &[&str], budget: Duration) -> Self {
        Self {
            conditions: codes.iter().map(|c| (c.to_string(), None)).collect(),
            budget,
        }
    }

    /// Also retry errors with `code` whose message contains `fragment`.
    #[must_use]
    pub fn message(mut self, code: &str, fragment: &str) -> Self {
        self.conditions
            .push((code.to_string(), Some(fragment.to_string())));
        self
    }

    /// How long such errors are retried.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Whether `err` is one of the errors to retry.
    pub fn matches(&self, err: &AwsError) -> bool {
        self.conditions.iter().any(|(code, fragment)| {
            err.is_code(code)
                && fragment
                    .as_deref()
                    .is_none_or(|f| err.message().contains(f))
        })
    }
}

/// How a wait for a resource state polls.
///
/// Build one with [`PollPolicy::with_timeout`] and change fields with struct update syntax,
/// so that fields added later keep their defaults:
///
/// ```
/// use std::time::Duration;
/// use ecs_core::PollPolicy;
/// let policy = PollPolicy {
///     initial_interval: Duration::from_secs(5),
///     ..PollPolicy::with_timeout(Duration::from_secs(900))
/// };
/// assert_eq!(policy.max_interval, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first interval between two probes; grows by half at each probe.
    pub initial_interval: Duration,
    /// The longest interval between two probes that were answered.
    pub max_interval: Duration,
    /// The longest interval after a probe that was throttled (or failed transiently): each
    /// such probe in a row doubles the interval, up to this rather than `max_interval`, so
    /// that a throttled wait relieves the pressure; once a probe is answered again, the
    /// usual intervals resume.
    pub throttled_max_interval: Duration,
    /// How long to wait in all before failing with a time-out.
    pub timeout: Duration,
}

impl PollPolicy {
    /// A policy that gives up after `timeout`: it probes at once, then at nominal intervals
    /// growing by half from 1 s up to 5 s (1, 1.5, 2.25, 3.4, 5, 5, … s, each slept between
    /// half and all of it: so the second probe comes 0.5–1 s after the first, and later ones
    /// 2.5–5 s apart), and backs off up to 30 s while probes are throttled.
    ///
    /// The waits this serves (a NAT gateway, a load balancer, a service rollout, network
    /// interfaces going away) typically last one to three minutes, and the time between the
    /// resource becoming ready and the probe that sees it is lost to every deploy: with at
    /// most 5 s between probes it averages about 2 s (at most 15 s cost about 6 s).
    /// A probe every 2.5–5 s is one or two describe calls per waiter: about 0.3 to 0.5
    /// requests a second on average (at most 0.8), far below what AWS allows describe calls (EC2, for instance, gives each
    /// non-mutating action a bucket of 100 requests refilled at 20 a second, per account and
    /// Region; ELB and ECS throttle with per-account token buckets of the same kind), so even
    /// several stacks deploying at once in one account stay well under it. Should a probe
    /// still be throttled, the back-off slows that waiter to one probe in up to 30 s.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(5),
            throttled_max_interval: Duration::from_secs(30),
            timeout,
        }
    }
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self::with_timeout(Duration::from_secs(600))
    }
}

/// The outcome of one probe of a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll<T> {
    /// The awaited state was reached.
    Ready(T),
    /// Not yet; the text says what was seen (e.g. `pending`).
    Pending(String),
}

/// Between half and all of `nominal`, so concurrent pollers do not move in lock step.
pub(crate) fn jitter(nominal: Duration) -> Duration {
    let half = nominal / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsErrorKind;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            transient_budget: Duration::from_secs(60),
        };
        for attempt in 1..40 {
            let d = p.delay(attempt);
            let nominal =
                Duration::from_secs(1u64 << (attempt - 1).min(16)).min(Duration::from_secs(5));
            assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_on_matches_codes_and_message_fragments() {
        let on = RetryOn::codes(&["DependencyViolation"], Duration::from_secs(60))
            .message("InvalidParameterException", "Unable to assume role");
        let e = |code: &str, msg: &str| {
            AwsError::new("Op", "r", Some(code), msg, AwsErrorKind::Service)
        };
        assert!(on.matches(&e("DependencyViolation", "anything")));
        assert!(on.matches(&e(
            "InvalidParameterException",
            "Unable to assume role and validate"
        )));
        assert!(!on.matches(&e("InvalidParameterException", "bad cpu")));
        assert!(!on.matches(&e("Other", "Unable to assume role")));
        assert_eq!(on.budget(), Duration::from_secs(60));
    }
}
