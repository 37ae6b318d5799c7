//! The application load balancer, its target group, listeners and rules, reconciled exactly:
//! attributes, health check, listener protocol/certificate/TLS policy/default action, and
//! rules keyed by priority (changed → modified, removed → deleted).
//!
//! One module per kind — `alb`, `target_group`, `listener`, `rule` — with its diff and its
//! calls; this one has what they share: the desired and live types, the one read of them
//! all (`observe`), the plan (`changes`), and the graph steps that make (`add_steps`) and
//! delete (`teardown`) them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, Certificate, FixedResponseActionConfig,
    HostHeaderConditionConfig, IpAddressType, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, Matcher, PathPatternConditionConfig, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, TargetGroupAttribute, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;
use ecs_core::graph::{Dep, Graph, Step};
use ecs_core::resource::{self, Diff, Known, Owner, Ownership, Resource};
use ecs_core::{
    Action, Change, Context, FieldDiff, Plan, Poll, PollPolicy, RetryOn, TagDiff, Tags,
};

use crate::names::{conflict, ServiceNames};
use crate::spec::{ListenerAction, LoadBalancerSpec, Protocol};
use crate::tagging::{self, StackTags};
use crate::{Error, Result};

mod alb;
mod listener;
mod rule;
pub(crate) mod shared;
mod target_group;

use alb::*;
use listener::*;
use rule::*;
use target_group::*;

pub(crate) use target_group::target_health;

pub(crate) const LB_KIND: &str = "load-balancer";
pub(crate) const TG_KIND: &str = "target-group";
pub(crate) const LISTENER_KIND: &str = "listener";
pub(crate) const RULE_KIND: &str = "listener-rule";

/// The load balancer's logical id (its `ecs:resource` tag).
pub(crate) const LB_LOGICAL: &str = "load-balancer";
/// The target group's logical id.
const TG_LOGICAL: &str = "target-group";

/// The load balancer, target group, listeners and rules as the spec wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredLb {
    pub(crate) name: String,
    pub(crate) internal: bool,
    pub(crate) subnets: Vec<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) tags: Tags,
    /// The target group; `None` for an environment's load balancer, whose listeners answer
    /// by themselves and whose services bring their own target groups and rules.
    pub(crate) tg: Option<DesiredTg>,
    pub(crate) listeners: BTreeMap<u16, ListenerDoc>,
    /// The tags each listener should carry, by port.
    pub(crate) listener_tags: BTreeMap<u16, Tags>,
}

impl DesiredLb {
    /// The tags the listener on `port` (one of the spec's) should carry.
    pub(crate) fn listener_tags(&self, port: u16) -> Tags {
        self.listener_tags
            .get(&port)
            .cloned()
            .expect("every listener of the spec has its tags")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredTg {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) protocol: String,
    pub(crate) vpc_id: String,
    pub(crate) health: BTreeMap<&'static str, String>,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) tags: Tags,
}

/// What exists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LiveLb {
    pub(crate) lb: Option<LiveAlb>,
    pub(crate) tg: Option<LiveTg>,
    pub(crate) listeners: BTreeMap<u16, LiveListener>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveAlb {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) dns_name: String,
    pub(crate) internal: bool,
    pub(crate) subnets: Vec<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveTg {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) port: u16,
    pub(crate) protocol: String,
    pub(crate) vpc_id: String,
    pub(crate) health: BTreeMap<&'static str, String>,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) tags: Tags,
    /// The load balancers whose listeners or rules forward to it.
    pub(crate) load_balancers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveListener {
    /// `{load balancer}:{port}`.
    pub(crate) id: String,
    pub(crate) arn: String,
    pub(crate) doc: ListenerDoc,
    pub(crate) rule_arns: BTreeMap<u32, String>,
    /// Its own tags.
    pub(crate) tags: Tags,
    /// Its load balancer's tags (its owner's).
    pub(crate) lb_tags: Tags,
}

/// The desired state for `spec` over the given subnets and security group.
pub(crate) fn desired(
    names: &ServiceNames,
    spec: &LoadBalancerSpec,
    port: u16,
    vpc_id: &str,
    subnets: &[String],
    alb_sg: &str,
    tags: &StackTags,
) -> DesiredLb {
    let subnets = spec.subnets.clone().unwrap_or_else(|| subnets.to_vec());
    let front = Front {
        name: &names.load_balancer,
        logical: LB_LOGICAL,
        internal: spec.internal,
        idle_timeout: spec.idle_timeout,
        access_logs: spec.access_logs.as_ref(),
        listeners: &spec.listeners,
    };
    DesiredLb {
        tg: Some(desired_tg(
            &names.target_group,
            &spec.target_group,
            port,
            vpc_id,
            tags,
        )),
        ..desired_front(&front, &subnets, alb_sg, tags)
    }
}

/// The desired target group called `name` for `tg`, sending traffic to `port` in `vpc_id`.
pub(crate) fn desired_tg(
    name: &str,
    tg: &crate::spec::TargetGroupSpec,
    port: u16,
    vpc_id: &str,
    tags: &StackTags,
) -> DesiredTg {
    let hc = &tg.health_check;
    let health = BTreeMap::from([
        ("path", hc.path.clone()),
        ("interval", hc.interval.to_string()),
        ("timeout", hc.timeout.to_string()),
        ("healthy_threshold", hc.healthy_threshold.to_string()),
        ("unhealthy_threshold", hc.unhealthy_threshold.to_string()),
        ("matcher", hc.matcher.clone()),
        ("protocol", tg.protocol.as_str().to_string()),
    ]);
    let mut tg_attributes = BTreeMap::from([
        (
            "deregistration_delay.timeout_seconds".to_string(),
            tg.deregistration_delay.to_string(),
        ),
        (
            "stickiness.enabled".to_string(),
            tg.stickiness.is_some().to_string(),
        ),
        (
            "slow_start.duration_seconds".to_string(),
            tg.slow_start.to_string(),
        ),
    ]);
    if let Some(s) = tg.stickiness {
        tg_attributes.insert("stickiness.type".into(), "lb_cookie".into());
        tg_attributes.insert(
            "stickiness.lb_cookie.duration_seconds".into(),
            s.to_string(),
        );
    }
    DesiredTg {
        name: name.to_string(),
        port,
        protocol: tg.protocol.as_str().to_string(),
        vpc_id: vpc_id.to_string(),
        health,
        attributes: tg_attributes,
        tags: tags.of(TG_LOGICAL),
    }
}

/// A load balancer with its listeners, without a target group: an environment's.
pub(crate) struct Front<'a> {
    pub(crate) name: &'a str,
    /// Its logical id (its `ecs:resource` tag).
    pub(crate) logical: &'a str,
    pub(crate) internal: bool,
    pub(crate) idle_timeout: u32,
    pub(crate) access_logs: Option<&'a crate::spec::AccessLogs>,
    pub(crate) listeners: &'a [crate::spec::ListenerSpec],
}

/// The desired load balancer and listeners of `front` (no target group) over these subnets
/// and security group.
pub(crate) fn desired_front(
    front: &Front<'_>,
    subnets: &[String],
    sg: &str,
    tags: &StackTags,
) -> DesiredLb {
    let mut attributes = BTreeMap::from([
        (
            "routing.http.drop_invalid_header_fields.enabled".to_string(),
            "true".to_string(),
        ),
        (
            "idle_timeout.timeout_seconds".to_string(),
            front.idle_timeout.to_string(),
        ),
        (
            "access_logs.s3.enabled".to_string(),
            front.access_logs.is_some().to_string(),
        ),
    ]);
    if let Some(logs) = front.access_logs {
        attributes.insert("access_logs.s3.bucket".into(), logs.bucket.clone());
        attributes.insert("access_logs.s3.prefix".into(), logs.prefix.clone());
    }
    let mut subnets = subnets.to_vec();
    subnets.sort();
    let listener_logical = |port: u16| match front.logical {
        LB_LOGICAL => format!("listener/{port}"),
        other => format!("{other}/listener/{port}"),
    };
    let listener_tags = front
        .listeners
        .iter()
        .map(|l| (l.port, tags.of(&listener_logical(l.port))))
        .collect();
    DesiredLb {
        listener_tags,
        name: front.name.to_string(),
        internal: front.internal,
        subnets,
        security_groups: vec![sg.to_string()],
        attributes,
        tags: tags.of(front.logical),
        tg: None,
        listeners: front
            .listeners
            .iter()
            .map(|l| {
                let paths_hosts = |r: &crate::spec::RuleSpec| {
                    let (mut paths, mut hosts) = (r.paths.clone(), r.hosts.clone());
                    paths.sort();
                    hosts.sort();
                    RuleDoc {
                        paths,
                        hosts,
                        action: ActionDoc::from(&r.action),
                    }
                };
                (
                    l.port,
                    ListenerDoc {
                        protocol: l.protocol.as_str().to_string(),
                        certificate: l
                            .certificate_arn
                            .clone()
                            .filter(|_| l.protocol == Protocol::Https),
                        ssl_policy: l.effective_ssl_policy().map(str::to_string),
                        default_action: ActionDoc::from(&l.default_action),
                        rules: l
                            .rules
                            .iter()
                            .map(|r| (r.priority, paths_hosts(r)))
                            .collect(),
                    },
                )
            })
            .collect(),
    }
}

fn tag_map(
    tags: &[aws_sdk_elasticloadbalancingv2::types::Tag],
) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
    tags.iter().map(|t| (t.key(), t.value()))
}

fn attrs<'a>(
    items: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    items
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

/// Reads the load balancer, target group, listeners and rules called by the stack's names.
pub(crate) async fn observe(ctx: &Context, elb: &Client, names: &ServiceNames) -> Result<LiveLb> {
    let live = observe_named(ctx, elb, &names.load_balancer, Some(&names.target_group)).await?;
    Ok(without_others_rules(live, &names.target_group))
}

/// Reads the load balancer called `lb_name` with its listeners and rules, and the target
/// group called `tg_name` (none for a load balancer without one, an environment's).
pub(crate) async fn observe_named(
    ctx: &Context,
    elb: &Client,
    lb_name: &str,
    tg_name: Option<&str>,
) -> Result<LiveLb> {
    let lb_res = format!("{LB_KIND} {lb_name}");
    let tg_res = format!("{TG_KIND} {}", tg_name.unwrap_or_default());
    let (lbs, tgs) = futures_util::try_join!(
        async {
            match ctx
                .call("DescribeLoadBalancers", &lb_res, || {
                    elb.describe_load_balancers().names(lb_name).send()
                })
                .await
            {
                Ok(out) => Ok(out.load_balancers().first().cloned()),
                Err(e) if e.is_code("LoadBalancerNotFound") => Ok(None),
                Err(e) => Err(e),
            }
        },
        async {
            let Some(tg_name) = tg_name else {
                return Ok(None);
            };
            match ctx
                .call("DescribeTargetGroups", &tg_res, || {
                    elb.describe_target_groups().names(tg_name).send()
                })
                .await
            {
                Ok(out) => Ok(out.target_groups().first().cloned()),
                Err(e) if e.is_code("TargetGroupNotFound") => Ok(None),
                Err(e) => Err(e),
            }
        }
    )?;
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|l| l.load_balancer_arn())
        .chain(tgs.iter().filter_map(|t| t.target_group_arn()))
        .map(str::to_string)
        .collect();
    if arns.is_empty() {
        return Ok(LiveLb::default());
    }
    // The tags are read together with the rest, in one call (reading someone else's load
    // balancer changes nothing): with a load balancer, its, the target group's and the
    // listeners' at once, beside the listeners' rules; without one, the target group's at
    // once. Whether they make each resource the stack's is the engine's check
    // ([`check_owned`]) before anything read is used.
    let lb_res = &lb_res;
    // ELB describes the tags of at most 20 resources a call: more go out at once, in calls
    // of 20.
    let describe_tags = |arns: Vec<String>| async move {
        let calls = arns.chunks(20).map(|chunk| async move {
            ctx.call("DescribeTags", lb_res, || {
                elb.describe_tags()
                    .set_resource_arns(Some(chunk.to_vec()))
                    .send()
            })
            .await
            .map(|out| out.tag_descriptions().to_vec())
            .map_err(Error::from)
        });
        let described = futures_util::future::try_join_all(calls).await?;
        Ok::<_, Error>(described.into_iter().flatten().collect::<Vec<_>>())
    };
    let tg_arn = tgs
        .as_ref()
        .and_then(|t| t.target_group_arn())
        .map(str::to_string);
    let lb_part = async {
        let Some(l) = &lbs else {
            // No load balancer: the target group's tags alone.
            let tags = match tgs.is_some() {
                true => describe_tags(arns.clone()).await?,
                false => Vec::new(),
            };
            return Ok::<_, Error>((None, BTreeMap::new(), tags));
        };
        let arn = l.load_balancer_arn().unwrap_or_default();
        let (attributes, listeners) = futures_util::try_join!(
            ctx.call("DescribeLoadBalancerAttributes", lb_res, || {
                elb.describe_load_balancer_attributes()
                    .load_balancer_arn(arn)
                    .send()
            }),
            ctx.call("DescribeListeners", lb_res, || {
                elb.describe_listeners().load_balancer_arn(arn).send()
            }),
        )?;
        // Every tag at once (the load balancer's, the target group's, the listeners'), beside
        // the rules.
        let tag_arns: Vec<String> = arns
            .iter()
            .cloned()
            .chain(
                listeners
                    .listeners()
                    .iter()
                    .filter_map(|l| l.listener_arn().map(str::to_string)),
            )
            .collect();
        let all_tags = describe_tags(tag_arns);
        let listeners =
            futures_util::future::try_join_all(listeners.listeners().iter().map(|listener| {
                let tg_arn = tg_arn.clone();
                let lb_res = lb_res.clone();
                async move {
                    let larn = listener.listener_arn().unwrap_or_default();
                    let rules = ctx
                        .call("DescribeRules", &lb_res, || {
                            elb.describe_rules().listener_arn(larn).send()
                        })
                        .await?;
                    let mut docs = BTreeMap::new();
                    let mut rule_arns = BTreeMap::new();
                    for r in rules
                        .rules()
                        .iter()
                        .filter(|r| r.is_default() != Some(true))
                    {
                        if let Some(p) = r.priority().and_then(|p| p.parse::<u32>().ok()) {
                            docs.insert(p, rule_doc(r, tg_arn.as_deref()));
                            rule_arns.insert(p, r.rule_arn().unwrap_or_default().to_string());
                        }
                    }
                    let protocol = listener
                        .protocol()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default();
                    let https = protocol == "HTTPS";
                    let port = listener.port().unwrap_or_default() as u16;
                    Ok::<_, Error>((
                        port,
                        LiveListener {
                            id: format!("{lb_name}:{port}"),
                            arn: larn.to_string(),
                            doc: ListenerDoc {
                                certificate: https
                                    .then(|| {
                                        listener
                                            .certificates()
                                            .iter()
                                            .find(|c| c.is_default() != Some(false))
                                            .and_then(|c| c.certificate_arn())
                                            .map(str::to_string)
                                    })
                                    .flatten(),
                                ssl_policy: listener
                                    .ssl_policy()
                                    .filter(|_| https)
                                    .map(str::to_string),
                                protocol,
                                default_action: action_doc(
                                    listener.default_actions(),
                                    tg_arn.as_deref(),
                                ),
                                rules: docs,
                            },
                            rule_arns,
                            tags: Tags::new(),
                            lb_tags: Tags::new(),
                        },
                    ))
                }
            }));
        let (listeners, tags) = futures_util::try_join!(listeners, all_tags)?;
        let mut subnets: Vec<String> = l
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_string))
            .collect();
        subnets.sort();
        let mut sgs = l.security_groups().to_vec();
        sgs.sort();
        Ok((
            Some(LiveAlb {
                name: lb_name.to_string(),
                arn: arn.to_string(),
                dns_name: l.dns_name().unwrap_or_default().to_string(),
                internal: l.scheme() == Some(&LoadBalancerSchemeEnum::Internal),
                subnets,
                security_groups: sgs,
                attributes: attrs(attributes.attributes().iter().map(|a| (a.key(), a.value()))),
                tags: Tags::new(),
            }),
            listeners.into_iter().collect(),
            tags,
        ))
    };
    let tg_part = async {
        let Some(t) = &tgs else {
            return Ok::<_, Error>(None);
        };
        let arn = t.target_group_arn().unwrap_or_default();
        let attributes = ctx
            .call("DescribeTargetGroupAttributes", &tg_res, || {
                elb.describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send()
            })
            .await?;
        let health = BTreeMap::from([
            ("path", t.health_check_path().unwrap_or("/").to_string()),
            (
                "interval",
                t.health_check_interval_seconds().unwrap_or(30).to_string(),
            ),
            (
                "timeout",
                t.health_check_timeout_seconds().unwrap_or(5).to_string(),
            ),
            (
                "healthy_threshold",
                t.healthy_threshold_count().unwrap_or(5).to_string(),
            ),
            (
                "unhealthy_threshold",
                t.unhealthy_threshold_count().unwrap_or(2).to_string(),
            ),
            (
                "matcher",
                t.matcher()
                    .and_then(|m| m.http_code())
                    .unwrap_or("200")
                    .to_string(),
            ),
            (
                "protocol",
                t.health_check_protocol()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
            ),
        ]);
        Ok(Some(LiveTg {
            name: tg_name.unwrap_or_default().to_string(),
            arn: arn.to_string(),
            port: t.port().unwrap_or_default() as u16,
            protocol: t
                .protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            vpc_id: t.vpc_id().unwrap_or_default().to_string(),
            health,
            attributes: attrs(attributes.attributes().iter().map(|a| (a.key(), a.value()))),
            tags: Tags::new(),
            load_balancers: t.load_balancer_arns().to_vec(),
        }))
    };
    let (lb_read, tg_read) = futures_util::join!(lb_part, tg_part);
    let ((mut lb, mut listeners, tags), mut tg) = (lb_read?, tg_read?);
    let tags_of = |arn: Option<&str>| {
        tags.iter()
            .find(|d| d.resource_arn() == arn)
            .map(|d| Tags::from_pairs(tag_map(d.tags())))
            .unwrap_or_default()
    };
    for listener in listeners.values_mut() {
        listener.tags = tags_of(Some(&listener.arn));
    }
    if let (Some(l), Some(read)) = (&mut lb, &lbs) {
        l.tags = tags_of(read.load_balancer_arn());
        for listener in listeners.values_mut() {
            listener.lb_tags = l.tags.clone();
        }
    }
    if let (Some(g), Some(read)) = (&mut tg, &tgs) {
        g.tags = tags_of(read.target_group_arn());
    }
    Ok(LiveLb { lb, tg, listeners })
}

/// The name of a target group, from its ARN (`…:targetgroup/<name>/<id>`).
pub(crate) fn tg_name_of(arn: &str) -> Option<&str> {
    arn.split(":targetgroup/").nth(1)?.split('/').next()
}

/// The ARN of the target group an action forwards to, when it forwards to another one than
/// the one it was read against (which reads as [`ActionDoc::Forward`]).
pub(crate) fn other_forward(action: &ActionDoc) -> Option<&str> {
    match action {
        ActionDoc::Other(s) => s.strip_prefix("forward to "),
        _ => None,
    }
}

/// `live` without the rules that forward to another stack's target group (another service
/// of the environment this stack is, whose rules are its own): this stack neither plans nor
/// deletes them. A rule forwarding to a target group with this stack's target group's name
/// (an earlier one) stays the stack's.
pub(crate) fn without_others_rules(mut live: LiveLb, tg_name: &str) -> LiveLb {
    for l in live.listeners.values_mut() {
        let others: Vec<u32> = l
            .doc
            .rules
            .iter()
            .filter(|(_, r)| {
                other_forward(&r.action)
                    .and_then(tg_name_of)
                    .is_some_and(|name| name != tg_name)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in others {
            l.doc.rules.remove(&p);
            l.rule_arns.remove(&p);
        }
    }
    live
}

/// `live` without the rules that forward to a target group: on an environment's load
/// balancer, those are its services' (its own rules never forward), and the environment
/// neither plans nor deletes them.
pub(crate) fn without_forwarding_rules(mut live: LiveLb) -> LiveLb {
    for l in live.listeners.values_mut() {
        let forwarding: Vec<u32> = l
            .doc
            .rules
            .iter()
            .filter(|(_, r)| r.action == ActionDoc::Forward || other_forward(&r.action).is_some())
            .map(|(p, _)| *p)
            .collect();
        for p in forwarding {
            l.doc.rules.remove(&p);
            l.rule_arns.remove(&p);
        }
    }
    live
}

/// `Ok` when the load balancer and the target group read under the stack's names are the
/// stack's (the engine's check, by their tags), else the conflict that stops the plan. The
/// listeners and rules are the load balancer's.
pub(crate) fn check_owned(ctx: &Context, live: &LiveLb) -> Result<()> {
    if let Some(l) = &live.lb {
        resource::check_owned::<Alb<'_>>(ctx, &l.name, l)
            .map_err(|_| conflict(ctx, LB_KIND, &l.name))?;
    }
    if let Some(t) = &live.tg {
        resource::check_owned::<TargetGroup<'_>>(ctx, &t.name, t)
            .map_err(|_| conflict(ctx, TG_KIND, &t.name))?;
    }
    Ok(())
}

/// What of `live` is the stack's: a load balancer that is not (with its listeners) and a
/// target group that is not are left out, so that destroy never touches them.
pub(crate) fn owned_only(ctx: &Context, mut live: LiveLb) -> LiveLb {
    if live
        .lb
        .as_ref()
        .is_some_and(|l| !resource::owned::<Alb<'_>>(ctx, l))
    {
        live.lb = None;
        live.listeners.clear();
    }
    if live
        .tg
        .as_ref()
        .is_some_and(|t| !resource::owned::<TargetGroup<'_>>(ctx, t))
    {
        live.tg = None;
    }
    live
}

fn changed_attrs(
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    want.iter()
        .filter(|(k, v)| have.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An attribute (of the load balancer or the target group) that differs: its key, the live
/// value (`None`: unset) and the wanted one. The plan shows it under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrDiff {
    pub(crate) key: String,
    pub(crate) live: Option<String>,
    pub(crate) want: String,
}

impl AttrDiff {
    fn field(&self) -> FieldDiff {
        FieldDiff::new(
            &self.key,
            self.live.as_deref().unwrap_or("unset"),
            &self.want,
        )
    }
}

fn attr_diffs(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> Vec<AttrDiff> {
    changed_attrs(want, have)
        .into_iter()
        .map(|(key, want)| AttrDiff {
            live: have.get(&key).cloned(),
            key,
            want,
        })
        .collect()
}

/// The plan entries for the load balancer, target group, listeners and rules; also deletes
/// of listeners and rules the spec no longer has. `desired` is `None` when the spec has no
/// load balancer (then everything owned is deleted).
pub(crate) fn changes(d: Option<&DesiredLb>, live: &LiveLb) -> Plan {
    let mut plan = Plan::new();
    match d {
        Some(d) => {
            let alb = Alb(d);
            plan.push(resource::decide(&alb, live.lb.clone()).change(&alb));
            if let Some(want) = &d.tg {
                let tg = TargetGroup(want);
                plan.push(resource::decide(&tg, live.tg.clone()).change(&tg));
            }
            let tg_is_new = d.tg.is_some() && live.tg.is_none();
            let tg_arn: Option<Known<String>> =
                d.tg.as_ref()
                    .map(|_| live.tg.as_ref().map(|t| t.arn.clone()).into());
            for (port, want) in &d.listeners {
                let have = live.listeners.get(port);
                let listener = Listener {
                    tags: d.listener_tags(*port),
                    lb_name: &d.name,
                    port: *port,
                    want,
                    lb_arn: live.lb.as_ref().map(|l| l.arn.clone()).into(),
                    tg_arn: tg_arn.clone(),
                    tg_is_new,
                };
                plan.push(resource::decide(&listener, have.cloned()).change(&listener));
                for (priority, doc) in &want.rules {
                    let rule = ListenerRule {
                        listener: listener.logical_id(),
                        port: *port,
                        priority: *priority,
                        want: doc,
                        listener_arn: have.map(|l| l.arn.clone()).into(),
                        tg_arn: listener.tg_arn.clone(),
                        tg_is_new,
                    };
                    let live_rule = have.and_then(|l| l.rule(*priority));
                    plan.push(resource::decide(&rule, live_rule).change(&rule));
                }
                for priority in have
                    .iter()
                    .flat_map(|l| l.doc.rules.keys())
                    .filter(|p| !want.rules.contains_key(p))
                {
                    plan.push(Change::new(
                        RULE_KIND,
                        format!("{}/{priority}", listener.logical_id()),
                        Action::Delete,
                    ));
                }
            }
            for port in live
                .listeners
                .keys()
                .filter(|p| !d.listeners.contains_key(p))
            {
                plan.push(Change::new(
                    LISTENER_KIND,
                    format!("{}:{port}", d.name),
                    Action::Delete,
                ));
            }
        }
        None => {
            for l in live.listeners.values() {
                plan.push(Change::new(LISTENER_KIND, &l.id, Action::Delete));
            }
            if let Some(l) = &live.lb {
                plan.push(Change::new(LB_KIND, &l.name, Action::Delete));
            }
            if let Some(t) = &live.tg {
                plan.push(Change::new(TG_KIND, &t.name, Action::Delete));
            }
        }
    }
    plan
}

/// What the load balancer part gives the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LbOutputs {
    pub(crate) lb_arn: String,
    pub(crate) dns_name: String,
    /// `None` for a load balancer without a target group (an environment's).
    pub(crate) tg_arn: Option<String>,
    pub(crate) listener_arns: Vec<String>,
}

/// Adds to `g` the steps that make the load balancer part as `d` wants it from what was read
/// (`live`): the load balancer and the target group at once, each listener after both, each
/// of its rules after it (and those it no longer has deleted), each listener the spec no
/// longer has deleted, and a last step that gathers the outputs once every listener and rule
/// is done. `changes` (the plan) gives the actions the executor reports. Nothing waits for
/// the load balancer to become active: only the service's rollout needs that, and ECS waits
/// for it.
pub(crate) fn add_steps<'a>(
    g: &mut Graph<'a, Error>,
    ctx: &'a Context,
    elb: &'a Client,
    d: &'a DesiredLb,
    live: &'a LiveLb,
    changes: &'a Plan,
) -> Step<LbOutputs> {
    let verb = |kind: &str, id: &str| changes.find(kind, id).and_then(|c| c.action.verb());
    let alb = g
        .step(format!("{LB_KIND} {}", d.name))
        .action_if(verb(LB_KIND, &d.name))
        .converge(ctx, elb, live.lb.clone(), move |_| Alb(d));
    let tg = d.tg.as_ref().map(|want| {
        g.step(format!("{TG_KIND} {}", want.name))
            .action_if(verb(TG_KIND, &want.name))
            .converge(ctx, elb, live.tg.clone(), move |_| TargetGroup(want))
    });
    let tg_is_new = d.tg.is_some() && live.tg.is_none();
    let mut rules: Vec<Dep> = Vec::new();
    let listeners: Vec<Step<String>> = d
        .listeners
        .iter()
        .map(|(port, want)| {
            let have = live.listeners.get(port);
            let listener = g
                .step(format!("{LISTENER_KIND} {}:{port}", d.name))
                .after(alb)
                .after_all(tg)
                .action_if(verb(LISTENER_KIND, &format!("{}:{port}", d.name)))
                .converge(ctx, elb, have.cloned(), move |i| Listener {
                    tags: d.listener_tags(*port),
                    lb_name: &d.name,
                    port: *port,
                    want,
                    lb_arn: Known::Known(i.get(alb).0.clone()),
                    tg_arn: tg.map(|t| Known::Known(i.get(t).clone())),
                    tg_is_new,
                });
            // Each rule after its listener, the ones the spec no longer has deleted.
            for (priority, doc) in &want.rules {
                let id = format!("{}:{port}/{priority}", d.name);
                let rule = g
                    .step(format!("{RULE_KIND} {id}"))
                    .after(listener)
                    .after_all(tg)
                    .action_if(verb(RULE_KIND, &id))
                    .converge(ctx, elb, have.and_then(|l| l.rule(*priority)), move |i| {
                        ListenerRule {
                            listener: format!("{}:{port}", d.name),
                            port: *port,
                            priority: *priority,
                            want: doc,
                            listener_arn: Known::Known(i.get(listener).clone()),
                            tg_arn: tg.map(|t| Known::Known(i.get(t).clone())),
                            tg_is_new,
                        }
                    });
                rules.push(rule.into());
            }
            for gone in have
                .iter()
                .flat_map(|l| l.doc.rules.keys())
                .filter(|p| !want.rules.contains_key(p))
                .filter_map(|p| have.and_then(|l| l.rule(*p)))
            {
                let rule = g
                    .step(format!("{RULE_KIND} {}", gone.id))
                    .after(listener)
                    .action("delete")
                    .run(move |_| async move {
                        resource::delete::<ListenerRule<'_>>(ctx, elb, &gone).await
                    });
                rules.push(rule.into());
            }
            listener
        })
        .collect();
    for l in live
        .listeners
        .iter()
        .filter(|(p, _)| !d.listeners.contains_key(p))
        .map(|(_, l)| l)
    {
        g.step(format!("{LISTENER_KIND} {}", l.id))
            .action("delete")
            .run(move |_| resource::delete::<Listener<'_>>(ctx, elb, l));
    }
    g.step(format!("{LB_KIND} {} outputs", d.name))
        .after(alb)
        .after_all(tg)
        .after_all(listeners.iter().copied())
        .after_all(rules)
        .run(move |i| {
            let (lb_arn, dns_name) = i.get(alb).clone();
            let out = LbOutputs {
                lb_arn,
                dns_name,
                tg_arn: tg.map(|t| i.get(t).clone()),
                listener_arns: listeners.iter().map(|l| i.get(*l).clone()).collect(),
            };
            async move { Ok(out) }
        })
}

/// Adds to `g` the steps that delete the load balancer part as read (`live`): each listener,
/// then the load balancer (waited for until gone, then its network interfaces, so that the
/// network layer can delete subnets and security groups without `DependencyViolation`),
/// then the target group, which also waits for `tg_after` (the service that uses it). The
/// listeners wait for `after`.
pub(crate) fn teardown<'a>(
    g: &mut Graph<'a, Error>,
    ctx: &'a Context,
    elb: &'a Client,
    ec2: &'a aws_sdk_ec2::Client,
    live: &'a LiveLb,
    after: Vec<Dep>,
    tg_after: Vec<Dep>,
) {
    let listeners: Vec<Dep> = live
        .listeners
        .values()
        .map(|l| {
            g.step(format!("{LISTENER_KIND} {}", l.id))
                .after_all(after.iter().copied())
                .action("delete")
                .run(move |_| resource::delete::<Listener<'_>>(ctx, elb, l))
                .into()
        })
        .collect();
    let front: Vec<Dep> = match &live.lb {
        Some(lb) => {
            let deleted = g
                .step(format!("{LB_KIND} {}", lb.name))
                .after_all(listeners.iter().copied())
                .action("delete")
                .run(move |_| resource::delete::<Alb<'_>>(ctx, elb, lb));
            let enis = g
                .step(format!("{LB_KIND} {} network interfaces", lb.name))
                .after(deleted)
                .action("wait")
                .run(move |_| wait_for_enis(ctx, ec2, &lb.arn));
            vec![enis.into()]
        }
        None => listeners,
    };
    if let Some(tg) = &live.tg {
        g.step(format!("{TG_KIND} {}", tg.name))
            .after_all(front)
            .after_all(tg_after)
            .action("delete")
            .run(move |_| resource::delete::<TargetGroup<'_>>(ctx, elb, tg));
    }
}

#[cfg(test)]
mod typed_diff_tests {
    use super::*;

    fn want() -> DesiredLb {
        DesiredLb {
            name: "web-alb".into(),
            internal: false,
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_groups: vec!["sg-alb".into()],
            attributes: BTreeMap::from([("idle_timeout.timeout_seconds".into(), "60".into())]),
            tags: Tags::new().with("ecs:stack", "web"),
            tg: Some(DesiredTg {
                name: "web-app".into(),
                port: 8080,
                protocol: "HTTP".into(),
                vpc_id: "vpc-1".into(),
                health: BTreeMap::from([("path", "/".to_string())]),
                attributes: BTreeMap::from([(
                    "deregistration_delay.timeout_seconds".into(),
                    "30".into(),
                )]),
                tags: Tags::new().with("ecs:stack", "web"),
            }),
            listeners: BTreeMap::new(),
            listener_tags: BTreeMap::new(),
        }
    }

    #[test]
    fn each_difference_of_the_load_balancer_and_target_group_is_one_typed_diff() {
        let d = want();
        let want_tg = d.tg.clone().expect("a target group");
        let alb = LiveAlb {
            name: "web-alb".into(),
            arn: "arn:alb".into(),
            dns_name: "web-alb.example".into(),
            internal: false,
            subnets: vec!["subnet-a".into()],
            security_groups: d.security_groups.clone(),
            attributes: BTreeMap::new(),
            tags: d.tags.clone(),
        };
        let lines: Vec<FieldDiff> = alb_diffs(&d, &alb).iter().map(Diff::field).collect();
        assert_eq!(
            lines,
            [
                FieldDiff::new("subnets", "subnet-a", "subnet-a,subnet-b"),
                FieldDiff::new("idle_timeout.timeout_seconds", "unset", "60"),
            ]
        );
        let tg = LiveTg {
            name: "web-app".into(),
            arn: "arn:tg".into(),
            port: 8080,
            protocol: "HTTP".into(),
            vpc_id: "vpc-1".into(),
            health: BTreeMap::from([("path", "/old".to_string())]),
            attributes: want_tg.attributes.clone(),
            tags: Tags::new(),
            load_balancers: Vec::new(),
        };
        let lines: Vec<FieldDiff> = tg_diffs(&want_tg, &tg).iter().map(Diff::field).collect();
        assert_eq!(
            lines,
            [
                FieldDiff::new("health_check.path", "/old", "/"),
                FieldDiff::new("tags", "{}", "{ecs:stack=web}"),
            ]
        );
        let same = LiveTg {
            health: want_tg.health.clone(),
            tags: want_tg.tags.clone(),
            ..tg
        };
        assert_eq!(tg_diffs(&want_tg, &same), vec![]);
    }

    #[test]
    fn each_difference_of_a_listener_and_a_rule_is_one_typed_diff() {
        let rule = RuleDoc {
            paths: vec!["/api/*".into()],
            hosts: Vec::new(),
            action: ActionDoc::Forward,
        };
        let want = ListenerDoc {
            protocol: "HTTPS".into(),
            certificate: Some("arn:cert".into()),
            ssl_policy: Some("ELBSecurityPolicy-TLS13-1-2-2021-06".into()),
            default_action: ActionDoc::Forward,
            rules: BTreeMap::from([(10, rule.clone())]),
        };
        let live = LiveListener {
            id: "web-alb:443".into(),
            arn: "arn:listener".into(),
            doc: want.clone(),
            rule_arns: BTreeMap::from([(10, "arn:rule".to_string())]),
            tags: Tags::new(),
            lb_tags: Tags::new(),
        };
        let listener = |tg_is_new| Listener {
            tags: Tags::new(),
            lb_name: "web-alb",
            port: 443,
            want: &want,
            lb_arn: Known::Known("arn:alb".into()),
            tg_arn: Some(Known::Known("arn:tg".into())),
            tg_is_new,
        };
        assert_eq!(listener(false).diff(&live), vec![]);
        assert_eq!(listener(false).logical_id(), "web-alb:443");
        // (what drifted, the plan lines)
        let drifted = |f: &dyn Fn(&mut ListenerDoc)| {
            let mut l = live.clone();
            f(&mut l.doc);
            l
        };
        let cases: Vec<(LiveListener, bool, Vec<FieldDiff>)> = vec![
            (
                drifted(&|d| d.ssl_policy = Some("ELBSecurityPolicy-2016-08".into())),
                false,
                vec![FieldDiff::new(
                    "ssl_policy",
                    "ELBSecurityPolicy-2016-08",
                    "ELBSecurityPolicy-TLS13-1-2-2021-06",
                )],
            ),
            (
                drifted(&|d| {
                    d.certificate = None;
                    d.protocol = "HTTP".into();
                }),
                false,
                vec![
                    FieldDiff::new("protocol", "HTTP", "HTTPS"),
                    FieldDiff::new("certificate", "none", "arn:cert"),
                ],
            ),
            (
                drifted(&|d| d.default_action = ActionDoc::Other("forward to arn:old".into())),
                false,
                vec![FieldDiff::new(
                    "default_action",
                    "forward to arn:old",
                    "forward to target group",
                )],
            ),
            (
                live.clone(),
                true,
                vec![FieldDiff::new(
                    "default_action",
                    "forward",
                    "forward to the new target group",
                )],
            ),
            // A forward read against a target group that is gone differs already: one line.
            (
                drifted(&|d| d.default_action = ActionDoc::Other("forward to arn:old".into())),
                true,
                vec![FieldDiff::new(
                    "default_action",
                    "forward to arn:old",
                    "forward to target group",
                )],
            ),
        ];
        for (have, tg_is_new, lines) in cases {
            let got: Vec<FieldDiff> = listener(tg_is_new)
                .diff(&have)
                .iter()
                .map(Diff::field)
                .collect();
            assert_eq!(got, lines);
        }

        let desired = |doc: &RuleDoc, tg_is_new| {
            let doc = doc.clone();
            move |have: &LiveRule| {
                ListenerRule {
                    listener: "web-alb:443".into(),
                    port: 443,
                    priority: 10,
                    want: &doc,
                    listener_arn: Known::Known("arn:listener".into()),
                    tg_arn: Some(Known::Known("arn:tg".into())),
                    tg_is_new,
                }
                .diff(have)
                .iter()
                .map(Diff::field)
                .collect::<Vec<FieldDiff>>()
            }
        };
        let have = live.rule(10).expect("the rule at 10");
        assert_eq!(have.id, "web-alb:443/10");
        assert_eq!(desired(&rule, false)(&have), vec![]);
        let moved = RuleDoc {
            paths: vec!["/v2/*".into()],
            hosts: vec!["api.example.com".into()],
            ..rule.clone()
        };
        assert_eq!(
            desired(&moved, false)(&have),
            [
                FieldDiff::new("paths", "/api/*", "/v2/*"),
                FieldDiff::new("hosts", "", "api.example.com"),
            ]
        );
        assert_eq!(
            desired(&rule, true)(&have),
            [FieldDiff::new(
                "action",
                "forward",
                "forward to the new target group"
            )]
        );
        assert!(live.rule(20).is_none());
    }
}
