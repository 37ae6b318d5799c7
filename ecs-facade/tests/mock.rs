//! The facade against mocked clients (`ecs_facade::testing::mock_layers`): a plan of a stack
//! in an empty account reads every layer and proposes only creates, with no mutating call;
//! an invalid stack or manifest fails before any AWS call, listing every problem of every
//! layer.

use ecs_core::testing::CallCounter;
use ecs_facade::testing::{empty_account, mock_layers, MockRules};
use ecs_facade::{Action, Deployer, DestroyOptions, Stack};

const PROD: &str = "name: shop\nprofile: prod\nimage: nginx:1.27\nport: 8080\nhttps:\n  certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc\n";

#[tokio::test]
async fn plan_in_an_empty_account_creates_everything_and_changes_nothing() {
    let all = empty_account();
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&all)));
    let stack = Stack::from_manifest(PROD).unwrap();
    let plan = deployer.plan(&stack).await.unwrap();
    let s = plan.summary();
    assert_eq!((s.update, s.delete, s.replace), (0, 0, 0), "{plan}");
    assert!(
        plan.changes().iter().all(|c| c.action == Action::Create),
        "{plan}"
    );
    for (kind, id) in [
        ("vpc", "vpc"),
        ("nat-gateway", "nat/us-east-1b"),
        ("ecr-repository", "shop-app"),
        ("iam-role", "shop-execution"),
        ("ecs-cluster", "shop"),
        ("task-definition", "shop-app"),
        ("load-balancer", "shop-alb"),
        ("listener", "shop-alb:443"),
        ("ecs-service", "shop-app"),
        ("scaling-policy", "shop-cpu"),
        ("alarm", "shop-latency-p99"),
        ("log-group", "/ecs/shop"),
        ("dashboard", "shop"),
    ] {
        assert!(
            plan.find(kind, id).is_some(),
            "{kind} {id} missing from\n{plan}"
        );
    }
    // Every rule is a describe: a mutating call would have failed the plan. And each layer
    // was read.
    assert!(all.iter().all(|r| r.num_calls() <= 3));
    let read = all.iter().filter(|r| r.num_calls() > 0).count();
    // Every describe was used, but the pre-flight's for the secrets, SSM parameters and SNS
    // topics this manifest does not name (its certificate was looked for), and the listing
    // of the cluster's services, which only destroy makes.
    assert_eq!(read, all.len() - 4, "every describe was used");
}

#[tokio::test]
async fn invalid_stacks_fail_before_any_call_with_every_problem() {
    let all = empty_account();
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&all)));
    let mut stack = Stack::from_manifest(PROD).unwrap();
    stack.service.task.memory = 300;
    stack.observe.log_retention_days = 31;
    stack.scaling.as_mut().unwrap().min = 50;
    for result in [
        deployer.plan(&stack).await.map(|_| ()),
        deployer.deploy(&stack).await.map(|_| ()),
        deployer
            .destroy(&stack, DestroyOptions::default())
            .await
            .map(|_| ()),
    ] {
        let err = result.unwrap_err();
        let p = err.problems().unwrap();
        for field in [
            "service.task.memory",
            "observe.log_retention_days",
            "scaling.min",
        ] {
            assert!(p.mentions(field), "{field}: {p}");
        }
    }
    assert!(
        all.iter().all(|r| r.num_calls() == 0),
        "no AWS call was made"
    );
    let counter = CallCounter::new();
    assert!(counter.calls().is_empty());
}

#[test]
fn profiles_are_defaults_that_the_manifest_overrides() {
    let dev = Stack::from_manifest("name: d\nimage: nginx\n").unwrap();
    assert_eq!((dev.service.task.cpu, dev.service.task.memory), (256, 512));
    assert_eq!(dev.service.service.desired_count, 1);
    assert_eq!(
        dev.service.service.capacity_provider_strategy.len(),
        1,
        "dev runs on Spot"
    );
    assert!(dev.scaling.is_none());
    assert_eq!(
        dev.observe.monitoring,
        ecs_facade::observe::Monitoring::Basic
    );
    let prod = Stack::from_manifest(
        "name: p\nprofile: prod\nimage: nginx\ncpu: 1024\nmemory: 4096\nscaling: false\n",
    )
    .unwrap();
    assert_eq!(
        (prod.service.task.cpu, prod.service.task.memory),
        (1024, 4096)
    );
    assert_eq!(prod.service.service.desired_count, 2);
    assert!(
        prod.service.service.capacity_provider_strategy.is_empty(),
        "prod runs on demand"
    );
    assert!(
        prod.scaling.is_none(),
        "scaling: false overrides the profile"
    );
    assert!(matches!(
        &prod.network.as_ref().unwrap().vpc,
        ecs_facade::net::Network::Managed(m) if m.nat == ecs_facade::net::NatStrategy::PerAz
    ));
    let https = Stack::from_manifest(PROD).unwrap();
    let listeners = &https.service.load_balancer.as_ref().unwrap().listeners;
    assert_eq!(listeners.len(), 2);
    assert_eq!(
        listeners[0].effective_ssl_policy(),
        Some(ecs_facade::service::DEFAULT_TLS_POLICY)
    );
}

/// An alarm with one of the stack's names but not its tag, which the deploy would change,
/// stops the deploy before anything changes: the check is made right after the reads, not
/// once the network and the service exist. (Any mutating call would fail here first: no rule
/// answers one.)
#[tokio::test]
async fn a_foreign_alarm_stops_a_deploy_before_any_change() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_cloudwatch::types::MetricAlarm;
    use aws_sdk_cloudwatch::Client as Cw;
    use ecs_core::testing::mock;

    const ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-latency-p99";
    let alarm = mock!(Cw::describe_alarms).then_output(|| {
        DescribeAlarmsOutput::builder()
            .metric_alarms(
                MetricAlarm::builder()
                    .alarm_name("shop-latency-p99")
                    .alarm_arn(ARN)
                    .metric_name("TargetResponseTime")
                    .namespace("AWS/ApplicationELB")
                    .threshold(99.0)
                    .period(60)
                    .evaluation_periods(1)
                    .build(),
            )
            .build()
    });
    let untagged = mock!(Cw::list_tags_for_resource)
        .match_requests(|r| r.resource_arn() == Some(ARN))
        .then_output(|| ListTagsForResourceOutput::builder().build());
    let mut rules = vec![alarm, untagged];
    rules.extend(empty_account());
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&rules)));
    let err = deployer
        .deploy(&Stack::from_manifest(PROD).unwrap())
        .await
        .expect_err("someone else's alarm");
    let text = err.to_string();
    assert!(
        text.contains("shop-latency-p99") && text.contains("not"),
        "expected the conflict naming the alarm, got: {text}"
    );
    assert_eq!(rules[1].num_calls(), 1, "its tag was read");
}

/// A whole stack against one fake account (`ecs_facade::testing::FakeAws`): deployed, it is
/// all there; deployed again, nothing changes (0 mutating calls); destroyed, nothing of it
/// is left but what destroy keeps (the repository and the log group).
#[tokio::test]
async fn a_stack_deploys_into_a_fake_account_redeploys_with_no_change_and_destroys() {
    use ecs_facade::testing::FakeAws;
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(ecs_core::FakeClock::new());
    let stack = Stack::from_manifest(PROD).unwrap();

    // The rollout is waited for: the fake ECS completes a deployment as time passes.
    let first = deployer.deploy(&stack).await.unwrap();
    assert!(first.rollout.is_some());
    assert_eq!(aws.ec2.state().vpcs.len(), 1);
    assert_eq!(aws.ecs.state().services.len(), 1);
    assert_eq!(aws.elb.state().listeners.len(), 2, "HTTPS and the redirect");
    assert!(aws.ecr.state().repositories.contains_key("shop-app"));
    assert!(!aws.cloudwatch.state().alarms.is_empty());

    aws.journal.clear();
    let report = deployer.deploy(&stack).await.unwrap();
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );
    assert!(report.changes.is_empty(), "{}", report.changes);

    deployer
        .destroy(&stack, DestroyOptions::default())
        .await
        .unwrap();
    assert!(aws.ec2.state().vpcs.is_empty());
    assert!(aws.elb.state().load_balancers.is_empty());
    assert!(aws.iam.state().roles.is_empty());
    assert!(aws.cloudwatch.state().alarms.is_empty());
    assert!(aws.ecr.state().repositories.contains_key("shop-app"));
    assert!(aws.logs.state().log_groups.contains_key("/ecs/shop"));
}

#[tokio::test]
async fn a_saved_plan_applies_as_saved_and_is_refused_once_the_stack_changed() {
    use ecs_facade::testing::FakeAws;
    use ecs_facade::{Error, SavedPlan};
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(ecs_core::FakeClock::new());

    // Saved, written as JSON, read back and applied: the plan applied is the one saved.
    let saved = deployer.save_plan(PROD).await.unwrap();
    assert!(aws.journal.mutating().is_empty());
    let saved = SavedPlan::from_json(&saved.to_json()).unwrap();
    let prepared = deployer.prepare_saved(&saved).await.unwrap();
    assert_eq!(prepared.plan(), &saved.plan);
    prepared.apply().await.unwrap();
    assert_eq!(aws.ecs.state().services.len(), 1);

    // Saved again (nothing to do), then CI releases an image: the saved plan is stale, and
    // applying it is refused before any change, naming what differs.
    let saved = deployer.save_plan(PROD).await.unwrap();
    assert!(saved.plan.is_empty(), "{}", saved.plan);
    let stack = Stack::from_manifest(PROD).unwrap();
    let release = ecs_facade::service::ImageRelease::builder()
        .image("nginx:1.28")
        .build();
    deployer.release_image(&stack, &release).await.unwrap();
    aws.journal.clear();
    let err = deployer.prepare_saved(&saved).await.unwrap_err();
    assert!(matches!(err, Error::StalePlan { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("the stack changed since it was planned")
            && text
                .contains("task-definition shop-app (new revision 3; the service runs revision 2"),
        "{text}"
    );
    assert!(text.ends_with("nothing was changed, plan again"), "{text}");
    assert!(aws.journal.mutating().is_empty());

    // A file edited after it was saved is refused without a call.
    let mut edited = deployer.save_plan(PROD).await.unwrap();
    edited.manifest = edited.manifest.replace("nginx:1.27", "nginx:9");
    aws.journal.clear();
    let err = deployer.prepare_saved(&edited).await.unwrap_err();
    assert!(err.to_string().contains("the file was edited"), "{err}");
    assert!(aws.journal.is_empty());
}

#[tokio::test]
async fn a_deploy_holds_the_stacks_lease_only_to_change_something_and_refuses_while_another_run_holds_it(
) {
    use ecs_core::lease::{self, Holder, LeaseError, LeaseOptions, LeaseScope};
    use ecs_facade::testing::FakeAws;
    use ecs_facade::Error;
    use std::sync::Arc;
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(ecs_core::FakeClock::new());
    let stack = Stack::from_manifest(PROD).unwrap();
    let scope = LeaseScope::stack(&ecs_core::StackName::new("shop").unwrap());

    // A deploy that changes something holds the lease, and releases it.
    let report = deployer.deploy(&stack).await.unwrap();
    assert_eq!(report.lease, Some(1));
    let generations = aws.lease.generations(&scope);
    assert_eq!(generations.len(), 1);
    assert!(generations[0].holder.released);
    assert_eq!(generations[0].holder.operation, "deploy");

    // A no-op takes no lease: not one call of the lease's store.
    let calls = aws.lease.calls().len();
    let report = deployer.deploy(&stack).await.unwrap();
    assert_eq!(report.lease, None);
    assert_eq!(aws.lease.calls().len(), calls);

    // Another run holds it: a deploy that would change something, a destroy and an image
    // release are refused at once, naming the holder, before any change.
    let other = ecs_core::Context::builder()
        .stack(ecs_core::StackName::new("shop").unwrap())
        .run_id("other-run")
        .build();
    let _held = lease::acquire(
        &other,
        Arc::new(aws.lease.clone()),
        &scope,
        Holder::this_process(&other, "deploy", std::time::Duration::from_secs(300)),
        &LeaseOptions::default(),
    )
    .await
    .unwrap();
    let changed = Stack::from_manifest(&PROD.replace("nginx:1.27", "nginx:1.28")).unwrap();
    aws.journal.clear();
    let err = deployer.deploy(&changed).await.unwrap_err();
    assert!(
        matches!(&err, Error::Lease(e) if matches!(&**e, LeaseError::Held { holder, .. } if holder.run_id == "other-run")),
        "{err}"
    );
    assert!(err.to_string().contains("is locked by"), "{err}");
    let err = deployer
        .destroy(&stack, DestroyOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Lease(_)), "{err}");
    let release = ecs_facade::service::ImageRelease::builder()
        .image("nginx:2")
        .build();
    let err = deployer.release_image(&stack, &release).await.unwrap_err();
    assert!(matches!(err, Error::Lease(_)), "{err}");
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );

    // An operator unlocks it: the deploy goes through.
    let displaced = deployer.unlock(&stack).await.unwrap();
    assert_eq!(displaced.map(|h| h.run_id), Some("other-run".to_string()));
    let report = deployer.deploy(&changed).await.unwrap();
    assert_eq!(report.lease, Some(4));
}

#[tokio::test]
async fn the_lease_is_taken_only_to_change_and_a_saved_plan_is_checked_again_under_it() {
    use ecs_facade::testing::FakeAws;
    use ecs_facade::Error;
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(ecs_core::FakeClock::new());

    // A plan saved in an empty account and prepared; meanwhile another run deploys the stack.
    let saved = deployer.save_plan(PROD).await.unwrap();
    let prepared = deployer.prepare_saved(&saved).await.unwrap();
    let stack = Stack::from_manifest(PROD).unwrap();
    deployer.deploy(&stack).await.unwrap();
    // Applying the saved plan reads again under the lease and refuses: nothing changes.
    aws.journal.clear();
    let err = prepared.apply().await.unwrap_err();
    assert!(matches!(err, Error::StalePlan { .. }), "{err}");
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );

    // The same image again: no lease, no change.
    let calls = aws.lease.calls().len();
    let release = ecs_facade::service::ImageRelease::builder()
        .image("nginx:1.27")
        .build();
    let report = deployer.release_image(&stack, &release).await.unwrap();
    assert!(!report.released);
    assert_eq!(aws.lease.calls().len(), calls);
    assert!(aws.journal.mutating().is_empty());
}

#[test]
fn a_scaling_range_is_not_an_error_about_a_count_the_manifest_never_set() {
    // No `count`: the profile's count (prod: 2) is brought into the range.
    let stack = Stack::from_manifest(
        "name: shop\nprofile: prod\nimage: nginx\nscaling: {min: 3, max: 6}\n",
    )
    .unwrap();
    assert_eq!(stack.service.service.desired_count, 3);
    // A wrong range is one problem, about the range.
    let err = Stack::from_manifest(
        "name: shop\nprofile: prod\nimage: nginx\nscaling: {min: 5, max: 2}\n",
    )
    .unwrap_err();
    let ecs_facade::Error::InvalidManifest(found) = &err else {
        panic!("validation problems: {err}");
    };
    assert_eq!(found.problems.len(), 1, "{err}");
    assert_eq!(found.problems[0].field, "scaling.min", "{err}");
    assert_eq!(
        (found.problems[0].line, found.problems[0].column),
        (Some(4), Some(11))
    );
    assert!(
        !err.to_string().contains("outside the scaling range"),
        "{err}"
    );
    // A count the manifest sets outside the range is still refused, naming it.
    let err = Stack::from_manifest(
        "name: shop\nprofile: prod\nimage: nginx\ncount: 9\nscaling: {min: 3, max: 6}\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("9 is outside the scaling range 3–6"),
        "{err}"
    );
    assert!(err.to_string().contains("manifest:4:1: `count`"), "{err}");
}

#[tokio::test]
async fn the_ssm_lease_store_makes_create_only_writes_and_reads_the_services_clock() {
    use aws_sdk_ssm::error::ErrorMetadata;
    use aws_sdk_ssm::operation::delete_parameters::DeleteParametersOutput;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput;
    use aws_sdk_ssm::operation::put_parameter::{PutParameterError, PutParameterOutput};
    use aws_sdk_ssm::primitives::DateTime;
    use aws_sdk_ssm::types::Parameter;
    use aws_sdk_ssm::Client;
    use ecs_core::lease::{Holder, LeaseScope, LeaseStore};
    use ecs_core::testing::{mock, RuleMode};
    use ecs_facade::SsmLeaseStore;

    const PATH: &str = "/ecs-facade/lease/stack/shop";
    let ctx = ecs_core::Context::builder()
        .stack(ecs_core::StackName::new("shop").unwrap())
        .run_id("run-1")
        .build();
    let holder = Holder::this_process(&ctx, "deploy", std::time::Duration::from_secs(300));
    let value = serde_json::to_string(&holder).unwrap();
    let scope = LeaseScope::stack(ctx.stack());

    // Generation 3 is free: created without `Overwrite`, holding the holder.
    let create = {
        let value = value.clone();
        mock!(Client::put_parameter)
            .match_requests(move |r| {
                r.name() == Some(&format!("{PATH}/3")[..])
                    && r.overwrite() == Some(false)
                    && r.value() == Some(value.as_str())
            })
            .then_output(|| PutParameterOutput::builder().version(1).build())
    };
    // Generation 4 exists: the create-only write is refused, which is a `false`.
    let taken = mock!(Client::put_parameter)
        .match_requests(|r| {
            r.name() == Some(&format!("{PATH}/4")[..]) && r.overwrite() == Some(false)
        })
        .then_error(|| {
            PutParameterError::generic(
                ErrorMetadata::builder()
                    .code("ParameterAlreadyExists")
                    .message("The parameter already exists.")
                    .build(),
            )
        });
    // The service's clock: a probe overwritten, then read back.
    let probe = mock!(Client::put_parameter)
        .match_requests(|r| {
            r.name() == Some(&format!("{PATH}/clock")[..]) && r.overwrite() == Some(true)
        })
        .then_output(|| PutParameterOutput::builder().version(7).build());
    let clock = mock!(Client::get_parameter)
        .match_requests(|r| r.name() == Some(&format!("{PATH}/clock")[..]))
        .then_output(|| {
            GetParameterOutput::builder()
                .parameter(
                    Parameter::builder()
                        .name(format!("{PATH}/clock"))
                        .last_modified_date(DateTime::from_millis(1_765_000_100_250))
                        .build(),
                )
                .build()
        });
    // The generations, one level under the scope's path; the probe is not one.
    let list = {
        let value = value.clone();
        mock!(Client::get_parameters_by_path)
            .match_requests(|r| r.path() == Some(PATH) && r.recursive() == Some(false))
            .then_output(move || {
                GetParametersByPathOutput::builder()
                    .parameters(
                        Parameter::builder()
                            .name(format!("{PATH}/2"))
                            .value(value.clone())
                            .last_modified_date(DateTime::from_millis(1_765_000_000_500))
                            .build(),
                    )
                    .parameters(
                        Parameter::builder()
                            .name(format!("{PATH}/clock"))
                            .value("run-0")
                            .build(),
                    )
                    .build()
            })
    };
    // A destroyed stack's lease: the generations read, and the probe.
    let delete = mock!(Client::delete_parameters)
        .match_requests(|r| {
            r.names()
                == [
                    format!("{PATH}/1"),
                    format!("{PATH}/2"),
                    format!("{PATH}/clock"),
                ]
        })
        .then_output(|| DeleteParametersOutput::builder().build());
    let ssm = ecs_core::mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        [&create, &taken, &probe, &clock, &list, &delete]
    );
    let store = SsmLeaseStore::new(ssm);

    assert!(store.create(&ctx, &scope, 3, &holder).await.unwrap());
    assert!(!store.create(&ctx, &scope, 4, &holder).await.unwrap());
    assert_eq!(store.now(&ctx, &scope).await.unwrap(), 1_765_000_100_250);
    let generations = store.list(&ctx, &scope).await.unwrap();
    assert_eq!(generations.len(), 1);
    assert_eq!(
        (
            generations[0].number,
            &generations[0].holder,
            generations[0].written_ms
        ),
        (2, &holder, 1_765_000_000_500)
    );
    store.clear(&ctx, &scope, &[1, 2]).await.unwrap();
    for rule in [&create, &taken, &probe, &clock, &list, &delete] {
        assert_eq!(rule.num_calls(), 1);
    }
}
