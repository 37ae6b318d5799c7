//! Listeners: what they do (`ActionDoc`), their typed diff, and the `Listener` kind (its
//! rules are a kind of their own, `rule.rs`).

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

impl ActionDoc {
    /// Whether it redirects (a listener that only redirects serves no service's rules).
    pub(crate) fn is_redirect(&self) -> bool {
        matches!(self, ActionDoc::Redirect { .. })
    }
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

/// One typed difference of a listener: all are set right by one `ModifyListener` with the
/// whole desired listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListenerDiff {
    Protocol {
        live: String,
        want: String,
    },
    Certificate {
        live: Option<String>,
        want: Option<String>,
    },
    SslPolicy {
        live: Option<String>,
        want: Option<String>,
    },
    DefaultAction {
        live: ActionDoc,
        want: ActionDoc,
    },
    /// Its tags (`AddTags` / `RemoveTags`).
    Tags(TagDiff),
    /// It forwards to the stack's target group, which is made new in this run: the forward
    /// is pointed at the new one (shown only when the default action does not differ
    /// otherwise).
    StaleForward,
}

fn or_none(o: &Option<String>) -> String {
    o.clone().unwrap_or_else(|| "none".into())
}

impl Diff for ListenerDiff {
    fn field(&self) -> FieldDiff {
        match self {
            ListenerDiff::Protocol { live, want } => FieldDiff::new("protocol", live, want),
            ListenerDiff::Certificate { live, want } => {
                FieldDiff::new("certificate", or_none(live), or_none(want))
            }
            ListenerDiff::SslPolicy { live, want } => {
                FieldDiff::new("ssl_policy", or_none(live), or_none(want))
            }
            ListenerDiff::DefaultAction { live, want } => {
                FieldDiff::new("default_action", live, want)
            }
            ListenerDiff::Tags(t) => t.field(),
            ListenerDiff::StaleForward => FieldDiff::new(
                "default_action",
                "forward",
                "forward to the new target group",
            ),
        }
    }
}

/// A listener as desired: the port of the load balancer `lb_name`, what it does (its rules
/// are kinds of their own), the load balancer's and target group's ARNs (known once both
/// are made) and whether that target group is made new in this run.
#[derive(Debug, Clone)]
pub(crate) struct Listener<'a> {
    pub(crate) lb_name: &'a str,
    pub(crate) port: u16,
    pub(crate) want: &'a ListenerDoc,
    pub(crate) lb_arn: Known<String>,
    /// The target group's ARN; `None` for a load balancer without one (an environment's,
    /// whose listeners never forward by default).
    pub(crate) tg_arn: Option<Known<String>>,
    pub(crate) tg_is_new: bool,
    /// The tags it should carry.
    pub(crate) tags: Tags,
}

impl Listener<'_> {
    fn resource(&self) -> String {
        format!("{LISTENER_KIND} :{}", self.port)
    }

    fn certificates(&self) -> Option<Vec<Certificate>> {
        self.want
            .certificate
            .as_ref()
            .map(|c| vec![Certificate::builder().certificate_arn(c).build()])
    }

    fn actions(&self) -> Vec<ElbAction> {
        elb_actions(
            &self.want.default_action,
            self.tg_arn
                .as_ref()
                .and_then(Known::get)
                .map_or("", String::as_str),
        )
    }
}

impl Resource for Listener<'_> {
    const KIND: &'static str = LISTENER_KIND;
    /// A listener is its load balancer's.
    const OWNERSHIP: Ownership = Ownership::Owner;
    type Client = Client;
    type Live = LiveListener;
    type Diff = ListenerDiff;
    /// Its ARN.
    type Output = String;
    type Error = Error;

    /// `{load balancer}:{port}`.
    fn logical_id(&self) -> String {
        format!("{}:{}", self.lb_name, self.port)
    }

    fn owner(live: &LiveListener) -> Owner<'_> {
        Owner::Tags(&live.lb_tags)
    }

    fn diff(&self, live: &LiveListener) -> Vec<ListenerDiff> {
        let (want, have) = (self.want, &live.doc);
        let mut d = Vec::new();
        if want.protocol != have.protocol {
            d.push(ListenerDiff::Protocol {
                live: have.protocol.clone(),
                want: want.protocol.clone(),
            });
        }
        if want.certificate != have.certificate {
            d.push(ListenerDiff::Certificate {
                live: have.certificate.clone(),
                want: want.certificate.clone(),
            });
        }
        if want.ssl_policy != have.ssl_policy {
            d.push(ListenerDiff::SslPolicy {
                live: have.ssl_policy.clone(),
                want: want.ssl_policy.clone(),
            });
        }
        if want.default_action != have.default_action {
            d.push(ListenerDiff::DefaultAction {
                live: have.default_action.clone(),
                want: want.default_action.clone(),
            });
        }
        let action_differs = d
            .iter()
            .any(|x| matches!(x, ListenerDiff::DefaultAction { .. }));
        if self.tg_is_new && want.default_action == ActionDoc::Forward && !action_differs {
            d.push(ListenerDiff::StaleForward);
        }
        d.extend(self.tags.diff_from(&live.tags).map(ListenerDiff::Tags));
        d
    }

    fn output(live: &LiveListener) -> String {
        live.arn.clone()
    }

    fn created(arn: &String) -> Option<String> {
        Some(arn.clone())
    }

    async fn create(&self, ctx: &Context, elb: &Client) -> Result<String> {
        let Known::Known(lb_arn) = &self.lb_arn else {
            unreachable!("a listener is made once its load balancer exists")
        };
        let tags = tagging::elb_tags(&self.tags);
        let out = ctx
            .call("CreateListener", &self.resource(), || {
                elb.create_listener()
                    .load_balancer_arn(lb_arn)
                    .port(i32::from(self.port))
                    .protocol(ProtocolEnum::from(self.want.protocol.as_str()))
                    .set_certificates(self.certificates())
                    .set_ssl_policy(self.want.ssl_policy.clone())
                    .set_default_actions(Some(self.actions()))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        Ok(out
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_string())
    }

    /// Every difference but its tags by one call with the whole desired listener; its tags
    /// by their own calls.
    async fn update(
        &self,
        ctx: &Context,
        elb: &Client,
        live: &LiveListener,
        diffs: &[ListenerDiff],
    ) -> Result<()> {
        let resource = self.resource();
        for diff in diffs {
            if let ListenerDiff::Tags(t) = diff {
                tagging::elb(ctx, elb, &resource, &live.arn, t).await?;
            }
        }
        if diffs.iter().all(|d| matches!(d, ListenerDiff::Tags(_))) {
            return Ok(());
        }
        ctx.call("ModifyListener", &resource, || {
            elb.modify_listener()
                .listener_arn(&live.arn)
                .port(i32::from(self.port))
                .protocol(ProtocolEnum::from(self.want.protocol.as_str()))
                .set_certificates(self.certificates())
                .set_ssl_policy(self.want.ssl_policy.clone())
                .set_default_actions(Some(self.actions()))
                .send()
        })
        .await?;
        Ok(())
    }

    /// Deletes it (with its rules).
    async fn delete(ctx: &Context, elb: &Client, live: &LiveListener) -> Result<()> {
        match ctx
            .call(
                "DeleteListener",
                &format!("{LISTENER_KIND} {}", live.id),
                || elb.delete_listener().listener_arn(&live.arn).send(),
            )
            .await
        {
            Err(e) if !e.is_code("ListenerNotFound") => Err(e.into()),
            _ => Ok(()),
        }
    }
}
