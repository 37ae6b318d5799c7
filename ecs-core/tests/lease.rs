//! The stack's lease over an in-memory store whose service clock follows the fake clock:
//! taking it, refusing while it is held, waiting, breaking a dead holder's lease after its
//! time to live (and saying so), renewing at the run's own calls, losing it to an operator's
//! `unlock`.

use std::sync::Arc;
use std::time::Duration;

use ecs_core::lease::{self, Holder, LeaseError, LeaseOptions, LeaseScope, LeaseStore};
use ecs_core::testing::MemoryLeaseStore;
use ecs_core::{Context, Event, EventLog, FakeClock, StackName};

fn ctx(clock: &FakeClock, events: &EventLog, run: &str) -> Context {
    Context::builder()
        .stack(StackName::new("shop").unwrap())
        .clock(clock.clone())
        .events(events.clone())
        .run_id(run)
        .build()
}

fn scope() -> LeaseScope {
    LeaseScope::stack(&StackName::new("shop").unwrap())
}

fn ttl() -> Duration {
    Duration::from_secs(60)
}

/// One AWS call of the run of `ctx` (answered at once, without the network): what the lease's
/// guard runs before.
async fn a_call(ctx: &Context) -> Result<(), ecs_core::AwsError> {
    ctx.call("ListClusters", "stack shop", || async {
        Ok::<
            _,
            aws_smithy_runtime_api::client::result::SdkError<
                aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsError,
                aws_smithy_runtime_api::client::orchestrator::HttpResponse,
            >,
        >(())
    })
    .await
}

/// Takes the lease for `operation` as the run of `ctx`.
async fn take(
    ctx: &Context,
    store: &Arc<dyn LeaseStore>,
    operation: &str,
    options: &LeaseOptions,
) -> Result<lease::Lease, LeaseError> {
    lease::acquire(
        ctx,
        store.clone(),
        &scope(),
        Holder::this_process(ctx, operation, ttl()),
        options,
    )
    .await
}

#[tokio::test]
async fn a_held_lease_refuses_at_once_and_a_released_one_is_taken_again() {
    let (clock, events) = (FakeClock::new(), EventLog::new());
    let store = MemoryLeaseStore::new(clock.clone());
    let shared: Arc<dyn LeaseStore> = Arc::new(store.clone());
    let a = ctx(&clock, &events, "run-a");
    let first = take(&a, &shared, "deploy", &LeaseOptions::default())
        .await
        .unwrap();
    assert_eq!(first.generation(), 1);
    assert_eq!(store.calls(), ["list", "create"]);

    // A second run: refused at once, naming the holder; it created nothing.
    let b = ctx(&clock, &events, "run-b");
    let err = take(&b, &shared, "deploy", &LeaseOptions::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, LeaseError::Held { ref holder, .. } if holder.run_id == "run-a"),
        "{text}"
    );
    assert!(
        text.starts_with("stack `shop` is locked by ")
            && text.contains("(deploy, run run-a) since "),
        "{text}"
    );
    assert_eq!(store.generations(&scope()).len(), 1);

    // Released: the next run takes generation 2 and removes generation 1.
    first.release(&a).await.unwrap();
    let second = take(&b, &shared, "destroy", &LeaseOptions::default())
        .await
        .unwrap();
    assert_eq!(second.generation(), 2);
    let left = store.generations(&scope());
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].number, left[0].holder.operation.as_str()),
        (2, "destroy")
    );
}

#[tokio::test]
async fn a_dead_holders_lease_is_broken_after_its_time_to_live_by_the_services_clock() {
    let (clock, events) = (FakeClock::new(), EventLog::new());
    let store = MemoryLeaseStore::new(clock.clone());
    let shared: Arc<dyn LeaseStore> = Arc::new(store.clone());
    let a = ctx(&clock, &events, "run-a");
    // Taken, then never renewed nor released: its holder died.
    let _dead = take(&a, &shared, "deploy", &LeaseOptions::default())
        .await
        .unwrap();
    let b = ctx(&clock, &events, "run-b");
    let taken = take(
        &b,
        &shared,
        "deploy",
        &LeaseOptions::builder()
            .wait(Duration::from_secs(600))
            .poll(Duration::from_secs(5))
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(taken.generation(), 2);
    // It waited in 5 s polls until the lease was more than 60 s old by the service's clock.
    assert_eq!(clock.total_slept(), Duration::from_secs(65));
    let waits = events
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Waiting { .. }))
        .count();
    assert_eq!(waits, 13);
    let broke: Vec<String> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Progress { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(broke.len(), 1, "{broke:?}");
    assert!(
        broke[0].starts_with("broke the lease of ")
            && broke[0].contains("(deploy, run run-a)")
            && broke[0].ends_with("not renewed for more than 60 s by the service's clock"),
        "{broke:?}"
    );
}

#[tokio::test]
async fn the_lease_renews_at_the_runs_calls_and_a_run_that_lost_it_stops() {
    let (clock, events) = (FakeClock::new(), EventLog::new());
    let store = MemoryLeaseStore::new(clock.clone());
    let shared: Arc<dyn LeaseStore> = Arc::new(store.clone());
    let a = ctx(&clock, &events, "run-a");
    let held = Arc::new(
        take(&a, &shared, "deploy", &LeaseOptions::default())
            .await
            .unwrap(),
    );
    let guarded = a.with_guard(held.guard(&a));
    let call = || a_call(&guarded);
    // Within a third of the time to live: no renewal.
    clock.advance(Duration::from_secs(10));
    call().await.unwrap();
    assert_eq!(store.calls(), ["list", "create"]);
    // Past it: the call renews first (a read, then the overwrite).
    clock.advance(Duration::from_secs(15));
    call().await.unwrap();
    assert_eq!(store.calls(), ["list", "create", "list", "overwrite"]);
    assert_eq!(
        store.generations(&scope())[0].written_ms - 1_767_225_600_000,
        25_000
    );

    // An operator unlocks it (the run was thought dead): the run's next renewal finds it
    // lost, and its call fails without reaching AWS.
    let op = ctx(&clock, &events, "operator");
    let displaced = lease::unlock(
        &op,
        &store,
        &scope(),
        Holder::this_process(&op, "unlock", ttl()),
    )
    .await
    .unwrap();
    assert_eq!(displaced.map(|h| h.run_id), Some("run-a".to_string()));
    clock.advance(Duration::from_secs(30));
    let err = call().await.unwrap_err();
    assert_eq!(err.code(), Some("LeaseLost"));
    assert!(err.message().contains("was taken over by"), "{err}");

    // A run paused beyond its time to live stops at its next call, even if nobody broke it.
    let b = ctx(&clock, &events, "run-b");
    let paused = Arc::new(
        take(&b, &shared, "deploy", &LeaseOptions::default())
            .await
            .unwrap(),
    );
    let guarded = b.with_guard(paused.guard(&b));
    clock.advance(Duration::from_secs(61));
    let err = a_call(&guarded).await.unwrap_err();
    assert!(err.message().contains("lapsed"), "{err}");
}
