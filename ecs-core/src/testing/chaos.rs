//! A misbehaving network between the SDK and the service: an HTTP client that delays every
//! request and answers a share of them with a throttling error, without forwarding them.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use super::protocol::Protocol;
use super::simulation::{Provisioning, Simulation, TracedCall};

/// One request answered with a throttling error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// The SigV4 signing name of the service, e.g. `ec2` or `monitoring`.
    pub service: String,
    /// The operation, e.g. `CreateVpc` (empty when the request did not say).
    pub operation: String,
}

#[derive(Debug)]
struct State {
    rng: fastrand::Rng,
    throttle_rate: f64,
    latency: Duration,
    requests: usize,
    throttled: Vec<Throttled>,
    tracing: bool,
    sim: Simulation,
    /// Answer gates: the answers of these operations (every operation when empty) wait until
    /// the listed operations have been sent.
    answer_gates: Vec<(Vec<String>, Vec<String>)>,
}

/// An HTTP client for SDK clients in tests: every request waits `latency` first, and each
/// request is, with probability `throttle_rate`, answered with the service's own throttling
/// error (`RequestLimitExceeded`, `Throttling` or `ThrottlingException`, in its protocol)
/// without reaching the service, so a retry is free of side effects. The others go to the
/// real endpoint through the SDK's default HTTPS client. Decisions come from a seeded
/// generator; clones share their state, and the rate and latency can be changed at any time.
///
/// ```no_run
/// # async fn example(sdk_config: aws_types::SdkConfig) {
/// use std::time::Duration;
/// use ecs_core::testing::Chaos;
/// let chaos = Chaos::new(7);
/// chaos.set_throttle_rate(0.2);
/// chaos.set_latency(Duration::from_millis(20));
/// let ec2 = aws_sdk_ec2::Client::from_conf(
///     aws_sdk_ec2::config::Builder::from(&sdk_config).http_client(chaos.clone()).build(),
/// );
/// // ... use the client; then:
/// println!("{} of {} requests throttled", chaos.throttled().len(), chaos.requests());
/// # }
/// ```
///
/// For benchmarks it also simulates provisioning ([`set_provisioning`](Self::set_provisioning):
/// NAT gateways, load balancers and deployments become ready only after a set time), can
/// let one call go at a time with each provisioning waited out in full
/// ([`set_one_step_at_a_time`](Self::set_one_step_at_a_time)), and records a
/// [`trace`](Self::trace) of every call with the identifiers it produced and consumed.
#[derive(Clone)]
pub struct Chaos {
    state: Arc<Mutex<State>>,
    http: SharedHttpClient,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    /// Wakes held answers when a request is sent.
    sent: Arc<tokio::sync::Notify>,
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state();
        f.debug_struct("Chaos")
            .field("throttle_rate", &s.throttle_rate)
            .field("latency", &s.latency)
            .field("requests", &s.requests)
            .field("throttled", &s.throttled.len())
            .finish()
    }
}

impl Chaos {
    /// A client that forwards every request at once until told otherwise; `seed` fixes which
    /// requests a rate throttles (for a given order of requests).
    pub fn new(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                rng: fastrand::Rng::with_seed(seed),
                throttle_rate: 0.0,
                latency: Duration::ZERO,
                requests: 0,
                throttled: Vec::new(),
                tracing: false,
                sim: Simulation::new(),
                answer_gates: Vec::new(),
            })),
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
            sent: Arc::new(tokio::sync::Notify::new()),
            http: aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build_https(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers this share of requests (0.0 to 1.0) with a throttling error.
    pub fn set_throttle_rate(&self, rate: f64) {
        self.state().throttle_rate = rate.clamp(0.0, 1.0);
    }

    /// Delays every request by `latency` before it is answered or forwarded.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Requests seen so far (every attempt counts).
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    /// The requests answered with a throttling error so far.
    pub fn throttled(&self) -> Vec<Throttled> {
        self.state().throttled.clone()
    }

    /// Simulates these provisioning times from now on (and starts tracing calls).
    pub fn set_provisioning(&self, provisioning: Provisioning) {
        let mut s = self.state();
        s.sim.provisioning = provisioning;
        s.tracing = true;
    }

    /// When on, one call goes at a time, and a call that creates something provisioned
    /// (a NAT gateway, a load balancer, a deployment) holds the line for its whole
    /// provisioning time: a sequential execution, one step at a time, of the same code.
    pub fn set_one_step_at_a_time(&self, on: bool) {
        self.state().sim.one_step_at_a_time = on;
    }

    /// Starts a new trace: calls are recorded from now on.
    pub fn start_trace(&self) {
        let mut s = self.state();
        s.tracing = true;
        s.sim.reset_trace();
    }

    /// The calls recorded since [`start_trace`](Self::start_trace), in the order their
    /// answers arrived.
    pub fn trace(&self) -> Vec<TracedCall> {
        self.state().sim.trace.clone()
    }

    /// A gate on readiness: while tracing, a resource of `kind` is not seen ready before every
    /// operation of `until_sent` has been sent since the trace began. Tests order events by
    /// cause, not by time: "the load balancer is created while the NAT gateways provision"
    /// becomes "the NAT gateways are not available until `CreateLoadBalancer` was sent",
    /// which code that waited for them first could never satisfy. A gate still shut
    /// [`GATE_TIMEOUT`](super::GATE_TIMEOUT) after the resource would have been ready opens
    /// and is listed by [`broken_gates`](Self::broken_gates).
    pub fn hold_ready(&self, kind: super::Provisioned, until_sent: &[&str]) {
        let ops = until_sent.iter().map(|s| s.to_string()).collect();
        self.state().sim.ready_gates.push((kind, ops));
    }

    /// A gate on answers: while tracing, the answers to `operations` (to every operation when
    /// empty) are held until every operation of `until_sent` has been sent since the trace
    /// began (or, broken, for at most [`GATE_TIMEOUT`](super::GATE_TIMEOUT)). Not for the
    /// one-step-at-a-time mode, where a held answer holds the line.
    pub fn hold_answers(&self, operations: &[&str], until_sent: &[&str]) {
        let held = operations.iter().map(|s| s.to_string()).collect();
        let ops = until_sent.iter().map(|s| s.to_string()).collect();
        self.state().answer_gates.push((held, ops));
    }

    /// Removes every gate, and forgets which broke.
    pub fn clear_gates(&self) {
        let mut s = self.state();
        s.answer_gates.clear();
        s.sim.ready_gates.clear();
        s.sim.broken.clear();
    }

    /// The gates that opened only because they timed out: each is a cause the code under
    /// test did not produce.
    pub fn broken_gates(&self) -> Vec<String> {
        self.state().sim.broken.clone()
    }

    /// Waits until no answer gate holds `operation` (or the gate times out, broken).
    #[allow(clippy::disallowed_methods)] // gates time out in real (network) time
    async fn pass_answer_gates(&self, operation: &str) {
        let deadline = Instant::now() + super::GATE_TIMEOUT;
        loop {
            let mut notified = std::pin::pin!(self.sent.notified());
            notified.as_mut().enable();
            let shut: Vec<String> = {
                let s = self.state();
                s.answer_gates
                    .iter()
                    .filter(|(held, _)| held.is_empty() || held.iter().any(|o| o == operation))
                    .filter(|(_, ops)| !s.sim.all_sent(ops))
                    .map(|(_, ops)| format!("{operation} answered after {}", ops.join(", ")))
                    .collect()
            };
            if shut.is_empty() {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                let mut s = self.state();
                for gate in shut {
                    if !s.sim.broken.contains(&gate) {
                        s.sim.broken.push(gate);
                    }
                }
                return;
            }
            let _ = tokio::time::timeout(deadline - now, notified).await;
        }
    }
}

impl HttpClient for Chaos {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ChaosConnector {
            chaos: self.clone(),
            inner: self.http.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct ChaosConnector {
    chaos: Chaos,
    inner: SharedHttpConnector,
}

impl HttpConnector for ChaosConnector {
    #[allow(clippy::disallowed_methods)] // network time is real time, not the deploy's clock
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let sent = Instant::now();
        let service = signing_name(&request).unwrap_or_default().to_string();
        let operation = operation(&request);
        let (latency, throttle, tracing, one_step) = {
            let mut s = self.chaos.state();
            s.requests += 1;
            let throttle = s.throttle_rate > 0.0 && s.rng.f64() < s.throttle_rate;
            if s.tracing && !throttle {
                s.sim.sent.insert(operation.clone());
            }
            (s.latency, throttle, s.tracing, s.sim.one_step_at_a_time)
        };
        self.chaos.sent.notify_waiters();
        let request_text = if tracing {
            request
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        if throttle {
            self.chaos.state().throttled.push(Throttled {
                service: service.clone(),
                operation: operation.clone(),
            });
        }
        let inner = self.inner.clone();
        let chaos = self.chaos.clone();
        HttpConnectorFuture::new(async move {
            let _line = if one_step {
                Some(chaos.one_at_a_time.clone().lock_owned().await)
            } else {
                None
            };
            let sent = if one_step { Instant::now() } else { sent };
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            if throttle {
                if tracing {
                    chaos
                        .state()
                        .sim
                        .throttled(&service, &operation, sent, Instant::now());
                }
                let protocol = Protocol::from_signing_name(&service);
                let status = if protocol == Protocol::Ec2 { 503 } else { 400 };
                return Ok(protocol.error(status, protocol.throttling_code(), "Rate exceeded"));
            }
            let mut response = inner.call(request).await?;
            if !tracing {
                return Ok(response);
            }
            chaos.pass_answer_gates(&operation).await;
            let body = std::mem::replace(response.body_mut(), SdkBody::taken());
            let bytes = ByteStream::new(body)
                .collect()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?
                .to_vec();
            // Scanned as text (CBOR keeps its strings as UTF-8 too); the body is replaced only
            // when the simulation rewrote it, so binary answers pass unchanged.
            let original = String::from_utf8_lossy(&bytes).into_owned();
            let mut text = original.clone();
            let hold = {
                let mut s = chaos.state();
                let hold = if one_step {
                    s.sim.provisioning_of(&operation)
                } else {
                    Duration::ZERO
                };
                s.sim.answer(
                    &service,
                    &operation,
                    &request_text,
                    &mut text,
                    sent,
                    Instant::now(),
                    one_step,
                );
                hold
            };
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            if text == original {
                *response.body_mut() = SdkBody::from(bytes);
            } else {
                response
                    .headers_mut()
                    .insert("content-length", text.len().to_string());
                *response.body_mut() = SdkBody::from(text);
            }
            Ok(response)
        })
    }
}

/// The SigV4 signing name from `Credential=AKID/date/region/SERVICE/aws4_request`.
fn signing_name(request: &HttpRequest) -> Option<&str> {
    let auth = request.headers().get("authorization")?;
    let scope = auth.split("Credential=").nth(1)?;
    scope.split('/').nth(3)
}

/// The operation: from `x-amz-target` (JSON), the RPC v2 path (CBOR) or `Action=` (query).
fn operation(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    if let Some((_, op)) = request.uri().split_once("/operation/") {
        return op.to_string();
    }
    request
        .body()
        .bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|body| {
            body.split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_types::body::SdkBody;

    fn request(auth: &str, target: Option<&str>, uri: &str, body: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body.to_string()));
        r.headers_mut().insert("authorization", auth.to_string());
        if let Some(t) = target {
            r.headers_mut().insert("x-amz-target", t.to_string());
        }
        *r.uri_mut() = uri.try_into().expect("a valid uri");
        r
    }

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/SERVICE/aws4_request, SignedHeaders=host, Signature=0";

    #[test]
    fn the_service_and_operation_are_read_from_every_protocol() {
        let ec2 = request(
            &AUTH.replace("SERVICE", "ec2"),
            None,
            "http://127.0.0.1/",
            "Action=CreateVpc&Version=2016-11-15",
        );
        assert_eq!(signing_name(&ec2), Some("ec2"));
        assert_eq!(operation(&ec2), "CreateVpc");
        let ecs = request(
            &AUTH.replace("SERVICE", "ecs"),
            Some("AmazonEC2ContainerServiceV20141113.CreateService"),
            "http://127.0.0.1/",
            "{}",
        );
        assert_eq!(signing_name(&ecs), Some("ecs"));
        assert_eq!(operation(&ecs), "CreateService");
        let cw = request(
            &AUTH.replace("SERVICE", "monitoring"),
            None,
            "http://127.0.0.1/service/GraniteServiceVersion20100801/operation/PutMetricAlarm",
            "",
        );
        assert_eq!(operation(&cw), "PutMetricAlarm");
        assert_eq!(Protocol::from_signing_name("monitoring"), Protocol::Cbor);
        assert_eq!(
            Protocol::from_signing_name("elasticloadbalancing"),
            Protocol::Query
        );
    }

    #[derive(Debug)]
    struct Forwarded;
    impl HttpConnector for Forwarded {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Ok(HttpResponse::new(
                200.try_into().expect("a status"),
                SdkBody::from("forwarded"),
            )))
        }
    }

    #[tokio::test]
    async fn a_rate_of_one_throttles_every_request_in_the_services_protocol_without_forwarding() {
        let chaos = Chaos::new(1);
        chaos.set_throttle_rate(1.0);
        // The real client is replaced by one that says so: nothing may reach it.
        let connector = ChaosConnector {
            chaos: chaos.clone(),
            inner: SharedHttpConnector::new(Forwarded),
        };
        for (service, code, status) in [
            ("ec2", "RequestLimitExceeded", 503),
            ("iam", "Throttling", 400),
            ("ecs", "ThrottlingException", 400),
        ] {
            let r = request(
                &AUTH.replace("SERVICE", service),
                None,
                "http://127.0.0.1/",
                "Action=X",
            );
            let response = connector
                .call(r)
                .await
                .expect("answered without a connection");
            assert_eq!(response.status().as_u16(), status);
            let body =
                std::str::from_utf8(response.body().bytes().expect("a body")).expect("utf-8");
            assert!(body.contains(code), "{service}: {body}");
        }
        chaos.set_throttle_rate(0.0);
        let r = request(
            &AUTH.replace("SERVICE", "ecs"),
            None,
            "http://127.0.0.1/",
            "{}",
        );
        let response = connector.call(r).await.expect("forwarded");
        assert_eq!(response.body().bytes(), Some(&b"forwarded"[..]));
        assert_eq!(chaos.requests(), 4);
        assert_eq!(chaos.throttled().len(), 3);
        assert_eq!(chaos.throttled()[0].service, "ec2");
    }

    #[test]
    fn a_rate_throttles_about_that_share() {
        let chaos = Chaos::new(42);
        chaos.set_throttle_rate(0.2);
        let mut hits = 0;
        for _ in 0..10_000 {
            let mut s = chaos.state();
            if s.rng.f64() < s.throttle_rate {
                hits += 1;
            }
        }
        assert!((1_800..=2_200).contains(&hits), "{hits}");
    }
}
