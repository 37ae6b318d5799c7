//! What a manifest deploys: a stack on its own, or an environment with its services.

use std::path::Path;

use ecs_core::Tags;
use ecs_service::environment::{EnvironmentSpec, FrontSpec};
use ecs_service::routing::Route;
use ecs_service::{ClusterSpec, EnvironmentPlacement};
use serde::Serialize;

use crate::diagnostics::{self, ManifestProblem, ManifestProblems};
use crate::manifest::{Manifest, ServiceKind};
use crate::{Environment, Error, Stack};

/// The environment of a [`Deployment`]: one of its own, or a stack that is its own
/// environment (a manifest with an `image` of its own).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum Root {
    /// A stack with its own network, load balancer and cluster, which its environment's
    /// other services share; its service takes every request no other service's route
    /// takes.
    Stack(Box<Stack>),
    /// An environment without a service of its own: its listeners answer 404 to what no
    /// service's route takes.
    Environment(Box<Environment>),
}

impl Root {
    /// Its name: the environment's.
    pub fn name(&self) -> &str {
        match self {
            Root::Stack(s) => &s.name,
            Root::Environment(e) => &e.name,
        }
    }
}

/// What a manifest deploys: the environment (or the stack that is its own), and the
/// services deployed into it, each a [`Stack`] of its own (named `<environment>-<service>`).
///
/// ```
/// let d = ecs_facade::Deployment::from_manifest(
///     "name: shop\nservices:\n  api:\n    image: nginx:1.27\n    path: /api/*\n  worker:\n    type: worker\n    image: busybox\n",
/// ).unwrap();
/// assert_eq!(d.environment_name(), "shop");
/// let names: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
/// assert_eq!(names, ["shop-api", "shop-worker"]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Deployment {
    /// The environment; `None` for a manifest of one service of an environment deployed from
    /// elsewhere (`environment_name`).
    pub root: Option<Root>,
    /// The services, by name.
    pub services: Vec<Stack>,
    /// The environment's name.
    environment: String,
}

impl Deployment {
    /// The environment's name.
    pub fn environment_name(&self) -> &str {
        &self.environment
    }

    /// Every stack it deploys: the environment's own service (a stack that is its own
    /// environment) first, then each service.
    pub fn stacks(&self) -> Vec<&Stack> {
        let own = match &self.root {
            Some(Root::Stack(s)) => Some(&**s),
            _ => None,
        };
        own.into_iter().chain(self.services.iter()).collect()
    }

    /// The service called `name` (its short name, `api`, or its stack's, `shop-api`).
    pub fn service(&self, name: &str) -> Option<&Stack> {
        let full = format!("{}-{name}", self.environment);
        self.services
            .iter()
            .find(|s| s.name == name || s.name == full)
    }

    /// The deployment a manifest describes: `source` is a path to a YAML file, or the YAML
    /// itself (as [`Stack::from_manifest`] takes it). Parses, applies the profiles and
    /// validates the environment and every service — every problem at once, each naming the
    /// manifest's key (`services.api.cpu`) at its line and column — before any AWS call.
    pub fn from_manifest(source: &str) -> Result<Deployment, Error> {
        let path = Path::new(source);
        if !source.contains('\n') && path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
                message: format!("cannot read {source}: {e}"),
            })?;
            return Self::from_manifest_text(&text, source);
        }
        if !source.contains('\n') && !source.contains(": ") {
            return Err(Error::Manifest {
                message: format!("{source}: no such file"),
            });
        }
        Self::from_manifest_text(source, "manifest")
    }

    /// The deployment the manifest `yaml` (read from `file`, named in errors) describes.
    pub fn from_manifest_text(yaml: &str, file: &str) -> Result<Deployment, Error> {
        let manifest = Manifest::parse_named(yaml, file)?;
        let keys = diagnostics::keys(yaml);
        let mut found: Vec<ManifestProblem> = manifest
            .shape_problems()
            .into_iter()
            .map(|(key, message)| diagnostics::problem(yaml, &keys, &key, &message))
            .collect();
        let deployment = manifest.to_deployment();
        if found.is_empty() {
            let mut check = |prefix: &str, problems: ecs_core::Problems| {
                for p in problems.iter() {
                    let key = format!("{prefix}{}", diagnostics::manifest_key(&p.field));
                    found.push(diagnostics::problem(yaml, &keys, &key, &p.message));
                }
            };
            match &deployment.root {
                Some(Root::Stack(s)) => check("", s.validate().err().unwrap_or_default()),
                Some(Root::Environment(e)) => check("", e.validate().err().unwrap_or_default()),
                None => {}
            }
            let single = manifest.environment_name.is_some();
            for (stack, key) in deployment.services.iter().zip(manifest.services.keys()) {
                check(
                    &format!("services.{key}."),
                    stack.validate().err().unwrap_or_default(),
                );
            }
            if single {
                if let Some(stack) = deployment.services.first() {
                    check("", stack.validate().err().unwrap_or_default());
                }
            }
        }
        if found.is_empty() {
            return Ok(deployment);
        }
        // In the manifest's order; what the profile gave (no line) last.
        found.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
        Err(Error::InvalidManifest(ManifestProblems {
            file: file.to_string(),
            problems: found,
        }))
    }
}

impl Manifest {
    /// What this manifest deploys (not validated yet: see [`Deployment::from_manifest`]).
    pub fn to_deployment(&self) -> Deployment {
        if let Some(env) = &self.environment_name {
            // One service of an environment deployed from elsewhere.
            let parent = Manifest {
                name: env.clone(),
                ..self.clone()
            };
            let short = self.name.clone();
            return Deployment {
                root: None,
                services: vec![self.to_service(&parent, &short)],
                environment: env.clone(),
            };
        }
        let has_services = !self.services.is_empty();
        let root = match &self.image {
            Some(_) => {
                let mut stack = self.to_stack();
                // Other services join its network: every port from its load balancer.
                if has_services {
                    if let Some(n) = &mut stack.network {
                        n.shared = true;
                    }
                }
                Root::Stack(Box::new(stack))
            }
            None => Root::Environment(Box::new(self.to_environment())),
        };
        Deployment {
            root: Some(root),
            services: self
                .services
                .iter()
                .map(|(key, s)| s.to_service(self, key))
                .collect(),
            environment: self.name.clone(),
        }
    }

    /// The environment this manifest describes (its network, load balancers and cluster).
    fn to_environment(&self) -> Environment {
        // The stack's network, load balancer and cluster, as a stack would have them.
        let stack = self.to_stack();
        let listeners = match &self.https {
            Some(h) => {
                let mut front = FrontSpec::https(h.certificate_arn.clone());
                for l in &mut front.listeners {
                    if l.certificate_arn.is_some() {
                        l.ssl_policy = h.ssl_policy.clone();
                    }
                }
                front.listeners
            }
            None => FrontSpec::http().listeners,
        };
        let front = FrontSpec::builder().listeners(listeners).build();
        let spot = stack.service.service.capacity_provider_strategy.clone();
        let cluster = ClusterSpec {
            default_strategy: spot,
            ..ClusterSpec::default()
        };
        let mut shared = EnvironmentSpec::builder().load_balancer(front).build();
        shared.cluster = cluster;
        if self.internal_load_balancer == Some(true) {
            shared.internal_load_balancer = Some(FrontSpec::http());
        }
        let mut env = Environment::builder()
            .name(self.name.clone())
            .tags(stack.tags.clone())
            .shared(shared)
            .build();
        env.network = stack.network;
        env
    }

    /// Service `key` of environment `parent` (whose profile and tags it inherits).
    fn to_service(&self, parent: &Manifest, key: &str) -> Stack {
        let mut m = self.clone();
        m.profile = self.profile.or(parent.profile);
        m.name = format!("{}-{key}", parent.name);
        let mut stack = m.to_stack();
        let mut tags: Tags = parent
            .tags
            .iter()
            .fold(Tags::new(), |t, (k, v)| t.with(k, v));
        for (k, v) in &self.tags {
            tags.insert(k, v);
        }
        stack.tags = tags;
        stack.network = None;
        let target_group = stack
            .service
            .load_balancer
            .take()
            .map(|l| l.target_group)
            .unwrap_or_default();
        let kind = self.kind.unwrap_or_default();
        if kind == ServiceKind::Worker {
            for c in &mut stack.service.task.containers {
                c.ports.clear();
            }
        }
        stack.service.environment = Some(
            EnvironmentPlacement::builder()
                .environment(parent.name.clone())
                .routes(match kind {
                    ServiceKind::Worker => Vec::new(),
                    _ => self.all_routes(),
                })
                .internal(kind == ServiceKind::Backend)
                .target_group(target_group)
                .build(),
        );
        stack
    }

    /// The keys only a service has, and whether this manifest sets them.
    fn service_keys(&self) -> [(&'static str, bool); 22] {
        [
            ("port", self.port.is_some()),
            ("cpu", self.cpu.is_some()),
            ("memory", self.memory.is_some()),
            ("architecture", self.architecture.is_some()),
            ("count", self.count.is_some()),
            ("spot", self.spot.is_some()),
            ("environment", !self.environment.is_empty()),
            ("secrets", !self.secrets.is_empty()),
            ("command", !self.command.is_empty()),
            (
                "container_health_check",
                self.container_health_check.is_some(),
            ),
            ("health_check", self.health_check.is_some()),
            ("user", self.user.is_some()),
            (
                "readonly_root_filesystem",
                self.readonly_root_filesystem.is_some(),
            ),
            ("internal", self.internal.is_some()),
            ("scaling", self.scaling.is_some()),
            ("monitoring", self.monitoring.is_some()),
            ("alarms", self.alarms.is_some()),
            ("log_retention_days", self.log_retention_days.is_some()),
            ("repository", self.repository.is_some()),
            ("permissions", !self.permissions.is_empty()),
            ("exec", self.exec.is_some()),
            ("rollout_timeout", self.rollout_timeout.is_some()),
        ]
    }

    /// The routes: the short one (`path`, `host`, `priority`), then `routes`.
    pub fn all_routes(&self) -> Vec<Route> {
        let mut out = Vec::new();
        if self.path.is_some() || self.host.is_some() {
            out.push(Route {
                paths: self.path.iter().cloned().collect(),
                hosts: self.host.iter().cloned().collect(),
                priority: self.priority,
            });
        }
        out.extend(self.routes.iter().cloned());
        out
    }

    /// The keys that do not belong where they are, and what is missing: before any other
    /// check, each as (manifest key, message).
    fn shape_problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let service_only = [
            ("type", self.kind.is_some()),
            ("path", self.path.is_some()),
            ("host", self.host.is_some()),
            ("priority", self.priority.is_some()),
            ("routes", !self.routes.is_empty()),
        ];
        if self.name.is_empty() {
            p.push(("name".to_string(), "is required".to_string()));
        }
        match (&self.environment_name, self.services.is_empty()) {
            (Some(_), false) => p.push((
                "services".to_string(),
                "a manifest of one service of an environment (`environment_name`) has no services of its own".to_string(),
            )),
            (Some(_), true) => {
                for (key, set) in [
                    ("network", self.network.is_some()),
                    ("https", self.https.is_some()),
                    ("internal", self.internal.is_some()),
                    ("internal_load_balancer", self.internal_load_balancer.is_some()),
                ] {
                    if set {
                        p.push((key.to_string(), "belongs to the environment's manifest, not a service's".to_string()));
                    }
                }
                p.extend(service_problems("", self));
            }
            (None, _) => {
                for (key, set) in service_only {
                    if set {
                        p.push((key.to_string(), "only a service of an environment (under `services`, or with `environment_name`) has it".to_string()));
                    }
                }
                if self.image.is_none() {
                    // An environment without a service of its own: a service's keys belong
                    // under `services`.
                    for (key, set) in self.service_keys() {
                        if set {
                            p.push((
                                key.to_string(),
                                "is a service's key: an environment without an `image` of its own has no service to give it to; put it under `services.<name>`".to_string(),
                            ));
                        }
                    }
                }
                if self.image.is_none() && self.services.is_empty() {
                    p.push((
                        "image".to_string(),
                        "is required (or `services`, for an environment)".to_string(),
                    ));
                }
                if self.internal_load_balancer.is_some() && self.image.is_some() {
                    p.push((
                        "internal_load_balancer".to_string(),
                        "is for an environment without a service of its own (no `image`): a stack has its one load balancer".to_string(),
                    ));
                } else if self.internal_load_balancer.is_some() && self.services.is_empty() {
                    p.push((
                        "internal_load_balancer".to_string(),
                        "is for an environment with services".to_string(),
                    ));
                }
                if self.image.is_some() && !self.services.is_empty() && self.internal == Some(true)
                {
                    p.push((
                        "internal".to_string(),
                        "a stack with an internal load balancer has no internet-facing one for its services' routes".to_string(),
                    ));
                }
                let internal = self.image.is_none() && self.internal_load_balancer == Some(true);
                for (key, s) in &self.services {
                    let backend_routes = s.kind == Some(ServiceKind::Backend) && !s.all_routes().is_empty();
                    if backend_routes && !internal {
                        p.push((
                            format!("services.{key}.type"),
                            "a backend takes its routes from the environment's internal load balancer: set `internal_load_balancer: true` on the environment (or make it `web`)".to_string(),
                        ));
                    }
                    // The stack's own service is `<name>-app`: a service `app` would be it.
                    if self.image.is_some() && key == "app" {
                        p.push((
                            format!("services.{key}"),
                            format!("`{}-app` is the stack's own service already: name this one otherwise", self.name),
                        ));
                    }
                }
                for (key, s) in &self.services {
                    let at = format!("services.{key}");
                    if let Err(e) = ecs_core::StackName::new(format!("{}-{key}", self.name)) {
                        p.push((at.clone(), format!("`{}-{key}` is not a valid stack name: {}", self.name, e.message)));
                    }
                    for (k, set) in [
                        ("name", !s.name.is_empty()),
                        ("network", s.network.is_some()),
                        ("https", s.https.is_some()),
                        ("internal", s.internal.is_some()),
                        ("internal_load_balancer", s.internal_load_balancer.is_some()),
                        ("environment_name", s.environment_name.is_some()),
                        ("services", !s.services.is_empty()),
                    ] {
                        if set {
                            p.push((
                                format!("{at}.{k}"),
                                match k {
                                    "name" => "a service is named by its key".to_string(),
                                    _ => "belongs to the environment, not a service".to_string(),
                                },
                            ));
                        }
                    }
                    p.extend(service_problems(&format!("{at}."), s));
                }
            }
        }
        p
    }
}

/// What a service must have for its kind.
fn service_problems(prefix: &str, s: &Manifest) -> Vec<(String, String)> {
    let mut p = Vec::new();
    if s.image.is_none() {
        p.push((format!("{prefix}image"), "is required".to_string()));
    }
    if s.priority.is_some() && s.path.is_none() && s.host.is_none() {
        p.push((
            format!("{prefix}priority"),
            "pins the priority of the route `path`/`host` gives: give one".to_string(),
        ));
    }
    let routes = s.all_routes();
    // A service without a route is named by its entry (or, alone, by its `path`).
    let entry = match prefix.is_empty() {
        true => "path".to_string(),
        false => prefix.trim_end_matches('.').to_string(),
    };
    match s.kind.unwrap_or_default() {
        ServiceKind::Web if routes.is_empty() => p.push((
            entry,
            "a web service needs a route: `path`, `host` or `routes` (a service without one is `type: backend` or `worker`)".to_string(),
        )),
        ServiceKind::Worker if !routes.is_empty() => p.push((
            format!("{prefix}routes"),
            "a worker has no load balancer: it takes no route".to_string(),
        )),
        _ => {}
    }
    let no_target = s.kind == Some(ServiceKind::Worker)
        || (s.kind == Some(ServiceKind::Backend) && routes.is_empty());
    if no_target {
        for (key, set) in [
            ("health_check", s.health_check.is_some()),
            (
                "port",
                s.kind == Some(ServiceKind::Worker) && s.port.is_some(),
            ),
        ] {
            if set {
                p.push((
                    format!("{prefix}{key}"),
                    "no load balancer sends this service requests: it takes no `health_check` (and a worker no `port`)".to_string(),
                ));
            }
        }
    }
    p
}

/// What deploying a [`Deployment`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum RootReport {
    /// The stack that is its own environment.
    Stack(Box<crate::DeployReport>),
    /// The environment.
    Environment(Box<crate::EnvironmentReport>),
}

/// What [`Deployer::deploy_all`](crate::Deployer::deploy_all) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeploymentReport {
    /// The environment's deploy (none for a manifest of one service).
    pub root: Option<RootReport>,
    /// Each service's deploy, by its stack's name.
    pub services: Vec<(String, crate::DeployReport)>,
}

/// One service of an environment, as [`Deployer::status_all`](crate::Deployer::status_all)
/// found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServiceSummary {
    /// Its stack's name.
    pub name: String,
    /// Where it answers: its first route on the environment's load balancer (none for a
    /// service without a route there).
    pub url: Option<String>,
    /// Its service, alarms and targets.
    pub status: crate::StackStatus,
}

/// An environment and every service of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeploymentStatus {
    /// The environment's name.
    pub environment: String,
    /// Whether it is deployed (its cluster exists).
    pub deployed: bool,
    /// Its internet-facing load balancer's DNS name.
    pub load_balancer: Option<String>,
    /// The environment's own service (a stack that is its own environment) and each service.
    pub services: Vec<ServiceSummary>,
}

impl crate::Deployer {
    /// The changes deploying `d` would make: the environment's, then each service's. The
    /// services of an environment not deployed yet (its cluster is still to be made) are
    /// planned once it is: their entries are left out.
    pub async fn plan_all(&self, d: &Deployment) -> Result<Vec<(String, crate::Plan)>, Error> {
        let mut out = Vec::new();
        let deployed = |plan: &crate::Plan, name: &str| {
            plan.find("ecs-cluster", name)
                .is_none_or(|c| c.action != crate::Action::Create)
        };
        let root_deployed = match &d.root {
            Some(Root::Stack(s)) => {
                let plan = self.plan(s).await?;
                let deployed = deployed(&plan, &s.name);
                out.push((s.name.clone(), plan));
                deployed
            }
            Some(Root::Environment(e)) => {
                let plan = self.plan_environment(e).await?;
                let deployed = deployed(&plan, &e.name);
                out.push((e.name.clone(), plan));
                deployed
            }
            None => true,
        };
        if root_deployed {
            let plans = futures_util::future::try_join_all(
                d.services
                    .iter()
                    .map(|s| async move { Ok::<_, Error>((s.name.clone(), self.plan(s).await?)) }),
            )
            .await?;
            out.extend(plans);
        }
        Ok(out)
    }

    /// Deploys `d`: the environment (or the stack that is its own) first, then every service
    /// at once, each under its own lease. The first failure is returned once every service
    /// deploy started has ended.
    pub async fn deploy_all(&self, d: &Deployment) -> Result<DeploymentReport, Error> {
        let root = match &d.root {
            Some(Root::Stack(s)) => Some(RootReport::Stack(Box::new(self.deploy(s).await?))),
            Some(Root::Environment(e)) => Some(RootReport::Environment(Box::new(
                self.deploy_environment(e).await?,
            ))),
            None => None,
        };
        let deployed = futures_util::future::join_all(
            d.services
                .iter()
                .map(|s| async move { (s.name.clone(), self.deploy(s).await) }),
        )
        .await;
        let mut services = Vec::new();
        for (name, result) in deployed {
            services.push((name, result?));
        }
        Ok(DeploymentReport { root, services })
    }

    /// Destroys every service of `d` at once, then the environment (or the stack that is its
    /// own). What each destroy deleted and kept, by name.
    pub async fn destroy_all(
        &self,
        d: &Deployment,
        options: crate::DestroyOptions,
    ) -> Result<Vec<(String, crate::DestroyReport)>, Error> {
        let destroyed = futures_util::future::join_all(
            d.services
                .iter()
                .map(|s| async move { (s.name.clone(), self.destroy(s, options).await) }),
        )
        .await;
        let mut out = Vec::new();
        for (name, result) in destroyed {
            out.push((name, result?));
        }
        match &d.root {
            Some(Root::Stack(s)) => out.push((s.name.clone(), self.destroy(s, options).await?)),
            Some(Root::Environment(e)) => {
                out.push((e.name.clone(), self.destroy_environment(e).await?))
            }
            None => {}
        }
        Ok(out)
    }

    /// The environment of `d` and every service of it: health, counts, deployments, alarms
    /// and URL, read at once.
    pub async fn status_all(&self, d: &Deployment) -> Result<DeploymentStatus, Error> {
        let env = d.environment_name();
        let ctx = self.context_of(env, &Tags::new())?;
        let stacks = d.stacks();
        let (front, statuses) = futures_util::try_join!(
            async {
                Ok::<_, Error>(Box::pin(self.layers().service.environment_outputs(&ctx)).await?)
            },
            futures_util::future::try_join_all(stacks.iter().map(|s| self.status(s))),
        )?;
        let lb = front.as_ref().and_then(|f| f.load_balancer.clone());
        let internal = front
            .as_ref()
            .and_then(|f| f.internal_load_balancer.clone());
        let services = stacks
            .iter()
            .zip(statuses)
            .map(|(s, status)| {
                let url = match s.service.environment.as_ref() {
                    // A backend's routes are on the internal load balancer.
                    Some(p) => {
                        let front = if p.internal { &internal } else { &lb };
                        match (front, p.routes.first()) {
                            (Some(front), Some(route)) => {
                                let (host, path) = route.url_parts();
                                Some(front.url(host, &path))
                            }
                            _ => None,
                        }
                    }
                    None => lb.as_ref().map(|lb| lb.url(None, "/")),
                };
                ServiceSummary {
                    name: s.name.clone(),
                    url,
                    status,
                }
            })
            .collect();
        Ok(DeploymentStatus {
            environment: env.to_string(),
            deployed: front.is_some(),
            load_balancer: lb.map(|l| l.dns_name),
            services,
        })
    }
}
