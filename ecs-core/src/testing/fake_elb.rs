//! A stateful fake of Elastic Load Balancing v2 for application load balancers (feature
//! `fake-elb`): load balancers, target groups, listeners and their rules, with attributes and
//! tags; what a mocked ELB client answers from, and what its mutating calls change.
//!
//! [`FakeElb`] holds an [`ElbState`] and builds the mock rules that answer from it; every call
//! is recorded, input included, in the [`Journal`] the fake was made with. As ELB does:
//! `CreateLoadBalancer` and `CreateTargetGroup` are idempotent by name; a new load balancer is
//! `provisioning`; a listener port is taken once per load balancer (`DuplicateListener`); an
//! HTTPS listener needs a certificate; a rule's priority is taken once per listener
//! (`PriorityInUse`, from `CreateRule` and `SetRulePriorities`); `DescribeRules` lists the listener's default rule first;
//! `DescribeLoadBalancers` and `DescribeTargetGroups` list everything without names or ARNs
//! and fail when one they name is missing; `DescribeTags` takes at most 20 ARNs; deleting a
//! load balancer deletes its listeners;
//! deleting a load balancer or target group that does not exist succeeds; a target group a
//! listener or rule forwards to (or, [`linked`](FakeElb::linked) to a [`FakeEcs`], a live
//! service uses) cannot be deleted (`ResourceInUse`). `DescribeTargetHealth` answers no
//! target.
//!
//! ```
//! use ecs_core::testing::{FakeElb, Journal};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeElb::new(&Journal::default(), Default::default());
//! fake.client().create_target_group().name("web-app").port(8080).send().await.unwrap();
//! assert_eq!(fake.state().target_groups.len(), 1);
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

// The rules answer with the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_elasticloadbalancingv2::error::ErrorMetadata;
use aws_sdk_elasticloadbalancingv2::operation as elb_op;
use aws_sdk_elasticloadbalancingv2::types::{
    Listener, LoadBalancer, ProtocolEnum, Rule as ElbRule, Tag, TargetGroup,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::fake_ecs::{EcsState, FakeEcs};
use super::{aws_error as error, mock, retag, Rule, ACCOUNT, REGION};

/// The ARN prefix of the account's load balancing resources.
pub fn elb_arn() -> String {
    format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}")
}

/// A load balancer and its attributes.
#[derive(Debug, Clone)]
pub struct LoadBalancerRecord {
    /// As `DescribeLoadBalancers` returns it.
    pub lb: LoadBalancer,
    /// Its attributes, by key.
    pub attributes: BTreeMap<String, String>,
}

/// A target group and its attributes.
#[derive(Debug, Clone)]
pub struct TargetGroupRecord {
    /// As `DescribeTargetGroups` returns it.
    pub tg: TargetGroup,
    /// Its attributes, by key.
    pub attributes: BTreeMap<String, String>,
}

/// A listener and its rules.
#[derive(Debug, Clone)]
pub struct ListenerRecord {
    /// As `DescribeListeners` returns it.
    pub listener: Listener,
    /// Its rules besides the default one (which is the listener's default actions).
    pub rules: Vec<ElbRule>,
}

/// What the fake account holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ElbState {
    /// The load balancers.
    pub load_balancers: Vec<LoadBalancerRecord>,
    /// The target groups.
    pub target_groups: Vec<TargetGroupRecord>,
    /// The listeners, with their rules.
    pub listeners: Vec<ListenerRecord>,
    /// Every resource's tags, by ARN.
    pub tags: BTreeMap<String, Vec<Tag>>,
    /// How many rules have been created (their ARNs are numbered).
    pub rule_seq: u32,
    /// The VPC new load balancers are in.
    pub vpc_id: String,
}

impl Default for ElbState {
    fn default() -> Self {
        Self {
            load_balancers: Vec::new(),
            target_groups: Vec::new(),
            listeners: Vec::new(),
            tags: BTreeMap::new(),
            rule_seq: 0,
            vpc_id: "vpc-1".into(),
        }
    }
}

/// The attributes a new load balancer has.
pub fn lb_default_attributes() -> BTreeMap<String, String> {
    [
        ("access_logs.s3.enabled", "false"),
        ("deletion_protection.enabled", "false"),
        ("idle_timeout.timeout_seconds", "60"),
        ("routing.http.drop_invalid_header_fields.enabled", "false"),
        ("routing.http2.enabled", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The attributes a new target group has.
pub fn tg_default_attributes() -> BTreeMap<String, String> {
    [
        ("deregistration_delay.timeout_seconds", "300"),
        ("load_balancing.algorithm.type", "round_robin"),
        ("slow_start.duration_seconds", "0"),
        ("stickiness.enabled", "false"),
        ("stickiness.type", "lb_cookie"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fake_handle! {
    /// A stateful fake of Elastic Load Balancing over an [`ElbState`]. See the [module](self)
    /// docs.
    FakeElb,
    ElbState,
    aws_sdk_elasticloadbalancingv2,
    ecs: Option<Arc<Mutex<EcsState>>> = None
}

impl FakeElb {
    /// The fake linked to `ecs`, as the two services are in one account: a service may only
    /// name a target group that exists, and a target group a live service uses cannot be
    /// deleted. The fake ECS learns the target groups this state holds now and those this
    /// fake's calls create or delete later: seed target groups before linking.
    #[must_use]
    pub fn linked(mut self, ecs: &FakeEcs) -> Self {
        let known = self
            .state()
            .target_groups
            .iter()
            .filter_map(|t| t.tg.target_group_arn().map(str::to_string))
            .collect();
        ecs.state().target_groups = Some(known);
        self.ecs = Some(ecs.state.clone());
        self
    }

    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        let (ecs, ecs2) = (self.ecs.clone(), self.ecs.clone());
        // A linked fake ECS learns which target groups exist (this state locked, then ECS's:
        // ECS's rules never lock this one, so the two cannot wait for each other).
        let known = |ecs: &Option<Arc<Mutex<EcsState>>>, add: bool, arn: &str| {
            if let Some(e) = ecs {
                let mut e = e.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(k) = e.target_groups.as_mut() {
                    if add {
                        k.insert(arn.to_string());
                    } else {
                        k.remove(arn);
                    }
                }
            }
        };
        use aws_sdk_elasticloadbalancingv2::types::{
            AvailabilityZone, LoadBalancerAttribute, LoadBalancerState, LoadBalancerStateEnum,
            LoadBalancerTypeEnum, TagDescription, TargetGroupAttribute,
        };
        fn no_lb() -> ErrorMetadata {
            error(
                "LoadBalancerNotFound",
                "One or more load balancers not found",
            )
        }
        fn no_tg() -> ErrorMetadata {
            error("TargetGroupNotFound", "One or more target groups not found")
        }
        fn no_listener() -> ErrorMetadata {
            error("ListenerNotFound", "One or more listeners not found")
        }
        fn no_rule() -> ErrorMetadata {
            error("RuleNotFound", "One or more rules not found")
        }
        fn alb<'a>(s: &'a mut ElbState, arn: Option<&str>) -> Option<&'a mut LoadBalancerRecord> {
            s.load_balancers
                .iter_mut()
                .find(|a| arn.is_some() && a.lb.load_balancer_arn() == arn)
        }
        fn tg<'a>(s: &'a mut ElbState, arn: Option<&str>) -> Option<&'a mut TargetGroupRecord> {
            s.target_groups
                .iter_mut()
                .find(|t| arn.is_some() && t.tg.target_group_arn() == arn)
        }
        fn listener<'a>(s: &'a mut ElbState, arn: Option<&str>) -> Option<&'a mut ListenerRecord> {
            s.listeners
                .iter_mut()
                .find(|l| arn.is_some() && l.listener.listener_arn() == arn)
        }
        fn lb_attributes(a: &LoadBalancerRecord) -> Vec<LoadBalancerAttribute> {
            a.attributes
                .iter()
                .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
                .collect()
        }
        fn tg_attributes(t: &TargetGroupRecord) -> Vec<TargetGroupAttribute> {
            t.attributes
                .iter()
                .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
                .collect()
        }

        vec![
            j.on(
                w,
                "DescribeLoadBalancers",
                mock!(Client::describe_load_balancers),
                |s, r, _| {
                    use elb_op::describe_load_balancers::{
                        DescribeLoadBalancersError, DescribeLoadBalancersOutput,
                    };
                    let found: Vec<LoadBalancer> = s
                        .load_balancers
                        .iter()
                        .map(|a| &a.lb)
                        .filter(|lb| {
                            let all = r.names().is_empty() && r.load_balancer_arns().is_empty();
                            all || r
                                .names()
                                .iter()
                                .any(|n| lb.load_balancer_name() == Some(n.as_str()))
                                || r.load_balancer_arns()
                                    .iter()
                                    .any(|a| lb.load_balancer_arn() == Some(a.as_str()))
                        })
                        .cloned()
                        .collect();
                    // One name or ARN not found and the whole call fails.
                    if found.len() < r.names().len() + r.load_balancer_arns().len() {
                        return Err(DescribeLoadBalancersError::generic(no_lb()));
                    }
                    Ok(DescribeLoadBalancersOutput::builder()
                        .set_load_balancers(Some(found))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeTargetGroups",
                mock!(Client::describe_target_groups),
                |s, r, _| {
                    use elb_op::describe_target_groups::{
                        DescribeTargetGroupsError, DescribeTargetGroupsOutput,
                    };
                    let found: Vec<_> = s
                        .target_groups
                        .iter()
                        .map(|t| &t.tg)
                        .filter(|tg| {
                            let all = r.names().is_empty() && r.target_group_arns().is_empty();
                            all || r
                                .names()
                                .iter()
                                .any(|n| tg.target_group_name() == Some(n.as_str()))
                                || r.target_group_arns()
                                    .iter()
                                    .any(|a| tg.target_group_arn() == Some(a.as_str()))
                        })
                        .cloned()
                        .collect();
                    // One name or ARN not found and the whole call fails.
                    if found.len() < r.names().len() + r.target_group_arns().len() {
                        return Err(DescribeTargetGroupsError::generic(no_tg()));
                    }
                    Ok(DescribeTargetGroupsOutput::builder()
                        .set_target_groups(Some(found))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeTags",
                mock!(Client::describe_tags),
                |s, r, _| {
                    if r.resource_arns().len() > 20 {
                        return Err(elb_op::describe_tags::DescribeTagsError::generic(error(
                            "ValidationError",
                            "You cannot specify more than 20 resource ARNs",
                        )));
                    }
                    let found = r
                        .resource_arns()
                        .iter()
                        .filter_map(|arn| {
                            s.tags.get(arn).map(|tags| {
                                TagDescription::builder()
                                    .resource_arn(arn)
                                    .set_tags(Some(tags.clone()))
                                    .build()
                            })
                        })
                        .collect();
                    Ok(elb_op::describe_tags::DescribeTagsOutput::builder()
                        .set_tag_descriptions(Some(found))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeLoadBalancerAttributes",
                mock!(Client::describe_load_balancer_attributes),
                |s, r, _| {
                    use elb_op::describe_load_balancer_attributes::{
                        DescribeLoadBalancerAttributesError, DescribeLoadBalancerAttributesOutput,
                    };
                    match alb(s, r.load_balancer_arn()) {
                        Some(a) => Ok(DescribeLoadBalancerAttributesOutput::builder()
                            .set_attributes(Some(lb_attributes(a)))
                            .build()),
                        None => Err(DescribeLoadBalancerAttributesError::generic(no_lb())),
                    }
                },
            ),
            j.on(
                w,
                "DescribeListeners",
                mock!(Client::describe_listeners),
                |s, r, _| {
                    use elb_op::describe_listeners::{
                        DescribeListenersError, DescribeListenersOutput,
                    };
                    if alb(s, r.load_balancer_arn()).is_none() {
                        return Err(DescribeListenersError::generic(no_lb()));
                    }
                    let found = s
                        .listeners
                        .iter()
                        .filter(|l| l.listener.load_balancer_arn() == r.load_balancer_arn())
                        .map(|l| l.listener.clone())
                        .collect();
                    Ok(DescribeListenersOutput::builder()
                        .set_listeners(Some(found))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeRules",
                mock!(Client::describe_rules),
                |s, r, _| {
                    use elb_op::describe_rules::{DescribeRulesError, DescribeRulesOutput};
                    let Some(l) = listener(s, r.listener_arn()) else {
                        return Err(DescribeRulesError::generic(no_listener()));
                    };
                    let default = ElbRule::builder()
                        .rule_arn(format!(
                            "{}/default",
                            r.listener_arn()
                                .unwrap_or_default()
                                .replace(":listener/", ":listener-rule/")
                        ))
                        .priority("default")
                        .is_default(true)
                        .set_actions(Some(l.listener.default_actions().to_vec()))
                        .build();
                    let mut rules = l.rules.clone();
                    rules.insert(0, default);
                    Ok(DescribeRulesOutput::builder()
                        .set_rules(Some(rules))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeTargetGroupAttributes",
                mock!(Client::describe_target_group_attributes),
                |s, r, _| {
                    use elb_op::describe_target_group_attributes::{
                        DescribeTargetGroupAttributesError, DescribeTargetGroupAttributesOutput,
                    };
                    match tg(s, r.target_group_arn()) {
                        Some(t) => Ok(DescribeTargetGroupAttributesOutput::builder()
                            .set_attributes(Some(tg_attributes(t)))
                            .build()),
                        None => Err(DescribeTargetGroupAttributesError::generic(no_tg())),
                    }
                },
            ),
            j.on(
                w,
                "DescribeTargetHealth",
                mock!(Client::describe_target_health),
                |_, _, _| {
                    Ok(
                        elb_op::describe_target_health::DescribeTargetHealthOutput::builder()
                            .build(),
                    )
                },
            ),
            j.on(
                w,
                "CreateLoadBalancer",
                mock!(Client::create_load_balancer),
                |s, r, _| {
                    let name = r.name().unwrap_or_default();
                    let exists = s
                        .load_balancers
                        .iter()
                        .any(|a| a.lb.load_balancer_name() == Some(name));
                    if !exists {
                        let arn = format!("{}:loadbalancer/app/{name}/50dc6c495c0c9188", elb_arn());
                        let lb = LoadBalancer::builder()
                            .load_balancer_arn(arn.as_str())
                            .dns_name(format!("{name}-1234567890.{REGION}.elb.amazonaws.com"))
                            .load_balancer_name(name)
                            .set_scheme(r.scheme().cloned())
                            .vpc_id(s.vpc_id.as_str())
                            .r#type(LoadBalancerTypeEnum::Application)
                            .state(
                                LoadBalancerState::builder()
                                    .code(LoadBalancerStateEnum::Provisioning)
                                    .build(),
                            )
                            .set_availability_zones(Some(
                                r.subnets()
                                    .iter()
                                    .map(|s| AvailabilityZone::builder().subnet_id(s).build())
                                    .collect(),
                            ))
                            .set_security_groups(Some(r.security_groups().to_vec()))
                            .set_ip_address_type(r.ip_address_type().cloned())
                            .build();
                        s.tags.insert(arn, r.tags().to_vec());
                        s.load_balancers.push(LoadBalancerRecord {
                            lb,
                            attributes: lb_default_attributes(),
                        });
                    }
                    let found = s
                        .load_balancers
                        .iter()
                        .find(|a| a.lb.load_balancer_name() == Some(name))
                        .map(|a| vec![a.lb.clone()]);
                    Ok(
                        elb_op::create_load_balancer::CreateLoadBalancerOutput::builder()
                            .set_load_balancers(found)
                            .build(),
                    )
                },
            ),
            j.on(
                w,
                "ModifyLoadBalancerAttributes",
                mock!(Client::modify_load_balancer_attributes),
                |s, r, _| {
                    use elb_op::modify_load_balancer_attributes::{
                        ModifyLoadBalancerAttributesError, ModifyLoadBalancerAttributesOutput,
                    };
                    match alb(s, r.load_balancer_arn()) {
                        Some(a) => {
                            for attribute in r.attributes() {
                                a.attributes.insert(
                                    attribute.key().unwrap_or_default().to_string(),
                                    attribute.value().unwrap_or_default().to_string(),
                                );
                            }
                            Ok(ModifyLoadBalancerAttributesOutput::builder()
                                .set_attributes(Some(lb_attributes(a)))
                                .build())
                        }
                        None => Err(ModifyLoadBalancerAttributesError::generic(no_lb())),
                    }
                },
            ),
            j.on(w, "SetSubnets", mock!(Client::set_subnets), |s, r, _| {
                use elb_op::set_subnets::{SetSubnetsError, SetSubnetsOutput};
                match alb(s, r.load_balancer_arn()) {
                    Some(a) => {
                        let zones: Vec<_> = r
                            .subnets()
                            .iter()
                            .map(|s| AvailabilityZone::builder().subnet_id(s).build())
                            .collect();
                        a.lb.availability_zones = Some(zones.clone());
                        Ok(SetSubnetsOutput::builder()
                            .set_availability_zones(Some(zones))
                            .build())
                    }
                    None => Err(SetSubnetsError::generic(no_lb())),
                }
            }),
            j.on(
                w,
                "SetSecurityGroups",
                mock!(Client::set_security_groups),
                |s, r, _| {
                    use elb_op::set_security_groups::{
                        SetSecurityGroupsError, SetSecurityGroupsOutput,
                    };
                    match alb(s, r.load_balancer_arn()) {
                        Some(a) => {
                            a.lb.security_groups = Some(r.security_groups().to_vec());
                            Ok(SetSecurityGroupsOutput::builder()
                                .set_security_group_ids(Some(r.security_groups().to_vec()))
                                .build())
                        }
                        None => Err(SetSecurityGroupsError::generic(no_lb())),
                    }
                },
            ),
            j.on(
                w,
                "CreateTargetGroup",
                mock!(Client::create_target_group),
                move |s, r, _| {
                    let name = r.name().unwrap_or_default();
                    let exists = s
                        .target_groups
                        .iter()
                        .any(|t| t.tg.target_group_name() == Some(name));
                    if !exists {
                        let arn = format!("{}:targetgroup/{name}/73e2d6bc24d8a067", elb_arn());
                        let created = aws_sdk_elasticloadbalancingv2::types::TargetGroup::builder()
                            .target_group_arn(arn.as_str())
                            .target_group_name(name)
                            .set_protocol(r.protocol().cloned())
                            .set_port(r.port())
                            .set_vpc_id(r.vpc_id().map(str::to_string))
                            .set_health_check_protocol(r.health_check_protocol().cloned())
                            .set_health_check_enabled(r.health_check_enabled())
                            .set_health_check_path(r.health_check_path().map(str::to_string))
                            .set_health_check_interval_seconds(r.health_check_interval_seconds())
                            .set_health_check_timeout_seconds(r.health_check_timeout_seconds())
                            .set_healthy_threshold_count(r.healthy_threshold_count())
                            .set_unhealthy_threshold_count(r.unhealthy_threshold_count())
                            .set_matcher(r.matcher().cloned())
                            .set_target_type(r.target_type().cloned())
                            .build();
                        s.tags.insert(arn.clone(), r.tags().to_vec());
                        s.target_groups.push(TargetGroupRecord {
                            tg: created,
                            attributes: tg_default_attributes(),
                        });
                        known(&ecs2, true, &arn);
                    }
                    let found = s
                        .target_groups
                        .iter()
                        .find(|t| t.tg.target_group_name() == Some(name))
                        .map(|t| vec![t.tg.clone()]);
                    Ok(
                        elb_op::create_target_group::CreateTargetGroupOutput::builder()
                            .set_target_groups(found)
                            .build(),
                    )
                },
            ),
            j.on(
                w,
                "ModifyTargetGroup",
                mock!(Client::modify_target_group),
                |s, r, _| {
                    use elb_op::modify_target_group::{
                        ModifyTargetGroupError, ModifyTargetGroupOutput,
                    };
                    let Some(t) = tg(s, r.target_group_arn()) else {
                        return Err(ModifyTargetGroupError::generic(no_tg()));
                    };
                    let x = &mut t.tg;
                    if let Some(v) = r.health_check_protocol() {
                        x.health_check_protocol = Some(v.clone());
                    }
                    if let Some(v) = r.health_check_path() {
                        x.health_check_path = Some(v.to_string());
                    }
                    if let Some(v) = r.health_check_interval_seconds() {
                        x.health_check_interval_seconds = Some(v);
                    }
                    if let Some(v) = r.health_check_timeout_seconds() {
                        x.health_check_timeout_seconds = Some(v);
                    }
                    if let Some(v) = r.healthy_threshold_count() {
                        x.healthy_threshold_count = Some(v);
                    }
                    if let Some(v) = r.unhealthy_threshold_count() {
                        x.unhealthy_threshold_count = Some(v);
                    }
                    if let Some(v) = r.matcher() {
                        x.matcher = Some(v.clone());
                    }
                    Ok(ModifyTargetGroupOutput::builder()
                        .target_groups(x.clone())
                        .build())
                },
            ),
            j.on(
                w,
                "ModifyTargetGroupAttributes",
                mock!(Client::modify_target_group_attributes),
                |s, r, _| {
                    use elb_op::modify_target_group_attributes::{
                        ModifyTargetGroupAttributesError, ModifyTargetGroupAttributesOutput,
                    };
                    match tg(s, r.target_group_arn()) {
                        Some(t) => {
                            for attribute in r.attributes() {
                                t.attributes.insert(
                                    attribute.key().unwrap_or_default().to_string(),
                                    attribute.value().unwrap_or_default().to_string(),
                                );
                            }
                            Ok(ModifyTargetGroupAttributesOutput::builder()
                                .set_attributes(Some(tg_attributes(t)))
                                .build())
                        }
                        None => Err(ModifyTargetGroupAttributesError::generic(no_tg())),
                    }
                },
            ),
            j.on(
                w,
                "CreateListener",
                mock!(Client::create_listener),
                |s, r, _| {
                    use elb_op::create_listener::{CreateListenerError, CreateListenerOutput};
                    let lb_arn = r.load_balancer_arn().unwrap_or_default();
                    if alb(s, Some(lb_arn)).is_none() {
                        return Err(CreateListenerError::generic(no_lb()));
                    }
                    let port = r.port().unwrap_or_default();
                    if s.listeners.iter().any(|l| {
                        l.listener.load_balancer_arn() == Some(lb_arn)
                            && l.listener.port() == Some(port)
                    }) {
                        return Err(CreateListenerError::generic(error(
                            "DuplicateListener",
                            "A listener with the specified port already exists.",
                        )));
                    }
                    if r.protocol() == Some(&ProtocolEnum::Https) && r.certificates().is_empty() {
                        return Err(CreateListenerError::generic(error(
                            "ValidationError",
                            "A certificate must be specified for HTTPS listeners",
                        )));
                    }
                    for a in r.default_actions() {
                        if let Some(arn) = a.target_group_arn() {
                            if tg(s, Some(arn)).is_none() {
                                return Err(CreateListenerError::generic(no_tg()));
                            }
                        }
                    }
                    let arn = format!(
                        "{}/{port:016x}",
                        lb_arn.replace(":loadbalancer/", ":listener/")
                    );
                    let created = aws_sdk_elasticloadbalancingv2::types::Listener::builder()
                        .listener_arn(arn.as_str())
                        .load_balancer_arn(lb_arn)
                        .port(port)
                        .set_protocol(r.protocol().cloned())
                        .set_certificates(
                            (!r.certificates().is_empty()).then(|| r.certificates().to_vec()),
                        )
                        .set_ssl_policy(r.ssl_policy().map(str::to_string))
                        .set_default_actions(Some(r.default_actions().to_vec()))
                        .build();
                    s.tags.insert(arn, r.tags().to_vec());
                    s.listeners.push(ListenerRecord {
                        listener: created.clone(),
                        rules: Vec::new(),
                    });
                    Ok(CreateListenerOutput::builder().listeners(created).build())
                },
            ),
            j.on(
                w,
                "ModifyListener",
                mock!(Client::modify_listener),
                |s, r, _| {
                    use elb_op::modify_listener::{ModifyListenerError, ModifyListenerOutput};
                    let Some(l) = listener(s, r.listener_arn()) else {
                        return Err(ModifyListenerError::generic(no_listener()));
                    };
                    let x = &mut l.listener;
                    if let Some(port) = r.port() {
                        x.port = Some(port);
                    }
                    if let Some(protocol) = r.protocol() {
                        x.protocol = Some(protocol.clone());
                        if *protocol == ProtocolEnum::Http {
                            x.certificates = None;
                            x.ssl_policy = None;
                        }
                    }
                    if !r.certificates().is_empty() {
                        x.certificates = Some(r.certificates().to_vec());
                    }
                    if let Some(policy) = r.ssl_policy() {
                        x.ssl_policy = Some(policy.to_string());
                    }
                    if !r.default_actions().is_empty() {
                        x.default_actions = Some(r.default_actions().to_vec());
                    }
                    Ok(ModifyListenerOutput::builder().listeners(x.clone()).build())
                },
            ),
            j.on(w, "CreateRule", mock!(Client::create_rule), |s, r, _| {
                use elb_op::create_rule::{CreateRuleError, CreateRuleOutput};
                s.rule_seq += 1;
                let seq = s.rule_seq;
                let priority = r.priority().unwrap_or_default().to_string();
                let Some(l) = listener(s, r.listener_arn()) else {
                    return Err(CreateRuleError::generic(no_listener()));
                };
                if l.rules
                    .iter()
                    .any(|x| x.priority() == Some(priority.as_str()))
                {
                    return Err(CreateRuleError::generic(error(
                        "PriorityInUse",
                        format!("Priority '{priority}' is currently in use"),
                    )));
                }
                let arn = format!(
                    "{}/{seq:016x}",
                    r.listener_arn()
                        .unwrap_or_default()
                        .replace(":listener/", ":listener-rule/")
                );
                let created = ElbRule::builder()
                    .rule_arn(arn.as_str())
                    .priority(priority)
                    .set_conditions(Some(r.conditions().to_vec()))
                    .set_actions(Some(r.actions().to_vec()))
                    .is_default(false)
                    .build();
                l.rules.push(created.clone());
                s.tags.insert(arn, r.tags().to_vec());
                Ok(CreateRuleOutput::builder().rules(created).build())
            }),
            j.on(w, "ModifyRule", mock!(Client::modify_rule), |s, r, _| {
                use elb_op::modify_rule::{ModifyRuleError, ModifyRuleOutput};
                let Some(rule) = s
                    .listeners
                    .iter_mut()
                    .flat_map(|l| l.rules.iter_mut())
                    .find(|x| r.rule_arn().is_some() && x.rule_arn() == r.rule_arn())
                else {
                    return Err(ModifyRuleError::generic(no_rule()));
                };
                if !r.conditions().is_empty() {
                    rule.conditions = Some(r.conditions().to_vec());
                }
                if !r.actions().is_empty() {
                    rule.actions = Some(r.actions().to_vec());
                }
                Ok(ModifyRuleOutput::builder().rules(rule.clone()).build())
            }),
            j.on(
                w,
                "SetRulePriorities",
                mock!(Client::set_rule_priorities),
                |s, r, _| {
                    use elb_op::set_rule_priorities::{
                        SetRulePrioritiesError, SetRulePrioritiesOutput,
                    };
                    let mut changed = Vec::new();
                    for pair in r.rule_priorities() {
                        let priority = pair.priority().unwrap_or_default().to_string();
                        let Some(l) = s.listeners.iter_mut().find(|l| {
                            l.rules.iter().any(|x| {
                                pair.rule_arn().is_some() && x.rule_arn() == pair.rule_arn()
                            })
                        }) else {
                            return Err(SetRulePrioritiesError::generic(no_rule()));
                        };
                        if l.rules.iter().any(|x| {
                            x.priority() == Some(priority.as_str())
                                && x.rule_arn() != pair.rule_arn()
                        }) {
                            return Err(SetRulePrioritiesError::generic(error(
                                "PriorityInUse",
                                format!("Priority '{priority}' is currently in use"),
                            )));
                        }
                        let rule = l
                            .rules
                            .iter_mut()
                            .find(|x| x.rule_arn() == pair.rule_arn())
                            .expect("found above");
                        rule.priority = Some(priority);
                        changed.push(rule.clone());
                    }
                    Ok(SetRulePrioritiesOutput::builder()
                        .set_rules(Some(changed))
                        .build())
                },
            ),
            j.on(w, "DeleteRule", mock!(Client::delete_rule), |s, r, _| {
                use elb_op::delete_rule::{DeleteRuleError, DeleteRuleOutput};
                let arn = r.rule_arn().unwrap_or_default();
                let before: usize = s.listeners.iter().map(|l| l.rules.len()).sum();
                for l in &mut s.listeners {
                    l.rules.retain(|x| x.rule_arn() != Some(arn));
                }
                let after: usize = s.listeners.iter().map(|l| l.rules.len()).sum();
                if before == after {
                    return Err(DeleteRuleError::generic(no_rule()));
                }
                s.tags.remove(arn);
                Ok(DeleteRuleOutput::builder().build())
            }),
            j.on(
                w,
                "DeleteListener",
                mock!(Client::delete_listener),
                |s, r, _| {
                    use elb_op::delete_listener::{DeleteListenerError, DeleteListenerOutput};
                    let arn = r.listener_arn().unwrap_or_default();
                    let Some(i) = s
                        .listeners
                        .iter()
                        .position(|l| l.listener.listener_arn() == Some(arn))
                    else {
                        return Err(DeleteListenerError::generic(no_listener()));
                    };
                    let gone = s.listeners.remove(i);
                    for rule in &gone.rules {
                        s.tags.remove(rule.rule_arn().unwrap_or_default());
                    }
                    s.tags.remove(arn);
                    Ok(DeleteListenerOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteLoadBalancer",
                mock!(Client::delete_load_balancer),
                |s, r, _| {
                    // Deleting a load balancer that does not exist succeeds; its listeners go
                    // with it.
                    let arn = r.load_balancer_arn().unwrap_or_default();
                    if alb(s, Some(arn)).is_some() {
                        s.load_balancers
                            .retain(|a| a.lb.load_balancer_arn() != Some(arn));
                        s.listeners
                            .retain(|l| l.listener.load_balancer_arn() != Some(arn));
                        s.tags.remove(arn);
                    }
                    Ok(elb_op::delete_load_balancer::DeleteLoadBalancerOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteTargetGroup",
                mock!(Client::delete_target_group),
                move |s, r, _| {
                    use elb_op::delete_target_group::{
                        DeleteTargetGroupError, DeleteTargetGroupOutput,
                    };
                    let arn = r.target_group_arn().unwrap_or_default();
                    let used = |actions: &[aws_sdk_elasticloadbalancingv2::types::Action]| {
                        actions.iter().any(|a| a.target_group_arn() == Some(arn))
                    };
                    let by_listener = s.listeners.iter().any(|l| {
                        used(l.listener.default_actions())
                            || l.rules.iter().any(|x| used(x.actions()))
                    });
                    let by_service = ecs.as_ref().is_some_and(|e| {
                        e.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .uses_target_group(arn)
                    });
                    if by_listener || by_service {
                        return Err(DeleteTargetGroupError::generic(error(
                            "ResourceInUse",
                            format!("Target group '{arn}' is currently in use"),
                        )));
                    }
                    if tg(s, Some(arn)).is_some() {
                        s.target_groups
                            .retain(|t| t.tg.target_group_arn() != Some(arn));
                        s.tags.remove(arn);
                        known(&ecs, false, arn);
                    }
                    Ok(DeleteTargetGroupOutput::builder().build())
                },
            ),
            j.on(w, "AddTags", mock!(Client::add_tags), |s, r, _| {
                for arn in r.resource_arns() {
                    let tags = s.tags.entry(arn.clone()).or_default();
                    retag(tags, r.tags(), &[], |t| t.key());
                }
                Ok(elb_op::add_tags::AddTagsOutput::builder().build())
            }),
            j.on(w, "RemoveTags", mock!(Client::remove_tags), |s, r, _| {
                for arn in r.resource_arns() {
                    let tags = s.tags.entry(arn.clone()).or_default();
                    retag(tags, &[], r.tag_keys(), |t| t.key());
                }
                Ok(elb_op::remove_tags::RemoveTagsOutput::builder().build())
            }),
        ]
    }
}
