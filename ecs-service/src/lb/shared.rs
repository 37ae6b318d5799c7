//! A web service's part of its environment's load balancer: its own target group, and its
//! own listener rules on the environment's serving listeners, at priorities from
//! [`crate::routing`]. The load balancer and its listeners are the environment's: read,
//! never changed.
//!
//! A rule is the service's when it forwards to a target group with the service's target
//! group's name (its mark; [`Ownership::Mark`]): that names its owner even for a rule left
//! forwarding to a target group since made again, and lets the service find its rules
//! without reading every rule's tags. The rules also carry the service's tags, for people.

use std::collections::BTreeSet;

use super::*;
use crate::routing::{self, Conditions, ExistingRule, Route, RoutingError};

/// How many times a create that lost its priority to a concurrent deploy
/// (`PriorityInUse`) reads the listener again and takes another.
const PRIORITY_ATTEMPTS: usize = 5;

/// What a service in an environment reads of the environment's load balancer, and its own
/// target group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LiveShared {
    /// The environment's load balancer.
    pub(crate) lb: Option<LiveAlb>,
    /// Its listeners, by port.
    pub(crate) listeners: BTreeMap<u16, SharedListener>,
    /// The service's target group.
    pub(crate) tg: Option<LiveTg>,
}

/// One listener of the environment's load balancer, with its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedListener {
    /// `{load balancer}:{port}`.
    pub(crate) id: String,
    pub(crate) arn: String,
    /// Whether services' rules go on it (it does not only redirect).
    pub(crate) serving: bool,
    pub(crate) https: bool,
    pub(crate) rules: Vec<LiveSharedRule>,
}

/// A rule on one of the environment's listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveSharedRule {
    /// `{load balancer}:{port} {conditions}`.
    pub(crate) id: String,
    pub(crate) arn: String,
    pub(crate) priority: u32,
    pub(crate) conditions: Conditions,
    /// The name of the target group it forwards to, when it forwards to one.
    pub(crate) target: Option<String>,
    /// The ARN of that target group.
    pub(crate) target_arn: Option<String>,
    /// Whether it is the service's (it forwards to a target group with its name).
    pub(crate) mine: bool,
}

fn rule_id(lb: &str, port: u16, conditions: &Conditions) -> String {
    format!("{lb}:{port} {conditions}")
}

/// Reads the environment's load balancer `lb_name` (its listeners and their rules) and the
/// service's target group `tg_name`, as [`observe_named`] does, and gives each rule its
/// owner.
pub(crate) async fn observe(
    ctx: &Context,
    elb: &Client,
    lb_name: &str,
    tg_name: &str,
) -> Result<LiveShared> {
    let live = observe_named(ctx, elb, lb_name, Some(tg_name)).await?;
    let my_arn = live.tg.as_ref().map(|t| t.arn.clone());
    let listeners = live
        .listeners
        .into_iter()
        .map(|(port, l)| {
            let rules = l
                .doc
                .rules
                .iter()
                .filter_map(|(priority, doc)| {
                    let arn = l.rule_arns.get(priority)?.clone();
                    let target_arn = match &doc.action {
                        ActionDoc::Forward => my_arn.clone(),
                        other => other_forward(other).map(str::to_string),
                    };
                    let target = target_arn
                        .as_deref()
                        .and_then(tg_name_of)
                        .map(str::to_string);
                    let conditions = Conditions::new(&doc.paths, &doc.hosts);
                    Some(LiveSharedRule {
                        id: rule_id(lb_name, port, &conditions),
                        arn,
                        priority: *priority,
                        mine: target.as_deref() == Some(tg_name),
                        conditions,
                        target,
                        target_arn,
                    })
                })
                .collect();
            (
                port,
                SharedListener {
                    id: l.id,
                    arn: l.arn,
                    serving: !l.doc.default_action.is_redirect(),
                    https: l.doc.protocol == "HTTPS",
                    rules,
                },
            )
        })
        .collect();
    Ok(LiveShared {
        lb: live.lb,
        listeners,
        tg: live.tg,
    })
}

impl LiveShared {
    /// The serving listeners' rules as the allocator sees them (one entry per priority and
    /// conditions; the same rule on two listeners counts once), how many serving listeners
    /// there are, and how many rules the others hold.
    pub(crate) fn existing(&self, tg_name: &str) -> (Vec<ExistingRule>, usize, usize) {
        let mut seen = BTreeSet::new();
        let mut existing = Vec::new();
        let (mut serving, mut elsewhere) = (0, 0);
        for l in self.listeners.values() {
            if !l.serving {
                elsewhere += l.rules.len();
                continue;
            }
            serving += 1;
            for r in &l.rules {
                if seen.insert((r.priority, r.conditions.clone())) {
                    existing.push(ExistingRule {
                        priority: r.priority,
                        conditions: r.conditions.clone(),
                        owner: match r.mine {
                            true => Some(tg_name.to_string()),
                            false => r.target.clone(),
                        },
                    });
                }
            }
        }
        (existing, serving, elsewhere)
    }

    /// Priorities for `routes` (see [`routing::allocate_on`]): refused before any change when
    /// a route conflicts, or the load balancer would pass its rule quota.
    pub(crate) fn allocate(
        &self,
        tg_name: &str,
        routes: &[Route],
    ) -> std::result::Result<routing::Allocation, RoutingError> {
        let (existing, serving, elsewhere) = self.existing(tg_name);
        routing::allocate_on(tg_name, routes, &existing, serving, elsewhere)
    }
}

/// `Ok` when the environment's load balancer `lb_name` exists and is the environment's
/// (needed when the service has routes) and the target group read under the service's name
/// is the service's; else the error that stops the plan before any change.
pub(crate) fn check_owned(
    ctx: &Context,
    environment: &str,
    lb_name: &str,
    live: &LiveShared,
    needs_lb: bool,
) -> Result<()> {
    let env_owned = |tags: &Tags| tags.get(ecs_core::OWNER_TAG) == Some(environment);
    match &live.lb {
        Some(l) if !env_owned(&l.tags) => {
            return Err(Error::EnvironmentMissing {
                environment: environment.to_string(),
                missing: format!("{LB_KIND} {lb_name} exists but is not the environment's"),
            })
        }
        None if needs_lb => {
            return Err(Error::EnvironmentMissing {
                environment: environment.to_string(),
                missing: format!("{LB_KIND} {lb_name}"),
            })
        }
        _ => {}
    }
    if needs_lb && !live.listeners.values().any(|l| l.serving) {
        return Err(Error::EnvironmentMissing {
            environment: environment.to_string(),
            missing: format!("a listener of {LB_KIND} {lb_name} that serves (not only redirects)"),
        });
    }
    if let Some(t) = &live.tg {
        resource::check_owned::<TargetGroup<'_>>(ctx, &t.name, t)
            .map_err(|_| conflict(ctx, TG_KIND, &t.name))?;
        // An ALB target group serves one load balancer: a service that moved to the other
        // (a web service made a backend, say) keeps its rules there.
        let here = live.lb.as_ref().map(|l| l.arn.as_str());
        if let Some(other) = t
            .load_balancers
            .iter()
            .find(|arn| Some(arn.as_str()) != here)
        {
            return Err(Error::Placement(format!(
                "target group {} serves {other}, not {LB_KIND} {lb_name} of environment {environment}: to move the service to the other load balancer, destroy it and deploy it again",
                t.name
            )));
        }
    }
    Ok(())
}

/// What of `live` is the service's: its own target group, and its rules — none when a
/// target group with its name is someone else's (the rules forwarding to it are theirs).
pub(crate) fn owned_only(ctx: &Context, mut live: LiveShared) -> LiveShared {
    if live
        .tg
        .as_ref()
        .is_some_and(|t| !resource::owned::<TargetGroup<'_>>(ctx, t))
    {
        live.tg = None;
        for l in live.listeners.values_mut() {
            for r in &mut l.rules {
                r.mine = false;
            }
        }
    }
    live
}

/// A web service's part of the environment's load balancer, as desired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredShared {
    /// The environment's load balancer.
    pub(crate) lb_name: String,
    pub(crate) tg: DesiredTg,
    /// The routes, with their priorities (allocated when the service was read).
    pub(crate) routes: Vec<(Route, u32)>,
    /// The tags each rule carries.
    pub(crate) rule_tags: Tags,
}

/// One typed difference of a service's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SharedRuleDiff {
    /// Its priority (a pinned one changed).
    Priority { live: u32, want: u32 },
    /// It forwards to an earlier target group of the service's.
    Target { live: String },
}

impl Diff for SharedRuleDiff {
    fn field(&self) -> FieldDiff {
        match self {
            SharedRuleDiff::Priority { live, want } => FieldDiff::new("priority", live, want),
            SharedRuleDiff::Target { live } => FieldDiff::new(
                "action",
                format!("forward to {live}"),
                "forward to the target group",
            ),
        }
    }
}

/// A service's rule on one listener of its environment's load balancer.
#[derive(Debug, Clone)]
pub(crate) struct SharedRule<'a> {
    pub(crate) id: String,
    pub(crate) route: &'a Route,
    pub(crate) priority: u32,
    pub(crate) listener_arn: &'a str,
    pub(crate) tg_name: &'a str,
    pub(crate) tg_arn: Known<String>,
    /// The priorities of the service's other routes (not taken again after a lost race).
    pub(crate) siblings: BTreeSet<u32>,
    pub(crate) tags: Tags,
}

impl SharedRule<'_> {
    fn resource(&self) -> String {
        format!("{RULE_KIND} {}", self.id)
    }

    fn forward(&self) -> Vec<ElbAction> {
        elb_actions(
            &ActionDoc::Forward,
            self.tg_arn.get().map_or("", String::as_str),
        )
    }

    /// The listener's rules, read again after a lost race: the priorities taken, or the
    /// conflict when another owner took these very conditions meanwhile, or (a pinned route)
    /// its priority.
    async fn taken_now(&self, ctx: &Context, elb: &Client) -> Result<BTreeSet<u32>> {
        let out = ctx
            .call("DescribeRules", &self.resource(), || {
                elb.describe_rules().listener_arn(self.listener_arn).send()
            })
            .await?;
        let want = self.route.conditions();
        let mut taken = self.siblings.clone();
        for r in out.rules().iter().filter(|r| r.is_default() != Some(true)) {
            let Some(priority) = r.priority().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let doc = rule_doc(r, self.tg_arn.get().map(String::as_str));
            let conditions = Conditions::new(&doc.paths, &doc.hosts);
            let target = match &doc.action {
                ActionDoc::Forward => Some(self.tg_name.to_string()),
                other => other_forward(other)
                    .and_then(tg_name_of)
                    .map(str::to_string),
            };
            let theirs = target.as_deref() != Some(self.tg_name);
            if conditions == want && theirs {
                return Err(Error::from(RoutingError::Identical {
                    conditions,
                    owner: target,
                    priority,
                }));
            }
            if self.route.priority == Some(priority) && theirs {
                return Err(Error::from(RoutingError::PinnedTaken {
                    priority,
                    conditions: want,
                    owner: target,
                    other: conditions,
                }));
            }
            taken.insert(priority);
        }
        Ok(taken)
    }
}

impl Resource for SharedRule<'_> {
    const KIND: &'static str = RULE_KIND;
    /// A rule is the service's when it forwards to the service's target group (by name).
    const OWNERSHIP: Ownership = Ownership::Mark;
    type Client = Client;
    type Live = LiveSharedRule;
    type Diff = SharedRuleDiff;
    /// Its ARN.
    type Output = String;
    type Error = Error;

    /// `{load balancer}:{port} {conditions}`.
    fn logical_id(&self) -> String {
        self.id.clone()
    }

    fn owner(live: &LiveSharedRule) -> Owner<'_> {
        Owner::Mark(live.mine)
    }

    fn diff(&self, live: &LiveSharedRule) -> Vec<SharedRuleDiff> {
        let mut d = Vec::new();
        if live.priority != self.priority {
            d.push(SharedRuleDiff::Priority {
                live: live.priority,
                want: self.priority,
            });
        }
        let current = match &self.tg_arn {
            Known::Known(arn) => live.target_arn.as_deref() == Some(arn.as_str()),
            // The target group is made in this run: the rule forwards to an older one.
            Known::AfterApply => false,
        };
        if !current {
            d.push(SharedRuleDiff::Target {
                live: live.target_arn.clone().unwrap_or_default(),
            });
        }
        d
    }

    fn output(live: &LiveSharedRule) -> String {
        live.arn.clone()
    }

    fn created(_arn: &String) -> Option<String> {
        None
    }

    /// Creates it at its priority; when a concurrent deploy took that priority meanwhile
    /// (`PriorityInUse`), reads the listener again and takes the next free one of its band.
    async fn create(&self, ctx: &Context, elb: &Client) -> Result<String> {
        let conditions = self.route.conditions();
        let doc = RuleDoc {
            paths: conditions.paths.clone(),
            hosts: conditions.hosts.clone(),
            action: ActionDoc::Forward,
        };
        let mut priority = self.priority;
        for attempt in 1..=PRIORITY_ATTEMPTS {
            let made = ctx
                .call("CreateRule", &self.resource(), || {
                    elb.create_rule()
                        .listener_arn(self.listener_arn)
                        .priority(priority as i32)
                        .set_conditions(Some(super::rule::conditions(&doc)))
                        .set_actions(Some(self.forward()))
                        .set_tags(Some(tagging::elb_tags(&self.tags)))
                        .send()
                })
                .await;
            match made {
                Ok(out) => {
                    return Ok(out
                        .rules()
                        .first()
                        .and_then(|r| r.rule_arn())
                        .unwrap_or_default()
                        .to_string())
                }
                Err(e) if e.is_code("PriorityInUse") && attempt < PRIORITY_ATTEMPTS => {
                    // A pinned priority taken meanwhile is refused by name (not moved).
                    let taken = self.taken_now(ctx, elb).await?;
                    if self.route.priority.is_some() {
                        return Err(e.into());
                    }
                    let next = routing::free_priority(&conditions, &taken).ok_or_else(|| {
                        Error::from(RoutingError::NoFreePriority {
                            conditions: conditions.clone(),
                        })
                    })?;
                    ctx.emit(ecs_core::Event::Progress {
                        resource: self.resource(),
                        message: format!(
                            "priority {priority} was taken meanwhile by another deploy; taking {next}"
                        ),
                    });
                    priority = next;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn update(
        &self,
        ctx: &Context,
        elb: &Client,
        live: &LiveSharedRule,
        diffs: &[SharedRuleDiff],
    ) -> Result<()> {
        let resource = self.resource();
        for diff in diffs {
            match diff {
                SharedRuleDiff::Priority { want, .. } => {
                    ctx.call("SetRulePriorities", &resource, || {
                        elb.set_rule_priorities()
                            .rule_priorities(
                                aws_sdk_elasticloadbalancingv2::types::RulePriorityPair::builder()
                                    .rule_arn(&live.arn)
                                    .priority(*want as i32)
                                    .build(),
                            )
                            .send()
                    })
                    .await?;
                }
                SharedRuleDiff::Target { .. } => {
                    ctx.call("ModifyRule", &resource, || {
                        elb.modify_rule()
                            .rule_arn(&live.arn)
                            .set_actions(Some(self.forward()))
                            .send()
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn delete(ctx: &Context, elb: &Client, live: &LiveSharedRule) -> Result<()> {
        match ctx
            .call("DeleteRule", &format!("{RULE_KIND} {}", live.id), || {
                elb.delete_rule().rule_arn(&live.arn).send()
            })
            .await
        {
            Err(e) if !e.is_code("RuleNotFound") => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// The service's rule for `route` on the listener on `port` (read as `have`), as desired.
fn rule<'a>(
    d: &'a DesiredShared,
    port: u16,
    listener_arn: &'a str,
    route: &'a Route,
    priority: u32,
    tg_arn: Known<String>,
) -> SharedRule<'a> {
    SharedRule {
        id: rule_id(&d.lb_name, port, &route.conditions()),
        route,
        priority,
        listener_arn,
        tg_name: &d.tg.name,
        tg_arn,
        siblings: d
            .routes
            .iter()
            .map(|(_, p)| *p)
            .filter(|p| *p != priority)
            .collect(),
        tags: d.rule_tags.clone(),
    }
}

fn live_rule(l: &SharedListener, conditions: &Conditions) -> Option<LiveSharedRule> {
    l.rules
        .iter()
        .find(|r| r.mine && &r.conditions == conditions)
        .cloned()
}

/// The service's own rules on `l` that no route wants any more.
fn unwanted<'a>(
    d: &'a DesiredShared,
    l: &'a SharedListener,
) -> impl Iterator<Item = &'a LiveSharedRule> {
    l.rules.iter().filter(move |r| {
        r.mine
            && (!l.serving
                || !d
                    .routes
                    .iter()
                    .any(|(route, _)| route.conditions() == r.conditions))
    })
}

/// The plan entries of a service's part of the load balancer: its target group, its rule
/// for each route on each serving listener, and deletes of its rules no route wants.
pub(crate) fn changes(d: &DesiredShared, live: &LiveShared) -> Plan {
    let mut plan = Plan::new();
    let tg = TargetGroup(&d.tg);
    plan.push(resource::decide(&tg, live.tg.clone()).change(&tg));
    let tg_arn: Known<String> = live.tg.as_ref().map(|t| t.arn.clone()).into();
    for (port, l) in live.listeners.iter().filter(|(_, l)| l.serving) {
        for (route, priority) in &d.routes {
            let want = rule(d, *port, &l.arn, route, *priority, tg_arn.clone());
            let have = live_rule(l, &route.conditions());
            plan.push(resource::decide(&want, have).change(&want));
        }
    }
    for l in live.listeners.values() {
        for r in unwanted(d, l) {
            plan.push(Change::new(RULE_KIND, &r.id, Action::Delete));
        }
    }
    plan
}

/// Adds to `g` the steps of a service's part of the load balancer: its target group, then
/// its rules on every serving listener at once, then the deletes of its rules no route
/// wants (after the new ones are in place, so that no request finds no rule), and a last
/// step with the outputs.
pub(crate) fn add_steps<'a>(
    g: &mut Graph<'a, Error>,
    ctx: &'a Context,
    elb: &'a Client,
    d: &'a DesiredShared,
    live: &'a LiveShared,
    changes: &'a Plan,
) -> Step<LbOutputs> {
    let verb = |kind: &str, id: &str| changes.find(kind, id).and_then(|c| c.action.verb());
    let tg = g
        .step(format!("{TG_KIND} {}", d.tg.name))
        .action_if(verb(TG_KIND, &d.tg.name))
        .converge(ctx, elb, live.tg.clone(), move |_| TargetGroup(&d.tg));
    // The service's own rules that no route wants and whose priority a route now takes (a
    // pinned priority moved onto it) go first; its other unwanted rules once the new ones
    // are in place.
    let wanted: BTreeSet<u32> = d.routes.iter().map(|(_, p)| *p).collect();
    let mut first: Vec<Dep> = Vec::new();
    for l in live.listeners.values() {
        for r in unwanted(d, l).filter(|r| wanted.contains(&r.priority)) {
            let step = g
                .step(format!("{RULE_KIND} {}", r.id))
                .action("delete")
                .run(move |_| resource::delete::<SharedRule<'_>>(ctx, elb, r));
            first.push(step.into());
        }
    }
    let mut made: Vec<Dep> = Vec::new();
    for (port, l) in live.listeners.iter().filter(|(_, l)| l.serving) {
        for (route, priority) in &d.routes {
            let id = rule_id(&d.lb_name, *port, &route.conditions());
            let step = g
                .step(format!("{RULE_KIND} {id}"))
                .after(tg)
                .after_all(first.iter().copied())
                .action_if(verb(RULE_KIND, &id))
                .converge(ctx, elb, live_rule(l, &route.conditions()), move |i| {
                    rule(
                        d,
                        *port,
                        &l.arn,
                        route,
                        *priority,
                        Known::Known(i.get(tg).clone()),
                    )
                });
            made.push(step.into());
        }
    }
    let mut gone: Vec<Dep> = first;
    for l in live.listeners.values() {
        for r in unwanted(d, l).filter(|r| !wanted.contains(&r.priority)) {
            let step = g
                .step(format!("{RULE_KIND} {}", r.id))
                .after_all(made.iter().copied())
                .action("delete")
                .run(move |_| resource::delete::<SharedRule<'_>>(ctx, elb, r));
            gone.push(step.into());
        }
    }
    let (lb_arn, dns_name) = live
        .lb
        .as_ref()
        .map(|l| (l.arn.clone(), l.dns_name.clone()))
        .unwrap_or_default();
    let listener_arns: Vec<String> = live
        .listeners
        .values()
        .filter(|l| l.serving)
        .map(|l| l.arn.clone())
        .collect();
    g.step(format!("{RULE_KIND}s of {}", d.tg.name))
        .after(tg)
        .after_all(made)
        .after_all(gone)
        .run(move |i| {
            let out = LbOutputs {
                lb_arn,
                dns_name,
                tg_arn: Some(i.get(tg).clone()),
                listener_arns,
            };
            async move { Ok(out) }
        })
}

/// The URL of a service's first route: its first exact host (else the load balancer's DNS
/// name) and the literal start of its first path (`/api/*` → `/api/`), over HTTPS when a
/// serving listener is HTTPS.
pub(crate) fn url(routes: &[Route], dns_name: &str, live: &LiveShared) -> String {
    let (host, path) = routes
        .first()
        .map_or((None, "/".to_string()), Route::url_parts);
    crate::environment::url_on(
        live.listeners.iter().map(|(p, l)| (*p, l.https, l.serving)),
        dns_name,
        host,
        &path,
    )
}

/// The plan entries of deleting a service's part: its rules, then its target group.
pub(crate) fn destroy_changes(live: &LiveShared) -> Plan {
    let mut plan = Plan::new();
    for r in live
        .listeners
        .values()
        .flat_map(|l| l.rules.iter().filter(|r| r.mine))
    {
        plan.push(Change::new(RULE_KIND, &r.id, Action::Delete));
    }
    if let Some(t) = &live.tg {
        plan.push(Change::new(TG_KIND, &t.name, Action::Delete));
    }
    plan
}

/// Adds to `g` the steps that delete a service's part: its rules at once (after `after`),
/// then its target group, also after `tg_after` (the service that uses it).
pub(crate) fn teardown<'a>(
    g: &mut Graph<'a, Error>,
    ctx: &'a Context,
    elb: &'a Client,
    live: &'a LiveShared,
    after: Vec<Dep>,
    tg_after: Vec<Dep>,
) {
    let rules: Vec<Dep> = live
        .listeners
        .values()
        .flat_map(|l| l.rules.iter().filter(|r| r.mine))
        .map(|r| {
            g.step(format!("{RULE_KIND} {}", r.id))
                .after_all(after.iter().copied())
                .action("delete")
                .run(move |_| resource::delete::<SharedRule<'_>>(ctx, elb, r))
                .into()
        })
        .collect();
    if let Some(tg) = &live.tg {
        g.step(format!("{TG_KIND} {}", tg.name))
            .after_all(rules)
            .after_all(tg_after)
            .action("delete")
            .run(move |_| resource::delete::<TargetGroup<'_>>(ctx, elb, tg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_owner_is_the_target_group_it_forwards_to() {
        assert_eq!(
            tg_name_of("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-api/0123"),
            Some("shop-api")
        );
        assert_eq!(
            tg_name_of("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/1"),
            None
        );
    }

    #[test]
    fn each_difference_of_a_shared_rule_is_one_typed_diff() {
        let route = Route::paths(["/api/*"]);
        let want = SharedRule {
            id: "env-alb:443 path /api/*".into(),
            route: &route,
            priority: 7,
            listener_arn: "arn:listener",
            tg_name: "env-api",
            tg_arn: Known::Known("arn:tg/new".into()),
            siblings: BTreeSet::new(),
            tags: Tags::new(),
        };
        let live = LiveSharedRule {
            id: want.id.clone(),
            arn: "arn:rule".into(),
            priority: 9,
            conditions: route.conditions(),
            target: Some("env-api".into()),
            target_arn: Some("arn:tg/old".into()),
            mine: true,
        };
        let lines: Vec<FieldDiff> = want.diff(&live).iter().map(Diff::field).collect();
        assert_eq!(
            lines,
            [
                FieldDiff::new("priority", 9, 7),
                FieldDiff::new(
                    "action",
                    "forward to arn:tg/old",
                    "forward to the target group"
                ),
            ]
        );
        let same = LiveSharedRule {
            priority: 7,
            target_arn: Some("arn:tg/new".into()),
            ..live
        };
        assert!(want.diff(&same).is_empty());
    }
}
