//! A stateful fake of IAM roles (feature `fake-iam`): what a mocked IAM client answers from,
//! and what its mutating calls change.
//!
//! [`FakeIam`] holds an [`IamState`] (roles with their trust policy, attached managed
//! policies, inline policies and tags) and builds the mock rules that answer from it; every
//! call is recorded, input included, in the [`Journal`] the fake was made with. As IAM does,
//! policy documents come back URL-encoded, `CreateRole` refuses a name that exists
//! (`EntityAlreadyExists`), `DeleteRole` refuses a role that still has policies
//! (`DeleteConflict`), and an unknown role or policy is `NoSuchEntity`.
//!
//! ```
//! use ecs_core::testing::{FakeIam, Journal};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeIam::new(&Journal::default(), Default::default());
//! let iam = fake.client();
//! iam.create_role().role_name("web-task").assume_role_policy_document("{}").send().await.unwrap();
//! iam.put_role_policy().role_name("web-task").policy_name("app").policy_document("{}").send().await.unwrap();
//! let err = iam.delete_role().role_name("web-task").send().await.unwrap_err();
//! assert_eq!(aws_sdk_iam::error::ProvideErrorMetadata::code(&err.into_service_error()), Some("DeleteConflict"));
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

// The rules answer with the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::error::ErrorMetadata;
use aws_sdk_iam::operation::attach_role_policy::*;
use aws_sdk_iam::operation::create_role::*;
use aws_sdk_iam::operation::delete_role::*;
use aws_sdk_iam::operation::delete_role_policy::*;
use aws_sdk_iam::operation::detach_role_policy::*;
use aws_sdk_iam::operation::get_role::*;
use aws_sdk_iam::operation::get_role_policy::*;
use aws_sdk_iam::operation::list_attached_role_policies::*;
use aws_sdk_iam::operation::list_role_policies::*;
use aws_sdk_iam::operation::put_role_policy::*;
use aws_sdk_iam::operation::tag_role::*;
use aws_sdk_iam::operation::untag_role::*;
use aws_sdk_iam::operation::update_assume_role_policy::*;
use aws_sdk_iam::types::{AttachedPolicy, Role};
use aws_sdk_iam::Client;

use super::{aws_error as error, mock, retag, Rule, ACCOUNT};

/// Percent-encoding, as IAM returns policy documents.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The ARN of the role `name`.
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// One role.
#[derive(Debug, Clone)]
pub struct IamRole {
    /// The role as `GetRole` returns it (trust policy URL-encoded, tags included).
    pub role: Role,
    /// The ARNs of the managed policies attached to it.
    pub managed: BTreeSet<String>,
    /// Its inline policies by name (plain JSON; URL-encoded when returned).
    pub inline: BTreeMap<String, String>,
}

impl IamRole {
    /// `role` with no policies.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            managed: BTreeSet::new(),
            inline: BTreeMap::new(),
        }
    }
}

/// What the fake account holds.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct IamState {
    /// The roles, by name.
    pub roles: BTreeMap<String, IamRole>,
}

fn no_role(name: Option<&str>) -> ErrorMetadata {
    let name = name.unwrap_or_default();
    error(
        "NoSuchEntity",
        format!("The role with name {name} cannot be found."),
    )
}

fn role<'a>(s: &'a mut IamState, name: Option<&str>) -> Result<&'a mut IamRole, ErrorMetadata> {
    s.roles
        .get_mut(name.unwrap_or_default())
        .ok_or_else(|| no_role(name))
}

fake_handle! {
    /// A stateful fake of IAM roles over an [`IamState`]. See the [module](self) docs.
    FakeIam,
    IamState,
    aws_sdk_iam
}

impl FakeIam {
    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        vec![
            j.on(w, "GetRole", mock!(Client::get_role), |s, r, _| {
                let x = role(s, r.role_name()).map_err(GetRoleError::generic)?;
                Ok(GetRoleOutput::builder().role(x.role.clone()).build())
            }),
            j.on(
                w,
                "ListAttachedRolePolicies",
                mock!(Client::list_attached_role_policies),
                |s, r, _| {
                    let x =
                        role(s, r.role_name()).map_err(ListAttachedRolePoliciesError::generic)?;
                    Ok(ListAttachedRolePoliciesOutput::builder()
                        .set_attached_policies(Some(
                            x.managed
                                .iter()
                                .map(|arn| {
                                    AttachedPolicy::builder()
                                        .policy_arn(arn)
                                        .policy_name(arn.rsplit('/').next().unwrap_or(arn.as_str()))
                                        .build()
                                })
                                .collect(),
                        ))
                        .is_truncated(false)
                        .build())
                },
            ),
            j.on(
                w,
                "ListRolePolicies",
                mock!(Client::list_role_policies),
                |s, r, _| {
                    let x = role(s, r.role_name()).map_err(ListRolePoliciesError::generic)?;
                    Ok(ListRolePoliciesOutput::builder()
                        .set_policy_names(Some(x.inline.keys().cloned().collect()))
                        .is_truncated(false)
                        .build()
                        .expect("policy names are set"))
                },
            ),
            j.on(
                w,
                "GetRolePolicy",
                mock!(Client::get_role_policy),
                |s, r, _| {
                    let policy = r.policy_name().unwrap_or_default();
                    let x = role(s, r.role_name()).map_err(GetRolePolicyError::generic)?;
                    match x.inline.get(policy) {
                        Some(doc) => Ok(GetRolePolicyOutput::builder()
                            .role_name(x.role.role_name())
                            .policy_name(policy)
                            .policy_document(url_encode(doc))
                            .build()
                            .expect("names and document are set")),
                        None => Err(GetRolePolicyError::generic(error(
                            "NoSuchEntity",
                            format!("The role policy with name {policy} cannot be found."),
                        ))),
                    }
                },
            ),
            j.on(w, "CreateRole", mock!(Client::create_role), |s, r, _| {
                let name = r.role_name().unwrap_or_default();
                if s.roles.contains_key(name) {
                    return Err(CreateRoleError::generic(error(
                        "EntityAlreadyExists",
                        format!("Role with name {name} already exists."),
                    )));
                }
                let created = Role::builder()
                    .path(r.path().unwrap_or("/"))
                    .role_name(name)
                    .role_id(format!("AROA{}", name.to_uppercase().replace('-', "")))
                    .arn(role_arn(name))
                    .create_date(aws_sdk_iam::primitives::DateTime::from_secs(0))
                    .set_assume_role_policy_document(
                        r.assume_role_policy_document().map(url_encode),
                    )
                    .set_description(r.description().map(str::to_string))
                    .set_tags(Some(r.tags().to_vec()))
                    .build()
                    .expect("required fields are set");
                s.roles
                    .insert(name.to_string(), IamRole::new(created.clone()));
                Ok(CreateRoleOutput::builder().role(created).build())
            }),
            j.on(
                w,
                "UpdateAssumeRolePolicy",
                mock!(Client::update_assume_role_policy),
                |s, r, _| {
                    let x = role(s, r.role_name()).map_err(UpdateAssumeRolePolicyError::generic)?;
                    x.role.assume_role_policy_document = r.policy_document().map(url_encode);
                    Ok(UpdateAssumeRolePolicyOutput::builder().build())
                },
            ),
            j.on(
                w,
                "AttachRolePolicy",
                mock!(Client::attach_role_policy),
                |s, r, _| {
                    let x = role(s, r.role_name()).map_err(AttachRolePolicyError::generic)?;
                    x.managed
                        .insert(r.policy_arn().unwrap_or_default().to_string());
                    Ok(AttachRolePolicyOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DetachRolePolicy",
                mock!(Client::detach_role_policy),
                |s, r, _| {
                    let arn = r.policy_arn().unwrap_or_default();
                    let x = role(s, r.role_name()).map_err(DetachRolePolicyError::generic)?;
                    if x.managed.remove(arn) {
                        Ok(DetachRolePolicyOutput::builder().build())
                    } else {
                        Err(DetachRolePolicyError::generic(error(
                            "NoSuchEntity",
                            format!("Policy {arn} was not found."),
                        )))
                    }
                },
            ),
            j.on(
                w,
                "PutRolePolicy",
                mock!(Client::put_role_policy),
                |s, r, _| {
                    let x = role(s, r.role_name()).map_err(PutRolePolicyError::generic)?;
                    x.inline.insert(
                        r.policy_name().unwrap_or_default().to_string(),
                        r.policy_document().unwrap_or_default().to_string(),
                    );
                    Ok(PutRolePolicyOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteRolePolicy",
                mock!(Client::delete_role_policy),
                |s, r, _| {
                    let policy = r.policy_name().unwrap_or_default();
                    let x = role(s, r.role_name()).map_err(DeleteRolePolicyError::generic)?;
                    if x.inline.remove(policy).is_some() {
                        Ok(DeleteRolePolicyOutput::builder().build())
                    } else {
                        Err(DeleteRolePolicyError::generic(error(
                            "NoSuchEntity",
                            format!("The role policy with name {policy} cannot be found."),
                        )))
                    }
                },
            ),
            j.on(w, "DeleteRole", mock!(Client::delete_role), |s, r, _| {
                let name = r.role_name().unwrap_or_default();
                let x = role(s, r.role_name()).map_err(DeleteRoleError::generic)?;
                if !x.managed.is_empty() || !x.inline.is_empty() {
                    return Err(DeleteRoleError::generic(error(
                        "DeleteConflict",
                        "Cannot delete entity, must detach all policies first.",
                    )));
                }
                s.roles.remove(name);
                Ok(DeleteRoleOutput::builder().build())
            }),
            j.on(w, "TagRole", mock!(Client::tag_role), |s, r, _| {
                let x = role(s, r.role_name()).map_err(TagRoleError::generic)?;
                let mut tags = x.role.tags().to_vec();
                retag(&mut tags, r.tags(), &[], |t| Some(t.key()));
                x.role.tags = Some(tags);
                Ok(TagRoleOutput::builder().build())
            }),
            j.on(w, "UntagRole", mock!(Client::untag_role), |s, r, _| {
                let x = role(s, r.role_name()).map_err(UntagRoleError::generic)?;
                let mut tags = x.role.tags().to_vec();
                retag(&mut tags, &[], r.tag_keys(), |t| Some(t.key()));
                x.role.tags = Some(tags);
                Ok(UntagRoleOutput::builder().build())
            }),
        ]
    }
}
