//! The internet gateway of the stack's VPC: attached to it (moved back when attached
//! elsewhere), and its tags.

use aws_sdk_ec2::types::ResourceType;
use aws_sdk_ec2::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, TagDiff, Tags};

use crate::ec2::{dependency_violation, ok_if_gone, set_tags, tag_spec};
use crate::error::{Error, Result};
use crate::ids::IGW;

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "internet-gateway";

/// The internet gateway as desired: attached to `vpc_id`.
#[derive(Debug, Clone)]
pub(crate) struct InternetGateway {
    /// The VPC's id (`(vpc)` while it is still to be made).
    pub(crate) vpc_id: String,
    pub(crate) tags: Tags,
}

/// An internet gateway as a read found it.
#[derive(Debug, Clone)]
pub(crate) struct LiveIgw {
    pub(crate) id: String,
    pub(crate) tags: Tags,
    pub(crate) attached_vpc: Option<String>,
}

/// One typed difference of the internet gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IgwDiff {
    /// Attached elsewhere or nowhere (`DetachInternetGateway`, `AttachInternetGateway`).
    Attachment {
        live: Option<String>,
        desired: String,
    },
    /// The tags.
    Tags(TagDiff),
}

impl Diff for IgwDiff {
    fn field(&self) -> FieldDiff {
        match self {
            IgwDiff::Attachment { live, desired } => {
                FieldDiff::new("attachment", live.as_deref().unwrap_or("detached"), desired)
            }
            IgwDiff::Tags(t) => t.field(),
        }
    }
}

impl InternetGateway {
    async fn attach(
        &self,
        ctx: &Context,
        ec2: &Client,
        id: &str,
        attached: Option<&str>,
    ) -> Result<()> {
        let resource = format!("{KIND} {IGW}");
        if let Some(other) = attached {
            ctx.call("DetachInternetGateway", &resource, || {
                ec2.detach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(other)
                    .send()
            })
            .await?;
        }
        ctx.call("AttachInternetGateway", &resource, || {
            ec2.attach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(&self.vpc_id)
                .send()
        })
        .await?;
        Ok(())
    }
}

impl Resource for InternetGateway {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveIgw;
    type Diff = IgwDiff;
    /// Its id.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        IGW.to_string()
    }

    fn owner(live: &LiveIgw) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveIgw) -> Vec<IgwDiff> {
        let mut d = Vec::new();
        if live.attached_vpc.as_deref() != Some(self.vpc_id.as_str()) {
            d.push(IgwDiff::Attachment {
                live: live.attached_vpc.clone(),
                desired: self.vpc_id.clone(),
            });
        }
        d.extend(self.tags.diff_from(&live.tags).map(IgwDiff::Tags));
        d
    }

    fn output(live: &LiveIgw) -> String {
        live.id.clone()
    }

    fn created(id: &String) -> Option<String> {
        Some(id.clone())
    }

    fn updated(id: &String) -> Option<String> {
        Some(id.clone())
    }

    /// `CreateInternetGateway` with its tags, then `AttachInternetGateway`.
    async fn create(&self, ctx: &Context, ec2: &Client) -> Result<String> {
        let out = ctx
            .call("CreateInternetGateway", &format!("{KIND} {IGW}"), || {
                ec2.create_internet_gateway()
                    .tag_specifications(tag_spec(ResourceType::InternetGateway, &self.tags))
                    .send()
            })
            .await?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .unwrap_or_default()
            .to_string();
        self.attach(ctx, ec2, &id, None).await?;
        Ok(id)
    }

    async fn update(
        &self,
        ctx: &Context,
        ec2: &Client,
        live: &LiveIgw,
        diffs: &[IgwDiff],
    ) -> Result<()> {
        for diff in diffs {
            match diff {
                IgwDiff::Attachment { live: attached, .. } => {
                    self.attach(ctx, ec2, &live.id, attached.as_deref()).await?
                }
                IgwDiff::Tags(t) => {
                    set_tags(ctx, ec2, &format!("{KIND} {IGW}"), &live.id, t).await?
                }
            }
        }
        Ok(())
    }

    /// Detached (retried while mapped public addresses linger), then deleted.
    async fn delete(ctx: &Context, ec2: &Client, live: &LiveIgw) -> Result<()> {
        let resource = format!("{KIND} {}", live.id);
        if let Some(vpc) = &live.attached_vpc {
            ok_if_gone(
                ctx.call_retrying(
                    "DetachInternetGateway",
                    &resource,
                    &dependency_violation(),
                    || {
                        ec2.detach_internet_gateway()
                            .internet_gateway_id(&live.id)
                            .vpc_id(vpc)
                            .send()
                    },
                )
                .await,
            )?;
        }
        ok_if_gone(
            ctx.call("DeleteInternetGateway", &resource, || {
                ec2.delete_internet_gateway()
                    .internet_gateway_id(&live.id)
                    .send()
            })
            .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::Action;

    #[test]
    fn typed_diff_table() {
        let tags = Tags::new().with("ecs:stack", "web");
        let desired = InternetGateway {
            vpc_id: "vpc-1".into(),
            tags: tags.clone(),
        };
        let live = |attached: Option<&str>, tags: &Tags| LiveIgw {
            id: "igw-1".into(),
            tags: tags.clone(),
            attached_vpc: attached.map(str::to_string),
        };
        let cases = [
            (live(Some("vpc-1"), &tags), Action::NoChange),
            (
                live(None, &tags),
                Action::Update(vec![FieldDiff::new("attachment", "detached", "vpc-1")]),
            ),
            (
                live(Some("vpc-2"), &Tags::new()),
                Action::Update(vec![
                    FieldDiff::new("attachment", "vpc-2", "vpc-1"),
                    FieldDiff::new("tags", "{}", "{ecs:stack=web}"),
                ]),
            ),
        ];
        for (found, action) in cases {
            let planned = ecs_core::resource::decide(&desired, Some(found.clone()));
            assert_eq!(planned.action(), action, "{found:?}");
        }
    }
}
