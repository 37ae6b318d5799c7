//! Listener rules, keyed by priority: their conditions, diff and comparable form.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleDoc {
    pub(crate) paths: Vec<String>,
    pub(crate) hosts: Vec<String>,
    pub(crate) action: ActionDoc,
}

pub(super) fn conditions(doc: &RuleDoc) -> Vec<RuleCondition> {
    let mut out = Vec::new();
    if !doc.paths.is_empty() {
        out.push(
            RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(
                    PathPatternConditionConfig::builder()
                        .set_values(Some(doc.paths.clone()))
                        .build(),
                )
                .build(),
        );
    }
    if !doc.hosts.is_empty() {
        out.push(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    HostHeaderConditionConfig::builder()
                        .set_values(Some(doc.hosts.clone()))
                        .build(),
                )
                .build(),
        );
    }
    out
}

pub(super) fn rule_doc(
    rule: &aws_sdk_elasticloadbalancingv2::types::Rule,
    tg_arn: Option<&str>,
) -> RuleDoc {
    let mut paths = Vec::new();
    let mut hosts = Vec::new();
    for c in rule.conditions() {
        match c.field() {
            Some("path-pattern") => paths.extend(
                c.path_pattern_config()
                    .map(|p| p.values().to_vec())
                    .unwrap_or_else(|| c.values().to_vec()),
            ),
            Some("host-header") => hosts.extend(
                c.host_header_config()
                    .map(|p| p.values().to_vec())
                    .unwrap_or_else(|| c.values().to_vec()),
            ),
            other => paths.push(format!("unsupported condition {other:?}")),
        }
    }
    paths.sort();
    hosts.sort();
    RuleDoc {
        paths,
        hosts,
        action: action_doc(rule.actions(), tg_arn),
    }
}

/// One typed difference of a rule: all are set right by one `ModifyRule` with the whole
/// desired rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleDiff {
    Paths {
        live: Vec<String>,
        want: Vec<String>,
    },
    Hosts {
        live: Vec<String>,
        want: Vec<String>,
    },
    Action {
        live: ActionDoc,
        want: ActionDoc,
    },
    /// It forwards to the stack's target group, which is made new in this run.
    StaleForward,
}

impl Diff for RuleDiff {
    fn field(&self) -> FieldDiff {
        match self {
            RuleDiff::Paths { live, want } => {
                FieldDiff::new("paths", live.join(","), want.join(","))
            }
            RuleDiff::Hosts { live, want } => {
                FieldDiff::new("hosts", live.join(","), want.join(","))
            }
            RuleDiff::Action { live, want } => FieldDiff::new("action", live, want),
            RuleDiff::StaleForward => {
                FieldDiff::new("action", "forward", "forward to the new target group")
            }
        }
    }
}

/// A rule as it exists, with its load balancer's tags (its owner's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveRule {
    pub(crate) id: String,
    pub(crate) arn: String,
    pub(crate) doc: RuleDoc,
    pub(crate) lb_tags: Tags,
}

impl LiveListener {
    /// Its rule at `priority`, as read.
    pub(crate) fn rule(&self, priority: u32) -> Option<LiveRule> {
        Some(LiveRule {
            id: format!("{}/{priority}", self.id),
            arn: self.rule_arns.get(&priority)?.clone(),
            doc: self.doc.rules.get(&priority)?.clone(),
            lb_tags: self.lb_tags.clone(),
        })
    }
}

/// A rule as desired: its listener (`{load balancer}:{port}`, its ARN known once the listener
/// is made), its priority, what it matches and does, the target group's ARN and whether that
/// target group is made new in this run.
#[derive(Debug, Clone)]
pub(crate) struct ListenerRule<'a> {
    pub(crate) listener: String,
    pub(crate) port: u16,
    pub(crate) priority: u32,
    pub(crate) want: &'a RuleDoc,
    pub(crate) listener_arn: Known<String>,
    /// The target group's ARN (`None`: the load balancer has none).
    pub(crate) tg_arn: Option<Known<String>>,
    pub(crate) tg_is_new: bool,
}

impl ListenerRule<'_> {
    fn resource(&self) -> String {
        format!("{RULE_KIND} :{}/{}", self.port, self.priority)
    }

    fn actions(&self) -> Vec<ElbAction> {
        elb_actions(
            &self.want.action,
            self.tg_arn
                .as_ref()
                .and_then(Known::get)
                .map_or("", String::as_str),
        )
    }
}

impl Resource for ListenerRule<'_> {
    const KIND: &'static str = RULE_KIND;
    /// A rule is its load balancer's.
    const OWNERSHIP: Ownership = Ownership::Owner;
    type Client = Client;
    type Live = LiveRule;
    type Diff = RuleDiff;
    /// Nothing the other steps need.
    type Output = ();
    type Error = Error;

    /// `{load balancer}:{port}/{priority}`.
    fn logical_id(&self) -> String {
        format!("{}/{}", self.listener, self.priority)
    }

    fn owner(live: &LiveRule) -> Owner<'_> {
        Owner::Tags(&live.lb_tags)
    }

    fn diff(&self, live: &LiveRule) -> Vec<RuleDiff> {
        let (want, have) = (self.want, &live.doc);
        let mut d = Vec::new();
        if want.paths != have.paths {
            d.push(RuleDiff::Paths {
                live: have.paths.clone(),
                want: want.paths.clone(),
            });
        }
        if want.hosts != have.hosts {
            d.push(RuleDiff::Hosts {
                live: have.hosts.clone(),
                want: want.hosts.clone(),
            });
        }
        if want.action != have.action {
            d.push(RuleDiff::Action {
                live: have.action.clone(),
                want: want.action.clone(),
            });
        }
        let action_differs = d.iter().any(|x| matches!(x, RuleDiff::Action { .. }));
        if self.tg_is_new && want.action == ActionDoc::Forward && !action_differs {
            d.push(RuleDiff::StaleForward);
        }
        d
    }

    fn output(_live: &LiveRule) {}

    async fn create(&self, ctx: &Context, elb: &Client) -> Result<()> {
        let Known::Known(listener_arn) = &self.listener_arn else {
            unreachable!("a rule is made once its listener exists")
        };
        let tags = tagging::elb_tags(
            &ctx.resource_tags(Some(&format!("rule/{}/{}", self.port, self.priority)), None),
        );
        ctx.call("CreateRule", &self.resource(), || {
            elb.create_rule()
                .listener_arn(listener_arn)
                .priority(self.priority as i32)
                .set_conditions(Some(conditions(self.want)))
                .set_actions(Some(self.actions()))
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await?;
        Ok(())
    }

    /// Every difference by one call with the whole desired rule.
    async fn update(
        &self,
        ctx: &Context,
        elb: &Client,
        live: &LiveRule,
        _diffs: &[RuleDiff],
    ) -> Result<()> {
        ctx.call("ModifyRule", &self.resource(), || {
            elb.modify_rule()
                .rule_arn(&live.arn)
                .set_conditions(Some(conditions(self.want)))
                .set_actions(Some(self.actions()))
                .send()
        })
        .await?;
        Ok(())
    }

    async fn delete(ctx: &Context, elb: &Client, live: &LiveRule) -> Result<()> {
        ctx.call("DeleteRule", &format!("{RULE_KIND} {}", live.id), || {
            elb.delete_rule().rule_arn(&live.arn).send()
        })
        .await?;
        Ok(())
    }
}
