//! `ecs-stack demo FILE`: the whole lifecycle of the manifest's stack against the local AWS
//! emulator — cost estimate, plan, deploy, a redeploy that changes nothing, a new image, and a
//! destroy that leaves nothing behind.

use std::time::Instant;

use aws_types::SdkConfig;
use ecs_facade::testing::{emulator_layers, CallCounter, Emulator};
use ecs_facade::{Deployer, DestroyOptions, Stack};

use crate::progress::Progress;
use crate::render::{self, BOLD, GREEN};
use crate::{load_stack, plural, CliError, Out};

pub(crate) async fn run(out: Out, file: &str) -> Result<(), CliError> {
    let started = Instant::now();
    let mut stack = load_stack(file, out.service)?;
    out.say(&out.style.paint(
        BOLD,
        &format!("ecs-stack demo: stack `{}` from {file}", stack.name),
    ));
    out.say("cost → plan → deploy → redeploy (no change) → new image → destroy");
    out.say("(against a local AWS emulator: nothing is created in a real AWS account)\n");

    out.say("Starting the local AWS emulator… (the first run installs moto into .ecs-emulator/, which takes a minute)");
    let emulator = tokio::task::spawn_blocking(Emulator::shared).await??;
    out.say(&format!(
        "Emulator listening on {}",
        emulator.endpoint_url()
    ));
    let config = emulator.sdk_config().await;
    let notes = stand_ins(out, &config, &mut stack).await?;

    let counter = CallCounter::new();
    let progress = Progress::new(!out.json);
    let deployer =
        Deployer::from_layers(emulator_layers(emulator, &counter).await).events(progress.sink());

    heading(out, "1. Estimated monthly cost");
    let cost = ecs_facade::estimate_cost(&stack, "us-east-1");
    out.say(cost.to_string().trim_end());

    heading(out, "2. Plan and deploy (waits for the rollout)");
    let plan = deployer.plan(&stack).await?;
    progress.clear();
    out.say(&out.style.plan(&plan));
    let deployed = deployer.deploy(&stack).await?;
    progress.clear();
    out.say(&format!(
        "\n{}",
        render::deploy_report(out.style, &deployed, true)
    ));

    heading(
        out,
        "3. Redeploy the unchanged stack: no change, no mutating call",
    );
    counter.reset();
    let redeployed = deployer.deploy(&stack).await?;
    progress.clear();
    let redeploy_calls = mutating_operations(&counter);
    let reads = counter.calls().len().saturating_sub(redeploy_calls.len());
    out.say(&out.style.plan(&redeployed.changes));
    if !redeployed.changes.is_empty() || !redeploy_calls.is_empty() {
        let changes = redeployed.changes.pending().count();
        return Err(CliError::msg(format!(
            "the unchanged stack was not a no-op: {changes} change{} planned; mutating calls: {}",
            plural(changes),
            list(&redeploy_calls)
        )));
    }
    out.say(&format!(
        "{} mutating calls ({reads} read calls).",
        out.style.paint(GREEN, "0")
    ));

    heading(out, "4. Roll out a new image");
    let container = stack
        .service
        .task
        .containers
        .first_mut()
        .ok_or_else(|| CliError::msg("the stack has no container"))?;
    let old_image = container.image.clone();
    let new_image = retag(&old_image);
    container.image.clone_from(&new_image);
    out.say(&format!(
        "{old_image} → {new_image} (the emulator does not pull images, so any tag will do)"
    ));
    let plan = deployer.plan(&stack).await?;
    progress.clear();
    out.say(&out.style.plan(&plan));
    counter.reset();
    let rolled = deployer.deploy(&stack).await?;
    progress.clear();
    let rollout_calls = mutating_operations(&counter);
    out.say(&format!("Mutating calls: {}", list(&rollout_calls)));
    out.say(&format!(
        "Now running {}: {}",
        rolled.outputs.service.task_definition_arn,
        render::rollout_text(&rolled, true)
    ));
    if rollout_calls != ["RegisterTaskDefinition", "UpdateService"] {
        return Err(CliError::msg(format!(
            "a new image should take exactly RegisterTaskDefinition and UpdateService, but took: {}",
            list(&rollout_calls)
        )));
    }

    heading(out, "5. Destroy everything (images and logs included)");
    let options = DestroyOptions::everything();
    let destroyed = deployer.destroy(&stack, options).await?;
    progress.clear();
    out.say(&out.style.plan(&destroyed.deleted));
    let left = deployer.plan_destroy(&stack, options).await?;
    progress.clear();
    let remaining: Vec<String> = left
        .deleted
        .pending()
        .map(|c| format!("{} {}", c.resource, c.id))
        .chain(left.kept.iter().cloned())
        .collect();
    if !remaining.is_empty() {
        return Err(CliError::msg(format!(
            "destroy left resources behind: {}",
            remaining.join(", ")
        )));
    }
    out.say("Nothing is left: a destroy plan finds nothing of the stack to delete.");

    let total = started.elapsed();
    out.say(&format!(
        "\n{} in {:.1}s: stack `{}` deployed, redeployed without a change, rolled out to {new_image} and destroyed.",
        out.style.paint(GREEN, "Done"),
        total.as_secs_f64(),
        stack.name
    ));
    if out.json {
        out.print_json(&serde_json::json!({
            "stack": stack.name,
            "emulator": emulator.endpoint_url(),
            "stand_ins": notes,
            "cost": cost,
            "deploy": deployed,
            "redeploy": {
                "report": redeployed,
                "mutating_calls": redeploy_calls,
                "read_calls": reads,
            },
            "rollout": {
                "image": new_image,
                "report": rolled,
                "mutating_calls": rollout_calls,
            },
            "destroy": destroyed,
            "duration_seconds": total.as_secs_f64(),
        }))?;
    }
    Ok(())
}

fn heading(out: Out, title: &str) {
    out.say(&format!(
        "\n{}",
        out.style.paint(BOLD, &format!("=== {title} ==="))
    ));
}

fn mutating_operations(counter: &CallCounter) -> Vec<String> {
    counter
        .mutating()
        .into_iter()
        .map(|call| call.operation)
        .collect()
}

fn list(operations: &[String]) -> String {
    if operations.is_empty() {
        "none".to_string()
    } else {
        operations.join(", ")
    }
}

/// Substitutes what the manifest refers to but the emulator cannot have (the certificate,
/// secrets, SNS topics, an existing VPC: see [`ecs_facade::testing::stand_ins`]). Says what
/// it did; returns the notes.
async fn stand_ins(
    out: Out,
    config: &SdkConfig,
    stack: &mut Stack,
) -> Result<Vec<String>, CliError> {
    let made = ecs_facade::testing::stand_ins(config, stack)
        .await
        .map_err(|e| CliError::Other(Box::new(e)))?;
    let notes: Vec<String> = made.into_iter().map(|m| m.note).collect();
    for note in &notes {
        out.say(note);
    }
    Ok(notes)
}

/// The same image with its tag changed: `nginx:1.27` → `nginx:1.27-demo2`; an untagged image
/// (implicitly `:latest`) → `nginx:latest-demo2`; `repo@sha256:…` → `repo:demo2`.
fn retag(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    // The tag is after the last `:` of the last path segment (a registry may have a port).
    let segment = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[segment..].find(':') {
        Some(i) => (&name[..segment + i], Some(&name[segment + i + 1..])),
        None => (name, None),
    };
    match (tag, digest) {
        (Some(tag), _) => format!("{repository}:{tag}-demo2"),
        (None, true) => format!("{repository}:demo2"),
        (None, false) => format!("{repository}:latest-demo2"),
    }
}
