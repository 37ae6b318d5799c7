//! Pre-flight: what a stack refers to but does not make, checked before any change.
//!
//! A deploy that would fail half-way on a missing certificate or secret is refused before
//! its first mutating call instead. Every check is a read that never returns a secret's
//! value, and all of them run at once, alongside the plan's own reads:
//!
//! - each HTTPS listener's ACM certificate exists in the stack's region and is `ISSUED`
//!   (`DescribeCertificate`);
//! - each container secret exists: a Secrets Manager secret (`DescribeSecret`, feature
//!   `secrets-manager`) or an SSM parameter (`DescribeParameters` filtered on its name);
//! - each alarm-action SNS topic exists (`GetTopicAttributes`, feature `sns`);
//! - each container image in an ECR registry exists (`DescribeImages`); when it names the
//!   stack's own repository and the repository does not exist yet, the message says how
//!   to make the stack without tasks first (see [`Deployer::infrastructure_only`]);
//! - an existing VPC's subnets exist and span two zones (the network layer's plan).
//!
//! A check the caller may not make (`AccessDenied` and the like) is a warning, not a
//! failure; so is a check of a secret, parameter, topic or image in another region (a
//! certificate must be in the stack's region: one elsewhere fails), of a certificate that is
//! not ACM's, and a check that needs a feature this build of the library does not have. A
//! malformed reference (`InvalidArnException`, `ValidationException`…) fails its check.
//!
//! [`Deployer::infrastructure_only`]: crate::Deployer::infrastructure_only

use std::fmt;

use ecs_core::{AwsError, Context};
use ecs_service::{EcrImage, ImageLookup, SecretRef, ServiceNames};
use serde::Serialize;

use crate::{Error, Result, Stack};

/// The clients the checks use (each built from the same configuration as the layers').
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PreflightClients {
    /// ACM: certificates.
    pub acm: aws_sdk_acm::Client,
    /// SSM Parameter Store: parameters named as secrets.
    pub ssm: aws_sdk_ssm::Client,
    /// ECR: images.
    pub ecr: aws_sdk_ecr::Client,
    /// Secrets Manager: secrets.
    #[cfg(feature = "secrets-manager")]
    pub secrets_manager: aws_sdk_secretsmanager::Client,
    /// SNS: alarm actions.
    #[cfg(feature = "sns")]
    pub sns: aws_sdk_sns::Client,
}

impl PreflightClients {
    /// Clients built from one SDK configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            acm: aws_sdk_acm::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            ecr: aws_sdk_ecr::Client::new(config),
            #[cfg(feature = "secrets-manager")]
            secrets_manager: aws_sdk_secretsmanager::Client::new(config),
            #[cfg(feature = "sns")]
            sns: aws_sdk_sns::Client::new(config),
        }
    }
}

/// The pre-flight checks of a stack (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Preflight {
    clients: Option<PreflightClients>,
}

impl Preflight {
    /// Checks through clients built from one SDK configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self::from_clients(PreflightClients::new(config))
    }

    /// Checks through these clients.
    pub fn from_clients(clients: PreflightClients) -> Self {
        Self {
            clients: Some(clients),
        }
    }

    /// No checks at all: for layers over fakes that model none of these services (the
    /// [`FakeAws`](crate::testing::FakeAws) account, the benchmark).
    pub fn off() -> Self {
        Self { clients: None }
    }

    /// Runs every check of `stack` at once. `with_images`: whether container images are
    /// checked (an infrastructure-only deploy starts no task, so its images need not exist
    /// yet). Fails only when a check could not be made for a reason other than a missing
    /// permission (a refused connection, say).
    pub async fn run(
        &self,
        ctx: &Context,
        stack: &Stack,
        with_images: bool,
    ) -> Result<Verification> {
        let Some(c) = &self.clients else {
            return Ok(Verification::default());
        };
        let region = ecs_core::region_or_default(c.ecr.config().region());
        let spec = stack.service_spec();
        let names = ServiceNames::new(ctx.stack(), &spec);
        let mut checks: Vec<futures_util::future::BoxFuture<'_, Result<Check>>> = Vec::new();
        if let Some(lb) = &spec.load_balancer {
            for (i, l) in lb.listeners.iter().enumerate() {
                if let Some(arn) = &l.certificate_arn {
                    let field = format!("service.load_balancer.listeners[{i}].certificate_arn");
                    checks.push(Box::pin(certificate(ctx, c, &region, field, arn)));
                }
            }
        }
        for (i, container) in spec.task.containers.iter().enumerate() {
            for (name, arn) in &container.secrets {
                let field = format!("service.task.containers[{i}].secrets.{name}");
                checks.push(Box::pin(secret(ctx, c, &region, field, arn)));
            }
            if with_images {
                if let Some(image) = EcrImage::parse(&container.image) {
                    let field = format!("service.task.containers[{i}].image");
                    let own = Some(names.repository.clone());
                    checks.push(Box::pin(ecr_image(ctx, c, &region, field, image, own)));
                }
            }
        }
        for arn in stack.observe.topics() {
            let field = match stack.observe.alarm_actions.iter().position(|a| a == arn) {
                Some(i) => format!("observe.alarm_actions[{i}]"),
                None => "observe.ok_actions".to_string(),
            };
            checks.push(Box::pin(topic(ctx, c, &region, field, arn)));
        }
        let checks = futures_util::future::try_join_all(checks).await?;
        for check in &checks {
            if let Outcome::Warning { reason } = &check.outcome {
                ctx.emit(ecs_core::Event::Progress {
                    resource: format!("pre-flight {}", check.subject),
                    message: format!("warning: {reason}"),
                });
            }
        }
        Ok(Verification { checks })
    }
}

impl Preflight {
    /// The check of one image (an image-only release's): `None` when it is in no ECR
    /// registry, or without clients.
    pub(crate) async fn image(
        &self,
        ctx: &Context,
        field: &str,
        image: &str,
    ) -> Result<Option<Check>> {
        let (Some(c), Some(parsed)) = (&self.clients, EcrImage::parse(image)) else {
            return Ok(None);
        };
        let region = ecs_core::region_or_default(c.ecr.config().region());
        // A release's service exists: a missing repository gets no first-deploy advice.
        let check = ecr_image(ctx, c, &region, field.to_string(), parsed, None).await?;
        Ok(Some(check))
    }
}

/// What the pre-flight checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// Every check made, in the stack's order.
    pub checks: Vec<Check>,
}

impl Verification {
    /// The checks that failed: a deploy would fail on them.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
    }

    /// The checks that could not be made (no permission, another region, a feature this
    /// build lacks).
    pub fn warnings(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Warning { .. }))
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// `Err(Error::Preflight)` when a check failed.
    pub fn into_result(self, stack: &str) -> Result<Verification> {
        if self.passed() {
            Ok(self)
        } else {
            Err(Error::Preflight {
                stack: stack.to_string(),
                failures: self.failures().cloned().collect(),
            })
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

/// One pre-flight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// The stack's field that names the subject (e.g.
    /// `service.load_balancer.listeners[0].certificate_arn`).
    pub field: String,
    /// What was checked, e.g. `certificate arn:aws:acm:…`.
    pub subject: String,
    /// What the check found.
    pub outcome: Outcome,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Passed => write!(f, "ok       {} ({})", self.subject, self.field),
            Outcome::Warning { reason } => {
                write!(f, "warning  {} ({}): {reason}", self.subject, self.field)
            }
            Outcome::Failed { reason } => {
                write!(f, "failed   {} ({}): {reason}", self.subject, self.field)
            }
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// It exists as the stack needs it.
    Passed,
    /// It could not be checked.
    Warning {
        /// Why.
        reason: String,
    },
    /// A deploy would fail on it.
    Failed {
        /// What is wrong and what to do.
        reason: String,
    },
}

/// Part `n` of an ARN (`arn:partition:service:region:account:resource`).
fn arn_part(arn: &str, n: usize) -> Option<&str> {
    arn.splitn(6, ':').nth(n)
}

/// Errors that mean "you may not look", not "it is not there".
fn is_denied(e: &AwsError) -> bool {
    [
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
    ]
    .iter()
    .any(|c| e.is_code(c))
}

fn check(field: String, subject: String, outcome: Outcome) -> Check {
    Check {
        field,
        subject,
        outcome,
    }
}

fn failed(reason: impl Into<String>) -> Outcome {
    Outcome::Failed {
        reason: reason.into(),
    }
}

fn warning(reason: impl Into<String>) -> Outcome {
    Outcome::Warning {
        reason: reason.into(),
    }
}

/// The outcome of a call that failed: a warning when it was not allowed, a failure when the
/// reference itself is malformed, else the error.
fn denied_or(e: AwsError) -> Result<Outcome> {
    if is_denied(&e) {
        Ok(warning(format!(
            "not checked: {} is not allowed ({})",
            e.operation(),
            e.code().unwrap_or_default()
        )))
    } else if [
        "InvalidArnException",
        "InvalidFilterValue",
        "InvalidFilterKey",
        "InvalidFilterOption",
        "InvalidParameterException",
        "InvalidParameter",
        "ValidationException",
    ]
    .iter()
    .any(|c| e.is_code(c))
    {
        Ok(failed(format!("is not valid: {}", e.message())))
    } else {
        Err(Error::Aws(Box::new(e)))
    }
}

fn elsewhere(what: &str, region: &str, theirs: &str) -> Outcome {
    warning(format!(
        "not checked: the {what} is in {theirs}, the stack in {region}"
    ))
}

async fn certificate(
    ctx: &Context,
    c: &PreflightClients,
    region: &str,
    field: String,
    arn: &str,
) -> Result<Check> {
    let subject = format!("certificate {arn}");
    if arn_part(arn, 2) != Some("acm") {
        // An IAM server certificate, say: a load balancer takes those too.
        let outcome = warning("not an ACM certificate: not checked");
        return Ok(check(field, subject, outcome));
    }
    let theirs = arn_part(arn, 3).unwrap_or_default();
    if theirs != region {
        // A load balancer takes only certificates of its own region.
        let why = format!(
            "is in {theirs}, but the load balancer is in {region}: request or import the certificate in {region}"
        );
        return Ok(check(field, subject, failed(why)));
    }
    let outcome = match ctx
        .call("DescribeCertificate", &subject, || {
            c.acm.describe_certificate().certificate_arn(arn).send()
        })
        .await
    {
        Ok(out) => {
            let status = out
                .certificate()
                .and_then(|c| c.status())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if status == "ISSUED" {
                Outcome::Passed
            } else if status == "PENDING_VALIDATION" {
                failed("is PENDING_VALIDATION, not ISSUED: complete its DNS validation first")
            } else {
                failed(format!("is {status}, not ISSUED"))
            }
        }
        Err(e) if e.is_code("ResourceNotFoundException") => {
            failed(format!("does not exist in {region}"))
        }
        Err(e) => denied_or(e)?,
    };
    Ok(check(field, subject, outcome))
}

async fn secret(
    ctx: &Context,
    c: &PreflightClients,
    region: &str,
    field: String,
    arn: &str,
) -> Result<Check> {
    let outcome_of = |subject: String, outcome: Outcome| Ok(check(field.clone(), subject, outcome));
    match SecretRef::parse(arn) {
        Some(SecretRef::Parameter {
            names,
            region: theirs,
            ..
        }) => {
            let shown = names.last().cloned().unwrap_or_default();
            let subject = format!("ssm-parameter {shown}");
            if theirs != region {
                return outcome_of(subject, elsewhere("parameter", region, &theirs));
            }
            let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .set_values(Some(names.clone()))
                .build()
                .expect("key is set");
            // The caller's own parameters; then those shared with it (another account's, which
            // go by their ARN).
            let mut with_arn = names.clone();
            with_arn.push(arn.to_string());
            let shared_filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .set_values(Some(with_arn))
                .build()
                .expect("key is set");
            let find = |shared: bool| {
                let f = if shared { &shared_filter } else { &filter };
                ctx.call("DescribeParameters", &subject, move || {
                    c.ssm
                        .describe_parameters()
                        .parameter_filters(f.clone())
                        .set_shared(shared.then_some(true))
                        .send()
                })
            };
            let found = match find(false).await {
                Ok(out) if out.parameters().is_empty() => find(true).await,
                other => other,
            };
            let outcome = match found {
                Ok(out) if !out.parameters().is_empty() => Outcome::Passed,
                Ok(_) => failed(format!(
                    "no parameter `{shown}` in {region}, of this account or shared with it"
                )),
                Err(e) => denied_or(e)?,
            };
            outcome_of(subject, outcome)
        }
        Some(SecretRef::Secret {
            arn: secret_arn,
            region: theirs,
            ..
        }) => {
            let subject = format!("secret {secret_arn}");
            if theirs != region {
                return outcome_of(subject, elsewhere("secret", region, &theirs));
            }
            let outcome = secrets_manager(ctx, c, &subject, &secret_arn).await?;
            outcome_of(subject, outcome)
        }
        // Validation refuses any other ARN before the pre-flight.
        _ => outcome_of(
            format!("secret {arn}"),
            failed("is not a secret or SSM parameter ARN"),
        ),
    }
}

#[cfg(feature = "secrets-manager")]
async fn secrets_manager(
    ctx: &Context,
    c: &PreflightClients,
    subject: &str,
    arn: &str,
) -> Result<Outcome> {
    match ctx
        .call("DescribeSecret", subject, || {
            c.secrets_manager.describe_secret().secret_id(arn).send()
        })
        .await
    {
        Ok(out) if out.deleted_date().is_some() => Ok(failed(
            "is scheduled for deletion: restore it (RestoreSecret) or name another",
        )),
        Ok(_) => Ok(Outcome::Passed),
        Err(e) if e.is_code("ResourceNotFoundException") => Ok(failed("does not exist")),
        Err(e) => denied_or(e),
    }
}

#[cfg(not(feature = "secrets-manager"))]
async fn secrets_manager(_: &Context, _: &PreflightClients, _: &str, _: &str) -> Result<Outcome> {
    Ok(warning(
        "not checked: ecs-facade was built without its `secrets-manager` feature",
    ))
}

#[cfg(feature = "sns")]
async fn topic(
    ctx: &Context,
    c: &PreflightClients,
    region: &str,
    field: String,
    arn: &str,
) -> Result<Check> {
    let subject = format!("sns-topic {arn}");
    let theirs = arn_part(arn, 3).unwrap_or_default();
    let outcome = if theirs != region {
        elsewhere("topic", region, theirs)
    } else {
        match ctx
            .call("GetTopicAttributes", &subject, || {
                c.sns.get_topic_attributes().topic_arn(arn).send()
            })
            .await
        {
            Ok(_) => Outcome::Passed,
            Err(e) if e.is_code("NotFound") || e.is_code("NotFoundException") => {
                failed(format!("does not exist in {region}"))
            }
            Err(e) => denied_or(e)?,
        }
    };
    Ok(check(field, subject, outcome))
}

#[cfg(not(feature = "sns"))]
async fn topic(
    _: &Context,
    _: &PreflightClients,
    _: &str,
    field: String,
    arn: &str,
) -> Result<Check> {
    Ok(check(
        field,
        format!("sns-topic {arn}"),
        warning("not checked: ecs-facade was built without its `sns` feature"),
    ))
}

async fn ecr_image(
    ctx: &Context,
    c: &PreflightClients,
    region: &str,
    field: String,
    image: EcrImage,
    own_repository: Option<String>,
) -> Result<Check> {
    let reference = match (&image.tag, &image.digest) {
        (_, Some(d)) => d.clone(),
        (Some(t), None) => t.clone(),
        (None, None) => "latest".to_string(),
    };
    let subject = format!("ecr-image {}:{reference}", image.repository);
    if image.region != region {
        let outcome = elsewhere("registry", region, &image.region);
        return Ok(check(field, subject, outcome));
    }
    let outcome = match image.lookup(ctx, &c.ecr).await {
        Ok(ImageLookup::Found) => Outcome::Passed,
        Ok(ImageLookup::NoSuchImage) => failed(format!(
            "`{reference}` is not in repository `{}`: push it first",
            image.repository
        )),
        Ok(ImageLookup::NoSuchRepository)
            if own_repository.as_deref() == Some(image.repository.as_str()) =>
        {
            failed(format!(
                "repository `{}` does not exist yet (this stack creates it): deploy with `--infrastructure-only` first (everything but the tasks), push the image, then deploy again",
                image.repository
            ))
        }
        Ok(ImageLookup::NoSuchRepository) => failed(format!(
            "no repository `{}` in account {}, {region}",
            image.repository, image.registry_id
        )),
        Err(e) => denied_or(e)?,
    };
    Ok(check(field, subject, outcome))
}
