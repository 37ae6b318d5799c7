//! The stack's log group: retention always set, optional KMS key, owned by tag.

use aws_sdk_cloudwatchlogs::Client;
use ecs_core::resource::{self, Changed, Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, TagDiff, Tags};

use crate::spec::ObserveSpec;
use crate::{Error, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "log-group";

/// The log group's logical id (its `ecs:resource` tag).
pub(crate) const LOGICAL: &str = "log-group";

/// The log group as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveLogGroup {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) retention: Option<i32>,
    pub(crate) kms_key: Option<String>,
    pub(crate) tags: Tags,
}

fn arn_without_star(arn: &str) -> &str {
    arn.strip_suffix(":*").unwrap_or(arn)
}

/// Reads the log group called `name`: `None` when absent. Whether it is the stack's is the
/// engine's check ([`LogGroup`]'s ownership is its tag).
pub(crate) async fn observe(
    ctx: &Context,
    logs: &Client,
    name: &str,
) -> Result<Option<LiveLogGroup>> {
    let resource = format!("{KIND} {name}");
    let out = ctx
        .call("DescribeLogGroups", &resource, || {
            logs.describe_log_groups()
                .log_group_name_prefix(name)
                .send()
        })
        .await?;
    let Some(g) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(None);
    };
    let arn = g
        .log_group_arn()
        .or(g.arn())
        .map(arn_without_star)
        .unwrap_or_default()
        .to_string();
    let tags = ctx
        .call("ListTagsForResource", &resource, || {
            logs.list_tags_for_resource().resource_arn(&arn).send()
        })
        .await?;
    let tags = Tags::from_pairs(
        tags.tags()
            .into_iter()
            .flatten()
            .map(|(k, v)| (Some(k.as_str()), Some(v.as_str()))),
    );
    Ok(Some(LiveLogGroup {
        name: name.to_string(),
        arn,
        retention: g.retention_in_days(),
        kms_key: g.kms_key_id().map(str::to_string),
        tags,
    }))
}

/// `Ok` when `live` is the stack's (the engine's check, by its tag), else the conflict.
pub(crate) fn check_owned(ctx: &Context, live: &LiveLogGroup) -> Result<()> {
    Ok(resource::check_owned::<LogGroup<'_>>(
        ctx, &live.name, live,
    )?)
}

/// One typed difference of the log group: each is set right by its own call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogGroupDiff {
    /// The retention (`PutRetentionPolicy`); `live` is `None` when logs never expire.
    Retention { live: Option<i32>, want: i32 },
    /// The KMS key (`AssociateKmsKey` / `DisassociateKmsKey`).
    KmsKey {
        live: Option<String>,
        want: Option<String>,
    },
    /// The tags (`TagResource` / `UntagResource`).
    Tags(TagDiff),
}

impl Diff for LogGroupDiff {
    fn field(&self) -> FieldDiff {
        match self {
            LogGroupDiff::Retention { live, want } => FieldDiff::new(
                "retention_days",
                live.map_or("never expire".to_string(), |r| r.to_string()),
                want,
            ),
            LogGroupDiff::KmsKey { live, want } => FieldDiff::new(
                "kms_key",
                live.as_deref().unwrap_or("none"),
                want.as_deref().unwrap_or("none"),
            ),
            LogGroupDiff::Tags(t) => t.field(),
        }
    }
}

/// The log group as desired: its name, the spec's retention and key, and its tags.
#[derive(Debug, Clone)]
pub(crate) struct LogGroup<'a> {
    pub(crate) name: &'a str,
    pub(crate) spec: &'a ObserveSpec,
    pub(crate) tags: Tags,
}

impl<'a> LogGroup<'a> {
    /// The stack's log group called `name` as `spec` wants it.
    pub(crate) fn new(ctx: &Context, name: &'a str, spec: &'a ObserveSpec) -> Self {
        Self {
            name,
            spec,
            tags: ctx.resource_tags(Some(LOGICAL), None),
        }
    }

    fn resource(&self) -> String {
        format!("{KIND} {}", self.name)
    }

    fn retention(&self) -> i32 {
        self.spec.log_retention_days as i32
    }
}

impl Resource for LogGroup<'_> {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveLogGroup;
    type Diff = LogGroupDiff;
    /// Its ARN.
    type Output = String;
    type Error = Error;

    /// Its name (plans name the log group by it).
    fn logical_id(&self) -> String {
        self.name.to_string()
    }

    fn owner(live: &LiveLogGroup) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveLogGroup) -> Vec<LogGroupDiff> {
        let mut d = Vec::new();
        if live.retention != Some(self.retention()) {
            d.push(LogGroupDiff::Retention {
                live: live.retention,
                want: self.retention(),
            });
        }
        if live.kms_key != self.spec.log_kms_key {
            d.push(LogGroupDiff::KmsKey {
                live: live.kms_key.clone(),
                want: self.spec.log_kms_key.clone(),
            });
        }
        d.extend(self.tags.diff_from(&live.tags).map(LogGroupDiff::Tags));
        d
    }

    fn output(live: &LiveLogGroup) -> String {
        live.arn.clone()
    }

    /// Creates it with its tags and key, sets its retention, then describes it once to learn
    /// its ARN (`CreateLogGroup` does not return it). A log group that appeared since the read
    /// is read again: the stack's own (an interrupted or retried create) is brought to the
    /// spec from its diff; anyone else's stops the step with [`Changed`].
    async fn create(&self, ctx: &Context, logs: &Client) -> Result<String> {
        let resource = self.resource();
        let created = ctx
            .call("CreateLogGroup", &resource, || {
                let mut req = logs
                    .create_log_group()
                    .log_group_name(self.name)
                    .set_kms_key_id(self.spec.log_kms_key.clone());
                for (k, v) in self.tags.iter() {
                    req = req.tags(k, v);
                }
                req.send()
            })
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.is_code("ResourceAlreadyExistsException") => {
                let Some(found) = observe(ctx, logs, self.name).await? else {
                    // Exists, but cannot be read yet: report rather than loop.
                    return Err(e.into());
                };
                if !resource::owned::<Self>(ctx, &found) {
                    return Err(Changed::new(KIND, self.name, "was created by someone else").into());
                }
                let diffs = self.diff(&found);
                self.update(ctx, logs, &found, &diffs).await?;
                return Ok(found.arn);
            }
            Err(e) => return Err(e.into()),
        }
        ctx.call("PutRetentionPolicy", &resource, || {
            logs.put_retention_policy()
                .log_group_name(self.name)
                .retention_in_days(self.retention())
                .send()
        })
        .await?;
        Ok(observe(ctx, logs, self.name)
            .await?
            .map(|l| l.arn)
            .unwrap_or_default())
    }

    async fn update(
        &self,
        ctx: &Context,
        logs: &Client,
        live: &LiveLogGroup,
        diffs: &[LogGroupDiff],
    ) -> Result<()> {
        let resource = self.resource();
        for diff in diffs {
            match diff {
                LogGroupDiff::Retention { want, .. } => {
                    ctx.call("PutRetentionPolicy", &resource, || {
                        logs.put_retention_policy()
                            .log_group_name(self.name)
                            .retention_in_days(*want)
                            .send()
                    })
                    .await?;
                }
                LogGroupDiff::KmsKey {
                    want: Some(key), ..
                } => {
                    ctx.call("AssociateKmsKey", &resource, || {
                        logs.associate_kms_key()
                            .log_group_name(self.name)
                            .kms_key_id(key)
                            .send()
                    })
                    .await?;
                }
                LogGroupDiff::KmsKey { want: None, .. } => {
                    ctx.call("DisassociateKmsKey", &resource, || {
                        logs.disassociate_kms_key().log_group_name(self.name).send()
                    })
                    .await?;
                }
                LogGroupDiff::Tags(t) => retag(ctx, logs, &resource, &live.arn, t).await?,
            }
        }
        Ok(())
    }

    /// Deletes it with its logs.
    async fn delete(ctx: &Context, logs: &Client, live: &LiveLogGroup) -> Result<()> {
        match ctx
            .call("DeleteLogGroup", &format!("{KIND} {}", live.name), || {
                logs.delete_log_group().log_group_name(&live.name).send()
            })
            .await
        {
            Err(e) if !e.is_code("ResourceNotFoundException") => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Sets and removes the log group's tags.
async fn retag(
    ctx: &Context,
    logs: &Client,
    resource: &str,
    arn: &str,
    diff: &TagDiff,
) -> Result<()> {
    diff.apply(
        |set| {
            let tags: std::collections::HashMap<String, String> = set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            async move {
                ctx.call("TagResource", resource, || {
                    logs.tag_resource()
                        .resource_arn(arn)
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await?;
                Ok::<_, crate::Error>(())
            }
        },
        |keys| {
            let keys = keys.to_vec();
            async move {
                ctx.call("UntagResource", resource, || {
                    logs.untag_resource()
                        .resource_arn(arn)
                        .set_tag_keys(Some(keys.clone()))
                        .send()
                })
                .await?;
                Ok::<_, crate::Error>(())
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::StackName;

    #[test]
    fn each_difference_is_one_typed_diff_rendered_under_its_plan_name() {
        let ctx = Context::builder()
            .stack(StackName::new("web").unwrap())
            .build();
        let spec = ObserveSpec::builder().log_retention_days(30).build();
        let want = LogGroup::new(&ctx, "/ecs/web", &spec);
        let same = LiveLogGroup {
            name: "/ecs/web".into(),
            arn: "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web".into(),
            retention: Some(30),
            kms_key: None,
            tags: want.tags.clone(),
        };
        assert_eq!(want.diff(&same), vec![]);
        // (what drifted, the plan line)
        let cases = [
            (
                LiveLogGroup {
                    retention: None,
                    ..same.clone()
                },
                FieldDiff::new("retention_days", "never expire", 30),
            ),
            (
                LiveLogGroup {
                    kms_key: Some("alias/logs".into()),
                    ..same.clone()
                },
                FieldDiff::new("kms_key", "alias/logs", "none"),
            ),
            (
                LiveLogGroup {
                    tags: Tags::new(),
                    ..same.clone()
                },
                want.tags.diff_from(&Tags::new()).unwrap().field(),
            ),
        ];
        for (live, line) in cases {
            let d = want.diff(&live);
            assert_eq!(d.len(), 1, "{d:?}");
            assert_eq!(d[0].field(), line);
        }
    }
}
