//! What the service layer builds, as typed values: every part has a typed builder, serde
//! support (unknown keys are errors) and defaults that match AWS-NOTES.md's security and
//! speed defaults. [`ServiceSpec::validate`] reports every problem at once, each naming its
//! field, before any AWS call.

use std::collections::BTreeMap;
use std::fmt;

use ecs_core::{NameKind, Problems, StackName};
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

/// The whole service layer of one stack: ECR repository, IAM roles, cluster, task definition,
/// load balancer and the Fargate service.
///
/// ```
/// use ecs_service::{ContainerSpec, LoadBalancerSpec, ServiceSpec, TaskSpec};
/// let spec = ServiceSpec::builder()
///     .task(TaskSpec::builder()
///         .containers(vec![ContainerSpec::builder().name("web").image("nginx:1.27").ports(vec![8080]).build()])
///         .build())
///     .load_balancer(LoadBalancerSpec::default())
///     .build();
/// assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The application's short name: the suffix of the repository, family, service and target
    /// group names (default `app`).
    #[builder(default = default_app_name(), setter(into))]
    #[serde(default = "default_app_name")]
    pub name: String,
    /// The ECR repository (default: created with the secure defaults); `None` for none.
    #[builder(default = Some(RepositorySpec::default()))]
    #[serde(default = "default_repository")]
    pub repository: Option<RepositorySpec>,
    /// The IAM roles' extra permissions.
    #[builder(default)]
    #[serde(default)]
    pub iam: IamSpec,
    /// The ECS cluster.
    #[builder(default)]
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// The task definition.
    pub task: TaskSpec,
    /// The application load balancer in front of the service; `None` for a service without one.
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub load_balancer: Option<LoadBalancerSpec>,
    /// The Fargate service.
    #[builder(default)]
    #[serde(default)]
    pub service: ServiceSettings,
    /// The environment the service is one of: it runs in the environment's cluster and
    /// network and takes requests through its load balancers (see
    /// [`EnvironmentPlacement`]); `None` for a service on its own, with its own cluster and
    /// load balancer.
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub environment: Option<EnvironmentPlacement>,
    /// The CloudWatch Logs group the containers log to (default `/ecs/<stack>`, see
    /// [`default_log_group`]). The service layer does not create it: `ecs-observe` (or you)
    /// does.
    #[builder(default, setter(strip_option, into))]
    #[serde(default)]
    pub log_group: Option<String>,
}

/// Where a service of an environment runs (see [`crate::environment`]): the environment's
/// cluster, network and load balancers, which it uses and never changes. Its own resources
/// are named after its stack alone (`<environment>-<service>`), not its
/// [`ServiceSpec::name`].
///
/// ```
/// use ecs_service::routing::Route;
/// use ecs_service::EnvironmentPlacement;
/// let web = EnvironmentPlacement::builder()
///     .environment("shop")
///     .routes(vec![Route::paths(["/api/*"])])
///     .build();
/// assert!(!web.internal);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPlacement {
    /// The environment's name: what the service uses of it carries this owner tag.
    #[builder(setter(into))]
    pub environment: String,
    /// The routes from the environment's load balancer to the service (a web service);
    /// none for a service without an entry there.
    #[builder(default)]
    #[serde(default)]
    pub routes: Vec<crate::routing::Route>,
    /// Take the routes from the environment's internal load balancer instead of its
    /// internet-facing one.
    #[builder(default)]
    #[serde(default)]
    pub internal: bool,
    /// The service's target group (used with routes).
    #[builder(default)]
    #[serde(default)]
    pub target_group: TargetGroupSpec,
}

fn default_app_name() -> String {
    "app".to_string()
}

fn default_repository() -> Option<RepositorySpec> {
    Some(RepositorySpec::default())
}

/// The log group a stack's containers log to unless the spec names one: `/ecs/<stack>`.
///
/// ```
/// let stack = ecs_core::StackName::new("shop").unwrap();
/// assert_eq!(ecs_service::default_log_group(&stack), "/ecs/shop");
/// ```
pub fn default_log_group(stack: &StackName) -> String {
    format!("/ecs/{}", stack.name(NameKind::LogGroup, ""))
}

/// The ECR repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct RepositorySpec {
    /// Image tags cannot be overwritten (default true).
    #[builder(default = true)]
    pub immutable_tags: bool,
    /// Scan images for vulnerabilities on push (default true).
    #[builder(default = true)]
    pub scan_on_push: bool,
    /// Encrypt with this KMS key instead of AES-256 (cannot change after creation).
    #[builder(default, setter(strip_option, into))]
    pub kms_key: Option<String>,
    /// Keep this many tagged images; older ones expire (default 30).
    #[builder(default = 30)]
    pub keep_tagged_images: u32,
    /// Untagged images expire this many days after push (default 7).
    #[builder(default = 7)]
    pub expire_untagged_after_days: u32,
}

impl RepositorySpec {
    /// Adds the problems of the `repository` section to `p`.
    pub(crate) fn validate(&self, p: &mut Problems) {
        check_range(
            p,
            "repository.keep_tagged_images",
            self.keep_tagged_images.into(),
            1,
            10_000,
        );
        check_range(
            p,
            "repository.expire_untagged_after_days",
            self.expire_untagged_after_days.into(),
            1,
            3650,
        );
        if self.kms_key.as_deref().is_some_and(str::is_empty) {
            p.push("repository.kms_key", "must not be empty");
        }
    }
}

impl Default for RepositorySpec {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Extra permissions of the task role (what the application may do). The execution role's
/// permissions are derived from the task definition: the managed
/// `AmazonECSTaskExecutionRolePolicy` plus read access to exactly the referenced secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct IamSpec {
    /// Statements of the task role's inline policy.
    #[builder(default)]
    pub task_role_statements: Vec<PolicyStatement>,
    /// The KMS key that encrypts the referenced secrets, when it is not the AWS managed key:
    /// the execution role may `kms:Decrypt` with it.
    #[builder(default, setter(strip_option, into))]
    pub secrets_kms_key: Option<String>,
}

impl IamSpec {
    /// Adds the problems of the `iam` section to `p`.
    pub(crate) fn validate(&self, p: &mut Problems) {
        for (i, s) in self.task_role_statements.iter().enumerate() {
            let f = format!("iam.task_role_statements[{i}]");
            if s.actions.is_empty()
                || s.actions
                    .iter()
                    .any(|a| a.is_empty() || (a != "*" && !a.contains(':')))
            {
                p.push(
                    format!("{f}.actions"),
                    "must list actions like `s3:GetObject`",
                );
            }
            if s.resources.is_empty()
                || s.resources
                    .iter()
                    .any(|r| r != "*" && !r.starts_with("arn:"))
            {
                p.push(format!("{f}.resources"), "must list ARNs or `*`");
            }
        }
    }
}

/// One IAM policy statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct PolicyStatement {
    /// Allow (default) or deny.
    #[builder(default)]
    #[serde(default)]
    pub effect: Effect,
    /// Actions, e.g. `s3:GetObject`.
    pub actions: Vec<String>,
    /// Resource ARNs (or `*`).
    pub resources: Vec<String>,
}

/// The effect of a policy statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Allow the actions.
    #[default]
    Allow,
    /// Deny the actions.
    Deny,
}

/// The ECS cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    /// Container Insights metrics (default on; the "running < desired" alarm needs them).
    #[builder(default = true)]
    pub container_insights: bool,
    /// The capacity providers the cluster offers (default `FARGATE` and `FARGATE_SPOT`).
    #[builder(default = vec![CapacityProvider::Fargate, CapacityProvider::FargateSpot])]
    pub capacity_providers: Vec<CapacityProvider>,
    /// The cluster's default capacity provider strategy (default: all on `FARGATE`).
    #[builder(default = vec![StrategyItem::on_demand()])]
    pub default_strategy: Vec<StrategyItem>,
}

impl ClusterSpec {
    /// Adds the problems of the `cluster` section to `p`.
    pub(crate) fn validate(&self, p: &mut Problems) {
        let c = self;
        let mut providers = c.capacity_providers.clone();
        providers.sort();
        providers.dedup();
        if providers.len() != c.capacity_providers.len() {
            p.push("cluster.capacity_providers", "lists a provider twice");
        }
        validate_strategy(
            p,
            "cluster.default_strategy",
            &c.default_strategy,
            &c.capacity_providers,
        );
    }
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// A Fargate capacity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CapacityProvider {
    /// On-demand Fargate.
    #[serde(rename = "FARGATE")]
    Fargate,
    /// Fargate Spot (up to 70 % cheaper, interruptible).
    #[serde(rename = "FARGATE_SPOT")]
    FargateSpot,
}

impl CapacityProvider {
    /// The name ECS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityProvider::Fargate => "FARGATE",
            CapacityProvider::FargateSpot => "FARGATE_SPOT",
        }
    }
}

impl fmt::Display for CapacityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct StrategyItem {
    /// The capacity provider.
    pub provider: CapacityProvider,
    /// Its relative share of tasks beyond the bases (0–1000, default 1).
    #[builder(default = 1)]
    #[serde(default = "one")]
    pub weight: u32,
    /// Tasks always placed on it first (0–100000; only one item may have a base).
    #[builder(default)]
    #[serde(default)]
    pub base: u32,
}

fn one() -> u32 {
    1
}

impl StrategyItem {
    /// All tasks on on-demand Fargate.
    pub fn on_demand() -> Self {
        Self::builder().provider(CapacityProvider::Fargate).build()
    }

    /// All tasks on Fargate Spot.
    pub fn spot() -> Self {
        Self::builder()
            .provider(CapacityProvider::FargateSpot)
            .build()
    }
}

impl fmt::Display for StrategyItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}+{}", self.provider, self.weight, self.base)
    }
}

/// The task definition: size, platform, containers and volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// vCPU units (256 = ¼ vCPU); must form a valid Fargate pair with `memory`.
    #[builder(default = 256)]
    #[serde(default = "default_cpu")]
    pub cpu: u32,
    /// Memory in MiB.
    #[builder(default = 512)]
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// CPU architecture (default `X86_64`).
    #[builder(default)]
    #[serde(default)]
    pub architecture: Architecture,
    /// The containers (at least one).
    pub containers: Vec<ContainerSpec>,
    /// EFS volumes the containers can mount.
    #[builder(default)]
    #[serde(default)]
    pub volumes: Vec<EfsVolume>,
    /// Ephemeral storage in GiB (21–200; Fargate gives 20 without it).
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub ephemeral_storage_gib: Option<u32>,
}

impl TaskSpec {
    /// Adds the problems of the `task` section to `p`.
    pub(crate) fn validate(&self, p: &mut Problems) {
        let t = self;
        let options = fargate_memory_options(t.cpu);
        if options.is_empty() {
            p.push(
                "task.cpu",
                format!(
                    "{} is not a Fargate CPU size (256, 512, 1024, 2048, 4096, 8192, 16384)",
                    t.cpu
                ),
            );
        } else if !options.contains(&t.memory) {
            p.push(
                "task.memory",
                format!(
                    "{} MiB is not valid with {} CPU units; Fargate allows {}",
                    t.memory,
                    t.cpu,
                    describe_options(&options)
                ),
            );
        }
        if let Some(gib) = t.ephemeral_storage_gib {
            check_range(p, "task.ephemeral_storage_gib", gib.into(), 21, 200);
        }
        if t.containers.is_empty() {
            p.push("task.containers", "at least one container is required");
        }
        if !t.containers.iter().any(|c| c.essential) && !t.containers.is_empty() {
            p.push(
                "task.containers",
                "at least one container must be essential",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        let mut all_ports = std::collections::BTreeSet::new();
        for (i, c) in t.containers.iter().enumerate() {
            let f = format!("task.containers[{i}]");
            if !is_ecs_name(&c.name) {
                p.push(
                    format!("{f}.name"),
                    "must be 1-255 letters, digits, `-` or `_`",
                );
            } else if !names.insert(c.name.as_str()) {
                p.push(format!("{f}.name"), format!("`{}` is used twice", c.name));
            }
            if !valid_image(&c.image) {
                p.push(
                    format!("{f}.image"),
                    "must be an image reference without spaces (at most 255)",
                );
            }
            for (j, port) in c.ports.iter().enumerate() {
                if *port == 0 {
                    p.push(format!("{f}.ports[{j}]"), "must be between 1 and 65535");
                } else if !all_ports.insert(*port) {
                    p.push(
                        format!("{f}.ports[{j}]"),
                        format!("port {port} is mapped twice in the task"),
                    );
                }
            }
            for name in c.environment.0.keys() {
                if !is_env_name(name) {
                    p.push(
                        format!("{f}.environment.{name}"),
                        "is not a valid variable name",
                    );
                }
                if c.secrets.contains_key(name) {
                    p.push(format!("{f}.environment.{name}"), "is also a secret");
                }
            }
            for (name, arn) in &c.secrets {
                if !is_env_name(name) {
                    p.push(
                        format!("{f}.secrets.{name}"),
                        "is not a valid variable name",
                    );
                }
                if !is_secret_arn(arn) {
                    p.push(
                        format!("{f}.secrets.{name}"),
                        "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>) or an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)",
                    );
                }
            }
            if let Some(hc) = &c.health_check {
                let hf = format!("{f}.health_check");
                match hc.command.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL") if hc.command.len() >= 2 => {}
                    Some("NONE") => {}
                    _ => p.push(
                        format!("{hf}.command"),
                        "must start with `CMD` or `CMD-SHELL` followed by the command",
                    ),
                }
                check_range(p, &format!("{hf}.interval"), hc.interval.into(), 5, 300);
                check_range(p, &format!("{hf}.timeout"), hc.timeout.into(), 2, 60);
                check_range(p, &format!("{hf}.retries"), hc.retries.into(), 1, 10);
                check_range(
                    p,
                    &format!("{hf}.start_period"),
                    hc.start_period.into(),
                    0,
                    300,
                );
            }
            if c.user.as_deref().is_some_and(str::is_empty) {
                p.push(format!("{f}.user"), "must not be empty");
            }
            for (j, u) in c.ulimits.iter().enumerate() {
                if u.soft > u.hard || u.soft < 0 {
                    p.push(
                        format!("{f}.ulimits[{j}]"),
                        "soft must be between 0 and hard",
                    );
                }
                if !ULIMIT_NAMES.contains(&u.name.as_str()) {
                    p.push(
                        format!("{f}.ulimits[{j}].name"),
                        format!("must be one of {}", ULIMIT_NAMES.join(", ")),
                    );
                }
            }
            for (j, m) in c.mount_points.iter().enumerate() {
                if !t.volumes.iter().any(|v| v.name == m.volume) {
                    p.push(
                        format!("{f}.mount_points[{j}].volume"),
                        format!("`{}` is not one of task.volumes", m.volume),
                    );
                }
                if !m.path.starts_with('/') {
                    p.push(
                        format!("{f}.mount_points[{j}].path"),
                        "must be an absolute path",
                    );
                }
            }
        }
        let mut volumes = std::collections::BTreeSet::new();
        for (i, v) in t.volumes.iter().enumerate() {
            let f = format!("task.volumes[{i}]");
            if !is_ecs_name(&v.name) {
                p.push(
                    format!("{f}.name"),
                    "must be 1-255 letters, digits, `-` or `_`",
                );
            } else if !volumes.insert(v.name.as_str()) {
                p.push(format!("{f}.name"), format!("`{}` is used twice", v.name));
            }
            if !v.file_system_id.starts_with("fs-") {
                p.push(
                    format!("{f}.file_system_id"),
                    "must be an EFS file system id (fs-…)",
                );
            }
            if v.access_point_id
                .as_deref()
                .is_some_and(|a| !a.starts_with("fsap-"))
            {
                p.push(
                    format!("{f}.access_point_id"),
                    "must be an EFS access point id (fsap-…)",
                );
            }
            if (v.access_point_id.is_some() || v.iam) && !v.transit_encryption {
                p.push(
                    format!("{f}.transit_encryption"),
                    "is required with an access point or IAM authorisation",
                );
            }
            if v.access_point_id.is_some() && v.root_directory.as_deref().is_some_and(|r| r != "/")
            {
                p.push(
                    format!("{f}.root_directory"),
                    "must be omitted with an access point",
                );
            }
        }
    }
}

fn default_cpu() -> u32 {
    256
}

fn default_memory() -> u32 {
    512
}

/// CPU architecture of the task (Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// x86-64.
    #[default]
    #[serde(rename = "X86_64")]
    X86_64,
    /// ARM64 (Graviton).
    #[serde(rename = "ARM64")]
    Arm64,
}

impl Architecture {
    /// The name ECS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "X86_64",
            Architecture::Arm64 => "ARM64",
        }
    }
}

/// Environment variables. Their values never appear in `Debug` output, nor when the spec is
/// serialized (plans, reports, JSON output): only the names are written, each with the value
/// `(redacted)`. Deserializing reads names and values.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Environment(pub BTreeMap<String, String>);

impl Serialize for Environment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for key in self.0.keys() {
            map.serialize_entry(key, "(redacted)")?;
        }
        map.end()
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// One container of the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// The container name (letters, digits, `-`, `_`; at most 255).
    #[builder(setter(into))]
    pub name: String,
    /// The image, e.g. `nginx:1.27` or `<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`;
    /// or [`RUNNING_IMAGE`](crate::RUNNING_IMAGE) (`running`) to keep whatever image the
    /// service runs in this container, for teams whose CI pipeline releases the image (the
    /// latest active revision's when the service runs none; a first deploy needs a real one).
    /// A Docker Hub image that is really named `running` is written `docker.io/library/running`.
    #[builder(setter(into))]
    pub image: String,
    /// TCP ports the container listens on.
    #[builder(default)]
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Environment variables (values are never logged; use `secrets` for secrets).
    #[builder(default)]
    #[serde(default)]
    pub environment: Environment,
    /// Secrets: variable name → Secrets Manager secret ARN or SSM parameter ARN.
    #[builder(default)]
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The container's own health check.
    #[builder(default, setter(strip_option))]
    #[serde(default)]
    pub health_check: Option<ContainerHealthCheck>,
    /// The user (and group) to run as, e.g. `1000:1000`.
    #[builder(default, setter(strip_option, into))]
    #[serde(default)]
    pub user: Option<String>,
    /// Mount the root filesystem read-only.
    #[builder(default)]
    #[serde(default)]
    pub readonly_root_filesystem: bool,
    /// The task stops when this container stops (default true).
    #[builder(default = true)]
    #[serde(default = "yes")]
    pub essential: bool,
    /// Overrides the image's command.
    #[builder(default)]
    #[serde(default)]
    pub command: Vec<String>,
    /// Overrides the image's entry point.
    #[builder(default)]
    #[serde(default)]
    pub entry_point: Vec<String>,
    /// Resource limits.
    #[builder(default)]
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// Volumes mounted into the container.
    #[builder(default)]
    #[serde(default)]
    pub mount_points: Vec<MountPoint>,
}

fn yes() -> bool {
    true
}

/// A container health check, run by the ECS agent inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ContainerHealthCheck {
    /// The command, e.g. `["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"]`.
    pub command: Vec<String>,
    /// Seconds between checks (5–300, default 30).
    #[builder(default = 30)]
    #[serde(default = "hc_interval")]
    pub interval: u32,
    /// Seconds before a check fails (2–60, default 5).
    #[builder(default = 5)]
    #[serde(default = "hc_timeout")]
    pub timeout: u32,
    /// Failures before the container is unhealthy (1–10, default 3).
    #[builder(default = 3)]
    #[serde(default = "hc_retries")]
    pub retries: u32,
    /// Grace seconds after start (0–300, default 0).
    #[builder(default)]
    #[serde(default)]
    pub start_period: u32,
}

fn hc_interval() -> u32 {
    30
}
fn hc_timeout() -> u32 {
    5
}
fn hc_retries() -> u32 {
    3
}

/// A resource limit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct Ulimit {
    /// The limit's name, e.g. `nofile`.
    #[builder(setter(into))]
    pub name: String,
    /// Soft limit.
    pub soft: i32,
    /// Hard limit.
    pub hard: i32,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct MountPoint {
    /// The volume's name (one of the task's `volumes`).
    #[builder(setter(into))]
    pub volume: String,
    /// Where it is mounted in the container.
    #[builder(setter(into))]
    pub path: String,
    /// Mount read-only.
    #[builder(default)]
    #[serde(default)]
    pub read_only: bool,
}

/// An EFS volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct EfsVolume {
    /// The volume's name in the task.
    #[builder(setter(into))]
    pub name: String,
    /// The file system, `fs-…`.
    #[builder(setter(into))]
    pub file_system_id: String,
    /// An access point, `fsap-…` (then the root directory is the access point's).
    #[builder(default, setter(strip_option, into))]
    #[serde(default)]
    pub access_point_id: Option<String>,
    /// The directory mounted as the root (default `/`).
    #[builder(default, setter(strip_option, into))]
    #[serde(default)]
    pub root_directory: Option<String>,
    /// Encrypt traffic to EFS (default true; required with an access point or IAM).
    #[builder(default = true)]
    #[serde(default = "yes")]
    pub transit_encryption: bool,
    /// Authorise with the task role (EFS IAM authorisation).
    #[builder(default)]
    #[serde(default)]
    pub iam: bool,
}

/// The application load balancer, its target group and listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct LoadBalancerSpec {
    /// Internal (private subnets) instead of internet-facing (public subnets).
    #[builder(default)]
    pub internal: bool,
    /// Subnets to use instead of the network's public (or, when internal, private) ones.
    #[builder(default, setter(strip_option))]
    pub subnets: Option<Vec<String>>,
    /// Idle connection timeout in seconds (1–4000, default 60).
    #[builder(default = 60)]
    pub idle_timeout: u32,
    /// Write access logs to this S3 bucket.
    #[builder(default, setter(strip_option))]
    pub access_logs: Option<AccessLogs>,
    /// The target group the service registers its tasks in.
    #[builder(default)]
    pub target_group: TargetGroupSpec,
    /// The listeners (default: HTTP on 80 forwarding to the target group).
    #[builder(default = vec![ListenerSpec::http()])]
    pub listeners: Vec<ListenerSpec>,
}

impl LoadBalancerSpec {
    /// Adds the problems of the `load_balancer` section to `p`; `target` is the container
    /// and port its target group sends traffic to ([`ServiceSpec::target`]).
    pub(crate) fn validate(&self, target: Option<(&ContainerSpec, u16)>, p: &mut Problems) {
        let lb = self;
        check_range(
            p,
            "load_balancer.idle_timeout",
            lb.idle_timeout.into(),
            1,
            4000,
        );
        if let Some(subnets) = &lb.subnets {
            if subnets.len() < 2 || subnets.iter().any(|s| !s.starts_with("subnet-")) {
                p.push(
                    "load_balancer.subnets",
                    "must list at least two subnet ids (subnet-…) in different zones",
                );
            }
        }
        if let Some(logs) = &lb.access_logs {
            if logs.bucket.len() < 3 || logs.bucket.len() > 63 {
                p.push(
                    "load_balancer.access_logs.bucket",
                    "must be an S3 bucket name (3-63 characters)",
                );
            }
        }
        lb.target_group
            .validate("load_balancer.target_group", target, p);
        validate_listeners(&lb.listeners, "load_balancer.listeners", p);
    }
}

/// Adds the problems of `listeners` (the field `field`) to `p`: ports, protocols,
/// certificates, TLS policies, default actions and rules.
pub(crate) fn validate_listeners(listeners: &[ListenerSpec], field: &str, p: &mut Problems) {
    if listeners.is_empty() {
        p.push(field, "at least one listener is required");
    }
    let mut ports = std::collections::BTreeSet::new();
    for (i, l) in listeners.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if l.port == 0 {
            p.push(format!("{f}.port"), "must be between 1 and 65535");
        } else if !ports.insert(l.port) {
            p.push(
                format!("{f}.port"),
                format!("port {} has two listeners", l.port),
            );
        }
        match (l.protocol, &l.certificate_arn) {
            (Protocol::Https, None) => {
                p.push(format!("{f}.certificate_arn"), "is required for HTTPS")
            }
            (Protocol::Https, Some(arn)) if !arn.starts_with("arn:") => p.push(
                format!("{f}.certificate_arn"),
                "must be an ACM certificate ARN",
            ),
            (Protocol::Http, Some(_)) => p.push(
                format!("{f}.certificate_arn"),
                "only HTTPS listeners take a certificate",
            ),
            _ => {}
        }
        if l.protocol == Protocol::Http && l.ssl_policy.is_some() {
            p.push(
                format!("{f}.ssl_policy"),
                "only HTTPS listeners take a TLS policy",
            );
        }
        if let Some(policy) = &l.ssl_policy {
            if !policy.starts_with("ELBSecurityPolicy-") {
                p.push(
                    format!("{f}.ssl_policy"),
                    "must be an ELBSecurityPolicy-… name",
                );
            } else if !(policy.contains("TLS13") || policy.contains("TLS-1-2")) {
                p.push(
                    format!("{f}.ssl_policy"),
                    "must allow only TLS 1.2 and later (a `TLS13` or `TLS-1-2` policy)",
                );
            }
        }
        validate_action(p, &format!("{f}.default_action"), &l.default_action, l);
        let mut priorities = std::collections::BTreeSet::new();
        for (j, r) in l.rules.iter().enumerate() {
            let rf = format!("{f}.rules[{j}]");
            if r.priority == 0 || r.priority > 50_000 {
                p.push(format!("{rf}.priority"), "must be between 1 and 50000");
            } else if !priorities.insert(r.priority) {
                p.push(
                    format!("{rf}.priority"),
                    format!("priority {} is used twice", r.priority),
                );
            }
            if r.paths.is_empty() && r.hosts.is_empty() {
                p.push(rf.clone(), "needs at least one path or host");
            }
            if r.paths.len() + r.hosts.len() > 5 {
                p.push(rf.clone(), "may have at most 5 paths and hosts together");
            }
            if r.paths.iter().any(|x| x.is_empty() || x.len() > 128) {
                p.push(format!("{rf}.paths"), "each must have 1-128 characters");
            }
            if r.hosts.iter().any(|x| x.is_empty() || x.len() > 128) {
                p.push(format!("{rf}.hosts"), "each must have 1-128 characters");
            }
            validate_action(p, &format!("{rf}.action"), &r.action, l);
        }
    }
}

impl Default for LoadBalancerSpec {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl LoadBalancerSpec {
    /// HTTPS on 443 with `certificate_arn` and the modern TLS policy, and HTTP on 80
    /// redirecting to it.
    pub fn https(certificate_arn: impl Into<String>) -> Self {
        Self::builder()
            .listeners(vec![
                ListenerSpec::https(certificate_arn),
                ListenerSpec::redirect_to_https(),
            ])
            .build()
    }
}

/// Where the load balancer writes access logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct AccessLogs {
    /// The S3 bucket (its policy must let the region's ELB account write).
    #[builder(setter(into))]
    pub bucket: String,
    /// A key prefix.
    #[builder(default, setter(into))]
    #[serde(default)]
    pub prefix: String,
}

/// The target group: ip targets (Fargate tasks) and their health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct TargetGroupSpec {
    /// The container registered (default: the first container with a port).
    #[builder(default, setter(strip_option, into))]
    pub container: Option<String>,
    /// Its port (default: the container's first port).
    #[builder(default, setter(strip_option))]
    pub port: Option<u16>,
    /// Protocol between the load balancer and the tasks (default HTTP).
    #[builder(default)]
    pub protocol: Protocol,
    /// The health check.
    #[builder(default)]
    pub health_check: HealthCheckSpec,
    /// Seconds to drain a deregistering target (0–3600, default 30 instead of AWS's 300).
    #[builder(default = 30)]
    pub deregistration_delay: u32,
    /// Load-balancer cookie stickiness for this many seconds (1–604800).
    #[builder(default, setter(strip_option))]
    pub stickiness: Option<u32>,
    /// Seconds of slow start for new targets (0 = off, or 30–900).
    #[builder(default)]
    pub slow_start: u32,
}

impl TargetGroupSpec {
    /// Adds the problems of the target group (the field `field`) to `p`; `target` is the
    /// container and port it sends traffic to.
    pub(crate) fn validate(
        &self,
        field: &str,
        target: Option<(&ContainerSpec, u16)>,
        p: &mut Problems,
    ) {
        let hc = &self.health_check;
        match (&self.container, target) {
            (_, Some((c, port))) => {
                if !c.ports.contains(&port) {
                    p.push(
                        format!("{field}.port"),
                        format!(
                            "container `{}` does not map port {port} (it maps {:?})",
                            c.name, c.ports
                        ),
                    );
                }
            }
            (Some(name), None) => p.push(
                format!("{field}.container"),
                format!("`{name}` is not a container of the task, or has no port"),
            ),
            (None, None) => p.push(
                format!("{field}.container"),
                "no container maps a port for the load balancer to send traffic to",
            ),
        }
        let hf = format!("{field}.health_check");
        if !hc.path.starts_with('/') || hc.path.len() > 1024 {
            p.push(
                format!("{hf}.path"),
                "must start with `/` and have at most 1024 characters",
            );
        }
        check_range(p, &format!("{hf}.interval"), hc.interval.into(), 5, 300);
        check_range(p, &format!("{hf}.timeout"), hc.timeout.into(), 2, 120);
        if hc.timeout >= hc.interval {
            p.push(
                format!("{hf}.timeout"),
                format!("must be less than the interval ({} s)", hc.interval),
            );
        }
        check_range(
            p,
            &format!("{hf}.healthy_threshold"),
            hc.healthy_threshold.into(),
            2,
            10,
        );
        check_range(
            p,
            &format!("{hf}.unhealthy_threshold"),
            hc.unhealthy_threshold.into(),
            2,
            10,
        );
        if !check_matcher(&hc.matcher) {
            p.push(
                format!("{hf}.matcher"),
                "must be codes 200-499: `200`, `200-299` or `200,302`",
            );
        }
        check_range(
            p,
            &format!("{field}.deregistration_delay"),
            self.deregistration_delay.into(),
            0,
            3600,
        );
        if let Some(s) = self.stickiness {
            check_range(p, &format!("{field}.stickiness"), s.into(), 1, 604_800);
        }
        if self.slow_start != 0 {
            check_range(
                p,
                &format!("{field}.slow_start"),
                self.slow_start.into(),
                30,
                900,
            );
        }
    }
}

impl Default for TargetGroupSpec {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// HTTP or HTTPS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// HTTP.
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    /// HTTPS.
    #[serde(rename = "HTTPS")]
    Https,
}

impl Protocol {
    /// The name ELB uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }
}

/// The target group's health check (fast defaults: every 10 s, healthy after 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckSpec {
    /// The path probed (starts with `/`, default `/`).
    #[builder(default = "/".to_string(), setter(into))]
    pub path: String,
    /// Seconds between probes (5–300, default 10).
    #[builder(default = 10)]
    pub interval: u32,
    /// Seconds before a probe fails (2–120, below the interval; default 5).
    #[builder(default = 5)]
    pub timeout: u32,
    /// Successes before healthy (2–10, default 2).
    #[builder(default = 2)]
    pub healthy_threshold: u32,
    /// Failures before unhealthy (2–10, default 3).
    #[builder(default = 3)]
    pub unhealthy_threshold: u32,
    /// Healthy HTTP codes: a code, a range `200-299` or a list `200,302` (200–499; default
    /// `200-399`).
    #[builder(default = "200-399".to_string(), setter(into))]
    pub matcher: String,
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// The modern TLS policy used unless a listener names another (TLS 1.3 and 1.2).
pub const DEFAULT_TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// A listener of the load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct ListenerSpec {
    /// The port (1–65535).
    pub port: u16,
    /// HTTP or HTTPS.
    #[builder(default)]
    #[serde(default)]
    pub protocol: Protocol,
    /// The ACM certificate (HTTPS only).
    #[builder(default, setter(strip_option, into))]
    #[serde(default)]
    pub certificate_arn: Option<String>,
    /// The TLS policy (HTTPS only; default [`DEFAULT_TLS_POLICY`]).
    #[builder(default, setter(strip_option, into))]
    #[serde(default)]
    pub ssl_policy: Option<String>,
    /// What requests that match no rule get (default: forwarded to the target group).
    #[builder(default)]
    #[serde(default)]
    pub default_action: ListenerAction,
    /// Path- and host-based rules, by priority.
    #[builder(default)]
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

impl ListenerSpec {
    /// HTTP on 80, forwarding to the target group.
    pub fn http() -> Self {
        Self::builder().port(80).build()
    }

    /// HTTPS on 443 with the certificate and the default TLS policy, forwarding to the target
    /// group.
    pub fn https(certificate_arn: impl Into<String>) -> Self {
        Self::builder()
            .port(443)
            .protocol(Protocol::Https)
            .certificate_arn(certificate_arn)
            .build()
    }

    /// HTTP on 80, answering with a permanent redirect to HTTPS on 443.
    pub fn redirect_to_https() -> Self {
        Self::builder()
            .port(80)
            .default_action(ListenerAction::RedirectToHttps { port: 443 })
            .build()
    }

    /// The TLS policy in effect (HTTPS only).
    pub fn effective_ssl_policy(&self) -> Option<&str> {
        (self.protocol == Protocol::Https)
            .then(|| self.ssl_policy.as_deref().unwrap_or(DEFAULT_TLS_POLICY))
    }
}

/// What a listener or rule does with a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerAction {
    /// Forward to the service's target group.
    #[default]
    Forward,
    /// Permanent (301) redirect to HTTPS on this port, keeping host, path and query.
    RedirectToHttps {
        /// The HTTPS port.
        port: u16,
    },
    /// A fixed response.
    FixedResponse {
        /// The HTTP status (2XX, 4XX or 5XX).
        status: u16,
        /// The content type (default `text/plain`).
        #[serde(default = "text_plain")]
        content_type: String,
        /// The body (at most 1024 characters).
        #[serde(default)]
        body: String,
    },
}

fn text_plain() -> String {
    "text/plain".to_string()
}

/// A listener rule: requests matching all given conditions get `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The priority (1–50000, unique per listener; lower wins).
    pub priority: u32,
    /// Path patterns, e.g. `/api/*` (any matches).
    #[builder(default)]
    #[serde(default)]
    pub paths: Vec<String>,
    /// Host headers, e.g. `api.example.com` (any matches).
    #[builder(default)]
    #[serde(default)]
    pub hosts: Vec<String>,
    /// What matching requests get.
    #[builder(default)]
    #[serde(default)]
    pub action: ListenerAction,
}

/// The Fargate service itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// Tasks to run (default 1). Only set at creation when `autoscaled`.
    #[builder(default = 1)]
    pub desired_count: u32,
    /// Autoscaling owns the desired count: a redeploy never resets it.
    #[builder(default)]
    pub autoscaled: bool,
    /// With `autoscaled`, the scaling range's lower bound, while the range is not registered
    /// yet: a live service set to run no task while this is above 0 (after an
    /// infrastructure-only first deploy) is brought to `desired_count`, as Application Auto
    /// Scaling itself does when a range is registered above the current count. Any other
    /// count is autoscaling's; once the range is registered, set it to 0 (the facade does,
    /// with [`ServiceState::keep_autoscaled_count`](crate::ServiceState::keep_autoscaled_count)).
    #[builder(default)]
    pub autoscaled_min: u32,
    /// Capacity provider strategy; empty (default) runs on the `FARGATE` launch type.
    #[builder(default)]
    pub capacity_provider_strategy: Vec<StrategyItem>,
    /// Give tasks a public IP (default false: tasks live in private subnets behind NAT).
    #[builder(default)]
    pub assign_public_ip: bool,
    /// Subnets to use instead of the network's private ones.
    #[builder(default, setter(strip_option))]
    pub subnets: Option<Vec<String>>,
    /// Seconds ELB health checks are ignored after a task starts (default 60 with a load
    /// balancer, none without).
    #[builder(default, setter(strip_option))]
    pub health_check_grace_period: Option<u32>,
    /// Minimum healthy percent during a deployment (0–100, default 100).
    #[builder(default = 100)]
    pub min_healthy_percent: u32,
    /// Maximum percent during a deployment (100–200, default 200).
    #[builder(default = 200)]
    pub max_percent: u32,
    /// Deployment circuit breaker with rollback (default on).
    #[builder(default = true)]
    pub circuit_breaker: bool,
    /// ECS Exec (adds the `ssmmessages` permissions to the task role).
    #[builder(default)]
    pub enable_execute_command: bool,
    /// Where tasks' tags come from (default: the service).
    #[builder(default)]
    pub propagate_tags: PropagateTags,
    /// ECS managed tags on tasks (default on).
    #[builder(default = true)]
    pub managed_tags: bool,
    /// A Cloud Map service to register tasks in (service discovery).
    #[builder(default, setter(strip_option, into))]
    pub service_registry_arn: Option<String>,
    /// A Cloud Map namespace for Service Connect (client mode).
    #[builder(default, setter(strip_option, into))]
    pub service_connect_namespace: Option<String>,
    /// How `apply` waits for rollouts.
    #[builder(default)]
    pub rollout: RolloutSpec,
}

impl ServiceSettings {
    /// Adds the problems of the `service` section to `p`: with a load balancer or not, in a
    /// cluster offering `offered`.
    pub(crate) fn validate(
        &self,
        load_balancer: bool,
        offered: &[CapacityProvider],
        p: &mut Problems,
    ) {
        let s = self;
        check_range(p, "service.desired_count", s.desired_count.into(), 0, 5000);
        check_range(
            p,
            "service.min_healthy_percent",
            s.min_healthy_percent.into(),
            0,
            100,
        );
        check_range(p, "service.max_percent", s.max_percent.into(), 100, 200);
        if s.max_percent == 100 && s.min_healthy_percent == 100 {
            p.push(
                "service.max_percent",
                "with min_healthy_percent 100, must be above 100 or no task can be replaced",
            );
        }
        if let Some(g) = s.health_check_grace_period {
            check_range(
                p,
                "service.health_check_grace_period",
                g.into(),
                0,
                2_147_483_647,
            );
            if !load_balancer {
                p.push(
                    "service.health_check_grace_period",
                    "only applies with a load balancer",
                );
            }
        }
        validate_strategy(
            p,
            "service.capacity_provider_strategy",
            &s.capacity_provider_strategy,
            offered,
        );
        if let Some(subnets) = &s.subnets {
            if subnets.is_empty()
                || subnets.len() > 16
                || subnets.iter().any(|x| !x.starts_with("subnet-"))
            {
                p.push("service.subnets", "must list 1-16 subnet ids (subnet-…)");
            }
        }
        for (field, arn) in [
            ("service.service_registry_arn", &s.service_registry_arn),
            (
                "service.service_connect_namespace",
                &s.service_connect_namespace,
            ),
        ] {
            if arn.as_deref().is_some_and(|a| !a.starts_with("arn:")) {
                p.push(field, "must be an ARN");
            }
        }
        if s.rollout.timeout < 60 || s.rollout.timeout > 6 * 3600 {
            p.push(
                "service.rollout.timeout",
                "must be between 60 and 21600 seconds",
            );
        }
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Where tasks' tags come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PropagateTags {
    /// From the service.
    #[default]
    #[serde(rename = "SERVICE")]
    Service,
    /// From the task definition.
    #[serde(rename = "TASK_DEFINITION")]
    TaskDefinition,
    /// Not propagated.
    #[serde(rename = "NONE")]
    None,
}

impl PropagateTags {
    /// The name ECS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PropagateTags::Service => "SERVICE",
            PropagateTags::TaskDefinition => "TASK_DEFINITION",
            PropagateTags::None => "NONE",
        }
    }
}

/// How `apply` waits for a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypedBuilder)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSpec {
    /// Wait for the deployment to complete (default true). When false, `apply` returns once
    /// the update is accepted.
    #[builder(default = true)]
    pub wait: bool,
    /// The longest wait, in seconds (default 900).
    #[builder(default = 900)]
    pub timeout: u64,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Valid Fargate memory sizes (MiB) for a CPU size, from the Fargate table.
pub fn fargate_memory_options(cpu: u32) -> Vec<u32> {
    let range = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect();
    match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => Vec::new(),
    }
}

/// Whether `arn` is a well-formed Secrets Manager secret or SSM parameter ARN.
pub fn is_secret_arn(arn: &str) -> bool {
    SecretRef::parse(arn).is_some()
}

/// Where a container secret comes from, as its ARN names it.
///
/// ```
/// use ecs_service::SecretRef;
/// let s = SecretRef::parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf:password::").unwrap();
/// assert!(matches!(&s, SecretRef::Secret { arn, name, suffix, .. }
///     if arn.ends_with(":secret:shop/db-AbCdEf") && name == "shop/db" && suffix == ":password::"));
/// let p = SecretRef::parse("arn:aws:ssm:us-east-1:123456789012:parameter/shop/api-key").unwrap();
/// assert!(matches!(&p, SecretRef::Parameter { names, .. } if names == &["/shop/api-key"]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretRef {
    /// An SSM parameter.
    Parameter {
        /// The names the ARN may stand for: `/a/b` for `parameter/a/b`; both `a` and `/a`
        /// for `parameter/a` (SSM gives the two names one ARN).
        names: Vec<String>,
        /// Its region.
        region: String,
        /// Its account.
        account: String,
    },
    /// A Secrets Manager secret.
    Secret {
        /// The secret's ARN, without a JSON key, version stage or version id.
        arn: String,
        /// The secret's name, without the six characters AWS adds to its ARN (when the ARN
        /// has them).
        name: String,
        /// What followed the secret's ARN (`:json-key:version-stage:version-id`), or empty.
        suffix: String,
        /// Its region.
        region: String,
        /// Its account.
        account: String,
    },
}

impl SecretRef {
    /// The secret `arn` names, or `None` for an ARN that is neither a Secrets Manager secret's
    /// nor an SSM parameter's (with a region and a 12-digit account).
    pub fn parse(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") {
            return None;
        }
        let (service, region, account, resource) = (parts[2], parts[3], parts[4], parts[5]);
        let region_ok = !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
        if !region_ok || !account_ok {
            return None;
        }
        let (region, account) = (region.to_string(), account.to_string());
        match service {
            "secretsmanager" => {
                let rest = resource.strip_prefix("secret:").filter(|r| !r.is_empty())?;
                let (full, suffix) = match rest.find(':') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, ""),
                };
                let name = match full.rsplit_once('-') {
                    Some((name, random)) if random.len() == 6 && !name.is_empty() => name,
                    _ => full,
                };
                Some(SecretRef::Secret {
                    arn: arn[..arn.len() - suffix.len()].to_string(),
                    name: name.to_string(),
                    suffix: suffix.to_string(),
                    region,
                    account,
                })
            }
            "ssm" => {
                let name = resource
                    .strip_prefix("parameter/")
                    .filter(|r| !r.is_empty())?;
                let names = if name.contains('/') {
                    vec![format!("/{name}")]
                } else {
                    vec![name.to_string(), format!("/{name}")]
                };
                Some(SecretRef::Parameter {
                    names,
                    region,
                    account,
                })
            }
            _ => None,
        }
    }
}

fn is_ecs_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_range(p: &mut Problems, field: &str, value: u64, min: u64, max: u64) {
    if value < min || value > max {
        p.push(
            field,
            format!("must be between {min} and {max} (got {value})"),
        );
    }
}

fn check_matcher(matcher: &str) -> bool {
    let code_ok = |c: &str| c.parse::<u32>().is_ok_and(|n| (200..=499).contains(&n));
    !matcher.is_empty()
        && matcher.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => {
                code_ok(a) && code_ok(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok()
            }
            None => code_ok(part),
        })
}

impl ServiceSpec {
    /// Whether a load balancer sends the service requests: its own, or (a service of an
    /// environment with routes) the environment's.
    pub fn has_load_balancer(&self) -> bool {
        self.load_balancer.is_some()
            || self
                .environment
                .as_ref()
                .is_some_and(|e| !e.routes.is_empty())
    }

    /// The container the load balancer sends traffic to and its port, when there is a load
    /// balancer and the spec names a valid one.
    pub fn target(&self) -> Option<(&ContainerSpec, u16)> {
        let tg = match (&self.load_balancer, &self.environment) {
            (Some(lb), _) => &lb.target_group,
            (None, Some(e)) if !e.routes.is_empty() => &e.target_group,
            _ => return None,
        };
        let container = match &tg.container {
            Some(name) => self.task.containers.iter().find(|c| &c.name == name)?,
            None => self.task.containers.iter().find(|c| !c.ports.is_empty())?,
        };
        let port = tg.port.or_else(|| container.ports.first().copied())?;
        Some((container, port))
    }

    /// Checks every field; returns every problem at once, each naming its field.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::new();
        if self.name.is_empty()
            || self.name.len() > 32
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || self.name.starts_with('-')
            || self.name.ends_with('-')
        {
            p.push(
                "name",
                "must be 1-32 lower-case letters, digits and inner hyphens",
            );
        }
        if let Some(r) = &self.repository {
            r.validate(&mut p);
        }
        self.iam.validate(&mut p);
        self.cluster.validate(&mut p);
        self.task.validate(&mut p);
        if self.service.enable_execute_command {
            // ECS Exec's agent writes under these: a read-only root filesystem needs
            // writable volumes there.
            const AGENT: [&str; 2] = ["/var/lib/amazon/ssm", "/var/log/amazon/ssm"];
            for c in &self.task.containers {
                let writable = |dir: &str| {
                    c.mount_points
                        .iter()
                        .any(|m| !m.read_only && dir.starts_with(m.path.trim_end_matches('/')))
                };
                if c.readonly_root_filesystem && !AGENT.iter().all(|d| writable(d)) {
                    p.push(
                        "service.enable_execute_command",
                        format!(
                            "container `{}` has a read-only root filesystem, but ECS Exec's agent writes to {} and {}: mount writable volumes there, or turn exec off",
                            c.name, AGENT[0], AGENT[1]
                        ),
                    );
                }
            }
        }
        if let Some(lb) = &self.load_balancer {
            lb.validate(self.target(), &mut p);
        }
        if let Some(e) = &self.environment {
            if let Err(problem) = StackName::new(e.environment.clone()) {
                p.push("environment.environment", problem.message);
            }
            if self.load_balancer.is_some() {
                p.push(
                    "load_balancer",
                    "a service of an environment takes requests through the environment's load balancer: give it `environment.routes` instead",
                );
            }
            for (i, r) in e.routes.iter().enumerate() {
                p.extend(r.validate(&format!("environment.routes[{i}]")));
            }
            if !e.routes.is_empty() {
                e.target_group
                    .validate("environment.target_group", self.target(), &mut p);
            }
        }
        self.service.validate(
            self.load_balancer.is_some()
                || self
                    .environment
                    .as_ref()
                    .is_some_and(|e| !e.routes.is_empty()),
            &self.cluster.capacity_providers,
            &mut p,
        );
        if let Some(g) = &self.log_group {
            if g.is_empty()
                || g.len() > 512
                || !g
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
            {
                p.push(
                    "log_group",
                    "must be 1-512 characters: letters, digits, `_-/.#`",
                );
            }
        }
        p.into_result()
    }
}

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn describe_options(options: &[u32]) -> String {
    match options {
        [a, b, c] if options.len() == 3 => format!("{a}, {b} or {c}"),
        _ => format!(
            "{}–{} in steps of {}",
            options[0],
            options[options.len() - 1],
            options[1] - options[0]
        ),
    }
}

fn validate_strategy(
    p: &mut Problems,
    field: &str,
    items: &[StrategyItem],
    offered: &[CapacityProvider],
) {
    if items.is_empty() {
        return;
    }
    if items.len() > 6 {
        p.push(field, "may have at most 6 items");
    }
    if items.iter().filter(|i| i.base > 0).count() > 1 {
        p.push(field, "only one item may have a base");
    }
    if items.iter().all(|i| i.weight == 0) {
        p.push(field, "at least one item needs a weight above 0");
    }
    for (i, item) in items.iter().enumerate() {
        check_range(
            p,
            &format!("{field}[{i}].weight"),
            item.weight.into(),
            0,
            1000,
        );
        check_range(
            p,
            &format!("{field}[{i}].base"),
            item.base.into(),
            0,
            100_000,
        );
        if !offered.contains(&item.provider) {
            p.push(
                format!("{field}[{i}].provider"),
                format!("{} is not one of cluster.capacity_providers", item.provider),
            );
        }
    }
}

fn validate_action(
    p: &mut Problems,
    field: &str,
    action: &ListenerAction,
    listener: &ListenerSpec,
) {
    match action {
        ListenerAction::Forward => {}
        ListenerAction::RedirectToHttps { port } => {
            if *port == 0 {
                p.push(format!("{field}.port"), "must be between 1 and 65535");
            }
            if listener.protocol == Protocol::Https && *port == listener.port {
                p.push(field, "redirects the HTTPS listener to itself");
            }
        }
        ListenerAction::FixedResponse {
            status,
            content_type,
            body,
        } => {
            if !matches!(status / 100, 2 | 4 | 5) {
                p.push(format!("{field}.status"), "must be a 2XX, 4XX or 5XX code");
            }
            if ![
                "text/plain",
                "text/css",
                "text/html",
                "application/javascript",
                "application/json",
            ]
            .contains(&content_type.as_str())
            {
                p.push(format!("{field}.content_type"), "must be text/plain, text/css, text/html, application/javascript or application/json");
            }
            if body.len() > 1024 {
                p.push(format!("{field}.body"), "must have at most 1024 characters");
            }
        }
    }
}

/// Whether `image` has the form of an image reference: not empty, no spaces, at most 255.
pub(crate) fn valid_image(image: &str) -> bool {
    !image.trim().is_empty() && image.len() <= 255 && !image.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn container() -> ContainerSpec {
        ContainerSpec::builder()
            .name("web")
            .image("nginx:1.27")
            .ports(vec![8080])
            .build()
    }

    fn spec() -> ServiceSpec {
        ServiceSpec::builder()
            .task(TaskSpec::builder().containers(vec![container()]).build())
            .load_balancer(LoadBalancerSpec::default())
            .build()
    }

    #[test]
    fn defaults_are_valid_and_secure() {
        let s = spec();
        s.validate().unwrap();
        let repo = s.repository.as_ref().unwrap();
        assert!(repo.immutable_tags && repo.scan_on_push);
        assert!(!s.service.assign_public_ip);
        assert!(s.service.circuit_breaker);
        let lb = s.load_balancer.as_ref().unwrap();
        assert_eq!(lb.target_group.deregistration_delay, 30);
        assert_eq!(lb.target_group.health_check.healthy_threshold, 2);
        assert_eq!(
            s.target().map(|(c, p)| (c.name.as_str(), p)),
            Some(("web", 8080))
        );
        let https = LoadBalancerSpec::https("arn:aws:acm:us-east-1:123456789012:certificate/x");
        assert_eq!(
            https.listeners[0].effective_ssl_policy(),
            Some(DEFAULT_TLS_POLICY)
        );
        assert_eq!(
            https.listeners[1].default_action,
            ListenerAction::RedirectToHttps { port: 443 }
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut s = spec();
        s.task.cpu = 512;
        s.task.memory = 512;
        s.task.containers[0]
            .secrets
            .insert("DB".into(), "not-an-arn".into());
        s.task.containers[0]
            .environment
            .0
            .insert("1BAD".into(), "x".into());
        let lb = s.load_balancer.as_mut().unwrap();
        lb.target_group.health_check.timeout = 20;
        lb.target_group.health_check.matcher = "600".into();
        lb.listeners.push(
            ListenerSpec::builder()
                .port(80)
                .protocol(Protocol::Https)
                .build(),
        );
        s.service.capacity_provider_strategy = vec![StrategyItem::spot()];
        s.cluster.capacity_providers = vec![CapacityProvider::Fargate];
        s.cluster.default_strategy = vec![];
        let problems = s.validate().unwrap_err();
        for field in [
            "task.memory",
            "task.containers[0].secrets.DB",
            "task.containers[0].environment.1BAD",
            "load_balancer.target_group.health_check.timeout",
            "load_balancer.target_group.health_check.matcher",
            "load_balancer.listeners[1].port",
            "load_balancer.listeners[1].certificate_arn",
            "service.capacity_provider_strategy[0].provider",
        ] {
            assert!(problems.mentions(field), "{field} missing from {problems}");
        }
        assert!(
            problems.to_string().contains("1024–4096 in steps of 1024"),
            "{problems}"
        );
    }

    #[test]
    fn target_container_must_map_the_port() {
        let mut s = spec();
        s.load_balancer.as_mut().unwrap().target_group.port = Some(9000);
        assert!(s
            .validate()
            .unwrap_err()
            .mentions("load_balancer.target_group.port"));
        let mut s = spec();
        s.task.containers[0].ports.clear();
        assert!(s
            .validate()
            .unwrap_err()
            .mentions("load_balancer.target_group.container"));
    }

    #[test]
    fn secret_arns() {
        assert!(is_secret_arn(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
        ));
        assert!(is_secret_arn(
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/db"
        ));
        assert!(is_secret_arn(
            "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/x"
        ));
        assert!(!is_secret_arn(
            "arn:aws:secretsmanager:eu-west-1:1234:secret:db"
        ));
        assert!(!is_secret_arn("arn:aws:s3:::bucket"));
        assert!(!is_secret_arn("db-password"));
    }

    #[test]
    fn environment_values_are_redacted_when_serialized() {
        let env: Environment = [("API_KEY", "sentinel-value-123")].into_iter().collect();
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(json, r#"{"API_KEY":"(redacted)"}"#);
    }

    #[test]
    fn environment_values_are_redacted_in_debug() {
        let env: Environment = [("API_KEY", "sentinel-value-123")].into_iter().collect();
        let c = ContainerSpec::builder()
            .name("a")
            .image("b")
            .environment(env)
            .build();
        let debug = format!("{c:?}");
        assert!(
            debug.contains("API_KEY") && !debug.contains("sentinel-value-123"),
            "{debug}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<ServiceSpec>(
            r#"{"task": {"containers": [{"name": "a", "image": "b", "prots": [80]}]}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("prots"), "{err}");
        let ok: ServiceSpec = serde_json::from_str(
            r#"{"task": {"containers": [{"name": "a", "image": "b", "ports": [80]}]}, "load_balancer": {}}"#,
        )
        .unwrap();
        assert_eq!(
            ok.load_balancer.unwrap().listeners,
            vec![ListenerSpec::http()]
        );
    }

    proptest! {
        #[test]
        fn fargate_pairs_match_the_table(cpu in prop::sample::select(vec![128u32, 256, 512, 1024, 2048, 4096, 8192, 16384, 3000]), mem in 0u32..130_000) {
            let mut s = spec();
            s.task.cpu = cpu;
            s.task.memory = mem;
            let valid = match cpu {
                256 => [512, 1024, 2048].contains(&mem),
                512 => mem % 1024 == 0 && (1024..=4096).contains(&mem),
                1024 => mem % 1024 == 0 && (2048..=8192).contains(&mem),
                2048 => mem % 1024 == 0 && (4096..=16384).contains(&mem),
                4096 => mem % 1024 == 0 && (8192..=30720).contains(&mem),
                8192 => mem % 4096 == 0 && (16384..=61440).contains(&mem),
                16384 => mem % 8192 == 0 && (32768..=122880).contains(&mem),
                _ => false,
            };
            prop_assert_eq!(s.validate().is_ok(), valid);
        }

        #[test]
        fn health_check_rules(interval in 0u32..400, timeout in 0u32..200, healthy in 0u32..12, matcher in "[0-9,-]{0,9}") {
            let mut s = spec();
            let hc = &mut s.load_balancer.as_mut().unwrap().target_group.health_check;
            hc.interval = interval;
            hc.timeout = timeout;
            hc.healthy_threshold = healthy;
            hc.matcher = matcher.clone();
            let valid = (5..=300).contains(&interval)
                && (2..=120).contains(&timeout)
                && timeout < interval
                && (2..=10).contains(&healthy)
                && check_matcher(&matcher);
            prop_assert_eq!(s.validate().is_ok(), valid);
        }
    }
}
