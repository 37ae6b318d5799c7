//! Environment values never leave the process in text: not in `Debug` output, progress
//! events, plans (including a plan that changes the value), reports serialized as JSON, or
//! errors. Checked by searching everything captured for a sentinel value, end to end against
//! the emulator.

use ecs_core::testing::CallCounter;
use ecs_core::EventLog;
use ecs_e2e_tests::{emulator, with_stand_ins};
use ecs_facade::testing::emulator_layers;
use ecs_facade::{Deployer, DestroyOptions, Stack};

const SENTINEL: &str = "S3NT1NEL-value-9f2c";
const SENTINEL_2: &str = "S3NT1NEL-changed-41aa";

fn manifest(value: &str) -> String {
    format!(
        "name: e2e-secret\nimage: nginx:1.27\nport: 8080\nspot: false\nenvironment:\n  API_TOKEN: {value}\nsecrets:\n  DB_PASSWORD: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf\n"
    )
}

#[tokio::test]
async fn environment_values_never_appear_in_output() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let deployer =
        Deployer::from_layers(emulator_layers(emulator(), &counter).await).events(events.clone());
    // The secret the manifest names is made in the emulator (the pre-flight looks for it).
    let with_secret = with_stand_ins(&manifest(SENTINEL)).await;
    let secret_arn = |yaml: &str| yaml.lines().last().unwrap_or_default().to_string();
    let stand_in = secret_arn(&with_secret);
    let manifest = |value: &str| {
        let yaml = manifest(value);
        yaml.replace(&secret_arn(&yaml), &stand_in)
    };
    let stack = Stack::from_manifest(&manifest(SENTINEL)).unwrap();
    let mut captured = Vec::new();

    captured.push(format!("{stack:?}"));
    captured.push(serde_json::to_string(&stack).unwrap());
    captured.push(deployer.plan(&stack).await.unwrap().to_string());
    let report = deployer.deploy(&stack).await.unwrap();
    captured.push(serde_json::to_string(&report).unwrap());
    captured.push(format!("{report:?}"));

    // A changed value: the plan says which variable changed, never from what to what.
    let changed = Stack::from_manifest(&manifest(SENTINEL_2)).unwrap();
    let plan = deployer.plan(&changed).await.unwrap();
    let text = plan.to_string();
    assert!(text.contains("environment.API_TOKEN"), "{text}");
    captured.push(text);
    captured.push(serde_json::to_string(&plan).unwrap());
    captured.push(serde_json::to_string(&deployer.deploy(&changed).await.unwrap()).unwrap());
    captured.push(serde_json::to_string(&deployer.status(&changed).await.unwrap()).unwrap());

    // An error about the stack.
    let mut invalid = changed.clone();
    invalid.service.task.memory = 3;
    let err = deployer.plan(&invalid).await.unwrap_err();
    captured.push(err.to_string());
    captured.push(format!("{err:?}"));

    captured.extend(events.events().iter().map(|e| format!("{e} {e:?}")));
    assert!(captured.len() > 20);
    for text in &captured {
        assert!(
            !text.contains(SENTINEL) && !text.contains(SENTINEL_2),
            "an environment value leaked: {text}"
        );
    }
    // The value did reach ECS, where it belongs.
    let ecs = aws_sdk_ecs::Client::new(&emulator().sdk_config().await);
    let td = ecs
        .describe_task_definition()
        .task_definition("e2e-secret-app")
        .send()
        .await
        .unwrap();
    let env = td.task_definition().unwrap().container_definitions()[0].environment();
    assert_eq!(env[0].value(), Some(SENTINEL_2));

    deployer
        .destroy(&changed, DestroyOptions::everything())
        .await
        .unwrap();
}
