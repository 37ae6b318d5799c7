//! The Elastic IP address of a NAT gateway, and its tags.

use std::time::Duration;

use aws_sdk_ec2::types::{DomainType, ResourceType};
use aws_sdk_ec2::Client;
use ecs_core::resource::{Owner, Ownership, Resource};
use ecs_core::{Context, RetryOn, TagDiff, Tags};

use crate::ec2::{ok_if_gone, set_all_tags, tag_spec};
use crate::error::{Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "elastic-ip";

/// An address as desired.
#[derive(Debug, Clone)]
pub(crate) struct ElasticIp {
    /// `eip/<zone>`.
    pub(crate) logical: String,
    /// The logical id of the NAT gateway it is for.
    pub(crate) nat: String,
    pub(crate) tags: Tags,
}

/// An address as a read found it.
#[derive(Debug, Clone)]
pub(crate) struct LiveEip {
    /// Its allocation id.
    pub(crate) id: String,
    pub(crate) tags: Tags,
}

impl Resource for ElasticIp {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveEip;
    /// Only its tags change.
    type Diff = TagDiff;
    /// Its allocation id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.logical.clone()
    }

    fn detail(&self) -> String {
        format!("for {}", self.nat)
    }

    fn owner(live: &LiveEip) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveEip) -> Vec<TagDiff> {
        self.tags.diff_from(&live.tags).into_iter().collect()
    }

    fn output(live: &LiveEip) -> String {
        live.id.clone()
    }

    fn created(id: &String) -> Option<String> {
        Some(id.clone())
    }

    async fn create(&self, ctx: &Context, ec2: &Client) -> Result<String> {
        let out = ctx
            .call(
                "AllocateAddress",
                &format!("{KIND} {}", self.logical),
                || {
                    ec2.allocate_address()
                        .domain(DomainType::Vpc)
                        .tag_specifications(tag_spec(ResourceType::ElasticIp, &self.tags))
                        .send()
                },
            )
            .await?;
        Ok(out.allocation_id().unwrap_or_default().to_string())
    }

    async fn update(
        &self,
        ctx: &Context,
        ec2: &Client,
        live: &LiveEip,
        diffs: &[TagDiff],
    ) -> Result<()> {
        let resource = format!("{KIND} {}", self.logical);
        set_all_tags(ctx, ec2, &resource, &live.id, diffs).await
    }

    /// Released, retried while it is still mapped (a NAT gateway being deleted keeps it).
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveEip) -> Result<()> {
        let retry = RetryOn::codes(
            &["InvalidIPAddress.InUse", "AuthFailure"],
            Duration::from_secs(120),
        );
        ok_if_gone(
            ctx.call_retrying(
                "ReleaseAddress",
                &format!("{KIND} {}", live.id),
                &retry,
                || ec2.release_address().allocation_id(&live.id).send(),
            )
            .await,
        )
    }
}
