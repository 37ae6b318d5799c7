//! A lease per stack, held in the AWS account, so that two runs never write one stack at once
//! (a double-triggered pipeline, a person and CI).
//!
//! **The primitive** is a create-only write: a lease is a numbered *generation* under the
//! scope's path (`/ecs-facade/lease/stack/<name>/<generation>`, an SSM parameter in
//! `ecs-facade`), and only one run can create a given generation (SSM's `PutParameter`
//! without `Overwrite` answers `ParameterAlreadyExists` to the others). The highest generation
//! is the lease; its value says who holds it, for what, and whether it was released.
//!
//! **Taking it**: read the generations; when the highest is released, absent, or expired,
//! create the next one — whoever creates it holds the lease, everyone else reads again. When
//! it is held, wait (polling) up to the caller's timeout, then fail with
//! [`LeaseError::Held`] ("locked by … since …").
//!
//! **Expiry** is judged by the service's clock, never the holder's: a generation's time is
//! when the service last wrote it, and "now" is when the service wrote a probe for the one
//! who asks. The holder renews its generation (at its own AWS calls, a third of its time to
//! live apart: [`Lease::guard`]) while it works, and stops when it could not renew within its
//! time to live; a holder that died (killed, lost its network) stops renewing, and after its
//! time to live the next run breaks the lease by creating the next generation, and says so.
//!
//! **Scopes** are paths, so that an environment and each of its services can have their own
//! (`stack/<name>` today); a holder that finds a higher generation than its own when it renews
//! has lost the lease ([`LeaseError::Lost`]) and stops.
//!
//! The lease's calls are its own: they go through the [`LeaseStore`], not the stack's clients,
//! so a run reports them apart from the stack's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use crate::{AwsError, BoxFuture, CallGuard, Context, Event, StackName};

/// The system's wall clock: only to tell that a run was paused (its own clock can stand
/// still while the machine sleeps), never to judge another run's lease.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The path every lease lives under.
pub const LEASE_PREFIX: &str = "/ecs-facade/lease";

/// What a lease covers: a stack today; an environment or one of its services later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseScope(String);

impl LeaseScope {
    /// The lease of stack `stack`.
    pub fn stack(stack: &StackName) -> Self {
        Self(format!("stack/{stack}"))
    }

    /// The path its generations live under (`/ecs-facade/lease/stack/<name>`).
    pub fn path(&self) -> String {
        format!("{LEASE_PREFIX}/{}", self.0)
    }
}

impl fmt::Display for LeaseScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('/') {
            Some((kind, name)) => write!(f, "{kind} `{name}`"),
            None => f.write_str(&self.0),
        }
    }
}

/// Who holds (or held) a generation, and what for: the generation's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Holder {
    /// The run (its context's run id).
    pub run_id: String,
    /// What it does: `deploy`, `destroy`, `rollback`, `release`, `unlock`.
    pub operation: String,
    /// Who: user, host and process.
    pub by: String,
    /// When it took the lease, in seconds since the Unix epoch by its own clock (shown to
    /// people; expiry never uses it).
    pub since: i64,
    /// How long the lease lasts after its last renewal, in seconds.
    pub ttl_secs: u64,
    /// Whether it was released.
    #[serde(default)]
    pub released: bool,
}

impl Holder {
    /// A holder for `operation` by this process: the run id of `ctx`, the user and host from
    /// the environment, the time from the system clock.
    pub fn this_process(ctx: &Context, operation: &str, ttl: Duration) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "someone".to_string());
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .unwrap_or_else(|| "unknown host".to_string());
        #[allow(clippy::disallowed_methods)]
        // shown to people only; expiry uses the service's clock
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self {
            run_id: ctx.run_id().to_string(),
            operation: operation.to_string(),
            by: format!("{user}@{host} (pid {})", std::process::id()),
            since,
            ttl_secs: ttl.as_secs().max(1),
            released: false,
        }
    }

    /// What a generation whose value cannot be read stands for: held (by someone unknown)
    /// until it expires, so that nobody takes a lease they cannot understand.
    pub fn unreadable() -> Self {
        Self {
            run_id: "unknown".to_string(),
            operation: "unknown".to_string(),
            by: "a run whose lease value cannot be read".to_string(),
            since: 0,
            ttl_secs: 300,
            released: false,
        }
    }

    fn since_text(&self) -> String {
        aws_smithy_types::DateTime::from_secs(self.since)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_else(|_| self.since.to_string())
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, run {}) since {}",
            self.by,
            self.operation,
            self.run_id,
            self.since_text()
        )
    }
}

/// One generation as the store read it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Generation {
    /// Its number.
    pub number: u64,
    /// Its value.
    pub holder: Holder,
    /// When the service last wrote it (created or renewed), in milliseconds since the Unix
    /// epoch by the service's clock.
    pub written_ms: i64,
}

impl Generation {
    /// Generation `number`, held by `holder`, written by the service at `written_ms`.
    pub fn new(number: u64, holder: Holder, written_ms: i64) -> Self {
        Self {
            number,
            holder,
            written_ms,
        }
    }
}

/// Where generations live: create-only writes, overwrites by the holder, reads, deletes, and
/// the service's clock. `ecs-facade` implements it over SSM Parameter Store; tests use
/// `ecs_core::testing::MemoryLeaseStore`.
pub trait LeaseStore: Send + Sync + fmt::Debug {
    /// Every generation of `scope`.
    fn list<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
    ) -> BoxFuture<'a, Result<Vec<Generation>, AwsError>>;
    /// Creates generation `number` with `holder` unless it exists: `true` when this call
    /// created it.
    fn create<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        number: u64,
        holder: &'a Holder,
    ) -> BoxFuture<'a, Result<bool, AwsError>>;
    /// Overwrites generation `number` (a renewal, or the release).
    fn overwrite<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        number: u64,
        holder: &'a Holder,
    ) -> BoxFuture<'a, Result<(), AwsError>>;
    /// Deletes these generations (older ones, once a newer one is held).
    fn delete<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        numbers: &'a [u64],
    ) -> BoxFuture<'a, Result<(), AwsError>>;
    /// Deletes these generations and the clock's probe: the lease of a stack that was
    /// destroyed.
    fn clear<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        numbers: &'a [u64],
    ) -> BoxFuture<'a, Result<(), AwsError>>;
    /// The service's clock now, in milliseconds since the Unix epoch.
    fn now<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
    ) -> BoxFuture<'a, Result<i64, AwsError>>;
}

/// How to take a lease.
#[derive(Debug, Clone, TypedBuilder)]
#[non_exhaustive]
pub struct LeaseOptions {
    /// How long the lease lasts after its last renewal (default 5 minutes); it is renewed a
    /// third of that apart while held.
    #[builder(default = Duration::from_secs(300))]
    pub ttl: Duration,
    /// How long to wait for a held lease before failing (default: fail at once).
    #[builder(default = Duration::ZERO)]
    pub wait: Duration,
    /// How often to look again while waiting (default 5 s).
    #[builder(default = Duration::from_secs(5))]
    pub poll: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Why a lease was not taken or was lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// Someone else holds it (and kept holding it for as long as the caller would wait).
    #[error("{scope} is locked by {holder}; nothing was changed (wait with a timeout, or, if that run is gone, `unlock` it)")]
    Held {
        /// The lease.
        scope: LeaseScope,
        /// Who holds it.
        holder: Holder,
    },
    /// A later run broke this run's lease (it was not renewed in time): this run stopped.
    #[error(
        "the lease of {scope} was taken over by {by} while this run held it: this run stopped"
    )]
    Lost {
        /// The lease.
        scope: LeaseScope,
        /// Who holds it now.
        by: Holder,
    },
    /// This run could not renew its lease within its time to live (it was paused, or cut off
    /// from AWS): a later run may have taken it over, so this run stopped.
    #[error("the lease of {scope} lapsed: this run was not able to renew it within its time to live, so it stopped (a later run may hold it now)")]
    Lapsed {
        /// The lease.
        scope: LeaseScope,
    },
    /// A call of the lease's store failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// What to do, from the generations read and (when the highest is held) the service's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create this generation (the highest is absent or released).
    Take(u64),
    /// Create this generation, breaking the highest one, which expired.
    Break(u64, Holder),
    /// The highest one is held and not expired.
    Held(Holder),
}

/// The decision of [`acquire`], as a function of what was read: the highest generation
/// decides; `now_ms` (the service's clock) is needed only when it is held.
pub fn decide(generations: &[Generation], now_ms: Option<i64>) -> Decision {
    let Some(top) = generations.iter().max_by_key(|g| g.number) else {
        return Decision::Take(1);
    };
    let next = top.number + 1;
    if top.holder.released {
        return Decision::Take(next);
    }
    let ttl_ms = (top.holder.ttl_secs as i64).saturating_mul(1000);
    match now_ms {
        Some(now) if now.saturating_sub(top.written_ms) > ttl_ms => {
            Decision::Break(next, top.holder.clone())
        }
        _ => Decision::Held(top.holder.clone()),
    }
}

/// A lease this run holds. Renew it while working (through the run's context:
/// [`Lease::guard`]), then [`release`](Lease::release) it.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn LeaseStore>,
    scope: LeaseScope,
    number: u64,
    holder: Holder,
    /// When the last renewal (or the creation) started, by this run's clock and by the
    /// system's wall clock (which, unlike the first, also runs while the machine sleeps).
    renewed: std::sync::Mutex<(std::time::Instant, std::time::SystemTime)>,
}

/// Takes the lease of `scope` for `holder`: see the [module](self) docs.
pub async fn acquire(
    ctx: &Context,
    store: Arc<dyn LeaseStore>,
    scope: &LeaseScope,
    holder: Holder,
    options: &LeaseOptions,
) -> Result<Lease, LeaseError> {
    let start = ctx.clock().now();
    let resource = format!("lease of {scope}");
    loop {
        let attempt = ctx.clock().now();
        let attempt_wall = wall_now();
        let (generations, decision) = read_decision(ctx, store.as_ref(), scope).await?;
        let (number, broke) = match decision {
            Decision::Take(n) => (n, None),
            Decision::Break(n, old) => (n, Some(old)),
            Decision::Held(holder) => {
                let elapsed = ctx.clock().now() - start;
                if elapsed >= options.wait {
                    return Err(LeaseError::Held {
                        scope: scope.clone(),
                        holder,
                    });
                }
                ctx.emit(Event::Waiting {
                    resource: resource.clone(),
                    awaiting: format!("release by {holder}"),
                    elapsed,
                });
                ctx.clock()
                    .sleep(options.poll.min(options.wait - elapsed))
                    .await;
                continue;
            }
        };
        if !store.create(ctx, scope, number, &holder).await? {
            // Someone else created it first: they hold it now. Read again.
            continue;
        }
        if let Some(old) = broke {
            ctx.emit(Event::Progress {
                resource: resource.clone(),
                message: format!(
                    "broke the lease of {old}: not renewed for more than {} s by the service's clock",
                    old.ttl_secs
                ),
            });
        }
        let older: Vec<u64> = generations
            .iter()
            .map(|g| g.number)
            .filter(|n| *n < number)
            .collect();
        if !older.is_empty() {
            store.delete(ctx, scope, &older).await?;
        }
        return Ok(Lease {
            store,
            scope: scope.clone(),
            number,
            holder,
            renewed: std::sync::Mutex::new((attempt, attempt_wall)),
        });
    }
}

/// Who holds the lease of `scope` now (held, and not expired by the service's clock), without
/// taking it: for a run that must not write while another scope is held (a service of an
/// environment while the environment is being deployed).
pub async fn holder(
    ctx: &Context,
    store: &dyn LeaseStore,
    scope: &LeaseScope,
) -> Result<Option<Holder>, LeaseError> {
    Ok(match read_decision(ctx, store, scope).await?.1 {
        Decision::Held(h) => Some(h),
        Decision::Take(_) | Decision::Break(..) => None,
    })
}

/// The generations of `scope` and what they decide: the service's clock is read only when
/// the highest generation is held, and before the generations the decision uses, so that a
/// renewal made meanwhile is seen (written after "now": not expired).
async fn read_decision(
    ctx: &Context,
    store: &dyn LeaseStore,
    scope: &LeaseScope,
) -> Result<(Vec<Generation>, Decision), LeaseError> {
    let mut generations = store.list(ctx, scope).await?;
    let held = generations
        .iter()
        .max_by_key(|g| g.number)
        .is_some_and(|g| !g.holder.released);
    let now = match held {
        true => {
            let now = store.now(ctx, scope).await?;
            generations = store.list(ctx, scope).await?;
            Some(now)
        }
        false => None,
    };
    let decision = decide(&generations, now);
    Ok((generations, decision))
}

/// Releases whatever lease `scope` has, for an operator whose run died holding it: creates
/// the next generation, released, by `by`. If the displaced run is in fact alive, it finds
/// the lease lost at its next renewal (within a third of its time to live) and stops; until
/// then it may still write, so unlock only a run that is gone. Returns the holder it
/// displaced, if the lease was held.
pub async fn unlock(
    ctx: &Context,
    store: &dyn LeaseStore,
    scope: &LeaseScope,
    mut by: Holder,
) -> Result<Option<Holder>, LeaseError> {
    by.released = true;
    loop {
        let generations = store.list(ctx, scope).await?;
        let top = generations.iter().max_by_key(|g| g.number);
        let Some(top) = top.filter(|g| !g.holder.released) else {
            return Ok(None);
        };
        if store.create(ctx, scope, top.number + 1, &by).await? {
            return Ok(Some(top.holder.clone()));
        }
    }
}

impl Lease {
    /// The generation held.
    pub fn generation(&self) -> u64 {
        self.number
    }

    /// How long since the last renewal started: the larger of this run's clock and the wall
    /// clock (a machine that slept lets the first stand still).
    fn since_renewed(&self, ctx: &Context) -> Duration {
        let (last, last_wall) = *self.renewed.lock().expect("not poisoned");
        let by_clock = ctx.clock().now() - last;
        let by_wall = wall_now().duration_since(last_wall).unwrap_or_default();
        by_clock.max(by_wall)
    }

    /// Renews the lease: fails with [`LeaseError::Lost`] when its generation is gone, is not
    /// this run's, or a later generation exists; with [`LeaseError::Lapsed`] when more than
    /// its time to live passed since the last renewal started, before or by the end of this
    /// one (a run paused that long may have been broken, and must not write any more).
    pub async fn renew(&self, ctx: &Context) -> Result<(), LeaseError> {
        let ttl = Duration::from_secs(self.holder.ttl_secs);
        let lapsed = || LeaseError::Lapsed {
            scope: self.scope.clone(),
        };
        if self.since_renewed(ctx) > ttl {
            return Err(lapsed());
        }
        let (start, start_wall) = (ctx.clock().now(), wall_now());
        let generations = self.store.list(ctx, &self.scope).await?;
        self.check_own(&generations)?;
        self.store
            .overwrite(ctx, &self.scope, self.number, &self.holder)
            .await?;
        // Written within the time to live of the previous renewal: a run that broke the lease
        // read "now" after this write, so it saw it. Written later: it may not have.
        if self.since_renewed(ctx) > ttl {
            return Err(lapsed());
        }
        *self.renewed.lock().expect("not poisoned") = (start, start_wall);
        Ok(())
    }

    /// `Ok` when this run's generation is still there, still this run's, and the highest.
    fn check_own(&self, generations: &[Generation]) -> Result<(), LeaseError> {
        let top = generations.iter().max_by_key(|g| g.number);
        let own = generations.iter().find(|g| g.number == self.number);
        match (top, own) {
            (Some(top), Some(own))
                if top.number == self.number && own.holder.run_id == self.holder.run_id =>
            {
                Ok(())
            }
            (top, _) => Err(LeaseError::Lost {
                scope: self.scope.clone(),
                by: top
                    .filter(|t| t.number != self.number)
                    .map(|t| t.holder.clone())
                    .unwrap_or_else(|| Holder {
                        by: "someone who removed this run's generation".to_string(),
                        ..Holder::unreadable()
                    }),
            }),
        }
    }

    /// A guard for the run's context ([`Context::with_guard`]): before each AWS call of the
    /// run, renews the lease when a third of its time to live passed since the last renewal,
    /// and fails the call — and so stops the run — when the lease was lost or lapsed. Renewing
    /// at the run's own calls (its waits poll every few seconds) keeps the lease alive exactly
    /// while the run works, without a background task. `store_ctx` is the context the lease's
    /// own calls use.
    pub fn guard(self: &Arc<Self>, store_ctx: &Context) -> Arc<dyn CallGuard> {
        Arc::new(Guard {
            lease: self.clone(),
            ctx: store_ctx.without_guard(),
            renewing: tokio::sync::Mutex::new(()),
        })
    }

    /// Releases the lease by deleting its generations and the clock's probe, when what it
    /// covered is gone (a destroyed stack leaves no parameter behind); unless another run took
    /// it over meanwhile, whose generation is left as it is.
    pub async fn remove(&self, ctx: &Context) -> Result<(), LeaseError> {
        let ctx = ctx.without_guard();
        let generations = self.store.list(&ctx, &self.scope).await?;
        if self.check_own(&generations).is_err() {
            return Ok(());
        }
        // Only what was read, at or below this run's generation: one created since stays.
        let numbers: Vec<u64> = generations
            .iter()
            .map(|g| g.number)
            .filter(|n| *n <= self.number)
            .collect();
        self.store.clear(&ctx, &self.scope, &numbers).await?;
        Ok(())
    }

    /// Releases the lease (unless another run took it over meanwhile).
    pub async fn release(&self, ctx: &Context) -> Result<(), LeaseError> {
        let ctx = ctx.without_guard();
        let released = Holder {
            released: true,
            ..self.holder.clone()
        };
        let generations = self.store.list(&ctx, &self.scope).await?;
        if self.check_own(&generations).is_err() {
            return Ok(());
        }
        self.store
            .overwrite(&ctx, &self.scope, self.number, &released)
            .await?;
        Ok(())
    }
}

/// The [`CallGuard`] of a held lease ([`Lease::guard`]).
struct Guard {
    lease: Arc<Lease>,
    ctx: Context,
    renewing: tokio::sync::Mutex<()>,
}

impl CallGuard for Guard {
    fn before_call(&self) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(async move {
            let every = Duration::from_secs(self.lease.holder.ttl_secs) / 3;
            let due = || self.lease.since_renewed(&self.ctx) >= every;
            if !due() {
                return Ok(());
            }
            // One renewal at a time; the calls that waited for it find it done.
            let _one = self.renewing.lock().await;
            if !due() {
                return Ok(());
            }
            match self.lease.renew(&self.ctx).await {
                Ok(()) => Ok(()),
                Err(LeaseError::Aws(e)) => Err(e),
                Err(e) => Err(AwsError::new(
                    "RenewLease",
                    format!("lease of {}", self.lease.scope),
                    Some("LeaseLost"),
                    e.to_string(),
                    crate::AwsErrorKind::Other,
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(run: &str, released: bool) -> Holder {
        Holder {
            run_id: run.into(),
            operation: "deploy".into(),
            by: "ci@runner (pid 1)".into(),
            since: 1_765_000_000,
            ttl_secs: 60,
            released,
        }
    }

    fn generation(number: u64, run: &str, released: bool, written_ms: i64) -> Generation {
        Generation {
            number,
            holder: holder(run, released),
            written_ms,
        }
    }

    #[test]
    fn the_highest_generation_decides_and_expiry_uses_the_services_clock() {
        assert_eq!(decide(&[], None), Decision::Take(1));
        let released = [generation(1, "a", false, 0), generation(2, "b", true, 0)];
        assert_eq!(decide(&released, None), Decision::Take(3));
        let held = [generation(4, "c", false, 10_000)];
        // Held: without the service's clock, or within the time to live, it is held.
        assert_eq!(decide(&held, None), Decision::Held(holder("c", false)));
        assert_eq!(
            decide(&held, Some(70_000)),
            Decision::Held(holder("c", false))
        );
        // Expired by the service's clock: broken by the next generation.
        assert_eq!(
            decide(&held, Some(70_001)),
            Decision::Break(5, holder("c", false))
        );
    }

    #[test]
    fn the_message_says_who_holds_it_since_when() {
        let e = LeaseError::Held {
            scope: LeaseScope::stack(&StackName::new("shop").unwrap()),
            holder: holder("run-1", false),
        };
        assert_eq!(
            e.to_string(),
            "stack `shop` is locked by ci@runner (pid 1) (deploy, run run-1) since 2025-12-06T05:46:40Z; \
             nothing was changed (wait with a timeout, or, if that run is gone, `unlock` it)"
        );
        assert_eq!(
            LeaseScope::stack(&StackName::new("shop").unwrap()).path(),
            "/ecs-facade/lease/stack/shop"
        );
    }

    /// The model of [`acquire`], [`Lease::renew`] and [`Lease::release`] one call at a time,
    /// for the property test: the same [`decide`], a create-only map, one clock for the
    /// service and the runs (runs are paused by not being scheduled).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Actor {
        Idle,
        Decided { number: u64, at: i64 },
        Holding { number: u64, renewed: i64 },
        Dead,
    }

    proptest::proptest! {
        #[test]
        fn the_lease_never_has_two_active_holders(
            ops in proptest::collection::vec((0usize..3, 0u8..5, 0i64..45_000), 1..300)
        ) {
            const TTL: i64 = 60_000;
            let mut store: std::collections::BTreeMap<u64, Generation> = Default::default();
            let mut actors = [Actor::Idle; 3];
            let mut now: i64 = 0;
            for (who, op, dt) in ops {
                let later = |store: &std::collections::BTreeMap<u64, Generation>, n: u64| {
                    store.keys().any(|k| *k > n)
                };
                actors[who] = match (actors[who], op) {
                    (Actor::Idle, 0) => {
                        let all: Vec<Generation> = store.values().cloned().collect();
                        match decide(&all, Some(now)) {
                            Decision::Take(n) | Decision::Break(n, _) => {
                                Actor::Decided { number: n, at: now }
                            }
                            Decision::Held(_) => Actor::Idle,
                        }
                    }
                    (Actor::Decided { number, at }, 0) => {
                        match store.entry(number) {
                            std::collections::btree_map::Entry::Occupied(_) => Actor::Idle,
                            std::collections::btree_map::Entry::Vacant(slot) => {
                                slot.insert(generation(number, &who.to_string(), false, now));
                                store.retain(|k, _| *k >= number);
                                Actor::Holding { number, renewed: at }
                            }
                        }
                    }
                    // A renewal: lapsed, or lost to a later generation, it stops.
                    (Actor::Holding { number, renewed }, 1) => {
                        if now - renewed > TTL || later(&store, number) {
                            Actor::Idle
                        } else {
                            store.insert(number, generation(number, &who.to_string(), false, now));
                            Actor::Holding { number, renewed: now }
                        }
                    }
                    (Actor::Holding { number, .. }, 2) => {
                        if !later(&store, number) {
                            store.insert(number, generation(number, &who.to_string(), true, now));
                        }
                        Actor::Idle
                    }
                    (Actor::Holding { .. }, 3) => Actor::Dead,
                    (state, _) => state,
                };
                now += dt;
                let active = actors
                    .iter()
                    .filter(|a| matches!(a, Actor::Holding { renewed, .. } if now - renewed <= TTL))
                    .count();
                proptest::prop_assert!(active <= 1, "{actors:?} at {now}: {store:?}");
            }
        }
    }
}
