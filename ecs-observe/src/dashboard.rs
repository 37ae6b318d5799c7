//! The stack's CloudWatch dashboard, generated from the deployed resources.
//!
//! The body itself carries the ownership mark — a text widget naming the stack — because
//! `GetDashboard` returns the body everywhere, while dashboard tags are recent and not
//! supported by every implementation (the local emulator among them). A dashboard with the
//! stack's name but without that mark is someone else's and is never overwritten or deleted
//! (a delete reads the body again first: dashboards are deleted by name).

use aws_sdk_cloudwatch::Client;
use ecs_core::resource::{Changed, Diff, Known, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff};
use serde_json::{json, Value};

use crate::{Error, ObserveTarget, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "dashboard";

/// The dashboard as a read found it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveDashboard {
    pub(crate) name: String,
    pub(crate) body: Value,
    /// Whether its body carries the stack's mark (`is_owned`).
    pub(crate) marked: bool,
}

/// The one difference of a dashboard: its body, put whole by `PutDashboard`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DashboardDiff {
    Body,
}

impl Diff for DashboardDiff {
    fn field(&self) -> FieldDiff {
        match self {
            DashboardDiff::Body => FieldDiff::new("body", "current widgets", "regenerated widgets"),
        }
    }
}

/// The dashboard as desired: its name and its body, known once the alarms its alarm widget
/// shows exist (their ARNs are in it).
#[derive(Debug, Clone)]
pub(crate) struct Dashboard<'a> {
    pub(crate) name: &'a str,
    pub(crate) body: Known<Value>,
}

fn widgets(body: &Value) -> usize {
    body["widgets"].as_array().map_or(0, Vec::len)
}

impl Dashboard<'_> {
    /// Puts the whole body; returns how many widgets it has.
    async fn put(&self, ctx: &Context, cw: &Client) -> Result<usize> {
        let Known::Known(body) = &self.body else {
            unreachable!("the dashboard is put once its alarms exist")
        };
        ctx.call("PutDashboard", &format!("{KIND} {}", self.name), || {
            cw.put_dashboard()
                .dashboard_name(self.name)
                .dashboard_body(body.to_string())
                .send()
        })
        .await?;
        Ok(widgets(body))
    }
}

impl Resource for Dashboard<'_> {
    const KIND: &'static str = KIND;
    /// Dashboard tags are recent and not supported everywhere: the mark is in the body.
    const OWNERSHIP: Ownership = Ownership::Mark;
    type Client = Client;
    type Live = LiveDashboard;
    type Diff = DashboardDiff;
    /// How many widgets it has.
    type Output = usize;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.name.to_string()
    }

    fn owner(live: &LiveDashboard) -> Owner<'_> {
        Owner::Mark(live.marked)
    }

    /// The body differs, or is known only once the alarms exist.
    fn diff(&self, live: &LiveDashboard) -> Vec<DashboardDiff> {
        match &self.body {
            Known::Known(body) if *body == live.body => Vec::new(),
            _ => vec![DashboardDiff::Body],
        }
    }

    fn output(live: &LiveDashboard) -> usize {
        widgets(&live.body)
    }

    fn created(widgets: &usize) -> Option<String> {
        Some(format!("{widgets} widgets"))
    }

    fn updated(widgets: &usize) -> Option<String> {
        Some(format!("{widgets} widgets"))
    }

    async fn create(&self, ctx: &Context, cw: &Client) -> Result<usize> {
        self.put(ctx, cw).await
    }

    async fn update(
        &self,
        ctx: &Context,
        cw: &Client,
        _live: &LiveDashboard,
        _diffs: &[DashboardDiff],
    ) -> Result<()> {
        self.put(ctx, cw).await.map(|_| ())
    }

    async fn update_output(
        &self,
        ctx: &Context,
        cw: &Client,
        _live: &LiveDashboard,
        _diffs: &[DashboardDiff],
    ) -> Result<usize> {
        self.put(ctx, cw).await
    }

    /// Deletes it, by name: so it is read again first, and one that no longer carries the
    /// stack's mark (replaced by someone else since the plan read it) stops the step; one
    /// already gone counts as deleted.
    async fn delete(ctx: &Context, cw: &Client, live: &LiveDashboard) -> Result<()> {
        let resource = format!("{KIND} {}", live.name);
        let now = match ctx
            .call("GetDashboard", &resource, || {
                cw.get_dashboard().dashboard_name(&live.name).send()
            })
            .await
        {
            Ok(out) => out
                .dashboard_body()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .unwrap_or(Value::Null),
            Err(e) if e.is_code("ResourceNotFound") || e.is_code("ResourceNotFoundException") => {
                return Ok(())
            }
            Err(e) => return Err(e.into()),
        };
        if !is_owned(&now, ctx.stack().as_str()) {
            return Err(Changed::new(KIND, &live.name, "was replaced by someone else").into());
        }
        match ctx
            .call("DeleteDashboards", &resource, || {
                cw.delete_dashboards().dashboard_names(&live.name).send()
            })
            .await
        {
            Err(e) if e.is_code("ResourceNotFound") || e.is_code("ResourceNotFoundException") => {
                Ok(())
            }
            other => other.map(|_| ()).map_err(Into::into),
        }
    }
}

/// The marker text that makes a dashboard the stack's.
pub(crate) fn marker(stack: &str) -> String {
    format!("Managed by ecs-facade stack `{stack}`.")
}

/// Whether `body` carries the stack's marker.
pub(crate) fn is_owned(body: &Value, stack: &str) -> bool {
    let mark = marker(stack);
    body["widgets"].as_array().is_some_and(|w| {
        w.iter().any(|w| {
            w["type"] == "text"
                && w["properties"]["markdown"]
                    .as_str()
                    .is_some_and(|m| m.contains(&mark))
        })
    })
}

fn metric_widget(
    title: &str,
    region: &str,
    x: u32,
    y: u32,
    stat: &str,
    metrics: Vec<Value>,
) -> Value {
    json!({
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stacked": false,
            "period": 60,
            "stat": stat,
            "metrics": metrics,
        }
    })
}

/// The dashboard body for the stack: requests, latency (p50/p90/p99), 4XX/5XX and
/// healthy/unhealthy hosts when there is a load balancer; running/desired tasks, CPU and
/// memory; and the state of every alarm in `alarm_arns`.
pub fn body(stack: &str, t: &ObserveTarget, region: &str, alarm_arns: &[String]) -> Value {
    let mut widgets = vec![json!({
        "type": "text",
        "x": 0,
        "y": 0,
        "width": 24,
        "height": 2,
        "properties": {
            "markdown": format!("# {stack}\n{} Service `{}` in cluster `{}`.", marker(stack), t.service, t.cluster),
        }
    })];
    let svc = |ns: &str, metric: &str, extra: Value| -> Value {
        let mut m = json!([
            ns,
            metric,
            "ClusterName",
            t.cluster,
            "ServiceName",
            t.service
        ]);
        if !extra.is_null() {
            m.as_array_mut().expect("an array").push(extra);
        }
        m
    };
    let mut y = 2;
    if let (Some(lb), Some(tg)) = (&t.load_balancer, &t.target_group) {
        let alb = |metric: &str, extra: Value| -> Value {
            let mut m = json!([
                "AWS/ApplicationELB",
                metric,
                "LoadBalancer",
                lb,
                "TargetGroup",
                tg
            ]);
            if !extra.is_null() {
                m.as_array_mut().expect("an array").push(extra);
            }
            m
        };
        widgets.push(metric_widget(
            "Requests",
            region,
            0,
            y,
            "Sum",
            vec![alb("RequestCount", Value::Null)],
        ));
        widgets.push(metric_widget(
            "Latency (s)",
            region,
            12,
            y,
            "p99",
            vec![
                alb("TargetResponseTime", json!({"stat": "p50", "label": "p50"})),
                alb("TargetResponseTime", json!({"stat": "p90", "label": "p90"})),
                alb("TargetResponseTime", json!({"stat": "p99", "label": "p99"})),
            ],
        ));
        y += 6;
        widgets.push(metric_widget(
            "4XX / 5XX",
            region,
            0,
            y,
            "Sum",
            vec![
                alb("HTTPCode_Target_4XX_Count", Value::Null),
                alb("HTTPCode_Target_5XX_Count", Value::Null),
            ],
        ));
        widgets.push(metric_widget(
            "Healthy / unhealthy hosts",
            region,
            12,
            y,
            "Maximum",
            vec![
                alb("HealthyHostCount", Value::Null),
                alb("UnHealthyHostCount", Value::Null),
            ],
        ));
        y += 6;
    }
    widgets.push(metric_widget(
        "Running / desired tasks",
        region,
        0,
        y,
        "Average",
        vec![
            svc("ECS/ContainerInsights", "RunningTaskCount", Value::Null),
            svc("ECS/ContainerInsights", "DesiredTaskCount", Value::Null),
        ],
    ));
    widgets.push(metric_widget(
        "CPU / memory (%)",
        region,
        12,
        y,
        "Average",
        vec![
            svc("AWS/ECS", "CPUUtilization", Value::Null),
            svc("AWS/ECS", "MemoryUtilization", Value::Null),
        ],
    ));
    y += 6;
    if !alarm_arns.is_empty() {
        widgets.push(json!({
            "type": "alarm",
            "x": 0,
            "y": y,
            "width": 24,
            "height": 3,
            "properties": { "title": "Alarms", "alarms": alarm_arns },
        }));
    }
    json!({ "widgets": widgets })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn target(lb: bool) -> ObserveTarget {
        ObserveTarget {
            cluster: "web".into(),
            service: "web-app".into(),
            load_balancer: lb.then(|| "app/web-alb/0123456789abcdef".into()),
            target_group: lb.then(|| "targetgroup/web-app/fedcba9876543210".into()),
            log_group: "/ecs/web".into(),
        }
    }

    /// Every metric array is [namespace, name, (dimension name, value)*, options?].
    fn check_metrics(widget: &Value, t: &ObserveTarget) -> Result<(), String> {
        for m in widget["properties"]["metrics"]
            .as_array()
            .ok_or("no metrics")?
        {
            let m = m.as_array().ok_or("metric is not an array")?;
            let ns = m[0].as_str().ok_or("namespace")?;
            let mut items: Vec<&Value> = m[2..].iter().collect();
            if items.last().is_some_and(|v| v.is_object()) {
                items.pop();
            }
            if !items.len().is_multiple_of(2) || items.is_empty() {
                return Err(format!("dimensions of {m:?} are not pairs"));
            }
            for pair in items.chunks(2) {
                let (k, v) = (
                    pair[0].as_str().ok_or("key")?,
                    pair[1].as_str().ok_or("value")?,
                );
                let expected = match k {
                    "ClusterName" => Some(t.cluster.as_str()),
                    "ServiceName" => Some(t.service.as_str()),
                    "LoadBalancer" => t.load_balancer.as_deref(),
                    "TargetGroup" => t.target_group.as_deref(),
                    other => return Err(format!("unknown dimension {other}")),
                };
                if expected != Some(v) {
                    return Err(format!("{k}={v} is not a deployed resource"));
                }
            }
            let known = match ns {
                "AWS/ApplicationELB" => [
                    "RequestCount",
                    "TargetResponseTime",
                    "HTTPCode_Target_4XX_Count",
                    "HTTPCode_Target_5XX_Count",
                    "HealthyHostCount",
                    "UnHealthyHostCount",
                ]
                .contains(&m[1].as_str().unwrap_or_default()),
                "AWS/ECS" => ["CPUUtilization", "MemoryUtilization"]
                    .contains(&m[1].as_str().unwrap_or_default()),
                "ECS/ContainerInsights" => ["RunningTaskCount", "DesiredTaskCount"]
                    .contains(&m[1].as_str().unwrap_or_default()),
                _ => false,
            };
            if !known {
                return Err(format!("unknown metric {m:?}"));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn bodies_are_valid_and_reference_deployed_resources(
            stack in "[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,5}){0,2}",
            lb in any::<bool>(),
            alarms in prop::collection::vec("[a-z-]{1,20}", 0..7),
            region in prop::sample::select(vec!["us-east-1", "eu-west-1", "ap-southeast-2"]),
        ) {
            let t = target(lb);
            let arns: Vec<String> = alarms.iter().map(|a| format!("arn:aws:cloudwatch:{region}:123456789012:alarm:{stack}-{a}")).collect();
            let b = body(&stack, &t, region, &arns);
            // Valid JSON that round-trips, within CloudWatch's limits (≤ 500 widgets, 1 MB).
            let text = b.to_string();
            prop_assert!(text.len() < 1_000_000);
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &b);
            let widgets = b["widgets"].as_array().unwrap();
            prop_assert!(widgets.len() <= 500);
            prop_assert!(is_owned(&b, &stack));
            for w in widgets {
                let x = w["x"].as_u64().unwrap();
                let width = w["width"].as_u64().unwrap();
                prop_assert!(x + width <= 24);
                match w["type"].as_str().unwrap() {
                    "metric" => {
                        prop_assert_eq!(w["properties"]["region"].as_str(), Some(region));
                        if let Err(e) = check_metrics(w, &t) { prop_assert!(false, "{}", e); }
                    }
                    "alarm" => prop_assert_eq!(w["properties"]["alarms"].as_array().unwrap().len(), arns.len()),
                    "text" => {}
                    other => prop_assert!(false, "unknown widget type {}", other),
                }
            }
            let has_alb = widgets.iter().any(|w| w.to_string().contains("AWS/ApplicationELB"));
            prop_assert_eq!(has_alb, lb);
            prop_assert_eq!(widgets.iter().any(|w| w["type"] == "alarm"), !arns.is_empty());
        }
    }

    #[test]
    fn another_stacks_dashboard_is_not_ours() {
        let b = body("web", &target(true), "us-east-1", &[]);
        assert!(is_owned(&b, "web"));
        assert!(!is_owned(&b, "shop"));
        assert!(!is_owned(&json!({"widgets": []}), "web"));
    }

    #[test]
    fn the_body_is_the_one_typed_difference_and_unknown_bodies_differ() {
        let b = body(
            "web",
            &target(true),
            "us-east-1",
            &["arn:alarm".to_string()],
        );
        let live = LiveDashboard {
            name: "web".into(),
            body: b.clone(),
            marked: true,
        };
        // (the desired body, the plan lines)
        let cases = [
            (Known::Known(b.clone()), vec![]),
            (
                Known::Known(body("web", &target(false), "us-east-1", &[])),
                vec![FieldDiff::new(
                    "body",
                    "current widgets",
                    "regenerated widgets",
                )],
            ),
            (
                Known::AfterApply,
                vec![FieldDiff::new(
                    "body",
                    "current widgets",
                    "regenerated widgets",
                )],
            ),
        ];
        for (want, lines) in cases {
            let d = Dashboard {
                name: "web",
                body: want,
            };
            let got: Vec<FieldDiff> = d.diff(&live).iter().map(Diff::field).collect();
            assert_eq!(got, lines);
        }
        assert_eq!(Dashboard::output(&live), widgets(&b));
        assert!(matches!(Dashboard::owner(&live), Owner::Mark(true)));
    }
}
