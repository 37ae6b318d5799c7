//! What every EC2 kind shares: tag conversion, tag specifications and tag updates, and the
//! error codes that mean "already gone" or "still in use".

use std::time::Duration;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_ec2::Client;
use ecs_core::{AwsError, Context, RetryOn, TagDiff, Tags};

use crate::error::{Error, Result};

/// How long deletions blocked by lingering dependencies (ENIs of load balancers and tasks,
/// mapped public addresses) are retried.
pub(crate) const DEPENDENCY_BUDGET: Duration = Duration::from_secs(600);

/// Deletions retried while something still depends on the resource.
pub(crate) fn dependency_violation() -> RetryOn {
    RetryOn::codes(
        &["DependencyViolation", "InvalidGroup.InUse", "ResourceInUse"],
        DEPENDENCY_BUDGET,
    )
}

/// The SDK's tags of `tags`.
pub(crate) fn ec2_tags(tags: &Tags) -> Vec<Tag> {
    tags.to_sdk(|k, v| Tag::builder().key(k).value(v).build())
}

/// `tags` applied at creation to a resource of type `kind`.
pub(crate) fn tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

/// Whether an error says the resource is already gone (deletes are idempotent).
pub(crate) fn already_gone(e: &AwsError) -> bool {
    e.code().is_some_and(|c| {
        c.ends_with(".NotFound")
            || c.ends_with("NotFound")
            || c == "Gateway.NotAttached"
            || c == "InvalidAssociationID.NotFound"
    })
}

/// `Ok` when `r` succeeded or failed because the resource is already gone.
pub(crate) fn ok_if_gone<T>(r: std::result::Result<T, AwsError>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if already_gone(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sets the tags of `id` right: `CreateTags` for new or changed values, `DeleteTags` for keys
/// no longer wanted.
pub(crate) async fn set_tags(
    ctx: &Context,
    ec2: &Client,
    resource: &str,
    id: &str,
    diff: &TagDiff,
) -> Result<()> {
    diff.apply(
        |set| {
            let tags = ec2_tags(set);
            async move {
                ctx.call("CreateTags", resource, || {
                    ec2.create_tags()
                        .resources(id)
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await?;
                Ok::<_, Error>(())
            }
        },
        |keys| {
            let unset: Vec<Tag> = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
            async move {
                ctx.call("DeleteTags", resource, || {
                    ec2.delete_tags()
                        .resources(id)
                        .set_tags(Some(unset.clone()))
                        .send()
                })
                .await?;
                Ok::<_, Error>(())
            }
        },
    )
    .await
}

/// Sets the tags of `id` right for each of `diffs`: the whole update of a kind whose only
/// in-place change is its tags.
pub(crate) async fn set_all_tags(
    ctx: &Context,
    ec2: &Client,
    resource: &str,
    id: &str,
    diffs: &[TagDiff],
) -> Result<()> {
    for t in diffs {
        set_tags(ctx, ec2, resource, id, t).await?;
    }
    Ok(())
}
