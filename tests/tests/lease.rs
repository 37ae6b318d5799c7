//! The stack's lease against the local AWS emulator (SSM Parameter Store): two deploys of one
//! stack started at once end with exactly the inventory of one clean deploy; a holder killed
//! with SIGKILL blocks the next deploy only until its lease expires by the service's clock.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ecs_core::lease::LeaseOptions;
use ecs_core::testing::CallCounter;
use ecs_core::{Event, EventLog};
use ecs_e2e_tests::{emulator, inventory};
use ecs_facade::testing::emulator_layers;
use ecs_facade::{Deployer, DestroyOptions, Stack};

fn dev(name: &str) -> Stack {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/dev.yml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let yaml = yaml.replacen("name: shop-dev\n", &format!("name: {name}\n"), 1);
    assert!(yaml.contains(&format!("name: {name}\n")), "{yaml}");
    Stack::from_manifest(&yaml).unwrap()
}

async fn deployer(events: &EventLog, wait: Duration) -> Deployer {
    Deployer::from_layers(emulator_layers(emulator(), &CallCounter::new()).await)
        .events(events.clone())
        .lease(
            LeaseOptions::builder()
                .wait(wait)
                .poll(Duration::from_millis(500))
                .build(),
        )
}

#[tokio::test]
async fn two_deploys_at_once_end_with_exactly_a_clean_deploys_inventory() {
    let events = EventLog::new();
    // A double-triggered pipeline: the same manifest, deployed twice at once.
    let twin = dev("e2e-twin");
    let (a, b) = (
        deployer(&events, Duration::from_secs(300)).await,
        deployer(&events, Duration::from_secs(300)).await,
    );
    let (first, second) = tokio::join!(a.deploy(&twin), b.deploy(&twin));
    let (first, second) = (first.unwrap(), second.unwrap());
    // One of them made the stack under the lease's first generation; the other waited for
    // the lease, took the second, read again, and found nothing to do.
    let (maker, waiter) = match first.lease {
        Some(1) => (&first, &second),
        _ => (&second, &first),
    };
    assert_eq!((maker.lease, waiter.lease), (Some(1), Some(2)));
    assert!(!maker.changes.is_empty());
    assert!(waiter.changes.is_empty(), "{}", waiter.changes);
    assert!(events.events().iter().any(
        |e| matches!(e, Event::Waiting { resource, .. } if resource == "lease of stack `e2e-twin`")
    ));

    // The reference: the same manifest deployed once, alone.
    let solo = dev("e2e-solo");
    deployer(&events, Duration::ZERO)
        .await
        .deploy(&solo)
        .await
        .unwrap();
    let (twin_inventory, solo_inventory) =
        (inventory("e2e-twin").await, inventory("e2e-solo").await);
    assert_eq!(twin_inventory, solo_inventory);
    assert!(
        twin_inventory.values().sum::<usize>() > 20,
        "{twin_inventory:?}"
    );

    let d = deployer(&events, Duration::ZERO).await;
    let options = DestroyOptions::everything();
    d.destroy(&twin, options).await.unwrap();
    d.destroy(&solo, options).await.unwrap();
    // A destroyed stack leaves no lease behind (as boto3 sees SSM).
    let left = ecs_e2e_tests::boto3_json(
        "r = boto3.client('ssm').get_parameters_by_path(Path='/ecs-facade/lease/stack/e2e-twin', Recursive=True)\n\
         print(json.dumps([p['Name'] for p in r['Parameters']]))",
    );
    assert_eq!(left, serde_json::json!([]));
}

#[tokio::test]
async fn a_killed_holder_blocks_the_next_deploy_only_until_its_lease_expires() {
    let endpoint = emulator().endpoint_url().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lease-holder"))
        .arg(&endpoint)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let held = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("HELD"));
    assert!(held, "the child did not take the lease");
    // SIGKILL: no release, no clean-up.
    child.kill().unwrap();
    child.wait().unwrap();

    // The next deploy, willing to wait: it breaks the dead run's lease once the service's clock
    // says it expired (3 s), says so, and deploys.
    let events = EventLog::new();
    let stack = dev("e2e-killed");
    let d = deployer(&events, Duration::from_secs(120)).await;
    let report = d.deploy(&stack).await.unwrap();
    assert_eq!(report.lease, Some(2));
    let broke: Vec<String> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Progress { message, .. } if message.starts_with("broke the lease") => {
                Some(message)
            }
            _ => None,
        })
        .collect();
    assert_eq!(broke.len(), 1, "{broke:?}");
    assert!(broke[0].contains("run doomed-run"), "{broke:?}");
    d.destroy(&stack, DestroyOptions::everything())
        .await
        .unwrap();
}
