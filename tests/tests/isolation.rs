//! Isolation between stacks, end to end against the local AWS emulator.
//!
//! * Two `prod` stacks (HTTP only), deployed concurrently through one deployer into the same
//!   region, each end up with exactly the inventory of a stack deployed alone: nothing shared,
//!   duplicated or adopted, and neither plan mentions the other stack. Destroying one leaves the
//!   other's inventory as it was; the other then plans no change, and redeploying it makes no
//!   mutating call.
//! * A resource that has one of a stack's deterministic names but not its owner tag
//!   (`ecs:stack=<stack>`) belongs to someone else. For an ECR repository, an ECS cluster, an
//!   IAM role, a log group and a target group made beforehand with plain SDK calls: `plan` and
//!   `deploy` fail with a conflict naming it; the deploy fails before it makes anything (every
//!   layer is read before any change); neither the failed deploy nor `destroy` changes it, and
//!   no call that would change or delete a resource of its kind is made; `destroy` succeeds
//!   without listing it as deleted or kept (nothing tagged with the stack remains).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use ecs_core::testing::CallCounter;
use ecs_core::{Clock, EventLog, TokioClock};
use ecs_e2e_tests::{emulator, inventory, log_group_tags, nothing, Sdk};
use ecs_facade::testing::emulator_layers;
use ecs_facade::{Deployer, DestroyOptions, DestroyReport, Plan, Stack};
use ecs_service::ServiceNames;

const ALL: DestroyOptions = DestroyOptions::everything();

/// A trust policy that is not the stack's (its roles trust `ecs-tasks.amazonaws.com`).
const EC2_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The same stack as in `faults.rs`: `prod` (a NAT per zone, autoscaling, six alarms, the
/// dashboard), HTTP only, as the emulator holds no certificate for it.
fn stack(name: &str) -> Stack {
    Stack::from_manifest(&format!(
        "name: {name}\nprofile: prod\nimage: nginx:1.27\nport: 8080\nalarms:\n  actions: [arn:aws:sns:us-east-1:123456789012:ops]\n"
    ))
    .unwrap()
}

async fn deployer(counter: &CallCounter) -> Deployer {
    ecs_e2e_tests::sns_topic("ops").await;
    Deployer::from_layers(emulator_layers(emulator(), counter).await).events(EventLog::new())
}

/// Tags as a sorted list of `key=value`, for snapshots (`[]` when there are none).
fn tag_list<'a>(tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> String {
    let mut list: Vec<String> = tags
        .into_iter()
        .map(|(k, v)| format!("{}={}", k.unwrap_or_default(), v.unwrap_or_default()))
        .collect();
    list.sort();
    format!("{list:?}")
}

/// The entries of `plan` whose id or detail mentions `needle`.
fn mentioning(plan: &Plan, needle: &str) -> Vec<String> {
    plan.changes()
        .iter()
        .filter(|c| c.id.contains(needle) || c.detail.contains(needle))
        .map(|c| format!("{} {} ({})", c.resource, c.id, c.detail))
        .collect()
}

#[tokio::test]
async fn concurrent_stacks_in_one_region_never_touch_each_other() {
    let counter = CallCounter::new();
    let d = deployer(&counter).await;

    // The reference: one stack deployed alone.
    let reference = stack("iso-ref");
    let alone = d.deploy(&reference).await.unwrap();
    let clean = inventory("iso-ref").await;
    assert!(clean.values().sum::<usize>() > 20, "{clean:?}");
    for (kind, n) in [
        ("vpc", 1),
        ("nat-gateway", 2),
        ("repository", 1),
        ("role", 2),
        ("cluster", 1),
        ("task-definition", 1),
        ("service", 1),
        ("load-balancer", 1),
        ("listener", 1),
        ("target-group", 1),
        ("alarm", 6),
        ("dashboard", 1),
        ("log-group", 1),
        ("scalable-target", 1),
    ] {
        assert_eq!(
            clean.get(kind),
            Some(&n),
            "{kind} of a stack deployed alone: {clean:?}"
        );
    }
    let alone_summary = alone.changes.summary();
    assert_eq!(alone_summary.delete, 0, "{}", alone.changes);
    d.destroy(&reference, ALL).await.unwrap();
    let left = inventory("iso-ref").await;
    assert!(nothing(&left), "destroy of iso-ref left {left:?}");

    // Two stacks at once, through the same deployer and clients.
    let (a, b) = (stack("iso-a"), stack("iso-b"));
    let (ra, rb) = tokio::join!(d.deploy(&a), d.deploy(&b));
    let ra = ra.unwrap_or_else(|e| panic!("iso-a failed while iso-b deployed: {e}"));
    let rb = rb.unwrap_or_else(|e| panic!("iso-b failed while iso-a deployed: {e}"));
    for (name, report) in [("iso-a", &ra), ("iso-b", &rb)] {
        assert_eq!(
            report.changes.summary(),
            alone_summary,
            "{name} deployed next to another stack planned differently from a stack alone:\n{}",
            report.changes
        );
    }
    assert_eq!(
        mentioning(&ra.changes, "iso-b"),
        Vec::<String>::new(),
        "iso-a's deploy names iso-b's resources"
    );
    assert_eq!(
        mentioning(&rb.changes, "iso-a"),
        Vec::<String>::new(),
        "iso-b's deploy names iso-a's resources"
    );
    let (oa, ob) = (&ra.outputs, &rb.outputs);
    assert_ne!(oa.network.vpc_id, ob.network.vpc_id);
    assert_ne!(oa.service.cluster_arn, ob.service.cluster_arn);
    assert_ne!(oa.service.service_arn, ob.service.service_arn);
    assert_ne!(oa.service.load_balancer_arn, ob.service.load_balancer_arn);
    assert_ne!(oa.log_group, ob.log_group);
    let inv_a = inventory("iso-a").await;
    let inv_b = inventory("iso-b").await;
    assert_eq!(
        inv_a, clean,
        "iso-a, deployed next to iso-b, differs from a stack deployed alone"
    );
    assert_eq!(
        inv_b, clean,
        "iso-b, deployed next to iso-a, differs from a stack deployed alone"
    );

    // Destroying iso-a deletes only iso-a's resources.
    let destroyed = d.destroy(&a, ALL).await.unwrap();
    assert!(
        destroyed.deleted.summary().delete > 20,
        "{}",
        destroyed.deleted
    );
    for needle in ["iso-b", ob.network.vpc_id.as_str()] {
        assert_eq!(
            mentioning(&destroyed.deleted, needle),
            Vec::<String>::new(),
            "iso-a's destroy names {needle}"
        );
    }
    let left = inventory("iso-a").await;
    assert!(nothing(&left), "destroy of iso-a left {left:?}");
    assert_eq!(
        inventory("iso-b").await,
        inv_b,
        "destroying iso-a changed iso-b's inventory"
    );
    let status = d.status(&b).await.unwrap();
    assert_eq!(
        status.service.as_ref().map(|s| s.status.as_str()),
        Some("ACTIVE"),
        "{status:?}"
    );

    // iso-b is exactly as it was: nothing to plan, nothing to do.
    counter.reset();
    let plan = d.plan(&b).await.unwrap();
    assert!(plan.is_empty(), "iso-b after iso-a's destroy: {plan}");
    let again = d.deploy(&b).await.unwrap();
    assert!(again.changes.is_empty(), "{}", again.changes);
    assert_eq!(
        counter.mutating(),
        vec![],
        "a no-op redeploy of iso-b after iso-a's destroy must not mutate"
    );
    assert_eq!(again.outputs.network.vpc_id, ob.network.vpc_id);
    assert_eq!(again.outputs.service.service_arn, ob.service.service_arn);

    d.destroy(&b, ALL).await.unwrap();
    for name in ["iso-a", "iso-b"] {
        let left = inventory(name).await;
        assert!(nothing(&left), "{name} left {left:?}");
    }
}

/// A resource someone else made, with one of the stack's names and without its tag.
#[derive(Debug, Clone, Copy)]
enum Foreign {
    Repository,
    Cluster,
    Role,
    LogGroup,
    TargetGroup,
}

impl Foreign {
    /// The kind the layers report in a conflict, and the stack's name for the resource.
    fn target(self, names: &ServiceNames) -> (&'static str, String) {
        match self {
            Foreign::Repository => ("ecr-repository", names.repository.clone()),
            Foreign::Cluster => ("ecs-cluster", names.cluster.clone()),
            Foreign::Role => ("iam-role", names.execution_role.clone()),
            Foreign::LogGroup => ("log-group", names.log_group.clone()),
            Foreign::TargetGroup => ("target-group", names.target_group.clone()),
        }
    }

    /// The literal name, to check the naming the test relies on.
    fn expected_name(self, stack: &str) -> String {
        match self {
            Foreign::Repository | Foreign::TargetGroup => format!("{stack}-app"),
            Foreign::Cluster => stack.to_string(),
            Foreign::Role => format!("{stack}-execution"),
            Foreign::LogGroup => format!("/ecs/{stack}"),
        }
    }

    /// Operations that would change or delete a resource of this kind. The stack has one
    /// resource of each of these kinds, the foreign one, so none may ever be called — except
    /// for roles, where the stack's other role (the task role) may be created and deleted.
    fn forbidden(self) -> &'static [&'static str] {
        match self {
            Foreign::Repository => &[
                "CreateRepository",
                "PutImageTagMutability",
                "PutImageScanningConfiguration",
                "PutLifecyclePolicy",
                "DeleteLifecyclePolicy",
                "SetRepositoryPolicy",
                "DeleteRepository",
            ],
            Foreign::Cluster => &[
                "CreateCluster",
                "UpdateCluster",
                "UpdateClusterSettings",
                "PutClusterCapacityProviders",
                "DeleteCluster",
            ],
            Foreign::Role => &[
                "UpdateAssumeRolePolicy",
                "AttachRolePolicy",
                "DetachRolePolicy",
                "PutRolePolicy",
                "DeleteRolePolicy",
                "TagRole",
                "UntagRole",
                "UpdateRole",
                "UpdateRoleDescription",
            ],
            Foreign::LogGroup => &[
                "CreateLogGroup",
                "PutRetentionPolicy",
                "DeleteRetentionPolicy",
                "AssociateKmsKey",
                "DisassociateKmsKey",
                "DeleteLogGroup",
            ],
            Foreign::TargetGroup => &[
                "CreateTargetGroup",
                "ModifyTargetGroup",
                "ModifyTargetGroupAttributes",
                "RegisterTargets",
                "DeregisterTargets",
                "AddTags",
                "RemoveTags",
                "DeleteTargetGroup",
            ],
        }
    }

    /// Makes it with plain SDK calls, untagged, with settings the stack would change.
    async fn create(self, sdk: &Sdk, name: &str) {
        match self {
            Foreign::Repository => {
                sdk.ecr
                    .create_repository()
                    .repository_name(name)
                    .image_tag_mutability(ImageTagMutability::Mutable)
                    .image_scanning_configuration(
                        ImageScanningConfiguration::builder()
                            .scan_on_push(false)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            Foreign::Cluster => {
                sdk.ecs
                    .create_cluster()
                    .cluster_name(name)
                    .settings(
                        ClusterSetting::builder()
                            .name(ClusterSettingName::ContainerInsights)
                            .value("disabled")
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            Foreign::Role => {
                sdk.iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(EC2_TRUST)
                    .description("someone else's role")
                    .send()
                    .await
                    .unwrap();
            }
            Foreign::LogGroup => {
                sdk.logs
                    .create_log_group()
                    .log_group_name(name)
                    .send()
                    .await
                    .unwrap();
            }
            Foreign::TargetGroup => {
                // In a VPC of its own (not the stack's), on another port and health check.
                let vpc = sdk
                    .ec2
                    .create_vpc()
                    .cidr_block("10.99.0.0/16")
                    .send()
                    .await
                    .unwrap();
                let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
                sdk.elb
                    .create_target_group()
                    .name(name)
                    .protocol(ProtocolEnum::Http)
                    .port(9090)
                    .vpc_id(vpc)
                    .target_type(TargetTypeEnum::Ip)
                    .health_check_path("/foreign")
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Everything about it the stack could change, as text.
    async fn snapshot(self, sdk: &Sdk, name: &str) -> BTreeMap<&'static str, String> {
        match self {
            Foreign::Repository => {
                let found = sdk
                    .ecr
                    .describe_repositories()
                    .repository_names(name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("repository `{name}` is gone: {e:?}"));
                let r = found
                    .repositories()
                    .first()
                    .unwrap_or_else(|| panic!("repository `{name}` is gone"));
                let tags = sdk
                    .ecr
                    .list_tags_for_resource()
                    .resource_arn(r.repository_arn().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
                let lifecycle = match sdk
                    .ecr
                    .get_lifecycle_policy()
                    .repository_name(name)
                    .send()
                    .await
                {
                    Ok(p) => p.lifecycle_policy_text().unwrap_or_default().to_string(),
                    Err(e) => format!("none ({})", e.code().unwrap_or("?")),
                };
                BTreeMap::from([
                    ("arn", format!("{:?}", r.repository_arn())),
                    (
                        "mutability",
                        format!("{:?}", r.image_tag_mutability().map(|m| m.as_str())),
                    ),
                    (
                        "scan_on_push",
                        format!(
                            "{:?}",
                            r.image_scanning_configuration().map(|c| c.scan_on_push())
                        ),
                    ),
                    ("encryption", format!("{:?}", r.encryption_configuration())),
                    ("lifecycle", lifecycle),
                    (
                        "tags",
                        tag_list(tags.tags().iter().map(|t| (Some(t.key()), Some(t.value())))),
                    ),
                ])
            }
            Foreign::Cluster => {
                let out = sdk
                    .ecs
                    .describe_clusters()
                    .clusters(name)
                    .include(ClusterField::Tags)
                    .include(ClusterField::Settings)
                    .send()
                    .await
                    .unwrap();
                let c = out
                    .clusters()
                    .iter()
                    .find(|c| c.cluster_name() == Some(name))
                    .unwrap_or_else(|| panic!("cluster `{name}` is gone: {out:?}"));
                BTreeMap::from([
                    ("arn", format!("{:?}", c.cluster_arn())),
                    ("status", format!("{:?}", c.status())),
                    ("settings", format!("{:?}", c.settings())),
                    (
                        "capacity_providers",
                        format!("{:?}", c.capacity_providers()),
                    ),
                    (
                        "default_strategy",
                        format!("{:?}", c.default_capacity_provider_strategy()),
                    ),
                    (
                        "tags",
                        tag_list(c.tags().iter().map(|t| (t.key(), t.value()))),
                    ),
                ])
            }
            Foreign::Role => {
                let got = sdk
                    .iam
                    .get_role()
                    .role_name(name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("role `{name}` is gone: {e:?}"));
                let role = got
                    .role()
                    .unwrap_or_else(|| panic!("role `{name}` is gone"));
                let inline = sdk
                    .iam
                    .list_role_policies()
                    .role_name(name)
                    .send()
                    .await
                    .unwrap();
                let attached = sdk
                    .iam
                    .list_attached_role_policies()
                    .role_name(name)
                    .send()
                    .await
                    .unwrap();
                let attached: Vec<Option<&str>> = attached
                    .attached_policies()
                    .iter()
                    .map(|p| p.policy_arn())
                    .collect();
                BTreeMap::from([
                    ("arn", role.arn().to_string()),
                    (
                        "trust",
                        role.assume_role_policy_document()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                    ("description", format!("{:?}", role.description())),
                    ("inline_policies", format!("{:?}", inline.policy_names())),
                    ("attached_policies", format!("{attached:?}")),
                    (
                        "tags",
                        tag_list(role.tags().iter().map(|t| (Some(t.key()), Some(t.value())))),
                    ),
                ])
            }
            Foreign::LogGroup => {
                let out = sdk
                    .logs
                    .describe_log_groups()
                    .log_group_name_prefix(name)
                    .send()
                    .await
                    .unwrap();
                let g = out
                    .log_groups()
                    .iter()
                    .find(|g| g.log_group_name() == Some(name))
                    .unwrap_or_else(|| panic!("log group `{name}` is gone: {out:?}"));
                let tags = log_group_tags(sdk, g).await;
                BTreeMap::from([
                    ("arn", format!("{:?}", g.log_group_arn().or(g.arn()))),
                    ("retention_days", format!("{:?}", g.retention_in_days())),
                    ("kms_key", format!("{:?}", g.kms_key_id())),
                    (
                        "tags",
                        tag_list(
                            tags.iter()
                                .map(|(k, v)| (Some(k.as_str()), Some(v.as_str()))),
                        ),
                    ),
                ])
            }
            Foreign::TargetGroup => {
                let out = sdk
                    .elb
                    .describe_target_groups()
                    .names(name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("target group `{name}` is gone: {e:?}"));
                let tg = out
                    .target_groups()
                    .first()
                    .unwrap_or_else(|| panic!("target group `{name}` is gone"));
                let arn = tg.target_group_arn().unwrap_or_default();
                let tags = sdk
                    .elb
                    .describe_tags()
                    .resource_arns(arn)
                    .send()
                    .await
                    .unwrap();
                let attributes = sdk
                    .elb
                    .describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .unwrap();
                let mut attributes: Vec<String> = attributes
                    .attributes()
                    .iter()
                    .map(|a| {
                        format!(
                            "{}={}",
                            a.key().unwrap_or_default(),
                            a.value().unwrap_or_default()
                        )
                    })
                    .collect();
                attributes.sort();
                BTreeMap::from([
                    ("arn", arn.to_string()),
                    ("vpc", format!("{:?}", tg.vpc_id())),
                    ("protocol", format!("{:?}", tg.protocol())),
                    ("port", format!("{:?}", tg.port())),
                    ("target_type", format!("{:?}", tg.target_type())),
                    ("health_check_path", format!("{:?}", tg.health_check_path())),
                    ("load_balancers", format!("{:?}", tg.load_balancer_arns())),
                    ("attributes", format!("{attributes:?}")),
                    (
                        "tags",
                        tag_list(
                            tags.tag_descriptions()
                                .iter()
                                .flat_map(|d| d.tags())
                                .map(|t| (t.key(), t.value())),
                        ),
                    ),
                ])
            }
        }
    }

    /// The snapshot shows what `create` made (so that "unchanged" means something).
    fn assert_as_created(self, s: &BTreeMap<&'static str, String>) {
        assert_eq!(s["tags"], "[]", "{self:?} was made without tags: {s:?}");
        match self {
            Foreign::Repository => {
                assert_eq!(s["mutability"], r#"Some("MUTABLE")"#, "{s:?}");
                assert_eq!(s["scan_on_push"], "Some(false)", "{s:?}");
                assert!(s["lifecycle"].starts_with("none"), "{s:?}");
            }
            Foreign::Cluster => {
                assert_eq!(s["status"], r#"Some("ACTIVE")"#, "{s:?}");
                assert!(s["settings"].contains("disabled"), "{s:?}");
                assert_eq!(s["capacity_providers"], "[]", "{s:?}");
            }
            Foreign::Role => {
                assert!(
                    s["trust"].contains("ec2.amazonaws.com") && !s["trust"].contains("ecs-tasks"),
                    "{s:?}"
                );
                assert_eq!(s["inline_policies"], "[]", "{s:?}");
                assert_eq!(s["attached_policies"], "[]", "{s:?}");
            }
            Foreign::LogGroup => assert_eq!(s["retention_days"], "None", "{s:?}"),
            Foreign::TargetGroup => {
                assert_eq!(s["port"], "Some(9090)", "{s:?}");
                assert_eq!(s["health_check_path"], r#"Some("/foreign")"#, "{s:?}");
                assert_eq!(s["load_balancers"], "[]", "{s:?}");
            }
        }
    }

    /// Removes it with plain SDK calls, so the emulator is left clean.
    async fn remove(self, sdk: &Sdk, name: &str) {
        match self {
            Foreign::Repository => {
                sdk.ecr
                    .delete_repository()
                    .repository_name(name)
                    .force(true)
                    .send()
                    .await
                    .unwrap();
            }
            Foreign::Cluster => {
                sdk.ecs.delete_cluster().cluster(name).send().await.unwrap();
            }
            Foreign::Role => {
                sdk.iam.delete_role().role_name(name).send().await.unwrap();
            }
            Foreign::LogGroup => {
                sdk.logs
                    .delete_log_group()
                    .log_group_name(name)
                    .send()
                    .await
                    .unwrap();
            }
            Foreign::TargetGroup => {
                let out = sdk
                    .elb
                    .describe_target_groups()
                    .names(name)
                    .send()
                    .await
                    .unwrap();
                let tg = &out.target_groups()[0];
                sdk.elb
                    .delete_target_group()
                    .target_group_arn(tg.target_group_arn().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
                sdk.ec2
                    .delete_vpc()
                    .vpc_id(tg.vpc_id().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// `err` is the conflict on `kind` `name` for `stack`, from whichever layer reports it, and its
/// message says so.
fn assert_conflict(err: &ecs_facade::Error, kind: &str, name: &str, stack: &str) {
    let found = match err {
        ecs_facade::Error::Service(ecs_service::Error::Foreign(f))
        | ecs_facade::Error::Observe(ecs_observe::Error::Foreign(f)) => {
            Some((f.kind, f.name.as_str(), f.stack.as_str()))
        }
        _ => None,
    };
    assert_eq!(
        found,
        Some((kind, name, stack)),
        "expected the conflict on {kind} `{name}`, got: {err} ({err:?})"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("`{name}`"))
            && text.contains("already exists and is not owned by stack"),
        "{text}"
    );
}

/// Destroy neither deletes the foreign resource nor reports it as kept (with both options on,
/// nothing is kept at all).
fn assert_not_listed(report: &DestroyReport, kind: &str, name: &str) {
    assert!(
        report.deleted.find(kind, name).is_none(),
        "destroy deletes {kind} `{name}`, which is not the stack's:\n{}",
        report.deleted
    );
    assert_eq!(report.kept, Vec::<String>::new(), "{report:?}");
}

/// When one branch of the deploy fails, the concurrent branches are dropped; a request one of
/// them had already sent still completes on the emulator. Let those land before reading.
async fn settle() {
    TokioClock.sleep(Duration::from_secs(1)).await;
}

async fn name_collision(stack_name: &str, foreign: Foreign) {
    let sdk = Sdk::new().await;
    let s = stack(stack_name);
    let names = ServiceNames::new(
        &s.stack_name().expect("valid stack name"),
        &s.service_spec(),
    );
    let (kind, name) = foreign.target(&names);
    assert_eq!(name, foreign.expected_name(stack_name), "{names:?}");
    foreign.create(&sdk, &name).await;
    let before = foreign.snapshot(&sdk, &name).await;
    foreign.assert_as_created(&before);

    let counter = CallCounter::new();
    let d = deployer(&counter).await;

    // Planning finds the name taken by someone else, says so, and changes nothing.
    let err = d
        .plan(&s)
        .await
        .expect_err("the plan must report the conflict");
    assert_conflict(&err, kind, &name, stack_name);
    assert_eq!(counter.mutating(), vec![], "planning must not mutate");

    // Deploying stops at the same conflict and leaves the resource as it was.
    let err = d
        .deploy(&s)
        .await
        .expect_err("the deploy must stop at the conflict");
    assert_conflict(&err, kind, &name, stack_name);
    settle().await;
    assert_eq!(
        foreign.snapshot(&sdk, &name).await,
        before,
        "the failed deploy changed {kind} `{name}`"
    );
    let partial = inventory(stack_name).await;
    // Every layer is read before anything is changed: the conflict stops the deploy before
    // it makes anything at all.
    assert!(
        partial.values().all(|n| *n == 0),
        "the deploy made something before it found the conflict: {partial:?}"
    );

    // Destroy removes what the stack made and nothing else.
    let preview = d.plan_destroy(&s, ALL).await.unwrap();
    assert_not_listed(&preview, kind, &name);
    let report = d
        .destroy(&s, ALL)
        .await
        .unwrap_or_else(|e| panic!("destroy of {stack_name} failed: {e}"));
    assert_not_listed(&report, kind, &name);
    assert_eq!(
        foreign.snapshot(&sdk, &name).await,
        before,
        "destroy changed {kind} `{name}`"
    );
    let touching: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .filter(|op| foreign.forbidden().contains(&op.as_str()))
        .collect();
    assert_eq!(
        touching,
        Vec::<String>::new(),
        "calls that change a {kind} were made while the only one is someone else's"
    );
    let left = inventory(stack_name).await;
    assert!(
        nothing(&left),
        "destroy left resources tagged with {stack_name}: {left:?}"
    );

    foreign.remove(&sdk, &name).await;
}

#[tokio::test]
async fn a_foreign_repository_with_the_stack_name_is_reported_and_never_touched() {
    name_collision("iso-repo", Foreign::Repository).await;
}

#[tokio::test]
async fn a_foreign_cluster_with_the_stack_name_is_reported_and_never_touched() {
    name_collision("iso-cluster", Foreign::Cluster).await;
}

#[tokio::test]
async fn a_foreign_execution_role_with_the_stack_name_is_reported_and_never_touched() {
    name_collision("iso-role", Foreign::Role).await;
}

#[tokio::test]
async fn a_foreign_log_group_with_the_stack_name_is_reported_and_never_touched() {
    name_collision("iso-logs", Foreign::LogGroup).await;
}

#[tokio::test]
async fn a_foreign_target_group_with_the_stack_name_is_reported_and_never_touched() {
    name_collision("iso-tg", Foreign::TargetGroup).await;
}
