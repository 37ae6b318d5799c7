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

pub(super) fn rule_diffs(want: &RuleDoc, have: &RuleDoc) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    if want.paths != have.paths {
        d.push(FieldDiff::new(
            "paths",
            have.paths.join(","),
            want.paths.join(","),
        ));
    }
    if want.hosts != have.hosts {
        d.push(FieldDiff::new(
            "hosts",
            have.hosts.join(","),
            want.hosts.join(","),
        ));
    }
    if want.action != have.action {
        d.push(FieldDiff::new("action", &have.action, &want.action));
    }
    d
}
