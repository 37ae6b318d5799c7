//! The pre-flight against mocked clients: each reference a stack makes but does not own is
//! looked for with one read that returns no secret value; what is missing fails the plan and
//! the deploy before any change, each failure naming its field; a check the caller may not
//! make is a warning; an infrastructure-only first deploy (on the fake account) runs no task
//! until the next deploy.

use aws_sdk_acm::operation::describe_certificate::{
    DescribeCertificateError, DescribeCertificateOutput,
};
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus};
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesError;
use aws_sdk_ssm::operation::describe_parameters::DescribeParametersOutput;
use aws_smithy_types::error::ErrorMetadata;
use ecs_core::testing::mock;
use ecs_facade::testing::{empty_account, mock_layers, MockRules};
use ecs_facade::{Deployer, Error, Outcome, Stack};

const CERT: &str = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf";
const PARAM: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/shop/api-key";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:shop-ops";
const OWN_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop-app:v1";

fn manifest(certificate: &str, image: &str) -> String {
    format!(
        "name: shop\nprofile: prod\nimage: {image}\nport: 8080\n\
         secrets:\n  DB_PASSWORD: {SECRET}\n  API_KEY: {PARAM}\n\
         https:\n  certificate_arn: {certificate}\n\
         alarms:\n  actions: [{TOPIC}]\n"
    )
}

fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("from the mock")
        .build()
}

#[tokio::test]
async fn what_is_missing_fails_before_any_change_each_naming_its_field() {
    let rules = vec![
        mock!(aws_sdk_acm::Client::describe_certificate)
            .match_requests(|r| r.certificate_arn() == Some(CERT))
            .then_error(|| DescribeCertificateError::generic(meta("ResourceNotFoundException"))),
        // The secret is asked for by its ARN: never its value.
        mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .match_requests(|r| r.secret_id() == Some(SECRET))
            .then_error(|| DescribeSecretError::generic(meta("ResourceNotFoundException"))),
        // The parameter by its name, with a filter: never its value.
        mock!(aws_sdk_ssm::Client::describe_parameters)
            .match_requests(|r| {
                let f = &r.parameter_filters()[0];
                f.key() == "Name" && f.values().iter().any(|v| v == "/shop/api-key")
            })
            .then_output(|| DescribeParametersOutput::builder().build()),
        mock!(aws_sdk_sns::Client::get_topic_attributes)
            .match_requests(|r| r.topic_arn() == Some(TOPIC))
            .then_error(|| GetTopicAttributesError::generic(meta("NotFound"))),
        mock!(aws_sdk_ecr::Client::describe_images)
            .match_requests(|r| {
                r.repository_name() == Some("shop-app") && r.registry_id() == Some("123456789012")
            })
            .then_error(|| DescribeImagesError::generic(meta("RepositoryNotFoundException"))),
    ];
    let mut all = rules.clone();
    all.extend(empty_account());
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&all)));
    let stack = Stack::from_manifest(&manifest(CERT, OWN_IMAGE)).unwrap();

    // A deploy is refused (had it gone on, its first mutating call would have matched no
    // rule and failed otherwise).
    let err = deployer.deploy(&stack).await.expect_err("refused");
    let Error::Preflight { failures, .. } = &err else {
        panic!("expected a pre-flight failure, got: {err}");
    };
    let found: Vec<(&str, &str)> = failures
        .iter()
        .map(|c| match &c.outcome {
            Outcome::Failed { reason } => (c.field.as_str(), reason.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "service.load_balancer.listeners[0].certificate_arn",
                "does not exist in us-east-1"
            ),
            (
                "service.task.containers[0].secrets.API_KEY",
                "no parameter `/shop/api-key` in us-east-1, of this account or shared with it"
            ),
            ("service.task.containers[0].secrets.DB_PASSWORD", "does not exist"),
            (
                "service.task.containers[0].image",
                "repository `shop-app` does not exist yet (this stack creates it): deploy with `--infrastructure-only` first (everything but the tasks), push the image, then deploy again"
            ),
            ("observe.alarm_actions[0]", "does not exist in us-east-1"),
        ],
        "{err}"
    );
    for (i, rule) in rules.iter().enumerate() {
        // The parameter is looked for among the account's own, then among those shared with
        // it.
        let reads = if i == 2 { 2 } else { 1 };
        assert_eq!(rule.num_calls(), reads, "rule {i}");
    }

    // `plan` is refused the same way, and `verify` returns every check.
    assert!(matches!(
        deployer.plan(&stack).await,
        Err(Error::Preflight { .. })
    ));
    let checks = deployer.verify(&stack).await.unwrap();
    assert_eq!(checks.failures().count(), 5, "{checks}");
    assert!(!checks.passed());

    // An infrastructure-only deploy does not look for the image.
    let infra = deployer.clone().infrastructure_only(true);
    let checks = infra.verify(&stack).await.unwrap();
    assert_eq!(checks.failures().count(), 4, "{checks}");
    assert!(checks.checks.iter().all(|c| !c.field.ends_with("image")));
}

#[tokio::test]
async fn a_check_the_caller_may_not_make_is_a_warning_not_a_failure() {
    let denied = mock!(aws_sdk_acm::Client::describe_certificate)
        .then_error(|| DescribeCertificateError::generic(meta("AccessDeniedException")));
    let mut all = vec![denied];
    all.extend(empty_account());
    let events = ecs_core::EventLog::new();
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&all)))
        .events(events.clone());
    let stack = Stack::from_manifest(&manifest(CERT, "nginx:1.27")).unwrap();
    let prepared = deployer.prepare(&stack).await.unwrap();
    let warnings: Vec<_> = prepared.verification().warnings().collect();
    assert_eq!(warnings.len(), 1, "{}", prepared.verification());
    assert_eq!(
        warnings[0].outcome,
        Outcome::Warning {
            reason: "not checked: DescribeCertificate is not allowed (AccessDeniedException)"
                .to_string()
        }
    );
    assert!(
        events
            .events()
            .iter()
            .any(|e| e.to_string().contains("warning: not checked")),
        "the warning is a progress event too"
    );
    assert!(prepared.verification().passed());
}

#[tokio::test]
async fn a_certificate_not_issued_or_of_another_region_fails() {
    let pending = mock!(aws_sdk_acm::Client::describe_certificate).then_output(|| {
        DescribeCertificateOutput::builder()
            .certificate(
                CertificateDetail::builder()
                    .status(CertificateStatus::PendingValidation)
                    .build(),
            )
            .build()
    });
    let mut all = vec![pending];
    all.extend(empty_account());
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&all)));
    let stack = Stack::from_manifest(&manifest(CERT, "nginx:1.27")).unwrap();
    let checks = deployer.verify(&stack).await.unwrap();
    let failed: Vec<_> = checks.failures().collect();
    assert_eq!(failed.len(), 1, "{checks}");
    assert!(
        failed[0].to_string().contains("PENDING_VALIDATION"),
        "{checks}"
    );

    // A certificate of another region is refused without a call: a load balancer takes only
    // its own region's.
    let west = CERT.replace("us-east-1", "eu-west-1");
    let stack = Stack::from_manifest(&manifest(&west, "nginx:1.27")).unwrap();
    let checks = deployer.verify(&stack).await.unwrap();
    let failed: Vec<_> = checks.failures().collect();
    assert_eq!(failed.len(), 1, "{checks}");
    assert!(
        failed[0].to_string().contains("is in eu-west-1"),
        "{checks}"
    );
    assert_eq!(all[0].num_calls(), 1, "no call for the other region's");
}

#[tokio::test]
async fn a_malformed_reference_fails_its_check_and_an_iam_certificate_is_not_checked() {
    let malformed = mock!(aws_sdk_sns::Client::get_topic_attributes)
        .then_error(|| GetTopicAttributesError::generic(meta("InvalidParameter")));
    let mut all = vec![malformed];
    all.extend(empty_account());
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&all)));
    let iam = "arn:aws:iam::123456789012:server-certificate/shop";
    let stack = Stack::from_manifest(&manifest(iam, "nginx:1.27")).unwrap();
    let checks = deployer.verify(&stack).await.unwrap();
    let outcome = |field: &str| {
        checks
            .checks
            .iter()
            .find(|c| c.field == field)
            .map(|c| c.outcome.clone())
    };
    assert_eq!(
        outcome("observe.alarm_actions[0]"),
        Some(Outcome::Failed {
            reason: "is not valid: from the mock".to_string()
        }),
        "{checks}"
    );
    assert_eq!(
        outcome("service.load_balancer.listeners[0].certificate_arn"),
        Some(Outcome::Warning {
            reason: "not an ACM certificate: not checked".to_string()
        }),
        "{checks}"
    );
}

#[tokio::test]
async fn a_secret_with_a_json_key_is_looked_up_as_the_secret_itself() {
    let keyed = format!("{SECRET}:password::");
    let exact = mock!(aws_sdk_secretsmanager::Client::describe_secret)
        .match_requests(|r| r.secret_id() == Some(SECRET))
        .then_output(|| {
            aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput::builder()
                .build()
        });
    let mut all = vec![exact];
    all.extend(empty_account());
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(&all)));
    let stack = Stack::from_manifest(&manifest(CERT, "nginx:1.27").replace(
        &format!("DB_PASSWORD: {SECRET}"),
        &format!("DB_PASSWORD: \"{keyed}\""),
    ))
    .unwrap();
    let checks = deployer.verify(&stack).await.unwrap();
    assert!(checks.passed(), "{checks}");
    assert_eq!(all[0].num_calls(), 1);
}

/// On the fake account: an infrastructure-only first deploy runs no task and registers no
/// scaling; the next deploy of the whole stack brings the service to its count and registers
/// the range; an infrastructure-only deploy of a stack whose service exists is refused.
#[tokio::test]
async fn an_infrastructure_only_first_deploy_runs_no_task_until_the_next_deploy() {
    use ecs_facade::testing::FakeAws;
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(ecs_core::FakeClock::new());
    let stack =
        Stack::from_manifest("name: shop\nprofile: prod\nimage: nginx:1.27\nport: 8080\n").unwrap();
    let desired = || aws.ecs.state().services[0].desired_count;

    deployer
        .clone()
        .infrastructure_only(true)
        .deploy(&stack)
        .await
        .unwrap();
    assert_eq!(desired(), 0);
    assert!(aws.autoscaling.state().targets.is_empty());
    assert!(aws.ecr.state().repositories.contains_key("shop-app"));

    let again = deployer
        .clone()
        .infrastructure_only(true)
        .deploy(&stack)
        .await;
    assert!(
        matches!(again, Err(Error::InfrastructureOnly { .. })),
        "{again:?}"
    );

    let report = deployer.deploy(&stack).await.unwrap();
    assert_eq!(desired(), 2, "{}", report.changes);
    assert_eq!(aws.autoscaling.state().targets.len(), 1);

    // From then on the count is autoscaling's: a redeploy changes nothing…
    aws.journal.clear();
    deployer.deploy(&stack).await.unwrap();
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );
    // …not even a 0 an operator set (with scaling suspended, say) once the range exists.
    aws.ecs.state().services[0].desired_count = 0;
    aws.journal.clear();
    deployer.deploy(&stack).await.unwrap();
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );
    assert_eq!(desired(), 0);
}
