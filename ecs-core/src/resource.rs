//! Resource kinds: data plus five verbs, and the engine that plans and applies them.
//!
//! A kind implements [`Resource`]: its name, its logical id, how the engine tells that a live
//! resource is the stack's ([`Ownership`]), a typed [`Diff`] of desired against live, the
//! replacement rule, and `create`, `update` (from the diff) and `delete`. Reads are the
//! layer's (batched with the other reads of the same API). Nothing else: a kind emits no
//! progress event (the [`graph`](crate::graph) executor does), renders no plan line (the
//! engine does, from the typed diff) and refuses no read itself: [`check_owned`] does, by the
//! kind's declared [`Ownership`]. (A kind may ask [`owned`] to decide how much more to read,
//! or whether a resource its create found is its own.)
//!
//! [`check_owned`] refuses a live resource that is not the stack's; [`decide`] turns a
//! desired resource and what the read found into a [`Planned`] action (both at once:
//! [`plan`]); [`Planned::change`] renders it for the plan; [`converge`] carries it out, making
//! no call when nothing differs; in a graph, [`StepBuilder::converge`] is the whole step of
//! one resource. [`delete`] deletes only what the stack owns. A kind made bare first and
//! finished by a later step (resources that name each other) is [`Staged`]: its steps are
//! [`StepBuilder::make`] and [`StepBuilder::finish`].
//!
//! ```
//! use ecs_core::resource::{Diff, Known};
//! use ecs_core::FieldDiff;
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum PortDiff { Port { live: u16, desired: u16 } }
//! impl Diff for PortDiff {
//!     fn field(&self) -> FieldDiff {
//!         match self { PortDiff::Port { live, desired } => FieldDiff::new("port", live, desired) }
//!     }
//! }
//! assert_eq!(PortDiff::Port { live: 80, desired: 8080 }.field(), FieldDiff::new("port", 80, 8080));
//! assert_eq!(Known::<String>::AfterApply.to_string(), "(known after apply)");
//! ```

use std::fmt;
use std::future::Future;

use crate::context::Context;
use crate::graph::{Inputs, Step, StepBuilder};
use crate::plan::{Action, Change, FieldDiff};
use crate::tags::Tags;

/// What a value is before the resource that gives it exists.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// A value known now, or only once apply has made the resource that gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Known<T> {
    /// Known now.
    Known(T),
    /// Known once apply has made the resource that gives it.
    #[default]
    AfterApply,
}

impl<T> Known<T> {
    /// The value, when known.
    pub fn get(&self) -> Option<&T> {
        match self {
            Known::Known(v) => Some(v),
            Known::AfterApply => None,
        }
    }

    /// The value, when known.
    pub fn into_option(self) -> Option<T> {
        match self {
            Known::Known(v) => Some(v),
            Known::AfterApply => None,
        }
    }

    /// Whether the value is known now.
    pub fn is_known(&self) -> bool {
        matches!(self, Known::Known(_))
    }

    /// The known value mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Known<U> {
        match self {
            Known::Known(v) => Known::Known(f(v)),
            Known::AfterApply => Known::AfterApply,
        }
    }
}

impl<T> From<Option<T>> for Known<T> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Known::AfterApply, Known::Known)
    }
}

impl<T: fmt::Display> fmt::Display for Known<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Known::Known(v) => v.fmt(f),
            Known::AfterApply => f.write_str(KNOWN_AFTER_APPLY),
        }
    }
}

/// How the engine tells that a live resource is the stack's. Declared once per kind;
/// checked by the engine ([`plan`]), never by the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ownership {
    /// The resource carries the stack's owner tag (most kinds: tags applied at creation).
    Tag,
    /// The resource belongs to one that carries the stack's tag, whose tags decide whether it
    /// is the stack's (its own tags, if it has any, do not): a VPC's default security group,
    /// a load balancer's listener or rule. The kind reports its owner's tags.
    Owner,
    /// The resource carries a mark in its body or its name (a dashboard's body, a policy's
    /// name prefix on the stack's own service): the kind reports whether the mark names the
    /// stack.
    Mark,
}

/// What a live resource shows of its ownership, as [`Resource::owner`] reports it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Owner<'a> {
    /// Its own tags ([`Ownership::Tag`]) or its owner's ([`Ownership::Owner`]).
    Tags(&'a Tags),
    /// Whether its mark names the stack ([`Ownership::Mark`]).
    Mark(bool),
}

/// One typed difference between a desired resource and the live one: a field enum whose
/// variants carry the live and desired values. The plan renders it with [`Diff::field`];
/// `update` matches on it, so a difference cannot be lost to a misspelt field name.
pub trait Diff: fmt::Debug + Clone + Send + Sync {
    /// The difference as a plan line (`field: old → new`).
    fn field(&self) -> FieldDiff;
}

/// A resource kind. See the [module](self) docs.
///
/// The verbs take the context (for [`Context::call`], tags and client tokens) and the
/// kind's client; they return the kind's error type, which every layer already has.
pub trait Resource: Send + Sync {
    /// The kind as plans and events name it, e.g. `default-security-group`.
    const KIND: &'static str;
    /// How the engine tells that a live resource is the stack's.
    const OWNERSHIP: Ownership;
    /// The SDK client the verbs call through.
    type Client: Send + Sync;
    /// What a read found of one resource.
    type Live: fmt::Debug + Clone + Send + Sync;
    /// One typed difference.
    type Diff: Diff;
    /// What the resources that depend on this one need of it (usually its id).
    type Output: Clone + Send + Sync + 'static;
    /// The error of the verbs.
    type Error: Send;

    /// Its logical id in the stack, e.g. `default-sg`.
    fn logical_id(&self) -> String;

    /// A short description of the desired resource for the plan (possibly empty).
    fn detail(&self) -> String {
        String::new()
    }

    /// What `live` shows of its ownership.
    fn owner(live: &Self::Live) -> Owner<'_>;

    /// Every difference between `self` and `live`, in a stable order.
    fn diff(&self, live: &Self::Live) -> Vec<Self::Diff>;

    /// Why `live` cannot be changed in place into `self`, when it cannot.
    fn replacement(&self, _live: &Self::Live) -> Option<String> {
        None
    }

    /// What the resources that depend on this one get from the live resource.
    fn output(live: &Self::Live) -> Self::Output;

    /// What the progress report says once the resource is created (its AWS id, say); `None`
    /// says `created`.
    fn created(_output: &Self::Output) -> Option<String> {
        None
    }

    /// What the progress report says once the resource is updated (a deployment's id, say);
    /// `None` says `updated`.
    fn updated(_output: &Self::Output) -> Option<String> {
        None
    }

    /// Makes the resource, which no read found.
    fn create(
        &self,
        ctx: &Context,
        client: &Self::Client,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// Brings `live` to `self` by resolving each of `diffs`.
    fn update(
        &self,
        ctx: &Context,
        client: &Self::Client,
        live: &Self::Live,
        diffs: &[Self::Diff],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Brings `live` to `self` like [`update`](Self::update) and returns what the resources
    /// that depend on this one get: by default the live resource's [`output`](Self::output).
    /// A kind whose update yields something new (a deployment, a revision) overrides it.
    fn update_output(
        &self,
        ctx: &Context,
        client: &Self::Client,
        live: &Self::Live,
        diffs: &[Self::Diff],
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send {
        async move {
            self.update(ctx, client, live, diffs).await?;
            Ok(Self::output(live))
        }
    }

    /// Deletes `live`.
    fn delete(
        ctx: &Context,
        client: &Self::Client,
        live: &Self::Live,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A kind made in two steps: [`make`](Staged::make) creates it bare, from what is known as
/// soon as its container exists (a security group in its VPC), and a later step brings it to
/// the whole desired resource once what that needs exists (the groups its rules name, the
/// subnets a route table is associated with). Resources that name each other (two groups
/// whose rules reference one another) are made so without a cycle, and what depends only on
/// the bare resource's id starts at once. In a graph: [`StepBuilder::make`], then
/// [`StepBuilder::finish`]. Its [`Resource::create`] is both steps at once.
pub trait Staged: Resource {
    /// Creates the resource bare and returns it as a read would find it then (what AWS gives
    /// a new one: a group's egress rule, a VPC's DNS support).
    fn make(
        &self,
        ctx: &Context,
        client: &Self::Client,
    ) -> impl Future<Output = Result<Self::Live, Self::Error>> + Send;
}

/// What the engine will do to one resource, as [`plan`] decided from the read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Planned<R: Resource> {
    /// No read found it: create it.
    Create,
    /// It differs: resolve each typed difference in place.
    Update {
        /// What the read found.
        live: R::Live,
        /// The differences, in order.
        diffs: Vec<R::Diff>,
    },
    /// It cannot be changed in place, for this reason.
    Replace {
        /// What the read found.
        live: R::Live,
        /// Why.
        reason: String,
    },
    /// It is as desired.
    NoChange(R::Live),
}

impl<R: Resource> Planned<R> {
    /// The plan's [`Action`].
    pub fn action(&self) -> Action {
        match self {
            Planned::Create => Action::Create,
            Planned::Update { diffs, .. } => {
                Action::Update(diffs.iter().map(Diff::field).collect())
            }
            Planned::Replace { reason, .. } => Action::Replace(reason.clone()),
            Planned::NoChange(_) => Action::NoChange,
        }
    }

    /// The plan line of `desired`.
    pub fn change(&self, desired: &R) -> Change {
        Change::new(R::KIND, desired.logical_id(), self.action()).with_detail(desired.detail())
    }

    /// The verb the executor reports when the step starts (`None` when nothing changes).
    pub fn verb(&self) -> Option<&'static str> {
        self.action().verb()
    }
}

/// A live resource that is not the stack's stands where the stack wants one of its own (its
/// deterministic name is taken, or it sits in a place only the stack's should): it is never
/// changed or deleted. The one "conflict with a foreign resource" error of every layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} `{name}` already exists and is not owned by stack `{stack}` ({why}); it is left \
     untouched: rename the stack or the application, or remove the other resource"
)]
#[non_exhaustive]
pub struct Foreign {
    /// The kind.
    pub kind: &'static str,
    /// Its name, or the logical id the stack wants it as.
    pub name: String,
    /// The stack that wanted it.
    pub stack: String,
    /// What showed it is not the stack's.
    pub why: &'static str,
}

impl Foreign {
    /// `kind` `name`, wanted by the stack of `ctx`, is not the stack's because `why`.
    pub fn new(
        ctx: &Context,
        kind: &'static str,
        name: impl Into<String>,
        why: &'static str,
    ) -> Self {
        Self {
            kind,
            name: name.into(),
            stack: ctx.stack().to_string(),
            why,
        }
    }

    /// `kind` `name` lacks the stack's owner tag.
    pub fn untagged(ctx: &Context, kind: &'static str, name: impl Into<String>) -> Self {
        Self::new(ctx, kind, name, WHY_TAG)
    }
}

/// Why a resource of an [`Ownership::Tag`] kind is not the stack's.
const WHY_TAG: &str = "it lacks the stack's tag";

/// A resource an operation needs does not exist (an imported VPC's subnet, the revision a
/// rollback returns to): the one "not found" error of every layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{resource} {id} does not exist")]
#[non_exhaustive]
pub struct NotFound {
    /// What kind of resource (possibly with a qualifier: `previous revision of`).
    pub resource: String,
    /// Its name or id.
    pub id: String,
}

impl NotFound {
    /// `resource` `id` does not exist.
    pub fn new(resource: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            id: id.into(),
        }
    }
}

/// A resource must be replaced, which is never done in place: the one "replacement required"
/// error of every layer. The layers refuse a plan that replaces anything before any change
/// (what runs on a VPC, a subnet, a load balancer or a target group would be interrupted);
/// an apply step meets one only when the world changed since the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} {id} must be replaced ({reason}); it is never replaced in place, since what runs on \
     it would be interrupted: destroy the stack first, or keep the old value"
)]
#[non_exhaustive]
pub struct Replacement {
    /// The kind.
    pub kind: String,
    /// The logical id.
    pub id: String,
    /// Why it cannot be changed in place.
    pub reason: String,
}

impl Replacement {
    /// `kind` `id` must be replaced, because `reason`.
    pub fn new(kind: impl Into<String>, id: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            reason: reason.into(),
        }
    }
}

/// An apply step found the world changed since the plan's read (an API answered that a
/// resource the plan creates already exists, say): the step stops rather than improvise.
/// Each layer carries it in its own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {id} {what} since the plan read it; run the plan again")]
#[non_exhaustive]
pub struct Changed {
    /// The kind.
    pub kind: &'static str,
    /// The logical id.
    pub id: String,
    /// What happened, e.g. `was created by someone else`.
    pub what: &'static str,
}

impl Changed {
    /// `kind` `id` `what` since the plan read it.
    pub fn new(kind: &'static str, id: impl Into<String>, what: &'static str) -> Self {
        Self {
            kind,
            id: id.into(),
            what,
        }
    }
}

/// Decides what to do to `desired` given what the read found (`None`: nothing). A live
/// resource that is not the stack's, by the kind's [`Ownership`], is refused.
pub fn plan<R: Resource>(
    ctx: &Context,
    desired: &R,
    live: Option<R::Live>,
) -> Result<Planned<R>, Foreign> {
    if let Some(live) = &live {
        check_owned::<R>(ctx, &desired.logical_id(), live)?;
    }
    Ok(decide(desired, live))
}

/// `Ok` when `live` is the stack's by the kind's [`Ownership`], else the [`Foreign`] error
/// that names it as `id`. A layer that reads before it plans checks each read with it, so a
/// foreign resource stops a deploy before any change.
pub fn check_owned<R: Resource>(ctx: &Context, id: &str, live: &R::Live) -> Result<(), Foreign> {
    if owned::<R>(ctx, live) {
        return Ok(());
    }
    Err(Foreign::new(
        ctx,
        R::KIND,
        id,
        match R::OWNERSHIP {
            Ownership::Tag => WHY_TAG,
            Ownership::Owner => "what it belongs to lacks the stack's tag",
            Ownership::Mark => "it lacks the stack's mark",
        },
    ))
}

/// What to do to `desired` given what the read found, once the read's ownership has been
/// checked ([`check_owned`]): the replacement rule, then the typed diff.
pub fn decide<R: Resource>(desired: &R, live: Option<R::Live>) -> Planned<R> {
    let Some(live) = live else {
        return Planned::Create;
    };
    if let Some(reason) = desired.replacement(&live) {
        return Planned::Replace { live, reason };
    }
    let diffs = desired.diff(&live);
    if diffs.is_empty() {
        Planned::NoChange(live)
    } else {
        Planned::Update { live, diffs }
    }
}

/// Whether `live` is the stack's, by the kind's [`Ownership`].
pub fn owned<R: Resource>(ctx: &Context, live: &R::Live) -> bool {
    match R::owner(live) {
        Owner::Tags(tags) => ctx.owns(tags.iter().map(|(k, v)| (Some(k), Some(v)))),
        Owner::Mark(mark) => mark,
    }
}

/// Deletes `live` when it is the stack's and returns `true`; leaves a resource that is not the
/// stack's alone and returns `false`, without a call: the ownership rule of the kind, checked
/// for a delete as [`plan`] checks it for a change.
pub async fn delete<R: Resource>(
    ctx: &Context,
    client: &R::Client,
    live: &R::Live,
) -> Result<bool, R::Error> {
    if !owned::<R>(ctx, live) {
        return Ok(false);
    }
    R::delete(ctx, client, live).await?;
    Ok(true)
}

/// Carries out `planned` for `desired` and returns its output; makes no call when nothing
/// differs. A replacement is never carried out here: the caller refuses it before any change
/// (`replaced` builds its error).
pub async fn converge<R: Resource>(
    ctx: &Context,
    client: &R::Client,
    desired: &R,
    planned: &Planned<R>,
    replaced: impl FnOnce(String) -> R::Error,
) -> Result<R::Output, R::Error> {
    match planned {
        Planned::Create => desired.create(ctx, client).await,
        Planned::Update { live, diffs } => desired.update_output(ctx, client, live, diffs).await,
        Planned::Replace { reason, .. } => Err(replaced(reason.clone())),
        Planned::NoChange(live) => Ok(R::output(live)),
    }
}

impl<'a, E: Send + 'a> StepBuilder<'_, 'a, E> {
    /// Adds the step of one resource: once the steps it runs after are done, `desired` builds
    /// the resource from their outputs, the engine [decides](decide) against `live` (what the
    /// plan's read found, its ownership already checked) and [converges](converge) it. The
    /// step is reported under the label given to [`Graph::step`](crate::graph::Graph::step)
    /// with the plan's action (`None`: silent); its `Done` detail is [`Resource::created`]
    /// (or `created`) after a create, [`Resource::updated`] (or `updated`) after an update.
    /// Its output is the kind's.
    pub fn converge<R, D>(
        self,
        ctx: &'a Context,
        client: &'a R::Client,
        live: Option<R::Live>,
        desired: D,
    ) -> Step<R::Output>
    where
        R: Resource + 'a,
        R::Live: 'a,
        R::Error: From<Replacement>,
        E: From<R::Error>,
        D: FnOnce(&Inputs) -> R + Send + 'a,
    {
        let creating = self.action_is("create");
        self.run_with_detail(
            move |out: &R::Output| match creating {
                true => R::created(out).unwrap_or_else(|| "created".to_string()),
                false => R::updated(out).unwrap_or_else(|| "updated".to_string()),
            },
            move |inputs| {
                let desired = desired(&inputs);
                async move { Ok(decide_and_converge(ctx, client, &desired, live).await?) }
            },
        )
    }
}

/// [`decide`]s `desired` against `live` and [`converge`]s it; a replacement is the kind's
/// [`Replacement`] error.
async fn decide_and_converge<R>(
    ctx: &Context,
    client: &R::Client,
    desired: &R,
    live: Option<R::Live>,
) -> Result<R::Output, R::Error>
where
    R: Resource,
    R::Error: From<Replacement>,
{
    let planned = decide(desired, live);
    converge(ctx, client, desired, &planned, |reason| {
        R::Error::from(Replacement::new(R::KIND, desired.logical_id(), reason))
    })
    .await
}

impl<'a, E: Send + 'a> StepBuilder<'_, 'a, E> {
    /// Adds the first step of a [`Staged`] resource: the resource as `live` (what the plan's
    /// read found) has it, or, when the read found none, made bare by [`Staged::make`] from
    /// `desired` (which need only carry what `make` uses). Its output is the live resource,
    /// which [`finish`](Self::finish) brings to the whole desired one. Reported like
    /// [`converge`](Self::converge) (`Done` detail: [`Resource::created`] of its output).
    pub fn make<R, D>(
        self,
        ctx: &'a Context,
        client: &'a R::Client,
        live: Option<R::Live>,
        desired: D,
    ) -> Step<R::Live>
    where
        R: Staged + 'a,
        R::Live: 'static,
        E: From<R::Error>,
        D: FnOnce(&Inputs) -> R + Send + 'a,
    {
        self.run_with_detail(
            |live: &R::Live| R::created(&R::output(live)).unwrap_or_else(|| "created".to_string()),
            move |inputs| {
                let desired = desired(&inputs);
                async move {
                    match live {
                        Some(live) => Ok(live),
                        None => Ok(desired.make(ctx, client).await?),
                    }
                }
            },
        )
    }

    /// Adds the second step of a [`Staged`] resource: once `made` (its
    /// [`make`](Self::make) step) and the other steps it runs after are done, `desired` builds
    /// the whole resource from their outputs and the engine [decides](decide) it against the
    /// live resource `made` gives and [converges](converge) it (an update, or no call). Its
    /// output is the kind's.
    pub fn finish<R, D>(
        self,
        ctx: &'a Context,
        client: &'a R::Client,
        made: Step<R::Live>,
        desired: D,
    ) -> Step<R::Output>
    where
        R: Staged + 'a,
        R::Live: 'static,
        R::Error: From<Replacement>,
        E: From<R::Error>,
        D: FnOnce(&Inputs) -> R + Send + 'a,
    {
        self.after(made).run_with_detail(
            |out: &R::Output| R::updated(out).unwrap_or_else(|| "updated".to_string()),
            move |inputs| {
                let live = inputs.get(made).clone();
                let desired = desired(&inputs);
                async move { Ok(decide_and_converge(ctx, client, &desired, Some(live)).await?) }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;
    use crate::names::StackName;
    use crate::tags::OWNER_TAG;
    use std::sync::Mutex;

    /// A toy kind: a named port, updated in place, replaced when its protocol changes.
    #[derive(Debug)]
    struct Port {
        name: &'static str,
        port: u16,
        protocol: &'static str,
    }

    #[derive(Debug, Clone)]
    struct LivePort {
        id: String,
        port: u16,
        protocol: &'static str,
        tags: Tags,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum PortDiff {
        Port { live: u16, desired: u16 },
    }

    impl Diff for PortDiff {
        fn field(&self) -> FieldDiff {
            match self {
                PortDiff::Port { live, desired } => FieldDiff::new("port", live, desired),
            }
        }
    }

    /// The calls the verbs made.
    #[derive(Default)]
    struct Calls(Mutex<Vec<String>>);

    impl Resource for Port {
        const KIND: &'static str = "port";
        const OWNERSHIP: Ownership = Ownership::Tag;
        type Client = Calls;
        type Live = LivePort;
        type Diff = PortDiff;
        type Output = String;
        type Error = String;

        fn logical_id(&self) -> String {
            self.name.to_string()
        }

        fn owner(live: &LivePort) -> Owner<'_> {
            Owner::Tags(&live.tags)
        }

        fn diff(&self, live: &LivePort) -> Vec<PortDiff> {
            (live.port != self.port)
                .then_some(PortDiff::Port {
                    live: live.port,
                    desired: self.port,
                })
                .into_iter()
                .collect()
        }

        fn replacement(&self, live: &LivePort) -> Option<String> {
            (live.protocol != self.protocol)
                .then(|| format!("protocol {} → {}", live.protocol, self.protocol))
        }

        fn output(live: &LivePort) -> String {
            live.id.clone()
        }

        async fn create(&self, _: &Context, calls: &Calls) -> Result<String, String> {
            calls
                .0
                .lock()
                .unwrap()
                .push(format!("create {}", self.port));
            Ok("port-1".into())
        }

        async fn update(
            &self,
            _: &Context,
            calls: &Calls,
            live: &LivePort,
            diffs: &[PortDiff],
        ) -> Result<(), String> {
            for d in diffs {
                match d {
                    PortDiff::Port { desired, .. } => calls
                        .0
                        .lock()
                        .unwrap()
                        .push(format!("set {} port {desired}", live.id)),
                }
            }
            Ok(())
        }

        async fn delete(_: &Context, calls: &Calls, live: &LivePort) -> Result<(), String> {
            calls.0.lock().unwrap().push(format!("delete {}", live.id));
            Ok(())
        }
    }

    fn ctx() -> Context {
        Context::builder()
            .stack(StackName::new("web").unwrap())
            .build()
    }

    fn live(port: u16, protocol: &'static str, owner: &str) -> LivePort {
        LivePort {
            id: "port-9".into(),
            port,
            protocol,
            tags: Tags::new().with(OWNER_TAG, owner),
        }
    }

    #[tokio::test]
    async fn plan_and_converge_table() {
        let desired = Port {
            name: "http",
            port: 8080,
            protocol: "tcp",
        };
        // (what the read found, the plan line, the calls converge makes, its output)
        type Case = (
            Option<LivePort>,
            &'static str,
            Vec<&'static str>,
            Result<&'static str, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (None, "  + port http", vec!["create 8080"], Ok("port-1")),
            (
                Some(live(8080, "tcp", "web")),
                "    port http",
                vec![],
                Ok("port-9"),
            ),
            (
                Some(live(80, "tcp", "web")),
                "  ~ port http\n      ~ port: 80 → 8080",
                vec!["set port-9 port 8080"],
                Ok("port-9"),
            ),
            (
                Some(live(8080, "udp", "web")),
                "-/+ port http\n      must be replaced: protocol udp → tcp",
                vec![],
                Err("refused: protocol udp → tcp"),
            ),
        ];
        for (found, line, calls, output) in cases {
            let ctx = ctx();
            let planned = plan(&ctx, &desired, found).unwrap();
            assert_eq!(planned.change(&desired).to_string(), line);
            let client = Calls::default();
            let out = converge(&ctx, &client, &desired, &planned, |r| {
                format!("refused: {r}")
            })
            .await;
            assert_eq!(out.as_deref().map_err(String::as_str), output, "{line}");
            assert_eq!(*client.0.lock().unwrap(), calls, "{line}");
        }
    }

    #[tokio::test]
    async fn only_the_stacks_resources_are_deleted() {
        let (ctx, client) = (ctx(), Calls::default());
        assert!(!delete::<Port>(&ctx, &client, &live(80, "tcp", "other"))
            .await
            .unwrap());
        assert!(client.0.lock().unwrap().is_empty());
        assert!(delete::<Port>(&ctx, &client, &live(80, "tcp", "web"))
            .await
            .unwrap());
        assert_eq!(*client.0.lock().unwrap(), ["delete port-9"]);
    }

    #[test]
    fn a_live_resource_without_the_stack_tag_is_refused() {
        let desired = Port {
            name: "http",
            port: 8080,
            protocol: "tcp",
        };
        let err = plan(&ctx(), &desired, Some(live(8080, "tcp", "other"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "port `http` already exists and is not owned by stack `web` (it lacks the stack's tag); \
             it is left untouched: rename the stack or the application, or remove the other resource"
        );
    }

    impl From<Replacement> for String {
        fn from(r: Replacement) -> String {
            format!("refused: {r}")
        }
    }

    #[tokio::test]
    async fn a_converge_step_builds_the_resource_from_its_inputs_and_reports_the_outcome() {
        use crate::events::{Event, EventLog};
        let events = EventLog::new();
        let ctx = Context::builder()
            .stack(StackName::new("web").unwrap())
            .events(events.clone())
            .build();
        let client = Calls::default();
        let mut g = Graph::<String>::new();
        let port = g.step("port source").run(|_| async { Ok(8080_u16) });
        // Absent: created, with the port the step before gave.
        let made = g.step("port http").after(port).action("create").converge(
            &ctx,
            &client,
            None,
            move |i| Port {
                name: "http",
                port: *i.get(port),
                protocol: "tcp",
            },
        );
        // Differs: updated from the typed diff against what the read found.
        let changed = g.step("port admin").after(made).action("update").converge(
            &ctx,
            &client,
            Some(live(80, "tcp", "web")),
            |_| Port {
                name: "admin",
                port: 8081,
                protocol: "tcp",
            },
        );
        // Must be replaced: refused with the kind's replacement error, no call.
        let replaced = g.step("port dns").after(changed).action("update").converge(
            &ctx,
            &client,
            Some(live(53, "tcp", "web")),
            |_| Port {
                name: "dns",
                port: 53,
                protocol: "udp",
            },
        );
        let _ = replaced;
        let err = g.run(&ctx).await.unwrap_err();
        assert_eq!(
            err,
            "refused: port dns must be replaced (protocol tcp → udp); it is never replaced in \
             place, since what runs on it would be interrupted: destroy the stack first, or keep \
             the old value"
        );
        assert_eq!(
            *client.0.lock().unwrap(),
            ["create 8080", "set port-9 port 8081"]
        );
        let done: Vec<Event> = events
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::Done { .. }))
            .collect();
        assert_eq!(
            done,
            [
                Event::Done {
                    resource: "port http".into(),
                    detail: "created".into()
                },
                Event::Done {
                    resource: "port admin".into(),
                    detail: "updated".into()
                },
            ]
        );
    }

    impl Staged for Port {
        /// Made bare on port 1; `finish` sets the port.
        async fn make(&self, _: &Context, calls: &Calls) -> Result<LivePort, String> {
            calls.0.lock().unwrap().push("make".into());
            Ok(LivePort {
                id: "port-1".into(),
                port: 1,
                protocol: self.protocol,
                tags: Tags::new().with(OWNER_TAG, "web"),
            })
        }
    }

    #[tokio::test]
    async fn a_staged_resource_is_made_bare_then_finished_from_inputs_made_after_it() {
        let ctx = ctx();
        let client = Calls::default();
        fn port(port: u16) -> Port {
            Port {
                name: "http",
                port,
                protocol: "tcp",
            }
        }
        let mut g = Graph::<String>::new();
        // Absent: made bare (its port not known yet), then finished once the port is.
        let made = g
            .step("port http")
            .action("create")
            .make(&ctx, &client, None, move |_| port(0));
        let source = g.step("port source").after(made).run(move |i| {
            let id = i.get(made).id.clone();
            async move { Ok(if id == "port-1" { 8080_u16 } else { 0 }) }
        });
        let finished = g
            .step("port http")
            .after(source)
            .finish(&ctx, &client, made, move |i| port(*i.get(source)));
        // Found by the read: no call to make it; finished to its desired port.
        let found = g
            .step("port admin")
            .make(&ctx, &client, Some(live(80, "tcp", "web")), |_| port(0));
        let admin = g.step("port admin").finish(&ctx, &client, found, |_| Port {
            name: "admin",
            port: 8081,
            protocol: "tcp",
        });
        let out = g.run(&ctx).await.unwrap();
        assert_eq!(out.get(finished), "port-1");
        assert_eq!(out.get(admin), "port-9");
        let mut calls = client.0.lock().unwrap().clone();
        calls.sort();
        assert_eq!(
            calls,
            ["make", "set port-1 port 8080", "set port-9 port 8081"]
        );
    }

    #[test]
    fn known_renders_and_converts() {
        assert_eq!(Known::Known("vpc-1").to_string(), "vpc-1");
        assert_eq!(Known::<&str>::AfterApply.to_string(), KNOWN_AFTER_APPLY);
        assert_eq!(Known::from(Some(3)).map(|n| n + 1), Known::Known(4));
        assert!(!Known::<u8>::from(None).is_known());
    }
}
