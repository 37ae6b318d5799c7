//! The Fargate service: create (with a client token), update in one `UpdateService` call,
//! rollout waits that fail fast and say why, rollback, and deletion.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration,
    DeploymentRolloutState, DesiredStatus, LaunchType, LoadBalancer, NetworkConfiguration,
    PropagateTags, ServiceConnectConfiguration, ServiceField, ServiceRegistry,
};
use aws_sdk_ecs::Client;
use ecs_core::resource::{Diff, Known, Owner, Ownership, Resource};
use ecs_core::{Context, Event, FieldDiff, Poll, PollPolicy, RetryOn, Tags};

use crate::cluster::{live_strategy, strategy_items, strategy_strings};
use crate::names::ServiceNames;
use crate::spec::ServiceSpec;
use crate::tagging::{self, StackTags};
use crate::{Error, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "ecs-service";

/// The service's logical id (its `ecs:resource` tag).
const LOGICAL: &str = "service";

/// The service as the spec wants it (the task definition and target group ARNs are added at
/// apply time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredService {
    pub(crate) name: String,
    pub(crate) cluster: String,
    pub(crate) desired_count: i32,
    pub(crate) autoscaled: bool,
    pub(crate) autoscaled_min: i32,
    pub(crate) strategy: Vec<crate::spec::StrategyItem>,
    pub(crate) subnets: Vec<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) public_ip: bool,
    /// Container name and port registered in the target group.
    pub(crate) target: Option<(String, u16)>,
    pub(crate) grace: Option<i32>,
    pub(crate) min_healthy: i32,
    pub(crate) max_percent: i32,
    pub(crate) circuit_breaker: bool,
    pub(crate) exec: bool,
    pub(crate) propagate: String,
    pub(crate) managed_tags: bool,
    pub(crate) registries: Vec<String>,
    pub(crate) connect_namespace: Option<String>,
    pub(crate) tags: Tags,
}

/// The service as it exists.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveService {
    pub(crate) name: String,
    pub(crate) cluster: String,
    pub(crate) arn: String,
    pub(crate) draining: bool,
    pub(crate) desired_count: i32,
    pub(crate) running_count: i32,
    pub(crate) task_definition: String,
    /// `Some(strategy)` when known; an empty strategy means the `FARGATE` launch type.
    pub(crate) capacity: Option<Vec<String>>,
    pub(crate) subnets: Vec<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) public_ip: bool,
    pub(crate) load_balancers: Vec<(String, String, i32)>,
    /// Settings some APIs (and emulators) do not report; compared only when reported.
    pub(crate) details: Option<ServiceDetails>,
    pub(crate) registries: Vec<String>,
    pub(crate) connect_namespace: Option<String>,
    pub(crate) tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceDetails {
    pub(crate) grace: Option<i32>,
    pub(crate) min_healthy: Option<i32>,
    pub(crate) max_percent: Option<i32>,
    pub(crate) circuit_breaker: bool,
    pub(crate) exec: bool,
    pub(crate) propagate: Option<String>,
    pub(crate) managed_tags: bool,
}

/// The desired service over the given subnets and task security group.
pub(crate) fn desired(
    spec: &ServiceSpec,
    names: &ServiceNames,
    private_subnets: &[String],
    task_sg: &str,
    tags: &StackTags,
) -> DesiredService {
    let s = &spec.service;
    let mut subnets = s
        .subnets
        .clone()
        .unwrap_or_else(|| private_subnets.to_vec());
    subnets.sort();
    let target = spec.target().map(|(c, p)| (c.name.clone(), p));
    DesiredService {
        name: names.service.clone(),
        cluster: names.cluster.clone(),
        desired_count: s.desired_count as i32,
        autoscaled: s.autoscaled,
        autoscaled_min: s.autoscaled_min as i32,
        strategy: s.capacity_provider_strategy.clone(),
        subnets,
        security_groups: vec![task_sg.to_string()],
        public_ip: s.assign_public_ip,
        grace: match (s.health_check_grace_period, &target) {
            (Some(g), _) => Some(g as i32),
            (None, Some(_)) => Some(60),
            (None, None) => None,
        },
        target,
        min_healthy: s.min_healthy_percent as i32,
        max_percent: s.max_percent as i32,
        circuit_breaker: s.circuit_breaker,
        exec: s.enable_execute_command,
        propagate: s.propagate_tags.as_str().to_string(),
        managed_tags: s.managed_tags,
        registries: s.service_registry_arn.iter().cloned().collect(),
        connect_namespace: s.service_connect_namespace.clone(),
        tags: tags.of(LOGICAL),
    }
}

/// Reads the service: `None` when absent or inactive. Whether it is the stack's is the
/// engine's check ([`Service`]'s ownership is its tag).
pub(crate) async fn observe(
    ctx: &Context,
    ecs: &Client,
    cluster: &str,
    name: &str,
) -> Result<Option<LiveService>> {
    let out = match ctx
        .call("DescribeServices", &format!("{KIND} {name}"), || {
            ecs.describe_services()
                .cluster(cluster)
                .services(name)
                .include(ServiceField::Tags)
                .send()
        })
        .await
    {
        Err(e) if e.is_code("ClusterNotFoundException") => return Ok(None),
        other => other?,
    };
    let Some(s) = out
        .services()
        .iter()
        .find(|s| s.service_name() == Some(name) && s.status() != Some("INACTIVE"))
    else {
        return Ok(None);
    };
    let tags = Tags::from_pairs(s.tags().iter().map(|t| (t.key(), t.value())));
    let vpc = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let mut subnets = vpc.map(|v| v.subnets().to_vec()).unwrap_or_default();
    subnets.sort();
    let mut sgs = vpc
        .map(|v| v.security_groups().to_vec())
        .unwrap_or_default();
    sgs.sort();
    let capacity = if !s.capacity_provider_strategy().is_empty() {
        Some(live_strategy(s.capacity_provider_strategy()))
    } else if s.launch_type() == Some(&LaunchType::Fargate) {
        Some(Vec::new())
    } else {
        None
    };
    let primary = s
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    Ok(Some(LiveService {
        name: name.to_string(),
        cluster: cluster.to_string(),
        arn: s.service_arn().unwrap_or_default().to_string(),
        draining: s.status() == Some("DRAINING"),
        desired_count: s.desired_count(),
        running_count: s.running_count(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        capacity,
        subnets,
        security_groups: sgs,
        public_ip: vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled),
        load_balancers: s
            .load_balancers()
            .iter()
            .map(|l| {
                (
                    l.target_group_arn().unwrap_or_default().to_string(),
                    l.container_name().unwrap_or_default().to_string(),
                    l.container_port().unwrap_or_default(),
                )
            })
            .collect(),
        // AWS always reports the deployment configuration; when an API does not, the settings
        // reported next to it are not trusted either (booleans read as false when absent).
        details: s.deployment_configuration().map(|dc| ServiceDetails {
            grace: s.health_check_grace_period_seconds(),
            min_healthy: dc.minimum_healthy_percent(),
            max_percent: dc.maximum_percent(),
            circuit_breaker: dc
                .deployment_circuit_breaker()
                .is_some_and(|c| c.enable() && c.rollback()),
            exec: s.enable_execute_command(),
            propagate: s.propagate_tags().map(|p| p.as_str().to_string()),
            managed_tags: s.enable_ecs_managed_tags(),
        }),
        registries: s
            .service_registries()
            .iter()
            .filter_map(|r| r.registry_arn().map(str::to_string))
            .collect(),
        connect_namespace: primary
            .and_then(|d| d.service_connect_configuration())
            .filter(|c| c.enabled())
            .and_then(|c| c.namespace().map(str::to_string)),
        tags,
    }))
}

/// A field of the service that `UpdateService` can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    TaskDefinition,
    DesiredCount,
    Capacity,
    Subnets,
    SecurityGroups,
    AssignPublicIp,
    LoadBalancers,
    HealthCheckGracePeriod,
    MinHealthyPercent,
    MaxPercent,
    CircuitBreaker,
    EnableExecuteCommand,
    PropagateTags,
    ManagedTags,
    ServiceRegistries,
    ServiceConnectNamespace,
    /// Set with `TagResource` / `UntagResource`, not `UpdateService`.
    Tags,
}

impl Field {
    /// The field as the plan names it.
    fn name(self) -> &'static str {
        match self {
            Field::TaskDefinition => "task_definition",
            Field::DesiredCount => "desired_count",
            Field::Capacity => "capacity",
            Field::Subnets => "subnets",
            Field::SecurityGroups => "security_groups",
            Field::AssignPublicIp => "assign_public_ip",
            Field::LoadBalancers => "load_balancers",
            Field::HealthCheckGracePeriod => "health_check_grace_period",
            Field::MinHealthyPercent => "min_healthy_percent",
            Field::MaxPercent => "max_percent",
            Field::CircuitBreaker => "circuit_breaker",
            Field::EnableExecuteCommand => "enable_execute_command",
            Field::PropagateTags => "propagate_tags",
            Field::ManagedTags => "managed_tags",
            Field::ServiceRegistries => "service_registries",
            Field::ServiceConnectNamespace => "service_connect_namespace",
            Field::Tags => "tags",
        }
    }
}

/// One typed difference of the service: the field (which `UpdateService` sets it from) and
/// its live and desired values, rendered for the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceDiff {
    pub(crate) field: Field,
    old: String,
    new: String,
}

impl ServiceDiff {
    fn new(field: Field, old: impl std::fmt::Display, new: impl std::fmt::Display) -> Self {
        Self {
            field,
            old: old.to_string(),
            new: new.to_string(),
        }
    }
}

impl Diff for ServiceDiff {
    fn field(&self) -> FieldDiff {
        FieldDiff::new(self.field.name(), &self.old, &self.new)
    }
}

/// Field-by-field differences; `task_definition` and `tg_arn` are what the service should
/// use (`None` when not known yet: a new revision or target group always differs).
pub(crate) fn diffs(
    d: &DesiredService,
    l: &LiveService,
    task_definition: Option<&str>,
    tg_arn: Option<&str>,
) -> Vec<ServiceDiff> {
    let mut out = Vec::new();
    match task_definition {
        Some(td) if td == l.task_definition => {}
        Some(td) => out.push(ServiceDiff::new(
            Field::TaskDefinition,
            &l.task_definition,
            td,
        )),
        None => out.push(ServiceDiff::new(
            Field::TaskDefinition,
            &l.task_definition,
            "(new revision)",
        )),
    }
    // Autoscaling's count is left alone, unless the service runs no task while the range
    // wants some (a service made without tasks, brought up by the first deploy with them).
    let below_range = d.autoscaled && l.desired_count == 0 && d.autoscaled_min > 0;
    if (!d.autoscaled || below_range) && d.desired_count != l.desired_count {
        out.push(ServiceDiff::new(
            Field::DesiredCount,
            l.desired_count,
            d.desired_count,
        ));
    }
    if let Some(have) = &l.capacity {
        let want = strategy_strings(&d.strategy);
        if &want != have {
            let show = |s: &[String]| {
                if s.is_empty() {
                    "launch type FARGATE".to_string()
                } else {
                    s.join(",")
                }
            };
            out.push(ServiceDiff::new(Field::Capacity, show(have), show(&want)));
        }
    }
    if d.subnets != l.subnets {
        out.push(ServiceDiff::new(
            Field::Subnets,
            l.subnets.join(","),
            d.subnets.join(","),
        ));
    }
    if d.security_groups != l.security_groups {
        out.push(ServiceDiff::new(
            Field::SecurityGroups,
            l.security_groups.join(","),
            d.security_groups.join(","),
        ));
    }
    if d.public_ip != l.public_ip {
        out.push(ServiceDiff::new(
            Field::AssignPublicIp,
            l.public_ip,
            d.public_ip,
        ));
    }
    let want_lbs: Vec<String> = match (&d.target, tg_arn) {
        (Some((c, p)), Some(tg)) => vec![format!("{tg} {c}:{p}")],
        (Some((c, p)), None) => vec![format!("(new target group) {c}:{p}")],
        (None, _) => vec![],
    };
    let have_lbs: Vec<String> = l
        .load_balancers
        .iter()
        .map(|(tg, c, p)| format!("{tg} {c}:{p}"))
        .collect();
    if want_lbs != have_lbs {
        out.push(ServiceDiff::new(
            Field::LoadBalancers,
            have_lbs.join(","),
            want_lbs.join(","),
        ));
    }
    if let Some(x) = &l.details {
        if x.grace != d.grace && !(x.grace == Some(0) && d.grace.is_none()) {
            out.push(ServiceDiff::new(
                Field::HealthCheckGracePeriod,
                format!("{:?}", x.grace),
                format!("{:?}", d.grace),
            ));
        }
        if x.min_healthy != Some(d.min_healthy) {
            out.push(ServiceDiff::new(
                Field::MinHealthyPercent,
                format!("{:?}", x.min_healthy),
                d.min_healthy,
            ));
        }
        if x.max_percent != Some(d.max_percent) {
            out.push(ServiceDiff::new(
                Field::MaxPercent,
                format!("{:?}", x.max_percent),
                d.max_percent,
            ));
        }
        if x.circuit_breaker != d.circuit_breaker {
            out.push(ServiceDiff::new(
                Field::CircuitBreaker,
                x.circuit_breaker,
                d.circuit_breaker,
            ));
        }
        if x.exec != d.exec {
            out.push(ServiceDiff::new(
                Field::EnableExecuteCommand,
                x.exec,
                d.exec,
            ));
        }
        if x.propagate.as_deref().unwrap_or("NONE") != d.propagate {
            out.push(ServiceDiff::new(
                Field::PropagateTags,
                format!("{:?}", x.propagate),
                &d.propagate,
            ));
        }
        if x.managed_tags != d.managed_tags {
            out.push(ServiceDiff::new(
                Field::ManagedTags,
                x.managed_tags,
                d.managed_tags,
            ));
        }
    }
    let mut have_reg = l.registries.clone();
    have_reg.sort();
    if have_reg != d.registries {
        out.push(ServiceDiff::new(
            Field::ServiceRegistries,
            have_reg.join(","),
            d.registries.join(","),
        ));
    }
    if d.connect_namespace.is_some() && l.connect_namespace != d.connect_namespace {
        out.push(ServiceDiff::new(
            Field::ServiceConnectNamespace,
            l.connect_namespace.as_deref().unwrap_or("none"),
            d.connect_namespace.as_deref().unwrap_or("none"),
        ));
    }
    if let Some(t) = d.tags.diff_from(&l.tags) {
        let f = t.field();
        out.push(ServiceDiff::new(Field::Tags, f.old, f.new));
    }
    out
}

fn retry_propagation() -> RetryOn {
    // Known eventual-consistency effects right after the roles, the listener or the account's
    // service-linked role were created (AWS-NOTES.md).
    RetryOn::codes(&[], Duration::from_secs(120))
        .message("InvalidParameterException", "Unable to assume role")
        .message(
            "InvalidParameterException",
            "does not have an associated load balancer",
        )
        .message(
            "InvalidParameterException",
            "Unable to assume the service linked role",
        )
}

fn network(d: &DesiredService) -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(d.subnets.clone()))
                .set_security_groups(Some(d.security_groups.clone()))
                .assign_public_ip(if d.public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .expect("subnets are set"),
        )
        .build()
}

fn deployment_config(d: &DesiredService) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .minimum_healthy_percent(d.min_healthy)
        .maximum_percent(d.max_percent)
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(d.circuit_breaker)
                .rollback(d.circuit_breaker)
                .build(),
        )
        .build()
}

fn load_balancers(d: &DesiredService, tg_arn: Option<&str>) -> Vec<LoadBalancer> {
    match (&d.target, tg_arn) {
        (Some((c, p)), Some(tg)) => vec![LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name(c)
            .container_port(i32::from(*p))
            .build()],
        _ => Vec::new(),
    }
}

fn registries(d: &DesiredService) -> Vec<ServiceRegistry> {
    d.registries
        .iter()
        .map(|r| ServiceRegistry::builder().registry_arn(r).build())
        .collect()
}

fn connect(d: &DesiredService) -> Option<ServiceConnectConfiguration> {
    d.connect_namespace.as_ref().map(|n| {
        ServiceConnectConfiguration::builder()
            .enabled(true)
            .namespace(n)
            .build()
    })
}

/// What an apply did to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) arn: String,
    /// The deployment started by the create or update, when the response named it.
    pub(crate) deployment: Option<String>,
    /// Whether the service was created or updated.
    pub(crate) changed: bool,
}

/// The id of the service's PRIMARY deployment.
pub(crate) async fn primary_deployment(
    ctx: &Context,
    ecs: &Client,
    cluster: &str,
    service: &str,
) -> Result<Option<String>> {
    let out = ctx
        .call("DescribeServices", &format!("{KIND} {service}"), || {
            ecs.describe_services()
                .cluster(cluster)
                .services(service)
                .send()
        })
        .await?;
    Ok(out
        .services()
        .first()
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        })
        .and_then(|d| d.id())
        .map(str::to_string))
}

/// The service as desired, with the task definition it should run (known once a new
/// revision is registered) and the target group its tasks register in.
#[derive(Debug, Clone)]
pub(crate) struct Service<'a> {
    pub(crate) want: &'a DesiredService,
    pub(crate) task_definition: Known<String>,
    pub(crate) tg_arn: Option<String>,
    /// A service of the name is still draining (deleted, not yet gone): the new one is
    /// created once it is inactive.
    pub(crate) after_draining: bool,
}

/// What the read found of the service, as the engine compares it: a draining service is
/// one about to be gone, so the service is created anew.
pub(crate) fn comparable(live: Option<&LiveService>) -> Option<LiveService> {
    live.filter(|l| !l.draining).cloned()
}

fn primary(s: Option<&aws_sdk_ecs::types::Service>) -> Option<String> {
    s.and_then(|s| {
        s.deployments()
            .iter()
            .find(|x| x.status() == Some("PRIMARY"))
    })
    .and_then(|x| x.id())
    .map(str::to_string)
}

impl Service<'_> {
    fn resource(&self) -> String {
        format!("{KIND} {}", self.want.name)
    }

    fn task_definition(&self) -> &str {
        self.task_definition
            .get()
            .map(String::as_str)
            .expect("the task definition is registered before the service is applied")
    }
}

impl Resource for Service<'_> {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveService;
    type Diff = ServiceDiff;
    /// What the create or update did (the deployment it started).
    type Output = Applied;
    type Error = Error;

    /// Its name (plans name the service by it).
    fn logical_id(&self) -> String {
        self.want.name.clone()
    }

    fn owner(live: &LiveService) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveService) -> Vec<ServiceDiff> {
        diffs(
            self.want,
            live,
            self.task_definition.get().map(String::as_str),
            self.tg_arn.as_deref(),
        )
    }

    fn output(live: &LiveService) -> Applied {
        Applied {
            arn: live.arn.clone(),
            deployment: None,
            changed: false,
        }
    }

    fn created(applied: &Applied) -> Option<String> {
        Some(applied.arn.clone())
    }

    fn updated(applied: &Applied) -> Option<String> {
        Some(match (&applied.deployment, applied.changed) {
            (Some(d), _) => format!("updated; deployment {d}"),
            (None, false) => "tags updated".to_string(),
            (None, true) => "updated".to_string(),
        })
    }

    /// Creates it (after the draining one of its name is gone), with its tags.
    async fn create(&self, ctx: &Context, ecs: &Client) -> Result<Applied> {
        let d = self.want;
        if self.after_draining {
            wait_inactive(ctx, ecs, &d.cluster, &d.name, Duration::from_secs(600)).await?;
        }
        let task_definition = self.task_definition();
        let tg_arn = self.tg_arn.as_deref();
        let tags = d
            .tags
            .to_sdk(|k, v| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
        // ECS client tokens are at most 36 characters.
        let token: String = ctx
            .client_token("service", &format!("{} {task_definition}", d.name))
            .chars()
            .take(32)
            .collect();
        let out = ctx
            .call_retrying(
                "CreateService",
                &self.resource(),
                &retry_propagation(),
                || {
                    let mut req = ecs
                        .create_service()
                        .cluster(&d.cluster)
                        .service_name(&d.name)
                        .task_definition(task_definition)
                        .desired_count(d.desired_count)
                        .network_configuration(network(d))
                        .set_load_balancers(Some(load_balancers(d, tg_arn)))
                        .set_health_check_grace_period_seconds(d.grace)
                        .deployment_configuration(deployment_config(d))
                        .enable_execute_command(d.exec)
                        .propagate_tags(PropagateTags::from(d.propagate.as_str()))
                        .enable_ecs_managed_tags(d.managed_tags)
                        .set_service_registries(Some(registries(d)))
                        .set_service_connect_configuration(connect(d))
                        .set_tags(Some(tags.clone()))
                        .client_token(&token);
                    req = if d.strategy.is_empty() {
                        req.launch_type(LaunchType::Fargate)
                    } else {
                        req.set_capacity_provider_strategy(Some(strategy_items(&d.strategy)))
                    };
                    req.send()
                },
            )
            .await?;
        Ok(Applied {
            arn: out
                .service()
                .and_then(|s| s.service_arn())
                .unwrap_or_default()
                .to_string(),
            deployment: primary(out.service()),
            changed: true,
        })
    }

    async fn update(
        &self,
        ctx: &Context,
        ecs: &Client,
        live: &LiveService,
        diffs: &[ServiceDiff],
    ) -> Result<()> {
        self.update_output(ctx, ecs, live, diffs).await.map(|_| ())
    }

    /// Sets its tags back when they differ, then makes one `UpdateService` with exactly the
    /// fields that differ (a change of tags only makes none); returns the deployment it
    /// started.
    async fn update_output(
        &self,
        ctx: &Context,
        ecs: &Client,
        l: &LiveService,
        changed: &[ServiceDiff],
    ) -> Result<Applied> {
        let d = self.want;
        let resource = self.resource();
        let has = |f: Field| changed.iter().any(|c| c.field == f);
        if let Some(t) = d.tags.diff_from(&l.tags) {
            tagging::ecs(ctx, ecs, &resource, &l.arn, &t).await?;
        }
        if changed.iter().all(|c| c.field == Field::Tags) {
            return Ok(Applied {
                arn: l.arn.clone(),
                deployment: None,
                changed: false,
            });
        }
        let task_definition = self.task_definition();
        let tg_arn = self.tg_arn.as_deref();
        let capacity = has(Field::Capacity);
        let out = ctx
            .call_retrying("UpdateService", &resource, &retry_propagation(), || {
                let mut req = ecs
                    .update_service()
                    .cluster(&d.cluster)
                    .service(&d.name)
                    .task_definition(task_definition);
                if has(Field::DesiredCount) {
                    req = req.desired_count(d.desired_count);
                }
                if capacity {
                    // Moving between a launch type and a strategy needs a new deployment.
                    req = req
                        .set_capacity_provider_strategy(Some(strategy_items(&d.strategy)))
                        .force_new_deployment(true);
                }
                if has(Field::Subnets) || has(Field::SecurityGroups) || has(Field::AssignPublicIp) {
                    req = req.network_configuration(network(d));
                }
                if has(Field::LoadBalancers) {
                    req = req.set_load_balancers(Some(load_balancers(d, tg_arn)));
                }
                if has(Field::HealthCheckGracePeriod) {
                    req = req.set_health_check_grace_period_seconds(d.grace);
                }
                if has(Field::MinHealthyPercent)
                    || has(Field::MaxPercent)
                    || has(Field::CircuitBreaker)
                {
                    req = req.deployment_configuration(deployment_config(d));
                }
                if has(Field::EnableExecuteCommand) {
                    req = req.enable_execute_command(d.exec);
                }
                if has(Field::PropagateTags) {
                    req = req.propagate_tags(PropagateTags::from(d.propagate.as_str()));
                }
                if has(Field::ManagedTags) {
                    req = req.enable_ecs_managed_tags(d.managed_tags);
                }
                if has(Field::ServiceRegistries) {
                    req = req.set_service_registries(Some(registries(d)));
                }
                if has(Field::ServiceConnectNamespace) {
                    req = req.set_service_connect_configuration(connect(d));
                }
                req.send()
            })
            .await?;
        Ok(Applied {
            arn: l.arn.clone(),
            deployment: primary(out.service()),
            changed: true,
        })
    }

    /// Scales it to 0, deletes it (force) and waits until it is inactive.
    async fn delete(ctx: &Context, ecs: &Client, live: &LiveService) -> Result<()> {
        let (cluster, name) = (&live.cluster, &live.name);
        let resource = format!("{KIND} {name}");
        if !live.draining {
            if live.desired_count > 0 {
                ctx.call("UpdateService", &resource, || {
                    ecs.update_service()
                        .cluster(cluster)
                        .service(name)
                        .desired_count(0)
                        .send()
                })
                .await?;
            }
            match ctx
                .call("DeleteService", &resource, || {
                    ecs.delete_service()
                        .cluster(cluster)
                        .service(name)
                        .force(true)
                        .send()
                })
                .await
            {
                Err(e) if !e.is_code("ServiceNotFoundException") => return Err(e.into()),
                _ => {}
            }
        }
        wait_inactive(ctx, ecs, cluster, name, Duration::from_secs(900)).await
    }
}

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RolloutReport {
    /// The deployment waited for.
    pub deployment: String,
    /// The task definition it rolled out.
    pub task_definition: String,
    /// Tasks running when it completed.
    pub running: i32,
    /// How long the wait took.
    pub waited: Duration,
}

/// Points the service at the task definition revision `arn` (one `UpdateService`, nothing
/// else; `action` is what the progress events call it) and returns the deployment it started.
pub(crate) async fn point_at(
    ctx: &Context,
    ecs: &Client,
    (cluster, service): (&str, &str),
    arn: &str,
    action: String,
) -> Result<String> {
    let resource = format!("{KIND} {service}");
    ctx.emit(Event::Started {
        resource: resource.clone(),
        action,
    });
    let out = ctx
        .call("UpdateService", &resource, || {
            ecs.update_service()
                .cluster(cluster)
                .service(service)
                .task_definition(arn)
                .send()
        })
        .await?;
    let named = out
        .service()
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        })
        .and_then(|d| d.id())
        .map(str::to_string);
    let deployment = match named {
        Some(d) => d,
        None => primary_deployment(ctx, ecs, cluster, service)
            .await?
            .unwrap_or_default(),
    };
    ctx.emit(Event::Done {
        resource,
        detail: format!("updated; deployment {deployment}"),
    });
    Ok(deployment)
}

/// Waits for `deployment` of the service to complete; fails with [`Error::RolloutFailed`]
/// (with the stopped tasks' reasons and the last service events) when it fails, is rolled
/// back by the circuit breaker or replaced, runs another revision than `expected` (the one
/// the caller asked for), or has not completed after `timeout`. Reports progress (counts, new
/// service events, stopped tasks' reasons, target health) as events.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn wait_rollout(
    ctx: &Context,
    ecs: &Client,
    elb: Option<(&aws_sdk_elasticloadbalancingv2::Client, &str)>,
    cluster: &str,
    service: &str,
    deployment: &str,
    expected: &str,
    timeout: Duration,
) -> Result<RolloutReport> {
    let resource = format!("{KIND} {service}");
    let start = ctx.clock().now();
    let seen_events: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let seen_tasks: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let failed_seen = Mutex::new(0);
    let first = Mutex::new(true);
    let task_definition: Mutex<Option<String>> = Mutex::new(None);
    let outcome = ctx
        .poll(&resource, &format!("deployment {deployment} to complete"), &PollPolicy {
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(5),
            ..PollPolicy::with_timeout(timeout)
        }, || async {
            let out = ctx
                .call("DescribeServices", &resource, || ecs.describe_services().cluster(cluster).services(service).send())
                .await?;
            let Some(s) = out.services().first() else {
                return Ok(Poll::Ready(Err("the service no longer exists".to_string())));
            };
            // New service events, oldest first. On the first probe, only those since the
            // deployment started are new (both timestamps come from ECS).
            let started = s.deployments().iter().find(|d| d.id() == Some(deployment)).and_then(|d| d.created_at()).map(|t| (t.secs(), t.subsec_nanos()));
            let mut new_events = Vec::new();
            {
                let mut seen = seen_events.lock().expect("not poisoned");
                let mut first = first.lock().expect("not poisoned");
                for e in s.events().iter().rev() {
                    if let Some(id) = e.id() {
                        let recent = match (started, e.created_at()) {
                            (Some(start), Some(at)) => (at.secs(), at.subsec_nanos()) >= start,
                            _ => false,
                        };
                        if seen.insert(id.to_string()) && (!*first || recent) {
                            new_events.push(e.message().unwrap_or_default().to_string());
                        }
                    }
                }
                *first = false;
            }
            for message in new_events {
                ctx.emit(Event::Progress { resource: resource.clone(), message });
            }
            let Some(d) = s.deployments().iter().find(|d| d.id() == Some(deployment)) else {
                let primary = s.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
                return Ok(Poll::Ready(Err(format!(
                    "deployment {deployment} was replaced by {} (task definition {}): rolled back by the circuit breaker or superseded by another deployment",
                    primary.and_then(|p| p.id()).unwrap_or("none"),
                    primary.and_then(|p| p.task_definition()).unwrap_or("?"),
                ))));
            };
            *task_definition.lock().expect("not poisoned") = d.task_definition().map(str::to_string);
            if d.task_definition() != Some(expected) {
                return Ok(Poll::Ready(Err(format!(
                    "deployment {deployment} runs {}, not {expected}, the revision asked for",
                    d.task_definition().unwrap_or("no task definition"),
                ))));
            }
            let failed = d.failed_tasks();
            let grew = {
                let mut f = failed_seen.lock().expect("not poisoned");
                let grew = failed > *f;
                *f = failed;
                grew
            };
            if grew {
                for reason in stopped_tasks(ctx, ecs, cluster, service, d.task_definition()).await? {
                    if seen_tasks.lock().expect("not poisoned").insert(reason.clone()) {
                        ctx.emit(Event::Progress { resource: resource.clone(), message: format!("task stopped: {reason}") });
                    }
                }
            }
            let mut seen = format!(
                "{}; running {}, pending {}, desired {}, failed tasks {failed}",
                d.rollout_state().map_or("IN_PROGRESS", |r| r.as_str()),
                d.running_count(),
                d.pending_count(),
                d.desired_count()
            );
            match d.rollout_state() {
                Some(DeploymentRolloutState::Completed) => {
                    return Ok(Poll::Ready(Ok(RolloutReport {
                        deployment: deployment.to_string(),
                        task_definition: d.task_definition().unwrap_or_default().to_string(),
                        running: d.running_count(),
                        waited: ctx.clock().now() - start,
                    })))
                }
                Some(DeploymentRolloutState::Failed) => {
                    return Ok(Poll::Ready(Err(format!(
                        "deployment {deployment} FAILED: {}",
                        d.rollout_state_reason().unwrap_or("no reason given")
                    ))))
                }
                _ => {}
            }
            if let Some((elb, tg)) = elb {
                if let Ok((healthy, unhealthy, other, reasons)) = crate::lb::target_health(ctx, elb, tg).await {
                    seen.push_str(&format!("; targets healthy {healthy}, unhealthy {unhealthy}, other {other}"));
                    if let Some(r) = reasons.first() {
                        seen.push_str(&format!(" ({r})"));
                    }
                }
            }
            Ok(Poll::Pending(seen))
        })
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(ecs_core::Error::Timeout {
            waited, last_seen, ..
        }) => Err(format!(
            "deployment {deployment} did not complete within {} s (last seen: {last_seen})",
            waited.as_secs()
        )),
        Err(e) => return Err(e.into()),
    };
    match outcome {
        Ok(report) => {
            ctx.emit(Event::Done {
                resource,
                detail: format!("rollout of {} completed", report.task_definition),
            });
            Ok(report)
        }
        Err(reason) => {
            // Only this deployment's tasks: earlier deployments' normal stops are not reasons.
            let td = task_definition.lock().expect("not poisoned").clone();
            let stopped = stopped_tasks(ctx, ecs, cluster, service, td.as_deref())
                .await
                .unwrap_or_default();
            let events = recent_events(ctx, ecs, cluster, service, 5)
                .await
                .unwrap_or_default();
            let err = Error::RolloutFailed {
                service: service.to_string(),
                reason,
                stopped_tasks: stopped,
                events,
            };
            ctx.emit(Event::Failed {
                resource,
                error: err.to_string(),
            });
            Err(err)
        }
    }
}

/// Why the service's recently stopped tasks stopped (of `task_definition` when given).
pub(crate) async fn stopped_tasks(
    ctx: &Context,
    ecs: &Client,
    cluster: &str,
    service: &str,
    task_definition: Option<&str>,
) -> std::result::Result<Vec<String>, ecs_core::AwsError> {
    let resource = format!("{KIND} {service}");
    let list = ctx
        .call("ListTasks", &resource, || {
            ecs.list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status(DesiredStatus::Stopped)
                .max_results(20)
                .send()
        })
        .await?;
    if list.task_arns().is_empty() {
        return Ok(Vec::new());
    }
    let tasks = ctx
        .call("DescribeTasks", &resource, || {
            ecs.describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(list.task_arns().to_vec()))
                .send()
        })
        .await?;
    Ok(tasks
        .tasks()
        .iter()
        .filter(|t| task_definition.is_none_or(|td| t.task_definition_arn() == Some(td)))
        .map(|t| {
            let id = t
                .task_arn()
                .and_then(|a| a.rsplit('/').next())
                .unwrap_or("?");
            let mut text = format!("task {id}: {}", t.stopped_reason().unwrap_or("stopped"));
            for c in t.containers() {
                if let Some(reason) = c.reason() {
                    text.push_str(&format!(
                        "; container {}: {reason}",
                        c.name().unwrap_or("?")
                    ));
                } else if let Some(code) = c.exit_code().filter(|c| *c != 0) {
                    text.push_str(&format!(
                        "; container {} exited with {code}",
                        c.name().unwrap_or("?")
                    ));
                }
            }
            text
        })
        .collect())
}

/// The service's `n` most recent events, newest first.
pub(crate) async fn recent_events(
    ctx: &Context,
    ecs: &Client,
    cluster: &str,
    service: &str,
    n: usize,
) -> std::result::Result<Vec<String>, ecs_core::AwsError> {
    let out = ctx
        .call("DescribeServices", &format!("{KIND} {service}"), || {
            ecs.describe_services()
                .cluster(cluster)
                .services(service)
                .send()
        })
        .await?;
    Ok(out
        .services()
        .first()
        .map(|s| {
            s.events()
                .iter()
                .take(n)
                .filter_map(|e| e.message().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

async fn wait_inactive(
    ctx: &Context,
    ecs: &Client,
    cluster: &str,
    name: &str,
    timeout: Duration,
) -> Result<()> {
    let resource = format!("{KIND} {name}");
    ctx.poll(
        &resource,
        "status INACTIVE",
        &PollPolicy::with_timeout(timeout),
        || async {
            match ecs
                .describe_services()
                .cluster(cluster)
                .services(name)
                .send()
                .await
            {
                Err(e) => {
                    let e = ecs_core::AwsError::from_sdk("DescribeServices", &resource, e);
                    if e.is_code("ClusterNotFoundException") {
                        Ok(Poll::Ready(()))
                    } else {
                        Err(e)
                    }
                }
                Ok(out) => match out
                    .services()
                    .iter()
                    .find(|s| s.service_name() == Some(name))
                    .and_then(|s| s.status())
                {
                    None | Some("INACTIVE") => Ok(Poll::Ready(())),
                    Some(other) => Ok(Poll::Pending(other.to_string())),
                },
            }
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod typed_diff_tests {
    use super::*;

    #[test]
    fn every_field_renders_under_its_own_plan_name() {
        let all = [
            Field::TaskDefinition,
            Field::DesiredCount,
            Field::Capacity,
            Field::Subnets,
            Field::SecurityGroups,
            Field::AssignPublicIp,
            Field::LoadBalancers,
            Field::HealthCheckGracePeriod,
            Field::MinHealthyPercent,
            Field::MaxPercent,
            Field::CircuitBreaker,
            Field::EnableExecuteCommand,
            Field::PropagateTags,
            Field::ManagedTags,
            Field::ServiceRegistries,
            Field::ServiceConnectNamespace,
            Field::Tags,
        ];
        let names: std::collections::BTreeSet<&str> = all.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), all.len(), "two fields share a plan name");
        assert_eq!(
            ServiceDiff::new(Field::DesiredCount, 2, 3).field(),
            FieldDiff::new("desired_count", 2, 3)
        );
    }
}
