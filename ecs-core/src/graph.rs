//! One executor for every dependency graph: plan, deploy and destroy.
//!
//! A [`Graph`] is a set of steps, each with the steps it needs and a body that gets their
//! outputs. [`Graph::run`] gives every layer the same guarantees:
//!
//! * each step starts as soon as the steps it needs are done, and waits for nothing else;
//!   readiness can be an ordinary step that others depend on (ecs-net's destroy waits for its
//!   NAT gateways' deletion so, before their addresses are released);
//! * after the first error no new step starts, but the steps already started run to their
//!   end (a request dropped half-way could still land in AWS after the run returned, unseen by
//!   the next run's reads); the first error is returned as is;
//! * at most [`concurrency`](Graph::concurrency) steps run at once;
//! * the executor, not the step, reports progress: `Started` when a step that changes
//!   something starts, `Done` with what its output says, `Failed` with the error.
//!
//! Steps run inside the caller's task (no `tokio::spawn`), so they may borrow the caller's
//! clients, context and plan. A step's handle, [`Step<T>`], is typed: a body reads the output of
//! a step it declared with [`Inputs::get`], and a graph cannot have a cycle, since a step can
//! only name steps added before it.
//!
//! ```
//! use ecs_core::graph::Graph;
//! use ecs_core::{Context, StackName};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let ctx = Context::builder().stack(StackName::new("web").unwrap()).build();
//! let mut graph = Graph::<std::convert::Infallible>::new();
//! let vpc = graph.step("vpc vpc").action("create").run(|_| async { Ok("vpc-1".to_string()) });
//! let subnet = graph
//!     .step("subnet public/a")
//!     .after(vpc)
//!     .run(move |inputs| async move { Ok(format!("subnet in {}", inputs.get(vpc))) });
//! let outputs = graph.run(&ctx).await.unwrap();
//! assert_eq!(outputs.get(subnet), "subnet in vpc-1");
//! # });
//! ```

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;

use crate::clock::BoxFuture;
use crate::context::Context;
use crate::events::Event;

/// How many steps run at once unless [`Graph::concurrency`] says otherwise: more than a stack
/// of this project ever has ready together, so the bound only guards against a runaway graph.
pub const DEFAULT_CONCURRENCY: usize = 64;

type Value = Arc<dyn Any + Send + Sync>;
type Body<'a, E> = Box<dyn FnOnce(Inputs) -> BoxFuture<'a, Result<Value, E>> + Send + 'a>;
type Detail = Box<dyn Fn(&(dyn Any + Send + Sync)) -> String + Send>;
/// What the executor keeps of a started step to report its end: its resource, action,
/// detail, and whether it reports its own failure.
type Report = (String, Option<String>, Option<Detail>, bool);

/// The handle of a step whose output is a `T`. Copy it into the bodies of the steps that need
/// it, and name it in their [`after`](StepBuilder::after).
pub struct Step<T> {
    index: usize,
    _output: PhantomData<fn() -> T>,
}

impl<T> Clone for Step<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Step<T> {}

impl<T> fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Step({})", self.index)
    }
}

/// A dependency: any step, whatever its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dep(usize);

impl<T> From<Step<T>> for Dep {
    fn from(step: Step<T>) -> Self {
        Dep(step.index)
    }
}

impl<T> From<&Step<T>> for Dep {
    fn from(step: &Step<T>) -> Self {
        Dep(step.index)
    }
}

/// The outputs of the steps a step declared it needs.
pub struct Inputs {
    values: Vec<(usize, Value)>,
}

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inputs")
            .field(
                "steps",
                &self.values.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Inputs {
    /// The output of `step`.
    ///
    /// # Panics
    ///
    /// When `step` is not among the steps this one was declared to run after: that is a bug
    /// in how the graph was built, which the first test of the graph shows.
    pub fn get<T: Send + Sync + 'static>(&self, step: Step<T>) -> &T {
        self.values
            .iter()
            .find(|(i, _)| *i == step.index)
            .and_then(|(_, v)| v.downcast_ref::<T>())
            .expect("a step reads only the outputs of the steps it runs after")
    }
}

/// Every step's output after a successful [`Graph::run`].
pub struct Outputs {
    values: Vec<Option<Value>>,
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outputs")
            .field("steps", &self.values.len())
            .finish()
    }
}

impl Outputs {
    /// The output of `step`.
    pub fn get<T: Send + Sync + 'static>(&self, step: Step<T>) -> &T {
        self.values[step.index]
            .as_deref()
            .and_then(|v| v.downcast_ref::<T>())
            .expect("every step ran, and a handle's type is its step's output type")
    }
}

struct Node<'a, E> {
    resource: String,
    action: Option<String>,
    deps: Vec<usize>,
    detail: Option<Detail>,
    reports_itself: bool,
    abandonable: bool,
    body: Body<'a, E>,
}

/// A dependency graph of steps whose bodies fail with `E`. See the [module](self) docs.
pub struct Graph<'a, E> {
    nodes: Vec<Node<'a, E>>,
    concurrency: usize,
}

impl<E> fmt::Debug for Graph<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field(
                "steps",
                &self
                    .nodes
                    .iter()
                    .map(|n| (&n.resource, &n.deps))
                    .collect::<Vec<_>>(),
            )
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl<E> Default for Graph<'_, E> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// A step being declared: what it is about, what it needs, what it reports. Finish it with
/// [`run`](Self::run).
#[must_use = "a step is added by `run`"]
pub struct StepBuilder<'g, 'a, E> {
    graph: &'g mut Graph<'a, E>,
    resource: String,
    action: Option<String>,
    deps: Vec<usize>,
    reports_itself: bool,
    abandonable: bool,
}

impl<E> fmt::Debug for StepBuilder<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepBuilder")
            .field("resource", &self.resource)
            .field("action", &self.action)
            .field("deps", &self.deps)
            .finish()
    }
}

impl<'a, E: Send + 'a> StepBuilder<'_, 'a, E> {
    /// Runs the step after `dep` is done (call once per dependency).
    ///
    /// # Panics
    ///
    /// When `dep` is not a step of this graph (a handle of another graph): a bug in how the
    /// graph is built.
    pub fn after(mut self, dep: impl Into<Dep>) -> Self {
        let Dep(index) = dep.into();
        assert!(
            index < self.graph.nodes.len(),
            "a step runs after steps added to its own graph before it"
        );
        if !self.deps.contains(&index) {
            self.deps.push(index);
        }
        self
    }

    /// Runs the step after every step of `deps`.
    pub fn after_all<D: Into<Dep>>(mut self, deps: impl IntoIterator<Item = D>) -> Self {
        for dep in deps {
            self = self.after(dep);
        }
        self
    }

    /// What the step does to its resource (`create`, `update`, `delete`, `wait`…): the
    /// executor reports `Started` with it, and `Done` when the step ends. A step without an
    /// action (one that finds its resource as desired) runs silently.
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    /// A step whose body reports its own progress and failures, such as a whole layer whose
    /// own graph reports each of its steps: the executor reports nothing for it, not even its
    /// failure (which it still returns), whatever [`action`](Self::action) says.
    pub fn reports_itself(mut self) -> Self {
        self.action = None;
        self.reports_itself = true;
        self
    }

    /// The same, when the action is only known from the plan (`None`: silent).
    pub fn action_if(mut self, action: Option<impl Into<String>>) -> Self {
        self.action = action.map(Into::into);
        self
    }

    /// Whether the step's action is `action`.
    pub(crate) fn action_is(&self, action: &str) -> bool {
        self.action.as_deref() == Some(action)
    }

    /// A step that only reads or waits (a readiness wait, say): once the graph has failed and
    /// only such steps are still running, the graph returns its error without waiting for
    /// them, since dropping a read abandons nothing (an abandoned step that reported
    /// `Started` reports neither `Done` nor `Failed`). Every other started step still runs
    /// to its end.
    pub fn abandonable(mut self) -> Self {
        self.abandonable = true;
        self
    }

    /// Adds the step with `body`, which gets the outputs of the steps it runs after, and
    /// returns its handle. The `Done` event's detail is the action's past tense.
    pub fn run<T, F, Fut>(self, body: F) -> Step<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce(Inputs) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        self.add(body, None)
    }

    /// Adds the step with `body`; the `Done` event's detail is `detail` of its output (an AWS
    /// id, for instance).
    pub fn run_with_detail<T, F, Fut>(
        self,
        detail: impl Fn(&T) -> String + Send + 'static,
        body: F,
    ) -> Step<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce(Inputs) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        let detail: Detail = Box::new(move |v| {
            v.downcast_ref::<T>()
                .map(&detail)
                .unwrap_or_else(|| "done".to_string())
        });
        self.add(body, Some(detail))
    }

    fn add<T, F, Fut>(self, body: F, detail: Option<Detail>) -> Step<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce(Inputs) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        let index = self.graph.nodes.len();
        let action = if self.reports_itself {
            None
        } else {
            self.action
        };
        let body: Body<'a, E> = Box::new(move |inputs| {
            Box::pin(async move { body(inputs).await.map(|v| Arc::new(v) as Value) })
        });
        self.graph.nodes.push(Node {
            resource: self.resource,
            action,
            deps: self.deps,
            detail,
            reports_itself: self.reports_itself,
            abandonable: self.abandonable,
            body,
        });
        Step {
            index,
            _output: PhantomData,
        }
    }
}

/// The past tense of an action, for `Done` events without a detail.
fn past(action: &str) -> String {
    match action {
        "create" => "created".into(),
        "update" => "updated".into(),
        "delete" => "deleted".into(),
        "replace" => "replaced".into(),
        "wait" => "ready".into(),
        other => format!("{other}: done"),
    }
}

impl<'a, E: fmt::Display + Send + 'a> Graph<'a, E> {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs at most `limit` steps at once (at least one).
    #[must_use]
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Starts declaring a step about `resource` (as events name it, e.g. `subnet public/a`).
    pub fn step(&mut self, resource: impl Into<String>) -> StepBuilder<'_, 'a, E> {
        StepBuilder {
            graph: self,
            resource: resource.into(),
            action: None,
            deps: Vec::new(),
            reports_itself: false,
            abandonable: false,
        }
    }

    /// How many steps the graph has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no step.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Runs every step, each as soon as the steps it needs are done, at most
    /// [`concurrency`](Self::concurrency) at once. After the first error no step starts; those
    /// already started run to their end; then that first error is returned.
    pub async fn run(self, ctx: &Context) -> Result<Outputs, E> {
        self.run_until(ctx, std::future::pending()).await
    }

    /// Runs the graph like [`run`](Self::run), until `stop` resolves: from then on it is
    /// as if a step had failed with `stop`'s error — no new step starts, the steps already
    /// started run to their end, and that error is returned (unless a step failed first).
    /// `stop` is polled from the start and before any new step starts, so work elsewhere (a
    /// wait another graph runs) can stop this graph at once without abandoning its requests
    /// in flight. A graph whose steps all ended before `stop` resolved returns their
    /// outputs.
    pub async fn run_until(
        self,
        ctx: &Context,
        stop: impl Future<Output = E>,
    ) -> Result<Outputs, E> {
        let mut stop = std::pin::pin!(stop);
        let mut stopped = false;
        let count = self.nodes.len();
        let mut waiting: Vec<usize> = Vec::with_capacity(count);
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
        let mut ready: VecDeque<usize> = VecDeque::new();
        let mut pending: Vec<Option<Node<'a, E>>> = Vec::with_capacity(count);
        for (index, node) in self.nodes.into_iter().enumerate() {
            for &dep in &node.deps {
                dependents[dep].push(index);
            }
            waiting.push(node.deps.len());
            if node.deps.is_empty() {
                ready.push_back(index);
            }
            pending.push(Some(node));
        }
        let mut values: Vec<Option<Value>> = vec![None; count];
        let mut reports: Vec<Option<Report>> = (0..count).map(|_| None).collect();
        let mut in_flight = FuturesUnordered::new();
        let mut first: Option<E> = None;
        // How many started steps must run to their end (those not `abandonable`).
        let mut busy = 0_usize;
        loop {
            // A stop that has come is seen before any new step starts.
            if !stopped {
                if let Some(error) = stop.as_mut().now_or_never() {
                    stopped = true;
                    first.get_or_insert(error);
                }
            }
            // Failed, with only abandonable steps left running: they are dropped.
            if first.is_some() && busy == 0 {
                break;
            }
            while first.is_none() && in_flight.len() < self.concurrency {
                let Some(index) = ready.pop_front() else {
                    break;
                };
                let Some(node) = pending[index].take() else {
                    continue;
                };
                let inputs = Inputs {
                    values: node
                        .deps
                        .iter()
                        .filter_map(|&d| values[d].clone().map(|v| (d, v)))
                        .collect(),
                };
                if let Some(action) = &node.action {
                    ctx.emit(Event::Started {
                        resource: node.resource.clone(),
                        action: action.clone(),
                    });
                }
                reports[index] =
                    Some((node.resource, node.action, node.detail, node.reports_itself));
                let body = (node.body)(inputs);
                let abandonable = node.abandonable;
                if !abandonable {
                    busy += 1;
                }
                in_flight.push(async move { (index, abandonable, body.await) });
            }
            let next = if stopped {
                in_flight.next().await
            } else {
                match futures_util::future::select(in_flight.next(), stop.as_mut()).await {
                    futures_util::future::Either::Left((next, _)) => next,
                    futures_util::future::Either::Right((error, _)) => {
                        stopped = true;
                        if first.is_none() {
                            first = Some(error);
                        }
                        continue;
                    }
                }
            };
            let Some(finished) = next else {
                break;
            };
            // Every step that has finished by now is taken in before any new step starts, so
            // that an error that has already happened stops what would start after it.
            let mut batch = vec![finished];
            while let Some(Some(finished)) = in_flight.next().now_or_never() {
                batch.push(finished);
            }
            for (index, abandonable, result) in batch {
                if !abandonable {
                    busy -= 1;
                }
                let (resource, action, detail, reports_itself) = reports[index]
                    .take()
                    .expect("a step that ran was reported as started");
                match result {
                    Ok(value) => {
                        if let Some(action) = action {
                            let detail = match &detail {
                                Some(detail) => detail(value.as_ref()),
                                None => past(&action),
                            };
                            ctx.emit(Event::Done { resource, detail });
                        }
                        values[index] = Some(value);
                        for &next in &dependents[index] {
                            waiting[next] -= 1;
                            if waiting[next] == 0 {
                                ready.push_back(next);
                            }
                        }
                    }
                    Err(error) => {
                        if !reports_itself {
                            ctx.emit(Event::Failed {
                                resource,
                                error: error.to_string(),
                            });
                        }
                        if first.is_none() {
                            first = Some(error);
                        }
                    }
                }
            }
        }
        match first {
            Some(error) => Err(error),
            None => {
                debug_assert!(values.iter().all(Option::is_some), "every step ran");
                Ok(Outputs { values })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventLog;
    use crate::names::StackName;
    use std::sync::Mutex;
    use tokio::sync::oneshot;

    fn ctx(events: &EventLog) -> Context {
        Context::builder()
            .stack(StackName::new("web").unwrap())
            .events(events.clone())
            .build()
    }

    /// A journal of what the steps did, in order.
    #[derive(Clone, Default)]
    struct Journal(Arc<Mutex<Vec<String>>>);

    impl Journal {
        fn log(&self, line: impl Into<String>) {
            self.0.lock().unwrap().push(line.into());
        }
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn a_step_starts_when_its_own_dependencies_are_done_and_waits_for_nothing_else() {
        let (events, journal) = (EventLog::new(), Journal::default());
        // `slow` finishes only when `released` is sent, which `independent`'s dependent does:
        // if `b` waited for `slow`, the graph would never finish.
        let (release, released) = oneshot::channel::<()>();
        let release = Mutex::new(Some(release));
        let mut g = Graph::<String>::new();
        let j = journal.clone();
        let slow = g.step("slow").run(move |_| async move {
            released.await.map_err(|e| e.to_string())?;
            j.log("slow done");
            Ok(1u32)
        });
        let j = journal.clone();
        let a = g.step("a").run(move |_| async move {
            j.log("a");
            Ok("vpc-1".to_string())
        });
        let j = journal.clone();
        let b = g.step("b").after(a).run(move |inputs| {
            let vpc = inputs.get(a).clone();
            async move {
                j.log(format!("b in {vpc}"));
                release.lock().unwrap().take().unwrap().send(()).unwrap();
                Ok(())
            }
        });
        let j = journal.clone();
        let c = g.step("c").after(slow).after(b).run(move |inputs| {
            let n = *inputs.get(slow);
            async move {
                j.log(format!("c after {n}"));
                Ok(n + 1)
            }
        });
        let out = g.run(&ctx(&events)).await.unwrap();
        assert_eq!(*out.get(c), 2);
        assert_eq!(
            journal.lines(),
            ["a", "b in vpc-1", "slow done", "c after 1"]
        );
    }

    #[tokio::test]
    async fn after_the_first_error_no_step_starts_but_started_steps_finish() {
        let (events, journal) = (EventLog::new(), Journal::default());
        let (release, released) = oneshot::channel::<()>();
        let mut g = Graph::<String>::new();
        let j = journal.clone();
        // In flight when `fails` fails: it must run to its end.
        g.step("in-flight").run(move |_| async move {
            j.log("in-flight started");
            released.await.map_err(|e| e.to_string())?;
            j.log("in-flight finished");
            Ok(())
        });
        let j = journal.clone();
        let fails = g.step("fails").action("create").run(move |_| async move {
            j.log("fails");
            release.send(()).unwrap();
            Err::<(), _>("boom".to_string())
        });
        let j = journal.clone();
        let later = g.step("independent-later").run(move |_| async move {
            tokio::task::yield_now().await;
            j.log("later");
            Ok(())
        });
        let j = journal.clone();
        g.step("dependent").after(fails).run(move |_| async move {
            j.log("dependent");
            Ok(())
        });
        let j = journal.clone();
        g.step("after-later").after(later).run(move |_| async move {
            j.log("after-later");
            Ok(())
        });
        let err = g.concurrency(3).run(&ctx(&events)).await.unwrap_err();
        assert_eq!(err, "boom");
        let lines = journal.lines();
        assert!(
            lines.contains(&"in-flight finished".to_string()),
            "{lines:?}"
        );
        assert!(!lines.contains(&"dependent".to_string()), "{lines:?}");
        assert!(!lines.contains(&"after-later".to_string()), "{lines:?}");
        assert!(events.events().contains(&Event::Failed {
            resource: "fails".into(),
            error: "boom".into()
        }));
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let events = EventLog::new();
        let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
        let mut g = Graph::<String>::new();
        for i in 0..10 {
            let in_flight = in_flight.clone();
            g.step(format!("step {i}")).run(move |_| async move {
                {
                    let mut s = in_flight.lock().unwrap();
                    s.0 += 1;
                    s.1 = s.1.max(s.0);
                }
                // Yield a few times so that every step that could start does.
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
                in_flight.lock().unwrap().0 -= 1;
                Ok(())
            });
        }
        g.concurrency(3).run(&ctx(&events)).await.unwrap();
        assert_eq!(in_flight.lock().unwrap().1, 3);
    }

    #[tokio::test]
    async fn the_executor_reports_steps_that_change_something_and_only_those() {
        let events = EventLog::new();
        let mut g = Graph::<String>::new();
        let vpc = g.step("vpc vpc").action("create").run_with_detail(
            |id: &String| id.clone(),
            |_| async { Ok("vpc-1".to_string()) },
        );
        g.step("subnet a")
            .after(vpc)
            .action_if(None::<String>)
            .run(|_| async { Ok(()) });
        g.step("route-table rt")
            .after(vpc)
            .action("update")
            .run(|_| async { Ok(()) });
        g.run(&ctx(&events)).await.unwrap();
        assert_eq!(
            events.events(),
            [
                Event::Started {
                    resource: "vpc vpc".into(),
                    action: "create".into()
                },
                Event::Done {
                    resource: "vpc vpc".into(),
                    detail: "vpc-1".into()
                },
                Event::Started {
                    resource: "route-table rt".into(),
                    action: "update".into()
                },
                Event::Done {
                    resource: "route-table rt".into(),
                    detail: "updated".into()
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_stop_from_outside_starts_no_new_step_and_lets_started_ones_finish() {
        let events = EventLog::new();
        let (release_a, a_gate) = oneshot::channel::<()>();
        let (fire_stop, stop_gate) = oneshot::channel::<()>();
        let finished = Mutex::new(Vec::new());
        let mut g = Graph::<String>::new();
        let a = g.step("a").run(|_| async {
            a_gate.await.expect("released");
            finished.lock().unwrap().push("a");
            Ok(())
        });
        g.step("b").after(a).run(|_| async {
            finished.lock().unwrap().push("b");
            Ok(())
        });
        let stop = async {
            stop_gate.await.expect("fired");
            "the NAT gateways failed".to_string()
        };
        let context = ctx(&events);
        let run = g.run_until(&context, stop);
        // The stop fires while `a` is in flight; `a` is released only after.
        let drive = async {
            tokio::task::yield_now().await;
            fire_stop.send(()).unwrap();
            tokio::task::yield_now().await;
            release_a.send(()).unwrap();
        };
        let (result, ()) = futures_util::join!(run, drive);
        assert_eq!(result.unwrap_err(), "the NAT gateways failed");
        assert_eq!(
            *finished.lock().unwrap(),
            ["a"],
            "a finished, b never started"
        );
    }

    #[tokio::test]
    async fn a_failed_graph_drops_its_abandonable_steps_but_not_the_others() {
        let events = EventLog::new();
        let context = ctx(&events);
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let finished = Mutex::new(false);
        let mut g = Graph::<String>::new();
        // A wait that never ends, a step held by a gate, and one that fails.
        g.step("wait")
            .abandonable()
            .run(|_| std::future::pending::<Result<(), String>>());
        g.step("slow").run(|_| async {
            gate.await.ok();
            *finished.lock().unwrap() = true;
            Ok(())
        });
        g.step("bad")
            .run(|_| async { Err::<(), _>("boom".to_string()) });
        let run = async {
            let (result, ()) = futures_util::join!(g.run(&context), async {
                // The failure is in; the graph still waits for the held step.
                tokio::task::yield_now().await;
                assert!(!*finished.lock().unwrap());
                release.send(()).unwrap();
            });
            result
        };
        // Polled on this one thread, the graph ends within a bounded number of polls once
        // the held step is done, the endless wait dropped; it would never end otherwise.
        let bound = async {
            for _ in 0..1000 {
                tokio::task::yield_now().await;
            }
        };
        match futures_util::future::select(Box::pin(run), Box::pin(bound)).await {
            futures_util::future::Either::Left((result, _)) => {
                assert_eq!(result.unwrap_err(), "boom")
            }
            futures_util::future::Either::Right(_) => {
                panic!("the graph waited for its abandonable step")
            }
        }
        assert!(*finished.lock().unwrap(), "the held step ran to its end");
    }

    #[tokio::test]
    async fn a_stop_that_has_come_starts_nothing_and_one_that_never_comes_changes_nothing() {
        let events = EventLog::new();
        let started = Mutex::new(0);
        let mut g = Graph::<String>::new();
        g.step("a").run(|_| async {
            *started.lock().unwrap() += 1;
            Ok(())
        });
        let out = g
            .run_until(&ctx(&events), async { "stopped".to_string() })
            .await;
        assert_eq!(out.unwrap_err(), "stopped");
        assert_eq!(*started.lock().unwrap(), 0);

        let mut g = Graph::<String>::new();
        let a = g.step("a").run(|_| async { Ok(7u8) });
        let out = g
            .run_until(&ctx(&events), std::future::pending::<String>())
            .await;
        assert_eq!(*out.unwrap().get(a), 7);
    }

    #[tokio::test]
    async fn a_step_that_reports_itself_fails_silently_while_others_report_their_failure() {
        let events = EventLog::new();
        let mut g = Graph::<String>::new();
        // In either order, `reports_itself` wins over an action.
        g.step("service layer")
            .reports_itself()
            .action("apply")
            .run(|_| async { Err::<(), _>("the layer's own error".to_string()) });
        g.step("log group")
            .run(|_| async { Err::<(), _>("denied".to_string()) });
        let error = g.run(&ctx(&events)).await.unwrap_err();
        assert!(
            error == "the layer's own error" || error == "denied",
            "{error}"
        );
        assert_eq!(
            events.events(),
            [Event::Failed {
                resource: "log group".into(),
                error: "denied".into()
            }]
        );
    }

    #[test]
    #[should_panic(expected = "a step reads only the outputs of the steps it runs after")]
    fn reading_an_undeclared_step_is_a_bug_caught_at_once() {
        let mut g = Graph::<String>::new();
        let a = g.step("a").run(|_| async { Ok(1u8) });
        let inputs = Inputs { values: Vec::new() };
        let _ = inputs.get(a);
    }
}
