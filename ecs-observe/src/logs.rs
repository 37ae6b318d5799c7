//! The stack's log group: retention always set, optional KMS key, owned by tag.

use aws_sdk_cloudwatchlogs::Client;
use ecs_core::{Action, Change, Context, Event, FieldDiff, TagDiff, Tags};

use crate::spec::ObserveSpec;
use crate::Result;

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "log-group";

/// The log group's logical id (its `ecs:resource` tag).
pub(crate) const LOGICAL: &str = "log-group";

/// The log group as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveLogGroup {
    pub(crate) arn: String,
    pub(crate) retention: Option<i32>,
    pub(crate) kms_key: Option<String>,
    pub(crate) tags: Tags,
}

fn arn_without_star(arn: &str) -> &str {
    arn.strip_suffix(":*").unwrap_or(arn)
}

/// Reads the log group called `name`: `None` when absent; a conflict when not the stack's.
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
    if !ctx.owns(tags.iter().map(|(k, v)| (Some(k), Some(v)))) {
        return Err(crate::Error::Conflict {
            resource: KIND.into(),
            name: name.into(),
            stack: ctx.stack().to_string(),
        });
    }
    Ok(Some(LiveLogGroup {
        arn,
        retention: g.retention_in_days(),
        kms_key: g.kms_key_id().map(str::to_string),
        tags,
    }))
}

fn diffs(spec: &ObserveSpec, tags: &Tags, live: &LiveLogGroup) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    let want = spec.log_retention_days as i32;
    if live.retention != Some(want) {
        d.push(FieldDiff::new(
            "retention_days",
            live.retention
                .map_or("never expire".to_string(), |r| r.to_string()),
            want,
        ));
    }
    if live.kms_key != spec.log_kms_key {
        d.push(FieldDiff::new(
            "kms_key",
            live.kms_key.as_deref().unwrap_or("none"),
            spec.log_kms_key.as_deref().unwrap_or("none"),
        ));
    }
    d.extend(tags.diff_from(&live.tags).map(|t| t.field()));
    d
}

/// The plan entry for the log group; `tags` are the ones it should carry.
pub(crate) fn change(
    name: &str,
    spec: &ObserveSpec,
    tags: &Tags,
    live: Option<&LiveLogGroup>,
) -> Change {
    let action = match live {
        None => Action::Create,
        Some(l) => Action::from_diffs(diffs(spec, tags, l)),
    };
    Change::new(KIND, name, action)
}

/// Creates or updates the log group; returns its ARN.
pub(crate) async fn ensure(
    ctx: &Context,
    logs: &Client,
    name: &str,
    spec: &ObserveSpec,
    live: Option<&LiveLogGroup>,
) -> Result<String> {
    let resource = format!("{KIND} {name}");
    let want_tags = ctx.resource_tags(Some(LOGICAL), None);
    let (arn, live) = match live {
        Some(l) if diffs(spec, &want_tags, l).is_empty() => return Ok(l.arn.clone()),
        Some(l) => {
            ctx.emit(Event::Started {
                resource: resource.clone(),
                action: "update".into(),
            });
            (l.arn.clone(), Some(l))
        }
        None => {
            ctx.emit(Event::Started {
                resource: resource.clone(),
                action: "create".into(),
            });
            let tags = &want_tags;
            let created = ctx
                .call("CreateLogGroup", &resource, || {
                    let mut req = logs
                        .create_log_group()
                        .log_group_name(name)
                        .set_kms_key_id(spec.log_kms_key.clone());
                    for (k, v) in tags.iter() {
                        req = req.tags(k, v);
                    }
                    req.send()
                })
                .await;
            match created {
                Ok(_) => {}
                // Created by an interrupted earlier run (or a concurrent one): adopt it if ours.
                Err(e) if e.is_code("ResourceAlreadyExistsException") => {
                    let Some(found) = observe(ctx, logs, name).await? else {
                        // Exists, but cannot be read yet: report rather than loop.
                        return Err(e.into());
                    };
                    return Box::pin(ensure(ctx, logs, name, spec, Some(&found))).await;
                }
                Err(e) => return Err(e.into()),
            }
            (String::new(), None)
        }
    };
    if live.is_none_or(|l| l.retention != Some(spec.log_retention_days as i32)) {
        ctx.call("PutRetentionPolicy", &resource, || {
            logs.put_retention_policy()
                .log_group_name(name)
                .retention_in_days(spec.log_retention_days as i32)
                .send()
        })
        .await?;
    }
    if let Some(l) = live {
        if l.kms_key != spec.log_kms_key {
            match &spec.log_kms_key {
                Some(key) => ctx
                    .call("AssociateKmsKey", &resource, || {
                        logs.associate_kms_key()
                            .log_group_name(name)
                            .kms_key_id(key)
                            .send()
                    })
                    .await
                    .map(|_| ())?,
                None => ctx
                    .call("DisassociateKmsKey", &resource, || {
                        logs.disassociate_kms_key().log_group_name(name).send()
                    })
                    .await
                    .map(|_| ())?,
            }
        }
    }
    if let Some(t) = live.and_then(|l| want_tags.diff_from(&l.tags)) {
        retag(ctx, logs, &resource, &arn, &t).await?;
    }
    let arn = if arn.is_empty() {
        observe(ctx, logs, name)
            .await?
            .map(|l| l.arn)
            .unwrap_or_default()
    } else {
        arn
    };
    ctx.emit(Event::Done {
        resource,
        detail: format!("retention {} days", spec.log_retention_days),
    });
    Ok(arn)
}

/// Deletes the log group (and its logs) when it is the stack's.
pub(crate) async fn delete(ctx: &Context, logs: &Client, name: &str) -> Result<bool> {
    match observe(ctx, logs, name).await {
        Ok(Some(_)) => {}
        Ok(None) | Err(crate::Error::Conflict { .. }) => return Ok(false),
        Err(e) => return Err(e),
    }
    let resource = format!("{KIND} {name}");
    ctx.emit(Event::Started {
        resource: resource.clone(),
        action: "delete".into(),
    });
    match ctx
        .call("DeleteLogGroup", &resource, || {
            logs.delete_log_group().log_group_name(name).send()
        })
        .await
    {
        Err(e) if !e.is_code("ResourceNotFoundException") => return Err(e.into()),
        _ => {}
    }
    ctx.emit(Event::Done {
        resource,
        detail: "deleted with its logs".into(),
    });
    Ok(true)
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
