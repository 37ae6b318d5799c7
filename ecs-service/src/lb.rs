//! The application load balancer, its target group, listeners and rules, reconciled exactly:
//! attributes, health check, listener protocol/certificate/TLS policy/default action, and
//! rules keyed by priority (changed → modified, removed → deleted).

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
use ecs_core::{Action, Change, Context, FieldDiff, Plan, Poll, PollPolicy, RetryOn, Tags};

use crate::names::{conflict, ServiceNames};
use crate::spec::{ListenerAction, LoadBalancerSpec, Protocol};
use crate::tagging::{self, StackTags};
use crate::{Error, Result};

pub(crate) const LB_KIND: &str = "load-balancer";
pub(crate) const TG_KIND: &str = "target-group";
pub(crate) const LISTENER_KIND: &str = "listener";
pub(crate) const RULE_KIND: &str = "listener-rule";

/// The load balancer's logical id (its `ecs:resource` tag).
const LB_LOGICAL: &str = "load-balancer";
/// The target group's logical id.
const TG_LOGICAL: &str = "target-group";

/// What a listener or rule does, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ActionDoc {
    /// Forward to the stack's target group.
    Forward,
    Redirect {
        port: u16,
    },
    Fixed {
        status: String,
        content_type: String,
        body: String,
    },
    /// Anything else (e.g. forwarding to another target group).
    Other(String),
}

impl std::fmt::Display for ActionDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionDoc::Forward => write!(f, "forward to target group"),
            ActionDoc::Redirect { port } => write!(f, "redirect to HTTPS:{port}"),
            ActionDoc::Fixed { status, .. } => write!(f, "fixed response {status}"),
            ActionDoc::Other(s) => write!(f, "{s}"),
        }
    }
}

impl From<&ListenerAction> for ActionDoc {
    fn from(a: &ListenerAction) -> Self {
        match a {
            ListenerAction::Forward => ActionDoc::Forward,
            ListenerAction::RedirectToHttps { port } => ActionDoc::Redirect { port: *port },
            ListenerAction::FixedResponse {
                status,
                content_type,
                body,
            } => ActionDoc::Fixed {
                status: status.to_string(),
                content_type: content_type.clone(),
                body: body.clone(),
            },
        }
    }
}

/// The load balancer, target group, listeners and rules as the spec wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredLb {
    pub(crate) name: String,
    pub(crate) internal: bool,
    pub(crate) subnets: Vec<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) tags: Tags,
    pub(crate) tg: DesiredTg,
    pub(crate) listeners: BTreeMap<u16, ListenerDoc>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerDoc {
    pub(crate) protocol: String,
    pub(crate) certificate: Option<String>,
    pub(crate) ssl_policy: Option<String>,
    pub(crate) default_action: ActionDoc,
    pub(crate) rules: BTreeMap<u32, RuleDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleDoc {
    pub(crate) paths: Vec<String>,
    pub(crate) hosts: Vec<String>,
    pub(crate) action: ActionDoc,
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
    pub(crate) arn: String,
    pub(crate) port: u16,
    pub(crate) protocol: String,
    pub(crate) vpc_id: String,
    pub(crate) health: BTreeMap<&'static str, String>,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveListener {
    pub(crate) arn: String,
    pub(crate) doc: ListenerDoc,
    pub(crate) rule_arns: BTreeMap<u32, String>,
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
    let mut attributes = BTreeMap::from([
        (
            "routing.http.drop_invalid_header_fields.enabled".to_string(),
            "true".to_string(),
        ),
        (
            "idle_timeout.timeout_seconds".to_string(),
            spec.idle_timeout.to_string(),
        ),
        (
            "access_logs.s3.enabled".to_string(),
            spec.access_logs.is_some().to_string(),
        ),
    ]);
    if let Some(logs) = &spec.access_logs {
        attributes.insert("access_logs.s3.bucket".into(), logs.bucket.clone());
        attributes.insert("access_logs.s3.prefix".into(), logs.prefix.clone());
    }
    let tg = &spec.target_group;
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
    let mut subnets = spec.subnets.clone().unwrap_or_else(|| subnets.to_vec());
    subnets.sort();
    DesiredLb {
        name: names.load_balancer.clone(),
        internal: spec.internal,
        subnets,
        security_groups: vec![alb_sg.to_string()],
        attributes,
        tags: tags.of(LB_LOGICAL),
        tg: DesiredTg {
            name: names.target_group.clone(),
            port,
            protocol: tg.protocol.as_str().to_string(),
            vpc_id: vpc_id.to_string(),
            health,
            attributes: tg_attributes,
            tags: tags.of(TG_LOGICAL),
        },
        listeners: spec
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

fn action_doc(actions: &[ElbAction], tg_arn: Option<&str>) -> ActionDoc {
    let Some(a) = actions.iter().min_by_key(|a| a.order().unwrap_or(0)) else {
        return ActionDoc::Other("none".into());
    };
    match a.r#type() {
        Some(ActionTypeEnum::Forward) => {
            let target = a.target_group_arn().or_else(|| {
                a.forward_config()
                    .and_then(|f| f.target_groups().first())
                    .and_then(|t| t.target_group_arn())
            });
            if target.is_some() && target == tg_arn {
                ActionDoc::Forward
            } else {
                ActionDoc::Other(format!("forward to {}", target.unwrap_or("?")))
            }
        }
        Some(ActionTypeEnum::Redirect) => match a.redirect_config() {
            Some(r)
                if r.protocol() == Some("HTTPS")
                    && r.status_code() == Some(&RedirectActionStatusCodeEnum::Http301)
                    && r.host().is_none_or(|h| h == "#{host}")
                    && r.path().is_none_or(|p| p == "/#{path}")
                    && r.query().is_none_or(|q| q == "#{query}") =>
            {
                match r.port().and_then(|p| p.parse().ok()) {
                    Some(port) => ActionDoc::Redirect { port },
                    None => ActionDoc::Other("redirect".into()),
                }
            }
            _ => ActionDoc::Other("redirect".into()),
        },
        Some(ActionTypeEnum::FixedResponse) => {
            let f = a.fixed_response_config();
            ActionDoc::Fixed {
                status: f
                    .and_then(|f| f.status_code())
                    .unwrap_or_default()
                    .to_string(),
                content_type: f
                    .and_then(|f| f.content_type())
                    .unwrap_or("text/plain")
                    .to_string(),
                body: f
                    .and_then(|f| f.message_body())
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        other => ActionDoc::Other(format!("{other:?}")),
    }
}

fn elb_actions(doc: &ActionDoc, tg_arn: &str) -> Vec<ElbAction> {
    let action = match doc {
        ActionDoc::Forward | ActionDoc::Other(_) => ElbAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(tg_arn),
        ActionDoc::Redirect { port } => ElbAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port(port.to_string())
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            ),
        ActionDoc::Fixed {
            status,
            content_type,
            body,
        } => ElbAction::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status)
                    .content_type(content_type)
                    .message_body(body)
                    .build(),
            ),
    };
    vec![action.build()]
}

fn conditions(doc: &RuleDoc) -> Vec<RuleCondition> {
    let mut out = Vec::new();
    if !doc.paths.is_empty() {
        out.push(
            RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(
                    PathPatternConditionConfig::builder()
                        .set_values(Some(doc.paths.clone()))
                        .build(),
                )
                .build(),
        );
    }
    if !doc.hosts.is_empty() {
        out.push(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    HostHeaderConditionConfig::builder()
                        .set_values(Some(doc.hosts.clone()))
                        .build(),
                )
                .build(),
        );
    }
    out
}

fn rule_doc(rule: &aws_sdk_elasticloadbalancingv2::types::Rule, tg_arn: Option<&str>) -> RuleDoc {
    let mut paths = Vec::new();
    let mut hosts = Vec::new();
    for c in rule.conditions() {
        match c.field() {
            Some("path-pattern") => paths.extend(
                c.path_pattern_config()
                    .map(|p| p.values().to_vec())
                    .unwrap_or_else(|| c.values().to_vec()),
            ),
            Some("host-header") => hosts.extend(
                c.host_header_config()
                    .map(|p| p.values().to_vec())
                    .unwrap_or_else(|| c.values().to_vec()),
            ),
            other => paths.push(format!("unsupported condition {other:?}")),
        }
    }
    paths.sort();
    hosts.sort();
    RuleDoc {
        paths,
        hosts,
        action: action_doc(rule.actions(), tg_arn),
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
    let lb_res = format!("{LB_KIND} {}", names.load_balancer);
    let tg_res = format!("{TG_KIND} {}", names.target_group);
    let (lbs, tgs) = futures_util::try_join!(
        async {
            match ctx
                .call("DescribeLoadBalancers", &lb_res, || {
                    elb.describe_load_balancers()
                        .names(&names.load_balancer)
                        .send()
                })
                .await
            {
                Ok(out) => Ok(out.load_balancers().first().cloned()),
                Err(e) if e.is_code("LoadBalancerNotFound") => Ok(None),
                Err(e) => Err(e),
            }
        },
        async {
            match ctx
                .call("DescribeTargetGroups", &tg_res, || {
                    elb.describe_target_groups()
                        .names(&names.target_group)
                        .send()
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
    // The tags are read together with the rest (reading someone else's load balancer changes
    // nothing), and checked before anything read is used.
    let tags = async {
        ctx.call("DescribeTags", &lb_res, || {
            elb.describe_tags()
                .set_resource_arns(Some(arns.clone()))
                .send()
        })
        .await
        .map_err(Error::from)
    };
    let tg_arn = tgs
        .as_ref()
        .and_then(|t| t.target_group_arn())
        .map(str::to_string);
    let lb_part = async {
        let Some(l) = &lbs else {
            return Ok::<_, Error>((None, BTreeMap::new()));
        };
        let arn = l.load_balancer_arn().unwrap_or_default();
        let (attributes, listeners) = futures_util::try_join!(
            ctx.call("DescribeLoadBalancerAttributes", &lb_res, || {
                elb.describe_load_balancer_attributes()
                    .load_balancer_arn(arn)
                    .send()
            }),
            ctx.call("DescribeListeners", &lb_res, || {
                elb.describe_listeners().load_balancer_arn(arn).send()
            }),
        )?;
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
                        },
                    ))
                }
            }))
            .await?;
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
                arn: arn.to_string(),
                dns_name: l.dns_name().unwrap_or_default().to_string(),
                internal: l.scheme() == Some(&LoadBalancerSchemeEnum::Internal),
                subnets,
                security_groups: sgs,
                attributes: attrs(attributes.attributes().iter().map(|a| (a.key(), a.value()))),
                tags: Tags::new(),
            }),
            listeners.into_iter().collect(),
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
        }))
    };
    let (tags, lb_read, tg_read) = futures_util::join!(tags, lb_part, tg_part);
    let tags = tags?;
    // The resource's tags, when they make it the stack's.
    let owned_tags = |arn: Option<&str>| {
        tags.tag_descriptions()
            .iter()
            .find(|d| d.resource_arn() == arn && ctx.owns(tag_map(d.tags())))
            .map(|d| Tags::from_pairs(tag_map(d.tags())))
    };
    let lb_tags = match &lbs {
        Some(l) => Some(
            owned_tags(l.load_balancer_arn())
                .ok_or_else(|| conflict(ctx, LB_KIND, &names.load_balancer))?,
        ),
        None => None,
    };
    let tg_tags = match &tgs {
        Some(t) => Some(
            owned_tags(t.target_group_arn())
                .ok_or_else(|| conflict(ctx, TG_KIND, &names.target_group))?,
        ),
        None => None,
    };
    let ((mut lb, listeners), mut tg) = (lb_read?, tg_read?);
    if let (Some(l), Some(t)) = (&mut lb, lb_tags) {
        l.tags = t;
    }
    if let (Some(g), Some(t)) = (&mut tg, tg_tags) {
        g.tags = t;
    }
    Ok(LiveLb { lb, tg, listeners })
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

fn attr_diffs(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> Vec<FieldDiff> {
    changed_attrs(want, have)
        .into_iter()
        .map(|(k, v)| FieldDiff::new(&k, have.get(&k).map_or("unset", String::as_str), v))
        .collect()
}

fn lb_action(d: &DesiredLb, live: Option<&LiveAlb>) -> Action {
    match live {
        None => Action::Create,
        Some(l) if l.internal != d.internal => Action::Replace(format!(
            "scheme {} → {}",
            if l.internal {
                "internal"
            } else {
                "internet-facing"
            },
            if d.internal {
                "internal"
            } else {
                "internet-facing"
            }
        )),
        Some(l) => {
            let mut diffs = Vec::new();
            if l.subnets != d.subnets {
                diffs.push(FieldDiff::new(
                    "subnets",
                    l.subnets.join(","),
                    d.subnets.join(","),
                ));
            }
            if l.security_groups != d.security_groups {
                diffs.push(FieldDiff::new(
                    "security_groups",
                    l.security_groups.join(","),
                    d.security_groups.join(","),
                ));
            }
            diffs.extend(attr_diffs(&d.attributes, &l.attributes));
            diffs.extend(d.tags.diff_from(&l.tags).map(|t| t.field()));
            Action::from_diffs(diffs)
        }
    }
}

fn tg_action(d: &DesiredTg, live: Option<&LiveTg>) -> Action {
    match live {
        None => Action::Create,
        Some(l) if l.port != d.port || l.protocol != d.protocol || l.vpc_id != d.vpc_id => {
            Action::Replace(format!(
                "port, protocol and VPC cannot change ({} {}:{} → {} {}:{})",
                l.vpc_id, l.protocol, l.port, d.vpc_id, d.protocol, d.port
            ))
        }
        Some(l) => {
            let mut diffs: Vec<FieldDiff> = d
                .health
                .iter()
                .filter(|(k, v)| l.health.get(*k) != Some(v))
                .map(|(k, v)| {
                    FieldDiff::new(
                        format!("health_check.{k}"),
                        l.health.get(k).map_or("unset", String::as_str),
                        v,
                    )
                })
                .collect();
            diffs.extend(attr_diffs(&d.attributes, &l.attributes));
            diffs.extend(d.tags.diff_from(&l.tags).map(|t| t.field()));
            Action::from_diffs(diffs)
        }
    }
}

fn listener_diffs(want: &ListenerDoc, have: &ListenerDoc) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    if want.protocol != have.protocol {
        d.push(FieldDiff::new("protocol", &have.protocol, &want.protocol));
    }
    if want.certificate != have.certificate {
        d.push(FieldDiff::new(
            "certificate",
            opt(&have.certificate),
            opt(&want.certificate),
        ));
    }
    if want.ssl_policy != have.ssl_policy {
        d.push(FieldDiff::new(
            "ssl_policy",
            opt(&have.ssl_policy),
            opt(&want.ssl_policy),
        ));
    }
    if want.default_action != have.default_action {
        d.push(FieldDiff::new(
            "default_action",
            &have.default_action,
            &want.default_action,
        ));
    }
    d
}

fn rule_diffs(want: &RuleDoc, have: &RuleDoc) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    if want.paths != have.paths {
        d.push(FieldDiff::new(
            "paths",
            have.paths.join(","),
            want.paths.join(","),
        ));
    }
    if want.hosts != have.hosts {
        d.push(FieldDiff::new(
            "hosts",
            have.hosts.join(","),
            want.hosts.join(","),
        ));
    }
    if want.action != have.action {
        d.push(FieldDiff::new("action", &have.action, &want.action));
    }
    d
}

/// The plan entries for the load balancer, target group, listeners and rules; also deletes
/// of listeners and rules the spec no longer has. `desired` is `None` when the spec has no
/// load balancer (then everything owned is deleted).
pub(crate) fn changes(d: Option<&DesiredLb>, names: &ServiceNames, live: &LiveLb) -> Plan {
    let mut plan = Plan::new();
    let tg_ok = live.tg.is_some();
    match d {
        Some(d) => {
            plan.push(Change::new(
                LB_KIND,
                &d.name,
                lb_action(d, live.lb.as_ref()),
            ));
            plan.push(Change::new(
                TG_KIND,
                &d.tg.name,
                tg_action(&d.tg, live.tg.as_ref()),
            ));
            for (port, want) in &d.listeners {
                let id = format!("{}:{port}", d.name);
                match live.listeners.get(port) {
                    None => plan.push(Change::new(LISTENER_KIND, &id, Action::Create)),
                    Some(l) => {
                        let mut diffs = listener_diffs(want, &l.doc);
                        // A forward to a target group that does not exist yet changes anyway.
                        if !tg_ok && want.default_action == ActionDoc::Forward {
                            diffs.push(FieldDiff::new(
                                "default_action",
                                "forward",
                                "forward to the new target group",
                            ));
                        }
                        plan.push(Change::new(LISTENER_KIND, &id, Action::from_diffs(diffs)));
                    }
                }
                let have_rules = live
                    .listeners
                    .get(port)
                    .map(|l| l.doc.rules.clone())
                    .unwrap_or_default();
                for (priority, rule) in &want.rules {
                    let rid = format!("{id}/{priority}");
                    let action = match have_rules.get(priority) {
                        None => Action::Create,
                        Some(h) => Action::from_diffs(rule_diffs(rule, h)),
                    };
                    plan.push(Change::new(RULE_KIND, rid, action));
                }
                for priority in have_rules.keys().filter(|p| !want.rules.contains_key(p)) {
                    plan.push(Change::new(
                        RULE_KIND,
                        format!("{id}/{priority}"),
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
            for port in live.listeners.keys() {
                plan.push(Change::new(
                    LISTENER_KIND,
                    format!("{}:{port}", names.load_balancer),
                    Action::Delete,
                ));
            }
            if live.lb.is_some() {
                plan.push(Change::new(LB_KIND, &names.load_balancer, Action::Delete));
            }
            if live.tg.is_some() {
                plan.push(Change::new(TG_KIND, &names.target_group, Action::Delete));
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
    pub(crate) tg_arn: String,
    pub(crate) listener_arns: Vec<String>,
}

async fn ensure_alb(
    ctx: &Context,
    elb: &Client,
    d: &DesiredLb,
    live: Option<&LiveAlb>,
) -> Result<(String, String)> {
    let resource = format!("{LB_KIND} {}", d.name);
    let (arn, dns, have_attrs) = match live {
        Some(l) => {
            if !lb_action(d, Some(l)).is_change() {
                return Ok((l.arn.clone(), l.dns_name.clone()));
            }
            if l.subnets != d.subnets {
                ctx.call("SetSubnets", &resource, || {
                    elb.set_subnets()
                        .load_balancer_arn(&l.arn)
                        .set_subnets(Some(d.subnets.clone()))
                        .send()
                })
                .await?;
            }
            if l.security_groups != d.security_groups {
                ctx.call("SetSecurityGroups", &resource, || {
                    elb.set_security_groups()
                        .load_balancer_arn(&l.arn)
                        .set_security_groups(Some(d.security_groups.clone()))
                        .send()
                })
                .await?;
            }
            if let Some(t) = d.tags.diff_from(&l.tags) {
                tagging::elb(ctx, elb, &resource, &l.arn, &t).await?;
            }
            (l.arn.clone(), l.dns_name.clone(), l.attributes.clone())
        }
        None => {
            // CreateLoadBalancer is idempotent by name on AWS (not on every emulator): the
            // observation before this call is what prevents a second one.
            let out = ctx
                .call("CreateLoadBalancer", &resource, || {
                    elb.create_load_balancer()
                        .name(&d.name)
                        .r#type(LoadBalancerTypeEnum::Application)
                        .scheme(if d.internal {
                            LoadBalancerSchemeEnum::Internal
                        } else {
                            LoadBalancerSchemeEnum::InternetFacing
                        })
                        .ip_address_type(IpAddressType::Ipv4)
                        .set_subnets(Some(d.subnets.clone()))
                        .set_security_groups(Some(d.security_groups.clone()))
                        .set_tags(Some(tagging::elb_tags(&d.tags)))
                        .send()
                })
                .await?;
            let lb = out.load_balancers().first();
            (
                lb.and_then(|l| l.load_balancer_arn())
                    .unwrap_or_default()
                    .to_string(),
                lb.and_then(|l| l.dns_name())
                    .unwrap_or_default()
                    .to_string(),
                BTreeMap::new(),
            )
        }
    };
    let changed = changed_attrs(&d.attributes, &have_attrs);
    if !changed.is_empty() {
        ctx.call("ModifyLoadBalancerAttributes", &resource, || {
            elb.modify_load_balancer_attributes()
                .load_balancer_arn(&arn)
                .set_attributes(Some(
                    changed
                        .iter()
                        .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send()
        })
        .await?;
    }
    Ok((arn, dns))
}

async fn ensure_tg(
    ctx: &Context,
    elb: &Client,
    d: &DesiredTg,
    live: Option<&LiveTg>,
) -> Result<String> {
    let resource = format!("{TG_KIND} {}", d.name);
    let h = |k: &str| d.health.get(k).cloned().unwrap_or_default();
    let n = |k: &str| h(k).parse::<i32>().unwrap_or_default();
    let protocol = ProtocolEnum::from(d.protocol.as_str());
    let (arn, have_attrs) = match live {
        Some(l) => {
            if !tg_action(d, Some(l)).is_change() {
                return Ok(l.arn.clone());
            }
            if l.health != d.health {
                ctx.call("ModifyTargetGroup", &resource, || {
                    elb.modify_target_group()
                        .target_group_arn(&l.arn)
                        .health_check_protocol(protocol.clone())
                        .health_check_path(h("path"))
                        .health_check_interval_seconds(n("interval"))
                        .health_check_timeout_seconds(n("timeout"))
                        .healthy_threshold_count(n("healthy_threshold"))
                        .unhealthy_threshold_count(n("unhealthy_threshold"))
                        .matcher(Matcher::builder().http_code(h("matcher")).build())
                        .send()
                })
                .await?;
            }
            if let Some(t) = d.tags.diff_from(&l.tags) {
                tagging::elb(ctx, elb, &resource, &l.arn, &t).await?;
            }
            (l.arn.clone(), l.attributes.clone())
        }
        None => {
            let out = ctx
                .call("CreateTargetGroup", &resource, || {
                    elb.create_target_group()
                        .name(&d.name)
                        .protocol(protocol.clone())
                        .port(i32::from(d.port))
                        .vpc_id(&d.vpc_id)
                        .target_type(TargetTypeEnum::Ip)
                        .health_check_enabled(true)
                        .health_check_protocol(protocol.clone())
                        .health_check_path(h("path"))
                        .health_check_interval_seconds(n("interval"))
                        .health_check_timeout_seconds(n("timeout"))
                        .healthy_threshold_count(n("healthy_threshold"))
                        .unhealthy_threshold_count(n("unhealthy_threshold"))
                        .matcher(Matcher::builder().http_code(h("matcher")).build())
                        .set_tags(Some(tagging::elb_tags(&d.tags)))
                        .send()
                })
                .await?;
            let arn = out
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .unwrap_or_default()
                .to_string();
            (arn, BTreeMap::new())
        }
    };
    let changed = changed_attrs(&d.attributes, &have_attrs);
    if !changed.is_empty() {
        ctx.call("ModifyTargetGroupAttributes", &resource, || {
            elb.modify_target_group_attributes()
                .target_group_arn(&arn)
                .set_attributes(Some(
                    changed
                        .iter()
                        .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send()
        })
        .await?;
    }
    Ok(arn)
}

#[allow(clippy::too_many_arguments)]
async fn ensure_listener(
    ctx: &Context,
    elb: &Client,
    lb_arn: &str,
    tg_arn: &str,
    port: u16,
    want: &ListenerDoc,
    live: Option<&LiveListener>,
    tg_is_new: bool,
) -> Result<String> {
    let resource = format!("{LISTENER_KIND} :{port}");
    let certs = want
        .certificate
        .as_ref()
        .map(|c| vec![Certificate::builder().certificate_arn(c).build()]);
    let arn = match live {
        Some(l) => {
            let stale_forward = tg_is_new && want.default_action == ActionDoc::Forward;
            if !listener_diffs(want, &l.doc).is_empty() || stale_forward {
                ctx.call("ModifyListener", &resource, || {
                    elb.modify_listener()
                        .listener_arn(&l.arn)
                        .port(i32::from(port))
                        .protocol(ProtocolEnum::from(want.protocol.as_str()))
                        .set_certificates(certs.clone())
                        .set_ssl_policy(want.ssl_policy.clone())
                        .set_default_actions(Some(elb_actions(&want.default_action, tg_arn)))
                        .send()
                })
                .await?;
            }
            l.arn.clone()
        }
        None => {
            let out = ctx
                .call("CreateListener", &resource, || {
                    elb.create_listener()
                        .load_balancer_arn(lb_arn)
                        .port(i32::from(port))
                        .protocol(ProtocolEnum::from(want.protocol.as_str()))
                        .set_certificates(certs.clone())
                        .set_ssl_policy(want.ssl_policy.clone())
                        .set_default_actions(Some(elb_actions(&want.default_action, tg_arn)))
                        .set_tags(Some(tagging::elb_tags(
                            &ctx.resource_tags(Some(&format!("listener/{port}")), None),
                        )))
                        .send()
                })
                .await?;
            out.listeners()
                .first()
                .and_then(|l| l.listener_arn())
                .unwrap_or_default()
                .to_string()
        }
    };
    let have_rules = live.map(|l| (&l.doc.rules, &l.rule_arns));
    let rule_calls = want.rules.iter().map(|(priority, rule)| {
        let resource = format!("{RULE_KIND} :{port}/{priority}");
        let arn = arn.clone();
        async move {
            let existing = have_rules
                .and_then(|(docs, arns)| Some((docs.get(priority)?, arns.get(priority)?)));
            match existing {
                Some((doc, _))
                    if rule_diffs(rule, doc).is_empty()
                        && !(tg_is_new && rule.action == ActionDoc::Forward) =>
                {
                    Ok(())
                }
                Some((_, rule_arn)) => ctx
                    .call("ModifyRule", &resource, || {
                        elb.modify_rule()
                            .rule_arn(rule_arn)
                            .set_conditions(Some(conditions(rule)))
                            .set_actions(Some(elb_actions(&rule.action, tg_arn)))
                            .send()
                    })
                    .await
                    .map(|_| ()),
                None => ctx
                    .call("CreateRule", &resource, || {
                        elb.create_rule()
                            .listener_arn(&arn)
                            .priority(*priority as i32)
                            .set_conditions(Some(conditions(rule)))
                            .set_actions(Some(elb_actions(&rule.action, tg_arn)))
                            .set_tags(Some(tagging::elb_tags(
                                &ctx.resource_tags(Some(&format!("rule/{port}/{priority}")), None),
                            )))
                            .send()
                    })
                    .await
                    .map(|_| ()),
            }
        }
    });
    let deletes = have_rules
        .map(|(_, arns)| {
            arns.iter()
                .filter(|(p, _)| !want.rules.contains_key(p))
                .map(|(p, a)| (*p, a.clone()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let delete_calls = deletes.iter().map(|(priority, rule_arn)| {
        let resource = format!("{RULE_KIND} :{port}/{priority}");
        async move {
            ctx.call("DeleteRule", &resource, || {
                elb.delete_rule().rule_arn(rule_arn).send()
            })
            .await
            .map(|_| ())
        }
    });
    futures_util::try_join!(
        futures_util::future::try_join_all(rule_calls),
        futures_util::future::try_join_all(delete_calls)
    )?;
    Ok(arn)
}

/// Adds to `g` the steps that make the load balancer part as `d` wants it from what was read
/// (`live`): the load balancer and the target group at once, each listener (with its rules)
/// after both, each listener the spec no longer has deleted, and a last step that gathers
/// the outputs. `changes` (the plan) gives the actions the executor reports. Nothing waits for
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
        .run_with_detail(
            |(_, dns): &(String, String)| dns.clone(),
            move |_| async move {
                if let Action::Replace(reason) = lb_action(d, live.lb.as_ref()) {
                    return Err(Error::ReplacementRequired {
                        resource: format!("{LB_KIND} {}", d.name),
                        reason,
                    });
                }
                ensure_alb(ctx, elb, d, live.lb.as_ref()).await
            },
        );
    let tg = g
        .step(format!("{TG_KIND} {}", d.tg.name))
        .action_if(verb(TG_KIND, &d.tg.name))
        .run_with_detail(String::clone, move |_| async move {
            if let Action::Replace(reason) = tg_action(&d.tg, live.tg.as_ref()) {
                return Err(Error::ReplacementRequired {
                    resource: format!("{TG_KIND} {}", d.tg.name),
                    reason,
                });
            }
            ensure_tg(ctx, elb, &d.tg, live.tg.as_ref()).await
        });
    let tg_is_new = live.tg.is_none();
    let listeners: Vec<Step<String>> = d
        .listeners
        .iter()
        .map(|(port, want)| {
            let id = format!("{}:{port}", d.name);
            // A listener whose rules change is updated too.
            let rules_change = changes.changes.iter().any(|c| {
                c.resource == RULE_KIND
                    && c.id.starts_with(&format!("{id}/"))
                    && c.action.is_change()
            });
            let action = verb(LISTENER_KIND, &id).or(rules_change.then_some("update"));
            g.step(format!("{LISTENER_KIND} {id}"))
                .after(alb)
                .after(tg)
                .action_if(action)
                .run_with_detail(String::clone, move |i| {
                    let lb_arn = i.get(alb).0.clone();
                    let tg_arn = i.get(tg).clone();
                    async move {
                        ensure_listener(
                            ctx,
                            elb,
                            &lb_arn,
                            &tg_arn,
                            *port,
                            want,
                            live.listeners.get(port),
                            tg_is_new,
                        )
                        .await
                    }
                })
        })
        .collect();
    for (port, l) in live
        .listeners
        .iter()
        .filter(|(p, _)| !d.listeners.contains_key(p))
    {
        let resource = format!("{LISTENER_KIND} {}:{port}", d.name);
        g.step(resource.clone())
            .action("delete")
            .run(move |_| async move {
                ctx.call("DeleteListener", &resource, || {
                    elb.delete_listener().listener_arn(&l.arn).send()
                })
                .await?;
                Ok(())
            });
    }
    g.step(format!("{LB_KIND} {} outputs", d.name))
        .after(alb)
        .after(tg)
        .after_all(listeners.iter().copied())
        .run(move |i| {
            let (lb_arn, dns_name) = i.get(alb).clone();
            let out = LbOutputs {
                lb_arn,
                dns_name,
                tg_arn: i.get(tg).clone(),
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
#[allow(clippy::too_many_arguments)]
pub(crate) fn teardown<'a>(
    g: &mut Graph<'a, Error>,
    ctx: &'a Context,
    elb: &'a Client,
    ec2: &'a aws_sdk_ec2::Client,
    names: &'a ServiceNames,
    live: &'a LiveLb,
    after: Vec<Dep>,
    tg_after: Vec<Dep>,
) {
    let listeners: Vec<Step<()>> = live
        .listeners
        .iter()
        .map(|(port, l)| {
            let resource = format!("{LISTENER_KIND} {}:{port}", names.load_balancer);
            g.step(resource.clone())
                .after_all(after.iter().copied())
                .action("delete")
                .run(move |_| async move {
                    match ctx
                        .call("DeleteListener", &resource, || {
                            elb.delete_listener().listener_arn(&l.arn).send()
                        })
                        .await
                    {
                        Err(e) if !e.is_code("ListenerNotFound") => Err(e.into()),
                        _ => Ok(()),
                    }
                })
        })
        .collect();
    let front: Vec<Step<()>> = match &live.lb {
        Some(lb) => {
            let resource = format!("{LB_KIND} {}", names.load_balancer);
            let deleted = g
                .step(resource.clone())
                .after_all(listeners.iter().copied())
                .action("delete")
                .run(move |_| delete_alb(ctx, elb, resource, &lb.arn));
            let enis = g
                .step(format!(
                    "{LB_KIND} {} network interfaces",
                    names.load_balancer
                ))
                .after(deleted)
                .action("wait")
                .run(move |_| wait_for_enis(ctx, ec2, &lb.arn));
            vec![enis]
        }
        None => listeners,
    };
    if let Some(tg) = &live.tg {
        let resource = format!("{TG_KIND} {}", names.target_group);
        g.step(resource.clone())
            .after_all(front)
            .after_all(tg_after)
            .action("delete")
            .run(move |_| async move {
                let retry = RetryOn::codes(&["ResourceInUse"], Duration::from_secs(120));
                match ctx
                    .call_retrying("DeleteTargetGroup", &resource, &retry, || {
                        elb.delete_target_group().target_group_arn(&tg.arn).send()
                    })
                    .await
                {
                    Err(e) if !e.is_code("TargetGroupNotFound") => Err(e.into()),
                    _ => Ok(()),
                }
            });
    }
}

/// Deletes the load balancer and waits until it is gone.
async fn delete_alb(ctx: &Context, elb: &Client, resource: String, arn: &str) -> Result<()> {
    match ctx
        .call("DeleteLoadBalancer", &resource, || {
            elb.delete_load_balancer().load_balancer_arn(arn).send()
        })
        .await
    {
        Err(e) if !e.is_code("LoadBalancerNotFound") => return Err(e.into()),
        _ => {}
    }
    ctx.poll(
        &resource,
        "deletion",
        &PollPolicy::with_timeout(Duration::from_secs(300)),
        || async {
            match elb
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await
            {
                Err(e) => {
                    let e = ecs_core::AwsError::from_sdk("DescribeLoadBalancers", &resource, e);
                    if e.is_code("LoadBalancerNotFound") {
                        Ok(Poll::Ready(()))
                    } else {
                        Err(e)
                    }
                }
                Ok(out) if out.load_balancers().is_empty() => Ok(Poll::Ready(())),
                Ok(out) => Ok(Poll::Pending(
                    out.load_balancers()[0]
                        .state()
                        .and_then(|s| s.code())
                        .map_or("present".into(), |c| c.as_str().to_string()),
                )),
            }
        },
    )
    .await?;
    Ok(())
}

/// Waits until the network interfaces ELB created for the load balancer are gone.
async fn wait_for_enis(ctx: &Context, ec2: &aws_sdk_ec2::Client, lb_arn: &str) -> Result<()> {
    let Some(suffix) = lb_arn
        .split_once(":loadbalancer/")
        .map(|(_, s)| s.to_string())
    else {
        return Ok(());
    };
    let description = format!("ELB {suffix}");
    let resource = format!("{LB_KIND} network interfaces");
    ctx.poll(
        &resource,
        "deletion",
        &PollPolicy::with_timeout(Duration::from_secs(600)),
        || async {
            let out = ctx
                .call("DescribeNetworkInterfaces", &resource, || {
                    ec2.describe_network_interfaces()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder()
                                .name("description")
                                .values(&description)
                                .build(),
                        )
                        .send()
                })
                .await?;
            let left = out
                .network_interfaces()
                .iter()
                .filter(|n| n.description() == Some(description.as_str()))
                .count();
            Ok(if left == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{left} left"))
            })
        },
    )
    .await?;
    Ok(())
}

/// Target health counts of the target group: (healthy, unhealthy, other) and the reasons of
/// unhealthy targets.
pub(crate) async fn target_health(
    ctx: &Context,
    elb: &Client,
    tg_arn: &str,
) -> Result<(usize, usize, usize, Vec<String>)> {
    let out = ctx
        .call(
            "DescribeTargetHealth",
            &format!("{TG_KIND} {tg_arn}"),
            || elb.describe_target_health().target_group_arn(tg_arn).send(),
        )
        .await?;
    let (mut healthy, mut unhealthy, mut other, mut reasons) = (0, 0, 0, Vec::new());
    for t in out.target_health_descriptions() {
        match t
            .target_health()
            .and_then(|h| h.state())
            .map(|s| s.as_str())
        {
            Some("healthy") => healthy += 1,
            Some("unhealthy") => {
                unhealthy += 1;
                if let Some(d) = t.target_health().and_then(|h| h.description()) {
                    reasons.push(d.to_string());
                }
            }
            _ => other += 1,
        }
    }
    Ok((healthy, unhealthy, other, reasons))
}
