//! An in-memory [`LeaseStore`]: create-only generations and a service clock that follows a
//! [`Clock`] (a [`FakeClock`](crate::FakeClock) in tests, so that expiry is a matter of fake
//! time). Every call is recorded, so a test can tell the lease's calls apart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::lease::{Generation, Holder, LeaseScope, LeaseStore};
use crate::{AwsError, BoxFuture, Clock, Context};

#[derive(Debug)]
struct State {
    generations: BTreeMap<(String, u64), (Holder, i64)>,
    calls: Vec<&'static str>,
}

/// An in-memory lease store: create-only generations, a service clock that follows a
/// [`Clock`] (a [`FakeClock`](crate::FakeClock) in tests, so that expiry is a matter of fake
/// time), and every call recorded. Clones share their state.
#[derive(Debug, Clone)]
pub struct MemoryLeaseStore {
    clock: Arc<dyn Clock>,
    start: Instant,
    state: Arc<Mutex<State>>,
}

impl MemoryLeaseStore {
    /// A store whose service clock follows `clock`.
    pub fn new(clock: impl Clock + 'static) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        Self {
            start: clock.now(),
            clock,
            state: Arc::new(Mutex::new(State {
                generations: BTreeMap::new(),
                calls: Vec::new(),
            })),
        }
    }

    fn now_ms(&self) -> i64 {
        // An arbitrary epoch: 2026-01-01.
        1_767_225_600_000 + (self.clock.now() - self.start).as_millis() as i64
    }

    /// The calls made so far (`list`, `create`, `overwrite`, `delete`, `now`).
    pub fn calls(&self) -> Vec<&'static str> {
        self.state.lock().expect("not poisoned").calls.clone()
    }

    /// The generations of `scope`, lowest first.
    pub fn generations(&self, scope: &LeaseScope) -> Vec<Generation> {
        let path = scope.path();
        self.state
            .lock()
            .expect("not poisoned")
            .generations
            .iter()
            .filter(|((p, _), _)| *p == path)
            .map(|((_, n), (holder, at))| Generation {
                number: *n,
                holder: holder.clone(),
                written_ms: *at,
            })
            .collect()
    }

    fn record(&self, call: &'static str) {
        self.state.lock().expect("not poisoned").calls.push(call);
    }
}

impl LeaseStore for MemoryLeaseStore {
    fn list<'a>(
        &'a self,
        _ctx: &'a Context,
        scope: &'a LeaseScope,
    ) -> BoxFuture<'a, Result<Vec<Generation>, AwsError>> {
        self.record("list");
        let found = self.generations(scope);
        Box::pin(async move { Ok(found) })
    }

    fn create<'a>(
        &'a self,
        _ctx: &'a Context,
        scope: &'a LeaseScope,
        number: u64,
        holder: &'a Holder,
    ) -> BoxFuture<'a, Result<bool, AwsError>> {
        self.record("create");
        let now = self.now_ms();
        let mut state = self.state.lock().expect("not poisoned");
        let key = (scope.path(), number);
        let created = !state.generations.contains_key(&key);
        if created {
            state.generations.insert(key, (holder.clone(), now));
        }
        Box::pin(async move { Ok(created) })
    }

    fn overwrite<'a>(
        &'a self,
        _ctx: &'a Context,
        scope: &'a LeaseScope,
        number: u64,
        holder: &'a Holder,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.record("overwrite");
        let now = self.now_ms();
        self.state
            .lock()
            .expect("not poisoned")
            .generations
            .insert((scope.path(), number), (holder.clone(), now));
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(
        &'a self,
        _ctx: &'a Context,
        scope: &'a LeaseScope,
        numbers: &'a [u64],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.record("delete");
        let mut state = self.state.lock().expect("not poisoned");
        for n in numbers {
            state.generations.remove(&(scope.path(), *n));
        }
        Box::pin(async { Ok(()) })
    }

    fn clear<'a>(
        &'a self,
        _ctx: &'a Context,
        scope: &'a LeaseScope,
        numbers: &'a [u64],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.record("clear");
        let mut state = self.state.lock().expect("not poisoned");
        for n in numbers {
            state.generations.remove(&(scope.path(), *n));
        }
        Box::pin(async { Ok(()) })
    }

    fn now<'a>(
        &'a self,
        _ctx: &'a Context,
        _scope: &'a LeaseScope,
    ) -> BoxFuture<'a, Result<i64, AwsError>> {
        self.record("now");
        let now = self.now_ms();
        Box::pin(async move { Ok(now) })
    }
}
