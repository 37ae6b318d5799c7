//! A platform of your own on the layer crates, without the facade: a "worker platform" that runs
//! queue workers — Fargate services without a load balancer — in a network of their own, with
//! basic monitoring.
//!
//! It composes `ecs-net` (`NetworkLayer`), `ecs-service` (`ServiceLayer`) and `ecs-observe`
//! (`ObserveLayer`) over one `ecs_core::Context`, passing each layer's typed outputs to the next,
//! printing each layer's plan; then destroys in the reverse order (observability, service,
//! network). It runs against the local AWS emulator, so nothing is created in a real AWS
//! account (there, build the layers with `NetworkLayer::new(&config)` and so on, from
//! `aws_config::load_defaults(BehaviorVersion::latest()).await`).
//!
//! Run it with `cargo run -p ecs-examples --bin custom-platform`. It needs Python 3: the first
//! run installs the emulator (moto) into `.ecs-emulator/` at the project root.

// A command-line example: it prints, and it stamps events with the real wall clock
// (the library itself takes time from `ecs_core::Clock` so that tests can control it).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ecs_core::testing::Emulator;
use ecs_core::{Context, Event, StackName, Tags};
use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkSpec};
use ecs_observe::{Monitoring, ObserveLayer, ObserveSpec, ObserveTarget};
use ecs_service::{
    ContainerSpec, ServiceLayer, ServiceNames, ServiceSettings, ServiceSpec, TaskSpec,
};

type BoxError = Box<dyn std::error::Error>;

/// The port the workers expose for health and metrics. Without a load balancer nothing reaches
/// it from outside: `ecs-net` still makes the load balancer's security group, unused here, and
/// the tasks' group admits this port from it only.
const WORKER_PORT: u16 = 9090;

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
    println!("A worker platform on ecs-net, ecs-service and ecs-observe (no facade)");
    println!("(against a local AWS emulator; nothing is created in a real AWS account)\n");

    println!("Starting the local AWS emulator (the first run installs it)…");
    let emulator = tokio::task::spawn_blocking(Emulator::shared).await??;
    let config = emulator.sdk_config().await;

    // One context for every layer: the stack whose resources they manage (found by its
    // `ecs:stack` tag), the platform's tags, and where progress events go.
    let start = Instant::now();
    let ctx = Context::builder()
        .stack(StackName::new("worker")?)
        .tags(Tags::new().with("platform", "workers"))
        .events(move |event: Event| {
            let t = start.elapsed().as_secs_f64();
            println!("  [{t:6.1}s] {event}");
        })
        .build();
    let network = NetworkLayer::new(&config);
    let service = ServiceLayer::new(&config);
    let observe = ObserveLayer::new(&config);

    let spec = worker_spec();
    let names = ServiceNames::new(ctx.stack(), &spec);
    let monitoring = ObserveSpec::builder()
        .monitoring(Monitoring::Basic)
        .log_retention_days(14)
        .build();

    heading("1. Network (ecs-net): a VPC over two zones, private subnets with one NAT gateway");
    let net_plan = network.plan(&ctx, &network_spec()).await?;
    println!("{net_plan}\n");
    let net = network.apply(&ctx, &net_plan).await?;
    // The workers pull their image through the NAT gateway: wait until it carries traffic.
    network
        .wait_ready(&ctx, &net, Duration::from_secs(600))
        .await?;

    heading("2. Workers (ecs-service): a Fargate service without a load balancer");
    // The log group must exist before the tasks start logging into it.
    observe
        .ensure_log_group(&ctx, &monitoring, &names.log_group)
        .await?;
    let svc_plan = service.plan(&ctx, &spec, &net).await?;
    println!("{svc_plan}\n");
    let outputs = service.apply(&ctx, &svc_plan).await?;
    println!(
        "\n  {} runs {} in {}",
        outputs.service_arn,
        outputs.task_definition_arn,
        net.private_subnets.join(", ")
    );

    heading("3. Monitoring (ecs-observe): CPU and memory alarms on the workers");
    // The alarms' dimensions come from what the service layer deployed, never typed by hand.
    let target = ObserveTarget::from_outputs(&outputs);
    let obs_plan = observe.plan(&ctx, &monitoring, &target).await?;
    println!("{obs_plan}\n");
    let watched = observe.apply(&ctx, &obs_plan).await?;
    println!("\n  alarms: {}", watched.alarms.join(", "));

    heading("4. Destroy: monitoring, then the workers, then the network");
    let (alarms, _kept) = observe.destroy(&ctx, &names.log_group, true).await?;
    let workers = service.destroy(&ctx, &spec, false).await?;
    let net_deleted = network.destroy(&ctx).await?;
    if !network.inventory(&ctx).await?.is_empty() {
        return Err("destroy left network resources behind".into());
    }
    println!(
        "\nDeleted {} monitoring, {} service and {} network resources. Done in {:.1}s.",
        alarms.summary().delete,
        workers.deleted.summary().delete,
        net_deleted.summary().delete,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The platform's network: managed, two zones, one NAT gateway for the workers' egress.
fn network_spec() -> NetworkSpec {
    NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder().nat(NatStrategy::Single).build(),
        ))
        .container_port(WORKER_PORT)
        .listener_ports(vec![80])
        .build()
}

/// A queue worker: two tasks polling a queue, no load balancer, no ECR repository of its own
/// (it runs a public image).
fn worker_spec() -> ServiceSpec {
    let worker = ContainerSpec::builder()
        .name("worker")
        .image("public.ecr.aws/docker/library/busybox:1.36")
        .command(vec![
            "sh".to_string(),
            "-c".to_string(),
            "while true; do echo \"polling $QUEUE\"; sleep 20; done".to_string(),
        ])
        .environment([("QUEUE", "jobs")].into_iter().collect())
        .build();
    ServiceSpec::builder()
        .name("worker")
        .repository(None)
        .task(TaskSpec::builder().containers(vec![worker]).build())
        .service(ServiceSettings::builder().desired_count(2).build())
        .build()
}

fn heading(title: &str) {
    println!("\n=== {title} ===");
}
