//! Takes the lease of stack `e2e-killed` in the emulator at `$1` (an endpoint URL) with a
//! 3-second time to live, prints `HELD`, and waits to be killed (or for its standard input to
//! close): the holder that `tests/lease.rs` kills with SIGKILL.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use ecs_core::lease::{self, Holder, LeaseOptions, LeaseScope};
use ecs_core::StackName;
use ecs_facade::SsmLeaseStore;

#[tokio::main]
async fn main() {
    let endpoint = std::env::args()
        .nth(1)
        .expect("usage: lease-holder ENDPOINT");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "holder",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    let ctx = ecs_core::Context::builder()
        .stack(StackName::new("e2e-killed").expect("a valid name"))
        .run_id("doomed-run")
        .build();
    let store = Arc::new(SsmLeaseStore::new(aws_sdk_ssm::Client::new(&config)));
    let _held = lease::acquire(
        &ctx,
        store,
        &LeaseScope::stack(ctx.stack()),
        Holder::this_process(&ctx, "deploy", Duration::from_secs(3)),
        &LeaseOptions::default(),
    )
    .await
    .expect("the lease is free");
    println!("HELD");
    // Held until killed; or until the test that started it is gone (standard input closes).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
