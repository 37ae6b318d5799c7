//! Scheduled actions: range changes on a schedule, the stack's by their name prefix.

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{
    ScalableDimension, ScalableTargetAction, ServiceNamespace,
};
use aws_sdk_applicationautoscaling::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, RetryOn};

use crate::{opt, Error, Result};

/// The kind, as plans and events name it.
pub(crate) const KIND: &str = "scheduled-action";

/// A scheduled action in comparable form: schedule, time zone, min, max.
pub(crate) type ScheduleDoc = (String, Option<String>, Option<i32>, Option<i32>);

/// A scheduled action as a read found it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveSchedule {
    pub(crate) resource_id: String,
    pub(crate) name: String,
    pub(crate) doc: ScheduleDoc,
}

/// A field of a scheduled action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScheduleField {
    Schedule,
    TimeZone,
    Min,
    Max,
}

/// One typed difference: all are set by one `PutScheduledAction` with the whole action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScheduleDiff {
    pub(crate) field: ScheduleField,
    pub(crate) live: String,
    pub(crate) want: String,
}

impl Diff for ScheduleDiff {
    fn field(&self) -> FieldDiff {
        let name = match self.field {
            ScheduleField::Schedule => "schedule",
            ScheduleField::TimeZone => "time_zone",
            ScheduleField::Min => "min",
            ScheduleField::Max => "max",
        };
        FieldDiff::new(name, &self.live, &self.want)
    }
}

/// The fields of `have` and `want` that differ.
pub(crate) fn schedule_diffs(have: &ScheduleDoc, want: &ScheduleDoc) -> Vec<ScheduleDiff> {
    let mut d = Vec::new();
    let mut cmp = |field, live: String, want: String| {
        if live != want {
            d.push(ScheduleDiff { field, live, want });
        }
    };
    cmp(ScheduleField::Schedule, have.0.clone(), want.0.clone());
    cmp(ScheduleField::TimeZone, opt(&have.1), opt(&want.1));
    cmp(ScheduleField::Min, opt(&have.2), opt(&want.2));
    cmp(ScheduleField::Max, opt(&have.3), opt(&want.3));
    d
}

/// A scheduled action as desired, on the target `resource_id`.
#[derive(Debug, Clone)]
pub(crate) struct Schedule<'a> {
    pub(crate) resource_id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) doc: &'a ScheduleDoc,
}

impl Schedule<'_> {
    /// Puts it whole (retried while the target just registered is unknown to the API).
    async fn put(&self, ctx: &Context, aas: &Client) -> Result<()> {
        let retry = RetryOn::codes(&["ObjectNotFoundException"], Duration::from_secs(60));
        let (schedule, tz, min, max) = self.doc;
        ctx.call_retrying(
            "PutScheduledAction",
            &format!("{KIND} {}", self.name),
            &retry,
            || {
                aas.put_scheduled_action()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(self.resource_id)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                    .scheduled_action_name(self.name)
                    .schedule(schedule)
                    .set_timezone(tz.clone())
                    .scalable_target_action(
                        ScalableTargetAction::builder()
                            .set_min_capacity(*min)
                            .set_max_capacity(*max)
                            .build(),
                    )
                    .send()
            },
        )
        .await?;
        Ok(())
    }
}

impl Resource for Schedule<'_> {
    const KIND: &'static str = KIND;
    /// Scheduled actions cannot be tagged: one is the stack's when it sits on the stack's own
    /// service and carries the stack's name prefix (the read keeps only those).
    const OWNERSHIP: Ownership = Ownership::Mark;
    type Client = Client;
    type Live = LiveSchedule;
    type Diff = ScheduleDiff;
    /// Its schedule expression.
    type Output = String;
    type Error = Error;

    fn logical_id(&self) -> String {
        self.name.to_string()
    }

    fn owner(_live: &LiveSchedule) -> Owner<'_> {
        Owner::Mark(true)
    }

    fn diff(&self, live: &LiveSchedule) -> Vec<ScheduleDiff> {
        schedule_diffs(&live.doc, self.doc)
    }

    fn output(live: &LiveSchedule) -> String {
        live.doc.0.clone()
    }

    fn created(schedule: &String) -> Option<String> {
        Some(schedule.clone())
    }

    async fn create(&self, ctx: &Context, aas: &Client) -> Result<String> {
        self.put(ctx, aas).await?;
        Ok(self.doc.0.clone())
    }

    async fn update(
        &self,
        ctx: &Context,
        aas: &Client,
        _live: &LiveSchedule,
        _diffs: &[ScheduleDiff],
    ) -> Result<()> {
        self.put(ctx, aas).await
    }

    /// Deletes it; one already gone counts as deleted.
    async fn delete(ctx: &Context, aas: &Client, live: &LiveSchedule) -> Result<()> {
        match ctx
            .call(
                "DeleteScheduledAction",
                &format!("{KIND} {}", live.name),
                || {
                    aas.delete_scheduled_action()
                        .scheduled_action_name(&live.name)
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
