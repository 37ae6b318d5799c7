//! `ecs-bench`: how close a deploy comes to its physical limit.
//!
//! Runs the `prod` stack (HTTP only) against the local emulator through a simulation layer
//! ([`Chaos`]): every call takes a fixed latency, and NAT gateways, the load balancer and
//! each service deployment take a provisioning time on a clock that runs `--scale` times
//! faster than real time (so does the deployer's own clock: its pollers and retries). For
//! create, a no-op redeploy, an image rollout and destroy it reports the wall time, the
//! calls, the mutating calls, the longest chain of dependent calls, the most calls (and
//! mutating calls) in flight at once, the critical-path lower bound computed from the
//! recorded dependency graph, and wall / bound; and, in the same run, the wall time of a
//! sequential execution of the same code, one call at a time with every provisioning waited
//! out in full. It also times the no-op with no latency added: the emulator's own share.
//!
//! ```text
//! cargo run -p ecs-examples --bin ecs-bench -- [--latency-ms 50] [--scale 100] [--json] [--trace]
//! ```
//!
//! The dependency graph. A call depends on the call that first returned, in the same
//! scenario, an identifier its request carries (data flow), and every mutating call of a service depends on that
//! service's planning reads (the reads that ended before its first mutating call: nothing is
//! changed before it is read). A poll that saw a resource ready depends on its creation plus
//! the provisioning time; a deployment is ready its rollout time after `CreateService` /
//! `UpdateService` and never before the load balancer is. One dependency is a design
//! decision rather than data flow: `CreateService` waits for the NAT gateways, because the
//! tasks pull their images through them. One is AWS's: a public NAT gateway is created only
//! once the internet gateway is attached to its VPC (the request does not name it). Polls that saw a resource not yet ready and
//! throttled calls are not part of the bound. The bound is the longest path through this
//! graph, each call weighing its measured duration.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use clap::Parser;
use ecs_core::testing::{Chaos, Provisioning, Readiness, ScaledClock, TracedCall};
use ecs_core::EventLog;
use ecs_facade::testing::{emulator_layers_with, Emulator, Harness};
use ecs_facade::{Deployer, DestroyOptions, Stack};
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(about = "Benchmark deploys against the emulator with simulated latency and provisioning")]
struct Args {
    /// Latency added to every call, in real milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// How much faster than real time the simulated clock runs.
    #[arg(long, default_value_t = 100.0)]
    scale: f64,
    /// NAT gateway provisioning, in simulated seconds.
    #[arg(long, default_value_t = 90)]
    nat_s: u64,
    /// Load balancer provisioning, in simulated seconds.
    #[arg(long, default_value_t = 180)]
    alb_s: u64,
    /// Service rollout, in simulated seconds.
    #[arg(long, default_value_t = 120)]
    rollout_s: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also print every call of each concurrent scenario (start, end, operation,
    /// provisioning), to stderr.
    #[arg(long)]
    trace: bool,
}

/// What one scenario measured.
#[derive(Debug, Serialize)]
struct Measured {
    scenario: String,
    wall_ms: u64,
    calls: usize,
    mutating: usize,
    mutating_operations: Vec<String>,
    longest_chain: usize,
    max_in_flight: usize,
    max_mutating_in_flight: usize,
    bound_ms: u64,
    wall_over_bound: f64,
    sequential_wall_ms: Option<u64>,
}

/// The critical-path bound and the longest chain of dependent calls of a trace.
fn critical_path(trace: &[TracedCall], p: &Provisioning) -> (Duration, usize) {
    let calls: Vec<&TracedCall> = trace
        .iter()
        .filter(|c| !c.throttled && c.readiness != Readiness::NotReady)
        .collect();
    // Who produced each identifier first.
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, c) in calls.iter().enumerate() {
        for id in &c.produced {
            producer.entry(id.as_str()).or_insert(i);
        }
    }
    // The planning reads of each service: reads that ended before its first mutating call.
    let mut first_mutation: HashMap<&str, Duration> = HashMap::new();
    for c in &calls {
        if c.is_mutating() {
            let e = first_mutation.entry(c.service.as_str()).or_insert(c.start);
            *e = (*e).min(c.start);
        }
    }
    // Calls in order of start: every dependency started (and ended) earlier.
    let mut order: Vec<usize> = (0..calls.len()).collect();
    order.sort_by_key(|&i| calls[i].start);
    let mut finish: Vec<Duration> = vec![Duration::ZERO; calls.len()];
    let mut chain: Vec<usize> = vec![0; calls.len()];
    let mut ready_model: HashMap<String, Duration> = HashMap::new();
    let mut lb_ready = Duration::ZERO;
    let mut nat_ready = Duration::ZERO;
    let mut igw_attached = Duration::ZERO;
    for &i in &order {
        let c = calls[i];
        let mut earliest = Duration::ZERO;
        let mut links = 0;
        let dep = |j: usize, at: Duration, earliest: &mut Duration, links: &mut usize| {
            if at > *earliest {
                *earliest = at;
            }
            *links = (*links).max(chain[j]);
        };
        for id in &c.consumed {
            if let Some(&j) = producer.get(id.as_str()) {
                if j != i && calls[j].end <= c.start {
                    dep(j, finish[j], &mut earliest, &mut links);
                }
            }
        }
        if c.is_mutating() {
            let before = first_mutation.get(c.service.as_str()).copied();
            for &j in &order {
                let r = calls[j];
                if r.service == c.service
                    && !r.is_mutating()
                    && before.is_some_and(|b| r.end <= b)
                    && r.end <= c.start
                {
                    dep(j, finish[j], &mut earliest, &mut links);
                }
            }
        }
        if c.operation == "CreateService" {
            earliest = earliest.max(nat_ready);
        }
        if c.operation == "CreateNatGateway" {
            earliest = earliest.max(igw_attached);
        }
        if let Readiness::Ready(ids) = &c.readiness {
            for id in ids {
                if let Some(at) = ready_model.get(id) {
                    earliest = earliest.max(*at);
                }
            }
        }
        let duration = c.end.saturating_sub(c.start);
        finish[i] = earliest + duration;
        chain[i] = links + 1;
        if let Readiness::Started(ids) = &c.readiness {
            for id in ids {
                let at = match c.operation.as_str() {
                    "CreateNatGateway" => finish[i] + p.nat_gateway,
                    "CreateLoadBalancer" => finish[i] + p.load_balancer,
                    _ => (finish[i] + p.rollout).max(lb_ready),
                };
                if c.operation == "CreateLoadBalancer" {
                    lb_ready = lb_ready.max(at);
                }
                ready_model.insert(id.clone(), at);
            }
        }
        if c.operation == "AttachInternetGateway" {
            igw_attached = igw_attached.max(finish[i]);
        }
        if c.operation == "DescribeNatGateways" {
            if let Readiness::Ready(_) = c.readiness {
                nat_ready = nat_ready.max(finish[i]);
            }
        }
    }
    (
        finish.iter().copied().max().unwrap_or_default(),
        chain.iter().copied().max().unwrap_or_default(),
    )
}

/// Environment `name` (prod, HTTP only) with `n` web services on `/s<i>/*`, each with
/// autoscaling and alarms.
fn environment(name: &str, n: usize) -> ecs_facade::Deployment {
    let mut yaml = format!("name: {name}\nprofile: prod\nservices:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  s{i}:\n    image: nginx:1.27\n    port: 8080\n    path: /s{i}/*\n    alarms:\n      actions: [arn:aws:sns:us-east-1:123456789012:ops]\n"
        ));
    }
    ecs_facade::Deployment::from_manifest(&yaml)
        .unwrap_or_else(|e| panic!("the benchmark's environment: {e}"))
}

fn stack(name: &str, image: &str) -> Stack {
    Stack::from_manifest(&format!(
        "name: {name}\nprofile: prod\nimage: {image}\nport: 8080\nalarms:\n  actions: [arn:aws:sns:us-east-1:123456789012:ops]\n"
    ))
    .unwrap_or_else(|e| panic!("the benchmark's manifest: {e}"))
}

#[allow(clippy::disallowed_methods)] // wall time is what a benchmark measures
async fn measure<F, T>(
    chaos: &Chaos,
    p: &Provisioning,
    scale: f64,
    name: &str,
    f: F,
    trace: bool,
) -> Measured
where
    F: std::future::Future<Output = Result<T, ecs_facade::Error>>,
{
    chaos.start_trace();
    let started = Instant::now();
    if let Err(e) = f.await {
        panic!("{name} failed: {e}");
    }
    let wall = started.elapsed();
    if trace {
        print_trace(name, &chaos.trace());
    }
    let trace = chaos.trace();
    // The model's provisioning times in real time.
    let real = Provisioning {
        nat_gateway: p.nat_gateway.div_f64(scale),
        load_balancer: p.load_balancer.div_f64(scale),
        rollout: p.rollout.div_f64(scale),
    };
    let (bound, longest_chain) = critical_path(&trace, &real);
    let max_in_flight = TracedCall::most_in_flight(&trace, |_| true);
    let max_mutating_in_flight = TracedCall::most_in_flight(&trace, TracedCall::is_mutating);
    let calls: Vec<&TracedCall> = trace.iter().filter(|c| !c.throttled).collect();
    let mutating: Vec<String> = calls
        .iter()
        .filter(|c| c.is_mutating())
        .map(|c| c.operation.clone())
        .collect();
    Measured {
        scenario: name.to_string(),
        wall_ms: wall.as_millis() as u64,
        calls: calls.len(),
        mutating: mutating.len(),
        mutating_operations: if mutating.len() <= 4 {
            mutating.clone()
        } else {
            Vec::new()
        },
        longest_chain,
        max_in_flight,
        max_mutating_in_flight,
        bound_ms: bound.as_millis() as u64,
        wall_over_bound: wall.as_secs_f64() / bound.as_secs_f64().max(1e-9),
        sequential_wall_ms: None,
    }
}

#[allow(clippy::print_stdout)] // a benchmark reports on stdout
#[tokio::main]
async fn main() {
    let args = Args::parse();
    let emulator = tokio::task::spawn_blocking(Emulator::shared)
        .await
        .expect("the emulator task")
        .unwrap_or_else(|e| panic!("{e}"));
    let chaos = Chaos::new(1);
    chaos.set_latency(Duration::from_millis(args.latency_ms));
    let p = Provisioning {
        nat_gateway: Duration::from_secs(args.nat_s),
        load_balancer: Duration::from_secs(args.alb_s),
        rollout: Duration::from_secs(args.rollout_s),
    };
    let clock = ScaledClock::new(args.scale);
    chaos.set_provisioning(Provisioning {
        nat_gateway: clock.real(p.nat_gateway),
        load_balancer: clock.real(p.load_balancer),
        rollout: clock.real(p.rollout),
    });
    let harness = Harness {
        chaos: Some(chaos.clone()),
        ..Harness::default()
    };
    // The topic the stacks' alarms notify exists (the pre-flight looks for it).
    aws_sdk_sns::Client::new(&emulator.sdk_config().await)
        .create_topic()
        .name("ops")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deployer = Deployer::from_layers(emulator_layers_with(emulator, &harness).await)
        .events(EventLog::new())
        .clock(clock)
        // The scaled clock runs this run's time faster than the lease store's (the emulator's
        // real time): a long time to live keeps the lease's renewals out of what is measured.
        .lease(
            ecs_core::lease::LeaseOptions::builder()
                .ttl(Duration::from_secs(86_400))
                .build(),
        );
    let all = DestroyOptions::everything();
    // Warm-up: the emulator builds each region's backends on first use (seconds of CPU),
    // which is not what is measured.
    let warm = stack("bench-warm", "nginx:1.27");
    deployer
        .deploy(&warm)
        .await
        .unwrap_or_else(|e| panic!("warm-up deploy: {e}"));
    deployer
        .destroy(&warm, all)
        .await
        .unwrap_or_else(|e| panic!("warm-up destroy: {e}"));

    let v1 = stack("bench", "nginx:1.27");
    let v2 = stack("bench", "nginx:1.28");
    let (c, sc, t) = (&chaos, args.scale, args.trace);
    let mut results = vec![
        measure(c, &p, sc, "create", deployer.deploy(&v1), t).await,
        measure(c, &p, sc, "no-op redeploy", deployer.deploy(&v1), t).await,
        measure(c, &p, sc, "image rollout", deployer.deploy(&v2), t).await,
    ];
    // The emulator's own time: the same no-op without the added latency. Its calls are
    // processed one at a time (a Python server), so concurrent calls take longer than the
    // latency alone.
    chaos.set_latency(Duration::ZERO);
    let no_latency = measure(c, &p, sc, "no-op, 0 ms", deployer.deploy(&v2), false).await;
    chaos.set_latency(Duration::from_millis(args.latency_ms));
    results.push(measure(c, &p, sc, "destroy", deployer.destroy(&v2, all), t).await);

    // Ten web services deployed at once into an existing environment (made and destroyed
    // outside what is measured).
    let env = environment("bench-env", 10);
    let root = match &env.root {
        Some(ecs_facade::Root::Environment(e)) => (**e).clone(),
        _ => unreachable!("an environment's manifest"),
    };
    deployer
        .deploy_environment(&root)
        .await
        .unwrap_or_else(|e| panic!("the environment: {e}"));
    let ten = |d: &'static Deployer, services: Vec<Stack>| async move {
        futures_util::future::try_join_all(services.iter().map(|s| d.deploy(s))).await
    };
    let deployer: &'static Deployer = Box::leak(Box::new(deployer));
    results.push(
        measure(
            c,
            &p,
            sc,
            "10 services",
            ten(deployer, env.services.clone()),
            t,
        )
        .await,
    );
    deployer
        .destroy_all(&env, all)
        .await
        .unwrap_or_else(|e| panic!("destroying the environment: {e}"));

    // The same code, one call at a time, every provisioning waited out in full.
    chaos.set_one_step_at_a_time(true);
    let s1 = stack("bench-seq", "nginx:1.27");
    let s2 = stack("bench-seq", "nginx:1.28");
    let seq_env = environment("bench-seq-env", 10);
    let Some(ecs_facade::Root::Environment(seq_root)) = &seq_env.root else {
        unreachable!("an environment's manifest")
    };
    let sequential = [
        measure(c, &p, sc, "create", deployer.deploy(&s1), false).await,
        measure(c, &p, sc, "no-op", deployer.deploy(&s1), false).await,
        measure(c, &p, sc, "rollout", deployer.deploy(&s2), false).await,
        measure(c, &p, sc, "destroy", deployer.destroy(&s2, all), false).await,
        {
            chaos.set_one_step_at_a_time(false);
            deployer
                .deploy_environment(seq_root)
                .await
                .unwrap_or_else(|e| panic!("the environment: {e}"));
            chaos.set_one_step_at_a_time(true);
            // One service after the other (in one step at a time, calls of several would
            // queue past the SDK's stalled-stream timeout).
            let in_turn = async {
                for s in &seq_env.services {
                    deployer.deploy(s).await?;
                }
                Ok::<_, ecs_facade::Error>(())
            };
            let m = measure(c, &p, sc, "10 services", in_turn, false).await;
            chaos.set_one_step_at_a_time(false);
            deployer
                .destroy_all(&seq_env, all)
                .await
                .unwrap_or_else(|e| panic!("destroying the environment: {e}"));
            m
        },
    ];
    chaos.set_one_step_at_a_time(false);
    for (r, s) in results.iter_mut().zip(sequential) {
        r.sequential_wall_ms = Some(s.wall_ms);
    }
    let peak_rss_kib = peak_rss_kib();

    if args.json {
        let report = serde_json::json!({
            "latency_ms": args.latency_ms,
            "scale": args.scale,
            "provisioning_simulated_s": {"nat_gateway": args.nat_s, "load_balancer": args.alb_s, "rollout": args.rollout_s},
            "scenarios": results,
            "no_op_without_added_latency_ms": no_latency.wall_ms,
            "peak_rss_kib": peak_rss_kib,
        });
        println!("{report:#}");
        return;
    }
    println!(
        "prod stack, {} ms a call, NAT {} s / ALB {} s / rollout {} s simulated at {}× ({:.2} / {:.2} / {:.2} s real)\n",
        args.latency_ms,
        args.nat_s,
        args.alb_s,
        args.rollout_s,
        args.scale,
        clock.real(p.nat_gateway).as_secs_f64(),
        clock.real(p.load_balancer).as_secs_f64(),
        clock.real(p.rollout).as_secs_f64(),
    );
    println!(
        "{:<15} {:>8} {:>6} {:>9} {:>6} {:>10} {:>8} {:>11} {:>11} {:>9}",
        "scenario",
        "wall ms",
        "calls",
        "mutating",
        "chain",
        "in flight",
        "bound ms",
        "wall/bound",
        "sequential",
        "speed-up"
    );
    for r in &results {
        let seq = r.sequential_wall_ms.unwrap_or_default();
        // Destroy's order is AWS's (a subnet goes only after its ENIs), not data flow: its
        // traced graph gives no bound worth the name; its concurrency is what it shows.
        let (bound, ratio) = if r.scenario == "destroy" {
            ("—".to_string(), "—".to_string())
        } else {
            (r.bound_ms.to_string(), format!("{:.2}", r.wall_over_bound))
        };
        println!(
            "{:<15} {:>8} {:>6} {:>9} {:>6} {:>10} {:>8} {:>11} {:>11} {:>8.1}×",
            r.scenario,
            r.wall_ms,
            r.calls,
            r.mutating,
            r.longest_chain,
            format!("{}/{}", r.max_in_flight, r.max_mutating_in_flight),
            bound,
            ratio,
            seq,
            seq as f64 / r.wall_ms.max(1) as f64,
        );
    }
    println!("(in flight: most calls at once / most mutating calls at once)");
    println!(
        "\nno-op redeploy without the added latency: {} ms ({} calls): the emulator's own processing",
        no_latency.wall_ms, no_latency.calls
    );
    let by_op: BTreeMap<&str, usize> = results
        .iter()
        .filter(|r| r.scenario == "image rollout")
        .flat_map(|r| r.mutating_operations.iter().map(String::as_str))
        .fold(BTreeMap::new(), |mut m, op| {
            *m.entry(op).or_default() += 1;
            m
        });
    println!("\nimage rollout mutating calls: {by_op:?}");
    println!(
        "peak memory (RSS) of this process: {} MiB",
        peak_rss_kib / 1024
    );
}

/// The peak resident set of this process (`VmHWM`), in KiB; 0 where `/proc` has none.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[allow(clippy::print_stderr)] // the --trace output
fn print_trace(scenario: &str, trace: &[TracedCall]) {
    eprintln!("--- {scenario}");
    let mut calls: Vec<&TracedCall> = trace.iter().collect();
    calls.sort_by_key(|c| c.start);
    for c in calls {
        eprintln!(
            "{:>6} {:>6}  {:<22} {:<32} {:?}{}",
            c.start.as_millis(),
            c.end.as_millis(),
            c.service,
            c.operation,
            c.readiness,
            if c.throttled { " throttled" } else { "" }
        );
    }
}
