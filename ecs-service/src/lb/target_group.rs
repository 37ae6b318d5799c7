//! The target group: its diff (health check and attributes), create and update, and target
//! health.

use super::*;

/// One typed difference of the target group: the health check (one `ModifyTargetGroup` for
/// all its settings), an attribute (one `ModifyTargetGroupAttributes` for all), the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TgDiff {
    /// A health check setting: its name, the live value (`None`: unset) and the wanted one.
    Health {
        key: &'static str,
        live: Option<String>,
        want: String,
    },
    /// An attribute.
    Attribute(AttrDiff),
    /// The tags (`AddTags` / `RemoveTags`).
    Tags(TagDiff),
}

impl Diff for TgDiff {
    fn field(&self) -> FieldDiff {
        match self {
            TgDiff::Health { key, live, want } => FieldDiff::new(
                format!("health_check.{key}"),
                live.as_deref().unwrap_or("unset"),
                want,
            ),
            TgDiff::Attribute(a) => a.field(),
            TgDiff::Tags(t) => t.field(),
        }
    }
}

/// How the live target group differs from `d`, besides its port, protocol and VPC (a
/// replacement).
pub(super) fn tg_diffs(d: &DesiredTg, l: &LiveTg) -> Vec<TgDiff> {
    let mut diffs: Vec<TgDiff> = d
        .health
        .iter()
        .filter(|(k, v)| l.health.get(*k) != Some(v))
        .map(|(k, v)| TgDiff::Health {
            key: k,
            live: l.health.get(k).cloned(),
            want: v.clone(),
        })
        .collect();
    diffs.extend(
        attr_diffs(&d.attributes, &l.attributes)
            .into_iter()
            .map(TgDiff::Attribute),
    );
    diffs.extend(d.tags.diff_from(&l.tags).map(TgDiff::Tags));
    diffs
}

/// The target group as desired.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetGroup<'a>(pub(crate) &'a DesiredTg);

impl TargetGroup<'_> {
    fn resource(&self) -> String {
        format!("{TG_KIND} {}", self.0.name)
    }

    fn health(&self, key: &str) -> String {
        self.0.health.get(key).cloned().unwrap_or_default()
    }

    fn number(&self, key: &str) -> i32 {
        self.health(key).parse::<i32>().unwrap_or_default()
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
        ctx.call("ModifyTargetGroupAttributes", &self.resource(), || {
            elb.modify_target_group_attributes()
                .target_group_arn(arn)
                .set_attributes(Some(
                    attributes
                        .iter()
                        .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send()
        })
        .await?;
        Ok(())
    }
}

impl Resource for TargetGroup<'_> {
    const KIND: &'static str = TG_KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveTg;
    type Diff = TgDiff;
    /// Its ARN.
    type Output = String;
    type Error = Error;

    /// Its name (plans name the target group by it).
    fn logical_id(&self) -> String {
        self.0.name.clone()
    }

    fn owner(live: &LiveTg) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveTg) -> Vec<TgDiff> {
        tg_diffs(self.0, live)
    }

    /// Its port, protocol and VPC cannot change.
    fn replacement(&self, l: &LiveTg) -> Option<String> {
        let d = self.0;
        (l.port != d.port || l.protocol != d.protocol || l.vpc_id != d.vpc_id).then(|| {
            format!(
                "port, protocol and VPC cannot change ({} {}:{} → {} {}:{})",
                l.vpc_id, l.protocol, l.port, d.vpc_id, d.protocol, d.port
            )
        })
    }

    fn output(live: &LiveTg) -> String {
        live.arn.clone()
    }

    fn created(arn: &String) -> Option<String> {
        Some(arn.clone())
    }

    async fn create(&self, ctx: &Context, elb: &Client) -> Result<String> {
        let d = self.0;
        let protocol = ProtocolEnum::from(d.protocol.as_str());
        let out = ctx
            .call("CreateTargetGroup", &self.resource(), || {
                elb.create_target_group()
                    .name(&d.name)
                    .protocol(protocol.clone())
                    .port(i32::from(d.port))
                    .vpc_id(&d.vpc_id)
                    .target_type(TargetTypeEnum::Ip)
                    .health_check_enabled(true)
                    .health_check_protocol(protocol.clone())
                    .health_check_path(self.health("path"))
                    .health_check_interval_seconds(self.number("interval"))
                    .health_check_timeout_seconds(self.number("timeout"))
                    .healthy_threshold_count(self.number("healthy_threshold"))
                    .unhealthy_threshold_count(self.number("unhealthy_threshold"))
                    .matcher(Matcher::builder().http_code(self.health("matcher")).build())
                    .set_tags(Some(tagging::elb_tags(&d.tags)))
                    .send()
            })
            .await?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .unwrap_or_default()
            .to_string();
        self.set_attributes(
            ctx,
            elb,
            &arn,
            &changed_attrs(&d.attributes, &BTreeMap::new()),
        )
        .await?;
        Ok(arn)
    }

    /// Each difference from the diff: the health check by one call for all of its settings,
    /// the attributes by one call, the tags by theirs.
    async fn update(
        &self,
        ctx: &Context,
        elb: &Client,
        l: &LiveTg,
        diffs: &[TgDiff],
    ) -> Result<()> {
        let resource = self.resource();
        if diffs.iter().any(|x| matches!(x, TgDiff::Health { .. })) {
            let protocol = ProtocolEnum::from(self.0.protocol.as_str());
            ctx.call("ModifyTargetGroup", &resource, || {
                elb.modify_target_group()
                    .target_group_arn(&l.arn)
                    .health_check_protocol(protocol.clone())
                    .health_check_path(self.health("path"))
                    .health_check_interval_seconds(self.number("interval"))
                    .health_check_timeout_seconds(self.number("timeout"))
                    .healthy_threshold_count(self.number("healthy_threshold"))
                    .unhealthy_threshold_count(self.number("unhealthy_threshold"))
                    .matcher(Matcher::builder().http_code(self.health("matcher")).build())
                    .send()
            })
            .await?;
        }
        let mut attributes = Vec::new();
        for diff in diffs {
            match diff {
                TgDiff::Health { .. } => {}
                TgDiff::Attribute(a) => attributes.push((a.key.clone(), a.want.clone())),
                TgDiff::Tags(t) => tagging::elb(ctx, elb, &resource, &l.arn, t).await?,
            }
        }
        self.set_attributes(ctx, elb, &l.arn, &attributes).await
    }

    /// Deletes it, retrying while the service that used it lets go.
    async fn delete(ctx: &Context, elb: &Client, live: &LiveTg) -> Result<()> {
        let resource = format!("{TG_KIND} {}", live.name);
        let retry = RetryOn::codes(&["ResourceInUse"], Duration::from_secs(120));
        match ctx
            .call_retrying("DeleteTargetGroup", &resource, &retry, || {
                elb.delete_target_group().target_group_arn(&live.arn).send()
            })
            .await
        {
            Err(e) if !e.is_code("TargetGroupNotFound") => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Target health counts of the target group: (healthy, unhealthy, other) and the reasons of
/// unhealthy targets.
pub(crate) async fn target_health(
    ctx: &Context,
    elb: &Client,
    tg_arn: &str,
) -> Result<(usize, usize, usize, Vec<String>)> {
    let out = ctx
        .call(
            "DescribeTargetHealth",
            &format!("{TG_KIND} {tg_arn}"),
            || elb.describe_target_health().target_group_arn(tg_arn).send(),
        )
        .await?;
    let (mut healthy, mut unhealthy, mut other, mut reasons) = (0, 0, 0, Vec::new());
    for t in out.target_health_descriptions() {
        match t
            .target_health()
            .and_then(|h| h.state())
            .map(|s| s.as_str())
        {
            Some("healthy") => healthy += 1,
            Some("unhealthy") => {
                unhealthy += 1;
                if let Some(d) = t.target_health().and_then(|h| h.description()) {
                    reasons.push(d.to_string());
                }
            }
            _ => other += 1,
        }
    }
    Ok((healthy, unhealthy, other, reasons))
}
