//! IAM: the task execution role and the task role, least privilege, reconciled exactly (trust
//! policy, managed policies, inline policies), found by name and owned by tag.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_iam::Client;
use ecs_core::resource::{self, Changed, Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, RetryOn, TagDiff, Tags};
use serde_json::{json, Value};

use crate::names::{partition, url_decode, ServiceNames};
use crate::spec::{Effect, ServiceSpec};
use crate::{tagging, Error, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "iam-role";

/// The execution role's logical id (its `ecs:resource` tag).
pub(crate) const EXECUTION: &str = "role/execution";

/// The principal both roles trust.
pub(crate) const TASKS_PRINCIPAL: &str = "ecs-tasks.amazonaws.com";

/// A role as the spec wants it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DesiredRole {
    pub(crate) name: String,
    pub(crate) logical: &'static str,
    pub(crate) trust: Value,
    pub(crate) managed: BTreeSet<String>,
    pub(crate) inline: BTreeMap<String, Value>,
}

/// A role as it exists.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveRole {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) trust: Value,
    pub(crate) managed: BTreeSet<String>,
    pub(crate) inline: BTreeMap<String, Value>,
    pub(crate) tags: Tags,
}

fn policy(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The trust policy of both roles.
pub(crate) fn trust_policy() -> Value {
    policy(vec![json!({
        "Effect": "Allow",
        "Principal": { "Service": TASKS_PRINCIPAL },
        "Action": "sts:AssumeRole",
    })])
}

/// The execution and task roles the spec needs.
pub(crate) fn desired(names: &ServiceNames, spec: &ServiceSpec, region: &str) -> [DesiredRole; 2] {
    let mut secrets_manager = BTreeSet::new();
    let mut ssm = BTreeSet::new();
    for c in &spec.task.containers {
        for arn in c.secrets.values() {
            if arn.split(':').nth(2) == Some("ssm") {
                ssm.insert(arn.clone());
            } else {
                // A Secrets Manager reference may name a JSON key (`arn…:secret:x:key::`):
                // permission is on the secret itself.
                let secret: Vec<&str> = arn.split(':').take(7).collect();
                secrets_manager.insert(secret.join(":"));
            }
        }
    }
    let mut exec_inline = BTreeMap::new();
    let mut statements = Vec::new();
    if !secrets_manager.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secrets_manager.into_iter().collect::<Vec<_>>(),
        }));
    }
    if !ssm.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": ssm.into_iter().collect::<Vec<_>>(),
        }));
    }
    if !statements.is_empty() {
        if let Some(key) = &spec.iam.secrets_kms_key {
            statements.push(json!({
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [key],
            }));
        }
        exec_inline.insert("secrets".to_string(), normalize(policy(statements)));
    }
    let execution = DesiredRole {
        name: names.execution_role.clone(),
        logical: EXECUTION,
        trust: normalize(trust_policy()),
        managed: [format!(
            "arn:{}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            partition(region)
        )]
        .into(),
        inline: exec_inline,
    };
    let mut task_inline = BTreeMap::new();
    if !spec.iam.task_role_statements.is_empty() {
        let statements = spec
            .iam
            .task_role_statements
            .iter()
            .map(|s| {
                json!({
                    "Effect": match s.effect { Effect::Allow => "Allow", Effect::Deny => "Deny" },
                    "Action": s.actions,
                    "Resource": s.resources,
                })
            })
            .collect();
        task_inline.insert("app".to_string(), normalize(policy(statements)));
    }
    if spec.service.enable_execute_command {
        task_inline.insert(
            "exec".to_string(),
            normalize(policy(vec![json!({
                "Effect": "Allow",
                "Action": [
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                "Resource": "*",
            })])),
        );
    }
    let task = DesiredRole {
        name: names.task_role.clone(),
        logical: "role/task",
        trust: normalize(trust_policy()),
        managed: BTreeSet::new(),
        inline: task_inline,
    };
    [execution, task]
}

/// A policy document in a canonical form: `Action`, `Resource` and `Principal.Service` as
/// sorted lists, so equal policies compare equal however they were written.
pub(crate) fn normalize(mut doc: Value) -> Value {
    fn listify(v: &mut Value) {
        let mut items: Vec<Value> = match v.take() {
            Value::Array(a) => a,
            other => vec![other],
        };
        items.sort_by_key(|x| x.to_string());
        items.dedup();
        *v = Value::Array(items);
    }
    if let Some(statements) = doc.get_mut("Statement") {
        if !statements.is_array() {
            listify(statements);
        }
        if let Some(list) = statements.as_array_mut() {
            for s in list.iter_mut() {
                for key in ["Action", "Resource", "NotAction", "NotResource"] {
                    if let Some(v) = s.get_mut(key) {
                        listify(v);
                    }
                }
                if let Some(service) = s.get_mut("Principal").and_then(|p| p.get_mut("Service")) {
                    listify(service);
                }
                if let Some(obj) = s.as_object_mut() {
                    obj.remove("Sid");
                }
            }
        }
    }
    doc
}

fn parse_policy(text: &str) -> Value {
    normalize(serde_json::from_str(&url_decode(text)).unwrap_or(Value::Null))
}

/// Reads the role called `name`: `None` when it does not exist. Whether it is the stack's is
/// the engine's check ([`Role`]'s ownership is its tag).
pub(crate) async fn observe(ctx: &Context, iam: &Client, name: &str) -> Result<Option<LiveRole>> {
    let resource = format!("{KIND} {name}");
    let role = match ctx
        .call("GetRole", &resource, || {
            iam.get_role().role_name(name).send()
        })
        .await
    {
        Err(e) if e.is_code("NoSuchEntity") => return Ok(None),
        other => other?,
    };
    let Some(role) = role.role() else {
        return Ok(None);
    };
    let tags = Tags::from_pairs(role.tags().iter().map(|t| (Some(t.key()), Some(t.value()))));
    let mut live = LiveRole {
        name: name.to_string(),
        arn: role.arn().to_string(),
        trust: parse_policy(role.assume_role_policy_document().unwrap_or("{}")),
        managed: BTreeSet::new(),
        inline: BTreeMap::new(),
        tags,
    };
    // A role that is not the stack's is read no further (its policies may not be readable
    // with permissions scoped to the stack's tag); the engine refuses it from its tags.
    if !resource::owned::<Role>(ctx, &live) {
        return Ok(Some(live));
    }
    let (attached, inline_names) = futures_util::try_join!(
        ctx.call("ListAttachedRolePolicies", &resource, || {
            iam.list_attached_role_policies().role_name(name).send()
        }),
        ctx.call("ListRolePolicies", &resource, || {
            iam.list_role_policies().role_name(name).send()
        }),
    )?;
    let docs = futures_util::future::try_join_all(inline_names.policy_names().iter().map(|p| {
        let resource = resource.clone();
        async move {
            let out = ctx
                .call("GetRolePolicy", &resource, || {
                    iam.get_role_policy().role_name(name).policy_name(p).send()
                })
                .await?;
            Ok::<_, crate::Error>((p.clone(), parse_policy(out.policy_document())))
        }
    }))
    .await?;
    live.managed = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    live.inline = docs.into_iter().collect();
    Ok(Some(live))
}

/// One typed difference of a role: each is set right by its own call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RoleDiff {
    /// The trust policy (`UpdateAssumeRolePolicy`).
    Trust { live: Value, want: Value },
    /// A managed policy to attach (`AttachRolePolicy`) or detach (`DetachRolePolicy`).
    Managed { arn: String, attach: bool },
    /// An inline policy to put (`PutRolePolicy`, `want` set) or delete (`DeleteRolePolicy`).
    Inline {
        name: String,
        live: Option<Value>,
        want: Option<Value>,
    },
    /// The tags (`TagRole` / `UntagRole`).
    Tags(TagDiff),
}

impl Diff for RoleDiff {
    fn field(&self) -> FieldDiff {
        let doc = |v: &Option<Value>| v.as_ref().map_or("absent".to_string(), Value::to_string);
        match self {
            RoleDiff::Trust { live, want } => {
                FieldDiff::new("trust_policy", live.to_string(), want.to_string())
            }
            RoleDiff::Managed { arn, attach: true } => {
                FieldDiff::new(format!("managed_policy {arn}"), "detached", "attached")
            }
            RoleDiff::Managed { arn, attach: false } => {
                FieldDiff::new(format!("managed_policy {arn}"), "attached", "detached")
            }
            RoleDiff::Inline { name, live, want } => {
                FieldDiff::new(format!("inline_policy {name}"), doc(live), doc(want))
            }
            RoleDiff::Tags(t) => t.field(),
        }
    }
}

fn diffs(d: &DesiredRole, tags: &Tags, live: &LiveRole) -> Vec<RoleDiff> {
    let mut diffs = Vec::new();
    if d.trust != live.trust {
        diffs.push(RoleDiff::Trust {
            live: live.trust.clone(),
            want: d.trust.clone(),
        });
    }
    for arn in d.managed.difference(&live.managed) {
        diffs.push(RoleDiff::Managed {
            arn: arn.clone(),
            attach: true,
        });
    }
    for arn in live.managed.difference(&d.managed) {
        diffs.push(RoleDiff::Managed {
            arn: arn.clone(),
            attach: false,
        });
    }
    let names: BTreeSet<&String> = d.inline.keys().chain(live.inline.keys()).collect();
    for name in names {
        let (have, want) = (live.inline.get(name), d.inline.get(name));
        if have != want {
            diffs.push(RoleDiff::Inline {
                name: name.clone(),
                live: have.cloned(),
                want: want.cloned(),
            });
        }
    }
    diffs.extend(tags.diff_from(&live.tags).map(RoleDiff::Tags));
    diffs
}

/// A role as desired, with the tags it should carry.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) want: DesiredRole,
    pub(crate) tags: Tags,
}

impl Role {
    fn resource(&self) -> String {
        format!("{KIND} {}", self.want.name)
    }

    /// Resolves each difference by its own call: the trust policy first, then the rest at
    /// once, each to its end even when another fails.
    async fn resolve(&self, ctx: &Context, iam: &Client, todo: &[RoleDiff]) -> Result<()> {
        let resource = self.resource();
        let (r, name): (&str, &str) = (&resource, &self.want.name);
        let call = |diff: &RoleDiff| {
            let diff = diff.clone();
            async move {
                match &diff {
                    RoleDiff::Trust { want, .. } => ctx
                        .call("UpdateAssumeRolePolicy", r, || {
                            iam.update_assume_role_policy()
                                .role_name(name)
                                .policy_document(want.to_string())
                                .send()
                        })
                        .await
                        .map(|_| ())?,
                    RoleDiff::Managed { arn, attach: true } => ctx
                        .call("AttachRolePolicy", r, || {
                            iam.attach_role_policy()
                                .role_name(name)
                                .policy_arn(arn)
                                .send()
                        })
                        .await
                        .map(|_| ())?,
                    RoleDiff::Managed { arn, attach: false } => ctx
                        .call("DetachRolePolicy", r, || {
                            iam.detach_role_policy()
                                .role_name(name)
                                .policy_arn(arn)
                                .send()
                        })
                        .await
                        .map(|_| ())?,
                    RoleDiff::Inline {
                        name: policy,
                        want: Some(doc),
                        ..
                    } => ctx
                        .call("PutRolePolicy", r, || {
                            iam.put_role_policy()
                                .role_name(name)
                                .policy_name(policy)
                                .policy_document(doc.to_string())
                                .send()
                        })
                        .await
                        .map(|_| ())?,
                    RoleDiff::Inline {
                        name: policy,
                        want: None,
                        ..
                    } => ctx
                        .call("DeleteRolePolicy", r, || {
                            iam.delete_role_policy()
                                .role_name(name)
                                .policy_name(policy)
                                .send()
                        })
                        .await
                        .map(|_| ())?,
                    RoleDiff::Tags(t) => tagging::iam_role(ctx, iam, r, name, t).await?,
                }
                Ok::<_, crate::Error>(())
            }
        };
        let (trust, rest): (Vec<&RoleDiff>, Vec<&RoleDiff>) = todo
            .iter()
            .partition(|x| matches!(x, RoleDiff::Trust { .. }));
        for diff in trust {
            call(diff).await?;
        }
        futures_util::future::join_all(rest.into_iter().map(call))
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
        Ok(())
    }
}

impl Resource for Role {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveRole;
    type Diff = RoleDiff;
    /// Its ARN.
    type Output = String;
    type Error = Error;

    /// Its name (plans name a role by it).
    fn logical_id(&self) -> String {
        self.want.name.clone()
    }

    fn owner(live: &LiveRole) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveRole) -> Vec<RoleDiff> {
        diffs(&self.want, &self.tags, live)
    }

    fn output(live: &LiveRole) -> String {
        live.arn.clone()
    }

    fn created(arn: &String) -> Option<String> {
        Some(arn.clone())
    }

    /// Creates the role with its trust policy and tags, then attaches and puts its policies.
    /// IAM reads are eventually consistent: a role an interrupted earlier run made may still
    /// read as absent, and its creation then answers that it exists. It is read again and,
    /// when it is the stack's (by the kind's ownership rule), brought to the spec from its
    /// diff; anyone else's stops the step with [`Changed`].
    async fn create(&self, ctx: &Context, iam: &Client) -> Result<String> {
        let d = &self.want;
        let resource = self.resource();
        // A new trust principal can be rejected for a short while after an account's first
        // use of the service (AWS-NOTES.md).
        let retry = RetryOn::codes(&[], Duration::from_secs(120))
            .message("MalformedPolicyDocument", "Invalid principal");
        let created = ctx
            .call_retrying("CreateRole", &resource, &retry, || {
                iam.create_role()
                    .role_name(&d.name)
                    .assume_role_policy_document(d.trust.to_string())
                    .description(format!("ecs-facade stack {}: {}", ctx.stack(), d.logical))
                    .set_tags(Some(tagging::iam_tags(&self.tags)))
                    .send()
            })
            .await;
        let arn = match created {
            Ok(out) => out.role().map(|r| r.arn().to_string()).unwrap_or_default(),
            Err(e) if e.is_code("EntityAlreadyExists") => {
                let Some(found) = observe(ctx, iam, &d.name).await? else {
                    return Err(e.into());
                };
                if !resource::owned::<Role>(ctx, &found) {
                    return Err(Changed::new(KIND, &d.name, "was created by someone else").into());
                }
                let todo = self.diff(&found);
                self.resolve(ctx, iam, &todo).await?;
                return Ok(found.arn);
            }
            Err(e) => return Err(e.into()),
        };
        // The new role's policies, from its diff against a role that has none.
        let empty = LiveRole {
            name: d.name.clone(),
            arn: arn.clone(),
            trust: d.trust.clone(),
            managed: BTreeSet::new(),
            inline: BTreeMap::new(),
            tags: self.tags.clone(),
        };
        self.resolve(ctx, iam, &self.diff(&empty)).await?;
        Ok(arn)
    }

    async fn update(
        &self,
        ctx: &Context,
        iam: &Client,
        _live: &LiveRole,
        diffs: &[RoleDiff],
    ) -> Result<()> {
        self.resolve(ctx, iam, diffs).await
    }

    /// Deletes the role, its policies first.
    async fn delete(ctx: &Context, iam: &Client, live: &LiveRole) -> Result<()> {
        let name = live.name.as_str();
        let resource = format!("{KIND} {name}");
        let gone = |r: std::result::Result<(), ecs_core::AwsError>| match r {
            Err(e) if e.is_code("NoSuchEntity") => Ok(()),
            other => other,
        };
        let r: &str = &resource;
        let detach = live.managed.iter().map(|arn| async move {
            gone(
                ctx.call("DetachRolePolicy", r, || {
                    iam.detach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                        .send()
                })
                .await
                .map(|_| ()),
            )
        });
        let inline = live.inline.keys().map(|p| async move {
            gone(
                ctx.call("DeleteRolePolicy", r, || {
                    iam.delete_role_policy()
                        .role_name(name)
                        .policy_name(p)
                        .send()
                })
                .await
                .map(|_| ()),
            )
        });
        futures_util::try_join!(
            futures_util::future::try_join_all(detach),
            futures_util::future::try_join_all(inline)
        )?;
        let retry = RetryOn::codes(&["DeleteConflict"], Duration::from_secs(60));
        gone(
            ctx.call_retrying("DeleteRole", &resource, &retry, || {
                iam.delete_role().role_name(name).send()
            })
            .await
            .map(|_| ()),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_difference_is_one_typed_diff_rendered_under_its_plan_name() {
        let tags = Tags::new().with("ecs:stack", "web");
        let want = DesiredRole {
            name: "web-task".into(),
            logical: "role/task",
            trust: json!({"trust": "ecs-tasks"}),
            managed: BTreeSet::from(["arn:aws:iam::aws:policy/A".to_string()]),
            inline: BTreeMap::from([("app".to_string(), json!({"allow": 1}))]),
        };
        let live = LiveRole {
            name: "web-task".into(),
            arn: "arn:aws:iam::123456789012:role/web-task".into(),
            trust: json!({"trust": "ec2"}),
            managed: BTreeSet::from(["arn:aws:iam::aws:policy/B".to_string()]),
            inline: BTreeMap::from([("old".to_string(), json!({"allow": 0}))]),
            tags: Tags::new(),
        };
        let lines: Vec<FieldDiff> = diffs(&want, &tags, &live).iter().map(Diff::field).collect();
        assert_eq!(
            lines,
            [
                FieldDiff::new(
                    "trust_policy",
                    r#"{"trust":"ec2"}"#,
                    r#"{"trust":"ecs-tasks"}"#
                ),
                FieldDiff::new(
                    "managed_policy arn:aws:iam::aws:policy/A",
                    "detached",
                    "attached"
                ),
                FieldDiff::new(
                    "managed_policy arn:aws:iam::aws:policy/B",
                    "attached",
                    "detached"
                ),
                FieldDiff::new("inline_policy app", "absent", r#"{"allow":1}"#),
                FieldDiff::new("inline_policy old", r#"{"allow":0}"#, "absent"),
                FieldDiff::new("tags", "{}", "{ecs:stack=web}"),
            ]
        );
        let same = LiveRole {
            trust: want.trust.clone(),
            managed: want.managed.clone(),
            inline: want.inline.clone(),
            tags: tags.clone(),
            ..live
        };
        assert_eq!(diffs(&want, &tags, &same), vec![]);
    }

    #[test]
    fn normalized_policies_ignore_order_and_shape() {
        let a = normalize(
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["b", "a"], "Sid": "x"}}),
        );
        let b = normalize(
            json!({"Version": "2012-10-17", "Statement": [{"Resource": ["a", "b"], "Action": ["s3:GetObject"], "Effect": "Allow"}]}),
        );
        assert_eq!(a, b);
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            parse_policy(encoded),
            json!({"Version": "2012-10-17", "Statement": []})
        );
    }
}
