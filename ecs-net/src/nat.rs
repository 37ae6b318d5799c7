//! A NAT gateway in a public subnet of the stack's VPC, with its address: replaced (never in
//! place) when its subnet changes; its tags.

use aws_sdk_ec2::types::ResourceType;
use aws_sdk_ec2::Client;
use ecs_core::resource::{Owner, Ownership, Resource};
use ecs_core::{Context, TagDiff, Tags};

use crate::ec2::{ok_if_gone, set_all_tags, tag_spec};
use crate::error::{Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "nat-gateway";

/// A NAT gateway as desired.
#[derive(Debug, Clone)]
pub(crate) struct NatGateway {
    /// `nat/<zone>`.
    pub(crate) logical: String,
    pub(crate) zone: String,
    /// Its public subnet's id (`(subnet/public/<zone>)` while it is still to be made).
    pub(crate) subnet: String,
    /// Its address's allocation id (likewise).
    pub(crate) allocation: String,
    pub(crate) tags: Tags,
}

/// A NAT gateway as a read found it (`pending` or `available`).
#[derive(Debug, Clone)]
pub(crate) struct LiveNat {
    pub(crate) id: String,
    pub(crate) tags: Tags,
    pub(crate) subnet_id: String,
    /// `nat/<zone>`, derived from the stack's subnet the gateway sits in.
    pub(crate) logical: Option<String>,
}

impl Resource for NatGateway {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveNat;
    /// Only its tags change in place.
    type Diff = TagDiff;
    /// Its id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.logical.clone()
    }

    fn detail(&self) -> String {
        format!("in {}", self.zone)
    }

    fn owner(live: &LiveNat) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveNat) -> Vec<TagDiff> {
        self.tags.diff_from(&live.tags).into_iter().collect()
    }

    /// Its subnet, once known, is the one it sits in.
    fn replacement(&self, live: &LiveNat) -> Option<String> {
        (!self.subnet.starts_with('(') && live.subnet_id != self.subnet)
            .then(|| format!("subnet {} → {}", live.subnet_id, self.subnet))
    }

    fn output(live: &LiveNat) -> String {
        live.id.clone()
    }

    /// Its id; nothing waits for it to be available here (the facade's NAT wait does).
    fn created(id: &String) -> Option<String> {
        Some(format!("{id} (provisioning; not waited for here)"))
    }

    /// `CreateNatGateway`, idempotent by a client token from its subnet and address.
    async fn create(&self, ctx: &Context, ec2: &Client) -> Result<String> {
        let token = ctx.client_token(
            &self.logical,
            &format!("{} {}", self.subnet, self.allocation),
        );
        let out = ctx
            .call(
                "CreateNatGateway",
                &format!("{KIND} {}", self.logical),
                || {
                    ec2.create_nat_gateway()
                        .subnet_id(&self.subnet)
                        .allocation_id(&self.allocation)
                        .client_token(&token)
                        .tag_specifications(tag_spec(ResourceType::Natgateway, &self.tags))
                        .send()
                },
            )
            .await?;
        Ok(out
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .unwrap_or_default()
            .to_string())
    }

    async fn update(
        &self,
        ctx: &Context,
        ec2: &Client,
        live: &LiveNat,
        diffs: &[TagDiff],
    ) -> Result<()> {
        let resource = format!("{KIND} {}", self.logical);
        set_all_tags(ctx, ec2, &resource, &live.id, diffs).await
    }

    /// `DeleteNatGateway`; the teardown waits for all of them at once before it releases
    /// their addresses.
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveNat) -> Result<()> {
        ok_if_gone(
            ctx.call("DeleteNatGateway", &format!("{KIND} {}", live.id), || {
                ec2.delete_nat_gateway().nat_gateway_id(&live.id).send()
            })
            .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::{Action, FieldDiff};

    #[test]
    fn typed_diff_table() {
        let tags = Tags::new().with("ecs:stack", "web");
        let desired = |subnet: &str| NatGateway {
            logical: "nat/a".into(),
            zone: "a".into(),
            subnet: subnet.into(),
            allocation: "eipalloc-1".into(),
            tags: tags.clone(),
        };
        let live = |tags: &Tags| LiveNat {
            id: "nat-1".into(),
            tags: tags.clone(),
            subnet_id: "subnet-1".into(),
            logical: Some("nat/a".into()),
        };
        let cases = [
            (desired("subnet-1"), live(&tags), Action::NoChange),
            // A subnet still to be made says nothing about where the gateway is.
            (desired("(subnet/public/a)"), live(&tags), Action::NoChange),
            (
                desired("subnet-1"),
                live(&Tags::new()),
                Action::Update(vec![FieldDiff::new("tags", "{}", "{ecs:stack=web}")]),
            ),
            (
                desired("subnet-2"),
                live(&tags),
                Action::Replace("subnet subnet-1 → subnet-2".into()),
            ),
        ];
        for (want, found, action) in cases {
            let planned = ecs_core::resource::decide(&want, Some(found));
            assert_eq!(planned.action(), action, "{want:?}");
        }
    }
}
