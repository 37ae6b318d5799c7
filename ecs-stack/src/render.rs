//! Text for people: the coloured plan, a deploy's outputs, the status, the destroy preview and
//! the summary of a valid manifest.

use std::io::IsTerminal;
use std::time::Duration;

use ecs_facade::net::Network;
use ecs_facade::observe::Monitoring;
use ecs_facade::service::CapacityProvider;
use ecs_facade::{DeployReport, DestroyReport, Plan, Stack, StackStatus};

use crate::plural;

/// A colour or weight, applied with the `console` crate's styles.
pub(crate) type Paint = fn(console::Style) -> console::Style;

pub(crate) const GREEN: Paint = console::Style::green;
pub(crate) const YELLOW: Paint = console::Style::yellow;
pub(crate) const RED: Paint = console::Style::red;
pub(crate) const MAGENTA: Paint = console::Style::magenta;
pub(crate) const CYAN: Paint = console::Style::cyan;
pub(crate) const BOLD: Paint = console::Style::bold;
pub(crate) const DIM: Paint = console::Style::dim;

/// Whether colours are allowed at all (`NO_COLOR` unset or empty).
pub(crate) fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in `code`'s style when `on`.
pub(crate) fn paint(on: bool, code: Paint, text: &str) -> String {
    code(console::Style::new())
        .force_styling(on)
        .apply_to(text)
        .to_string()
}

/// How standard output is coloured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// Whether to colour at all.
    pub(crate) colour: bool,
}

impl Style {
    /// Colours when standard output is a terminal, `NO_COLOR` is not set and the output is
    /// not JSON.
    pub(crate) fn for_stdout(json: bool) -> Self {
        Self {
            colour: !json && std::io::stdout().is_terminal() && colour_allowed(),
        }
    }

    /// `text` in colour `code`, if colouring.
    pub(crate) fn paint(self, code: Paint, text: &str) -> String {
        paint(self.colour, code, text)
    }

    /// The plan as the library renders it, each change coloured by its symbol: `+` green,
    /// `~` yellow, `-` red, `-/+` magenta; notes (`!`) in bold.
    pub(crate) fn plan(self, plan: &Plan) -> String {
        plan.to_string()
            .lines()
            .map(|line| self.plan_line(line))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn plan_line(self, line: &str) -> String {
        let t = line.trim_start();
        let code = if t.starts_with("-/+") || t.starts_with("must be replaced") {
            MAGENTA
        } else if t.starts_with('+') {
            GREEN
        } else if t.starts_with('~') {
            YELLOW
        } else if t.starts_with('-') {
            RED
        } else if t.starts_with("Plan:") || t.starts_with("No changes.") || t.starts_with('!') {
            BOLD
        } else {
            return line.to_string();
        };
        self.paint(code, line)
    }
}

/// The name serde gives a unit variant (`per_az`, `advanced`, `prod`), as written in manifests.
pub(crate) fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".to_string(),
    }
}

fn table(style: Style, title: &str, items: &[(&str, String)]) -> String {
    let mut lines = vec![style.paint(BOLD, title)];
    for (label, value) in items {
        lines.push(format!("  {label:<17} {value}"));
    }
    lines.join("\n")
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

/// What happened to the rollout of a deploy.
pub(crate) fn rollout_text(report: &DeployReport, waited: bool) -> String {
    match (&report.rollout, &report.outputs.service.deployment) {
        (Some(r), _) => format!(
            "deployment {} completed: {} task{} running {} (waited {:.1}s)",
            r.deployment,
            r.running,
            if r.running == 1 { "" } else { "s" },
            r.task_definition,
            r.waited.as_secs_f64()
        ),
        (None, Some(d)) if !waited => format!("deployment {d} started, not waited for (--no-wait)"),
        (None, Some(d)) => format!("deployment {d} started"),
        (None, None) => "no new deployment (the service did not change)".to_string(),
    }
}

/// A deploy's outputs.
pub(crate) fn deploy_report(style: Style, report: &DeployReport, waited: bool) -> String {
    let o = &report.outputs;
    let s = &o.service;
    let n = &o.network;
    let url = s
        .url
        .as_deref()
        .map_or_else(|| "-".to_string(), |u| style.paint(CYAN, u));
    let alarms = if o.alarms.is_empty() {
        "-".to_string()
    } else {
        o.alarms.join(", ")
    };
    table(
        style,
        "Outputs:",
        &[
            ("url", url),
            ("load balancer", or_dash(s.load_balancer_dns.as_deref())),
            ("repository", or_dash(s.repository_uri.as_deref())),
            ("cluster", s.cluster_arn.clone()),
            ("service", s.service_arn.clone()),
            ("task definition", s.task_definition_arn.clone()),
            ("log group", o.log_group.clone()),
            ("dashboard", or_dash(o.dashboard_url.as_deref())),
            ("vpc", format!("{} ({})", n.vpc_id, n.vpc_cidr)),
            ("public subnets", n.public_subnets.join(", ")),
            ("private subnets", n.private_subnets.join(", ")),
            ("alarms", alarms),
            ("autoscaling", or_dash(o.scaling_resource_id.as_deref())),
            ("rollout", rollout_text(report, waited)),
            ("duration", format!("{:.1}s", report.duration.as_secs_f64())),
        ],
    )
}

/// What an image-only release did.
pub(crate) fn release(style: Style, r: &ecs_facade::service::ReleaseReport) -> String {
    if !r.released {
        return format!(
            "Nothing to release: container `{}` of {} runs {} already ({}).",
            r.container, r.service, r.image, r.previous_task_definition
        );
    }
    let rollout = match &r.rollout {
        Some(w) => format!(
            "{} ({} task{} running, waited {:.1}s)",
            style.paint(GREEN, "completed"),
            w.running,
            if w.running == 1 { "" } else { "s" },
            w.waited.as_secs_f64()
        ),
        None => "not waited for (--no-wait)".to_string(),
    };
    table(
        style,
        "Released:",
        &[
            ("service", r.service.clone()),
            (
                "container",
                format!("{}: {} → {}", r.container, r.previous_image, r.image),
            ),
            (
                "task definition",
                format!("{} → {}", r.previous_task_definition, r.task_definition),
            ),
            ("deployment", or_dash(r.deployment.as_deref())),
            ("rollout", rollout),
        ],
    )
}

fn state_colour(state: &str) -> Paint {
    match state {
        "OK" | "COMPLETED" | "ACTIVE" => GREEN,
        "ALARM" | "FAILED" => RED,
        "IN_PROGRESS" => YELLOW,
        _ => DIM,
    }
}

/// The service's tasks, deployments, target health and events, and the alarms' states.
pub(crate) fn status(style: Style, stack: &str, status: &StackStatus) -> String {
    let mut lines = Vec::new();
    match &status.service {
        None => lines.push(format!(
            "{} not found (is stack `{stack}` deployed?)",
            style.paint(BOLD, "Service:")
        )),
        Some(s) => {
            lines.push(format!(
                "{} {}",
                style.paint(BOLD, "Service:"),
                style.paint(state_colour(&s.status), &s.status)
            ));
            lines.push(format!(
                "  tasks            {} running, {} pending, {} desired",
                s.running, s.pending, s.desired
            ));
            lines.push(format!("  task definition  {}", s.task_definition));
            lines.push(match s.targets {
                Some((healthy, unhealthy, other)) => format!(
                    "  targets          {healthy} healthy, {unhealthy} unhealthy, {other} other"
                ),
                None => "  targets          - (no load balancer)".to_string(),
            });
            lines.push("  deployments:".to_string());
            for d in &s.deployments {
                let (running, pending, desired, failed) = d.counts;
                let state = style.paint(
                    state_colour(&d.rollout_state),
                    &format!("{:<11}", d.rollout_state),
                );
                lines.push(format!(
                    "    {:<8} {state} {}: {running} running, {pending} pending, {desired} desired, {failed} failed",
                    d.status, d.id
                ));
                lines.push(format!("             {}", d.task_definition));
                if !d.reason.is_empty() {
                    lines.push(format!("             {}", d.reason));
                }
            }
            if !s.events.is_empty() {
                lines.push("  last events:".to_string());
                for event in s.events.iter().take(5) {
                    lines.push(format!("    {event}"));
                }
            }
        }
    }
    if status.alarms.is_empty() {
        lines.push(format!("{} none", style.paint(BOLD, "Alarms:")));
    } else {
        lines.push(style.paint(BOLD, "Alarms:"));
        for a in &status.alarms {
            let state = style.paint(state_colour(&a.state), &format!("{:<17}", a.state));
            lines.push(format!("  {state} {}", a.name));
        }
    }
    lines.join("\n")
}

/// What a destroy would delete and keep.
pub(crate) fn destroy_preview(style: Style, stack: &str, preview: &DestroyReport) -> String {
    let mut lines = Vec::new();
    if preview.deleted.pending().next().is_none() {
        lines.push(format!("Nothing of stack `{stack}` found to delete."));
    } else {
        lines.push(style.paint(BOLD, &format!("Destroying stack `{stack}` deletes:")));
        lines.push(style.plan(&preview.deleted));
    }
    if !preview.kept.is_empty() {
        lines.push(style.paint(BOLD, "Kept:"));
        for k in &preview.kept {
            lines.push(format!("  {k}"));
        }
    }
    lines.join("\n")
}

/// What a destroy did.
pub(crate) fn destroyed(
    style: Style,
    stack: &str,
    report: &DestroyReport,
    took: Duration,
) -> String {
    let deleted = report.deleted.pending().count();
    let mut lines = vec![format!(
        "{} {deleted} resource{} of stack `{stack}` in {:.1}s.",
        style.paint(GREEN, "Deleted"),
        plural(deleted),
        took.as_secs_f64()
    )];
    for k in &report.kept {
        lines.push(format!("  kept: {k}"));
    }
    lines.join("\n")
}

/// The stack a valid manifest describes, profile defaults applied.
pub(crate) fn summary(stack: &Stack, profile: Option<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    let profile = profile
        .map(|p| format!(" (profile {p}, its defaults applied)"))
        .unwrap_or_default();
    lines.push(format!("stack          {}{profile}", stack.name));
    let task = &stack.service.task;
    for c in &task.containers {
        let ports: Vec<String> = c.ports.iter().map(ToString::to_string).collect();
        lines.push(format!(
            "container      {} {} (port {})",
            c.name,
            c.image,
            ports.join(", ")
        ));
    }
    lines.push(format!(
        "task           {} CPU / {} MiB, {}",
        task.cpu,
        task.memory,
        task.architecture.as_str()
    ));
    let settings = &stack.service.service;
    let spot = settings
        .capacity_provider_strategy
        .iter()
        .any(|s| s.provider == CapacityProvider::FargateSpot);
    lines.push(format!(
        "tasks          {} on {}",
        settings.desired_count,
        if spot {
            "Fargate Spot"
        } else {
            "Fargate (on demand)"
        }
    ));
    let scaling = match &stack.scaling {
        Some(s) => {
            let mut on = Vec::new();
            if let Some(t) = &s.cpu {
                on.push(format!("CPU {}%", t.target));
            }
            if let Some(t) = &s.memory {
                on.push(format!("memory {}%", t.target));
            }
            if let Some(t) = &s.requests_per_target {
                on.push(format!("{} requests per task", t.target));
            }
            if on.is_empty() {
                format!("{}–{} tasks", s.min, s.max)
            } else {
                format!("{}–{} tasks on {}", s.min, s.max, on.join(", "))
            }
        }
        None => "off".to_string(),
    };
    lines.push(format!("autoscaling    {scaling}"));
    let network = stack.network_spec();
    let vpc = match &network.vpc {
        Network::Managed(m) => format!(
            "new VPC {} over {} zones, NAT gateways: {}",
            m.cidr,
            m.az_count,
            serde_name(&m.nat)
        ),
        Network::Existing(e) => format!(
            "existing VPC {} ({} public and {} private subnets)",
            e.vpc_id,
            e.public_subnets.len(),
            e.private_subnets.len()
        ),
    };
    lines.push(format!("network        {vpc}"));
    let lb = match &stack.service.load_balancer {
        Some(lb) => {
            let listeners: Vec<String> = lb
                .listeners
                .iter()
                .map(|l| format!("{} {}", l.protocol.as_str(), l.port))
                .collect();
            let cidrs: Vec<String> = network
                .alb_ingress_cidrs
                .iter()
                .map(ToString::to_string)
                .collect();
            format!(
                "{}, listeners {}, open to {}",
                if lb.internal {
                    "internal"
                } else {
                    "internet-facing"
                },
                listeners.join(", "),
                cidrs.join(", ")
            )
        }
        None => "none".to_string(),
    };
    lines.push(format!("load balancer  {lb}"));
    let has_target = stack.service.load_balancer.is_some() && stack.service.target().is_some();
    let alarms = stack.observe.enabled_alarms(has_target).len();
    let dashboard = if stack.observe.monitoring == Monitoring::Advanced {
        ", a dashboard"
    } else {
        ""
    };
    lines.push(format!(
        "monitoring     {} ({alarms} alarm{}{dashboard}; logs kept {} days)",
        serde_name(&stack.observe.monitoring),
        plural(alarms),
        stack.observe.log_retention_days
    ));
    lines
}
