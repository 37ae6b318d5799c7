//! Provisioning times and a call trace for benchmarks on the emulator: the emulator makes
//! NAT gateways, load balancers and service deployments ready at once; the simulation, part
//! of [`Chaos`](super::Chaos), rewrites its answers so that each becomes ready only a set
//! time after it was created, and records every call with the identifiers it produced and
//! consumed, from which a benchmark derives the dependency graph of a deploy.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How long each kind of resource takes to become ready after the call that created it (or,
/// for a service deployment, after the `CreateService`/`UpdateService` that started it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Provisioning {
    /// A NAT gateway stays `pending` this long after `CreateNatGateway`.
    pub nat_gateway: Duration,
    /// A load balancer stays `provisioning` this long after `CreateLoadBalancer`.
    pub load_balancer: Duration,
    /// A deployment stays `IN_PROGRESS` this long after it starts, and never completes
    /// before the stack's load balancers are active.
    pub rollout: Duration,
}

/// A kind of resource whose readiness is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provisioned {
    /// A NAT gateway (`available`).
    NatGateway,
    /// A load balancer (`active`).
    LoadBalancer,
    /// A service deployment (`COMPLETED`).
    Rollout,
}

/// How long a gate may stay shut, in real time, before it opens anyway and is reported as
/// broken ([`Chaos::broken_gates`](super::Chaos::broken_gates)): code that waits for what
/// the gate waits for would otherwise hang.
pub const GATE_TIMEOUT: Duration = Duration::from_secs(20);

/// What a traced call did to the simulated provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Nothing that is provisioned.
    None,
    /// It created (or, for a deployment, started) these resources, which take time.
    Started(Vec<String>),
    /// It observed these resources ready.
    Ready(Vec<String>),
    /// It observed at least one resource still not ready (a poll that must come again).
    NotReady,
}

/// One call as it went over the wire.
#[derive(Debug, Clone)]
pub struct TracedCall {
    /// The SigV4 signing name of the service, e.g. `ec2`.
    pub service: String,
    /// The operation, e.g. `CreateVpc`.
    pub operation: String,
    /// When the request was sent, since the trace began.
    pub start: Duration,
    /// When its answer arrived, since the trace began.
    pub end: Duration,
    /// Identifiers (resource ids and ARNs) first seen, since the trace began, in this call's
    /// answer.
    pub produced: BTreeSet<String>,
    /// Identifiers in this call's request.
    pub consumed: BTreeSet<String>,
    /// Provisioning this call started or observed.
    pub readiness: Readiness,
    /// Whether the call was answered with a throttling error without reaching the service.
    pub throttled: bool,
}

impl TracedCall {
    /// Whether the call changes something ([`Call::is_mutating`](crate::testing::Call::is_mutating)).
    pub fn is_mutating(&self) -> bool {
        crate::testing::Call {
            service: self.service.clone(),
            operation: self.operation.clone(),
        }
        .is_mutating()
    }

    /// The most calls of `trace` that were in flight at once, of those that `which` keeps
    /// (throttled answers, which never reached the service, are not counted).
    ///
    /// ```
    /// # fn example(trace: &[ecs_core::testing::TracedCall]) {
    /// use ecs_core::testing::TracedCall;
    /// let deletions_at_once = TracedCall::most_in_flight(trace, TracedCall::is_mutating);
    /// # }
    /// ```
    pub fn most_in_flight(trace: &[TracedCall], which: impl Fn(&TracedCall) -> bool) -> usize {
        let mut edges: Vec<(Duration, i32)> = trace
            .iter()
            .filter(|c| !c.throttled && which(c))
            .flat_map(|c| [(c.start, 1), (c.end, -1)])
            .collect();
        // Ends sort before starts at the same instant: calls that only touch do not overlap.
        edges.sort();
        let (mut now, mut most) = (0i32, 0i32);
        for (_, d) in edges {
            now += d;
            most = most.max(now);
        }
        most.unsigned_abs() as usize
    }
}

#[derive(Debug)]
pub(crate) struct Simulation {
    pub(crate) provisioning: Provisioning,
    pub(crate) one_step_at_a_time: bool,
    origin: Instant,
    ready_at: HashMap<String, Instant>,
    load_balancers_ready: Option<Instant>,
    pub(crate) trace: Vec<TracedCall>,
    seen: BTreeSet<String>,
    /// The operations sent since the trace began.
    pub(crate) sent: BTreeSet<String>,
    /// Readiness gates: a resource of the kind is not ready before every operation listed
    /// has been sent.
    pub(crate) ready_gates: Vec<(Provisioned, Vec<String>)>,
    /// Gates that opened only because [`GATE_TIMEOUT`] ran out.
    pub(crate) broken: Vec<String>,
}

impl Simulation {
    #[allow(clippy::disallowed_methods)] // the trace is in real (network) time
    pub(crate) fn new() -> Self {
        Self {
            provisioning: Provisioning::default(),
            one_step_at_a_time: false,
            origin: Instant::now(),
            ready_at: HashMap::new(),
            load_balancers_ready: None,
            trace: Vec::new(),
            seen: BTreeSet::new(),
            sent: BTreeSet::new(),
            ready_gates: Vec::new(),
            broken: Vec::new(),
        }
    }

    /// Whether every operation of `ops` has been sent since the trace began.
    pub(crate) fn all_sent(&self, ops: &[String]) -> bool {
        ops.iter().all(|op| self.sent.contains(op))
    }

    /// Whether the gates of `kind` let a resource that is otherwise ready (since `ready_at`)
    /// be seen ready `now`; a gate shut for [`GATE_TIMEOUT`] past `ready_at` opens, broken.
    fn gates_open(&mut self, kind: Provisioned, ready_at: Instant, now: Instant) -> bool {
        let shut: Vec<String> = self
            .ready_gates
            .iter()
            .filter(|(k, ops)| *k == kind && !self.all_sent(ops))
            .map(|(_, ops)| format!("{kind:?} ready after {}", ops.join(", ")))
            .collect();
        if shut.is_empty() {
            return true;
        }
        if now.saturating_duration_since(ready_at) < GATE_TIMEOUT {
            return false;
        }
        for gate in shut {
            if !self.broken.contains(&gate) {
                self.broken.push(gate);
            }
        }
        true
    }

    /// Starts a new trace (provisioning state is kept).
    #[allow(clippy::disallowed_methods)] // the trace is in real (network) time
    /// Starts a new trace: times from now, and identifiers count as produced by the first
    /// answer of this trace that holds them (so that reads feed the calls after them).
    pub(crate) fn reset_trace(&mut self) {
        self.origin = Instant::now();
        self.trace.clear();
        self.seen.clear();
        self.sent.clear();
    }

    pub(crate) fn since_origin(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.origin)
    }

    /// How long a created resource takes, for a call that creates one (in one-step mode
    /// the caller waits this long before the next call may go).
    pub(crate) fn provisioning_of(&self, operation: &str) -> Duration {
        match operation {
            "CreateNatGateway" => self.provisioning.nat_gateway,
            "CreateLoadBalancer" => self.provisioning.load_balancer,
            "CreateService" | "UpdateService" => self.provisioning.rollout,
            _ => Duration::ZERO,
        }
    }

    /// Records the answer of a forwarded call and rewrites it where provisioning is
    /// simulated. `sent` is when the request left; `now` when the answer came.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer(
        &mut self,
        service: &str,
        operation: &str,
        request: &str,
        response: &mut String,
        sent: Instant,
        now: Instant,
        settled: bool,
    ) {
        let consumed = identifiers(&percent_decode(request));
        let found = identifiers(response);
        let produced: BTreeSet<String> = found.difference(&self.seen).cloned().collect();
        self.seen.extend(found);
        let ready = |d: Duration| if settled { now } else { now + d };
        let readiness = match operation {
            "CreateNatGateway" => {
                let ids = tag_values(response, "natGatewayId");
                for id in &ids {
                    self.ready_at
                        .insert(id.clone(), ready(self.provisioning.nat_gateway));
                }
                Readiness::Started(ids)
            }
            "CreateLoadBalancer" => {
                let arns = tag_values(response, "LoadBalancerArn");
                let at = ready(self.provisioning.load_balancer);
                for arn in &arns {
                    self.ready_at.insert(arn.clone(), at);
                }
                self.load_balancers_ready =
                    Some(self.load_balancers_ready.map_or(at, |t| t.max(at)));
                Readiness::Started(arns)
            }
            "CreateService" | "UpdateService" => {
                let ids = primary_deployments(response);
                let mut at = ready(self.provisioning.rollout);
                if let Some(lb) = self.load_balancers_ready {
                    at = at.max(lb);
                }
                for id in &ids {
                    self.ready_at.insert(id.clone(), at);
                }
                Readiness::Started(ids)
            }
            "DescribeNatGateways" => self.hold_back(
                Provisioned::NatGateway,
                response,
                now,
                "natGatewayId",
                "<state>",
                "available",
                "pending",
            ),
            "DescribeLoadBalancers" => self.hold_back(
                Provisioned::LoadBalancer,
                response,
                now,
                "LoadBalancerArn",
                "<Code>",
                "active",
                "provisioning",
            ),
            "DescribeServices" => self.hold_back_deployments(response, now),
            _ => Readiness::None,
        };
        self.trace.push(TracedCall {
            service: service.to_string(),
            operation: operation.to_string(),
            start: self.since_origin(sent),
            end: self.since_origin(now),
            produced,
            consumed,
            readiness,
            throttled: false,
        });
    }

    /// Records a call answered with a throttling error.
    pub(crate) fn throttled(
        &mut self,
        service: &str,
        operation: &str,
        sent: Instant,
        now: Instant,
    ) {
        self.trace.push(TracedCall {
            service: service.to_string(),
            operation: operation.to_string(),
            start: self.since_origin(sent),
            end: self.since_origin(now),
            produced: BTreeSet::new(),
            consumed: BTreeSet::new(),
            readiness: Readiness::None,
            throttled: true,
        });
    }

    /// In an XML answer, each resource (found by its `<id_tag>`) not ready yet gets the
    /// first `state_open ready <` after its id turned into `not_ready`.
    #[allow(clippy::too_many_arguments)]
    fn hold_back(
        &mut self,
        kind: Provisioned,
        response: &mut String,
        now: Instant,
        id_tag: &str,
        state_open: &str,
        ready: &str,
        not_ready: &str,
    ) -> Readiness {
        let open = format!("<{id_tag}>");
        let mut ids = Vec::new();
        let mut waiting = false;
        let mut from = 0;
        while let Some(i) = response[from..].find(&open) {
            let start = from + i + open.len();
            let Some(len) = response[start..].find('<') else {
                break;
            };
            let id = response[start..start + len].to_string();
            from = start + len;
            let pending = match self.ready_at.get(&id).copied() {
                Some(at) => at > now || !self.gates_open(kind, at, now),
                None => false,
            };
            let needle = format!("{state_open}{ready}<");
            if let Some(j) = response[from..].find(&needle) {
                if pending {
                    let at = from + j + state_open.len();
                    response.replace_range(at..at + ready.len(), not_ready);
                    waiting = true;
                } else {
                    ids.push(id);
                }
            }
        }
        if waiting {
            Readiness::NotReady
        } else if ids.iter().any(|id| self.ready_at.contains_key(id)) {
            Readiness::Ready(
                ids.into_iter()
                    .filter(|id| self.ready_at.contains_key(id))
                    .collect(),
            )
        } else {
            Readiness::None
        }
    }

    /// In a `DescribeServices` answer, a deployment not ready yet is `IN_PROGRESS`.
    fn hold_back_deployments(&mut self, response: &mut String, now: Instant) -> Readiness {
        let Ok(mut json) = serde_json::from_str::<serde_json::Value>(response) else {
            return Readiness::None;
        };
        let (mut ready, mut waiting) = (Vec::new(), false);
        for service in json["services"].as_array_mut().into_iter().flatten() {
            for d in service["deployments"].as_array_mut().into_iter().flatten() {
                let Some(id) = d["id"].as_str().map(str::to_string) else {
                    continue;
                };
                let Some(at) = self.ready_at.get(&id).copied() else {
                    continue;
                };
                if at > now || !self.gates_open(Provisioned::Rollout, at, now) {
                    d["rolloutState"] = "IN_PROGRESS".into();
                    d["runningCount"] = 0.into();
                    waiting = true;
                } else {
                    ready.push(id);
                }
            }
        }
        if waiting {
            *response = json.to_string();
            Readiness::NotReady
        } else if ready.is_empty() {
            Readiness::None
        } else {
            Readiness::Ready(ready)
        }
    }
}

/// The ids of the primary deployments in a `CreateService`/`UpdateService` answer.
fn primary_deployments(response: &str) -> Vec<String> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(response) else {
        return Vec::new();
    };
    json["service"]["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["status"] == "PRIMARY")
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect()
}

/// The texts of every `<tag>…</tag>` in an XML answer.
fn tag_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        if let Some(end) = rest.find('<') {
            if !out.iter().any(|x| x == &rest[..end]) {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

/// Resource identifiers in a request or an answer: ARNs and EC2 ids, plus ECS deployment ids.
pub(crate) fn identifiers(text: &str) -> BTreeSet<String> {
    const EC2: &[&str] = &[
        "vpc-",
        "subnet-",
        "igw-",
        "rtb-",
        "rtbassoc-",
        "eipalloc-",
        "nat-",
        "sg-",
        "ecs-svc/",
    ];
    let mut out = BTreeSet::new();
    for token in text.split(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '<' | '>' | '&' | '=' | ',' | '[' | ']' | '{' | '}')
    }) {
        if token.starts_with("arn:aws:") && token.len() > 12 {
            out.insert(token.to_string());
        } else if let Some(prefix) = EC2.iter().find(|p| token.starts_with(**p)) {
            let rest = &token[prefix.len()..];
            if rest.len() >= 4 && rest.chars().all(|c| c.is_ascii_alphanumeric()) {
                out.insert(token.to_string());
            }
        }
    }
    out
}

/// `%3A` → `:` and so on, for form-encoded query requests.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // instants to feed the simulation; nothing sleeps
mod tests {
    use super::*;

    #[test]
    fn identifiers_come_from_json_xml_and_form_bodies() {
        let form = percent_decode("Action=CreateSubnet&VpcId=vpc-0a1b2c3d&TargetGroupArn=arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A123%3Atargetgroup%2Fx%2Fabc");
        let ids = identifiers(&form);
        assert!(ids.contains("vpc-0a1b2c3d"), "{ids:?}");
        assert!(
            ids.contains("arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/x/abc"),
            "{ids:?}"
        );
        let ids = identifiers("<natGatewayId>nat-12345678</natGatewayId><x>sg-1</x>");
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec!["nat-12345678"]);
        let ids = identifiers(
            r#"{"id":"ecs-svc/1234567890","taskDefinition":"arn:aws:ecs:us-east-1:1:task-definition/a:1"}"#,
        );
        assert_eq!(ids.len(), 2, "{ids:?}");
    }

    #[test]
    fn a_nat_gateway_is_pending_until_its_time_has_come() {
        let mut sim = Simulation::new();
        sim.provisioning.nat_gateway = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut created = "<natGateway><natGatewayId>nat-0001aaaa</natGatewayId><state>pending</state></natGateway>".to_string();
        sim.answer(
            "ec2",
            "CreateNatGateway",
            "Action=CreateNatGateway",
            &mut created,
            t0,
            t0,
            false,
        );
        let body = "<item><natGatewayId>nat-0001aaaa</natGatewayId><state>available</state></item>";
        let mut early = body.to_string();
        sim.answer(
            "ec2",
            "DescribeNatGateways",
            "",
            &mut early,
            t0,
            t0 + Duration::from_secs(30),
            false,
        );
        assert!(early.contains("<state>pending</state>"), "{early}");
        let mut late = body.to_string();
        sim.answer(
            "ec2",
            "DescribeNatGateways",
            "",
            &mut late,
            t0,
            t0 + Duration::from_secs(61),
            false,
        );
        assert!(late.contains("<state>available</state>"), "{late}");
        let kinds: Vec<&Readiness> = sim.trace.iter().map(|c| &c.readiness).collect();
        assert_eq!(
            kinds,
            vec![
                &Readiness::Started(vec!["nat-0001aaaa".into()]),
                &Readiness::NotReady,
                &Readiness::Ready(vec!["nat-0001aaaa".into()]),
            ]
        );
        assert_eq!(
            sim.trace[0].produced.iter().next().map(String::as_str),
            Some("nat-0001aaaa")
        );
    }

    #[test]
    fn a_deployment_completes_after_its_time_and_never_before_the_load_balancer() {
        let mut sim = Simulation::new();
        sim.provisioning = Provisioning {
            nat_gateway: Duration::ZERO,
            load_balancer: Duration::from_secs(100),
            rollout: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let mut lb = "<LoadBalancerArn>arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1</LoadBalancerArn>".to_string();
        sim.answer(
            "elasticloadbalancing",
            "CreateLoadBalancer",
            "",
            &mut lb,
            t0,
            t0,
            false,
        );
        let mut created = r#"{"service":{"deployments":[{"id":"ecs-svc/111","status":"PRIMARY","rolloutState":"COMPLETED"}]}}"#.to_string();
        sim.answer("ecs", "CreateService", "", &mut created, t0, t0, false);
        let body = r#"{"services":[{"deployments":[{"id":"ecs-svc/111","status":"PRIMARY","rolloutState":"COMPLETED","runningCount":2}]}]}"#;
        for (after, done) in [(50, false), (99, false), (101, true)] {
            let mut r = body.to_string();
            sim.answer(
                "ecs",
                "DescribeServices",
                "",
                &mut r,
                t0,
                t0 + Duration::from_secs(after),
                false,
            );
            assert_eq!(r.contains("COMPLETED"), done, "{after}: {r}");
        }
    }
}

/// A clock for simulations: time runs `factor` times faster than real time, so that a
/// poller's 2 s interval or a 60 s provisioning takes 1/`factor` of that in reality, while
/// everything the code under test computes from the clock keeps its nominal values.
///
/// ```
/// use std::time::Duration;
/// use ecs_core::Clock;
/// use ecs_core::testing::ScaledClock;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = ScaledClock::new(1000.0);
/// let start = clock.now();
/// clock.sleep(Duration::from_secs(2)).await; // about 2 ms of real time
/// assert!(clock.now() - start >= Duration::from_secs(2));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    origin: Instant,
    factor: f64,
}

impl ScaledClock {
    /// A clock running `factor` (> 0) times faster than real time.
    #[allow(clippy::disallowed_methods)] // the simulated clock is anchored on the real one
    pub fn new(factor: f64) -> Self {
        Self {
            origin: Instant::now(),
            factor: if factor > 0.0 { factor } else { 1.0 },
        }
    }

    /// How much faster than real time it runs.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The real duration of a simulated one.
    pub fn real(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.factor)
    }
}

impl crate::Clock for ScaledClock {
    #[allow(clippy::disallowed_methods)] // the simulated clock is anchored on the real one
    fn now(&self) -> Instant {
        self.origin + self.origin.elapsed().mul_f64(self.factor)
    }

    #[allow(clippy::disallowed_methods)] // sleeps the real share of a simulated duration
    fn sleep(&self, duration: Duration) -> crate::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(self.real(duration)))
    }
}
