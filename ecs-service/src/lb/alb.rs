//! The application load balancer: its diff, create and update, deletion and the wait for its
//! network interfaces to go.

use super::*;

/// One typed difference of the load balancer: each is set right by its own call (the
/// attributes by one call for all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AlbDiff {
    /// Its subnets (`SetSubnets`).
    Subnets {
        live: Vec<String>,
        want: Vec<String>,
    },
    /// Its security groups (`SetSecurityGroups`).
    SecurityGroups {
        live: Vec<String>,
        want: Vec<String>,
    },
    /// An attribute (`ModifyLoadBalancerAttributes`).
    Attribute(AttrDiff),
    /// The tags (`AddTags` / `RemoveTags`).
    Tags(TagDiff),
}

impl Diff for AlbDiff {
    fn field(&self) -> FieldDiff {
        match self {
            AlbDiff::Subnets { live, want } => {
                FieldDiff::new("subnets", live.join(","), want.join(","))
            }
            AlbDiff::SecurityGroups { live, want } => {
                FieldDiff::new("security_groups", live.join(","), want.join(","))
            }
            AlbDiff::Attribute(a) => a.field(),
            AlbDiff::Tags(t) => t.field(),
        }
    }
}

/// How the live load balancer differs from `d`, besides its scheme (a replacement).
pub(super) fn alb_diffs(d: &DesiredLb, l: &LiveAlb) -> Vec<AlbDiff> {
    let mut diffs = Vec::new();
    if l.subnets != d.subnets {
        diffs.push(AlbDiff::Subnets {
            live: l.subnets.clone(),
            want: d.subnets.clone(),
        });
    }
    if l.security_groups != d.security_groups {
        diffs.push(AlbDiff::SecurityGroups {
            live: l.security_groups.clone(),
            want: d.security_groups.clone(),
        });
    }
    diffs.extend(
        attr_diffs(&d.attributes, &l.attributes)
            .into_iter()
            .map(AlbDiff::Attribute),
    );
    diffs.extend(d.tags.diff_from(&l.tags).map(AlbDiff::Tags));
    diffs
}

/// The load balancer as desired (the part of [`DesiredLb`] that is its own).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Alb<'a>(pub(crate) &'a DesiredLb);

fn scheme(internal: bool) -> &'static str {
    if internal {
        "internal"
    } else {
        "internet-facing"
    }
}

impl Alb<'_> {
    fn resource(&self) -> String {
        format!("{LB_KIND} {}", self.0.name)
    }

    async fn set_attributes(
        &self,
        ctx: &Context,
        elb: &Client,
        arn: &str,
        attributes: &[(String, String)],
    ) -> Result<()> {
        if attributes.is_empty() {
            return Ok(());
        }
        ctx.call("ModifyLoadBalancerAttributes", &self.resource(), || {
            elb.modify_load_balancer_attributes()
                .load_balancer_arn(arn)
                .set_attributes(Some(
                    attributes
                        .iter()
                        .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send()
        })
        .await?;
        Ok(())
    }
}

impl Resource for Alb<'_> {
    const KIND: &'static str = LB_KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveAlb;
    type Diff = AlbDiff;
    /// Its ARN and DNS name.
    type Output = (String, String);
    type Error = Error;

    /// Its name (plans name the load balancer by it).
    fn logical_id(&self) -> String {
        self.0.name.clone()
    }

    fn owner(live: &LiveAlb) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveAlb) -> Vec<AlbDiff> {
        alb_diffs(self.0, live)
    }

    /// Its scheme cannot change.
    fn replacement(&self, live: &LiveAlb) -> Option<String> {
        (live.internal != self.0.internal).then(|| {
            format!(
                "scheme {} → {}",
                scheme(live.internal),
                scheme(self.0.internal)
            )
        })
    }

    fn output(live: &LiveAlb) -> (String, String) {
        (live.arn.clone(), live.dns_name.clone())
    }

    fn created((_, dns): &(String, String)) -> Option<String> {
        Some(dns.clone())
    }

    async fn create(&self, ctx: &Context, elb: &Client) -> Result<(String, String)> {
        let d = self.0;
        // CreateLoadBalancer is idempotent by name on AWS (not on every emulator): the
        // observation before this call is what prevents a second one.
        let out = ctx
            .call("CreateLoadBalancer", &self.resource(), || {
                elb.create_load_balancer()
                    .name(&d.name)
                    .r#type(LoadBalancerTypeEnum::Application)
                    .scheme(if d.internal {
                        LoadBalancerSchemeEnum::Internal
                    } else {
                        LoadBalancerSchemeEnum::InternetFacing
                    })
                    .ip_address_type(IpAddressType::Ipv4)
                    .set_subnets(Some(d.subnets.clone()))
                    .set_security_groups(Some(d.security_groups.clone()))
                    .set_tags(Some(tagging::elb_tags(&d.tags)))
                    .send()
            })
            .await?;
        let lb = out.load_balancers().first();
        let arn = lb
            .and_then(|l| l.load_balancer_arn())
            .unwrap_or_default()
            .to_string();
        let dns = lb
            .and_then(|l| l.dns_name())
            .unwrap_or_default()
            .to_string();
        self.set_attributes(
            ctx,
            elb,
            &arn,
            &changed_attrs(&d.attributes, &BTreeMap::new()),
        )
        .await?;
        Ok((arn, dns))
    }

    /// Each difference by its own call, from the diff; the attributes by one call.
    async fn update(
        &self,
        ctx: &Context,
        elb: &Client,
        l: &LiveAlb,
        diffs: &[AlbDiff],
    ) -> Result<()> {
        let resource = self.resource();
        let mut attributes = Vec::new();
        for diff in diffs {
            match diff {
                AlbDiff::Subnets { want, .. } => {
                    ctx.call("SetSubnets", &resource, || {
                        elb.set_subnets()
                            .load_balancer_arn(&l.arn)
                            .set_subnets(Some(want.clone()))
                            .send()
                    })
                    .await?;
                }
                AlbDiff::SecurityGroups { want, .. } => {
                    ctx.call("SetSecurityGroups", &resource, || {
                        elb.set_security_groups()
                            .load_balancer_arn(&l.arn)
                            .set_security_groups(Some(want.clone()))
                            .send()
                    })
                    .await?;
                }
                AlbDiff::Attribute(a) => attributes.push((a.key.clone(), a.want.clone())),
                AlbDiff::Tags(t) => tagging::elb(ctx, elb, &resource, &l.arn, t).await?,
            }
        }
        self.set_attributes(ctx, elb, &l.arn, &attributes).await
    }

    /// Deletes it and waits until it is gone.
    async fn delete(ctx: &Context, elb: &Client, live: &LiveAlb) -> Result<()> {
        delete_alb(ctx, elb, format!("{LB_KIND} {}", live.name), &live.arn).await
    }
}

/// Deletes the load balancer and waits until it is gone.
async fn delete_alb(ctx: &Context, elb: &Client, resource: String, arn: &str) -> Result<()> {
    match ctx
        .call("DeleteLoadBalancer", &resource, || {
            elb.delete_load_balancer().load_balancer_arn(arn).send()
        })
        .await
    {
        Err(e) if !e.is_code("LoadBalancerNotFound") => return Err(e.into()),
        _ => {}
    }
    ctx.poll(
        &resource,
        "deletion",
        &PollPolicy::with_timeout(Duration::from_secs(300)),
        || async {
            match elb
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await
            {
                Err(e) => {
                    let e = ecs_core::AwsError::from_sdk("DescribeLoadBalancers", &resource, e);
                    if e.is_code("LoadBalancerNotFound") {
                        Ok(Poll::Ready(()))
                    } else {
                        Err(e)
                    }
                }
                Ok(out) if out.load_balancers().is_empty() => Ok(Poll::Ready(())),
                Ok(out) => Ok(Poll::Pending(
                    out.load_balancers()[0]
                        .state()
                        .and_then(|s| s.code())
                        .map_or("present".into(), |c| c.as_str().to_string()),
                )),
            }
        },
    )
    .await?;
    Ok(())
}

/// Waits until the network interfaces ELB created for the load balancer are gone.
pub(super) async fn wait_for_enis(
    ctx: &Context,
    ec2: &aws_sdk_ec2::Client,
    lb_arn: &str,
) -> Result<()> {
    let Some(suffix) = lb_arn
        .split_once(":loadbalancer/")
        .map(|(_, s)| s.to_string())
    else {
        return Ok(());
    };
    let description = format!("ELB {suffix}");
    let resource = format!("{LB_KIND} network interfaces");
    ctx.poll(
        &resource,
        "deletion",
        &PollPolicy::with_timeout(Duration::from_secs(600)),
        || async {
            let out = ctx
                .call("DescribeNetworkInterfaces", &resource, || {
                    ec2.describe_network_interfaces()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder()
                                .name("description")
                                .values(&description)
                                .build(),
                        )
                        .send()
                })
                .await?;
            let left = out
                .network_interfaces()
                .iter()
                .filter(|n| n.description() == Some(description.as_str()))
                .count();
            Ok(if left == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{left} left"))
            })
        },
    )
    .await?;
    Ok(())
}
