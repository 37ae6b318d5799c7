//! Tags: what every resource of the layer should carry, and the calls that repair a live
//! resource's tags when they drifted (each AWS service has its own tag and untag calls).

use ecs_core::{Context, StackName, TagDiff, Tags};

use crate::Result;

/// The source of every resource's desired tags, kept with a read so that a plan made without
/// a [`Context`] computes exactly the tags an apply (which has one) sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StackTags {
    stack: StackName,
    user: Tags,
}

impl StackTags {
    /// The stack's and the user's tags of `ctx`.
    pub(crate) fn new(ctx: &Context) -> Self {
        Self {
            stack: ctx.stack().clone(),
            user: ctx.tags().clone(),
        }
    }

    /// The tags of the resource whose logical id is `logical` (the same as
    /// [`Context::resource_tags`] gives for it).
    pub(crate) fn of(&self, logical: &str) -> Tags {
        self.user.for_resource(&self.stack, Some(logical), None)
    }
}

/// Sets and removes an ECS resource's tags (a cluster, a service, a task-definition revision).
pub(crate) async fn ecs(
    ctx: &Context,
    ecs: &aws_sdk_ecs::Client,
    resource: &str,
    arn: &str,
    diff: &TagDiff,
) -> Result<()> {
    diff.apply(
        |set| {
            let tags =
                set.to_sdk(|k, v| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
            async move {
                ctx.call("TagResource", resource, || {
                    ecs.tag_resource()
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
                    ecs.untag_resource()
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

/// The tags as Elastic Load Balancing's tag type.
pub(crate) fn elb_tags(tags: &Tags) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags.to_sdk(|k, v| {
        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    })
}

/// Sets and removes a load balancer's or target group's tags.
pub(crate) async fn elb(
    ctx: &Context,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    resource: &str,
    arn: &str,
    diff: &TagDiff,
) -> Result<()> {
    diff.apply(
        |set| {
            let tags = elb_tags(set);
            async move {
                ctx.call("AddTags", resource, || {
                    elb.add_tags()
                        .resource_arns(arn)
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
                ctx.call("RemoveTags", resource, || {
                    elb.remove_tags()
                        .resource_arns(arn)
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

/// The tags as IAM's tag type.
pub(crate) fn iam_tags(tags: &Tags) -> Vec<aws_sdk_iam::types::Tag> {
    tags.to_sdk(|k, v| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
        .into_iter()
        .flatten()
        .collect()
}

/// Sets and removes a role's tags.
pub(crate) async fn iam_role(
    ctx: &Context,
    iam: &aws_sdk_iam::Client,
    resource: &str,
    role: &str,
    diff: &TagDiff,
) -> Result<()> {
    diff.apply(
        |set| {
            let tags = iam_tags(set);
            async move {
                ctx.call("TagRole", resource, || {
                    iam.tag_role()
                        .role_name(role)
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
                ctx.call("UntagRole", resource, || {
                    iam.untag_role()
                        .role_name(role)
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

/// The tags as ECR's tag type.
pub(crate) fn ecr_tags(tags: &Tags) -> Vec<aws_sdk_ecr::types::Tag> {
    tags.to_sdk(|k, v| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build())
        .into_iter()
        .flatten()
        .collect()
}

/// Sets and removes a repository's tags.
pub(crate) async fn ecr(
    ctx: &Context,
    ecr: &aws_sdk_ecr::Client,
    resource: &str,
    arn: &str,
    diff: &TagDiff,
) -> Result<()> {
    diff.apply(
        |set| {
            let tags = ecr_tags(set);
            async move {
                ctx.call("TagResource", resource, || {
                    ecr.tag_resource()
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
                    ecr.untag_resource()
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
