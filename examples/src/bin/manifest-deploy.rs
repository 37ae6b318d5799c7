//! Deploys a stack described by a YAML manifest: validates it (every problem of every layer at
//! once, before any AWS call), prints what the profile resolved it to, its cost estimate and
//! its plan, deploys it, prints its outputs and destroys it.
//!
//! Run it with `cargo run -p ecs-examples --bin manifest-deploy [-- path/to/manifest.yml]`
//! (default `examples/dev.yml`; try `examples/prod.yml` too). It runs against the local AWS
//! emulator, so nothing is created in a real AWS account; it needs Python 3: the first run
//! installs the emulator (moto) into `.ecs-emulator/` at the project root.

// A command-line example: it prints, and it stamps events with the real wall clock
// (the library itself takes time from `ecs_core::Clock` so that tests can control it).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use ecs_facade::net::{NatStrategy, Network};
use ecs_facade::observe::Monitoring;
use ecs_facade::testing::{emulator_layers, CallCounter, Emulator};
use ecs_facade::{
    estimate_cost, DeployReport, Deployer, DestroyOptions, Event, Manifest, Profile, Stack,
};

type BoxError = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Print the whole chain: the layer's error, the AWS error, the transport error…
            eprintln!("\nerror: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let path = std::env::args().nth(1).unwrap_or_else(default_manifest);

    // 1. Parse, apply the profile and validate every layer: an invalid manifest stops here
    //    with every problem listed, each naming its field.
    heading(&format!("Manifest {path}"));
    let mut stack = Stack::from_manifest(&path)?;
    let profile = Manifest::parse(&std::fs::read_to_string(&path)?)?.profile();
    print_summary(&stack, profile);

    // 2. The emulator (starting it blocks, so keep it off the runtime) and a deployer whose
    //    progress events are printed with the time since the start.
    println!("\nStarting the local AWS emulator (the first run installs it)…");
    let emulator = tokio::task::spawn_blocking(Emulator::shared).await??;
    let config = emulator.sdk_config().await;
    let region = config
        .region()
        .map_or_else(|| "us-east-1".to_string(), |r| r.to_string());
    let start = Instant::now();
    let deployer = Deployer::from_layers(emulator_layers(emulator, &CallCounter::new()).await)
        .events(move |event: Event| {
            let t = start.elapsed().as_secs_f64();
            println!("  [{t:6.1}s] {event}");
        });

    // The emulator has none of what the manifest refers to but the stack does not make (the
    // certificate, secrets, SNS topics): make stand-ins there and point the stack at them.
    for made in ecs_facade::testing::stand_ins(&config, &mut stack).await? {
        println!("{}", made.note);
    }

    // 3. The cost estimate and the plan.
    heading("Cost estimate");
    println!("{}", estimate_cost(&stack, &region));
    heading("Plan");
    println!("{}", deployer.plan(&stack).await?);

    // 4. Deploy, and wait for the rollout.
    heading("Deploy");
    let report = deployer.deploy(&stack).await?;
    print_outputs(&report);

    // 5. Destroy everything (on the emulator, the images and logs too).
    heading("Destroy");
    let options = DestroyOptions::everything();
    let destroyed = deployer.destroy(&stack, options).await?;
    println!("\n{}", destroyed.deleted);
    for kept in &destroyed.kept {
        println!("  kept: {kept}");
    }
    println!("\nDone in {:.1}s.", start.elapsed().as_secs_f64());
    Ok(())
}

/// `examples/dev.yml` from the workspace root, or the crate's own copy from anywhere else.
fn default_manifest() -> String {
    let relative = "examples/dev.yml";
    if Path::new(relative).is_file() {
        relative.to_string()
    } else {
        format!("{}/dev.yml", env!("CARGO_MANIFEST_DIR"))
    }
}

fn print_summary(stack: &Stack, profile: Profile) {
    let profile = match profile {
        Profile::Dev => "dev",
        Profile::Prod => "prod",
    };
    println!("stack          {} (profile {profile})", stack.name);
    let task = &stack.service.task;
    for c in &task.containers {
        println!("container      {} {} ports {:?}", c.name, c.image, c.ports);
    }
    println!(
        "task           {} CPU / {} MiB, {}",
        task.cpu,
        task.memory,
        task.architecture.as_str()
    );
    let settings = &stack.service.service;
    let capacity = if settings.capacity_provider_strategy.is_empty() {
        "on demand".to_string()
    } else {
        settings
            .capacity_provider_strategy
            .iter()
            .map(|s| s.provider.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("tasks          {} ({capacity})", settings.desired_count);
    match &stack.scaling {
        Some(s) => println!("autoscaling    {}–{} tasks", s.min, s.max),
        None => println!("autoscaling    off"),
    }
    if let Some(lb) = &stack.service.load_balancer {
        let listeners: Vec<String> = lb
            .listeners
            .iter()
            .map(|l| format!("{} {}", l.protocol.as_str(), l.port))
            .collect();
        let scheme = if lb.internal {
            "internal"
        } else {
            "internet-facing"
        };
        println!(
            "load balancer  {scheme}, listeners {}",
            listeners.join(", ")
        );
    }
    let network = stack.network_spec();
    match &network.vpc {
        Network::Managed(m) => {
            let nat = match m.nat {
                NatStrategy::None => "no NAT gateway",
                NatStrategy::Single => "one NAT gateway",
                NatStrategy::PerAz => "a NAT gateway per zone",
            };
            println!(
                "network        new VPC {} over {} zones, {nat}",
                m.cidr, m.az_count
            );
        }
        Network::Existing(e) => println!(
            "network        existing VPC {} (public {}, private {})",
            e.vpc_id,
            e.public_subnets.join(", "),
            e.private_subnets.join(", ")
        ),
    }
    let monitoring = match stack.observe.monitoring {
        Monitoring::Basic => "basic (CPU and memory alarms)",
        Monitoring::Advanced => "advanced (every alarm and a dashboard)",
    };
    println!(
        "monitoring     {monitoring}, logs kept {} days",
        stack.observe.log_retention_days
    );
    let tags: Vec<String> = stack.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !tags.is_empty() {
        println!("tags           {}", tags.join(", "));
    }
}

fn print_outputs(report: &DeployReport) {
    let o = &report.outputs;
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_string();
    println!("\nOutputs:");
    println!("  url              {}", or_dash(o.service.url.as_deref()));
    println!(
        "  vpc              {} ({})",
        o.network.vpc_id,
        o.network.availability_zones.join(", ")
    );
    println!(
        "  private subnets  {}",
        o.network.private_subnets.join(", ")
    );
    println!(
        "  repository       {}",
        or_dash(o.service.repository_uri.as_deref())
    );
    println!("  cluster          {}", o.service.cluster_arn);
    println!("  service          {}", o.service.service_arn);
    println!("  task definition  {}", o.service.task_definition_arn);
    println!("  log group        {}", o.log_group);
    println!("  alarms           {}", o.alarms.join(", "));
    println!("  dashboard        {}", or_dash(o.dashboard_url.as_deref()));
    println!(
        "  autoscaling      {}",
        or_dash(o.scaling_resource_id.as_deref())
    );
    if let Some(rollout) = &report.rollout {
        println!(
            "  rollout          {} running after {:.1}s",
            rollout.running,
            rollout.waited.as_secs_f64()
        );
    }
    let s = report.changes.summary();
    println!(
        "\n{} created, {} changed, {} deleted in {:.1}s.",
        s.create,
        s.update + s.replace,
        s.delete,
        report.duration.as_secs_f64()
    );
}

fn heading(title: &str) {
    println!("\n=== {title} ===");
}
