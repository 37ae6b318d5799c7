//! The task definition. The spec is rendered into the same SDK type `DescribeTaskDefinition`
//! returns, and both go through one canonical form ([`canonical`]) that ignores order
//! (environment, secrets, ports, volumes, ulimits, mount points) and AWS's defaults, so a new
//! revision is registered only when something that matters differs. A revision is never
//! changed: the kind's update registers a new one when the definition differs (its typed
//! diff: [`TaskDefDiff::Definition`]), and only sets the revision's tags back when nothing
//! else does.
//!
//! **Revisions registered outside the stack.** A CI pipeline that runs `aws ecs
//! register-task-definition` then `update-service` leaves an untagged newest revision, which
//! the service runs. The family is the stack's when one of its revisions carries the stack's
//! tag or the stack's own service runs one of them, never merely because of its name (another
//! team's family of the same name stays foreign and untouched). The definition is compared
//! with the revision the service runs (the latest active one when the service runs none of the
//! family's), and the plan says when that revision came from outside and when the manifest
//! would put its own image back over the one CI released. Such a revision's tags are left as
//! they are (it is not the stack's to tag); destroy deregisters every active revision of an
//! owned family, the stack's and the others.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, EfsAuthorizationConfig,
    EfsAuthorizationConfigIam, EfsTransitEncryption, EfsVolumeConfiguration, EphemeralStorage,
    HealthCheck, KeyValuePair, LogConfiguration, LogDriver, MountPoint, NetworkMode, OsFamily,
    PortMapping, RuntimePlatform, Secret, SortOrder, TaskDefinition, TaskDefinitionField,
    TaskDefinitionStatus, TransportProtocol, Ulimit, UlimitName, Volume,
};
use aws_sdk_ecs::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Planned, Resource};
use ecs_core::{Change, Context, FieldDiff, TagDiff, Tags};
use serde_json::{json, Map, Value};

use crate::names::ServiceNames;
use crate::spec::ServiceSpec;
use crate::{tagging, Error, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "task-definition";

/// The family as read: the revision the definition is compared with (the one the stack's
/// service runs, else the latest active one) and what decides whether the family is the
/// stack's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveTaskDef {
    /// The compared revision's ARN.
    pub(crate) arn: String,
    /// The compared revision.
    pub(crate) definition: TaskDefinition,
    /// The compared revision's tags.
    pub(crate) tags: Tags,
    /// The number of the family's latest active revision (a new one is this plus one).
    pub(crate) latest: i32,
    /// The family's ownership rule: one of its revisions carries the stack's tag, or the
    /// stack's own service runs one of them.
    pub(crate) owned: bool,
    /// The compared revision does not carry the stack's tag: it was registered outside the
    /// stack (by a CI pipeline, say).
    pub(crate) outside: bool,
    /// The compared revision is the one the stack's service runs.
    pub(crate) running: bool,
    /// The compared revision was registered by an image-only release
    /// ([`ServiceLayer::release_image`](crate::ServiceLayer::release_image)): the stack's, but
    /// its image is not the manifest's.
    pub(crate) released: bool,
}

/// The tag that marks a revision an image-only release registered, with [`RELEASED`].
pub(crate) const ORIGIN_TAG: &str = "ecs:origin";
/// The value of [`ORIGIN_TAG`] on a revision an image-only release registered.
pub(crate) const RELEASED: &str = "image-release";

/// Why a family is not the stack's, in [`Foreign`](ecs_core::resource::Foreign) errors.
pub(crate) const NOT_OWNED: &str =
    "none of its revisions carries the stack's tag and the stack's service runs none of them";

/// The image value that keeps whatever image the service runs in that container: for teams
/// whose CI pipeline owns the image (`image: running` in a manifest).
pub const RUNNING_IMAGE: &str = "running";

/// The task definition's logical id (its `ecs:resource` tag).
pub(crate) const LOGICAL: &str = "task-definition";

/// Whether `want` needs a new revision: the latest one (`live`) registers something else.
pub(crate) fn needs_revision(want: &TaskDefinition, live: Option<&LiveTaskDef>) -> bool {
    live.is_none_or(|l| canonical(&l.definition) != canonical(want))
}

/// Renders the spec as a task definition; `execution_role` and `task_role` are ARNs (or, for
/// comparison only, anything ending in `/<role name>`).
pub(crate) fn render(
    spec: &ServiceSpec,
    names: &ServiceNames,
    region: &str,
    execution_role: &str,
    task_role: &str,
) -> TaskDefinition {
    let t = &spec.task;
    let containers = t
        .containers
        .iter()
        .map(|c| {
            let log = LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", &names.log_group)
                .options("awslogs-region", region)
                .options("awslogs-stream-prefix", &spec.name)
                .build()
                .expect("log driver is set");
            ContainerDefinition::builder()
                .name(&c.name)
                .image(&c.image)
                .essential(c.essential)
                .set_port_mappings(Some(
                    c.ports
                        .iter()
                        .map(|p| {
                            PortMapping::builder()
                                .container_port(i32::from(*p))
                                .protocol(TransportProtocol::Tcp)
                                .build()
                        })
                        .collect(),
                ))
                .set_environment(Some(
                    c.environment
                        .0
                        .iter()
                        .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                        .collect(),
                ))
                .set_secrets(Some(
                    c.secrets
                        .iter()
                        .map(|(k, v)| {
                            Secret::builder()
                                .name(k)
                                .value_from(v)
                                .build()
                                .expect("name and value_from are set")
                        })
                        .collect(),
                ))
                .set_health_check(c.health_check.as_ref().map(|h| {
                    HealthCheck::builder()
                        .set_command(Some(h.command.clone()))
                        .interval(h.interval as i32)
                        .timeout(h.timeout as i32)
                        .retries(h.retries as i32)
                        .start_period(h.start_period as i32)
                        .build()
                        .expect("command is set")
                }))
                .set_user(c.user.clone())
                .readonly_root_filesystem(c.readonly_root_filesystem)
                .set_command((!c.command.is_empty()).then(|| c.command.clone()))
                .set_entry_point((!c.entry_point.is_empty()).then(|| c.entry_point.clone()))
                .set_ulimits(Some(
                    c.ulimits
                        .iter()
                        .map(|u| {
                            Ulimit::builder()
                                .name(UlimitName::from(u.name.as_str()))
                                .soft_limit(u.soft)
                                .hard_limit(u.hard)
                                .build()
                                .expect("name and limits are set")
                        })
                        .collect(),
                ))
                .set_mount_points(Some(
                    c.mount_points
                        .iter()
                        .map(|m| {
                            MountPoint::builder()
                                .source_volume(&m.volume)
                                .container_path(&m.path)
                                .read_only(m.read_only)
                                .build()
                        })
                        .collect(),
                ))
                .log_configuration(log)
                .build()
        })
        .collect();
    let volumes = t
        .volumes
        .iter()
        .map(|v| {
            let auth = (v.access_point_id.is_some() || v.iam).then(|| {
                EfsAuthorizationConfig::builder()
                    .set_access_point_id(v.access_point_id.clone())
                    .iam(if v.iam {
                        EfsAuthorizationConfigIam::Enabled
                    } else {
                        EfsAuthorizationConfigIam::Disabled
                    })
                    .build()
            });
            Volume::builder()
                .name(&v.name)
                .efs_volume_configuration(
                    EfsVolumeConfiguration::builder()
                        .file_system_id(&v.file_system_id)
                        .set_root_directory(v.root_directory.clone())
                        .transit_encryption(if v.transit_encryption {
                            EfsTransitEncryption::Enabled
                        } else {
                            EfsTransitEncryption::Disabled
                        })
                        .set_authorization_config(auth)
                        .build()
                        .expect("file system id is set"),
                )
                .build()
        })
        .collect();
    TaskDefinition::builder()
        .family(&names.family)
        .execution_role_arn(execution_role)
        .task_role_arn(task_role)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu(t.cpu.to_string())
        .memory(t.memory.to_string())
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::from(t.architecture.as_str()))
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .set_container_definitions(Some(containers))
        .set_volumes(Some(volumes))
        .set_ephemeral_storage(
            t.ephemeral_storage_gib
                .map(|g| EphemeralStorage::builder().size_in_gib(g as i32).build()),
        )
        .build()
}

fn role_name(arn: Option<&str>) -> Value {
    json!(arn.map(|a| a.rsplit('/').next().unwrap_or(a)))
}

fn sorted(mut items: Vec<Value>) -> Value {
    items.sort_by_key(|v| v.to_string());
    Value::Array(items)
}

/// The canonical form used to compare task definitions: maps keyed by name, sorted lists,
/// AWS's defaults filled in, roles by name.
pub(crate) fn canonical(td: &TaskDefinition) -> Value {
    let containers: Map<String, Value> = td
        .container_definitions()
        .iter()
        .map(|c| {
            let env: BTreeMap<&str, &str> = c
                .environment()
                .iter()
                .map(|kv| (kv.name().unwrap_or_default(), kv.value().unwrap_or_default()))
                .collect();
            let secrets: BTreeMap<&str, &str> =
                c.secrets().iter().map(|s| (s.name(), s.value_from())).collect();
            let health = c.health_check().map(|h| {
                json!({
                    "command": h.command(),
                    "interval": h.interval().unwrap_or(30),
                    "timeout": h.timeout().unwrap_or(5),
                    "retries": h.retries().unwrap_or(3),
                    "start_period": h.start_period().unwrap_or(0),
                })
            });
            let log = c.log_configuration().map(|l| {
                let options: BTreeMap<&String, &String> =
                    l.options().into_iter().flatten().collect();
                json!({ "driver": l.log_driver().as_str(), "options": options })
            });
            let doc = json!({
                "image": c.image(),
                "essential": c.essential().unwrap_or(true),
                "ports": sorted(c.port_mappings().iter().map(|p| json!([p.container_port(), p.protocol().map_or("tcp", |p| p.as_str())])).collect()),
                "environment": env,
                "secrets": secrets,
                "health_check": health,
                "user": c.user(),
                "readonly_root_filesystem": c.readonly_root_filesystem().unwrap_or(false),
                "command": c.command(),
                "entry_point": c.entry_point(),
                "ulimits": sorted(c.ulimits().iter().map(|u| json!([u.name().as_str(), u.soft_limit(), u.hard_limit()])).collect()),
                "mount_points": sorted(c.mount_points().iter().map(|m| json!([m.source_volume(), m.container_path(), m.read_only().unwrap_or(false)])).collect()),
                "log": log,
            });
            (c.name().unwrap_or_default().to_string(), doc)
        })
        .collect();
    let volumes: Map<String, Value> = td
        .volumes()
        .iter()
        .map(|v| {
            let efs = v.efs_volume_configuration().map(|e| {
                let auth = e.authorization_config();
                json!({
                    "file_system_id": e.file_system_id(),
                    "root_directory": e.root_directory().unwrap_or("/"),
                    "transit_encryption": e.transit_encryption() == Some(&EfsTransitEncryption::Enabled),
                    "access_point_id": auth.and_then(|a| a.access_point_id()),
                    "iam": auth.and_then(|a| a.iam()) == Some(&EfsAuthorizationConfigIam::Enabled),
                })
            });
            (v.name().unwrap_or_default().to_string(), json!({ "efs": efs }))
        })
        .collect();
    json!({
        "cpu": td.cpu(),
        "memory": td.memory(),
        "architecture": td
            .runtime_platform()
            .and_then(|r| r.cpu_architecture())
            .map_or("X86_64", |a| a.as_str()),
        "execution_role": role_name(td.execution_role_arn()),
        "task_role": role_name(td.task_role_arn()),
        "ephemeral_storage_gib": td.ephemeral_storage().map(|e| e.size_in_gib()),
        "volumes": volumes,
        "containers": containers,
    })
}

/// The differences between two canonical forms, field by field. Environment values never
/// appear: only the names of the variables that changed.
pub(crate) fn diffs(live: &Value, want: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    let empty = Map::new();
    let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
    for key in [
        "cpu",
        "memory",
        "architecture",
        "execution_role",
        "task_role",
        "ephemeral_storage_gib",
        "volumes",
    ] {
        if live[key] != want[key] {
            out.push(FieldDiff::new(key, &live[key], &want[key]));
        }
    }
    let (lc, wc) = (obj(&live["containers"]), obj(&want["containers"]));
    let names: std::collections::BTreeSet<&String> = lc.keys().chain(wc.keys()).collect();
    for name in names {
        match (lc.get(name), wc.get(name)) {
            (None, Some(_)) => out.push(FieldDiff::new(
                format!("containers.{name}"),
                "absent",
                "added",
            )),
            (Some(_), None) => out.push(FieldDiff::new(
                format!("containers.{name}"),
                "present",
                "removed",
            )),
            (Some(l), Some(w)) => {
                let (l, w) = (
                    l.as_object().unwrap_or(&empty),
                    w.as_object().unwrap_or(&empty),
                );
                for (field, wv) in w {
                    let lv = l.get(field).unwrap_or(&Value::Null);
                    if lv == wv {
                        continue;
                    }
                    if field == "environment" || field == "secrets" {
                        let (lm, wm) = (obj(lv), obj(wv));
                        let keys: std::collections::BTreeSet<&String> =
                            lm.keys().chain(wm.keys()).collect();
                        for k in keys {
                            let state = |m: &Map<String, Value>| {
                                if m.contains_key(k.as_str()) {
                                    "set"
                                } else {
                                    "absent"
                                }
                            };
                            if lm.get(k.as_str()) != wm.get(k.as_str()) {
                                let (old, new) = match (state(&lm), state(&wm)) {
                                    ("set", "set") => ("(hidden)", "(changed)"),
                                    (o, n) => (o, n),
                                };
                                out.push(FieldDiff::new(
                                    format!("containers.{name}.{field}.{k}"),
                                    old,
                                    new,
                                ));
                            }
                        }
                    } else {
                        out.push(FieldDiff::new(format!("containers.{name}.{field}"), lv, wv));
                    }
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// One revision as `DescribeTaskDefinition` returns it, with its tags.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Described {
    pub(crate) arn: String,
    pub(crate) definition: TaskDefinition,
    pub(crate) tags: Tags,
}

/// Describes `task_definition` (a family, for its latest active revision, or a revision's
/// ARN) with its tags: `None` when there is no such revision, or the family has no active one.
pub(crate) async fn describe(
    ctx: &Context,
    ecs: &Client,
    task_definition: &str,
) -> Result<Option<Described>> {
    let family = family_of(task_definition).unwrap_or(task_definition);
    let out = match ctx
        .call(
            "DescribeTaskDefinition",
            &format!("{KIND} {family}"),
            || {
                ecs.describe_task_definition()
                    .task_definition(task_definition)
                    .include(TaskDefinitionField::Tags)
                    .send()
            },
        )
        .await
    {
        // ECS answers ClientException for a family without active revisions.
        Err(e) if e.is_code("ClientException") && e.message().contains("task definition") => {
            return Ok(None)
        }
        other => other?,
    };
    let Some(td) = out.task_definition() else {
        return Ok(None);
    };
    if td.status() == Some(&TaskDefinitionStatus::Inactive) && family == task_definition {
        return Ok(None);
    }
    Ok(Some(Described {
        arn: td.task_definition_arn().unwrap_or_default().to_string(),
        definition: td.clone(),
        tags: Tags::from_pairs(out.tags().iter().map(|t| (t.key(), t.value()))),
    }))
}

/// The family as the stack sees it, from its latest active revision (`latest`, read by
/// [`describe`] of the family, beside the service) and the revision the stack's own service runs (`service_runs`, `None` when
/// there is no such service). Calls AWS only when the answer is not in hand: to describe the
/// running revision when it is not the latest, and to look for a revision with the stack's
/// tag when neither the latest carries it nor the service runs the family. Whether the family
/// is the stack's is the engine's check ([`TaskDef`]'s mark is [`LiveTaskDef::owned`]).
pub(crate) async fn resolve(
    ctx: &Context,
    ecs: &Client,
    family: &str,
    latest: Option<Described>,
    service_runs: Option<&str>,
) -> Result<Option<LiveTaskDef>> {
    let Some(latest) = latest else {
        return Ok(None);
    };
    let mine = |tags: &Tags| ctx.owns(tags.iter().map(|(k, v)| (Some(k), Some(v))));
    let runs = service_runs.filter(|arn| family_of(arn) == Some(family));
    let base = match runs {
        Some(arn) if arn != latest.arn => describe(ctx, ecs, arn).await?,
        _ => None,
    };
    let running = runs.is_some_and(|arn| base.is_some() || arn == latest.arn);
    let base = base.unwrap_or_else(|| latest.clone());
    let owned = runs.is_some()
        || mine(&base.tags)
        || mine(&latest.tags)
        || tagged_revision(ctx, ecs, family, &[&latest.arn, &base.arn]).await?;
    Ok(Some(LiveTaskDef {
        outside: !mine(&base.tags),
        released: mine(&base.tags) && base.tags.get(ORIGIN_TAG) == Some(RELEASED),
        latest: latest.definition.revision(),
        arn: base.arn,
        definition: base.definition,
        tags: base.tags,
        owned,
        running,
    }))
}

/// Whether an active revision of `family` other than those in `seen` carries the stack's
/// tag: described newest first, a few at a time, stopping at the first that does.
async fn tagged_revision(ctx: &Context, ecs: &Client, family: &str, seen: &[&str]) -> Result<bool> {
    let arns = active_revisions(ctx, ecs, family).await?;
    let rest: Vec<&String> = arns
        .iter()
        .filter(|a| !seen.contains(&a.as_str()))
        .collect();
    for batch in rest.chunks(8) {
        let found =
            futures_util::future::try_join_all(batch.iter().map(|a| describe(ctx, ecs, a))).await?;
        if found
            .iter()
            .flatten()
            .any(|d| ctx.owns(d.tags.iter().map(|(k, v)| (Some(k), Some(v)))))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The task definition as desired: the revision the spec renders, and its tags.
#[derive(Debug, Clone)]
pub(crate) struct TaskDef {
    pub(crate) want: TaskDefinition,
    pub(crate) tags: Tags,
}

/// One typed difference of the task definition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TaskDefDiff {
    /// A field of the definition (a path in its canonical form, environment values hidden):
    /// any of them registers a new revision.
    Definition(FieldDiff),
    /// The latest revision's tags, when nothing else differs (`TagResource` /
    /// `UntagResource`).
    Tags(TagDiff),
}

impl Diff for TaskDefDiff {
    fn field(&self) -> FieldDiff {
        match self {
            TaskDefDiff::Definition(f) => f.clone(),
            TaskDefDiff::Tags(t) => t.field(),
        }
    }
}

/// The revision a task definition step leaves in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Revision {
    /// Its ARN.
    pub(crate) arn: String,
    /// Whether this run registered it.
    pub(crate) new: bool,
}

impl TaskDef {
    fn family(&self) -> &str {
        self.want.family().unwrap_or_default()
    }

    /// Registers the definition as a new revision of its family, with its tags: every field
    /// `RegisterTaskDefinition` takes, so that a copy of a described revision (an image-only
    /// release) loses nothing the tool does not model.
    pub(crate) async fn register(&self, ctx: &Context, ecs: &Client) -> Result<Revision> {
        let want = &self.want;
        let tags = self
            .tags
            .to_sdk(|k, v| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
        let out = ctx
            .call(
                "RegisterTaskDefinition",
                &format!("{KIND} {}", self.family()),
                || {
                    ecs.register_task_definition()
                        .family(self.family())
                        .set_execution_role_arn(want.execution_role_arn().map(str::to_string))
                        .set_task_role_arn(want.task_role_arn().map(str::to_string))
                        .network_mode(want.network_mode().cloned().unwrap_or(NetworkMode::Awsvpc))
                        .set_requires_compatibilities(Some(match want.requires_compatibilities() {
                            [] => vec![Compatibility::Fargate],
                            some => some.to_vec(),
                        }))
                        .set_cpu(want.cpu().map(str::to_string))
                        .set_memory(want.memory().map(str::to_string))
                        .set_runtime_platform(want.runtime_platform().cloned())
                        .set_container_definitions(Some(want.container_definitions().to_vec()))
                        .set_volumes(Some(want.volumes().to_vec()))
                        .set_ephemeral_storage(want.ephemeral_storage().cloned())
                        .set_placement_constraints(
                            (!want.placement_constraints().is_empty())
                                .then(|| want.placement_constraints().to_vec()),
                        )
                        .set_pid_mode(want.pid_mode().cloned())
                        .set_ipc_mode(want.ipc_mode().cloned())
                        .set_proxy_configuration(want.proxy_configuration().cloned())
                        .set_enable_fault_injection(want.enable_fault_injection())
                        .set_tags(Some(tags.clone()))
                        .send()
                },
            )
            .await?;
        Ok(Revision {
            arn: out
                .task_definition()
                .and_then(|t| t.task_definition_arn())
                .unwrap_or_default()
                .to_string(),
            new: true,
        })
    }
}

impl Resource for TaskDef {
    const KIND: &'static str = KIND;
    /// The family's mark ([`LiveTaskDef::owned`]): a revision with the stack's tag, or the
    /// stack's service running one.
    const OWNERSHIP: Ownership = Ownership::Mark;
    type Client = Client;
    type Live = LiveTaskDef;
    type Diff = TaskDefDiff;
    type Output = Revision;
    type Error = Error;

    /// Its family (plans name the task definition by it).
    fn logical_id(&self) -> String {
        self.family().to_string()
    }

    fn owner(live: &LiveTaskDef) -> Owner<'_> {
        Owner::Mark(live.owned)
    }

    /// The definition's differences; only when there is none, the compared revision's tags,
    /// unless it was registered outside the stack or by an image-only release (a new
    /// revision gets the desired tags anyway).
    fn diff(&self, live: &LiveTaskDef) -> Vec<TaskDefDiff> {
        let d: Vec<TaskDefDiff> = diffs(&canonical(&live.definition), &canonical(&self.want))
            .into_iter()
            .map(TaskDefDiff::Definition)
            .collect();
        if !d.is_empty() || live.outside || live.released {
            return d;
        }
        self.tags
            .diff_from(&live.tags)
            .map(TaskDefDiff::Tags)
            .into_iter()
            .collect()
    }

    fn output(live: &LiveTaskDef) -> Revision {
        Revision {
            arn: live.arn.clone(),
            new: false,
        }
    }

    fn created(out: &Revision) -> Option<String> {
        Some(format!("revision {}", revision_of(&out.arn)))
    }

    fn updated(out: &Revision) -> Option<String> {
        Some(match out.new {
            true => format!("revision {}", revision_of(&out.arn)),
            false => "tags updated".to_string(),
        })
    }

    async fn create(&self, ctx: &Context, ecs: &Client) -> Result<Revision> {
        self.register(ctx, ecs).await
    }

    async fn update(
        &self,
        ctx: &Context,
        ecs: &Client,
        live: &LiveTaskDef,
        diffs: &[TaskDefDiff],
    ) -> Result<()> {
        self.update_output(ctx, ecs, live, diffs).await?;
        Ok(())
    }

    /// A new revision when the definition differs; else the compared revision's tags set back.
    async fn update_output(
        &self,
        ctx: &Context,
        ecs: &Client,
        live: &LiveTaskDef,
        diffs: &[TaskDefDiff],
    ) -> Result<Revision> {
        if diffs
            .iter()
            .any(|d| matches!(d, TaskDefDiff::Definition(_)))
        {
            return self.register(ctx, ecs).await;
        }
        let resource = format!("{KIND} {}", self.family());
        for d in diffs {
            if let TaskDefDiff::Tags(t) = d {
                tagging::ecs(ctx, ecs, &resource, &live.arn, t).await?;
            }
        }
        Ok(Self::output(live))
    }

    /// Deregisters every active revision of its family.
    async fn delete(ctx: &Context, ecs: &Client, live: &LiveTaskDef) -> Result<()> {
        let family = live.definition.family().unwrap_or_default();
        deregister_all(ctx, ecs, family).await?;
        Ok(())
    }
}

/// The plan line of `desired`: a new revision when the definition differs from the compared
/// one; otherwise its tags set right when they drifted. When the compared revision was
/// registered outside the stack, the line says so, and a note says in plain words which
/// images the manifest would put back over the ones the service runs.
pub(crate) fn change(desired: &TaskDef, planned: &Planned<TaskDef>) -> Change {
    let live = match planned {
        Planned::Update { live, .. } | Planned::NoChange(live) | Planned::Replace { live, .. } => {
            Some(live)
        }
        _ => None,
    };
    let new_revision = matches!(planned, Planned::Update { diffs, .. }
        if diffs.iter().any(|d| matches!(d, TaskDefDiff::Definition(_))));
    let mut detail = match (live, new_revision) {
        (Some(live), true) => format!("new revision {}", live.latest + 1),
        (Some(live), false) => format!("revision {}", live.definition.revision()),
        (None, _) => "revision 1".to_string(),
    };
    let Some(live) = live.filter(|l| l.outside || l.released) else {
        return planned.change(desired).with_detail(detail);
    };
    let (which, revision) = (
        if live.running {
            "the service runs"
        } else {
            "the latest is"
        },
        live.definition.revision(),
    );
    let origin = if live.outside {
        "registered outside this stack"
    } else {
        "released with `deploy --image`"
    };
    detail = format!("{detail}; {which} revision {revision}, {origin}");
    let mut change = planned.change(desired).with_detail(detail);
    if new_revision {
        let by = if live.outside { ", by CI say" } else { "" };
        for (container, live_image, want_image) in image_changes(&live.definition, &desired.want) {
            change = change.with_note(format!(
                "this deploy puts the manifest's image {want_image} back in container \
                 `{container}`, which runs {live_image} from revision {revision} ({origin}{by}); \
                 to keep the image CI releases, write `image: {RUNNING_IMAGE}` for this \
                 container"
            ));
        }
    }
    change
}

/// The containers of `want` whose image differs from the one `live` runs in the container of
/// the same name: (container, live image, wanted image).
fn image_changes(live: &TaskDefinition, want: &TaskDefinition) -> Vec<(String, String, String)> {
    want.container_definitions()
        .iter()
        .filter_map(|w| {
            let l = live
                .container_definitions()
                .iter()
                .find(|l| l.name() == w.name())?;
            (l.image() != w.image()).then(|| {
                (
                    w.name().unwrap_or_default().to_string(),
                    l.image().unwrap_or_default().to_string(),
                    w.image().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

/// The image `container` runs in `live`, for a container whose spec says
/// [`RUNNING_IMAGE`].
pub(crate) fn running_image<'a>(live: &'a LiveTaskDef, container: &str) -> Option<&'a str> {
    live.definition
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))
        .and_then(|c| c.image())
}

/// The ARNs of the family's active revisions, newest first.
pub(crate) async fn active_revisions(
    ctx: &Context,
    ecs: &Client,
    family: &str,
) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ctx
            .call("ListTaskDefinitions", &format!("{KIND} {family}"), || {
                ecs.list_task_definitions()
                    .family_prefix(family)
                    .status(TaskDefinitionStatus::Active)
                    .sort(SortOrder::Desc)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        // `familyPrefix` is documented as the full family name; keep exact matches only.
        arns.extend(
            out.task_definition_arns()
                .iter()
                .filter(|a| family_of(a) == Some(family))
                .cloned(),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            // Sorted here too: not every implementation honours `sort`.
            arns.sort_by_key(|a| std::cmp::Reverse(revision_of(a)));
            return Ok(arns);
        }
    }
}

/// The revision of a task definition ARN (0 when it has none).
pub(crate) fn revision_of(arn: &str) -> u32 {
    arn.rsplit_once(':')
        .and_then(|(_, r)| r.parse().ok())
        .unwrap_or(0)
}

/// The family of a task definition ARN (`…:task-definition/<family>:<revision>`).
pub(crate) fn family_of(arn: &str) -> Option<&str> {
    arn.rsplit_once('/')
        .and_then(|(_, rest)| rest.rsplit_once(':'))
        .map(|(family, _)| family)
}

/// Deregisters every active revision of the family (one the stack owns, as read: the
/// stack's revisions and those registered outside it alike). Returns how many it
/// deregistered.
pub(crate) async fn deregister_all(ctx: &Context, ecs: &Client, family: &str) -> Result<usize> {
    let arns = active_revisions(ctx, ecs, family).await?;
    let resource = format!("{KIND} {family}");
    futures_util::future::try_join_all(arns.iter().map(|arn| {
        let resource = resource.clone();
        async move {
            match ctx
                .call("DeregisterTaskDefinition", &resource, || {
                    ecs.deregister_task_definition().task_definition(arn).send()
                })
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_code("ClientException") => Ok(()),
                Err(e) => Err(e),
            }
        }
    }))
    .await?;
    Ok(arns.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ContainerSpec, TaskSpec};
    use ecs_core::StackName;

    fn spec(env: &[(&str, &str)], ports: Vec<u16>) -> ServiceSpec {
        ServiceSpec::builder()
            .task(
                TaskSpec::builder()
                    .containers(vec![ContainerSpec::builder()
                        .name("web")
                        .image("nginx:1")
                        .ports(ports)
                        .environment(env.iter().copied().collect())
                        .build()])
                    .build(),
            )
            .build()
    }

    fn rendered(s: &ServiceSpec) -> TaskDefinition {
        let names = ServiceNames::new(&StackName::new("t").unwrap(), s);
        render(
            s,
            &names,
            "us-east-1",
            "arn:aws:iam::1:role/t-execution",
            "arn:aws:iam::1:role/t-task",
        )
    }

    #[test]
    fn order_does_not_matter_but_values_do() {
        let a = canonical(&rendered(&spec(&[("A", "1"), ("B", "2")], vec![80, 81])));
        let mut reordered = rendered(&spec(&[], vec![81, 80]));
        let mut c = reordered.container_definitions()[0].clone();
        c.environment = Some(vec![
            KeyValuePair::builder().name("B").value("2").build(),
            KeyValuePair::builder().name("A").value("1").build(),
        ]);
        reordered.container_definitions = Some(vec![c]);
        assert_eq!(a, canonical(&reordered));
        let changed = canonical(&rendered(&spec(
            &[("A", "1"), ("B", "sentinel-new")],
            vec![80, 81],
        )));
        let d = diffs(&a, &changed);
        assert_eq!(d.len(), 1, "{d:?}");
        let shown = format!("{d:?}");
        assert!(
            shown.contains("environment.B")
                && !shown.contains("sentinel-new")
                && !shown.contains("\"2\""),
            "{shown}"
        );
    }

    #[test]
    fn aws_defaults_do_not_cause_a_diff() {
        let want = rendered(&spec(&[], vec![80]));
        // What ECS returns: cpu 0, empty lists, roles as full ARNs with another account id.
        let mut live = want.clone();
        let mut c = live.container_definitions()[0].clone();
        c.cpu = 0;
        c.readonly_root_filesystem = None;
        c.essential = None;
        c.volumes_from = Some(vec![]);
        live.container_definitions = Some(vec![c]);
        live.execution_role_arn = Some("arn:aws:iam::999:role/t-execution".into());
        assert!(diffs(&canonical(&live), &canonical(&want)).is_empty());
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:1:task-definition/t-app:12"),
            Some("t-app")
        );
    }

    #[test]
    fn typed_diff_and_plan_line_table() {
        let tags = Tags::new().with("ecs:stack", "t");
        let want = rendered(&spec(&[("A", "1")], vec![80]));
        let desired = TaskDef {
            want: want.clone(),
            tags: tags.clone(),
        };
        let live = |mut definition: TaskDefinition, tags: &Tags| {
            definition.revision = 4;
            LiveTaskDef {
                arn: "arn:aws:ecs:us-east-1:1:task-definition/t-app:4".into(),
                definition,
                tags: tags.clone(),
                latest: 4,
                owned: true,
                outside: false,
                running: true,
                released: false,
            }
        };
        // Registered outside the stack (by CI): the service runs it; the latest is 6.
        let outside = |definition: TaskDefinition| LiveTaskDef {
            outside: true,
            latest: 6,
            ..live(definition, &Tags::new())
        };
        let released = {
            let mut td = want.clone();
            let mut c = td.container_definitions()[0].clone();
            c.image = Some("nginx:2".into());
            td.container_definitions = Some(vec![c]);
            td
        };
        let other = rendered(&spec(&[("A", "2")], vec![80]));
        // (what the read found, the plan line)
        let cases = [
            (None, "  + task-definition t-app (revision 1)"),
            (
                Some(live(want.clone(), &tags)),
                "    task-definition t-app (revision 4)",
            ),
            // Only the tags drifted: the latest revision is tagged again.
            (
                Some(live(want.clone(), &Tags::new())),
                "  ~ task-definition t-app (revision 4)\n      ~ tags: {} → {ecs:stack=t}",
            ),
            // The definition differs: a new revision (which gets the tags), whatever the tags.
            (
                Some(live(other, &Tags::new())),
                "  ~ task-definition t-app (new revision 5)\n      ~ containers.web.environment.A: (hidden) → (changed)",
            ),
            // The service runs a revision CI registered with the manifest's definition: no
            // change, and its tags are not the stack's to set.
            (
                Some(outside(want.clone())),
                "    task-definition t-app (revision 4; the service runs revision 4, registered outside this stack)",
            ),
            // CI released another image: the manifest's goes back, and the plan says so.
            (
                Some(outside(released.clone())),
                "  ~ task-definition t-app (new revision 7; the service runs revision 4, registered outside this stack)\n      \
                 ~ containers.web.image: \"nginx:2\" → \"nginx:1\"\n      \
                 ! this deploy puts the manifest's image nginx:1 back in container `web`, which runs nginx:2 from revision 4 \
                 (registered outside this stack, by CI say); to keep the image CI releases, write `image: running` for this container",
            ),
            // The stack's own image-only release: the same note, and its tags (with the
            // release's mark) are left as they are.
            (
                Some(LiveTaskDef {
                    released: true,
                    ..live(released, &Tags::new().with("ecs:stack", "t").with(ORIGIN_TAG, RELEASED))
                }),
                "  ~ task-definition t-app (new revision 5; the service runs revision 4, released with `deploy --image`)\n      \
                 ~ containers.web.image: \"nginx:2\" → \"nginx:1\"\n      \
                 ! this deploy puts the manifest's image nginx:1 back in container `web`, which runs nginx:2 from revision 4 \
                 (released with `deploy --image`); to keep the image CI releases, write `image: running` for this container",
            ),
            (
                Some(LiveTaskDef {
                    released: true,
                    ..live(want.clone(), &Tags::new().with("ecs:stack", "t").with(ORIGIN_TAG, RELEASED))
                }),
                "    task-definition t-app (revision 4; the service runs revision 4, released with `deploy --image`)",
            ),
        ];
        for (found, line) in cases {
            let planned = ecs_core::resource::decide(&desired, found);
            assert_eq!(change(&desired, &planned).to_string(), line);
        }
    }
}
