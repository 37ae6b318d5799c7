//! The stack demo: deploys a network (`ecs-net`) and a load-balanced Fargate service on it
//! (`ecs-service`) against the local AWS emulator, redeploys it unchanged (no changes), rolls
//! out a new image, and destroys everything, printing every plan and progress event.
//!
//! Run it with `cargo run -p ecs-examples --bin stack-demo`. It needs Python 3: the first run
//! installs the emulator (moto) into `.ecs-emulator/` at the project root.

// A command-line example: it prints, and it stamps events with the real wall clock
// (the library itself takes time from `ecs_core::Clock` so that tests can control it).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use ecs_core::testing::Emulator;
use ecs_core::{Context, Event, StackName, Tags};
use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkSpec};
use ecs_service::{
    ContainerSpec, LoadBalancerSpec, ServiceLayer, ServiceOutputs, ServiceSettings, ServiceSpec,
    TaskSpec,
};

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
    println!("ecs-facade stack demo: network + load-balanced Fargate service");
    println!("deploy → redeploy (no changes) → new image → destroy");
    println!("(against a local AWS emulator; nothing is created in a real AWS account)\n");

    println!("Starting the local AWS emulator…");
    println!("(the first run installs moto into .ecs-emulator/: this may take a minute)");
    let emulator = tokio::task::spawn_blocking(Emulator::shared).await??;
    println!("Emulator listening on {}", emulator.endpoint_url());
    let config = emulator.sdk_config().await;

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
    let service = ServiceLayer::new(&config);

    heading("1. Network: plan and deploy");
    let (plan, net) = network.deploy(&ctx, &network_spec()?).await?;
    println!("{plan}");

    heading("2. Service: verify, plan and deploy (waits for the rollout)");
    let v1 = service_spec("public.ecr.aws/nginx/nginx-unprivileged:1.27");
    service.verify(&ctx, &v1).await?;
    let plan = service.plan(&ctx, &v1, &net).await?;
    println!("{plan}");
    let outputs = service.apply(&ctx, &plan).await?;
    print_outputs(&outputs);

    heading("3. Redeploy the unchanged stack");
    let net_plan = network.plan(&ctx, &network_spec()?).await?;
    let plan = service.plan(&ctx, &v1, &net).await?;
    println!("{net_plan}{plan}");
    if !net_plan.is_empty() || plan.changes().pending().next().is_some() {
        return Err("an unchanged stack should plan no changes".into());
    }
    service.apply(&ctx, &plan).await?;

    heading("4. Roll out a new image (one new revision, one UpdateService)");
    let v2 = service_spec("public.ecr.aws/nginx/nginx-unprivileged:1.28");
    let plan = service.plan(&ctx, &v2, &net).await?;
    println!("{plan}");
    let outputs = service.apply(&ctx, &plan).await?;
    println!("  now running {}", outputs.task_definition_arn);

    heading("5. Destroy");
    let report = service.destroy(&ctx, &v2, true).await?;
    println!("{}", report.deleted);
    let deleted = network.destroy(&ctx).await?;
    if !network.inventory(&ctx).await?.is_empty() {
        return Err("destroy left network resources behind".into());
    }
    println!(
        "\nDeleted {} service and {} network resources. Done in {:.1}s.",
        report.deleted.summary().delete,
        deleted.summary().delete,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn network_spec() -> Result<NetworkSpec, BoxError> {
    let vpc = ManagedVpc::builder()
        .cidr("10.0.0.0/16".parse()?)
        .az_count(2)
        .nat(NatStrategy::Single)
        .build();
    Ok(NetworkSpec::builder()
        .vpc(Network::Managed(vpc))
        .container_port(8080)
        .build())
}

fn service_spec(image: &str) -> ServiceSpec {
    ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .cpu(512)
                .memory(1024)
                .containers(vec![ContainerSpec::builder()
                    .name("web")
                    .image(image)
                    .ports(vec![8080])
                    .environment([("GREETING", "hello")].into_iter().collect())
                    .build()])
                .build(),
        )
        .load_balancer(LoadBalancerSpec::default())
        .service(ServiceSettings::builder().desired_count(2).build())
        .build()
}

fn heading(title: &str) {
    println!("\n=== {title} ===");
}

fn print_outputs(o: &ServiceOutputs) {
    println!("\nOutputs:");
    println!("  url              {}", o.url.as_deref().unwrap_or("-"));
    println!(
        "  repository       {}",
        o.repository_uri.as_deref().unwrap_or("-")
    );
    println!("  cluster          {}", o.cluster_arn);
    println!("  service          {}", o.service_arn);
    println!("  task definition  {}", o.task_definition_arn);
    println!("  log group        {}", o.names.log_group);
}
