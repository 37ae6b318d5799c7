//! The stack's lease in SSM Parameter Store ([`ecs_core::lease`]): each generation is a
//! `String` parameter `/ecs-facade/lease/stack/<name>/<generation>` whose value is its
//! holder (JSON); `PutParameter` without `Overwrite` is the create-only write, the
//! parameter's `LastModifiedDate` the service's time of the last write, and a probe parameter
//! (`…/clock`, overwritten) gives the service's "now".

use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client;
use ecs_core::lease::{Generation, Holder, LeaseScope, LeaseStore};
use ecs_core::{AwsError, AwsErrorKind, BoxFuture, Context};

/// The lease store of `ecs-facade`: SSM Parameter Store, through its own client (so a run's
/// lease calls are apart from the stack's).
#[derive(Debug, Clone)]
pub struct SsmLeaseStore {
    ssm: Client,
}

impl SsmLeaseStore {
    /// A store using `ssm`.
    pub fn new(ssm: Client) -> Self {
        Self { ssm }
    }
}

fn value(holder: &Holder) -> String {
    serde_json::to_string(holder).unwrap_or_default()
}

fn name(scope: &LeaseScope, number: u64) -> String {
    format!("{}/{number}", scope.path())
}

fn millis(t: Option<&aws_sdk_ssm::primitives::DateTime>) -> i64 {
    t.map_or(0, |t| {
        t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
    })
}

impl LeaseStore for SsmLeaseStore {
    fn list<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
    ) -> BoxFuture<'a, Result<Vec<Generation>, AwsError>> {
        Box::pin(async move {
            let path = scope.path();
            let resource = format!("lease of {scope}");
            let mut found = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = ctx
                    .call("GetParametersByPath", &resource, || {
                        self.ssm
                            .get_parameters_by_path()
                            .path(&path)
                            .recursive(false)
                            .set_next_token(token.clone())
                            .send()
                    })
                    .await?;
                for p in out.parameters() {
                    let number = p
                        .name()
                        .and_then(|n| n.rsplit('/').next())
                        .and_then(|n| n.parse::<u64>().ok());
                    // A value this version cannot read stands for a held lease.
                    let holder = p
                        .value()
                        .and_then(|v| serde_json::from_str::<Holder>(v).ok())
                        .unwrap_or_else(Holder::unreadable);
                    if let Some(number) = number {
                        found.push(Generation::new(
                            number,
                            holder,
                            millis(p.last_modified_date()),
                        ));
                    }
                }
                token = out.next_token().map(str::to_string);
                if token.is_none() {
                    return Ok(found);
                }
            }
        })
    }

    fn create<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        number: u64,
        holder: &'a Holder,
    ) -> BoxFuture<'a, Result<bool, AwsError>> {
        Box::pin(async move {
            let resource = format!("lease of {scope}");
            match ctx
                .call("PutParameter", &resource, || {
                    self.ssm
                        .put_parameter()
                        .name(name(scope, number))
                        .value(value(holder))
                        .r#type(ParameterType::String)
                        .overwrite(false)
                        .description("ecs-facade: a generation of the stack's lease")
                        .send()
                })
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.is_code("ParameterAlreadyExists") => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn overwrite<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        number: u64,
        holder: &'a Holder,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            ctx.call("PutParameter", &format!("lease of {scope}"), || {
                self.ssm
                    .put_parameter()
                    .name(name(scope, number))
                    .value(value(holder))
                    .r#type(ParameterType::String)
                    .overwrite(true)
                    .send()
            })
            .await?;
            Ok(())
        })
    }

    fn delete<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        numbers: &'a [u64],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            for chunk in numbers.chunks(10) {
                ctx.call("DeleteParameters", &format!("lease of {scope}"), || {
                    self.ssm
                        .delete_parameters()
                        .set_names(Some(chunk.iter().map(|n| name(scope, *n)).collect()))
                        .send()
                })
                .await?;
            }
            Ok(())
        })
    }

    fn clear<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
        numbers: &'a [u64],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let resource = format!("lease of {scope}");
            let mut names: Vec<String> = numbers.iter().map(|n| name(scope, *n)).collect();
            names.push(format!("{}/clock", scope.path()));
            // Names that do not exist are reported as invalid, not as an error.
            for chunk in names.chunks(10) {
                ctx.call("DeleteParameters", &resource, || {
                    self.ssm
                        .delete_parameters()
                        .set_names(Some(chunk.to_vec()))
                        .send()
                })
                .await?;
            }
            Ok(())
        })
    }

    fn now<'a>(
        &'a self,
        ctx: &'a Context,
        scope: &'a LeaseScope,
    ) -> BoxFuture<'a, Result<i64, AwsError>> {
        Box::pin(async move {
            let resource = format!("lease of {scope}");
            let probe = format!("{}/clock", scope.path());
            ctx.call("PutParameter", &resource, || {
                self.ssm
                    .put_parameter()
                    .name(&probe)
                    .value(ctx.run_id())
                    .r#type(ParameterType::String)
                    .overwrite(true)
                    .send()
            })
            .await?;
            let out = ctx
                .call("GetParameter", &resource, || {
                    self.ssm.get_parameter().name(&probe).send()
                })
                .await?;
            match out.parameter().and_then(|p| p.last_modified_date()) {
                Some(t) => Ok(millis(Some(t))),
                None => Err(AwsError::new(
                    "GetParameter",
                    resource,
                    None,
                    "SSM did not say when the lease's clock probe was written",
                    AwsErrorKind::Other,
                )),
            }
        })
    }
}
