//! A stateful fake of ECS (feature `fake-ecs`): clusters, task definition revisions and
//! services, what a mocked ECS client answers from, and what its mutating calls change.
//!
//! [`FakeEcs`] holds an [`EcsState`] and builds the mock rules that answer from it; every call
//! is recorded, input included, in the [`Journal`] the fake was made with. As ECS does:
//! `CreateCluster` is idempotent by name; a cluster with active services cannot be deleted
//! (`ClusterContainsServicesException`); a revision is registered as the family's next, and
//! deregistering makes it `INACTIVE`; a service needs an active cluster and an active
//! revision, cannot be created twice (`InvalidParameterException`), and cannot be deleted
//! while scaled above 0 without `force`; an update that changes what runs starts a new
//! `PRIMARY` deployment; `ListServices` lists a cluster's services until they are
//! `INACTIVE`; describes include tags only when asked. Time passes at each
//! `DescribeServices` ([`EcsState::tick`]): a deployment in progress completes, a draining
//! service becomes `INACTIVE`. Linked to a fake ELB (`FakeElb::linked`, feature
//! `fake-elb`), a service may only name a target group that exists, and a target group a live service uses cannot be deleted. `ListTasks` and
//! `DescribeTasks` answer no task.
//!
//! ```
//! use ecs_core::testing::{FakeEcs, Journal};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeEcs::new(&Journal::default(), Default::default());
//! fake.client().create_cluster().cluster_name("web").send().await.unwrap();
//! assert!(fake.state().cluster_active("web"));
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

// The rules answer with the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::error::ErrorMetadata;
use aws_sdk_ecs::operation::create_service::CreateServiceError;
use aws_sdk_ecs::types::{
    Cluster, DeploymentRolloutState, Service, Tag, TaskDefinition, TaskDefinitionStatus,
};
use aws_sdk_ecs::Client;

use super::{aws_error as error, mock, retag, Rule, ACCOUNT, REGION};

/// The ARN of the cluster `name`.
pub fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

/// One task definition revision and its tags.
#[derive(Debug, Clone)]
pub struct TaskDef {
    /// The revision as `DescribeTaskDefinition` returns it.
    pub td: TaskDefinition,
    /// Its tags.
    pub tags: Vec<Tag>,
}

/// What the fake account holds.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EcsState {
    /// The clusters, by name (deleted ones stay, `INACTIVE`).
    pub clusters: BTreeMap<String, Cluster>,
    /// Every revision ever registered.
    pub task_defs: Vec<TaskDef>,
    /// The services (deleted ones stay, `DRAINING` then `INACTIVE`).
    pub services: Vec<Service>,
    /// Every deployment id handed out, in order.
    pub deployments: Vec<String>,
    /// The journal index of the first `DescribeServices` that reported a service `INACTIVE`.
    pub inactive_seen_at: Option<usize>,
    /// The ARNs of the target groups that exist, kept by a linked fake ELB (`FakeElb::linked`,
    /// feature `fake-elb`: those its state holds when linked, then those its calls create or
    /// delete); `None`, unlinked: any target group a service names is taken to exist.
    pub target_groups: Option<BTreeSet<String>>,
}

impl EcsState {
    /// Whether the cluster `name` exists and is active.
    pub fn cluster_active(&self, name: &str) -> bool {
        self.clusters
            .get(name)
            .is_some_and(|c| c.status() == Some("ACTIVE"))
    }

    /// A task definition by ARN, by `family:revision`, or the latest active one of a family.
    pub fn task_def(&self, key: &str) -> Option<&TaskDef> {
        if key.contains(":task-definition/") {
            return self
                .task_defs
                .iter()
                .find(|t| t.td.task_definition_arn() == Some(key));
        }
        match key.split_once(':') {
            Some((family, revision)) => {
                let revision: i32 = revision.parse().ok()?;
                self.task_defs
                    .iter()
                    .find(|t| t.td.family() == Some(family) && t.td.revision() == revision)
            }
            None => self
                .task_defs
                .iter()
                .filter(|t| {
                    t.td.family() == Some(key)
                        && t.td.status() == Some(&TaskDefinitionStatus::Active)
                })
                .max_by_key(|t| t.td.revision()),
        }
    }

    /// Whether a live service sends traffic to the target group `arn`.
    pub fn uses_target_group(&self, arn: &str) -> bool {
        self.services.iter().any(|s| {
            s.status() != Some("INACTIVE")
                && s.load_balancers()
                    .iter()
                    .any(|l| l.target_group_arn() == Some(arn))
        })
    }

    /// A new deployment id, recorded in [`deployments`](Self::deployments).
    pub fn new_deployment(&mut self) -> String {
        let id = format!("ecs-svc/{:019}", self.deployments.len() + 1);
        self.deployments.push(id.clone());
        id
    }

    /// Time passes: a deployment reported in progress completes (and replaces the older
    /// ones), a draining service becomes inactive.
    pub fn tick(&mut self) {
        for s in &mut self.services {
            if s.status() == Some("DRAINING") {
                s.status = Some("INACTIVE".into());
            }
            let mut completed = false;
            for d in s.deployments.iter_mut().flatten() {
                if d.status() == Some("PRIMARY")
                    && d.rollout_state() == Some(&DeploymentRolloutState::InProgress)
                {
                    d.rollout_state = Some(DeploymentRolloutState::Completed);
                    d.running_count = d.desired_count;
                    completed = true;
                }
            }
            if completed {
                if let Some(deployments) = &mut s.deployments {
                    deployments.retain(|d| d.status() == Some("PRIMARY"));
                }
                s.running_count = s.desired_count;
            }
        }
    }
}

fake_handle! {
    /// A stateful fake of ECS over an [`EcsState`]. See the [module](self) docs.
    FakeEcs,
    EcsState,
    aws_sdk_ecs
}

impl FakeEcs {
    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        use aws_sdk_ecs::types::{
            ClusterField, Deployment, ServiceField, SortOrder, TaskDefinitionField,
        };
        fn no_cluster() -> ErrorMetadata {
            error("ClusterNotFoundException", "Cluster not found.")
        }
        fn no_task_definition() -> ErrorMetadata {
            error("ClientException", "Unable to describe task definition.")
        }
        /// The tags of the cluster, service or task definition revision with this ARN.
        fn ecs_tags<'a>(
            s: &'a mut EcsState,
            arn: &str,
        ) -> Option<&'a mut Vec<aws_sdk_ecs::types::Tag>> {
            if let Some(c) = s
                .clusters
                .values_mut()
                .find(|c| c.cluster_arn() == Some(arn))
            {
                return Some(c.tags.get_or_insert_with(Vec::new));
            }
            if let Some(x) = s.services.iter_mut().find(|x| x.service_arn() == Some(arn)) {
                return Some(x.tags.get_or_insert_with(Vec::new));
            }
            s.task_defs
                .iter_mut()
                .find(|t| t.td.task_definition_arn() == Some(arn))
                .map(|t| &mut t.tags)
        }

        /// The live (not inactive) service `name` of `cluster`.
        fn live_service(s: &EcsState, cluster: &str, name: &str) -> Option<usize> {
            let arn = cluster_arn(cluster);
            s.services.iter().position(|s| {
                s.cluster_arn() == Some(arn.as_str())
                    && s.service_name() == Some(name)
                    && s.status() != Some("INACTIVE")
            })
        }

        vec![
            j.on(
                w,
                "DescribeClusters",
                mock!(Client::describe_clusters),
                |s, r, _| {
                    let tags = r.include().contains(&ClusterField::Tags);
                    let found = r
                        .clusters()
                        .iter()
                        .filter_map(|name| s.clusters.get(name))
                        .map(|c| {
                            let mut c = c.clone();
                            if !tags {
                                c.tags = None;
                            }
                            c
                        })
                        .collect();
                    Ok(aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput::builder()
                        .set_clusters(Some(found))
                        .build())
                },
            ),
            j.on(w, "CreateCluster", mock!(Client::create_cluster), |s, r, _| {
                let name = r.cluster_name().unwrap_or("default").to_string();
                if !s.cluster_active(&name) {
                    let cluster = Cluster::builder()
                        .cluster_arn(cluster_arn(&name))
                        .cluster_name(name.as_str())
                        .status("ACTIVE")
                        .set_tags(Some(r.tags().to_vec()))
                        .set_settings(Some(r.settings().to_vec()))
                        .set_capacity_providers(Some(r.capacity_providers().to_vec()))
                        .set_default_capacity_provider_strategy(Some(
                            r.default_capacity_provider_strategy().to_vec(),
                        ))
                        .build();
                    s.clusters.insert(name.clone(), cluster);
                }
                Ok(aws_sdk_ecs::operation::create_cluster::CreateClusterOutput::builder()
                    .set_cluster(s.clusters.get(&name).cloned())
                    .build())
            }),
            j.on(w, "UpdateCluster", mock!(Client::update_cluster), |s, r, _| {
                let name = r.cluster().unwrap_or_default();
                match s
                    .clusters
                    .get_mut(name)
                    .filter(|c| c.status() == Some("ACTIVE"))
                {
                    Some(c) => {
                        c.settings = Some(r.settings().to_vec());
                        Ok(aws_sdk_ecs::operation::update_cluster::UpdateClusterOutput::builder()
                            .cluster(c.clone())
                            .build())
                    }
                    None => Err(aws_sdk_ecs::operation::update_cluster::UpdateClusterError::generic(
                        no_cluster(),
                    )),
                }
            }),
            j.on(
                w,
                "PutClusterCapacityProviders",
                mock!(Client::put_cluster_capacity_providers),
                |s, r, _| {
                    use aws_sdk_ecs::operation::put_cluster_capacity_providers::{
                        PutClusterCapacityProvidersError, PutClusterCapacityProvidersOutput,
                    };
                    let name = r.cluster().unwrap_or_default();
                    match s
                        .clusters
                        .get_mut(name)
                        .filter(|c| c.status() == Some("ACTIVE"))
                    {
                        Some(c) => {
                            c.capacity_providers = Some(r.capacity_providers().to_vec());
                            c.default_capacity_provider_strategy =
                                Some(r.default_capacity_provider_strategy().to_vec());
                            Ok(PutClusterCapacityProvidersOutput::builder()
                                .cluster(c.clone())
                                .build())
                        }
                        None => Err(PutClusterCapacityProvidersError::generic(no_cluster())),
                    }
                },
            ),
            j.on(w, "DeleteCluster", mock!(Client::delete_cluster), |s, r, _| {
                use aws_sdk_ecs::operation::delete_cluster::{DeleteClusterError, DeleteClusterOutput};
                let name = r.cluster().unwrap_or_default();
                let arn = cluster_arn(name);
                if !s.cluster_active(name) {
                    return Err(DeleteClusterError::generic(no_cluster()));
                }
                if s.services.iter().any(|s| {
                    s.cluster_arn() == Some(arn.as_str()) && s.status() != Some("INACTIVE")
                }) {
                    return Err(DeleteClusterError::generic(error(
                        "ClusterContainsServicesException",
                        "The Cluster cannot be deleted while Services are active.",
                    )));
                }
                let cluster = s.clusters.get_mut(name).map(|c| {
                    c.status = Some("INACTIVE".into());
                    c.clone()
                });
                Ok(DeleteClusterOutput::builder().set_cluster(cluster).build())
            }),
            j.on(
                w,
                "DescribeTaskDefinition",
                mock!(Client::describe_task_definition),
                |s, r, _| {
                    use aws_sdk_ecs::operation::describe_task_definition::{
                        DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
                    };
                    match s.task_def(r.task_definition().unwrap_or_default()) {
                        Some(t) => {
                            let tags = r
                                .include()
                                .contains(&TaskDefinitionField::Tags)
                                .then(|| t.tags.clone());
                            Ok(DescribeTaskDefinitionOutput::builder()
                                .task_definition(t.td.clone())
                                .set_tags(tags)
                                .build())
                        }
                        None => Err(DescribeTaskDefinitionError::generic(no_task_definition())),
                    }
                },
            ),
            j.on(
                w,
                "RegisterTaskDefinition",
                mock!(Client::register_task_definition),
                |s, r, _| {
                    let family = r.family().unwrap_or_default().to_string();
                    let revision = s
                        .task_defs
                        .iter()
                        .filter(|t| t.td.family() == Some(family.as_str()))
                        .map(|t| t.td.revision())
                        .max()
                        .unwrap_or_default()
                        + 1;
                    let td = TaskDefinition::builder()
                        .task_definition_arn(format!(
                            "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"
                        ))
                        .family(family.as_str())
                        .revision(revision)
                        .status(TaskDefinitionStatus::Active)
                        .set_task_role_arn(r.task_role_arn().map(str::to_string))
                        .set_execution_role_arn(r.execution_role_arn().map(str::to_string))
                        .set_network_mode(r.network_mode().cloned())
                        .set_container_definitions(Some(r.container_definitions().to_vec()))
                        .set_volumes(Some(r.volumes().to_vec()))
                        .set_requires_compatibilities(Some(r.requires_compatibilities().to_vec()))
                        .set_cpu(r.cpu().map(str::to_string))
                        .set_memory(r.memory().map(str::to_string))
                        .set_runtime_platform(r.runtime_platform().cloned())
                        .set_ephemeral_storage(r.ephemeral_storage().cloned())
                        .build();
                    s.task_defs.push(TaskDef {
                        td: td.clone(),
                        tags: r.tags().to_vec(),
                    });
                    Ok(
                        aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput::builder()
                            .task_definition(td)
                            .set_tags(Some(r.tags().to_vec()))
                            .build(),
                    )
                },
            ),
            j.on(
                w,
                "ListTaskDefinitions",
                mock!(Client::list_task_definitions),
                |s, r, _| {
                    let status = r.status().cloned().unwrap_or(TaskDefinitionStatus::Active);
                    let mut found: Vec<&TaskDefinition> = s
                        .task_defs
                        .iter()
                        .map(|t| &t.td)
                        .filter(|td| {
                            r.family_prefix().is_none_or(|f| td.family() == Some(f))
                                && td.status() == Some(&status)
                        })
                        .collect();
                    found.sort_by_key(|td| td.revision());
                    if r.sort() == Some(&SortOrder::Desc) {
                        found.reverse();
                    }
                    Ok(
                        aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput::builder()
                            .set_task_definition_arns(Some(
                                found
                                    .iter()
                                    .filter_map(|td| td.task_definition_arn().map(str::to_string))
                                    .collect(),
                            ))
                            .build(),
                    )
                },
            ),
            j.on(
                w,
                "DeregisterTaskDefinition",
                mock!(Client::deregister_task_definition),
                |s, r, _| {
                    use aws_sdk_ecs::operation::deregister_task_definition::{
                        DeregisterTaskDefinitionError, DeregisterTaskDefinitionOutput,
                    };
                    let arn = r.task_definition().unwrap_or_default();
                    match s
                        .task_defs
                        .iter_mut()
                        .find(|t| t.td.task_definition_arn() == Some(arn))
                    {
                        Some(t) => {
                            t.td.status = Some(TaskDefinitionStatus::Inactive);
                            Ok(DeregisterTaskDefinitionOutput::builder()
                                .task_definition(t.td.clone())
                                .build())
                        }
                        None => Err(DeregisterTaskDefinitionError::generic(no_task_definition())),
                    }
                },
            ),
            j.on(
                w,
                "DescribeServices",
                mock!(Client::describe_services),
                |s, r, at| {
                    use aws_sdk_ecs::operation::describe_services::{
                        DescribeServicesError, DescribeServicesOutput,
                    };
                    let cluster = r.cluster().unwrap_or("default");
                    if !s.cluster_active(cluster) {
                        return Err(DescribeServicesError::generic(no_cluster()));
                    }
                    let arn = cluster_arn(cluster);
                    let tags = r.include().contains(&ServiceField::Tags);
                    let found: Vec<Service> = s
                        .services
                        .iter()
                        .filter(|s| {
                            s.cluster_arn() == Some(arn.as_str())
                                && r.services().iter().any(|n| {
                                    s.service_name() == Some(n.as_str())
                                        || s.service_arn() == Some(n.as_str())
                                })
                        })
                        .map(|s| {
                            let mut s = s.clone();
                            if !tags {
                                s.tags = None;
                            }
                            s
                        })
                        .collect();
                    if s.inactive_seen_at.is_none()
                        && found.iter().any(|s| s.status() == Some("INACTIVE"))
                    {
                        s.inactive_seen_at = Some(at);
                    }
                    s.tick();
                    Ok(DescribeServicesOutput::builder()
                        .set_services(Some(found))
                        .build())
                },
            ),
            j.on(w, "CreateService", mock!(Client::create_service), |s, r, _| {
                use aws_sdk_ecs::operation::create_service::CreateServiceOutput;
                let cluster = r.cluster().unwrap_or("default");
                if !s.cluster_active(cluster) {
                    return Err(CreateServiceError::generic(no_cluster()));
                }
                let name = r.service_name().unwrap_or_default();
                if live_service(s, cluster, name).is_some() {
                    return Err(CreateServiceError::generic(error(
                        "InvalidParameterException",
                        "Creation of service was not idempotent.",
                    )));
                }
                let td = r.task_definition().unwrap_or_default();
                if s.task_def(td)
                    .is_none_or(|t| t.td.status() != Some(&TaskDefinitionStatus::Active))
                {
                    return Err(CreateServiceError::generic(error(
                        "ClientException",
                        "TaskDefinition not found.",
                    )));
                }
                for l in r.load_balancers() {
                    let tg = l.target_group_arn().unwrap_or_default();
                    if s.target_groups.as_ref().is_some_and(|k| !k.contains(tg)) {
                        return Err(CreateServiceError::generic(error(
                            "InvalidParameterException",
                            format!("The target group with targetGroupArn {tg} does not exist."),
                        )));
                    }
                }
                let id = s.new_deployment();
                let count = r.desired_count().unwrap_or_default();
                let deployment = Deployment::builder()
                    .id(id)
                    .status("PRIMARY")
                    .task_definition(td)
                    .desired_count(count)
                    .running_count(0)
                    .rollout_state(DeploymentRolloutState::InProgress)
                    .set_launch_type(r.launch_type().cloned())
                    .set_network_configuration(r.network_configuration().cloned())
                    .build();
                let service = Service::builder()
                    .service_arn(format!(
                        "arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}"
                    ))
                    .service_name(name)
                    .cluster_arn(cluster_arn(cluster))
                    .status("ACTIVE")
                    .desired_count(count)
                    .running_count(0)
                    .set_launch_type(r.launch_type().cloned())
                    .set_capacity_provider_strategy(Some(r.capacity_provider_strategy().to_vec()))
                    .task_definition(td)
                    .set_load_balancers(Some(r.load_balancers().to_vec()))
                    .set_service_registries(Some(r.service_registries().to_vec()))
                    .set_network_configuration(r.network_configuration().cloned())
                    .set_health_check_grace_period_seconds(r.health_check_grace_period_seconds())
                    .set_deployment_configuration(r.deployment_configuration().cloned())
                    .deployments(deployment)
                    .set_tags(Some(r.tags().to_vec()))
                    .set_enable_ecs_managed_tags(r.enable_ecs_managed_tags())
                    .set_propagate_tags(r.propagate_tags().cloned())
                    .set_enable_execute_command(r.enable_execute_command())
                    .build();
                // A deleted service of the same name in this cluster is forgotten.
                let arn = cluster_arn(cluster);
                s.services.retain(|x| {
                    x.service_name() != Some(name) || x.cluster_arn() != Some(arn.as_str())
                });
                s.services.push(service.clone());
                Ok(CreateServiceOutput::builder().service(service).build())
            }),
            j.on(w, "UpdateService", mock!(Client::update_service), |s, r, _| {
                use aws_sdk_ecs::operation::update_service::{UpdateServiceError, UpdateServiceOutput};
                let cluster = r.cluster().unwrap_or("default");
                let name = r.service().unwrap_or_default();
                let Some(i) = live_service(s, cluster, name) else {
                    return Err(UpdateServiceError::generic(error(
                        "ServiceNotFoundException",
                        "Service not found.",
                    )));
                };
                if let Some(td) = r.task_definition() {
                    if s.task_def(td).is_none() {
                        return Err(UpdateServiceError::generic(no_task_definition()));
                    }
                }
                for l in r.load_balancers() {
                    let tg = l.target_group_arn().unwrap_or_default();
                    if s.target_groups.as_ref().is_some_and(|k| !k.contains(tg)) {
                        return Err(UpdateServiceError::generic(error(
                            "InvalidParameterException",
                            format!("The target group with targetGroupArn {tg} does not exist."),
                        )));
                    }
                }
                let redeploy = {
                    let s = &mut s.services[i];
                    let mut redeploy = r.force_new_deployment() == Some(true);
                    if let Some(n) = r.desired_count() {
                        s.desired_count = n;
                    }
                    if let Some(td) = r.task_definition() {
                        if s.task_definition() != Some(td) {
                            s.task_definition = Some(td.to_string());
                            redeploy = true;
                        }
                    }
                    if let Some(strategy) = &r.capacity_provider_strategy {
                        s.capacity_provider_strategy = Some(strategy.clone());
                        if !strategy.is_empty() {
                            s.launch_type = None;
                        }
                        redeploy = true;
                    }
                    if let Some(n) = r.network_configuration() {
                        s.network_configuration = Some(n.clone());
                        redeploy = true;
                    }
                    if let Some(lbs) = &r.load_balancers {
                        s.load_balancers = Some(lbs.clone());
                        redeploy = true;
                    }
                    if let Some(g) = r.health_check_grace_period_seconds() {
                        s.health_check_grace_period_seconds = Some(g);
                    }
                    if let Some(d) = r.deployment_configuration() {
                        s.deployment_configuration = Some(d.clone());
                    }
                    if let Some(e) = r.enable_execute_command() {
                        s.enable_execute_command = e;
                    }
                    if let Some(m) = r.enable_ecs_managed_tags() {
                        s.enable_ecs_managed_tags = m;
                    }
                    if let Some(p) = r.propagate_tags() {
                        s.propagate_tags = Some(p.clone());
                    }
                    if let Some(registries) = &r.service_registries {
                        s.service_registries = Some(registries.clone());
                    }
                    redeploy
                };
                if redeploy {
                    let id = s.new_deployment();
                    let s = &mut s.services[i];
                    for d in s.deployments.iter_mut().flatten() {
                        d.status = Some("ACTIVE".into());
                    }
                    let deployment = Deployment::builder()
                        .id(id)
                        .status("PRIMARY")
                        .set_task_definition(s.task_definition.clone())
                        .desired_count(s.desired_count)
                        .running_count(0)
                        .rollout_state(DeploymentRolloutState::InProgress)
                        .set_launch_type(s.launch_type.clone())
                        .set_network_configuration(s.network_configuration.clone())
                        .build();
                    s.deployments
                        .get_or_insert_with(Vec::new)
                        .insert(0, deployment);
                }
                Ok(UpdateServiceOutput::builder()
                    .service(s.services[i].clone())
                    .build())
            }),
            j.on(w, "DeleteService", mock!(Client::delete_service), |s, r, _| {
                use aws_sdk_ecs::operation::delete_service::{DeleteServiceError, DeleteServiceOutput};
                let cluster = r.cluster().unwrap_or("default");
                let name = r.service().unwrap_or_default();
                let Some(i) = live_service(s, cluster, name) else {
                    return Err(DeleteServiceError::generic(error(
                        "ServiceNotFoundException",
                        "Service not found.",
                    )));
                };
                let s = &mut s.services[i];
                if s.desired_count > 0 && r.force() != Some(true) {
                    return Err(DeleteServiceError::generic(error(
                        "InvalidParameterException",
                        "The service cannot be stopped while it is scaled above 0.",
                    )));
                }
                s.status = Some("DRAINING".into());
                s.desired_count = 0;
                Ok(DeleteServiceOutput::builder().service(s.clone()).build())
            }),
            j.on(w, "ListServices", mock!(Client::list_services), |s, r, _| {
                use aws_sdk_ecs::operation::list_services::{ListServicesError, ListServicesOutput};
                let cluster = r.cluster().unwrap_or("default");
                let name = cluster.rsplit("cluster/").next().unwrap_or(cluster);
                if !s.cluster_active(name) {
                    return Err(ListServicesError::generic(no_cluster()));
                }
                let arn = cluster_arn(name);
                let arns = s
                    .services
                    .iter()
                    .filter(|x| x.cluster_arn() == Some(arn.as_str()))
                    .filter(|x| x.status() != Some("INACTIVE"))
                    .filter_map(|x| x.service_arn().map(str::to_string))
                    .collect();
                Ok(ListServicesOutput::builder()
                    .set_service_arns(Some(arns))
                    .build())
            }),
            j.on(w, "ListTasks", mock!(Client::list_tasks), |_, _, _| {
                Ok(aws_sdk_ecs::operation::list_tasks::ListTasksOutput::builder().build())
            }),
            j.on(w, "DescribeTasks", mock!(Client::describe_tasks), |_, _, _| {
                Ok(aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput::builder().build())
            }),
            j.on(w, "TagResource", mock!(Client::tag_resource), |s, r, _| {
                use aws_sdk_ecs::operation::tag_resource::{TagResourceError, TagResourceOutput};
                match ecs_tags(s, r.resource_arn().unwrap_or_default()) {
                    Some(tags) => {
                        retag(tags, r.tags(), &[], |t| t.key());
                        Ok(TagResourceOutput::builder().build())
                    }
                    None => Err(TagResourceError::generic(error(
                        "ResourceNotFoundException",
                        "The specified resource could not be found.",
                    ))),
                }
            }),
            j.on(w, "UntagResource", mock!(Client::untag_resource), |s, r, _| {
                use aws_sdk_ecs::operation::untag_resource::{UntagResourceError, UntagResourceOutput};
                match ecs_tags(s, r.resource_arn().unwrap_or_default()) {
                    Some(tags) => {
                        retag(tags, &[], r.tag_keys(), |t| t.key());
                        Ok(UntagResourceOutput::builder().build())
                    }
                    None => Err(UntagResourceError::generic(error(
                        "ResourceNotFoundException",
                        "The specified resource could not be found.",
                    ))),
                }
            }),
        ]
    }
}
