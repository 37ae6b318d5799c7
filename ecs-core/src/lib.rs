//! The small shared foundation of the `ecs-facade` crates.
//!
//! * [`StackName`] and [`StackName::name`]: the one naming function; deterministic resource
//!   names that always satisfy AWS limits.
//! * [`Tags`], [`OWNER_TAG`]: ownership tags applied at creation; nothing without the stack's
//!   tag is ever changed or deleted.
//! * [`Plan`], [`Change`], [`Action`]: the change model every layer's `plan` returns and its
//!   `apply` carries out; renders like `terraform plan`.
//! * [`Event`], [`EventSink`]: progress events delivered to the caller's sink; the library never
//!   prints.
//! * [`Context`]: the stack, its tags, the [`Clock`], the sink and the [`RetryPolicy`]; its
//!   [`call`](Context::call) and [`poll`](Context::poll) make every AWS call and wait behave the
//!   same way (throttling backed off, known eventual-consistency errors retried within a budget,
//!   bounded waits with progress).
//! * [`graph`]: the one executor of every dependency graph (plan, deploy, destroy): each step
//!   as soon as its own dependencies are done, bounded concurrency, stop starting work at the
//!   first error while started work finishes, progress events for every step.
//! * [`resource`]: a resource kind as data plus five verbs ([`Resource`]), its typed diff, the
//!   ownership rule the engine checks, and [`Known`] values (known only after apply).
//! * [`Problems`]: validation reports every problem at once, each naming its field.
//! * `testing` (feature `testing`): the local AWS emulator, an SDK call counter and mocked clients.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use ecs_core::{Context, Event, NameKind, Poll, PollPolicy, StackName, Tags};
//!
//! # async fn example(ec2: aws_sdk_ec2::Client) -> Result<(), ecs_core::Error> {
//! let ctx = Context::builder()
//!     .stack(StackName::new("web").map_err(|p| ecs_core::Error::Invalid([p].into_iter().collect()))?)
//!     .tags(Tags::new().with("team", "payments"))
//!     .events(|event: Event| eprintln!("{event}"))
//!     .build();
//! assert_eq!(ctx.stack().name(NameKind::LoadBalancer, "alb"), "web-alb");
//!
//! // Wait for a NAT gateway, backing off and reporting progress, for at most 5 minutes.
//! let nat_id = "nat-0123456789abcdef0";
//! ctx.poll("nat-gateway", "state available", &PollPolicy::with_timeout(Duration::from_secs(300)), || async {
//!     let out = ctx
//!         .call("DescribeNatGateways", nat_id, || ec2.describe_nat_gateways().nat_gateway_ids(nat_id).send())
//!         .await?;
//!     let state = out.nat_gateways().first().and_then(|n| n.state()).map(|s| s.as_str().to_string());
//!     Ok(match state.as_deref() {
//!         Some("available") => Poll::Ready(()),
//!         other => Poll::Pending(other.unwrap_or("unknown").to_string()),
//!     })
//! })
//! .await?;
//! # Ok(()) }
//! ```

mod aws;
mod clock;
mod context;
mod error;
mod events;
pub mod graph;
pub mod lease;
mod names;
mod plan;
pub mod resource;
mod retry;
mod tags;
mod validate;

#[cfg(feature = "testing")]
pub mod testing;

pub use aws::{AwsError, AwsErrorKind};
pub use clock::{BoxFuture, Clock, FakeClock, TokioClock};
pub use context::{CallGuard, Context};
pub use error::{Error, Result};
pub use events::{Event, EventLog, EventSink, NoEvents};
pub use graph::{Graph, Step};
pub use names::{region_or_default, stable_hash, NameKind, StackName, DEFAULT_REGION};
pub use plan::{Action, Change, FieldDiff, Plan, Summary};
pub use resource::{Known, Resource, KNOWN_AFTER_APPLY};
pub use retry::{Poll, PollPolicy, RetryOn, RetryPolicy};
pub use tags::{
    TagDiff, Tags, MAX_TAGS_PER_RESOURCE, OWNER_TAG, RESERVED_PREFIX, RESERVED_TAG_COUNT,
    RESOURCE_TAG,
};
pub use validate::{Problem, Problems};
