//! The network demo: plans, deploys, redeploys, changes and destroys an `ecs-net` network
//! against the local AWS emulator, printing every plan and every progress event.
//!
//! Run it with `cargo run -p ecs-examples --bin network-demo`. It needs Python 3: the first run
//! installs the emulator (moto) into `.ecs-emulator/` at the project root.

// A command-line example: it prints, and it stamps events with the real wall clock
// (the library itself takes time from `ecs_core::Clock` so that tests can control it).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ecs_core::testing::Emulator;
use ecs_core::{Context, Event, StackName, Tags};
use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkOutputs, NetworkSpec};

type BoxError = Box<dyn Error>;

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
    println!("ecs-facade network demo: plan → deploy → redeploy → change → destroy");
    println!("(against a local AWS emulator; nothing is created in a real AWS account)\n");

    // The emulator. Installing and starting it blocks, so keep it off the async runtime.
    println!("Starting the local AWS emulator…");
    println!("(the first run installs moto into .ecs-emulator/: this may take a minute)");
    let emulator = tokio::task::spawn_blocking(Emulator::shared).await??;
    println!(
        "Emulator listening on {} (log: {})",
        emulator.endpoint_url(),
        emulator.log_path().display()
    );
    let config = emulator.sdk_config().await;

    // The context: which stack, its tags, and where progress events go.
    let start = Instant::now();
    let ctx = Context::builder()
        .stack(StackName::new("demo").map_err(|p| p.to_string())?)
        .tags(Tags::new().with("project", "ecs-facade-demo"))
        .events(move |event: Event| {
            let t = start.elapsed().as_secs_f64();
            println!("  [{t:6.1}s] {event}");
        })
        .build();
    let network = NetworkLayer::new(&config);

    // Step 1: plan a fresh network. Nothing exists yet, so everything is "+ create".
    heading("1. Plan (single NAT gateway)");
    let plan = network.plan(&ctx, &spec(NatStrategy::Single)?).await?;
    println!("{plan}");

    // Step 2: carry out exactly that plan, then wait for the NAT gateway to be available.
    heading("2. Apply");
    let outputs = network.apply(&ctx, &plan).await?;
    network
        .wait_ready(&ctx, &outputs, Duration::from_secs(600))
        .await?;
    print_outputs(&outputs);

    // Step 3: plan again with the same spec. The reconcile model must find nothing to do.
    heading("3. Plan again (unchanged spec)");
    let plan = network.plan(&ctx, &spec(NatStrategy::Single)?).await?;
    println!("{plan}");
    if !plan.is_empty() {
        return Err("an unchanged specification should plan no changes".into());
    }

    // Step 4: one NAT gateway per zone. Expect a new address and NAT gateway in the second
    // zone, and that zone's private route table pointing at it.
    heading("4. Change to one NAT gateway per zone");
    let plan = network.plan(&ctx, &spec(NatStrategy::PerAz)?).await?;
    println!("{plan}");
    let outputs = network.apply(&ctx, &plan).await?;
    network
        .wait_ready(&ctx, &outputs, Duration::from_secs(600))
        .await?;
    print_outputs(&outputs);

    // Step 5: destroy everything that carries the stack's tag, then check nothing is left.
    heading("5. Destroy");
    let doomed = network.plan_destroy(&ctx).await?;
    println!("{doomed}");
    let deleted = network.destroy(&ctx).await?;
    let left = network.inventory(&ctx).await?;
    if !left.is_empty() {
        let left: Vec<String> = left
            .iter()
            .map(|r| format!("{} {}", r.kind, r.id))
            .collect();
        return Err(format!("destroy left resources behind: {}", left.join(", ")).into());
    }
    println!(
        "\nDeleted {} resources; the stack owns nothing any more. Done in {:.1}s.",
        deleted.summary().delete,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The demo's network: a managed 10.0.0.0/16 VPC over two zones, containers on port 8080.
fn spec(nat: NatStrategy) -> Result<NetworkSpec, BoxError> {
    let vpc = ManagedVpc::builder()
        .cidr("10.0.0.0/16".parse()?)
        .az_count(2)
        .nat(nat)
        .build();
    Ok(NetworkSpec::builder()
        .vpc(Network::Managed(vpc))
        .container_port(8080)
        .build())
}

fn heading(title: &str) {
    println!("\n=== {title} ===");
}

fn print_outputs(o: &NetworkOutputs) {
    println!("\nOutputs:");
    println!("  vpc              {} ({})", o.vpc_id, o.vpc_cidr);
    println!("  zones            {}", o.availability_zones.join(", "));
    println!("  public subnets   {}", o.public_subnets.join(", "));
    println!("  private subnets  {}", o.private_subnets.join(", "));
    println!("  security groups  alb {}, tasks {}", o.alb_sg, o.task_sg);
    println!("  nat gateways     {}", o.nat_gateways.join(", "));
}
