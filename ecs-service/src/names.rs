//! The deterministic names of the service layer's resources, and small helpers shared by the
//! resource modules.

use ecs_core::{Context, NameKind, StackName};
use serde::Serialize;

use crate::spec::{default_log_group, ServiceSpec};
use crate::Error;

/// The names of a stack's service-layer resources: deterministic, within AWS limits (see
/// [`StackName::name`]), so every run finds what an earlier run created.
///
/// ```
/// use ecs_service::{ContainerSpec, ServiceNames, ServiceSpec, TaskSpec};
/// let stack = ecs_core::StackName::new("shop").unwrap();
/// let spec = ServiceSpec::builder()
///     .task(TaskSpec::builder().containers(vec![ContainerSpec::builder().name("web").image("nginx").build()]).build())
///     .build();
/// let names = ServiceNames::new(&stack, &spec);
/// assert_eq!(names.service, "shop-app");
/// assert_eq!(names.cluster, "shop");
/// assert_eq!(names.log_group, "/ecs/shop");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServiceNames {
    /// The ECR repository.
    pub repository: String,
    /// The task execution role (pulls images, reads secrets, writes logs).
    pub execution_role: String,
    /// The task role (what the application may do).
    pub task_role: String,
    /// The ECS cluster.
    pub cluster: String,
    /// The task definition family.
    pub family: String,
    /// The ECS service.
    pub service: String,
    /// The application load balancer.
    pub load_balancer: String,
    /// The target group.
    pub target_group: String,
    /// The log group the containers log to.
    pub log_group: String,
}

impl ServiceNames {
    /// The names for `spec` in `stack`. A service of an environment (`spec.environment`)
    /// names its own resources after its stack alone (`shop-api`, `shop-api-execution`, …)
    /// and uses the environment's cluster and load balancer.
    ///
    /// ```
    /// use ecs_service::{ContainerSpec, EnvironmentPlacement, ServiceNames, ServiceSpec, TaskSpec};
    /// let stack = ecs_core::StackName::new("shop-api").unwrap();
    /// let spec = ServiceSpec::builder()
    ///     .task(TaskSpec::builder().containers(vec![ContainerSpec::builder().name("api").image("nginx").build()]).build())
    ///     .environment(EnvironmentPlacement::builder().environment("shop").build())
    ///     .build();
    /// let names = ServiceNames::new(&stack, &spec);
    /// assert_eq!((names.service.as_str(), names.target_group.as_str()), ("shop-api", "shop-api"));
    /// assert_eq!((names.cluster.as_str(), names.load_balancer.as_str()), ("shop", "shop-alb"));
    /// assert_eq!(names.task_role, "shop-api-task");
    /// ```
    pub fn new(stack: &StackName, spec: &ServiceSpec) -> Self {
        if let Some(placement) = &spec.environment {
            // An invalid environment name is refused by validation; names only need to be
            // deterministic meanwhile.
            let env =
                StackName::new(placement.environment.clone()).unwrap_or_else(|_| stack.clone());
            let shared = crate::environment::EnvironmentNames::new(&env);
            return Self {
                repository: stack.name(NameKind::Repository, ""),
                execution_role: stack.name(NameKind::Role, "execution"),
                task_role: stack.name(NameKind::Role, "task"),
                cluster: shared.cluster,
                family: stack.name(NameKind::TaskFamily, ""),
                service: stack.name(NameKind::Service, ""),
                load_balancer: match placement.internal {
                    true => shared.internal_load_balancer,
                    false => shared.load_balancer,
                },
                target_group: stack.name(NameKind::TargetGroup, ""),
                log_group: spec
                    .log_group
                    .clone()
                    .unwrap_or_else(|| default_log_group(stack)),
            };
        }
        Self {
            repository: stack.name(NameKind::Repository, &spec.name),
            execution_role: stack.name(NameKind::Role, "execution"),
            task_role: stack.name(NameKind::Role, "task"),
            cluster: stack.name(NameKind::Cluster, ""),
            family: stack.name(NameKind::TaskFamily, &spec.name),
            service: stack.name(NameKind::Service, &spec.name),
            load_balancer: stack.name(NameKind::LoadBalancer, "alb"),
            target_group: stack.name(NameKind::TargetGroup, &spec.name),
            log_group: spec
                .log_group
                .clone()
                .unwrap_or_else(|| default_log_group(stack)),
        }
    }
}

/// The error for a named resource that exists without the stack's tag.
pub(crate) fn conflict(ctx: &Context, kind: &'static str, name: &str) -> Error {
    Error::Foreign(ecs_core::resource::Foreign::untagged(ctx, kind, name))
}

/// Decodes the URL-encoded policy documents IAM returns (plain JSON is returned unchanged).
pub(crate) fn url_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub(crate) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(url_decode("{\"a\":1}"), "{\"a\":1}");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%41"), "%zzA");
    }
}
