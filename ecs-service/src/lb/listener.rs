//! Listeners: what they do (`ActionDoc`), their diff, and create or update with their rules.

use super::*;

/// What a listener or rule does, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ActionDoc {
    /// Forward to the stack's target group.
    Forward,
    Redirect {
        port: u16,
    },
    Fixed {
        status: String,
        content_type: String,
        body: String,
    },
    /// Anything else (e.g. forwarding to another target group).
    Other(String),
}

impl std::fmt::Display for ActionDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionDoc::Forward => write!(f, "forward to target group"),
            ActionDoc::Redirect { port } => write!(f, "redirect to HTTPS:{port}"),
            ActionDoc::Fixed { status, .. } => write!(f, "fixed response {status}"),
            ActionDoc::Other(s) => write!(f, "{s}"),
        }
    }
}

impl From<&ListenerAction> for ActionDoc {
    fn from(a: &ListenerAction) -> Self {
        match a {
            ListenerAction::Forward => ActionDoc::Forward,
            ListenerAction::RedirectToHttps { port } => ActionDoc::Redirect { port: *port },
            ListenerAction::FixedResponse {
                status,
                content_type,
                body,
            } => ActionDoc::Fixed {
                status: status.to_string(),
                content_type: content_type.clone(),
                body: body.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerDoc {
    pub(crate) protocol: String,
    pub(crate) certificate: Option<String>,
    pub(crate) ssl_policy: Option<String>,
    pub(crate) default_action: ActionDoc,
    pub(crate) rules: BTreeMap<u32, RuleDoc>,
}

pub(super) fn action_doc(actions: &[ElbAction], tg_arn: Option<&str>) -> ActionDoc {
    let Some(a) = actions.iter().min_by_key(|a| a.order().unwrap_or(0)) else {
        return ActionDoc::Other("none".into());
    };
    match a.r#type() {
        Some(ActionTypeEnum::Forward) => {
            let target = a.target_group_arn().or_else(|| {
                a.forward_config()
                    .and_then(|f| f.target_groups().first())
                    .and_then(|t| t.target_group_arn())
            });
            if target.is_some() && target == tg_arn {
                ActionDoc::Forward
            } else {
                ActionDoc::Other(format!("forward to {}", target.unwrap_or("?")))
            }
        }
        Some(ActionTypeEnum::Redirect) => match a.redirect_config() {
            Some(r)
                if r.protocol() == Some("HTTPS")
                    && r.status_code() == Some(&RedirectActionStatusCodeEnum::Http301)
                    && r.host().is_none_or(|h| h == "#{host}")
                    && r.path().is_none_or(|p| p == "/#{path}")
                    && r.query().is_none_or(|q| q == "#{query}") =>
            {
                match r.port().and_then(|p| p.parse().ok()) {
                    Some(port) => ActionDoc::Redirect { port },
                    None => ActionDoc::Other("redirect".into()),
                }
            }
            _ => ActionDoc::Other("redirect".into()),
        },
        Some(ActionTypeEnum::FixedResponse) => {
            let f = a.fixed_response_config();
            ActionDoc::Fixed {
                status: f
                    .and_then(|f| f.status_code())
                    .unwrap_or_default()
                    .to_string(),
                content_type: f
                    .and_then(|f| f.content_type())
                    .unwrap_or("text/plain")
                    .to_string(),
                body: f
                    .and_then(|f| f.message_body())
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        other => ActionDoc::Other(format!("{other:?}")),
    }
}

pub(super) fn elb_actions(doc: &ActionDoc, tg_arn: &str) -> Vec<ElbAction> {
    let action = match doc {
        ActionDoc::Forward | ActionDoc::Other(_) => ElbAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(tg_arn),
        ActionDoc::Redirect { port } => ElbAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port(port.to_string())
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            ),
        ActionDoc::Fixed {
            status,
            content_type,
            body,
        } => ElbAction::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status)
                    .content_type(content_type)
                    .message_body(body)
                    .build(),
            ),
    };
    vec![action.build()]
}

pub(super) fn listener_diffs(want: &ListenerDoc, have: &ListenerDoc) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    if want.protocol != have.protocol {
        d.push(FieldDiff::new("protocol", &have.protocol, &want.protocol));
    }
    if want.certificate != have.certificate {
        d.push(FieldDiff::new(
            "certificate",
            opt(&have.certificate),
            opt(&want.certificate),
        ));
    }
    if want.ssl_policy != have.ssl_policy {
        d.push(FieldDiff::new(
            "ssl_policy",
            opt(&have.ssl_policy),
            opt(&want.ssl_policy),
        ));
    }
    if want.default_action != have.default_action {
        d.push(FieldDiff::new(
            "default_action",
            &have.default_action,
            &want.default_action,
        ));
    }
    d
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn ensure_listener(
    ctx: &Context,
    elb: &Client,
    lb_arn: &str,
    tg_arn: &str,
    port: u16,
    want: &ListenerDoc,
    live: Option<&LiveListener>,
    tg_is_new: bool,
) -> Result<String> {
    let resource = format!("{LISTENER_KIND} :{port}");
    let certs = want
        .certificate
        .as_ref()
        .map(|c| vec![Certificate::builder().certificate_arn(c).build()]);
    let arn = match live {
        Some(l) => {
            let stale_forward = tg_is_new && want.default_action == ActionDoc::Forward;
            if !listener_diffs(want, &l.doc).is_empty() || stale_forward {
                ctx.call("ModifyListener", &resource, || {
                    elb.modify_listener()
                        .listener_arn(&l.arn)
                        .port(i32::from(port))
                        .protocol(ProtocolEnum::from(want.protocol.as_str()))
                        .set_certificates(certs.clone())
                        .set_ssl_policy(want.ssl_policy.clone())
                        .set_default_actions(Some(elb_actions(&want.default_action, tg_arn)))
                        .send()
                })
                .await?;
            }
            l.arn.clone()
        }
        None => {
            let out = ctx
                .call("CreateListener", &resource, || {
                    elb.create_listener()
                        .load_balancer_arn(lb_arn)
                        .port(i32::from(port))
                        .protocol(ProtocolEnum::from(want.protocol.as_str()))
                        .set_certificates(certs.clone())
                        .set_ssl_policy(want.ssl_policy.clone())
                        .set_default_actions(Some(elb_actions(&want.default_action, tg_arn)))
                        .set_tags(Some(tagging::elb_tags(
                            &ctx.resource_tags(Some(&format!("listener/{port}")), None),
                        )))
                        .send()
                })
                .await?;
            out.listeners()
                .first()
                .and_then(|l| l.listener_arn())
                .unwrap_or_default()
                .to_string()
        }
    };
    let have_rules = live.map(|l| (&l.doc.rules, &l.rule_arns));
    let rule_calls = want.rules.iter().map(|(priority, rule)| {
        let resource = format!("{RULE_KIND} :{port}/{priority}");
        let arn = arn.clone();
        async move {
            let existing = have_rules
                .and_then(|(docs, arns)| Some((docs.get(priority)?, arns.get(priority)?)));
            match existing {
                Some((doc, _))
                    if rule_diffs(rule, doc).is_empty()
                        && !(tg_is_new && rule.action == ActionDoc::Forward) =>
                {
                    Ok(())
                }
                Some((_, rule_arn)) => ctx
                    .call("ModifyRule", &resource, || {
                        elb.modify_rule()
                            .rule_arn(rule_arn)
                            .set_conditions(Some(conditions(rule)))
                            .set_actions(Some(elb_actions(&rule.action, tg_arn)))
                            .send()
                    })
                    .await
                    .map(|_| ()),
                None => ctx
                    .call("CreateRule", &resource, || {
                        elb.create_rule()
                            .listener_arn(&arn)
                            .priority(*priority as i32)
                            .set_conditions(Some(conditions(rule)))
                            .set_actions(Some(elb_actions(&rule.action, tg_arn)))
                            .set_tags(Some(tagging::elb_tags(
                                &ctx.resource_tags(Some(&format!("rule/{port}/{priority}")), None),
                            )))
                            .send()
                    })
                    .await
                    .map(|_| ()),
            }
        }
    });
    let deletes = have_rules
        .map(|(_, arns)| {
            arns.iter()
                .filter(|(p, _)| !want.rules.contains_key(p))
                .map(|(p, a)| (*p, a.clone()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let delete_calls = deletes.iter().map(|(priority, rule_arn)| {
        let resource = format!("{RULE_KIND} :{port}/{priority}");
        async move {
            ctx.call("DeleteRule", &resource, || {
                elb.delete_rule().rule_arn(rule_arn).send()
            })
            .await
            .map(|_| ())
        }
    });
    futures_util::try_join!(
        futures_util::future::try_join_all(rule_calls),
        futures_util::future::try_join_all(delete_calls)
    )?;
    Ok(arn)
}
