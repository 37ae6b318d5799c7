//! One journal of the calls a mocked AWS answered, and the rule plumbing that records each
//! call and answers it from a stateful fake world: shared by every layer's mock tests and by
//! users testing their own platform code.

use std::any::Any;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_smithy_mocks::{MockResponse, Rule, RuleBuilder};

type Entry = (&'static str, Arc<dyn Any + Send + Sync>);

/// Every call the mocked clients answered, in order, with its input: a test asserts on the
/// operations (`ops`, `count`, `mutating`, `first`, `last`) and on the typed inputs
/// (`inputs::<CreateVpcInput>()`). Cloning shares the journal.
///
/// ```
/// use ecs_core::testing::Journal;
/// let journal = Journal::default();
/// journal.record("DescribeVpcs", &"input".to_string());
/// journal.record("CreateVpc", &7_u32);
/// assert_eq!(journal.ops(), ["DescribeVpcs", "CreateVpc"]);
/// assert_eq!(journal.mutating(), ["CreateVpc"]);
/// assert_eq!(journal.inputs::<u32>(), [7]);
/// ```
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Entry>>>);

impl Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Journal").field(&self.ops()).finish()
    }
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call of `op` with `input`; returns its position in the journal.
    pub fn record<T: Any + Clone + Send + Sync>(&self, op: &'static str, input: &T) -> usize {
        let input: Arc<dyn Any + Send + Sync> = Arc::new(input.clone());
        let mut entries = self.lock();
        entries.push((op, input));
        entries.len() - 1
    }

    /// Forgets every call recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The operations, in call order.
    pub fn ops(&self) -> Vec<&'static str> {
        self.lock().iter().map(|(op, _)| *op).collect()
    }

    /// How many calls were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call was recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The calls that may change something (anything but `Describe*`, `List*`, `Get*`), in
    /// call order.
    pub fn mutating(&self) -> Vec<&'static str> {
        self.ops()
            .into_iter()
            .filter(|op| {
                !["Describe", "List", "Get"]
                    .iter()
                    .any(|p| op.starts_with(*p))
            })
            .collect()
    }

    /// How many calls of `op` were recorded.
    pub fn count(&self, op: &str) -> usize {
        self.ops().iter().filter(|o| **o == op).count()
    }

    /// The position of the first call of `op`.
    ///
    /// # Panics
    ///
    /// When `op` was never called (the test's failure, with the calls made).
    pub fn first(&self, op: &str) -> usize {
        let ops = self.ops();
        ops.iter()
            .position(|o| *o == op)
            .unwrap_or_else(|| panic!("{op} never called: {ops:?}"))
    }

    /// The position of the last call of `op`.
    ///
    /// # Panics
    ///
    /// When `op` was never called.
    pub fn last(&self, op: &str) -> usize {
        let ops = self.ops();
        ops.iter()
            .rposition(|o| *o == op)
            .unwrap_or_else(|| panic!("{op} never called: {ops:?}"))
    }

    /// The position of the first call of `op` whose input (of type `T`) satisfies `pred`.
    ///
    /// # Panics
    ///
    /// When there is none.
    pub fn first_where<T: Any>(&self, op: &str, pred: impl Fn(&T) -> bool) -> usize {
        self.lock()
            .iter()
            .position(|(o, input)| *o == op && input.downcast_ref::<T>().is_some_and(&pred))
            .unwrap_or_else(|| panic!("no {op} call matched"))
    }

    /// The recorded inputs of type `T` with their positions, in call order.
    pub fn indexed<T: Any + Clone>(&self) -> Vec<(usize, T)> {
        self.lock()
            .iter()
            .enumerate()
            .filter_map(|(i, (_, input))| input.downcast_ref::<T>().map(|t| (i, t.clone())))
            .collect()
    }

    /// The recorded inputs of type `T`, in call order.
    pub fn inputs<T: Any + Clone>(&self) -> Vec<T> {
        self.indexed().into_iter().map(|(_, t)| t).collect()
    }

    /// A rule that records each call as `op` and answers it with `out(input)` (a fake with
    /// no state of its own).
    pub fn answer<I, O, E>(
        &self,
        op: &'static str,
        rule: RuleBuilder<I, O, E>,
        out: impl Fn(&I) -> O + Send + Sync + 'static,
    ) -> Rule
    where
        I: Any + Clone + Debug + Send + Sync,
        O: Debug + Send + Sync + 'static,
        E: Debug + Send + Sync + std::error::Error + 'static,
    {
        self.respond(op, rule, move |input| MockResponse::Output(out(input)))
    }

    /// A rule that records each call as `op` and answers it with `out(input)`: an output or
    /// the service's error.
    pub fn respond<I, O, E>(
        &self,
        op: &'static str,
        rule: RuleBuilder<I, O, E>,
        out: impl Fn(&I) -> MockResponse<O, E> + Send + Sync + 'static,
    ) -> Rule
    where
        I: Any + Clone + Debug + Send + Sync,
        O: Debug + Send + Sync + 'static,
        E: Debug + Send + Sync + std::error::Error + 'static,
    {
        let journal = self.clone();
        rule.then_compute_response(move |input| {
            journal.record(op, input);
            out(input)
        })
    }

    /// A rule that records each call as `op` and answers it with `handle` over the stateful
    /// fake `world` (a map of the resources it holds, say), given the call's position in the
    /// journal: `Ok` is the output, `Err` the service's error.
    ///
    /// ```no_run
    /// use std::collections::BTreeSet;
    /// use std::sync::{Arc, Mutex};
    /// use ecs_core::testing::{mock, Journal, RuleMode};
    /// use aws_sdk_ec2::operation::create_vpc::CreateVpcOutput;
    ///
    /// // The world: the CIDR blocks of the VPCs the fake holds.
    /// let (journal, world) = (Journal::default(), Arc::new(Mutex::new(BTreeSet::<String>::new())));
    /// let create = journal.on(&world, "CreateVpc", mock!(aws_sdk_ec2::Client::create_vpc), |vpcs, input, _| {
    ///     vpcs.insert(input.cidr_block().unwrap_or_default().to_string());
    ///     Ok(CreateVpcOutput::builder().build())
    /// });
    /// let ec2 = ecs_core::mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&create]);
    /// ```
    pub fn on<W, I, O, E>(
        &self,
        world: &Arc<Mutex<W>>,
        op: &'static str,
        rule: RuleBuilder<I, O, E>,
        handle: impl Fn(&mut W, &I, usize) -> Result<O, E> + Send + Sync + 'static,
    ) -> Rule
    where
        W: Send + 'static,
        I: Any + Clone + Debug + Send + Sync,
        O: Debug + Send + Sync + 'static,
        E: Debug + Send + Sync + std::error::Error + 'static,
    {
        let (journal, world) = (self.clone(), world.clone());
        rule.then_compute_response(move |input| {
            let at = journal.record(op, input);
            let mut guard = world.lock().unwrap_or_else(|e| e.into_inner());
            match handle(&mut guard, input, at) {
                Ok(output) => MockResponse::Output(output),
                Err(error) => MockResponse::Error(error),
            }
        })
    }
}
