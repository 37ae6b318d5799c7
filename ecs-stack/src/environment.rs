//! The verbs on a whole environment: `validate`, `plan`, `deploy`, `status` and `destroy` of a
//! manifest with `services` (or of an environment alone), when no `--service` picks one.
//! Each service is a stack of its own; `--service NAME` runs any verb on one of them.

use std::time::Instant;

use ecs_facade::{Deployment, DestroyOptions, Root};

use crate::render::{self, BOLD, GREEN};
use crate::{confirm, confirm_destructive, load_config, plural, region_name, CliError, Out};

/// The deployment a manifest describes, validated (no AWS call).
pub(crate) fn load(file: &str) -> Result<Deployment, CliError> {
    Ok(Deployment::from_manifest(file)?)
}

/// Whether the manifest describes an environment (with services, or without a service of
/// its own) rather than one stack.
pub(crate) fn is_environment(d: &Deployment) -> bool {
    !d.services.is_empty() && d.root.is_some() || matches!(d.root, Some(Root::Environment(_)))
}

/// The stacks of `d` by name: the environment's own service first.
fn names(d: &Deployment) -> Vec<String> {
    d.stacks().iter().map(|s| s.name.clone()).collect()
}

async fn deployer(out: Out) -> (aws_types::SdkConfig, crate::Progress, ecs_facade::Deployer) {
    let config = load_config().await;
    let progress = crate::Progress::new(!out.json);
    let deployer = ecs_facade::Deployer::new(&config)
        .events(progress.sink())
        .lease(out.lease());
    (config, progress, deployer)
}

/// `validate FILE`: the environment and its services, profile defaults applied.
pub(crate) fn validate(out: Out, file: &str, d: &Deployment) -> Result<(), CliError> {
    if out.json {
        return out.print_json(&serde_json::json!({
            "file": file,
            "valid": true,
            "environment": d.environment_name(),
            "stacks": names(d),
        }));
    }
    println!("{file}: {}", out.style.paint(GREEN, "valid"));
    println!("  environment  {}", d.environment_name());
    if let Some(Root::Stack(s)) = &d.root {
        println!(
            "  {} (the environment's own service: every request no route takes)",
            s.name
        );
    }
    for s in &d.services {
        let routes: Vec<String> = s
            .service
            .environment
            .iter()
            .flat_map(|p| p.routes.iter().map(ToString::to_string))
            .collect();
        let image = s
            .service
            .task
            .containers
            .first()
            .map_or("", |c| c.image.as_str());
        println!(
            "  {}  {image}  {}",
            s.name,
            if routes.is_empty() {
                "(no route)".to_string()
            } else {
                routes.join("; ")
            }
        );
    }
    Ok(())
}

/// `plan FILE`: the environment's plan, then each service's.
pub(crate) async fn plan(out: Out, d: &Deployment) -> Result<(), CliError> {
    let (config, progress, deployer) = deployer(out).await;
    if !out.json {
        eprintln!(
            "Planning environment `{}` and its {} service{} in {}…",
            d.environment_name(),
            d.services.len(),
            plural(d.services.len()),
            region_name(&config)
        );
    }
    let plans = deployer.plan_all(d).await?;
    progress.clear();
    if out.json {
        let plans: Vec<serde_json::Value> = plans
            .iter()
            .map(|(stack, plan)| {
                serde_json::json!({ "stack": stack, "changes": plan, "summary": plan.summary() })
            })
            .collect();
        return out.print_json(&serde_json::json!({
            "environment": d.environment_name(),
            "plans": plans,
        }));
    }
    for (stack, plan) in &plans {
        println!("{}", out.style.paint(BOLD, &format!("Stack `{stack}`:")));
        println!("{}\n", out.style.plan(plan));
    }
    if plans.len() < d.services.len() + usize::from(d.root.is_some()) {
        println!("The services are planned once the environment is deployed.");
    }
    Ok(())
}

/// `deploy FILE`: the environment, then every service at once.
pub(crate) async fn deploy(
    out: Out,
    d: &Deployment,
    yes: bool,
    no_wait: bool,
) -> Result<(), CliError> {
    let (config, progress, deployer) = deployer(out).await;
    let deployer = deployer.wait_for_rollout(!no_wait);
    if !out.json {
        eprintln!(
            "Planning environment `{}` in {}…",
            d.environment_name(),
            region_name(&config)
        );
    }
    let plans = deployer.plan_all(d).await?;
    progress.clear();
    let mut all = ecs_facade::Plan::new();
    for (stack, plan) in &plans {
        if !out.json {
            println!("{}", out.style.paint(BOLD, &format!("Stack `{stack}`:")));
            println!("{}\n", out.style.plan(plan));
        }
        all.extend(plan.clone());
    }
    confirm_destructive(&all, yes, out.json)?;
    if !out.json {
        eprintln!("Applying environment `{}`…", d.environment_name());
    }
    let started = Instant::now();
    let report = deployer.deploy_all(d).await?;
    progress.clear();
    if out.json {
        return out.print_json(&serde_json::json!({
            "environment": d.environment_name(),
            "report": report,
            "duration_seconds": started.elapsed().as_secs_f64(),
        }));
    }
    println!(
        "{} environment `{}` in {:.1}s:",
        out.style.paint(GREEN, "Deployed"),
        d.environment_name(),
        started.elapsed().as_secs_f64()
    );
    if let Some(ecs_facade::RootReport::Stack(r)) = &report.root {
        println!(
            "  {:<24} {}",
            d.environment_name(),
            r.outputs.service.url.as_deref().unwrap_or("-")
        );
    }
    for (stack, r) in &report.services {
        println!(
            "  {stack:<24} {}",
            r.outputs.service.url.as_deref().unwrap_or("(no route)")
        );
    }
    Ok(())
}

/// `status FILE`: every service with its health and URL.
pub(crate) async fn status(out: Out, d: &Deployment) -> Result<(), CliError> {
    let (_, progress, deployer) = deployer(out).await;
    let status = deployer.status_all(d).await?;
    progress.clear();
    if out.json {
        return out.print_json(&status);
    }
    println!(
        "{} {}{}",
        out.style.paint(BOLD, "Environment:"),
        status.environment,
        match (&status.deployed, &status.load_balancer) {
            (false, _) => " (not deployed)".to_string(),
            (true, Some(dns)) => format!("  load balancer {dns}"),
            (true, None) => String::new(),
        }
    );
    for s in &status.services {
        let tasks = match &s.status.service {
            Some(svc) => format!(
                "{} running, {} pending, {} desired",
                svc.running, svc.pending, svc.desired
            ),
            None => "not deployed".to_string(),
        };
        let rollout = s
            .status
            .service
            .as_ref()
            .and_then(|svc| svc.deployments.first())
            .map_or(String::new(), |d| d.rollout_state.clone());
        let alarms = s
            .status
            .alarms
            .iter()
            .filter(|a| a.state == "ALARM")
            .count();
        println!(
            "  {:<24} {tasks:<40} {rollout:<12} {} alarm{} firing  {}",
            s.name,
            alarms,
            plural(alarms),
            s.url.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// `destroy FILE`: every service at once, then the environment.
pub(crate) async fn destroy(
    out: Out,
    d: &Deployment,
    yes: bool,
    options: DestroyOptions,
) -> Result<(), CliError> {
    let (config, progress, deployer) = deployer(out).await;
    if !out.json {
        eprintln!(
            "Looking for what environment `{}` and its services own in {}…",
            d.environment_name(),
            region_name(&config)
        );
    }
    let mut previews = futures_util::future::try_join_all(d.services.iter().map(|s| async {
        Ok::<_, ecs_facade::Error>((s.name.clone(), deployer.plan_destroy(s, options).await?))
    }))
    .await?;
    match &d.root {
        Some(Root::Stack(s)) => {
            previews.push((s.name.clone(), deployer.plan_destroy(s, options).await?))
        }
        Some(Root::Environment(e)) => {
            previews.push((e.name.clone(), deployer.plan_destroy_environment(e).await?))
        }
        _ => {}
    }
    progress.clear();
    if !out.json {
        for (stack, preview) in &previews {
            println!("{}", render::destroy_preview(out.style, stack, preview));
        }
    }
    let count: usize = previews
        .iter()
        .map(|(_, p)| p.deleted.pending().count())
        .sum();
    confirm(
        &format!(
            "Destroy environment `{}` and its services ({count} resource{} found)?",
            d.environment_name(),
            plural(count)
        ),
        yes,
        out.json,
    )?;
    let started = Instant::now();
    let reports = deployer.destroy_all(d, options).await?;
    progress.clear();
    if out.json {
        let destroyed: Vec<serde_json::Value> = reports
            .iter()
            .map(|(stack, r)| {
                serde_json::json!({ "stack": stack, "deleted": r.deleted, "kept": r.kept })
            })
            .collect();
        return out.print_json(&serde_json::json!({
            "environment": d.environment_name(),
            "destroyed": destroyed,
            "duration_seconds": started.elapsed().as_secs_f64(),
        }));
    }
    for (stack, r) in &reports {
        println!(
            "{}",
            render::destroyed(out.style, stack, r, started.elapsed())
        );
    }
    Ok(())
}

/// `cost FILE`: the environment with its services, against one stack per service.
pub(crate) async fn cost(out: Out, d: &Deployment, region: Option<String>) -> Result<(), CliError> {
    let region = match region {
        Some(region) => region,
        None => load_config()
            .await
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".to_string()),
    };
    let estimate = ecs_facade::estimate_environment_cost(d, &region);
    if out.json {
        return out.print_json(&estimate);
    }
    print!("{estimate}");
    Ok(())
}

/// `unlock FILE`: the environment's own lease (a service's: `--service NAME`).
pub(crate) async fn unlock(out: Out, d: &Deployment) -> Result<(), CliError> {
    let (_, progress, deployer) = deployer(out).await;
    let displaced = match &d.root {
        Some(Root::Stack(s)) => deployer.unlock(s).await?,
        Some(Root::Environment(e)) => deployer.unlock_environment(e).await?,
        _ => None,
    };
    progress.clear();
    crate::unlocked(
        out,
        &format!("environment `{}`", d.environment_name()),
        displaced,
    )
}
