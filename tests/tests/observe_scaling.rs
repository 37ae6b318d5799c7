//! ecs-observe and ecs-scaling end to end against the local AWS emulator (CloudWatch through
//! the CBOR bridge), over a service deployed by ecs-net and ecs-service: create → no-op (0
//! mutating calls) → change → removal → destroy, with call counting.

use ecs_core::testing::CallCounter;
use ecs_core::{Action, Context, EventLog};
use ecs_e2e_tests::{boto3_json, context, ec2, emulator, service_clients};
use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkOutputs, NetworkSpec};
use ecs_observe::{Monitoring, ObserveClients, ObserveLayer, ObserveSpec, ObserveTarget};
use ecs_scaling::{
    CustomMetric, ScalingClients, ScalingLayer, ScalingSpec, ScalingTarget, ScheduledScaling, Step,
    StepPolicy,
};
use ecs_service::{
    ContainerSpec, LoadBalancerSpec, ServiceLayer, ServiceOutputs, ServiceSettings, ServiceSpec,
    TaskSpec,
};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops";

fn service_spec() -> ServiceSpec {
    ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .containers(vec![ContainerSpec::builder()
                    .name("web")
                    .image("nginx:1.27")
                    .ports(vec![8080])
                    .build()])
                .build(),
        )
        .load_balancer(LoadBalancerSpec::default())
        .service(
            ServiceSettings::builder()
                .desired_count(2)
                .autoscaled(true)
                .build(),
        )
        .build()
}

/// Deploys a network and a load-balanced service for `ctx`'s stack.
async fn deploy_service(
    ctx: &Context,
    cidr: &str,
) -> (NetworkLayer, ServiceLayer, NetworkOutputs, ServiceOutputs) {
    let counter = CallCounter::new();
    let net = NetworkLayer::from_client(ec2(&counter).await);
    let spec = NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder()
                .cidr(cidr.parse().unwrap())
                .nat(NatStrategy::Single)
                .build(),
        ))
        .container_port(8080)
        .build();
    let (_, network) = net.deploy(ctx, &spec).await.unwrap();
    let layer = ServiceLayer::from_clients(service_clients(&counter).await);
    let (_, outputs) = layer.deploy(ctx, &service_spec(), &network).await.unwrap();
    (net, layer, network, outputs)
}

async fn teardown(ctx: &Context, net: &NetworkLayer, layer: &ServiceLayer) {
    layer.destroy(ctx, &service_spec(), true).await.unwrap();
    net.destroy(ctx).await.unwrap();
}

async fn observe_clients(counter: &CallCounter) -> ObserveClients {
    let config = emulator().sdk_config().await;
    ObserveClients {
        logs: aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
        cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
    }
}

async fn scaling_clients(counter: &CallCounter) -> ScalingClients {
    let config = emulator().sdk_config().await;
    ScalingClients {
        autoscaling: aws_sdk_applicationautoscaling::Client::from_conf(
            aws_sdk_applicationautoscaling::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
        cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
        ecs: aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
    }
}

fn ops(counter: &CallCounter) -> Vec<String> {
    let mut ops: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    ops.sort();
    ops
}

#[tokio::test]
async fn logs_alarms_and_dashboard_lifecycle() {
    let events = EventLog::new();
    let ctx = context("e2e-obs", &events);
    let (net, service, _, outputs) = deploy_service(&ctx, "10.40.0.0/16").await;
    let counter = CallCounter::new();
    let layer = ObserveLayer::from_clients(observe_clients(&counter).await);
    let target = ObserveTarget::from_outputs(&outputs);
    assert!(target
        .load_balancer
        .as_deref()
        .unwrap()
        .starts_with("app/e2e-obs-alb/"));
    let spec = ObserveSpec::builder()
        .alarm_actions(vec![TOPIC.into()])
        .build();

    // Create: log group, 6 alarms, dashboard.
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    let s = plan.changes().summary();
    assert_eq!((s.create, s.update, s.delete), (8, 0, 0), "{plan}");
    let out = layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(out.alarms.len(), 6);
    assert_eq!(out.log_group, "/ecs/e2e-obs");
    assert!(out
        .dashboard_url
        .as_deref()
        .unwrap()
        .contains("dashboards:name=e2e-obs"));
    let cw = aws_sdk_cloudwatch::Client::new(&emulator().sdk_config().await);
    let alarm = cw
        .describe_alarms()
        .alarm_names("e2e-obs-target-5xx")
        .send()
        .await
        .unwrap();
    let alarm = &alarm.metric_alarms()[0];
    assert_eq!(alarm.alarm_actions(), [TOPIC]);
    assert!(alarm
        .dimensions()
        .iter()
        .any(|d| d.name() == Some("TargetGroup") && d.value() == target.target_group.as_deref()));

    // No-op.
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(counter.mutating(), vec![]);

    // The log group's tags changed by hand (boto3) are set back with the tag calls only.
    let log_arn = out.log_group_arn.clone();
    let log_tags = |script: &str| {
        boto3_json(&format!(
            "logs = boto3.client('logs')\narn = {log_arn:?}\n{script}\n\
             print(json.dumps(logs.list_tags_for_resource(resourceArn=arn)['tags']))"
        ))
    };
    let drifted = log_tags(
        "logs.untag_resource(resourceArn=arn, tagKeys=['suite'])\n\
         logs.tag_resource(resourceArn=arn, tags={'extra': 'x'})",
    );
    assert_eq!(drifted["extra"], "x", "{drifted}");
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    let c = plan.changes().find("log-group", "/ecs/e2e-obs").unwrap();
    assert!(
        matches!(&c.action, Action::Update(d) if d.len() == 1 && d[0].field == "tags"),
        "{plan}"
    );
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(ops(&counter), ["TagResource", "UntagResource"]);
    let repaired = log_tags("");
    assert_eq!(repaired["suite"], "e2e", "{repaired}");
    assert_eq!(repaired["ecs:stack"], "e2e-obs", "{repaired}");
    assert!(repaired.get("extra").is_none(), "{repaired}");

    // A changed threshold updates that alarm only.
    let mut changed = spec.clone();
    changed.alarms.cpu_high.as_mut().unwrap().threshold = 70.0;
    counter.reset();
    let plan = layer.plan(&ctx, &changed, &target).await.unwrap();
    let c = plan.changes().find("alarm", "e2e-obs-cpu-high").unwrap();
    assert!(
        matches!(&c.action, Action::Update(d) if d[0].field == "threshold"),
        "{plan}"
    );
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(ops(&counter), ["PutMetricAlarm"]);

    // A removed alarm is deleted (and the dashboard's alarm widget follows).
    changed.alarms.latency_p99 = None;
    counter.reset();
    let plan = layer.plan(&ctx, &changed, &target).await.unwrap();
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(ops(&counter), ["DeleteAlarms", "PutDashboard"]);

    // Basic monitoring: CPU and memory alarms only, no dashboard.
    let basic = ObserveSpec::builder().monitoring(Monitoring::Basic).build();
    let plan = layer.plan(&ctx, &basic, &target).await.unwrap();
    let s = plan.changes().summary();
    assert_eq!(s.delete, 4, "{plan}");
    layer.apply(&ctx, &plan).await.unwrap();

    // Destroy keeps the logs unless asked; then nothing of the stack is left.
    let (deleted, kept) = layer.destroy(&ctx, &target.log_group, false).await.unwrap();
    assert_eq!(deleted.summary().delete, 2, "{deleted}");
    assert_eq!(kept.len(), 1);
    let (deleted, _) = layer.destroy(&ctx, &target.log_group, true).await.unwrap();
    assert_eq!(deleted.summary().delete, 1, "{deleted}");
    let left = cw
        .describe_alarms()
        .alarm_name_prefix("e2e-obs-")
        .send()
        .await
        .unwrap();
    assert_eq!(left.metric_alarms().len(), 0);
    assert!(cw
        .get_dashboard()
        .dashboard_name("e2e-obs")
        .send()
        .await
        .is_err());
    teardown(&ctx, &net, &service).await;
}

#[tokio::test]
async fn autoscaling_lifecycle() {
    let events = EventLog::new();
    let ctx = context("e2e-scale", &events);
    let (net, service, network, outputs) = deploy_service(&ctx, "10.41.0.0/16").await;
    let counter = CallCounter::new();
    let layer = ScalingLayer::from_clients(scaling_clients(&counter).await);
    let mut target = ScalingTarget::from_outputs(&outputs);
    target.desired_count = Some(2);
    assert_eq!(target.resource_id(), "service/e2e-scale/e2e-scale-app");
    let mut spec = ScalingSpec::cpu_and_memory(2, 10);
    spec.requests_per_target = Some(ecs_scaling::TargetTracking::builder().target(500.0).build());
    spec.scheduled.push(
        ScheduledScaling::builder()
            .name("night")
            .schedule("cron(0 20 ? * MON-FRI *)")
            .timezone("Europe/Paris")
            .min(1)
            .max(2)
            .build(),
    );

    // Create: target, 3 policies, 1 scheduled action.
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    assert_eq!(plan.changes().summary().create, 5, "{plan}");
    layer.apply(&ctx, &plan).await.unwrap();

    // No-op.
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(counter.mutating(), vec![]);
    assert!(counter.calls().len() <= 3, "{:?}", counter.calls());

    // A changed target value updates the policy in place; a removed one is deleted.
    spec.cpu.as_mut().unwrap().target = 60.0;
    spec.memory = None;
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(ops(&counter), ["DeleteScalingPolicy", "PutScalingPolicy"]);

    // A step policy and its alarm (through the CloudWatch bridge). With it, a no-op also reads
    // the alarm's tags (a step alarm without the stack's tag is refused by the plan) and still
    // changes nothing; without it, the policy and its alarm go.
    spec.step.push(
        StepPolicy::builder()
            .name("queue")
            .metric(
                CustomMetric::builder()
                    .namespace("App")
                    .name("QueueDepth")
                    .build(),
            )
            .threshold(100.0)
            .steps(vec![Step::builder().lower(0.0).adjustment(1).build()])
            .build(),
    );
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(ops(&counter), ["PutMetricAlarm", "PutScalingPolicy"]);
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(counter.mutating(), vec![]);
    assert_eq!(counter.count("ListTagsForResource"), 1);
    // Its tags changed by hand (boto3, through the bridge too) are set back without putting
    // the alarm again.
    let alarm_tags = |script: &str| {
        boto3_json(&format!(
            "cw = boto3.client('cloudwatch')\n\
             arn = cw.describe_alarms(AlarmNames=['e2e-scale-step-queue'])['MetricAlarms'][0]['AlarmArn']\n\
             {script}\n\
             print(json.dumps({{t['Key']: t['Value'] for t in cw.list_tags_for_resource(ResourceARN=arn)['Tags']}}))"
        ))
    };
    let drifted = alarm_tags(
        "cw.untag_resource(ResourceARN=arn, TagKeys=['suite'])\n\
         cw.tag_resource(ResourceARN=arn, Tags=[{'Key': 'extra', 'Value': 'x'}])",
    );
    assert!(drifted.get("suite").is_none(), "{drifted}");
    assert_eq!(drifted["extra"], "x", "{drifted}");
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    let c = plan
        .changes()
        .find("alarm", "e2e-scale-step-queue")
        .unwrap();
    assert!(
        matches!(&c.action, Action::Update(d) if d.len() == 1 && d[0].field == "tags"),
        "{plan}"
    );
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(ops(&counter), ["TagResource", "UntagResource"]);
    let repaired = alarm_tags("");
    assert_eq!(repaired["suite"], "e2e", "{repaired}");
    assert_eq!(repaired["ecs:stack"], "e2e-scale", "{repaired}");
    assert!(repaired.get("extra").is_none(), "{repaired}");
    spec.step.clear();
    counter.reset();
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(ops(&counter), ["DeleteAlarms", "DeleteScalingPolicy"]);

    // Suspend, resume and scale.
    layer.suspend(&ctx, &target).await.unwrap();
    layer.resume(&ctx, &target).await.unwrap();
    counter.reset();
    layer.scale(&ctx, &target, 3, 6, 4).await.unwrap();
    assert_eq!(ops(&counter), ["RegisterScalableTarget", "UpdateService"]);
    let ecs = aws_sdk_ecs::Client::new(&emulator().sdk_config().await);
    let svc = ecs
        .describe_services()
        .cluster("e2e-scale")
        .services("e2e-scale-app")
        .send()
        .await
        .unwrap();
    assert_eq!(svc.services()[0].desired_count(), 4);

    // The scaled count survives a service redeploy: autoscaling owns it.
    let plan = service.plan(&ctx, &service_spec(), &network).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    let svc = ecs
        .describe_services()
        .cluster("e2e-scale")
        .services("e2e-scale-app")
        .send()
        .await
        .unwrap();
    assert_eq!(svc.services()[0].desired_count(), 4);
    // The scaling spec's range (2–10) differs from the one set by hand (3–6).
    let plan = layer.plan(&ctx, &spec, &target).await.unwrap();
    assert!(plan
        .changes()
        .find("scalable-target", "desired count")
        .unwrap()
        .action
        .is_change());

    // Destroy.
    let deleted = layer.destroy(&ctx, &target).await.unwrap();
    assert_eq!(deleted.summary().delete, 4, "{deleted}");
    let aas = aws_sdk_applicationautoscaling::Client::new(&emulator().sdk_config().await);
    let left = aas
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_ids(target.resource_id())
        .send()
        .await
        .unwrap();
    assert_eq!(left.scalable_targets().len(), 0);
    teardown(&ctx, &net, &service).await;
}
