//! The context every layer operation runs in: which stack, its tags, the clock, the event
//! sink and the retry policy; and the helpers that make every AWS call and every wait behave
//! the same way.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use typed_builder::TypedBuilder;

use crate::aws::AwsError;
use crate::clock::{Clock, TokioClock};
use crate::error::Error;
use crate::events::{Event, EventSink, NoEvents};
use crate::names::{stable_hash, StackName};
use crate::retry::{jitter, Poll, PollPolicy, RetryOn, RetryPolicy};
use crate::tags::Tags;

/// Where and how a layer operation runs: the stack, its user tags, the clock, the progress
/// sink and the retry policy. Cheap to clone.
///
/// ```
/// use ecs_core::{Context, EventLog, StackName, Tags};
/// let events = EventLog::new();
/// let ctx = Context::builder()
///     .stack(StackName::new("web").unwrap())
///     .tags(Tags::new().with("team", "payments"))
///     .events(events.clone())
///     .build();
/// assert_eq!(ctx.stack().as_str(), "web");
/// ```
#[derive(Clone, TypedBuilder)]
pub struct Context {
    /// The stack whose resources are managed.
    stack: StackName,
    /// Tags added to every resource of the stack, besides the ownership tags.
    #[builder(default)]
    tags: Tags,
    /// The clock used for every wait and retry (default: the real clock).
    #[builder(default = Arc::new(TokioClock), setter(transform = |clock: impl Clock + 'static| Arc::new(clock) as Arc<dyn Clock>))]
    clock: Arc<dyn Clock>,
    /// Where progress events go (default: nowhere).
    #[builder(default = Arc::new(NoEvents), setter(transform = |sink: impl EventSink + 'static| Arc::new(sink) as Arc<dyn EventSink>))]
    events: Arc<dyn EventSink>,
    /// How throttled and transient failures are retried.
    #[builder(default)]
    retry: RetryPolicy,
    /// Distinguishes this run in idempotency tokens (default: random).
    #[builder(default = format!("{:016x}", fastrand::u64(..)), setter(into))]
    run_id: String,
    /// Awaited before every AWS call (see [`Context::with_guard`]).
    #[builder(default, setter(skip))]
    guard: Option<Arc<dyn CallGuard>>,
}

/// Awaited by a [`Context`] before every AWS call it makes: a held lease renews itself here
/// ([`crate::lease::Lease::guard`]), and an error stops the call (and so the run).
pub trait CallGuard: Send + Sync {
    /// Checks (and renews) before a call; an error is the call's error.
    fn before_call(&self) -> crate::BoxFuture<'_, Result<(), AwsError>>;
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("stack", &self.stack)
            .field("tags", &self.tags)
            .field("clock", &self.clock)
            .field("retry", &self.retry)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The stack.
    pub fn stack(&self) -> &StackName {
        &self.stack
    }

    /// The user's tags for every resource of the stack.
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The same context, with `guard` awaited before every AWS call it makes.
    #[must_use]
    pub fn with_guard(&self, guard: Arc<dyn CallGuard>) -> Context {
        Context {
            guard: Some(guard),
            ..self.clone()
        }
    }

    /// The same context without a guard.
    #[must_use]
    pub fn without_guard(&self) -> Context {
        Context {
            guard: None,
            ..self.clone()
        }
    }

    /// This run's id (random unless set): in idempotency tokens and in the stack's lease.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Sends a progress event to the sink.
    pub fn emit(&self, event: Event) {
        tracing::debug!(target: "ecs", "{event}");
        self.events.emit(event);
    }

    /// The full tag set of one of the stack's resources (user tags, owner tag, and the
    /// logical id and `Name` when given).
    pub fn resource_tags(&self, logical_id: Option<&str>, name: Option<&str>) -> Tags {
        self.tags.for_resource(&self.stack, logical_id, name)
    }

    /// Whether a resource with these tags (key/value pairs, as the SDKs return them) is the
    /// stack's: it carries the owner tag with the stack's name.
    pub fn owns<'a>(
        &self,
        tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    ) -> bool {
        tags.into_iter()
            .any(|(k, v)| k == Some(crate::OWNER_TAG) && v == Some(self.stack.as_str()))
    }

    /// A client token (32 hex characters) for an idempotent create of `logical_id` with
    /// `params`: the same within this run (so the SDK's own retries are idempotent), different
    /// across runs and parameters (so a token is never reused for a different request or for
    /// a resource created again after a delete).
    pub fn client_token(&self, logical_id: &str, params: &str) -> String {
        let seed = format!("{}\0{}\0{logical_id}\0{params}", self.stack, self.run_id);
        let a = stable_hash(seed.as_bytes());
        let b = stable_hash(format!("{a:x}{seed}").as_bytes());
        format!("{a:016x}{b:016x}")
    }

    /// Makes an AWS call, retrying throttling and transient failures within the retry
    /// policy's budget. `f` builds and sends the request; it is called once per attempt.
    pub async fn call<T, E, F, Fut>(
        &self,
        operation: &str,
        resource: &str,
        f: F,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        self.run(operation, resource, None, f).await
    }

    /// Like [`call`](Self::call), and also retries the errors named by `retry_on` within its
    /// budget (known eventual-consistency effects).
    pub async fn call_retrying<T, E, F, Fut>(
        &self,
        operation: &str,
        resource: &str,
        retry_on: &RetryOn,
        f: F,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        self.run(operation, resource, Some(retry_on), f).await
    }

    async fn run<T, E, F, Fut>(
        &self,
        operation: &str,
        resource: &str,
        retry_on: Option<&RetryOn>,
        mut f: F,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        let start = self.clock.now();
        let mut attempt = 1;
        loop {
            // Before every attempt, retries included: a held lease renews itself here, and a
            // run that lost it stops.
            if let Some(guard) = &self.guard {
                guard.before_call().await?;
            }
            let err = match f().await {
                Ok(value) => return Ok(value),
                Err(e) => AwsError::from_sdk(operation, resource, e),
            };
            let budget = if err.is_transient() {
                self.retry.transient_budget
            } else if let Some(on) = retry_on.filter(|on| on.matches(&err)) {
                on.budget()
            } else {
                return Err(err);
            };
            let delay = self.retry.delay(attempt);
            if self.clock.now() - start + delay > budget {
                return Err(err);
            }
            self.emit(Event::Retrying {
                resource: resource.to_string(),
                operation: operation.to_string(),
                reason: match err.code() {
                    Some(code) => format!("{code}: {}", err.message()),
                    None => err.message().to_string(),
                },
                attempt,
            });
            self.clock.sleep(delay).await;
            attempt += 1;
        }
    }

    /// Waits until `probe` reports [`Poll::Ready`], probing with growing, jittered intervals
    /// (up to `policy.max_interval`), backing off further when a probe is throttled (doubling
    /// the interval, up to `policy.throttled_max_interval`), emitting [`Event::Waiting`] while
    /// it waits, and failing with [`Error::Timeout`] after `policy.timeout`.
    pub async fn poll<T, F, Fut>(
        &self,
        resource: &str,
        awaiting: &str,
        policy: &PollPolicy,
        mut probe: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, AwsError>>,
    {
        let start = self.clock.now();
        // The interval after answered probes, and the one after throttled probes in a row.
        let mut interval = policy.initial_interval;
        let mut throttled: Option<Duration> = None;
        loop {
            let last_seen = match probe().await {
                Ok(Poll::Ready(value)) => return Ok(value),
                Ok(Poll::Pending(seen)) => {
                    throttled = None;
                    seen
                }
                Err(e) if e.is_transient() => {
                    // Back off harder when AWS pushes back, instead of failing the wait:
                    // doubling with each throttled probe in a row, beyond the usual cap.
                    let backoff = throttled.unwrap_or(interval) * 2;
                    throttled = Some(backoff.min(policy.throttled_max_interval).max(interval));
                    e.to_string()
                }
                Err(e) => return Err(e.into()),
            };
            let elapsed = self.clock.now() - start;
            if elapsed >= policy.timeout {
                return Err(Error::Timeout {
                    resource: resource.to_string(),
                    awaiting: awaiting.to_string(),
                    waited: elapsed,
                    last_seen,
                });
            }
            self.emit(Event::Waiting {
                resource: resource.to_string(),
                awaiting: format!("{awaiting} (now {last_seen})"),
                elapsed,
            });
            let sleep = jitter(throttled.unwrap_or(interval))
                .min(policy.timeout - elapsed)
                .max(Duration::from_millis(1));
            self.clock.sleep(sleep).await;
            if throttled.is_none() {
                interval = (interval * 3 / 2).min(policy.max_interval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsErrorKind;
    use crate::clock::FakeClock;
    use crate::events::EventLog;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn ctx(clock: &FakeClock, events: &EventLog) -> Context {
        Context::builder()
            .stack(StackName::new("web").unwrap())
            .clock(clock.clone())
            .events(events.clone())
            .run_id("run-1")
            .build()
    }

    fn err(code: &str, kind: AwsErrorKind) -> AwsError {
        AwsError::new("DescribeNatGateways", "nat", Some(code), "msg", kind)
    }

    #[tokio::test]
    async fn poll_backs_off_and_reports_progress() {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = ctx(&clock, &events);
        let probes = AtomicU32::new(0);
        let value = ctx
            .poll(
                "nat-gateway nat/a",
                "state available",
                &PollPolicy::default(),
                || {
                    let n = probes.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match n {
                            0 | 1 => Ok(Poll::Pending("pending".to_string())),
                            2 => Err(err("RequestLimitExceeded", AwsErrorKind::Throttling)),
                            _ => Ok(Poll::Ready(n)),
                        }
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(value, 3);
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 3);
        // 1 s nominal, then 1.5 s, then 2.25 s doubled for throttling: 4.5 s nominal (each
        // slept between half and all of it).
        let ms = Duration::from_millis;
        assert!(sleeps[0] >= ms(500) && sleeps[0] <= ms(1000), "{sleeps:?}");
        assert!(sleeps[1] >= ms(750) && sleeps[1] <= ms(1500), "{sleeps:?}");
        assert!(sleeps[2] >= ms(2250) && sleeps[2] <= ms(4500), "{sleeps:?}");
        let waiting = events
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::Waiting { .. }))
            .count();
        assert_eq!(waiting, 3);
    }

    /// Whether `sleeps` are those of waits of these nominal intervals, in seconds (each slept
    /// between half and all of it).
    fn within(sleeps: &[Duration], nominal: &[f64]) -> bool {
        sleeps.len() == nominal.len()
            && sleeps.iter().zip(nominal).all(|(slept, n)| {
                let n = Duration::from_secs_f64(*n);
                *slept >= n / 2 && *slept <= n
            })
    }

    #[tokio::test]
    async fn poll_intervals_start_at_one_second_and_are_capped_at_five() {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = ctx(&clock, &events);
        let probes = AtomicU32::new(0);
        let value = ctx
            .poll(
                "nat-gateway nat/a",
                "state available",
                &PollPolicy::with_timeout(Duration::from_secs(600)),
                || {
                    let n = probes.fetch_add(1, Ordering::SeqCst);
                    async move {
                        Ok(if n < 30 {
                            Poll::Pending("pending".to_string())
                        } else {
                            Poll::Ready(n)
                        })
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(value, 30);
        let sleeps = clock.sleeps();
        // 1, 1.5, 2.25, 3.375, then 5 s (5.06 capped) for good.
        let mut nominal = vec![1.0, 1.5, 2.25, 3.375];
        nominal.resize(30, 5.0);
        assert!(within(&sleeps, &nominal), "{sleeps:?}");
        assert!(sleeps.iter().all(|s| *s <= Duration::from_secs(5)));
        // Thirty probes cover at most 1 + 1.5 + 2.25 + 3.375 + 26 × 5 s.
        assert!(clock.total_slept() <= Duration::from_millis(138_125));
    }

    #[tokio::test]
    async fn throttled_probes_back_off_beyond_the_cap_up_to_the_throttled_cap() {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = ctx(&clock, &events);
        let probes = AtomicU32::new(0);
        let value = ctx
            .poll(
                "service web",
                "deployment to complete",
                &PollPolicy::with_timeout(Duration::from_secs(600)),
                || {
                    let n = probes.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match n {
                            // Answered until the cap is reached, then throttled six times in
                            // a row, then answered again.
                            0..=5 => Ok(Poll::Pending("deploying".to_string())),
                            6..=11 => Err(err("ThrottlingException", AwsErrorKind::Throttling)),
                            12 | 13 => Ok(Poll::Pending("deploying".to_string())),
                            _ => Ok(Poll::Ready(n)),
                        }
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(value, 14);
        let sleeps = clock.sleeps();
        // The usual 1 … 5 s; then 10, 20, 30, 30, 30, 30 s while throttled (doubling, beyond
        // the 5 s cap, up to the 30 s throttled cap); then 5 s again once answered.
        let nominal = [
            1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0, 30.0, 5.0, 5.0,
        ];
        assert!(within(&sleeps, &nominal), "{sleeps:?}");
        assert!(sleeps[7] > Duration::from_secs(5), "{sleeps:?}");
        assert!(sleeps.iter().all(|s| *s <= Duration::from_secs(30)));
        // Each throttled probe was reported, with what AWS said.
        let throttled = events
            .events()
            .into_iter()
            .filter(|e| {
                matches!(e, Event::Waiting { awaiting, .. } if awaiting.contains("ThrottlingException"))
            })
            .count();
        assert_eq!(throttled, 6);
    }

    #[tokio::test]
    async fn poll_times_out_with_the_last_state() {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = ctx(&clock, &events);
        let result: Result<(), Error> = ctx
            .poll(
                "alb web",
                "state active",
                &PollPolicy::with_timeout(Duration::from_secs(60)),
                || async { Ok(Poll::Pending("provisioning".to_string())) },
            )
            .await;
        match result {
            Err(Error::Timeout {
                resource,
                waited,
                last_seen,
                ..
            }) => {
                assert_eq!(resource, "alb web");
                assert_eq!(last_seen, "provisioning");
                assert!(waited >= Duration::from_secs(60) && waited < Duration::from_secs(61));
            }
            other => panic!("expected a time-out, got {other:?}"),
        }
        assert!(clock.total_slept() >= Duration::from_secs(60));
    }

    #[tokio::test]
    async fn poll_fails_at_once_on_a_non_transient_error() {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = ctx(&clock, &events);
        let result: Result<(), Error> = ctx
            .poll("nat", "available", &PollPolicy::default(), || async {
                Err(err("InvalidNatGatewayID.NotFound", AwsErrorKind::Service))
            })
            .await;
        assert_eq!(
            result.unwrap_err().code(),
            Some("InvalidNatGatewayID.NotFound")
        );
        assert!(clock.sleeps().is_empty());
    }

    #[test]
    fn client_tokens_are_stable_within_a_run_and_differ_across_runs() {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let a = ctx(&clock, &events);
        let t1 = a.client_token("nat/us-east-1a", "subnet-1 eipalloc-1");
        assert_eq!(t1, a.client_token("nat/us-east-1a", "subnet-1 eipalloc-1"));
        assert_eq!(t1.len(), 32);
        assert_ne!(t1, a.client_token("nat/us-east-1a", "subnet-2 eipalloc-1"));
        let b = Context::builder()
            .stack(StackName::new("web").unwrap())
            .run_id("run-2")
            .build();
        assert_ne!(t1, b.client_token("nat/us-east-1a", "subnet-1 eipalloc-1"));
    }
}
