//! The YAML manifest and the `dev` / `prod` profiles.
//!
//! A manifest is a short description of a stack; a profile is a set of defaults, and every
//! key the manifest sets overrides it. Unknown keys are errors that name the key and its line.
//!
//! ```yaml
//! name: shop
//! profile: prod
//! image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v42
//! port: 8080
//! https:
//!   certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc
//! scaling: { min: 2, max: 20 }
//! alarms:
//!   actions: [arn:aws:sns:us-east-1:123456789012:ops]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use ecs_core::Tags;
use ecs_net::{ExistingVpc, ManagedVpc, NatStrategy, Network, NetworkSpec, VpcEndpoints};
use ecs_observe::{AlarmSpec, Alarms, Monitoring, ObserveSpec};
use ecs_scaling::{ScalingSpec, ScheduledScaling, TargetTracking};
use ecs_service::{
    Architecture, ContainerHealthCheck, ContainerSpec, Environment, HealthCheckSpec, IamSpec,
    ListenerSpec, LoadBalancerSpec, PolicyStatement, RepositorySpec, RolloutSpec, ServiceSettings,
    ServiceSpec, StrategyItem, TargetGroupSpec, TaskSpec,
};
use serde::{Deserialize, Serialize};

use crate::diagnostics::{self, ManifestProblem, ManifestProblems};
use crate::{Error, Stack};

/// A set of defaults for a stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// 256 CPU / 512 MiB, 1 task on Fargate Spot, no autoscaling, HTTP only, basic
    /// monitoring, a single NAT gateway.
    #[default]
    Dev,
    /// 512 CPU / 1024 MiB, 2 tasks across zones on demand, autoscaling 2–10 on CPU 70 % and
    /// memory 80 %, HTTPS with an HTTP redirect when a certificate is given, advanced
    /// monitoring, a NAT gateway per zone.
    Prod,
}

/// The defaults a profile gives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProfileDefaults {
    /// CPU units.
    pub cpu: u32,
    /// Memory in MiB.
    pub memory: u32,
    /// Tasks.
    pub count: u32,
    /// Run on Fargate Spot.
    pub spot: bool,
    /// Autoscaling range, when on.
    pub scaling: Option<(u32, u32)>,
    /// Monitoring level.
    pub monitoring: Monitoring,
    /// NAT gateways.
    pub nat: NatStrategy,
}

impl Profile {
    /// The profile's defaults.
    pub fn defaults(self) -> ProfileDefaults {
        match self {
            Profile::Dev => ProfileDefaults {
                cpu: 256,
                memory: 512,
                count: 1,
                spot: true,
                scaling: None,
                monitoring: Monitoring::Basic,
                nat: NatStrategy::Single,
            },
            Profile::Prod => ProfileDefaults {
                cpu: 512,
                memory: 1024,
                count: 2,
                spot: false,
                scaling: Some((2, 10)),
                monitoring: Monitoring::Advanced,
                nat: NatStrategy::PerAz,
            },
        }
    }
}

/// The manifest, as written. Every key is optional except `name`, and `image` for a service;
/// the profile fills in the rest.
///
/// One manifest describes one of:
/// - **a stack** (`image` and no `services`): a service with its own network, load balancer
///   and cluster — an environment whose own web service takes every request no other
///   service's route takes;
/// - **an environment with services** (`services`, with or without `image`): the shared
///   network, load balancer and cluster, and each service (`web`, `backend`, `worker`) under
///   `services.<name>`, with the service keys below and the environment's profile and tags
///   unless it sets its own;
/// - **one service of an environment** (`environment_name`): deployed on its own into an
///   environment deployed from elsewhere.
///
/// See [`Deployment`](crate::Deployment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The stack's (or environment's) name; a service under `services` is named by its key.
    #[serde(default)]
    pub name: String,
    /// The profile whose defaults apply (default `dev`; a service under `services` inherits
    /// the environment's).
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Tags for every resource.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The container image; `running` keeps whatever image the service runs (for teams whose
    /// CI pipeline releases the image: see [`crate::service::RUNNING_IMAGE`]). Required for a
    /// service; an environment without a service of its own has none.
    #[serde(default)]
    pub image: Option<String>,
    /// What kind of service of an environment this is (default `web`).
    #[serde(default, rename = "type")]
    pub kind: Option<ServiceKind>,
    /// A web service's route, in short: one path pattern (`/api/*`).
    #[serde(default)]
    pub path: Option<String>,
    /// A web service's route, in short: one host header (`api.example.com`).
    #[serde(default)]
    pub host: Option<String>,
    /// A pinned priority for the short route (1–50000).
    #[serde(default)]
    pub priority: Option<u32>,
    /// A web service's routes (path patterns and/or host headers), for more than one.
    #[serde(default)]
    pub routes: Vec<crate::service::routing::Route>,
    /// The environment this service is deployed into (a manifest of one service of an
    /// environment deployed from elsewhere).
    #[serde(default)]
    pub environment_name: Option<String>,
    /// An internal load balancer for the environment, in its private subnets (for backends
    /// reached through it).
    #[serde(default)]
    pub internal_load_balancer: Option<bool>,
    /// The services of the environment, by name.
    #[serde(default)]
    pub services: BTreeMap<String, Manifest>,
    /// The port the container listens on (default 8080).
    #[serde(default)]
    pub port: Option<u16>,
    /// CPU units.
    #[serde(default)]
    pub cpu: Option<u32>,
    /// Memory in MiB.
    #[serde(default)]
    pub memory: Option<u32>,
    /// `X86_64` (default) or `ARM64`.
    #[serde(default)]
    pub architecture: Option<Architecture>,
    /// Tasks to run (with autoscaling: at creation only).
    #[serde(default)]
    pub count: Option<u32>,
    /// Run on Fargate Spot.
    #[serde(default)]
    pub spot: Option<bool>,
    /// Environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Secrets: variable → Secrets Manager or SSM parameter ARN.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The container's command.
    #[serde(default)]
    pub command: Vec<String>,
    /// The container's own health check command (e.g. `["CMD-SHELL", "curl -f …"]`).
    #[serde(default)]
    pub container_health_check: Option<Vec<String>>,
    /// The load balancer's health check.
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
    /// Run as this user.
    #[serde(default)]
    pub user: Option<String>,
    /// Read-only root filesystem.
    #[serde(default)]
    pub readonly_root_filesystem: Option<bool>,
    /// HTTPS.
    #[serde(default)]
    pub https: Option<HttpsManifest>,
    /// An internal load balancer (private subnets).
    #[serde(default)]
    pub internal: Option<bool>,
    /// The network.
    #[serde(default)]
    pub network: Option<NetworkManifest>,
    /// Autoscaling; `false` turns the profile's off.
    #[serde(default)]
    pub scaling: Option<ScalingManifest>,
    /// `basic` or `advanced`.
    #[serde(default)]
    pub monitoring: Option<Monitoring>,
    /// Alarm settings.
    #[serde(default)]
    pub alarms: Option<AlarmsManifest>,
    /// Log retention in days.
    #[serde(default)]
    pub log_retention_days: Option<u32>,
    /// The ECR repository's settings.
    #[serde(default)]
    pub repository: Option<RepositorySpec>,
    /// Statements of the task role's policy.
    #[serde(default)]
    pub permissions: Vec<PolicyStatement>,
    /// ECS Exec.
    #[serde(default)]
    pub exec: Option<bool>,
    /// How long a rollout may take, in seconds.
    #[serde(default)]
    pub rollout_timeout: Option<u64>,
}

/// HTTPS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsManifest {
    /// The ACM certificate.
    pub certificate_arn: String,
    /// The TLS policy (default `ELBSecurityPolicy-TLS13-1-2-2021-06`).
    #[serde(default)]
    pub ssl_policy: Option<String>,
}

/// Network settings: a managed VPC (the default) or an existing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkManifest {
    /// The managed VPC's block (default `10.0.0.0/16`).
    #[serde(default)]
    pub cidr: Option<ipnet::Ipv4Net>,
    /// Zones (default 2).
    #[serde(default)]
    pub az_count: Option<u8>,
    /// `none`, `single` or `per_az`.
    #[serde(default)]
    pub nat: Option<NatStrategy>,
    /// VPC endpoints.
    #[serde(default)]
    pub endpoints: Option<VpcEndpoints>,
    /// Who may reach the load balancer (default everyone).
    #[serde(default)]
    pub allowed_cidrs: Option<Vec<ipnet::Ipv4Net>>,
    /// Use this VPC instead of creating one.
    #[serde(default)]
    pub existing: Option<ExistingVpc>,
}

/// Autoscaling settings, or `false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScalingManifest {
    /// `false` turns autoscaling off; `true` keeps the profile's.
    Enabled(bool),
    /// Settings.
    Settings(ScalingSettings),
}

/// Autoscaling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingSettings {
    /// Fewest tasks.
    #[serde(default)]
    pub min: Option<u32>,
    /// Most tasks.
    #[serde(default)]
    pub max: Option<u32>,
    /// Target CPU % (default 70).
    #[serde(default)]
    pub cpu: Option<f64>,
    /// Target memory % (default 80).
    #[serde(default)]
    pub memory: Option<f64>,
    /// Target requests per task per minute.
    #[serde(default)]
    pub requests_per_target: Option<f64>,
    /// Scheduled range changes.
    #[serde(default)]
    pub scheduled: Vec<ScheduledScaling>,
}

/// Alarm settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsManifest {
    /// SNS topics notified when an alarm fires (and when it recovers).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Service CPU high.
    #[serde(default)]
    pub cpu_high: Option<AlarmSetting>,
    /// Service memory high.
    #[serde(default)]
    pub memory_high: Option<AlarmSetting>,
    /// Target 5XX responses.
    #[serde(default)]
    pub target_5xx: Option<AlarmSetting>,
    /// p99 latency.
    #[serde(default)]
    pub latency_p99: Option<AlarmSetting>,
    /// Unhealthy targets.
    #[serde(default)]
    pub unhealthy_hosts: Option<AlarmSetting>,
    /// Running tasks below desired.
    #[serde(default)]
    pub running_below_desired: Option<AlarmSetting>,
}

/// One alarm in a manifest: `false` turns it off; settings replace the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlarmSetting {
    /// `false`: off; `true`: on with the defaults.
    On(bool),
    /// On with these settings.
    Settings(AlarmSpec),
}

impl AlarmsManifest {
    fn alarms(&self) -> Alarms {
        let mut a = Alarms::default();
        let pick = |slot: &mut Option<AlarmSpec>, setting: &Option<AlarmSetting>| match setting {
            Some(AlarmSetting::On(false)) => *slot = None,
            Some(AlarmSetting::Settings(s)) => *slot = Some(s.clone()),
            Some(AlarmSetting::On(true)) | None => {}
        };
        pick(&mut a.cpu_high, &self.cpu_high);
        pick(&mut a.memory_high, &self.memory_high);
        pick(&mut a.target_5xx, &self.target_5xx);
        pick(&mut a.latency_p99, &self.latency_p99);
        pick(&mut a.unhealthy_hosts, &self.unhealthy_hosts);
        pick(&mut a.running_below_desired, &self.running_below_desired);
        a
    }
}

/// The kinds of service an environment runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Takes requests from the environment's load balancer on its routes.
    #[default]
    Web,
    /// No public entry: reached by the other services (through the internal load balancer
    /// when it has routes).
    Backend,
    /// No load balancer and no port: works on its own (a queue's messages, say).
    Worker,
}

impl Manifest {
    /// The profile in effect (`dev` when the manifest sets none).
    pub fn profile(&self) -> Profile {
        self.profile.unwrap_or_default()
    }

    /// Parses a manifest (YAML). An unknown key or a wrong type is an
    /// [`Error::InvalidManifest`] naming the key, its line and column (the parser stops at
    /// the first such error).
    pub fn parse(yaml: &str) -> Result<Self, Error> {
        Self::parse_named(yaml, "manifest")
    }

    /// [`parse`](Self::parse), with errors naming `file`.
    pub fn parse_named(yaml: &str, file: &str) -> Result<Self, Error> {
        serde_saphyr::from_str(yaml).map_err(|e| {
            let keys = diagnostics::keys(yaml);
            let at = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .filter(|(line, _)| *line > 0);
            let field = at
                .and_then(|(line, column)| diagnostics::key_at(&keys, line, column))
                .map_or_else(|| "(document)".to_string(), |k| k.path.clone());
            Error::InvalidManifest(ManifestProblems {
                file: file.to_string(),
                problems: vec![ManifestProblem {
                    field,
                    message: parse_message(&e),
                    line: at.map(|(l, _)| l),
                    column: at.map(|(_, c)| c),
                    text: at
                        .and_then(|(l, _)| yaml.lines().nth(l - 1))
                        .map(str::to_string),
                }],
            })
        })
    }

    /// The stack this manifest describes: the profile's defaults, overridden by every key the
    /// manifest sets. Not validated yet (see [`Stack::validate`]).
    pub fn to_stack(&self) -> Stack {
        let d = self.profile().defaults();
        let port = self.port.unwrap_or(8080);
        let container = ContainerSpec::builder()
            .name("app")
            .image(self.image.clone().unwrap_or_default())
            .ports(vec![port])
            .environment(Environment(self.environment.clone()))
            .secrets(self.secrets.clone())
            .command(self.command.clone())
            .readonly_root_filesystem(self.readonly_root_filesystem.unwrap_or(false))
            .build();
        let mut container = container;
        container.user = self.user.clone();
        container.health_check = self
            .container_health_check
            .clone()
            .map(|command| ContainerHealthCheck::builder().command(command).build());
        let task = TaskSpec::builder()
            .cpu(self.cpu.unwrap_or(d.cpu))
            .memory(self.memory.unwrap_or(d.memory))
            .architecture(self.architecture.unwrap_or_default())
            .containers(vec![container])
            .build();
        // HTTPS (with the HTTP redirect) whenever a certificate is given: `prod` expects one,
        // `dev` serves plain HTTP unless the manifest gives one.
        let listeners = match &self.https {
            Some(h) => {
                let mut https = ListenerSpec::https(h.certificate_arn.clone());
                https.ssl_policy = h.ssl_policy.clone();
                vec![https, ListenerSpec::redirect_to_https()]
            }
            None => vec![ListenerSpec::http()],
        };
        let load_balancer = LoadBalancerSpec::builder()
            .internal(self.internal.unwrap_or(false))
            .target_group(
                TargetGroupSpec::builder()
                    .health_check(self.health_check.clone().unwrap_or_default())
                    .build(),
            )
            .listeners(listeners)
            .build();
        let spot = self.spot.unwrap_or(d.spot);
        let settings = ServiceSettings::builder()
            .desired_count(self.count.unwrap_or(d.count))
            .capacity_provider_strategy(if spot {
                vec![StrategyItem::spot()]
            } else {
                Vec::new()
            })
            .enable_execute_command(self.exec.unwrap_or(false))
            .rollout(
                RolloutSpec::builder()
                    .timeout(self.rollout_timeout.unwrap_or(900))
                    .build(),
            )
            .build();
        let service = ServiceSpec::builder()
            .repository(Some(self.repository.clone().unwrap_or_default()))
            .iam(
                IamSpec::builder()
                    .task_role_statements(self.permissions.clone())
                    .build(),
            )
            .task(task)
            .load_balancer(load_balancer)
            .service(settings)
            .build();
        let scaling = match &self.scaling {
            Some(ScalingManifest::Enabled(false)) => None,
            Some(ScalingManifest::Enabled(true)) | None => d
                .scaling
                .map(|(min, max)| ScalingSpec::cpu_and_memory(min, max)),
            Some(ScalingManifest::Settings(s)) => {
                let (min, max) = d.scaling.unwrap_or((1, 4));
                let tracking = |target: f64| TargetTracking::builder().target(target).build();
                let mut spec = ScalingSpec::builder()
                    .min(s.min.unwrap_or(min))
                    .max(s.max.unwrap_or(max))
                    .scheduled(s.scheduled.clone())
                    .build();
                spec.cpu = Some(tracking(s.cpu.unwrap_or(70.0)));
                spec.memory = Some(tracking(s.memory.unwrap_or(80.0)));
                spec.requests_per_target = s.requests_per_target.map(tracking);
                Some(spec)
            }
        };
        let network = self.network.clone().unwrap_or(NetworkManifest {
            cidr: None,
            az_count: None,
            nat: None,
            endpoints: None,
            allowed_cidrs: None,
            existing: None,
        });
        let vpc = match network.existing {
            Some(e) => Network::Existing(e),
            None => {
                let mut m = ManagedVpc::builder()
                    .nat(network.nat.unwrap_or(d.nat))
                    .endpoints(network.endpoints.unwrap_or_default())
                    .build();
                if let Some(c) = network.cidr {
                    m.cidr = c;
                }
                if let Some(n) = network.az_count {
                    m.az_count = n;
                }
                Network::Managed(m)
            }
        };
        let mut network_spec = NetworkSpec::builder()
            .vpc(vpc)
            .container_port(port)
            .listener_ports(if self.https.is_some() {
                vec![80, 443]
            } else {
                vec![80]
            })
            .build();
        if let Some(cidrs) = network.allowed_cidrs {
            network_spec.alb_ingress_cidrs = cidrs;
        }
        let alarms = self.alarms.clone().unwrap_or_default();
        let observe = ObserveSpec::builder()
            .monitoring(self.monitoring.unwrap_or(d.monitoring))
            .log_retention_days(self.log_retention_days.unwrap_or(30))
            .alarms(alarms.alarms())
            .alarm_actions(alarms.actions.clone())
            .ok_actions(alarms.actions)
            .build();
        // Without a `count`, the profile's count is only a starting point: brought into the
        // scaling range, so that a range without the profile's count is not an error about a
        // count the manifest never set.
        let mut service = service;
        if let (None, Some(sc)) = (self.count, &scaling) {
            if sc.min <= sc.max {
                service.service.desired_count = d.count.clamp(sc.min, sc.max);
            }
        }
        Stack {
            name: self.name.clone(),
            tags: self.tags.iter().fold(Tags::new(), |t, (k, v)| t.with(k, v)),
            network: Some(network_spec),
            service,
            scaling,
            observe,
        }
    }
}

impl Stack {
    /// The stack a manifest describes: `source` is a path to a YAML file, or the YAML itself
    /// (anything containing a newline or `": "` that is not an existing file). Parses,
    /// applies the profile and validates every layer — every problem at once — before any
    /// AWS call.
    pub fn from_manifest(source: &str) -> Result<Stack, Error> {
        let path = Path::new(source);
        let (text, file) = if !source.contains('\n') && path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
                message: format!("cannot read {source}: {e}"),
            })?;
            (text, source)
        } else if !source.contains('\n') && !source.contains(": ") {
            return Err(Error::Manifest {
                message: format!("{source}: no such file"),
            });
        } else {
            (source.to_string(), "manifest")
        };
        Self::from_manifest_text(&text, file)
    }

    /// The stack the manifest `yaml` (read from `file`, named in errors) describes: every
    /// problem at once, each naming the manifest's key (`health_check.path`, not the stack's
    /// `service.load_balancer.target_group.health_check.path`) at its line and column, in an
    /// [`Error::InvalidManifest`].
    pub fn from_manifest_text(yaml: &str, file: &str) -> Result<Stack, Error> {
        let manifest = Manifest::parse_named(yaml, file)?;
        let keys = diagnostics::keys(yaml);
        // A manifest of an environment with services, or of one service of an environment,
        // is a [`Deployment`](crate::Deployment).
        let not_a_stack = match (&manifest.environment_name, manifest.services.is_empty()) {
            (Some(_), _) => Some(("environment_name", "this manifest is one service of an environment: read it with `Deployment::from_manifest` (the CLI does)")),
            (None, false) => Some(("services", "this manifest is an environment with services: read it with `Deployment::from_manifest` (the CLI does)")),
            (None, true) => None,
        };
        if let Some((key, message)) = not_a_stack {
            return Err(Error::InvalidManifest(ManifestProblems {
                file: file.to_string(),
                problems: vec![diagnostics::problem(yaml, &keys, key, message)],
            }));
        }
        let crate::Deployment { root, .. } = crate::Deployment::from_manifest_text(yaml, file)?;
        let Some(crate::Root::Stack(stack)) = root else {
            unreachable!("a manifest with neither services nor an environment is a stack")
        };
        // Validated there, every problem at its manifest key.
        Ok(*stack)
    }
}

/// A parse error's message without the parser's own position and snippet (the
/// [`ManifestProblems`] rendering shows them).
fn parse_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // `line N column M: message`
    match first.split_once(": ") {
        Some((at, rest)) if at.starts_with("line ") && at.contains(" column ") => rest.to_string(),
        _ => first.to_string(),
    }
}
