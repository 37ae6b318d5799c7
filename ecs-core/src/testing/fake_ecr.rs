//! A stateful fake of ECR repositories (feature `fake-ecr`): what a mocked ECR client answers
//! from, and what its mutating calls change.
//!
//! [`FakeEcr`] holds an [`EcrState`] (repositories with their settings, tags and lifecycle
//! policy) and builds the mock rules that answer from it; every call is recorded, input
//! included, in the [`Journal`] the fake was made with. As ECR does, `CreateRepository`
//! refuses a name that exists (`RepositoryAlreadyExistsException`), an unknown repository is
//! `RepositoryNotFoundException`, a repository without a lifecycle policy answers
//! `LifecyclePolicyNotFoundException`, and tags are read, set and removed by the
//! repository's ARN ([`repository_arn`]). Images and registry logins are not modelled: a test
//! that needs `DescribeImages` or `GetAuthorizationToken` puts its own rules in front
//! ([`FakeEcr::client_with`]).
//!
//! ```
//! use ecs_core::testing::{FakeEcr, Journal};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeEcr::new(&Journal::default(), Default::default());
//! fake.client().create_repository().repository_name("web-app").send().await.unwrap();
//! assert!(fake.state().repositories.contains_key("web-app"));
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

// The rules answer with the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use aws_sdk_ecr::error::ErrorMetadata;
use aws_sdk_ecr::operation::create_repository::*;
use aws_sdk_ecr::operation::delete_repository::*;
use aws_sdk_ecr::operation::describe_repositories::*;
use aws_sdk_ecr::operation::get_lifecycle_policy::*;
use aws_sdk_ecr::operation::list_tags_for_resource::*;
use aws_sdk_ecr::operation::put_image_scanning_configuration::*;
use aws_sdk_ecr::operation::put_image_tag_mutability::*;
use aws_sdk_ecr::operation::put_lifecycle_policy::*;
use aws_sdk_ecr::operation::tag_resource::*;
use aws_sdk_ecr::operation::untag_resource::*;
use aws_sdk_ecr::types::{ImageTagMutability, Repository, Tag};
use aws_sdk_ecr::Client;

use super::{aws_error as error, mock, retag, Rule, ACCOUNT, REGION};

/// The ARN of the repository `name`.
pub fn repository_arn(name: &str) -> String {
    format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}")
}

/// The URI of the repository `name`.
pub fn repository_uri(name: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}")
}

/// One repository.
#[derive(Debug, Clone)]
pub struct EcrRepository {
    /// The repository as `DescribeRepositories` returns it.
    pub repository: Repository,
    /// Its tags.
    pub tags: Vec<Tag>,
    /// Its lifecycle policy (JSON), if it has one.
    pub lifecycle: Option<String>,
}

impl EcrRepository {
    /// `repository` with `tags` and no lifecycle policy.
    pub fn new(repository: Repository, tags: Vec<Tag>) -> Self {
        Self {
            repository,
            tags,
            lifecycle: None,
        }
    }
}

/// What the fake account holds.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EcrState {
    /// The repositories, by name.
    pub repositories: BTreeMap<String, EcrRepository>,
}

fn not_found(name: &str) -> ErrorMetadata {
    error(
        "RepositoryNotFoundException",
        format!("The repository with name '{name}' does not exist in the registry '{ACCOUNT}'"),
    )
}

fn named<'a>(
    s: &'a mut EcrState,
    name: Option<&str>,
) -> Result<&'a mut EcrRepository, ErrorMetadata> {
    let name = name.unwrap_or_default();
    s.repositories.get_mut(name).ok_or_else(|| not_found(name))
}

fn by_arn<'a>(
    s: &'a mut EcrState,
    arn: Option<&str>,
) -> Result<&'a mut EcrRepository, ErrorMetadata> {
    s.repositories
        .values_mut()
        .find(|x| arn.is_some() && x.repository.repository_arn() == arn)
        .ok_or_else(|| not_found(arn.unwrap_or_default()))
}

fake_handle! {
    /// A stateful fake of ECR repositories over an [`EcrState`]. See the [module](self) docs.
    FakeEcr,
    EcrState,
    aws_sdk_ecr
}

impl FakeEcr {
    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        vec![
            j.on(
                w,
                "DescribeRepositories",
                mock!(Client::describe_repositories),
                |s, r, _| {
                    let wanted = r.repository_names();
                    let mut found = Vec::new();
                    for name in wanted {
                        let x = named(s, Some(name)).map_err(DescribeRepositoriesError::generic)?;
                        found.push(x.repository.clone());
                    }
                    if wanted.is_empty() {
                        found = s
                            .repositories
                            .values()
                            .map(|x| x.repository.clone())
                            .collect();
                    }
                    Ok(DescribeRepositoriesOutput::builder()
                        .set_repositories(Some(found))
                        .build())
                },
            ),
            j.on(
                w,
                "ListTagsForResource",
                mock!(Client::list_tags_for_resource),
                |s, r, _| {
                    let x =
                        by_arn(s, r.resource_arn()).map_err(ListTagsForResourceError::generic)?;
                    Ok(ListTagsForResourceOutput::builder()
                        .set_tags(Some(x.tags.clone()))
                        .build())
                },
            ),
            j.on(
                w,
                "GetLifecyclePolicy",
                mock!(Client::get_lifecycle_policy),
                |s, r, _| {
                    let x =
                        named(s, r.repository_name()).map_err(GetLifecyclePolicyError::generic)?;
                    match &x.lifecycle {
                        None => Err(GetLifecyclePolicyError::generic(error(
                            "LifecyclePolicyNotFoundException",
                            "Lifecycle policy does not exist for the repository",
                        ))),
                        Some(text) => Ok(GetLifecyclePolicyOutput::builder()
                            .registry_id(ACCOUNT)
                            .set_repository_name(r.repository_name().map(str::to_string))
                            .lifecycle_policy_text(text)
                            .build()),
                    }
                },
            ),
            j.on(
                w,
                "CreateRepository",
                mock!(Client::create_repository),
                |s, r, _| {
                    let name = r.repository_name().unwrap_or_default();
                    if s.repositories.contains_key(name) {
                        return Err(CreateRepositoryError::generic(error(
                            "RepositoryAlreadyExistsException",
                            format!("The repository with name '{name}' already exists"),
                        )));
                    }
                    let repo = Repository::builder()
                        .repository_arn(repository_arn(name))
                        .registry_id(ACCOUNT)
                        .repository_name(name)
                        .repository_uri(repository_uri(name))
                        .image_tag_mutability(
                            r.image_tag_mutability()
                                .cloned()
                                .unwrap_or(ImageTagMutability::Mutable),
                        )
                        .set_image_scanning_configuration(r.image_scanning_configuration().cloned())
                        .set_encryption_configuration(r.encryption_configuration().cloned())
                        .build();
                    s.repositories.insert(
                        name.to_string(),
                        EcrRepository::new(repo.clone(), r.tags().to_vec()),
                    );
                    Ok(CreateRepositoryOutput::builder().repository(repo).build())
                },
            ),
            j.on(
                w,
                "PutLifecyclePolicy",
                mock!(Client::put_lifecycle_policy),
                |s, r, _| {
                    let x =
                        named(s, r.repository_name()).map_err(PutLifecyclePolicyError::generic)?;
                    x.lifecycle = r.lifecycle_policy_text().map(str::to_string);
                    Ok(PutLifecyclePolicyOutput::builder()
                        .registry_id(ACCOUNT)
                        .set_repository_name(r.repository_name().map(str::to_string))
                        .set_lifecycle_policy_text(x.lifecycle.clone())
                        .build())
                },
            ),
            j.on(
                w,
                "PutImageTagMutability",
                mock!(Client::put_image_tag_mutability),
                |s, r, _| {
                    let x = named(s, r.repository_name())
                        .map_err(PutImageTagMutabilityError::generic)?;
                    x.repository.image_tag_mutability = r.image_tag_mutability().cloned();
                    Ok(PutImageTagMutabilityOutput::builder().build())
                },
            ),
            j.on(
                w,
                "PutImageScanningConfiguration",
                mock!(Client::put_image_scanning_configuration),
                |s, r, _| {
                    let x = named(s, r.repository_name())
                        .map_err(PutImageScanningConfigurationError::generic)?;
                    x.repository.image_scanning_configuration =
                        r.image_scanning_configuration().cloned();
                    Ok(PutImageScanningConfigurationOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteRepository",
                mock!(Client::delete_repository),
                |s, r, _| {
                    let name = r.repository_name().unwrap_or_default();
                    named(s, Some(name)).map_err(DeleteRepositoryError::generic)?;
                    let gone = s.repositories.remove(name).map(|x| x.repository);
                    Ok(DeleteRepositoryOutput::builder()
                        .set_repository(gone)
                        .build())
                },
            ),
            j.on(w, "TagResource", mock!(Client::tag_resource), |s, r, _| {
                let x = by_arn(s, r.resource_arn()).map_err(TagResourceError::generic)?;
                retag(&mut x.tags, r.tags(), &[], |t| Some(t.key()));
                Ok(TagResourceOutput::builder().build())
            }),
            j.on(
                w,
                "UntagResource",
                mock!(Client::untag_resource),
                |s, r, _| {
                    let x = by_arn(s, r.resource_arn()).map_err(UntagResourceError::generic)?;
                    retag(&mut x.tags, &[], r.tag_keys(), |t| Some(t.key()));
                    Ok(UntagResourceOutput::builder().build())
                },
            ),
        ]
    }
}
