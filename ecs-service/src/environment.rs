//! An environment's shared front: the internet-facing load balancer and its listeners, an
//! optional internal load balancer, and the cluster, which the environment's services share.
//!
//! The environment owns them (they carry its owner tag); its services bring their own
//! target groups and listener rules ([`crate::routing`]) and run in its cluster, and never
//! change what the environment owns. So the listeners here answer by themselves: a fixed
//! `404` for requests no service's rule takes, or a redirect to HTTPS. The internal load
//! balancer, in the private subnets, joins the tasks' security group (which admits itself):
//! every service reaches it and it reaches every service, without a group of its own.

use std::collections::BTreeSet;

use ecs_core::graph::{Graph, Step};
use ecs_core::resource;
use ecs_core::{Action, Change, Context, NameKind, Plan, Problems, StackName};
use ecs_net::NetworkOutputs;
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use crate::spec::{validate_listeners, AccessLogs, ClusterSpec, ListenerAction, ListenerSpec};
use crate::{cluster, lb, tagging, Error, Result, ServiceLayer};

/// The logical id of the internal load balancer (its `ecs:resource` tag).
const INTERNAL_LOGICAL: &str = "internal-load-balancer";

/// An environment's shared front: its load balancers and its cluster.
///
/// ```
/// use ecs_service::environment::{EnvironmentSpec, FrontSpec};
/// let spec = EnvironmentSpec::builder()
///     .load_balancer(FrontSpec::https("arn:aws:acm:us-east-1:123456789012:certificate/abc"))
///     .internal_load_balancer(FrontSpec::http())
///     .build();
/// assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The internet-facing load balancer (default: HTTP on 80 answering 404); `None`: the
    /// environment takes no traffic from the internet.
    #[builder(default = Some(FrontSpec::http()), setter(strip_option))]
    #[serde(default)]
    pub load_balancer: Option<FrontSpec>,
    /// An internal load balancer in the private subnets, for backends the other services
    /// reach through it.
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub internal_load_balancer: Option<FrontSpec>,
    /// The cluster.
    #[builder(default)]
    #[serde(default)]
    pub cluster: ClusterSpec,
}

impl EnvironmentSpec {
    /// Every problem of the spec at once, each naming its field.
    pub fn validate(&self) -> std::result::Result<(), Problems> {
        let mut p = Problems::new();
        for (field, front) in [
            ("load_balancer", &self.load_balancer),
            ("internal_load_balancer", &self.internal_load_balancer),
        ] {
            if let Some(front) = front {
                front.validate(field, &mut p);
            }
        }
        self.cluster.validate(&mut p);
        p.into_result()
    }
}

/// A load balancer of an environment: its listeners (which answer by themselves) and
/// settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct FrontSpec {
    /// Seconds an idle connection stays open (1–4000, default 60).
    #[builder(default = 60)]
    #[serde(default = "sixty")]
    pub idle_timeout: u32,
    /// Where the load balancer writes its access logs.
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub access_logs: Option<AccessLogs>,
    /// The listeners. None may forward by default (there is no target group of the
    /// environment's): a fixed response ([`not_found`]) or a redirect.
    pub listeners: Vec<ListenerSpec>,
}

fn sixty() -> u32 {
    60
}

/// The fixed `404 not found` an environment's listeners answer with when no service's rule
/// takes a request.
pub fn not_found() -> ListenerAction {
    ListenerAction::FixedResponse {
        status: 404,
        content_type: "text/plain".into(),
        body: "not found".into(),
    }
}

impl FrontSpec {
    /// HTTP on 80, answering 404.
    pub fn http() -> Self {
        Self::builder()
            .listeners(vec![ListenerSpec::builder()
                .port(80)
                .default_action(not_found())
                .build()])
            .build()
    }

    /// HTTPS on 443 with the certificate (answering 404), and HTTP on 80 redirecting to it.
    pub fn https(certificate_arn: impl Into<String>) -> Self {
        let mut https = ListenerSpec::https(certificate_arn);
        https.default_action = not_found();
        Self::builder()
            .listeners(vec![ListenerSpec::redirect_to_https(), https])
            .build()
    }

    /// The listeners services' rules go on: every one that does not redirect.
    pub fn serving_ports(&self) -> Vec<u16> {
        self.listeners
            .iter()
            .filter(|l| !matches!(l.default_action, ListenerAction::RedirectToHttps { .. }))
            .map(|l| l.port)
            .collect()
    }

    fn validate(&self, field: &str, p: &mut Problems) {
        if !(1..=4000).contains(&self.idle_timeout) {
            p.push(
                format!("{field}.idle_timeout"),
                format!("must be between 1 and 4000, not {}", self.idle_timeout),
            );
        }
        let listeners = format!("{field}.listeners");
        validate_listeners(&self.listeners, &listeners, p);
        for (i, l) in self.listeners.iter().enumerate() {
            if l.default_action == ListenerAction::Forward {
                p.push(
                    format!("{listeners}[{i}].default_action"),
                    "an environment's listener has no target group to forward to: answer with a fixed response or redirect (services add their own rules)",
                );
            }
            for (j, r) in l.rules.iter().enumerate() {
                if r.action == ListenerAction::Forward {
                    p.push(
                        format!("{listeners}[{i}].rules[{j}].action"),
                        "an environment's rule cannot forward: give the route to a web service",
                    );
                }
            }
        }
        if self.serving_ports().is_empty() {
            p.push(
                listeners,
                "at least one listener must serve (not only redirect)",
            );
        }
    }
}

/// The deterministic names of an environment's shared resources.
///
/// ```
/// use ecs_service::environment::EnvironmentNames;
/// let names = EnvironmentNames::new(&ecs_core::StackName::new("shop").unwrap());
/// assert_eq!(names.load_balancer, "shop-alb");
/// assert_eq!(names.internal_load_balancer, "shop-internal");
/// assert_eq!(names.cluster, "shop");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentNames {
    /// The internet-facing load balancer (the same name a single-service stack gives its
    /// own, so that such a stack becomes an environment without a replacement).
    pub load_balancer: String,
    /// The internal load balancer.
    pub internal_load_balancer: String,
    /// The cluster.
    pub cluster: String,
}

impl EnvironmentNames {
    /// The names of environment `stack`'s resources.
    pub fn new(stack: &StackName) -> Self {
        Self {
            load_balancer: stack.name(NameKind::LoadBalancer, "alb"),
            internal_load_balancer: stack.name(NameKind::LoadBalancer, "internal"),
            cluster: stack.name(NameKind::Cluster, ""),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct LiveEnvironment {
    public: lb::LiveLb,
    internal: lb::LiveLb,
    cluster: Option<cluster::LiveCluster>,
    /// The services whose rules each listener carries (the target groups they forward
    /// to), by listener (`{load balancer}:{port}`).
    service_rules: std::collections::BTreeMap<String, BTreeSet<String>>,
}

/// What [`ServiceLayer::read_environment`] saw of an environment's shared front.
#[derive(Debug, Clone)]
pub struct EnvironmentState {
    names: EnvironmentNames,
    spec: EnvironmentSpec,
    tags: tagging::StackTags,
    live: LiveEnvironment,
}

impl EnvironmentState {
    /// The resources' names.
    pub fn names(&self) -> &EnvironmentNames {
        &self.names
    }
}

/// The changes [`ServiceLayer::apply_environment`] would make. Made by
/// [`ServiceLayer::plan_environment`].
#[derive(Debug, Clone)]
pub struct EnvironmentPlan {
    state: EnvironmentState,
    public: Option<lb::DesiredLb>,
    internal: Option<lb::DesiredLb>,
    changes: Plan,
}

impl EnvironmentPlan {
    /// The changes, resource by resource.
    pub fn changes(&self) -> &Plan {
        &self.changes
    }
}

/// One listener of an environment's load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ListenerOutput {
    /// Its port.
    pub port: u16,
    /// Its ARN.
    pub arn: String,
    /// Whether it serves HTTPS.
    pub https: bool,
    /// Whether services' rules go on it (it does not only redirect).
    pub serving: bool,
}

/// One load balancer of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FrontOutputs {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its DNS name.
    pub dns_name: String,
    /// Its listeners, by port.
    pub listeners: Vec<ListenerOutput>,
}

impl FrontOutputs {
    /// The URL a request for `path` on this load balancer goes to (HTTPS when a serving
    /// listener is HTTPS), for `host` when given (else the load balancer's DNS name).
    pub fn url(&self, host: Option<&str>, path: &str) -> String {
        url_on(
            self.listeners.iter().map(|l| (l.port, l.https, l.serving)),
            &self.dns_name,
            host,
            path,
        )
    }
}

/// The URL of `path` on `host` (else `dns_name`) through the serving listener a client
/// would use among `listeners` (`(port, https, serving)`): HTTPS when one is.
pub(crate) fn url_on(
    listeners: impl Iterator<Item = (u16, bool, bool)>,
    dns_name: &str,
    host: Option<&str>,
    path: &str,
) -> String {
    let serving = listeners
        .filter(|(_, _, serving)| *serving)
        .min_by_key(|(port, https, _)| (!*https, *port));
    let host = host.unwrap_or(dns_name);
    match serving {
        Some((443, true, _)) => format!("https://{host}{path}"),
        Some((port, true, _)) => format!("https://{host}:{port}{path}"),
        Some((port, false, _)) if port != 80 => format!("http://{host}:{port}{path}"),
        _ => format!("http://{host}{path}"),
    }
}

/// What an environment's shared front gives its services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentOutputs {
    /// The resources' names.
    pub names: EnvironmentNames,
    /// The cluster's ARN.
    pub cluster_arn: String,
    /// The internet-facing load balancer.
    pub load_balancer: Option<FrontOutputs>,
    /// The internal load balancer.
    pub internal_load_balancer: Option<FrontOutputs>,
}

impl ServiceLayer {
    /// Validates `spec` and reads the environment's load balancers (with their listeners and
    /// rules) and cluster, all at once. Refuses, before any change, a resource under the
    /// environment's names that is not the environment's. Needs no network. Makes no change.
    pub async fn read_environment(
        &self,
        ctx: &Context,
        spec: &EnvironmentSpec,
    ) -> Result<EnvironmentState> {
        let mut problems = ctx.tags().validate("tags");
        if let Err(p) = spec.validate() {
            problems.extend(p);
        }
        problems.into_result()?;
        let names = EnvironmentNames::new(ctx.stack());
        let live = self.observe_environment(ctx, &names).await?;
        lb::check_owned(ctx, &live.public)?;
        lb::check_owned(ctx, &live.internal)?;
        if let Some(c) = &live.cluster {
            resource::check_owned::<cluster::Cluster<'_>>(ctx, &names.cluster, c)
                .map_err(|_| crate::names::conflict(ctx, cluster::KIND, &names.cluster))?;
        }
        // A listener that carries services' rules is not deleted under them: refused before
        // any change.
        for (front, name) in [
            (&spec.load_balancer, &names.load_balancer),
            (&spec.internal_load_balancer, &names.internal_load_balancer),
        ] {
            let kept: BTreeSet<u16> = front
                .iter()
                .flat_map(|f| f.listeners.iter().map(|l| l.port))
                .collect();
            for (listener, services) in &live.service_rules {
                let Some(port) = listener
                    .strip_prefix(&format!("{name}:"))
                    .and_then(|p| p.parse::<u16>().ok())
                else {
                    continue;
                };
                if !kept.contains(&port) {
                    return Err(Error::EnvironmentInUse {
                        environment: ctx.stack().to_string(),
                        services: services.iter().cloned().collect(),
                    });
                }
            }
        }
        Ok(EnvironmentState {
            names,
            spec: spec.clone(),
            tags: tagging::StackTags::new(ctx),
            live,
        })
    }

    async fn observe_environment(
        &self,
        ctx: &Context,
        names: &EnvironmentNames,
    ) -> Result<LiveEnvironment> {
        let c = &self.clients;
        let (public, internal, cluster) = futures_util::try_join!(
            Box::pin(lb::observe_named(ctx, &c.elb, &names.load_balancer, None)),
            Box::pin(lb::observe_named(
                ctx,
                &c.elb,
                &names.internal_load_balancer,
                None
            )),
            Box::pin(cluster::observe(ctx, &c.ecs, &names.cluster)),
        )?;
        let mut service_rules = std::collections::BTreeMap::new();
        for l in public.listeners.values().chain(internal.listeners.values()) {
            let services: BTreeSet<String> = l
                .doc
                .rules
                .values()
                .filter_map(|r| lb::other_forward(&r.action))
                .filter_map(lb::tg_name_of)
                .map(str::to_string)
                .collect();
            if !services.is_empty() {
                service_rules.insert(l.id.clone(), services);
            }
        }
        Ok(LiveEnvironment {
            public: lb::without_forwarding_rules(public),
            internal: lb::without_forwarding_rules(internal),
            cluster,
            service_rules,
        })
    }

    /// The changes [`apply_environment`](Self::apply_environment) would make to what
    /// [`read_environment`](Self::read_environment) saw, on `network` (the internal load
    /// balancer joins its tasks' security group). Makes no AWS call.
    pub fn plan_environment(
        &self,
        state: &EnvironmentState,
        network: &NetworkOutputs,
    ) -> EnvironmentPlan {
        let names = &state.names;
        let public = state.spec.load_balancer.as_ref().map(|f| {
            lb::desired_front(
                &lb::Front {
                    name: &names.load_balancer,
                    logical: lb::LB_LOGICAL,
                    internal: false,
                    idle_timeout: f.idle_timeout,
                    access_logs: f.access_logs.as_ref(),
                    listeners: &f.listeners,
                },
                &network.public_subnets,
                &network.alb_sg,
                &state.tags,
            )
        });
        let internal = state.spec.internal_load_balancer.as_ref().map(|f| {
            lb::desired_front(
                &lb::Front {
                    name: &names.internal_load_balancer,
                    logical: INTERNAL_LOGICAL,
                    internal: true,
                    idle_timeout: f.idle_timeout,
                    access_logs: f.access_logs.as_ref(),
                    listeners: &f.listeners,
                },
                &network.private_subnets,
                &network.task_sg,
                &state.tags,
            )
        });
        let mut changes = Plan::new();
        let cluster = cluster::Cluster {
            name: &names.cluster,
            spec: &state.spec.cluster,
            tags: state.tags.of(cluster::LOGICAL),
        };
        changes.push(resource::decide(&cluster, state.live.cluster.clone()).change(&cluster));
        changes.extend(lb::changes(public.as_ref(), &state.live.public));
        changes.extend(lb::changes(internal.as_ref(), &state.live.internal));
        EnvironmentPlan {
            state: state.clone(),
            public,
            internal,
            changes,
        }
    }

    /// Fails with [`Error::ReplacementRequired`] when the plan replaces something (a load
    /// balancer's scheme cannot change), before any change.
    pub fn check_environment_replacements(&self, plan: &EnvironmentPlan) -> Result<()> {
        crate::refuse_replacements(&plan.changes)
    }

    /// Carries out `plan`: the cluster and each load balancer at once, each listener after
    /// its load balancer; a load balancer the spec no longer has is deleted. Nothing waits
    /// for a load balancer to become active (a service's rollout does, through ECS).
    pub async fn apply_environment(
        &self,
        ctx: &Context,
        plan: &EnvironmentPlan,
    ) -> Result<EnvironmentOutputs> {
        crate::refuse_replacements(&plan.changes)?;
        let c = &self.clients;
        let state = &plan.state;
        let names = &state.names;
        let mut g = Graph::<Error>::new();
        let verb = |id: &str| {
            plan.changes
                .find(cluster::KIND, id)
                .and_then(|c| c.action.verb())
        };
        let cluster_tags = state.tags.of(cluster::LOGICAL);
        let cluster = g
            .step(format!("{} {}", cluster::KIND, names.cluster))
            .action_if(verb(&names.cluster))
            .converge(ctx, &c.ecs, state.live.cluster.clone(), move |_| {
                cluster::Cluster {
                    name: &names.cluster,
                    spec: &state.spec.cluster,
                    tags: cluster_tags,
                }
            });
        let mut fronts: Vec<Option<Step<lb::LbOutputs>>> = Vec::new();
        for (want, live) in [
            (&plan.public, &state.live.public),
            (&plan.internal, &state.live.internal),
        ] {
            match want {
                Some(d) => fronts.push(Some(lb::add_steps(
                    &mut g,
                    ctx,
                    &c.elb,
                    d,
                    live,
                    &plan.changes,
                ))),
                None => {
                    lb::teardown(&mut g, ctx, &c.elb, &c.ec2, live, Vec::new(), Vec::new());
                    fronts.push(None);
                }
            }
        }
        let out = g.run(ctx).await?;
        let front = |step: Option<Step<lb::LbOutputs>>, d: &Option<lb::DesiredLb>| {
            let (step, d) = (step?, d.as_ref()?);
            let made = out.get(step);
            Some(FrontOutputs {
                name: d.name.clone(),
                arn: made.lb_arn.clone(),
                dns_name: made.dns_name.clone(),
                listeners: d
                    .listeners
                    .iter()
                    .zip(&made.listener_arns)
                    .map(|((port, doc), arn)| ListenerOutput {
                        port: *port,
                        arn: arn.clone(),
                        https: doc.protocol == "HTTPS",
                        serving: !doc.default_action.is_redirect(),
                    })
                    .collect(),
            })
        };
        Ok(EnvironmentOutputs {
            names: names.clone(),
            cluster_arn: out.get(cluster).clone(),
            load_balancer: front(fronts[0], &plan.public),
            internal_load_balancer: front(fronts[1], &plan.internal),
        })
    }

    /// The environment's shared front as it exists, for its services: `None` when the
    /// environment is not deployed (its cluster does not exist). `ctx` is the environment's
    /// (its stack is the environment's name); only what carries its owner tag is used.
    /// Makes no change.
    pub async fn environment_outputs(&self, ctx: &Context) -> Result<Option<EnvironmentOutputs>> {
        let names = EnvironmentNames::new(ctx.stack());
        let live = self.observe_environment(ctx, &names).await?;
        let Some(cluster) = live
            .cluster
            .filter(|c| resource::owned::<cluster::Cluster<'_>>(ctx, c))
        else {
            return Ok(None);
        };
        let front = |live: lb::LiveLb| {
            let live = lb::owned_only(ctx, live);
            let l = live.lb?;
            Some(FrontOutputs {
                name: l.name,
                arn: l.arn,
                dns_name: l.dns_name,
                listeners: live
                    .listeners
                    .iter()
                    .map(|(port, listener)| ListenerOutput {
                        port: *port,
                        arn: listener.arn.clone(),
                        https: listener.doc.protocol == "HTTPS",
                        serving: !listener.doc.default_action.is_redirect(),
                    })
                    .collect(),
            })
        };
        Ok(Some(EnvironmentOutputs {
            names,
            cluster_arn: cluster.arn,
            load_balancer: front(live.public),
            internal_load_balancer: front(live.internal),
        }))
    }

    /// The services in the environment's cluster that are not deleted (any ECS service, the
    /// environment's or not), by name: an environment is not destroyed while it has any.
    /// Listed, then described (ten at a time, at once) to leave out the `INACTIVE` ones
    /// some implementations still list.
    pub async fn environment_services(&self, ctx: &Context) -> Result<Vec<String>> {
        let names = EnvironmentNames::new(ctx.stack());
        let c = &self.clients;
        let resource = format!("{} {}", cluster::KIND, names.cluster);
        let arns = self.list_services(ctx, &names.cluster, &resource).await?;
        let cluster = &names.cluster;
        let described = futures_util::future::try_join_all(arns.chunks(10).map(|chunk| {
            let resource = &resource;
            async move {
                ctx.call("DescribeServices", resource, || {
                    c.ecs
                        .describe_services()
                        .cluster(cluster)
                        .set_services(Some(chunk.to_vec()))
                        .send()
                })
                .await
            }
        }))
        .await?;
        let mut out: Vec<String> = described
            .iter()
            .flat_map(|d| d.services())
            .filter(|s| s.status() != Some("INACTIVE"))
            .filter_map(|s| s.service_name().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn list_services(
        &self,
        ctx: &Context,
        cluster: &str,
        resource: &str,
    ) -> Result<Vec<String>> {
        let c = &self.clients;
        let mut out = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let page = match ctx
                .call("ListServices", resource, || {
                    c.ecs
                        .list_services()
                        .cluster(cluster)
                        .set_next_token(token.clone())
                        .send()
                })
                .await
            {
                Ok(page) => page,
                Err(e) if e.is_code("ClusterNotFoundException") => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            out.extend(page.service_arns().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out.into_iter().collect())
    }

    /// What [`destroy_environment`](Self::destroy_environment) would delete: the
    /// environment's load balancers with their listeners, and its cluster.
    pub async fn plan_destroy_environment(&self, ctx: &Context) -> Result<Plan> {
        let names = EnvironmentNames::new(ctx.stack());
        let live = self.observe_environment_owned(ctx, &names).await?;
        Ok(environment_destroy_plan(&names, &live))
    }

    async fn observe_environment_owned(
        &self,
        ctx: &Context,
        names: &EnvironmentNames,
    ) -> Result<LiveEnvironment> {
        let live = self.observe_environment(ctx, names).await?;
        Ok(LiveEnvironment {
            public: lb::owned_only(ctx, live.public),
            internal: lb::owned_only(ctx, live.internal),
            cluster: live
                .cluster
                .filter(|c| resource::owned::<cluster::Cluster<'_>>(ctx, c)),
            service_rules: live.service_rules,
        })
    }

    /// Deletes the environment's load balancers (each listener, then the load balancer,
    /// waited for until gone with its network interfaces) and its cluster, concurrently.
    /// Refuses with [`Error::EnvironmentInUse`], before any change, while any service runs
    /// in the cluster. What does not carry the environment's owner tag is never touched.
    pub async fn destroy_environment(&self, ctx: &Context) -> Result<Plan> {
        let names = EnvironmentNames::new(ctx.stack());
        let (services, live) = futures_util::try_join!(
            self.environment_services(ctx),
            self.observe_environment_owned(ctx, &names)
        )?;
        // Services in the cluster, and services whose rules are on its listeners (one whose
        // first deploy has made its rules but not yet its ECS service, say).
        let mut services: BTreeSet<String> = services.into_iter().collect();
        services.extend(live.service_rules.values().flatten().cloned());
        if !services.is_empty() {
            return Err(Error::EnvironmentInUse {
                environment: ctx.stack().to_string(),
                services: services.into_iter().collect(),
            });
        }
        let plan = environment_destroy_plan(&names, &live);
        let c = &self.clients;
        let live = &live;
        let mut g = Graph::<Error>::new();
        lb::teardown(
            &mut g,
            ctx,
            &c.elb,
            &c.ec2,
            &live.public,
            Vec::new(),
            Vec::new(),
        );
        lb::teardown(
            &mut g,
            ctx,
            &c.elb,
            &c.ec2,
            &live.internal,
            Vec::new(),
            Vec::new(),
        );
        if let Some(cluster) = &live.cluster {
            g.step(format!("{} {}", cluster::KIND, names.cluster))
                .action("delete")
                .run(move |_| resource::delete::<cluster::Cluster<'_>>(ctx, &c.ecs, cluster));
        }
        g.run(ctx).await?;
        Ok(plan)
    }
}

fn environment_destroy_plan(names: &EnvironmentNames, live: &LiveEnvironment) -> Plan {
    let mut plan = Plan::new();
    plan.extend(lb::changes(None, &live.public));
    plan.extend(lb::changes(None, &live.internal));
    if live.cluster.is_some() {
        plan.push(Change::new(cluster::KIND, &names.cluster, Action::Delete));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environments_listeners_never_forward() {
        let mut front = FrontSpec::http();
        front.listeners[0].default_action = ListenerAction::Forward;
        let spec = EnvironmentSpec::builder().load_balancer(front).build();
        let problems = spec.validate().unwrap_err();
        assert!(
            problems.mentions("load_balancer.listeners[0].default_action"),
            "{problems}"
        );
        let only_redirect = FrontSpec::builder()
            .listeners(vec![ListenerSpec::redirect_to_https()])
            .build();
        let problems = EnvironmentSpec::builder()
            .load_balancer(only_redirect)
            .build()
            .validate()
            .unwrap_err();
        assert!(problems.to_string().contains("must serve"), "{problems}");
    }

    #[test]
    fn https_redirects_and_serves_on_443() {
        let front = FrontSpec::https("arn:aws:acm:us-east-1:123456789012:certificate/a");
        assert_eq!(front.serving_ports(), vec![443]);
        let out = FrontOutputs {
            name: "e-alb".into(),
            arn: "arn".into(),
            dns_name: "e.elb".into(),
            listeners: vec![
                ListenerOutput {
                    port: 80,
                    arn: "a".into(),
                    https: false,
                    serving: false,
                },
                ListenerOutput {
                    port: 443,
                    arn: "b".into(),
                    https: true,
                    serving: true,
                },
            ],
        };
        assert_eq!(out.url(None, "/api/"), "https://e.elb/api/");
        assert_eq!(
            out.url(Some("api.example.com"), "/"),
            "https://api.example.com/"
        );
    }
}
