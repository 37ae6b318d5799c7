//! A stateful fake of Application Auto Scaling for ECS services (feature `fake-autoscaling`):
//! what a mocked Application Auto Scaling client answers from, and what its mutating calls
//! change.
//!
//! [`FakeAutoScaling`] holds an [`AutoScalingState`] (scalable targets, scaling policies and
//! scheduled actions of ECS services) and builds the mock rules that answer from it; every
//! call is recorded, input included, in the [`Journal`] the fake was made with. As the service
//! does: registering a target again keeps what the call leaves out (capacities, suspended
//! flags) and the tags it was first registered with; a new target needs both capacities and
//! `min ≤ max`; a policy or scheduled action needs its target (`ObjectNotFoundException`), a
//! policy's type must match its configuration; deregistering a target deletes its policies
//! and scheduled actions; deleting what does not exist is `ObjectNotFoundException`.
//!
//! ```
//! use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
//! use ecs_core::testing::{FakeAutoScaling, Journal};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeAutoScaling::new(&Journal::default(), Default::default());
//! fake.client()
//!     .register_scalable_target()
//!     .service_namespace(ServiceNamespace::Ecs)
//!     .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
//!     .resource_id("service/web/web-app")
//!     .min_capacity(1)
//!     .max_capacity(4)
//!     .send()
//!     .await
//!     .unwrap();
//! assert_eq!(fake.state().targets["service/web/web-app"].max, 4);
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

// The rules answer with the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};

use aws_sdk_applicationautoscaling::error::ErrorMetadata;
use aws_sdk_applicationautoscaling::operation::delete_scaling_policy::*;
use aws_sdk_applicationautoscaling::operation::delete_scheduled_action::*;
use aws_sdk_applicationautoscaling::operation::deregister_scalable_target::*;
use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::*;
use aws_sdk_applicationautoscaling::operation::describe_scaling_policies::*;
use aws_sdk_applicationautoscaling::operation::describe_scheduled_actions::*;
use aws_sdk_applicationautoscaling::operation::put_scaling_policy::*;
use aws_sdk_applicationautoscaling::operation::put_scheduled_action::*;
use aws_sdk_applicationautoscaling::operation::register_scalable_target::*;
use aws_sdk_applicationautoscaling::primitives::DateTime;
use aws_sdk_applicationautoscaling::types::{
    PolicyType, ScalableDimension, ScalableTarget, ScalingPolicy, ScheduledAction,
    ServiceNamespace, SuspendedState,
};
use aws_sdk_applicationautoscaling::Client;

use super::{aws_error as error, mock, Rule, ACCOUNT, REGION};

/// The service-linked role Application Auto Scaling uses for ECS services, as it reports it.
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService";

/// A registered scalable target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Its minimum capacity.
    pub min: i32,
    /// Its maximum capacity.
    pub max: i32,
    /// Which scaling is suspended.
    pub suspended: SuspendedState,
    /// The tags given at registration (later registrations do not change them).
    pub tags: HashMap<String, String>,
}

/// A scaling policy: the `PutScalingPolicy` input as stored, and its ARN.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The input of the last `PutScalingPolicy`.
    pub input: PutScalingPolicyInput,
    /// Its ARN.
    pub arn: String,
}

/// What the fake account holds.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AutoScalingState {
    /// Scalable targets by resource id.
    pub targets: BTreeMap<String, Target>,
    /// Policies by resource id and name.
    pub policies: BTreeMap<(String, String), Policy>,
    /// Scheduled actions by resource id and name, as put.
    pub scheduled: BTreeMap<(String, String), PutScheduledActionInput>,
}

impl AutoScalingState {
    /// The names of the policies, in name order.
    pub fn policy_names(&self) -> Vec<String> {
        self.policies.keys().map(|(_, name)| name.clone()).collect()
    }

    /// The names of the scheduled actions, in name order.
    pub fn scheduled_names(&self) -> Vec<String> {
        self.scheduled
            .keys()
            .map(|(_, name)| name.clone())
            .collect()
    }
}

/// The state's key of a policy or scheduled action: resource id and name.
pub fn key(resource_id: &str, name: &str) -> (String, String) {
    (resource_id.to_string(), name.to_string())
}

/// The ARN of the policy `name` of the resource `resource_id`.
pub fn policy_arn(resource_id: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:x:resource/ecs/{resource_id}:policyName/{name}"
    )
}

/// The ARN of the scalable target of `resource_id`.
pub fn target_arn(resource_id: &str) -> String {
    format!(
        "arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/{}",
        resource_id.replace('/', "-")
    )
}

/// What the service says when a resource has no scalable target (yet).
pub fn no_target(resource_id: &str) -> ErrorMetadata {
    error(
        "ObjectNotFoundException",
        format!(
            "No scalable target registered for service namespace: ecs, resource ID: {resource_id}, scalable dimension: ecs:service:DesiredCount"
        ),
    )
}

/// Every kind of scaling suspended (`true`) or resumed (`false`).
pub fn all_suspended(value: bool) -> SuspendedState {
    SuspendedState::builder()
        .dynamic_scaling_in_suspended(value)
        .dynamic_scaling_out_suspended(value)
        .scheduled_scaling_suspended(value)
        .build()
}

/// `new`'s flags where it sets them, `old`'s elsewhere (as `RegisterScalableTarget` does).
fn merge_suspended(old: &SuspendedState, new: Option<&SuspendedState>) -> SuspendedState {
    let pick = |get: fn(&SuspendedState) -> Option<bool>| new.and_then(get).or_else(|| get(old));
    SuspendedState::builder()
        .set_dynamic_scaling_in_suspended(pick(SuspendedState::dynamic_scaling_in_suspended))
        .set_dynamic_scaling_out_suspended(pick(SuspendedState::dynamic_scaling_out_suspended))
        .set_scheduled_scaling_suspended(pick(SuspendedState::scheduled_scaling_suspended))
        .build()
}

fn scalable_target(resource_id: &str, t: &Target) -> ScalableTarget {
    ScalableTarget::builder()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(t.min)
        .max_capacity(t.max)
        .role_arn(ROLE_ARN)
        .creation_time(DateTime::from_secs(0))
        .suspended_state(t.suspended.clone())
        .scalable_target_arn(target_arn(resource_id))
        .build()
        .expect("the target's required fields are set")
}

fn scaling_policy(p: &Policy) -> ScalingPolicy {
    let r = &p.input;
    ScalingPolicy::builder()
        .policy_arn(p.arn.as_str())
        .set_policy_name(r.policy_name().map(str::to_string))
        .service_namespace(ServiceNamespace::Ecs)
        .set_resource_id(r.resource_id().map(str::to_string))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .set_policy_type(r.policy_type().cloned())
        .set_step_scaling_policy_configuration(r.step_scaling_policy_configuration().cloned())
        .set_target_tracking_scaling_policy_configuration(
            r.target_tracking_scaling_policy_configuration().cloned(),
        )
        .creation_time(DateTime::from_secs(0))
        .build()
        .expect("the policy's required fields are set")
}

fn scheduled_action(r: &PutScheduledActionInput) -> ScheduledAction {
    let id = r.resource_id().unwrap_or_default();
    let name = r.scheduled_action_name().unwrap_or_default();
    ScheduledAction::builder()
        .scheduled_action_name(name)
        .scheduled_action_arn(format!(
            "arn:aws:autoscaling:{REGION}:{ACCOUNT}:scheduledAction:x:resource/ecs/{id}:scheduledActionName/{name}"
        ))
        .service_namespace(ServiceNamespace::Ecs)
        .set_schedule(r.schedule().map(str::to_string))
        // AWS reports the default time zone of a schedule put without one.
        .timezone(r.timezone().unwrap_or("UTC"))
        .resource_id(id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .set_scalable_target_action(r.scalable_target_action().cloned())
        .creation_time(DateTime::from_secs(0))
        .build()
        .expect("the action's required fields are set")
}

fake_handle! {
    /// A stateful fake of Application Auto Scaling over an [`AutoScalingState`]. See the
    /// [module](self) docs.
    FakeAutoScaling,
    AutoScalingState,
    aws_sdk_applicationautoscaling
}

impl FakeAutoScaling {
    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        vec![
            j.on(
                w,
                "DescribeScalableTargets",
                mock!(Client::describe_scalable_targets),
                |s, r, _| {
                    let ids = r.resource_ids();
                    let ecs = r.service_namespace() == Some(&ServiceNamespace::Ecs);
                    let targets: Vec<ScalableTarget> = s
                        .targets
                        .iter()
                        .filter(|(id, _)| ecs && (ids.is_empty() || ids.contains(id)))
                        .map(|(id, t)| scalable_target(id, t))
                        .collect();
                    Ok(DescribeScalableTargetsOutput::builder()
                        .set_scalable_targets(Some(targets))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeScalingPolicies",
                mock!(Client::describe_scaling_policies),
                |s, r, _| {
                    let names = r.policy_names();
                    let ecs = r.service_namespace() == Some(&ServiceNamespace::Ecs);
                    let policies: Vec<ScalingPolicy> = s
                        .policies
                        .iter()
                        .filter(|((id, name), _)| {
                            ecs && r.resource_id().is_none_or(|want| want == id.as_str())
                                && (names.is_empty() || names.contains(name))
                        })
                        .map(|(_, p)| scaling_policy(p))
                        .collect();
                    Ok(DescribeScalingPoliciesOutput::builder()
                        .set_scaling_policies(Some(policies))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeScheduledActions",
                mock!(Client::describe_scheduled_actions),
                |s, r, _| {
                    let names = r.scheduled_action_names();
                    let ecs = r.service_namespace() == Some(&ServiceNamespace::Ecs);
                    let actions: Vec<ScheduledAction> = s
                        .scheduled
                        .iter()
                        .filter(|((id, name), _)| {
                            ecs && r.resource_id().is_none_or(|want| want == id.as_str())
                                && (names.is_empty() || names.contains(name))
                        })
                        .map(|(_, a)| scheduled_action(a))
                        .collect();
                    Ok(DescribeScheduledActionsOutput::builder()
                        .set_scheduled_actions(Some(actions))
                        .build())
                },
            ),
            j.on(
                w,
                "RegisterScalableTarget",
                mock!(Client::register_scalable_target),
                |s, r, _| {
                    let invalid = |message: &str| -> Result<
                        RegisterScalableTargetOutput,
                        RegisterScalableTargetError,
                    > {
                        Err(RegisterScalableTargetError::generic(error(
                            "ValidationException",
                            message,
                        )))
                    };
                    if r.service_namespace() != Some(&ServiceNamespace::Ecs)
                        || r.scalable_dimension()
                            != Some(&ScalableDimension::EcsServiceDesiredCount)
                    {
                        return invalid("Unsupported service namespace or scalable dimension");
                    }
                    let id = r.resource_id().unwrap_or_default();
                    let old = s.targets.get(id);
                    let (min, max) = match (old, r.min_capacity(), r.max_capacity()) {
                        (Some(t), min, max) => (min.unwrap_or(t.min), max.unwrap_or(t.max)),
                        (None, Some(min), Some(max)) => (min, max),
                        (None, _, _) => {
                            return invalid(
                                "MinCapacity and MaxCapacity are required to register a new scalable target",
                            )
                        }
                    };
                    if min > max {
                        return invalid("Maximum capacity cannot be less than minimum capacity");
                    }
                    let target = Target {
                        min,
                        max,
                        suspended: merge_suspended(
                            &old.map_or_else(|| all_suspended(false), |t| t.suspended.clone()),
                            r.suspended_state(),
                        ),
                        // Tags are applied when a target is registered, not when it is updated.
                        tags: old.map_or_else(
                            || r.tags().cloned().unwrap_or_default(),
                            |t| t.tags.clone(),
                        ),
                    };
                    s.targets.insert(id.to_string(), target);
                    Ok(RegisterScalableTargetOutput::builder()
                        .scalable_target_arn(target_arn(id))
                        .build())
                },
            ),
            j.on(
                w,
                "PutScalingPolicy",
                mock!(Client::put_scaling_policy),
                |s, r, _| {
                    let id = r.resource_id().unwrap_or_default();
                    let name = r.policy_name().unwrap_or_default();
                    if !s.targets.contains_key(id) {
                        return Err(PutScalingPolicyError::generic(no_target(id)));
                    }
                    let consistent = match r.policy_type() {
                        Some(PolicyType::TargetTrackingScaling) => {
                            r.target_tracking_scaling_policy_configuration().is_some()
                        }
                        Some(PolicyType::StepScaling) => {
                            r.step_scaling_policy_configuration().is_some()
                        }
                        _ => false,
                    };
                    if !consistent {
                        return Err(PutScalingPolicyError::generic(error(
                            "ValidationException",
                            "The policy type does not match the policy's configuration",
                        )));
                    }
                    let arn = policy_arn(id, name);
                    s.policies.insert(
                        key(id, name),
                        Policy {
                            input: r.clone(),
                            arn: arn.clone(),
                        },
                    );
                    Ok(PutScalingPolicyOutput::builder()
                        .policy_arn(arn)
                        .build()
                        .expect("the policy ARN is set"))
                },
            ),
            j.on(
                w,
                "PutScheduledAction",
                mock!(Client::put_scheduled_action),
                |s, r, _| {
                    let id = r.resource_id().unwrap_or_default();
                    let name = r.scheduled_action_name().unwrap_or_default();
                    if !s.targets.contains_key(id) {
                        return Err(PutScheduledActionError::generic(no_target(id)));
                    }
                    // An update keeps what it leaves out.
                    let mut put = r.clone();
                    if let Some(old) = s.scheduled.get(&key(id, name)) {
                        put.schedule = put.schedule.or_else(|| old.schedule.clone());
                        put.timezone = put.timezone.or_else(|| old.timezone.clone());
                        put.start_time = put.start_time.or(old.start_time);
                        put.end_time = put.end_time.or(old.end_time);
                        put.scalable_target_action = put
                            .scalable_target_action
                            .or_else(|| old.scalable_target_action.clone());
                    } else if put.schedule.is_none() {
                        return Err(PutScheduledActionError::generic(error(
                            "ValidationException",
                            "A schedule is required to create a scheduled action",
                        )));
                    }
                    s.scheduled.insert(key(id, name), put);
                    Ok(PutScheduledActionOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteScalingPolicy",
                mock!(Client::delete_scaling_policy),
                |s, r, _| {
                    let id = r.resource_id().unwrap_or_default();
                    let name = r.policy_name().unwrap_or_default();
                    match s.policies.remove(&key(id, name)) {
                        Some(_) => Ok(DeleteScalingPolicyOutput::builder().build()),
                        None => Err(DeleteScalingPolicyError::generic(error(
                            "ObjectNotFoundException",
                            format!("No scaling policy found for resource ID: {id}, policy name: {name}"),
                        ))),
                    }
                },
            ),
            j.on(
                w,
                "DeleteScheduledAction",
                mock!(Client::delete_scheduled_action),
                |s, r, _| {
                    let id = r.resource_id().unwrap_or_default();
                    let name = r.scheduled_action_name().unwrap_or_default();
                    match s.scheduled.remove(&key(id, name)) {
                        Some(_) => Ok(DeleteScheduledActionOutput::builder().build()),
                        None => Err(DeleteScheduledActionError::generic(error(
                            "ObjectNotFoundException",
                            format!("No scheduled action found for resource ID: {id}, scheduled action name: {name}"),
                        ))),
                    }
                },
            ),
            j.on(
                w,
                "DeregisterScalableTarget",
                mock!(Client::deregister_scalable_target),
                |s, r, _| {
                    let id = r.resource_id().unwrap_or_default();
                    if s.targets.remove(id).is_none() {
                        return Err(DeregisterScalableTargetError::generic(no_target(id)));
                    }
                    // Deregistering a target deletes its policies and scheduled actions.
                    s.policies.retain(|(rid, _), _| rid != id);
                    s.scheduled.retain(|(rid, _), _| rid != id);
                    Ok(DeregisterScalableTargetOutput::builder().build())
                },
            ),
        ]
    }
}
