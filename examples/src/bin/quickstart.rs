//! Quickstart: a load-balanced Fargate service described with typed builders, priced, planned,
//! deployed and destroyed with `ecs-facade`.
//!
//! It runs against the local AWS emulator, so nothing is created in a real AWS account. Against
//! real AWS, build the deployer from your usual credentials and region instead:
//! `Deployer::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)` (the same as
//! `aws_config::load_from_env()`, which is deprecated unless aws-config's
//! `behavior-version-latest` feature is on).
//!
//! Run it with `cargo run -p ecs-examples --bin quickstart`. It needs Python 3: the first run
//! installs the emulator (moto) into `.ecs-emulator/` at the project root.

// A command-line example: it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use ecs_facade::prelude::*;
use ecs_facade::testing::{emulator_layers, CallCounter, Emulator};

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
    // 1. The stack: one container behind a load balancer, autoscaled between 1 and 4 tasks on
    //    CPU and memory, with logs, alarms and a dashboard. Everything else (the VPC over two
    //    zones, NAT, security groups, ECR, IAM roles, cluster…) follows from it.
    let web = ContainerSpec::builder()
        .name("web")
        // nginx, running as a non-root user, listening on 8080.
        .image("nginxinc/nginx-unprivileged:1.27")
        .ports(vec![8080])
        .build();
    let service = ServiceSpec::builder()
        .task(TaskSpec::builder().containers(vec![web]).build())
        .load_balancer(LoadBalancerSpec::default())
        .build();
    let stack = Stack::builder()
        .name("quickstart")
        .service(service)
        .scaling(ScalingSpec::cpu_and_memory(1, 4))
        .observe(ObserveSpec::default())
        .build();

    // 2. What it costs, before anything exists.
    println!("{}", ecs_facade::estimate_cost(&stack, "us-east-1"));

    // 3. The deployer. Against real AWS, from your usual credentials and region:
    //        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    //        let deployer = Deployer::new(&config);
    //    Here, against the local emulator (starting it blocks, so keep it off the runtime).
    println!("Starting the local AWS emulator (the first run installs it)…");
    let emulator = tokio::task::spawn_blocking(Emulator::shared).await??;
    let deployer = Deployer::from_layers(emulator_layers(emulator, &CallCounter::new()).await)
        .events(|event: Event| println!("  {event}"));

    // 4. Plan, then deploy (which waits for the rollout).
    println!("\n=== Plan ===");
    println!("{}", deployer.plan(&stack).await?);
    println!("\n=== Deploy ===");
    let report = deployer.deploy(&stack).await?;
    let url = report.outputs.service.url.as_deref().unwrap_or("-");
    println!("\nServing on {url}");

    // 5. Destroy everything the stack owns (here also the images and the logs).
    println!("\n=== Destroy ===");
    let options = DestroyOptions::everything();
    let destroyed = deployer.destroy(&stack, options).await?;
    println!(
        "\nDeleted {} resources.",
        destroyed.deleted.summary().delete
    );
    Ok(())
}
