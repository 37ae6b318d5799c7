//! The target group: its diff (health check and attributes), create and update, and target
//! health.

use super::*;

pub(super) fn tg_action(d: &DesiredTg, live: Option<&LiveTg>) -> Action {
    match live {
        None => Action::Create,
        Some(l) if l.port != d.port || l.protocol != d.protocol || l.vpc_id != d.vpc_id => {
            Action::Replace(format!(
                "port, protocol and VPC cannot change ({} {}:{} → {} {}:{})",
                l.vpc_id, l.protocol, l.port, d.vpc_id, d.protocol, d.port
            ))
        }
        Some(l) => Action::from_diffs(
            tg_diffs(d, l)
                .iter()
                .map(ecs_core::resource::Diff::field)
                .collect(),
        ),
    }
}

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

impl ecs_core::resource::Diff for TgDiff {
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

pub(super) async fn ensure_tg(
    ctx: &Context,
    elb: &Client,
    d: &DesiredTg,
    live: Option<&LiveTg>,
) -> Result<String> {
    let resource = format!("{TG_KIND} {}", d.name);
    let h = |k: &str| d.health.get(k).cloned().unwrap_or_default();
    let n = |k: &str| h(k).parse::<i32>().unwrap_or_default();
    let protocol = ProtocolEnum::from(d.protocol.as_str());
    let (arn, attributes) = match live {
        Some(l) => {
            // Each difference from the diff: the health check by one call for all of its
            // settings, the attributes by one call, the tags by theirs.
            let diffs = tg_diffs(d, l);
            if diffs.iter().any(|x| matches!(x, TgDiff::Health { .. })) {
                ctx.call("ModifyTargetGroup", &resource, || {
                    elb.modify_target_group()
                        .target_group_arn(&l.arn)
                        .health_check_protocol(protocol.clone())
                        .health_check_path(h("path"))
                        .health_check_interval_seconds(n("interval"))
                        .health_check_timeout_seconds(n("timeout"))
                        .healthy_threshold_count(n("healthy_threshold"))
                        .unhealthy_threshold_count(n("unhealthy_threshold"))
                        .matcher(Matcher::builder().http_code(h("matcher")).build())
                        .send()
                })
                .await?;
            }
            let mut attributes = Vec::new();
            for diff in diffs {
                match diff {
                    TgDiff::Health { .. } => {}
                    TgDiff::Attribute(a) => attributes.push((a.key, a.want)),
                    TgDiff::Tags(t) => tagging::elb(ctx, elb, &resource, &l.arn, &t).await?,
                }
            }
            (l.arn.clone(), attributes)
        }
        None => {
            let out = ctx
                .call("CreateTargetGroup", &resource, || {
                    elb.create_target_group()
                        .name(&d.name)
                        .protocol(protocol.clone())
                        .port(i32::from(d.port))
                        .vpc_id(&d.vpc_id)
                        .target_type(TargetTypeEnum::Ip)
                        .health_check_enabled(true)
                        .health_check_protocol(protocol.clone())
                        .health_check_path(h("path"))
                        .health_check_interval_seconds(n("interval"))
                        .health_check_timeout_seconds(n("timeout"))
                        .healthy_threshold_count(n("healthy_threshold"))
                        .unhealthy_threshold_count(n("unhealthy_threshold"))
                        .matcher(Matcher::builder().http_code(h("matcher")).build())
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
            (arn, changed_attrs(&d.attributes, &BTreeMap::new()))
        }
    };
    if !attributes.is_empty() {
        ctx.call("ModifyTargetGroupAttributes", &resource, || {
            elb.modify_target_group_attributes()
                .target_group_arn(&arn)
                .set_attributes(Some(
                    attributes
                        .iter()
                        .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send()
        })
        .await?;
    }
    Ok(arn)
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
