//! ECS Exec: a command in a running task's container, through the Session Manager plugin.

use std::fmt;

use aws_sdk_ecs::types::DesiredStatus;
use ecs_core::{resource, Context};

use crate::{service, Error, Result, ServiceNames, ServiceSpec};

/// What to run, and where (see [`ServiceLayer::exec`](crate::ServiceLayer::exec)).
#[derive(Debug, Clone, PartialEq, Eq, typed_builder::TypedBuilder)]
#[non_exhaustive]
pub struct ExecRequest {
    /// The command (default `/bin/sh`).
    #[builder(default = "/bin/sh".to_string(), setter(into))]
    pub command: String,
    /// The container (default: the one behind the load balancer, else the first).
    #[builder(default, setter(strip_option, into))]
    pub container: Option<String>,
}

/// An ECS Exec session, for the Session Manager plugin to open. Its token is never shown
/// (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecSession {
    /// The cluster.
    pub cluster: String,
    /// The task's ARN.
    pub task_arn: String,
    /// The container.
    pub container: String,
    /// The container's runtime id (the plugin's target is `ecs:<cluster>_<task id>_<runtime id>`).
    pub runtime_id: String,
    /// The session's id.
    pub session_id: String,
    /// The session's stream URL.
    pub stream_url: String,
    /// The session's token (a credential: never print it).
    pub token: String,
}

impl fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSession")
            .field("cluster", &self.cluster)
            .field("task_arn", &self.task_arn)
            .field("container", &self.container)
            .field("runtime_id", &self.runtime_id)
            .field("session_id", &self.session_id)
            .field("stream_url", &self.stream_url)
            .field("token", &"(redacted)")
            .finish()
    }
}

impl ExecSession {
    /// The Session Manager plugin's target: `ecs:<cluster>_<task id>_<runtime id>`.
    pub fn target(&self) -> String {
        let task = self.task_arn.rsplit('/').next().unwrap_or_default();
        format!("ecs:{}_{task}_{}", self.cluster, self.runtime_id)
    }
}

/// Opens a session in a running task of the stack's service: refused, before any session is
/// made, when the service has ECS Exec off, runs no task, or has no such container.
pub(crate) async fn open(
    ctx: &Context,
    ecs: &aws_sdk_ecs::Client,
    spec: &ServiceSpec,
    request: &ExecRequest,
) -> Result<ExecSession> {
    let names = ServiceNames::new(ctx.stack(), spec);
    let container = match &request.container {
        Some(c) => c.clone(),
        None => spec
            .target()
            .map(|(c, _)| c.name.clone())
            .or_else(|| spec.task.containers.first().map(|c| c.name.clone()))
            .unwrap_or_default(),
    };
    if !spec.task.containers.iter().any(|c| c.name == container) {
        let known: Vec<&str> = spec
            .task
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(Error::Exec(format!(
            "the task has no container `{container}` (it has {})",
            known.join(", ")
        )));
    }
    let live = service::observe(ctx, ecs, &names.cluster, &names.service)
        .await?
        .ok_or_else(|| resource::NotFound::new(service::KIND, &names.service))?;
    // An API that does not report the service's settings is trusted to have the spec's.
    let exec = live
        .details
        .as_ref()
        .map_or(spec.service.enable_execute_command, |d| d.exec);
    if !exec {
        return Err(Error::Exec(format!(
            "ECS Exec is off for service `{}`: set `exec: true` in the manifest and deploy (tasks started before that cannot be exec'd into)",
            names.service
        )));
    }
    let resource = format!("{} {}", service::KIND, names.service);
    let tasks = ctx
        .call("ListTasks", &resource, || {
            ecs.list_tasks()
                .cluster(&names.cluster)
                .service_name(&names.service)
                .desired_status(DesiredStatus::Running)
                .max_results(10)
                .send()
        })
        .await?;
    if tasks.task_arns().is_empty() {
        return Err(Error::Exec(format!(
            "service `{}` runs no task to exec into",
            names.service
        )));
    }
    let described = ctx
        .call("DescribeTasks", &resource, || {
            ecs.describe_tasks()
                .cluster(&names.cluster)
                .set_tasks(Some(tasks.task_arns().to_vec()))
                .send()
        })
        .await?;
    // A task that runs, was started with exec on, and whose container's exec agent runs.
    let ready = |t: &aws_sdk_ecs::types::Task| {
        let agent_runs = |c: &aws_sdk_ecs::types::Container| {
            c.managed_agents().iter().any(|a| {
                a.name() == Some(&aws_sdk_ecs::types::ManagedAgentName::ExecuteCommandAgent)
                    && a.last_status() == Some("RUNNING")
            })
        };
        let container = t
            .containers()
            .iter()
            .find(|c| c.name() == Some(container.as_str()))?;
        (t.last_status() == Some("RUNNING") && t.enable_execute_command() && agent_runs(container))
            .then(|| {
                Some((
                    t.task_arn()?.to_string(),
                    container.runtime_id()?.to_string(),
                ))
            })
            .flatten()
    };
    let Some((task_arn, runtime_id)) = described.tasks().iter().find_map(ready) else {
        let started_without = described
            .tasks()
            .iter()
            .all(|t| !t.enable_execute_command());
        return Err(Error::Exec(if started_without {
            format!(
                "the tasks of service `{}` were started before exec was on: deploy again (a new deployment starts tasks with it)",
                names.service
            )
        } else {
            format!(
                "no task of service `{}` is ready for exec yet (running, with container `{container}`'s exec agent running)",
                names.service
            )
        }));
    };
    let out = ctx
        .call("ExecuteCommand", &resource, || {
            ecs.execute_command()
                .cluster(&names.cluster)
                .task(&task_arn)
                .container(&container)
                .interactive(true)
                .command(&request.command)
                .send()
        })
        .await?;
    let session = out
        .session()
        .ok_or_else(|| Error::Exec("ExecuteCommand returned no session".to_string()))?;
    Ok(ExecSession {
        cluster: names.cluster.clone(),
        task_arn,
        container,
        runtime_id,
        session_id: session.session_id().unwrap_or_default().to_string(),
        stream_url: session.stream_url().unwrap_or_default().to_string(),
        token: session.token_value().unwrap_or_default().to_string(),
    })
}
