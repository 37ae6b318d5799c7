//! The scalable target: the service's desired count between a minimum and a maximum,
//! registered with its tags.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace, SuspendedState};
use aws_sdk_applicationautoscaling::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, Tags};

use crate::{Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "scalable-target";
/// Its id in plans.
pub(crate) const LOGICAL: &str = "desired count";

/// The scalable target as a read found it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveTarget {
    pub(crate) resource_id: String,
    pub(crate) min: i32,
    pub(crate) max: i32,
    pub(crate) suspended: bool,
}

/// One typed difference: both are set by one `RegisterScalableTarget`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetDiff {
    Min { live: i32, want: i32 },
    Max { live: i32, want: i32 },
}

impl Diff for TargetDiff {
    fn field(&self) -> FieldDiff {
        match self {
            TargetDiff::Min { live, want } => FieldDiff::new("min", live, want),
            TargetDiff::Max { live, want } => FieldDiff::new("max", live, want),
        }
    }
}

/// The scalable target as desired: the service's resource id and the range.
#[derive(Debug, Clone)]
pub(crate) struct ScalableTarget {
    pub(crate) resource_id: String,
    pub(crate) min: i32,
    pub(crate) max: i32,
}

/// Registers (or re-registers) the target `resource_id` with the range, the suspended state
/// when given, and `tags` (applied only by a first registration).
pub(crate) async fn register(
    ctx: &Context,
    aas: &Client,
    resource_id: &str,
    min: i32,
    max: i32,
    suspended: Option<bool>,
    tags: &Tags,
) -> Result<()> {
    ctx.call(
        "RegisterScalableTarget",
        &format!("{KIND} {resource_id}"),
        || {
            let mut req = aas
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(resource_id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(min)
                .max_capacity(max)
                .set_suspended_state(suspended.map(|s| {
                    SuspendedState::builder()
                        .dynamic_scaling_in_suspended(s)
                        .dynamic_scaling_out_suspended(s)
                        .scheduled_scaling_suspended(s)
                        .build()
                }));
            for (k, v) in tags.iter() {
                req = req.tags(k, v);
            }
            req.send()
        },
    )
    .await?;
    Ok(())
}

impl Resource for ScalableTarget {
    const KIND: &'static str = KIND;
    /// It is the stack's as the scaling of the stack's own service: it is read under that
    /// service's resource id only (moto cannot read its tags back; see the README).
    const OWNERSHIP: Ownership = Ownership::Mark;
    type Client = Client;
    type Live = LiveTarget;
    type Diff = TargetDiff;
    /// Its range.
    type Output = (i32, i32);
    type Error = Error;

    fn logical_id(&self) -> String {
        LOGICAL.to_string()
    }

    fn owner(_live: &LiveTarget) -> Owner<'_> {
        Owner::Mark(true)
    }

    fn diff(&self, live: &LiveTarget) -> Vec<TargetDiff> {
        let mut d = Vec::new();
        if live.min != self.min {
            d.push(TargetDiff::Min {
                live: live.min,
                want: self.min,
            });
        }
        if live.max != self.max {
            d.push(TargetDiff::Max {
                live: live.max,
                want: self.max,
            });
        }
        d
    }

    fn output(live: &LiveTarget) -> (i32, i32) {
        (live.min, live.max)
    }

    fn created((min, max): &(i32, i32)) -> Option<String> {
        Some(format!("{min}–{max} tasks"))
    }

    /// Registers it with the stack's tags.
    async fn create(&self, ctx: &Context, aas: &Client) -> Result<(i32, i32)> {
        let tags = ctx.resource_tags(Some(KIND), None);
        register(ctx, aas, &self.resource_id, self.min, self.max, None, &tags).await?;
        Ok((self.min, self.max))
    }

    /// Registers it again with the range (one call for both bounds).
    async fn update(
        &self,
        ctx: &Context,
        aas: &Client,
        _live: &LiveTarget,
        _diffs: &[TargetDiff],
    ) -> Result<()> {
        register(
            ctx,
            aas,
            &self.resource_id,
            self.min,
            self.max,
            None,
            &Tags::new(),
        )
        .await
    }

    /// Deregisters it: AWS then deletes whatever else is attached to the service's scaling.
    async fn delete(ctx: &Context, aas: &Client, live: &LiveTarget) -> Result<()> {
        match ctx
            .call(
                "DeregisterScalableTarget",
                &format!("{KIND} {}", live.resource_id),
                || {
                    aas.deregister_scalable_target()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&live.resource_id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send()
                },
            )
            .await
        {
            Err(e) if !e.is_code("ObjectNotFoundException") => Err(e.into()),
            _ => Ok(()),
        }
    }
}
