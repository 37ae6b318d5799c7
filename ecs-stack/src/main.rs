//! `ecs-stack`: validate, price, plan, deploy, inspect, roll back and destroy a load-balanced
//! ECS Fargate stack described by a YAML manifest, straight through the AWS SDK — and
//! `ecs-stack demo`, the whole lifecycle against a local AWS emulator.
//!
//! ```text
//! ecs-stack validate examples/prod.yml
//! ecs-stack cost examples/prod.yml [--region eu-west-1]
//! ecs-stack unlock examples/prod.yml
//! ecs-stack registry-login examples/prod.yml
//! ecs-stack ci-policy examples/prod.yml --account 123456789012 [--region eu-west-1]
//! ecs-stack plan examples/dev.yml [--out dev.plan.json]
//! ecs-stack apply dev.plan.json [--yes] [--no-wait]
//! ecs-stack verify examples/dev.yml
//! ecs-stack deploy examples/dev.yml [--yes] [--no-wait] [--infrastructure-only]
//! ecs-stack deploy examples/dev.yml --image [CONTAINER=]URI [--service NAME] [--no-wait]
//! ecs-stack status examples/dev.yml
//! ecs-stack rollback examples/dev.yml
//! ecs-stack logs examples/dev.yml [--follow] [--since 10m]
//! ecs-stack exec examples/dev.yml [--container app] [-- CMD…]
//! ecs-stack destroy examples/dev.yml [--yes] [--force-delete-images] [--delete-logs]
//! ecs-stack demo examples/prod.yml
//! ```
//!
//! The AWS configuration comes from the standard chain (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, …). Progress goes to standard error: a live display of the resources in
//! flight on a terminal, one line per event otherwise. `--output json` prints the command's
//! result (or the error) as one JSON document on standard output, of the shape
//! `output.schema.json` describes (see the `json` module). Exit codes: 0 on success, 1 on
//! failure (a failed `verify` check included), 2 on a usage error or a refused confirmation.

// A command-line tool: it prints, and it times its work with the real wall clock (the library
// itself takes time from `ecs_core::Clock` so that tests can control it).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

mod demo;
mod environment;
mod json;
mod progress;
mod render;

use std::error::Error as StdError;
use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use ecs_core::{Action, Problem};
use ecs_facade::{Deployer, DestroyOptions, Root, Stack};
use serde::Serialize;

use progress::Progress;
use render::{Style, GREEN};

/// Deploy a load-balanced ECS Fargate stack from a YAML manifest, straight through the AWS SDK.
#[derive(Debug, Parser)]
#[command(name = "ecs-stack", version)]
struct Cli {
    /// How to print results: `human` (progress, colours) or `json` (one JSON document on
    /// standard output; progress still goes to standard error).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// When another run holds the stack's lease, wait up to this many seconds for it (default:
    /// fail at once, saying who holds it since when).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 0)]
    lock_wait: u64,
    /// How long this run's lease lasts without renewal: after a run dies (killed, its machine
    /// lost), the next one breaks its lease this many seconds after its last renewal.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 300)]
    lock_ttl: u64,
    /// The service to act on, in a manifest of an environment with `services` (its name
    /// there, `api`); without it, `validate`, `plan`, `deploy`, `status`, `destroy` and
    /// `cost` act on the whole environment. With `deploy --image` of a stack's manifest, the
    /// service of the stack to release (its application name).
    #[arg(long, global = true, value_name = "NAME")]
    service: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// Text for people.
    Human,
    /// One JSON document on standard output.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what `deploy` would change (read-only).
    Plan {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
        /// Also save the plan to this file, for review and a later `apply PLAN`.
        #[arg(long, value_name = "PLAN")]
        out: Option<String>,
    },
    /// Apply a plan saved by `plan --out`, as saved: refused, before any change, when the
    /// stack changed since it was planned.
    Apply {
        /// The saved plan (JSON).
        #[arg(value_name = "PLAN")]
        plan: String,
        /// Do not ask before deleting or replacing resources.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Return once the service update is accepted, without waiting for the rollout.
        #[arg(long)]
        no_wait: bool,
    },
    /// Create or update the stack and wait for the rollout.
    Deploy {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
        /// Do not ask before deleting or replacing resources.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Return once the service update is accepted, without waiting for the rollout.
        #[arg(long)]
        no_wait: bool,
        /// An image-only release: `URI` (a tag or a digest), or `CONTAINER=URI` when the task
        /// has several containers. Exactly one new task definition revision (a copy of the
        /// one the service runs, with this image) and one service update, whatever else the
        /// manifest says; then the wait.
        #[arg(long, value_name = "[CONTAINER=]URI")]
        image: Option<String>,
        /// A first deploy without tasks: every resource, but the service runs no task and
        /// autoscaling waits for the next deploy. For an image to be pushed to the repository
        /// this deploy creates: deploy with this, push, deploy again.
        #[arg(long, conflicts_with = "image")]
        infrastructure_only: bool,
    },
    /// Check, before any change, what the manifest refers to but the stack does not make:
    /// the certificate (exists, issued), secrets and SSM parameters (exist; their values are
    /// never read), SNS topics, ECR images, an existing VPC's subnets. Exit code 1 when a
    /// check fails; a check you may not make is a warning.
    Verify {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Show the service's tasks, deployments, target health, alarms and recent events.
    Status {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Return the service to its previous task definition revision and wait.
    Rollback {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Delete everything the stack owns (keeping images and logs unless asked).
    Destroy {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Also delete the ECR repository with its images.
        #[arg(long)]
        force_delete_images: bool,
        /// Also delete the log group with its logs.
        #[arg(long)]
        delete_logs: bool,
    },
    /// Print the least-privilege IAM policy a CI principal needs to release images of the
    /// stack (`deploy FILE --image URI`, with the registry login and push) (no AWS call).
    CiPolicy {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
        /// The AWS account id the stack lives in (`aws sts get-caller-identity --query Account
        /// --output text`).
        #[arg(long, value_name = "ID")]
        account: String,
        /// The region (default: the configured region).
        #[arg(long)]
        region: Option<String>,
    },
    /// Log Docker in to the stack's ECR registry (the password goes to `docker login` on its
    /// standard input, never to the terminal), then print the repository URI to tag and push
    /// images to.
    RegistryLogin {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Print the service's logs (every container of every task, oldest first), from the
    /// stack's CloudWatch log group; `--follow` keeps printing new ones until interrupted.
    /// With `--output json`: one document with the events, or, with `--follow`, one JSON
    /// object per event per line.
    Logs {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
        /// Keep printing new events (polling every two seconds) until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How far back to start: `30s`, `10m`, `2h`, `1d`.
        #[arg(long, value_name = "AGE", default_value = "10m", value_parser = parse_age)]
        since: std::time::Duration,
    },
    /// Run a command (default a shell) in a running task's container with ECS Exec, through
    /// AWS's Session Manager plugin (`session-manager-plugin`, which must be installed). The
    /// manifest needs `exec: true`, deployed before the task started.
    Exec {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
        /// The container (default: the one behind the load balancer).
        #[arg(long)]
        container: Option<String>,
        /// The command and its arguments, after `--` (default `/bin/sh`).
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Release the stack's lease for an operator, when the run that held it is gone.
    Unlock {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Estimate the stack's monthly cost (no AWS call).
    Cost {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
        /// The region whose prices to use (default: the configured region, else us-east-1).
        #[arg(long)]
        region: Option<String>,
    },
    /// Check the manifest and show the stack it describes, profile defaults applied (no AWS
    /// call).
    Validate {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// The whole lifecycle against a local AWS emulator: cost, plan, deploy, a no-op
    /// redeploy, a new image, destroy.
    Demo {
        /// The manifest (YAML).
        #[arg(value_name = "FILE")]
        file: String,
    },
}

impl Command {
    /// The manifest file the command reads.
    fn manifest(&self) -> Option<&str> {
        match self {
            Command::Plan { file, .. }
            | Command::Deploy { file, .. }
            | Command::Verify { file }
            | Command::Status { file }
            | Command::Rollback { file }
            | Command::Destroy { file, .. }
            | Command::CiPolicy { file, .. }
            | Command::RegistryLogin { file }
            | Command::Logs { file, .. }
            | Command::Exec { file, .. }
            | Command::Unlock { file }
            | Command::Cost { file, .. }
            | Command::Validate { file }
            | Command::Demo { file } => Some(file),
            Command::Apply { .. } => None,
        }
    }

    /// The command's name, as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Plan { .. } => "plan",
            Command::Apply { .. } => "apply",
            Command::Deploy { image: Some(_), .. } => "release",
            Command::Deploy { .. } => "deploy",
            Command::Verify { .. } => "verify",
            Command::Status { .. } => "status",
            Command::Rollback { .. } => "rollback",
            Command::Destroy { .. } => "destroy",
            Command::CiPolicy { .. } => "ci-policy",
            Command::RegistryLogin { .. } => "registry-login",
            Command::Unlock { .. } => "unlock",
            Command::Logs { .. } => "logs",
            Command::Exec { .. } => "exec",
            Command::Cost { .. } => "cost",
            Command::Validate { .. } => "validate",
            Command::Demo { .. } => "demo",
        }
    }
}

/// Where and how results are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    /// `--output json`.
    pub(crate) json: bool,
    /// Colours of standard output.
    pub(crate) style: Style,
    /// How the stack's lease is taken (`--lock-wait`, `--lock-ttl`).
    pub(crate) lock: (u64, u64),
    /// The command, named in JSON documents.
    pub(crate) command: &'static str,
    /// The manifest the command read, when it read one (errors point into it).
    pub(crate) manifest: Option<&'static str>,
    /// `--service NAME`.
    pub(crate) service: Option<&'static str>,
}

impl Out {
    /// The lease options `--lock-wait` and `--lock-ttl` give.
    fn lease(self) -> ecs_facade::core::lease::LeaseOptions {
        ecs_facade::core::lease::LeaseOptions::builder()
            .wait(std::time::Duration::from_secs(self.lock.0))
            .ttl(std::time::Duration::from_secs(self.lock.1.max(3)))
            .build()
    }

    /// Prints a line of narrative: on standard output for people, on standard error in JSON
    /// mode (where standard output holds the JSON document only).
    pub(crate) fn say(self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// Prints `value` as the command's JSON document on standard output (see [`json`]).
    pub(crate) fn print_json<T: Serialize>(self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(&json::document(self.command, value)?)?;
        println!("{text}");
        Ok(())
    }
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// A usage error or a refused confirmation (exit code 2).
    Usage(String),
    /// The library failed (exit code 1); may carry validation problems.
    Stack(Box<ecs_facade::Error>),
    /// Anything else (exit code 1).
    Other(Box<dyn StdError + Send + Sync>),
    /// A failure the command's own output reported already (exit code 1; nothing more is
    /// printed, so that `--output json` prints one document).
    Reported,
}

impl CliError {
    /// A failure described by `text`.
    pub(crate) fn msg(text: impl Into<String>) -> Self {
        let text: String = text.into();
        CliError::Other(text.into())
    }

    /// A failure of `what`, caused by `source`.
    pub(crate) fn context(
        what: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        CliError::Other(Box::new(WithContext {
            what: what.into(),
            source: source.into(),
        }))
    }

    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Stack(_) | CliError::Other(_) | CliError::Reported => 1,
        }
    }

    fn as_error(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            CliError::Usage(_) | CliError::Reported => None,
            CliError::Stack(e) => Some(&**e),
            CliError::Other(e) => Some(&**e),
        }
    }

    /// The messages of the error's sources, outermost first; a source whose message merely
    /// repeats the end of the previous one (a layer's error wrapping another) is left out.
    fn causes(&self) -> Vec<String> {
        let mut causes = Vec::new();
        let mut previous = self.to_string();
        let mut source = self.as_error().and_then(|e| e.source());
        while let Some(cause) = source {
            let text = cause.to_string();
            if !previous.ends_with(&text) {
                causes.push(text.clone());
            }
            previous = text;
            source = cause.source();
        }
        causes
    }

    /// The validation problems, when the manifest or the stack was invalid: each with its
    /// `field` and `message` (and, for a manifest, the key's `line` and `column`).
    fn problems(&self, out: Out) -> serde_json::Value {
        match self {
            CliError::Stack(e) => match &**e {
                ecs_facade::Error::InvalidManifest(found) => {
                    serde_json::to_value(&found.problems).unwrap_or_default()
                }
                ecs_facade::Error::Preflight { failures, .. } => {
                    serde_json::to_value(located(out, failures)).unwrap_or_default()
                }
                e => serde_json::to_value(
                    e.problems()
                        .map(|p| p.iter().cloned().collect::<Vec<Problem>>())
                        .unwrap_or_default(),
                )
                .unwrap_or_default(),
            },
            _ => serde_json::Value::Array(Vec::new()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(text) => f.write_str(text),
            CliError::Reported => f.write_str("failed (reported above)"),
            CliError::Stack(e) => fmt::Display::fmt(e, f),
            CliError::Other(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl From<ecs_facade::Error> for CliError {
    fn from(e: ecs_facade::Error) -> Self {
        CliError::Stack(Box::new(e))
    }
}

impl From<ecs_facade::testing::EmulatorError> for CliError {
    fn from(e: ecs_facade::testing::EmulatorError) -> Self {
        CliError::Other(Box::new(e))
    }
}

impl From<tokio::task::JoinError> for CliError {
    fn from(e: tokio::task::JoinError) -> Self {
        CliError::Other(Box::new(e))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Other(Box::new(e))
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        CliError::Other(Box::new(e))
    }
}

/// An error with what was being done.
#[derive(Debug)]
struct WithContext {
    what: String,
    source: Box<dyn StdError + Send + Sync>,
}

impl fmt::Display for WithContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl StdError for WithContext {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.output == OutputFormat::Json;
    let out = Out {
        json,
        style: Style::for_stdout(json),
        lock: (cli.lock_wait, cli.lock_ttl),
        command: cli.command.name(),
        // Leaked once: the file name lives as long as the process.
        manifest: cli
            .command
            .manifest()
            .map(|f| &*Box::leak(f.to_string().into_boxed_str())),
        service: cli
            .service
            .as_deref()
            .map(|s| &*Box::leak(s.to_string().into_boxed_str())),
    };
    match run(cli.command, out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err, out),
    }
}

/// Reports `err` (as JSON on standard output in JSON mode, else on standard error with its
/// whole chain) and returns the exit code.
fn fail(err: &CliError, out: Out) -> ExitCode {
    if matches!(err, CliError::Reported) {
        return ExitCode::from(err.exit_code());
    }
    let causes = err.causes();
    if out.json {
        let doc = serde_json::json!({
            "command": out.command,
            "error": err.to_string(),
            "chain": causes,
            "problems": err.problems(out),
            "exit_code": err.exit_code(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
    } else if let (CliError::Stack(e), Some(file)) = (err, out.manifest) {
        match &**e {
            // Each failed check at its key in the manifest.
            ecs_facade::Error::Preflight { stack, failures } => {
                eprintln!("error: stack `{stack}` refers to what a deploy would fail on; nothing was changed:");
                for (check, at) in failures.iter().zip(located(out, failures)) {
                    eprintln!("  {}: {} {}", at.position(file), check.subject, at.message);
                }
            }
            _ => print_error(err, &causes),
        }
    } else {
        print_error(err, &causes);
    }
    ExitCode::from(err.exit_code())
}

fn print_error(err: &CliError, causes: &[String]) {
    eprintln!("error: {err}");
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
}

/// Failed checks in the manifest's terms (its keys, lines and columns), when the command
/// read a manifest; else under the stack's fields.
fn located(out: Out, failures: &[ecs_facade::Check]) -> Vec<ecs_facade::ManifestProblem> {
    let text = out
        .manifest
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    failures
        .iter()
        .map(|c| {
            let why = match &c.outcome {
                ecs_facade::Outcome::Failed { reason }
                | ecs_facade::Outcome::Warning { reason } => reason.clone(),
                _ => "passed".to_string(),
            };
            ecs_facade::ManifestProblem::locate(&text, &c.field, &why)
        })
        .collect()
}

async fn run(command: Command, out: Out) -> Result<(), CliError> {
    // A whole environment: the verbs that take one, without `--service`.
    if let (Some(file), None) = (command.manifest(), out.service) {
        let whole = matches!(
            command,
            Command::Plan { out: None, .. }
                | Command::Deploy {
                    image: None,
                    infrastructure_only: false,
                    ..
                }
                | Command::Status { .. }
                | Command::Destroy { .. }
                | Command::Cost { .. }
                | Command::Unlock { .. }
                | Command::Validate { .. }
        );
        if whole {
            let d = environment::load(file)?;
            if environment::is_environment(&d) {
                return match command {
                    Command::Plan { .. } => environment::plan(out, &d).await,
                    Command::Deploy { yes, no_wait, .. } => {
                        environment::deploy(out, &d, yes, no_wait).await
                    }
                    Command::Status { .. } => environment::status(out, &d).await,
                    Command::Destroy {
                        yes,
                        force_delete_images,
                        delete_logs,
                        ..
                    } => {
                        let options = DestroyOptions {
                            force_delete_images,
                            delete_logs,
                        };
                        environment::destroy(out, &d, yes, options).await
                    }
                    Command::Cost { region, .. } => environment::cost(out, &d, region).await,
                    Command::Unlock { .. } => environment::unlock(out, &d).await,
                    _ => environment::validate(out, file, &d),
                };
            }
        }
    }
    match command {
        Command::Plan { file, out: None } => plan(out, &file).await,
        Command::Plan {
            file,
            out: Some(path),
        } => save_plan(out, &file, &path).await,
        Command::Apply { plan, yes, no_wait } => apply(out, &plan, yes, no_wait).await,
        Command::Deploy {
            file,
            no_wait,
            image: Some(image),
            ..
        } => release(out, &file, no_wait, &image).await,
        Command::Deploy {
            file,
            yes,
            no_wait,
            infrastructure_only,
            ..
        } => deploy(out, &file, yes, no_wait, infrastructure_only).await,
        Command::Verify { file } => verify(out, &file).await,
        Command::Status { file } => status(out, &file).await,
        Command::Rollback { file } => rollback(out, &file).await,
        Command::Destroy {
            file,
            yes,
            force_delete_images,
            delete_logs,
        } => {
            let options = DestroyOptions {
                force_delete_images,
                delete_logs,
            };
            destroy(out, &file, yes, options).await
        }
        Command::Cost { file, region } => cost(out, &file, region).await,
        Command::RegistryLogin { file } => registry_login(out, &file).await,
        Command::Unlock { file } => unlock(out, &file).await,
        Command::Logs {
            file,
            follow,
            since,
        } => logs(out, &file, follow, since).await,
        Command::Exec {
            file,
            container,
            command,
        } => exec(out, &file, container, command).await,
        Command::CiPolicy {
            file,
            account,
            region,
        } => ci_policy(out, &file, &account, region).await,
        Command::Validate { file } => validate(out, &file),
        Command::Demo { file } => demo::run(out, &file).await,
    }
}

/// Where the Session Manager plugin is: `ECS_STACK_SESSION_MANAGER_PLUGIN`, else
/// `session-manager-plugin` on the `PATH`.
fn session_manager_plugin() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("ECS_STACK_SESSION_MANAGER_PLUGIN") {
        let path = std::path::PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("session-manager-plugin"))
        .find(|p| p.is_file())
}

/// `exec FILE [--container NAME] [-- CMD…]`.
async fn exec(
    out: Out,
    file: &str,
    container: Option<String>,
    command: Vec<String>,
) -> Result<(), CliError> {
    // Before any AWS call: a session nobody can open is not made.
    let Some(plugin) = session_manager_plugin() else {
        let missing = match std::env::var("ECS_STACK_SESSION_MANAGER_PLUGIN") {
            Ok(named) => {
                format!("ECS_STACK_SESSION_MANAGER_PLUGIN names {named}, which does not exist")
            }
            Err(_) => "`session-manager-plugin` is not on the PATH".to_string(),
        };
        return Err(CliError::msg(format!(
            "ECS Exec needs AWS's Session Manager plugin, and {missing}: \
             install it (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html) \
             or name it with ECS_STACK_SESSION_MANAGER_PLUGIN; nothing was started"
        )));
    };
    // The session goes to the plugin in an environment variable, which plugins before
    // 1.2.497.0 do not read (they take it on the command line, where other users see it).
    let version = std::process::Command::new(&plugin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let numbers: Vec<u64> = version
        .split('.')
        .map(|n| n.trim().parse().unwrap_or(0))
        .collect();
    if numbers < vec![1, 2, 497, 0] {
        return Err(CliError::msg(format!(
            "the Session Manager plugin at {} is version {version:?}; ECS Exec here needs 1.2.497.0 or newer \
             (it takes the session in AWS_SSM_START_SESSION_RESPONSE): upgrade it; nothing was started",
            plugin.display()
        )));
    }
    let s = session(out, file).await?;
    let mut request = ecs_facade::service::ExecRequest::builder().build();
    if !command.is_empty() {
        request.command = shell_words(&command);
    }
    request.container = container;
    let session = s.deployer.exec(&s.stack, &request).await?;
    s.progress.clear();
    let region = s
        .config
        .region()
        .map(ToString::to_string)
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| format!("https://ecs.{region}.amazonaws.com"));
    let session_json = serde_json::json!({
        "SessionId": session.session_id,
        "StreamUrl": session.stream_url,
        "TokenValue": session.token,
    });
    let target = serde_json::json!({ "Target": session.target() });
    eprintln!(
        "Running `{}` in container `{}` of task {}…",
        request.command,
        session.container,
        session.task_arn.rsplit('/').next().unwrap_or_default()
    );
    // The plugin takes the session as the AWS CLI passes it: the response (with its token)
    // in an environment variable it names, never on a command line other users can read.
    let mut child = tokio::process::Command::new(&plugin)
        .env("AWS_SSM_START_SESSION_RESPONSE", session_json.to_string())
        .arg("AWS_SSM_START_SESSION_RESPONSE")
        .arg(&region)
        .arg("StartSession")
        .arg("")
        .arg(target.to_string())
        .arg(endpoint)
        .spawn()
        .map_err(|e| CliError::context(format!("running {}", plugin.display()), e))?;
    // Ctrl-C belongs to the remote command while the session is open (as with the AWS CLI):
    // this process stays to the end of the plugin.
    let waited = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        Ok(mut interrupts) => loop {
            tokio::select! {
                status = child.wait() => break status,
                Some(()) = interrupts.recv() => continue,
            }
        },
        Err(_) => child.wait().await,
    };
    let status =
        waited.map_err(|e| CliError::context(format!("running {}", plugin.display()), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::msg(format!(
            "the Session Manager plugin ended with {status}"
        )))
    }
}

/// `args` as one shell command line, each argument quoted when it needs to be.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `30s`, `10m`, `2h`, `1d` (a bare number is seconds).
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number and a unit, like 30s, 10m, 2h or 1d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("`{other}`: the unit is s, m, h or d")),
    };
    n.checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long ago"))
}

/// `logs FILE [--follow] [--since AGE]`.
async fn logs(
    out: Out,
    file: &str,
    follow: bool,
    since: std::time::Duration,
) -> Result<(), CliError> {
    const PAGE: usize = 10_000;
    let s = session(out, file).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut start = i64::try_from(since.as_millis())
        .ok()
        .and_then(|ago| now_ms.checked_sub(ago))
        .unwrap_or(0)
        .max(0);
    let events = s.deployer.log_events(&s.stack, start, PAGE).await?;
    s.progress.clear();
    if out.json && !follow {
        return out.print_json(&serde_json::json!({ "stack": s.stack.name, "events": events }));
    }
    let show = |e: &ecs_facade::observe::LogEvent| {
        if out.json {
            let line = json::document(out.command, e).map(|d| d.to_string());
            println!("{}", line.unwrap_or_default());
        } else {
            let at = aws_smithy_types::DateTime::from_millis(e.timestamp_ms)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default();
            println!(
                "{at} {} {}",
                out.style.paint(render::DIM, &e.stream),
                e.message
            );
        }
    };
    // Logs arrive late (another stream's event may carry an earlier time than one already
    // shown): each poll looks back LOOKBACK_MS before the newest event seen, and the ids
    // seen in that window are skipped.
    const LOOKBACK_MS: i64 = 30_000;
    let mut seen: std::collections::HashMap<String, i64> = Default::default();
    let mut newest = start;
    let mut remember = |events: &[ecs_facade::observe::LogEvent], newest: &mut i64| {
        let fresh: Vec<_> = events
            .iter()
            .filter(|e| !seen.contains_key(&e.id))
            .cloned()
            .collect();
        for e in events {
            seen.insert(e.id.clone(), e.timestamp_ms);
            *newest = (*newest).max(e.timestamp_ms);
        }
        let horizon = *newest - LOOKBACK_MS;
        seen.retain(|_, t| *t >= horizon);
        fresh
    };
    let mut full = events.len() >= PAGE;
    for e in remember(&events, &mut newest) {
        show(&e);
    }
    if !follow {
        if events.is_empty() {
            eprintln!("No log events in the last {}s.", since.as_secs());
        }
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        // A full page may end before the window does: go on from its newest event (the
        // look-back would ask for the same page again).
        start = if full {
            newest
        } else {
            start.max(newest - LOOKBACK_MS)
        };
        let events = s.deployer.log_events(&s.stack, start, PAGE).await?;
        full = events.len() >= PAGE;
        for e in remember(&events, &mut newest) {
            show(&e);
        }
        let _ = std::io::stdout().flush();
    }
}

/// The one stack a command acts on, validated (no AWS call): the manifest's stack, the one
/// service of a service's manifest, or the service of an environment's manifest `service`
/// names (`--service`).
pub(crate) fn load_stack(file: &str, service: Option<&str>) -> Result<Stack, CliError> {
    load_stack_for(file, service, false)
}

/// [`load_stack`]; `release`: for an image-only release, where `--service` on a stack's
/// manifest names the stack's service to release.
pub(crate) fn load_stack_for(
    file: &str,
    service: Option<&str>,
    release: bool,
) -> Result<Stack, CliError> {
    let d = environment::load(file)?;
    let env = d.environment_name().to_string();
    let listed = || {
        let prefix = format!("{env}-");
        let names: Vec<&str> = d
            .stacks()
            .iter()
            .map(|s| s.name.strip_prefix(&prefix).unwrap_or(&s.name))
            .collect();
        names.join(", ")
    };
    match (service, &d.root, d.services.len()) {
        // A stack's manifest: `--service` names the application to release, if anything.
        (None, Some(Root::Stack(s)), 0) => Ok((**s).clone()),
        (Some(_), Some(Root::Stack(s)), 0) if release => Ok((**s).clone()),
        (None, None, 1) => Ok(d.services[0].clone()),
        (Some(name), None, 1) if d.service(name).is_some() => Ok(d.services[0].clone()),
        (Some(name), _, 0 | 1) if d.services.len() <= 1 && d.service(name).is_none() => {
            Err(CliError::Usage(format!(
                "{file} describes one stack; `--service {name}` names nothing in it"
            )))
        }
        (Some(name), Some(Root::Stack(s)), _) if name == env => Ok((**s).clone()),
        (Some(name), _, _) => d.service(name).cloned().ok_or_else(|| {
            CliError::Usage(format!(
                "{file} has no service `{name}`; its services: {}",
                listed()
            ))
        }),
        (None, _, _) => Err(CliError::Usage(format!(
            "{file} describes environment `{env}` with services ({}): name one with --service NAME",
            listed()
        ))),
    }
}

/// The AWS configuration from the standard chain.
async fn load_config() -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

fn region_name(config: &aws_types::SdkConfig) -> String {
    config
        .region()
        .map(ToString::to_string)
        .unwrap_or_else(|| "(no region configured)".to_string())
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What every command that talks to AWS needs.
struct Session {
    stack: Stack,
    config: aws_types::SdkConfig,
    progress: Progress,
    deployer: Deployer,
}

async fn session(out: Out, file: &str) -> Result<Session, CliError> {
    let stack = load_stack_for(file, out.service, out.command == "release")?;
    let config = load_config().await;
    let progress = Progress::new(!out.json);
    let deployer = Deployer::new(&config)
        .events(progress.sink())
        .lease(out.lease());
    Ok(Session {
        stack,
        config,
        progress,
        deployer,
    })
}

/// Asks before a plan that deletes or replaces something (see [`confirm`]).
fn confirm_destructive(plan: &ecs_facade::Plan, yes: bool, json: bool) -> Result<(), CliError> {
    let destructive = plan
        .pending()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace(_)))
        .count();
    if destructive == 0 {
        return Ok(());
    }
    confirm(
        &format!(
            "The plan deletes or replaces {destructive} resource{}.",
            plural(destructive)
        ),
        yes,
        json,
    )
}

/// Asks for `yes` on standard input, unless `yes` was given; in JSON mode there is no prompt
/// and the missing `--yes` is a usage error.
fn confirm(question: &str, yes: bool, json: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if json {
        return Err(CliError::Usage(format!(
            "{question} Pass --yes to confirm (there is no prompt with --output json); nothing was changed."
        )));
    }
    eprint!("{question} Type `yes` to continue: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer)? == 0 {
        eprintln!();
    }
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::Usage(
            "not confirmed: nothing was changed".to_string(),
        ))
    }
}

async fn plan(out: Out, file: &str) -> Result<(), CliError> {
    let s = session(out, file).await?;
    if !out.json {
        eprintln!(
            "Planning stack `{}` in {}…",
            s.stack.name,
            region_name(&s.config)
        );
    }
    let prepared = s.deployer.prepare(&s.stack).await?;
    s.progress.clear();
    if out.json {
        let plan = prepared.plan();
        let warnings: Vec<_> = prepared.verification().warnings().collect();
        return out.print_json(&serde_json::json!({
            "stack": s.stack.name,
            "changes": plan,
            "summary": plan.summary(),
            "warnings": warnings,
        }));
    }
    println!("{}", out.style.plan(prepared.plan()));
    Ok(())
}

/// `verify FILE`: every pre-flight check, and exit code 1 when one failed.
async fn verify(out: Out, file: &str) -> Result<(), CliError> {
    let s = session(out, file).await?;
    if !out.json {
        eprintln!(
            "Checking what stack `{}` refers to in {}…",
            s.stack.name,
            region_name(&s.config)
        );
    }
    let checks = s.deployer.verify(&s.stack).await?;
    s.progress.clear();
    let passed = checks.passed();
    if out.json {
        // Each check also at its key in the manifest.
        let listed: Vec<serde_json::Value> = checks
            .checks
            .iter()
            .zip(located(out, &checks.checks))
            .map(|(c, at)| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["key"] = at.field.into();
                v["line"] = at.line.into();
                v["column"] = at.column.into();
                v
            })
            .collect();
        out.print_json(&serde_json::json!({ "passed": passed, "checks": listed }))?;
    } else if checks.checks.is_empty() {
        println!(
            "Nothing to check: the manifest refers to no certificate, secret, topic or ECR image."
        );
    } else {
        let file = out.manifest.unwrap_or(file);
        for (c, at) in checks.checks.iter().zip(located(out, &checks.checks)) {
            let (mark, why) = match &c.outcome {
                ecs_facade::Outcome::Failed { reason } => (
                    out.style.paint(render::RED, "failed "),
                    format!(": {reason}"),
                ),
                ecs_facade::Outcome::Warning { reason } => (
                    out.style.paint(render::YELLOW, "warning"),
                    format!(": {reason}"),
                ),
                _ => (out.style.paint(GREEN, "ok     "), String::new()),
            };
            println!("{mark} {} {}{why}", at.position(file), c.subject);
        }
        if !passed {
            eprintln!(
                "error: a pre-flight check failed: a deploy would fail on it; nothing was changed"
            );
        }
    }
    // The checks were printed, the failed ones among them.
    if passed {
        Ok(())
    } else {
        Err(CliError::Reported)
    }
}

/// `plan FILE --out PLAN`: the plan, shown and saved for a later `apply PLAN`.
async fn save_plan(out: Out, file: &str, path: &str) -> Result<(), CliError> {
    let s = session(out, file).await?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::context(format!("cannot read {file}"), e))?;
    if !out.json {
        eprintln!(
            "Planning stack `{}` in {}…",
            s.stack.name,
            region_name(&s.config)
        );
    }
    let saved = s.deployer.save_plan(&text).await?;
    s.progress.clear();
    std::fs::write(path, saved.to_json())
        .map_err(|e| CliError::context(format!("cannot write {path}"), e))?;
    if out.json {
        return out.print_json(&serde_json::json!({
            "stack": saved.stack,
            "saved": path,
            "fingerprint": saved.fingerprint,
            "changes": saved.plan,
            "summary": saved.plan.summary(),
        }));
    }
    println!("{}", out.style.plan(&saved.plan));
    println!(
        "
Saved the plan to {path} (fingerprint {}). Apply it as saved with: ecs-stack apply {path}",
        &saved.fingerprint[..12]
    );
    Ok(())
}

/// `apply PLAN`: a saved plan, applied as saved.
async fn apply(out: Out, path: &str, yes: bool, no_wait: bool) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::context(format!("cannot read {path}"), e))?;
    let saved = ecs_facade::SavedPlan::from_json(&text)?;
    let config = load_config().await;
    let progress = Progress::new(!out.json);
    let deployer = Deployer::new(&config)
        .events(progress.sink())
        .lease(out.lease())
        .wait_for_rollout(!no_wait);
    if !out.json {
        eprintln!(
            "Checking the saved plan of stack `{}` against {}…",
            saved.stack,
            region_name(&config)
        );
    }
    let prepared = deployer.prepare_saved(&saved).await?;
    let what = format!("the saved plan of stack `{}`", saved.stack);
    show_confirm_apply(out, &progress, prepared, yes, no_wait, &what).await
}

/// Shows the plan of `prepared`, asks before deleting or replacing anything, applies it and
/// prints the report.
async fn show_confirm_apply(
    out: Out,
    progress: &Progress,
    prepared: ecs_facade::PreparedDeploy,
    yes: bool,
    no_wait: bool,
    what: &str,
) -> Result<(), CliError> {
    progress.clear();
    let plan = prepared.plan();
    if !out.json {
        println!("{}", out.style.plan(plan));
    }
    confirm_destructive(plan, yes, out.json)?;
    if !out.json {
        eprintln!("\nApplying {what}…");
    }
    let report = prepared.apply().await?;
    progress.clear();
    if out.json {
        return out.print_json(&report);
    }
    println!("\n{}", render::deploy_report(out.style, &report, !no_wait));
    Ok(())
}

async fn deploy(
    out: Out,
    file: &str,
    yes: bool,
    no_wait: bool,
    infrastructure_only: bool,
) -> Result<(), CliError> {
    let Session {
        stack,
        config,
        progress,
        deployer,
    } = session(out, file).await?;
    let deployer = deployer
        .wait_for_rollout(!no_wait)
        .infrastructure_only(infrastructure_only);
    if !out.json {
        eprintln!(
            "Planning stack `{}` in {}…",
            stack.name,
            region_name(&config)
        );
    }
    // The plan shown is the plan applied (a non-empty one is read again under the stack's
    // lease, and refused if it now deletes or replaces something not shown).
    let prepared = deployer.prepare(&stack).await?;
    let what = format!("stack `{}`", stack.name);
    show_confirm_apply(out, &progress, prepared, yes, no_wait, &what).await
}

/// `deploy FILE --image [CONTAINER=]URI [--service NAME]`: an image-only release.
async fn release(out: Out, file: &str, no_wait: bool, image: &str) -> Result<(), CliError> {
    let s = session(out, file).await?;
    // In a stack's manifest, `--service` names the stack's service to release; in an
    // environment's, it picked the stack already.
    let service = match s.stack.service.environment {
        Some(_) => None,
        None => out.service.map(str::to_string),
    };
    let deployer = s.deployer.wait_for_rollout(!no_wait);
    // An image reference never contains `=`: what comes before one names the container.
    let (container, image) = match image.split_once('=') {
        Some((container, image)) => (Some(container.to_string()), image),
        None => (None, image),
    };
    let mut release = ecs_facade::service::ImageRelease::builder()
        .image(image)
        .build();
    (release.service, release.container) = (service, container);
    if !out.json {
        eprintln!(
            "Releasing {image} to stack `{}` in {}…",
            s.stack.name,
            region_name(&s.config)
        );
    }
    let report = deployer.release_image(&s.stack, &release).await?;
    s.progress.clear();
    if out.json {
        return out.print_json(&report);
    }
    println!("{}", render::release(out.style, &report));
    Ok(())
}

async fn status(out: Out, file: &str) -> Result<(), CliError> {
    let s = session(out, file).await?;
    let status = s.deployer.status(&s.stack).await?;
    s.progress.clear();
    if out.json {
        return out.print_json(&status);
    }
    println!("{}", render::status(out.style, &s.stack.name, &status));
    Ok(())
}

async fn rollback(out: Out, file: &str) -> Result<(), CliError> {
    let s = session(out, file).await?;
    if !out.json {
        eprintln!(
            "Rolling the service of stack `{}` back to its previous task definition…",
            s.stack.name
        );
    }
    let report = s.deployer.rollback(&s.stack).await?;
    s.progress.clear();
    if out.json {
        return out.print_json(&report);
    }
    println!(
        "Rolled back: the service runs {} ({} task{} running; deployment {}, waited {:.1}s).",
        report.task_definition,
        report.running,
        if report.running == 1 { "" } else { "s" },
        report.deployment,
        report.waited.as_secs_f64()
    );
    Ok(())
}

async fn destroy(out: Out, file: &str, yes: bool, options: DestroyOptions) -> Result<(), CliError> {
    let s = session(out, file).await?;
    if !out.json {
        eprintln!(
            "Looking for what stack `{}` owns in {}…",
            s.stack.name,
            region_name(&s.config)
        );
    }
    let preview = s.deployer.plan_destroy(&s.stack, options).await?;
    s.progress.clear();
    if !out.json {
        println!(
            "{}",
            render::destroy_preview(out.style, &s.stack.name, &preview)
        );
    }
    let count = preview.deleted.pending().count();
    confirm(
        &format!(
            "Destroy stack `{}` ({count} resource{} found)?",
            s.stack.name,
            plural(count)
        ),
        yes,
        out.json,
    )?;
    let started = Instant::now();
    let report = s.deployer.destroy(&s.stack, options).await?;
    s.progress.clear();
    if out.json {
        return out.print_json(&report);
    }
    println!(
        "{}",
        render::destroyed(out.style, &s.stack.name, &report, started.elapsed())
    );
    Ok(())
}

async fn cost(out: Out, file: &str, region: Option<String>) -> Result<(), CliError> {
    let stack = load_stack(file, out.service)?;
    let region = match region {
        Some(region) => region,
        None => {
            let config = load_config().await;
            config
                .region()
                .map(ToString::to_string)
                .unwrap_or_else(|| "us-east-1".to_string())
        }
    };
    let estimate = ecs_facade::estimate_cost(&stack, &region);
    if out.json {
        return out.print_json(&estimate);
    }
    print!("{estimate}");
    Ok(())
}

/// `registry-login FILE`: `docker login` to the stack's registry, the password on docker's
/// standard input; then the repository URI on standard output. The Docker command is
/// `$ECS_STACK_DOCKER`, else `docker`.
async fn registry_login(out: Out, file: &str) -> Result<(), CliError> {
    use std::process::{Command as Process, Stdio};
    let s = session(out, file).await?;
    let login = s.deployer.registry_login(&s.stack).await?;
    s.progress.clear();
    let docker = std::env::var("ECS_STACK_DOCKER").unwrap_or_else(|_| "docker".to_string());
    let mut child = Process::new(&docker)
        .args([
            "login",
            "--username",
            &login.username,
            "--password-stdin",
            &login.registry,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            CliError::context(
                format!("cannot run `{docker} login`: is Docker installed and on PATH?"),
                e,
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(login.password.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(CliError::msg(format!(
            "`{docker} login {}` failed ({status})",
            login.registry
        )));
    }
    let name = s.stack.stack_name().map_err(ecs_facade::Error::Invalid)?;
    let names = ecs_facade::service::ServiceNames::new(&name, &s.stack.service_spec());
    let repository = format!("{}/{}", login.registry, names.repository);
    if out.json {
        return out.print_json(&serde_json::json!({
            "registry": login.registry,
            "repository_uri": repository,
        }));
    }
    println!("{repository}");
    Ok(())
}

/// `unlock FILE`: the stack's lease released for an operator.
async fn unlock(out: Out, file: &str) -> Result<(), CliError> {
    let s = session(out, file).await?;
    let displaced = s.deployer.unlock(&s.stack).await?;
    s.progress.clear();
    unlocked(out, &format!("stack `{}`", s.stack.name), displaced)
}

/// What `unlock` did to the lease of `what`.
pub(crate) fn unlocked(
    out: Out,
    what: &str,
    displaced: Option<ecs_facade::core::lease::Holder>,
) -> Result<(), CliError> {
    if out.json {
        return out.print_json(&serde_json::json!({ "displaced": displaced }));
    }
    match displaced {
        Some(holder) => println!(
            "Unlocked {what}: it was held by {holder}. If that run is in fact alive, it stops at its next renewal (within a third of its time to live)."
        ),
        None => println!("The lease of {what} was not held."),
    }
    Ok(())
}

/// `ci-policy FILE --account ID`: the CI principal's policy, as JSON on standard output.
async fn ci_policy(
    out: Out,
    file: &str,
    account: &str,
    region: Option<String>,
) -> Result<(), CliError> {
    let stack = load_stack(file, out.service)?;
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(CliError::Usage(format!(
            "--account {account}: an AWS account id is 12 digits"
        )));
    }
    let region = match region {
        Some(region) => region,
        None => load_config()
            .await
            .region()
            .map(ToString::to_string)
            .ok_or_else(|| {
                CliError::Usage(
                    "no region: pass --region, or set AWS_REGION (or `region` in the AWS config file)"
                        .to_string(),
                )
            })?,
    };
    let name = stack.stack_name().map_err(ecs_facade::Error::Invalid)?;
    let policy =
        ecs_facade::service::release_policy(&name, &stack.service_spec(), &region, account);
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(())
}

fn validate(out: Out, file: &str) -> Result<(), CliError> {
    let stack = load_stack(file, out.service)?;
    // The profile is not part of the stack: read it from the manifest itself.
    let text = std::fs::read_to_string(file).unwrap_or_else(|_| file.to_string());
    let profile = ecs_facade::Manifest::parse(&text)
        .ok()
        .map(|m| render::serde_name(&m.profile()));
    if out.json {
        return out.print_json(&serde_json::json!({
            "file": file,
            "valid": true,
            "profile": profile,
            "stack": stack,
        }));
    }
    println!("{file}: {}", out.style.paint(GREEN, "valid"));
    for line in render::summary(&stack, profile.as_deref()) {
        println!("  {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_are_quoted_only_when_they_need_it() {
        let words = |w: &[&str]| shell_words(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["ls", "-la", "/tmp"]), "ls -la /tmp");
        assert_eq!(words(&["sh", "-c", "echo a b"]), "sh -c 'echo a b'");
        assert_eq!(words(&["echo", "it's"]), "echo 'it'\\''s'");
        assert_eq!(words(&["printf", ""]), "printf ''");
    }

    #[test]
    fn ages_are_parsed_and_absurd_ones_refused() {
        assert_eq!(parse_age("10m"), Ok(std::time::Duration::from_secs(600)));
        assert_eq!(parse_age("2h"), Ok(std::time::Duration::from_secs(7200)));
        assert_eq!(parse_age("45"), Ok(std::time::Duration::from_secs(45)));
        assert!(parse_age("3w").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
        assert!(parse_age(&format!("{}d", u64::MAX / 2)).is_err());
    }
}
