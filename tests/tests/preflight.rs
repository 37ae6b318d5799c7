//! The pre-flight against the local AWS emulator: what a stack refers to but does not make
//! (the certificate, a Secrets Manager secret, an SSM parameter, an SNS topic, an ECR image) is
//! looked for before any change; a stack whose references are missing is refused with every
//! missing one named and not one mutating call; an infrastructure-only first deploy makes the
//! stack without tasks, and once the image is pushed (by boto3, as CI would) the next deploy
//! starts them.

use ecs_core::testing::CallCounter;
use ecs_core::{EventLog, OWNER_TAG};
use ecs_e2e_tests::{boto3_json, emulator, sns_topic};
use ecs_facade::testing::emulator_layers;
use ecs_facade::{Deployer, DestroyOptions, Error, Outcome, Stack};

async fn deployer(counter: &CallCounter) -> Deployer {
    Deployer::from_layers(emulator_layers(emulator(), counter).await).events(EventLog::new())
}

/// `(certificate ARN, secret ARN)` made in the emulator with boto3.
fn certificate_and_secret(stack: &str) -> (String, String) {
    let made = boto3_json(&format!(
        "cert = boto3.client('acm').request_certificate(DomainName='{stack}.example.com')['CertificateArn']\n\
         sm = boto3.client('secretsmanager')\n\
         secret = sm.create_secret(Name='{stack}/db', SecretString='never-read')['ARN']\n\
         boto3.client('ssm').put_parameter(Name='/{stack}/api-key', Value='never-read', Type='SecureString', Overwrite=True)\n\
         print(json.dumps([cert, secret]))"
    ));
    (
        made[0].as_str().unwrap().to_string(),
        made[1].as_str().unwrap().to_string(),
    )
}

fn manifest(stack: &str, certificate: &str, secret: &str, topic: &str, image: &str) -> String {
    format!(
        "name: {stack}\nprofile: prod\nimage: {image}\nport: 8080\n\
         secrets:\n  DB_PASSWORD: {secret}\n  API_KEY: arn:aws:ssm:us-east-1:123456789012:parameter/{stack}/api-key\n\
         https:\n  certificate_arn: {certificate}\n\
         alarms:\n  actions: [{topic}]\n"
    )
}

#[tokio::test]
async fn missing_references_are_refused_before_any_change_and_present_ones_pass() {
    let name = "e2e-preflight";
    let counter = CallCounter::new();
    let d = deployer(&counter).await;
    let (certificate, secret) = certificate_and_secret(name);
    let topic = sns_topic("e2e-preflight-ops").await;

    // Everything it refers to exists: every check passes (the values are never read).
    let good =
        Stack::from_manifest(&manifest(name, &certificate, &secret, &topic, "nginx:1.27")).unwrap();
    let checks = d.verify(&good).await.unwrap();
    assert!(checks.passed(), "{checks}");
    assert_eq!(checks.checks.len(), 4, "{checks}");
    let ops: Vec<String> = counter.calls().into_iter().map(|c| c.operation).collect();
    for op in [
        "DescribeCertificate",
        "DescribeSecret",
        "DescribeParameters",
        "GetTopicAttributes",
    ] {
        assert!(ops.iter().any(|o| o == op), "{op} not called: {ops:?}");
    }
    assert!(
        !ops.iter()
            .any(|o| o == "GetSecretValue" || o == "GetParameter" || o == "GetParameters"),
        "a value was read: {ops:?}"
    );
    assert_eq!(counter.mutating(), vec![], "verify changes nothing");

    // Nothing it refers to exists: refused with every missing reference named, before any
    // change.
    let gone = |arn: &str| arn.replace(name, "e2e-nothing-here");
    let own_repository = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}-app:v1");
    let bad = Stack::from_manifest(
        &manifest(
            name,
            "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
            &gone(&secret),
            "arn:aws:sns:us-east-1:123456789012:e2e-nothing-here",
            &own_repository,
        )
        // A parameter neither this account's nor shared with it (looked for both ways).
        .replace(
            "parameter/e2e-preflight/api-key",
            "parameter/e2e-nothing-here/api-key",
        ),
    )
    .unwrap();
    counter.reset();
    let err = d.deploy(&bad).await.expect_err("refused");
    let Error::Preflight { failures, .. } = &err else {
        panic!("expected a pre-flight failure, got: {err}");
    };
    let fields: Vec<&str> = failures.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "service.load_balancer.listeners[0].certificate_arn",
            "service.task.containers[0].secrets.API_KEY",
            "service.task.containers[0].secrets.DB_PASSWORD",
            "service.task.containers[0].image",
            "observe.alarm_actions[0]",
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("--infrastructure-only"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    let parameter_reads = counter
        .calls()
        .iter()
        .filter(|c| c.operation == "DescribeParameters")
        .count();
    assert_eq!(
        parameter_reads, 2,
        "the account's own, then those shared with it"
    );
    assert_eq!(counter.mutating(), vec![], "refused before any change");
    let vpcs = boto3_json(&format!(
        "print(json.dumps(len(boto3.client('ec2').describe_vpcs(Filters=[{{'Name': 'tag:{OWNER_TAG}', 'Values': ['{name}']}}])['Vpcs'])))"
    ));
    assert_eq!(vpcs, 0, "nothing was made");
}

#[tokio::test]
async fn an_infrastructure_only_first_deploy_then_the_image_then_the_tasks() {
    let name = "e2e-infra-first";
    let counter = CallCounter::new();
    let image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}-app:v1");
    let stack = Stack::from_manifest(&format!(
        "name: {name}\nprofile: prod\nimage: {image}\nport: 8080\n"
    ))
    .unwrap();

    // The image's repository is the stack's own, not made yet: a plain deploy is refused
    // and says what to do.
    let d = deployer(&counter).await;
    let err = d.deploy(&stack).await.expect_err("no image yet");
    assert!(err.to_string().contains("--infrastructure-only"), "{err}");
    assert_eq!(counter.mutating(), vec![]);

    // Without tasks: everything is made, the service runs none and has no scaling yet.
    let report = d
        .clone()
        .infrastructure_only(true)
        .deploy(&stack)
        .await
        .unwrap();
    assert!(report.outputs.scaling_resource_id.is_none(), "{report:?}");
    let desired = || {
        boto3_json(&format!(
            "s = boto3.client('ecs').describe_services(cluster='{name}', services=['{name}-app'])['services'][0]\n\
             print(json.dumps(s['desiredCount']))"
        ))
    };
    assert_eq!(desired(), 0);

    // A second infrastructure-only deploy is refused: the service exists.
    let again = d.clone().infrastructure_only(true).deploy(&stack).await;
    assert!(
        matches!(again, Err(Error::InfrastructureOnly { .. })),
        "{again:?}"
    );

    // CI pushes the image (boto3 puts a manifest), then the whole stack is deployed: the
    // pre-flight finds the image, the service is brought to the profile's count, and
    // autoscaling is registered.
    let push = |tag: &str| {
        boto3_json(&format!(
            "boto3.client('ecr').put_image(repositoryName='{name}-app', imageTag='{tag}', imageManifest=json.dumps({{'schemaVersion': 2, 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json', 'config': {{'digest': 'sha256:' + '{tag}'.ljust(64, '0'), 'size': 1, 'mediaType': 'application/vnd.docker.container.image.v1+json'}}, 'layers': []}}))\n\
             print(json.dumps(True))"
        ))
    };
    push("v1");
    let checks = d.verify(&stack).await.unwrap();
    assert!(
        checks
            .checks
            .iter()
            .any(|c| c.field.ends_with("image") && c.outcome == Outcome::Passed),
        "{checks}"
    );
    let report = d.deploy(&stack).await.unwrap();
    assert!(report.outputs.scaling_resource_id.is_some(), "{report:?}");
    assert_eq!(desired(), 2);

    // An image-only release of a tag not pushed yet is refused before any change; once
    // pushed, it is released.
    let v2 = ecs_facade::service::ImageRelease::builder()
        .image(image.replace(":v1", ":v2"))
        .build();
    counter.reset();
    let err = d.release_image(&stack, &v2).await.expect_err("not pushed");
    assert!(
        matches!(&err, Error::Preflight { failures, .. } if failures[0].to_string().contains("`v2` is not in repository")),
        "{err}"
    );
    assert_eq!(counter.mutating(), vec![], "refused before any change");
    push("v2");
    let released = d.release_image(&stack, &v2).await.unwrap();
    assert!(released.released, "{released:?}");

    d.destroy(&stack, DestroyOptions::everything())
        .await
        .unwrap();
}
