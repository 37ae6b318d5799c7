//! A stateful fake of CloudWatch Logs log groups (feature `fake-logs`): what a mocked Logs
//! client answers from, and what its mutating calls change.
//!
//! [`FakeLogs`] holds a [`LogsState`] (log groups with their retention, KMS key and tags) and
//! builds the mock rules that answer from it; every call is recorded, input included, in the
//! [`Journal`] the fake was made with. As CloudWatch Logs does, `CreateLogGroup` refuses a
//! name that exists, `PutRetentionPolicy` a retention it does not offer
//! ([`RETENTION_DAYS`]), and tags are read, set and removed by the group's ARN
//! ([`log_group_arn`], without the `:*` that `DescribeLogGroups` appends to `arn`).
//!
//! ```
//! use ecs_core::testing::{FakeLogs, Journal};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeLogs::new(&Journal::default(), Default::default());
//! let logs = fake.client();
//! logs.create_log_group().log_group_name("/ecs/web").send().await.unwrap();
//! logs.put_retention_policy().log_group_name("/ecs/web").retention_in_days(30).send().await.unwrap();
//! assert_eq!(fake.state().log_groups["/ecs/web"].retention, Some(30));
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

// The rules answer with the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::error::ErrorMetadata;
use aws_sdk_cloudwatchlogs::operation::associate_kms_key::*;
use aws_sdk_cloudwatchlogs::operation::create_log_group::*;
use aws_sdk_cloudwatchlogs::operation::delete_log_group::*;
use aws_sdk_cloudwatchlogs::operation::describe_log_groups::*;
use aws_sdk_cloudwatchlogs::operation::disassociate_kms_key::*;
use aws_sdk_cloudwatchlogs::operation::list_tags_for_resource::*;
use aws_sdk_cloudwatchlogs::operation::put_retention_policy::*;
use aws_sdk_cloudwatchlogs::operation::tag_resource::*;
use aws_sdk_cloudwatchlogs::operation::untag_resource::*;
use aws_sdk_cloudwatchlogs::types::LogGroup;
use aws_sdk_cloudwatchlogs::Client;

use super::{aws_error as error, mock, Rule, ACCOUNT, REGION};

/// The retention periods (days) CloudWatch Logs accepts.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The ARN of the log group `name` (as tags name it: without `:*`).
pub fn log_group_arn(name: &str) -> String {
    format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}")
}

/// One log group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogGroupRecord {
    /// Its retention in days (`None`: kept forever).
    pub retention: Option<i32>,
    /// The KMS key that encrypts it.
    pub kms_key: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl LogGroupRecord {
    /// The group `name` as `DescribeLogGroups` returns it (`arn` with `:*`, `logGroupArn`
    /// without).
    pub fn described(&self, name: &str) -> LogGroup {
        let arn = log_group_arn(name);
        LogGroup::builder()
            .log_group_name(name)
            .arn(format!("{arn}:*"))
            .log_group_arn(arn)
            .creation_time(1_767_225_600_000)
            .set_retention_in_days(self.retention)
            .set_kms_key_id(self.kms_key.clone())
            .build()
    }
}

/// What the fake account holds.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogsState {
    /// The log groups, by name.
    pub log_groups: BTreeMap<String, LogGroupRecord>,
}

fn not_found(name: &str) -> ErrorMetadata {
    error(
        "ResourceNotFoundException",
        format!("The specified log group does not exist: {name}"),
    )
}

fn by_arn<'a>(s: &'a mut LogsState, arn: &str) -> Result<&'a mut LogGroupRecord, ErrorMetadata> {
    s.log_groups
        .iter_mut()
        .find(|(name, _)| log_group_arn(name) == arn)
        .map(|(_, g)| g)
        .ok_or_else(|| {
            error(
                "ResourceNotFoundException",
                format!("The specified resource does not exist: {arn}"),
            )
        })
}

fake_handle! {
    /// A stateful fake of CloudWatch Logs log groups over a [`LogsState`]. See the
    /// [module](self) docs.
    FakeLogs,
    LogsState,
    aws_sdk_cloudwatchlogs
}

impl FakeLogs {
    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        vec![
            j.on(
                w,
                "DescribeLogGroups",
                mock!(Client::describe_log_groups),
                |s, r, _| {
                    let prefix = r.log_group_name_prefix().unwrap_or_default();
                    let groups: Vec<LogGroup> = s
                        .log_groups
                        .iter()
                        .filter(|(name, _)| name.starts_with(prefix))
                        .map(|(name, g)| g.described(name))
                        .collect();
                    Ok::<_, DescribeLogGroupsError>(
                        DescribeLogGroupsOutput::builder()
                            .set_log_groups(Some(groups))
                            .build(),
                    )
                },
            ),
            j.on(
                w,
                "ListTagsForResource",
                mock!(Client::list_tags_for_resource),
                |s, r, _| {
                    let g = by_arn(s, r.resource_arn().unwrap_or_default())
                        .map_err(ListTagsForResourceError::generic)?;
                    Ok(ListTagsForResourceOutput::builder()
                        .set_tags(Some(g.tags.clone().into_iter().collect()))
                        .build())
                },
            ),
            j.on(w, "TagResource", mock!(Client::tag_resource), |s, r, _| {
                let g = by_arn(s, r.resource_arn().unwrap_or_default())
                    .map_err(TagResourceError::generic)?;
                for (k, v) in r.tags().into_iter().flatten() {
                    g.tags.insert(k.clone(), v.clone());
                }
                Ok(TagResourceOutput::builder().build())
            }),
            j.on(
                w,
                "UntagResource",
                mock!(Client::untag_resource),
                |s, r, _| {
                    let g = by_arn(s, r.resource_arn().unwrap_or_default())
                        .map_err(UntagResourceError::generic)?;
                    for k in r.tag_keys() {
                        g.tags.remove(k);
                    }
                    Ok(UntagResourceOutput::builder().build())
                },
            ),
            j.on(
                w,
                "CreateLogGroup",
                mock!(Client::create_log_group),
                |s, r, _| {
                    let name = r.log_group_name().unwrap_or_default();
                    if s.log_groups.contains_key(name) {
                        return Err(CreateLogGroupError::generic(error(
                            "ResourceAlreadyExistsException",
                            "The specified log group already exists",
                        )));
                    }
                    s.log_groups.insert(
                        name.to_string(),
                        LogGroupRecord {
                            retention: None,
                            kms_key: r.kms_key_id().map(str::to_string),
                            tags: r
                                .tags()
                                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                                .unwrap_or_default(),
                        },
                    );
                    Ok(CreateLogGroupOutput::builder().build())
                },
            ),
            j.on(
                w,
                "PutRetentionPolicy",
                mock!(Client::put_retention_policy),
                |s, r, _| {
                    let name = r.log_group_name().unwrap_or_default();
                    let days = r.retention_in_days().unwrap_or_default();
                    if !RETENTION_DAYS.contains(&days) {
                        return Err(PutRetentionPolicyError::generic(error(
                            "InvalidParameterException",
                            format!("{days} is not a valid retention in days"),
                        )));
                    }
                    let g = s
                        .log_groups
                        .get_mut(name)
                        .ok_or_else(|| PutRetentionPolicyError::generic(not_found(name)))?;
                    g.retention = Some(days);
                    Ok(PutRetentionPolicyOutput::builder().build())
                },
            ),
            j.on(
                w,
                "AssociateKmsKey",
                mock!(Client::associate_kms_key),
                |s, r, _| {
                    let name = r.log_group_name().unwrap_or_default();
                    let g = s
                        .log_groups
                        .get_mut(name)
                        .ok_or_else(|| AssociateKmsKeyError::generic(not_found(name)))?;
                    g.kms_key = r.kms_key_id().map(str::to_string);
                    Ok(AssociateKmsKeyOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DisassociateKmsKey",
                mock!(Client::disassociate_kms_key),
                |s, r, _| {
                    let name = r.log_group_name().unwrap_or_default();
                    let g = s
                        .log_groups
                        .get_mut(name)
                        .ok_or_else(|| DisassociateKmsKeyError::generic(not_found(name)))?;
                    g.kms_key = None;
                    Ok(DisassociateKmsKeyOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteLogGroup",
                mock!(Client::delete_log_group),
                |s, r, _| {
                    let name = r.log_group_name().unwrap_or_default();
                    match s.log_groups.remove(name) {
                        Some(_) => Ok(DeleteLogGroupOutput::builder().build()),
                        None => Err(DeleteLogGroupError::generic(not_found(name))),
                    }
                },
            ),
        ]
    }
}
