//! Failures that trying again cannot fix stop at once, with one plain sentence: no region, no
//! credentials, an endpoint that refuses connections. Real SDK clients, no network: the
//! refused endpoint is a port on 127.0.0.1 that nothing listens on. And a refusal (4xx) whose
//! body the SDK cannot decode: asking again gets the same refusal.

use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::sdk_config::{RetryConfig, SdkConfig};
use ecs_core::{AwsErrorKind, Context, Event, EventLog, FakeClock, StackName};

/// Calls `DescribeVpcs` through `Context::call` with `config`; returns the error's kind and
/// message, and checks that it was not retried (no `Retrying` event, no sleep).
async fn fail_once(config: SdkConfig) -> (AwsErrorKind, String) {
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    once(|ctx| async move {
        ctx.call("DescribeVpcs", "stack web", || ec2.describe_vpcs().send())
            .await
    })
    .await
}

/// Runs `call` through a context on the fake clock; checks that its error was not retried
/// (no `Retrying` event, no sleep, not transient) and returns its kind and message.
async fn once<F, Fut, T>(call: F) -> (AwsErrorKind, String)
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::Future<Output = Result<T, ecs_core::AwsError>>,
    T: std::fmt::Debug,
{
    let (clock, events) = (FakeClock::new(), EventLog::new());
    let ctx = Context::builder()
        .stack(StackName::new("web").unwrap())
        .clock(clock.clone())
        .events(events.clone())
        .build();
    let err = call(ctx).await.unwrap_err();
    let retried = events
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    assert_eq!(retried, 0, "{err}");
    assert!(clock.sleeps().is_empty(), "{:?}", clock.sleeps());
    assert!(!err.is_transient(), "{err}");
    (err.kind(), err.message().to_string())
}

fn base() -> aws_types::sdk_config::Builder {
    SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest())
}

fn credentials() -> aws_credential_types::provider::SharedCredentialsProvider {
    aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
        "AKIDTESTING",
        "secret",
        None,
        None,
        "test",
    ))
}

#[tokio::test]
async fn a_missing_region_is_said_plainly_and_not_retried() {
    let config = base().credentials_provider(credentials()).build();
    let (kind, message) = fail_once(config).await;
    assert_eq!(kind, AwsErrorKind::Other);
    assert_eq!(
        message,
        "no AWS region is configured: set AWS_REGION (or `region` in the AWS config file)"
    );
}

#[tokio::test]
async fn missing_credentials_are_said_plainly_and_not_retried() {
    let config = base().region(Region::new("us-east-1")).build();
    let (kind, message) = fail_once(config).await;
    assert_eq!(kind, AwsErrorKind::Other);
    assert!(
        message.starts_with("no AWS credentials were found: set AWS_ACCESS_KEY_ID"),
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_said_plainly_and_not_retried() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = base()
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let (kind, message) = fail_once(config).await;
    assert_eq!(kind, AwsErrorKind::Other);
    assert!(
        message.starts_with("the endpoint refused the connection"),
        "{message}"
    );
}

#[tokio::test]
async fn a_refusal_the_sdk_cannot_decode_is_not_retried() {
    // A server on 127.0.0.1 that refuses every request with a body a JSON-protocol client
    // cannot decode (an XML page, as some proxies and emulators answer), then stops.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 65536];
        let _ = stream.read(&mut request).unwrap();
        let body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>";
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).unwrap();
    });
    let config = base()
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let (kind, _) = once(|ctx| async move {
        ctx.call("ListClusters", "stack web", || ecs.list_clusters().send())
            .await
    })
    .await;
    server.join().unwrap();
    assert_eq!(kind, AwsErrorKind::Other);
}
