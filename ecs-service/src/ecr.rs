//! ECR: the stack's image repository (scan on push, immutable tags, encryption, lifecycle
//! policy), and registry login credentials for CI pipelines.

use std::fmt;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
};
use aws_sdk_ecr::Client;
use ecs_core::{Action, Change, Context, FieldDiff, TagDiff, Tags};
use serde_json::{json, Value};

use crate::names::conflict;
use crate::spec::RepositorySpec;
use crate::{tagging, Error, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "ecr-repository";

/// The repository's logical id (its `ecs:resource` tag).
pub(crate) const LOGICAL: &str = "repository";

/// A repository as it exists.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveRepo {
    pub(crate) arn: String,
    pub(crate) uri: String,
    pub(crate) registry_id: String,
    pub(crate) immutable: bool,
    pub(crate) scan_on_push: bool,
    pub(crate) kms_key: Option<String>,
    pub(crate) lifecycle: Option<Value>,
    pub(crate) tags: Tags,
}

/// The lifecycle policy for `spec`: untagged images expire after N days; only the last M
/// tagged images are kept.
pub(crate) fn lifecycle_policy(spec: &RepositorySpec) -> Value {
    json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("expire untagged images after {} days", spec.expire_untagged_after_days),
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": spec.expire_untagged_after_days,
                },
                "action": { "type": "expire" },
            },
            {
                "rulePriority": 2,
                "description": format!("keep the last {} tagged images", spec.keep_tagged_images),
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": spec.keep_tagged_images,
                },
                "action": { "type": "expire" },
            },
        ]
    })
}

/// Reads the repository: `None` when absent; a conflict when it is not the stack's.
pub(crate) async fn observe(ctx: &Context, ecr: &Client, name: &str) -> Result<Option<LiveRepo>> {
    let resource = format!("{KIND} {name}");
    let out = match ctx
        .call("DescribeRepositories", &resource, || {
            ecr.describe_repositories().repository_names(name).send()
        })
        .await
    {
        Err(e) if e.is_code("RepositoryNotFoundException") => return Ok(None),
        other => other?,
    };
    let Some(repo) = out.repositories().first() else {
        return Ok(None);
    };
    let arn = repo.repository_arn().unwrap_or_default();
    let (tags, lifecycle) = futures_util::try_join!(
        ctx.call("ListTagsForResource", &resource, || {
            ecr.list_tags_for_resource().resource_arn(arn).send()
        }),
        async {
            match ctx
                .call("GetLifecyclePolicy", &resource, || {
                    ecr.get_lifecycle_policy().repository_name(name).send()
                })
                .await
            {
                Ok(out) => Ok(out
                    .lifecycle_policy_text()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())),
                Err(e) if e.is_code("LifecyclePolicyNotFoundException") => Ok(None),
                Err(e) => Err(e),
            }
        }
    )?;
    let tags = Tags::from_pairs(tags.tags().iter().map(|t| (Some(t.key()), Some(t.value()))));
    if !ctx.owns(tags.iter().map(|(k, v)| (Some(k), Some(v)))) {
        return Err(conflict(ctx, KIND, name));
    }
    let encryption = repo.encryption_configuration();
    Ok(Some(LiveRepo {
        arn: arn.to_string(),
        uri: repo.repository_uri().unwrap_or_default().to_string(),
        registry_id: repo.registry_id().unwrap_or_default().to_string(),
        immutable: repo.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        scan_on_push: repo
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        kms_key: encryption
            .filter(|e| e.encryption_type() != &EncryptionType::Aes256)
            .and_then(|e| e.kms_key().map(str::to_string)),
        lifecycle,
        tags,
    }))
}

fn kms_differs(spec: &RepositorySpec, live: &LiveRepo) -> bool {
    // AWS reports the key's full ARN where the spec may give an id or alias: only a change
    // between AES-256 and KMS, or to a key the reported one does not end with, counts.
    match (&spec.kms_key, &live.kms_key) {
        (None, None) => false,
        (Some(want), Some(have)) => !(have == want || have.ends_with(&format!("/{want}"))),
        _ => true,
    }
}

/// One typed difference of the repository: each is set right by its own call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RepoDiff {
    /// Tag immutability (`PutImageTagMutability`).
    ImmutableTags { live: bool, want: bool },
    /// Scan on push (`PutImageScanningConfiguration`).
    ScanOnPush { live: bool, want: bool },
    /// The lifecycle policy (`PutLifecyclePolicy`); `live` is `None` when it has none.
    LifecyclePolicy { live: Option<Value>, want: Value },
    /// The tags (`TagResource` / `UntagResource`).
    Tags(TagDiff),
}

impl ecs_core::resource::Diff for RepoDiff {
    fn field(&self) -> FieldDiff {
        match self {
            RepoDiff::ImmutableTags { live, want } => FieldDiff::new("immutable_tags", live, want),
            RepoDiff::ScanOnPush { live, want } => FieldDiff::new("scan_on_push", live, want),
            RepoDiff::LifecyclePolicy { live, want } => FieldDiff::new(
                "lifecycle_policy",
                live.as_ref().map_or("none".to_string(), Value::to_string),
                want.to_string(),
            ),
            RepoDiff::Tags(t) => t.field(),
        }
    }
}

fn diffs(spec: &RepositorySpec, tags: &Tags, live: &LiveRepo) -> Vec<RepoDiff> {
    let mut d = Vec::new();
    if spec.immutable_tags != live.immutable {
        d.push(RepoDiff::ImmutableTags {
            live: live.immutable,
            want: spec.immutable_tags,
        });
    }
    if spec.scan_on_push != live.scan_on_push {
        d.push(RepoDiff::ScanOnPush {
            live: live.scan_on_push,
            want: spec.scan_on_push,
        });
    }
    let want = lifecycle_policy(spec);
    if live.lifecycle.as_ref() != Some(&want) {
        d.push(RepoDiff::LifecyclePolicy {
            live: live.lifecycle.clone(),
            want,
        });
    }
    d.extend(tags.diff_from(&live.tags).map(RepoDiff::Tags));
    d
}

/// The plan entry for the repository; `tags` are the ones it should carry.
pub(crate) fn change(
    name: &str,
    spec: &RepositorySpec,
    tags: &Tags,
    live: Option<&LiveRepo>,
) -> Change {
    let action = match live {
        None => Action::Create,
        Some(l) if kms_differs(spec, l) => Action::Replace(format!(
            "encryption cannot change after creation ({} → {})",
            l.kms_key.as_deref().unwrap_or("AES256"),
            spec.kms_key.as_deref().unwrap_or("AES256")
        )),
        Some(l) => Action::from_diffs(
            diffs(spec, tags, l)
                .iter()
                .map(ecs_core::resource::Diff::field)
                .collect(),
        ),
    };
    Change::new(KIND, name, action)
}

/// Creates or updates the repository; returns its URI.
pub(crate) async fn ensure(
    ctx: &Context,
    ecr: &Client,
    name: &str,
    spec: &RepositorySpec,
    want_tags: &Tags,
    live: Option<&LiveRepo>,
) -> Result<String> {
    let resource = format!("{KIND} {name}");
    let mutability = if spec.immutable_tags {
        ImageTagMutability::Immutable
    } else {
        ImageTagMutability::Mutable
    };
    let scanning = ImageScanningConfiguration::builder()
        .scan_on_push(spec.scan_on_push)
        .build();
    let policy = lifecycle_policy(spec);
    let (uri, live) = match live {
        Some(l) => {
            let todo = diffs(spec, want_tags, l);
            if todo.is_empty() {
                return Ok(l.uri.clone());
            }
            (l.uri.clone(), Some((l, todo)))
        }
        None => {
            let encryption = match &spec.kms_key {
                Some(key) => EncryptionConfiguration::builder()
                    .encryption_type(EncryptionType::Kms)
                    .kms_key(key),
                None => EncryptionConfiguration::builder().encryption_type(EncryptionType::Aes256),
            }
            .build()
            .expect("encryption type is set");
            let tags = tagging::ecr_tags(want_tags);
            let created = ctx
                .call("CreateRepository", &resource, || {
                    ecr.create_repository()
                        .repository_name(name)
                        .image_tag_mutability(mutability.clone())
                        .image_scanning_configuration(scanning.clone())
                        .encryption_configuration(encryption.clone())
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await;
            match created {
                Ok(out) => (
                    out.repository()
                        .and_then(|r| r.repository_uri())
                        .unwrap_or_default()
                        .to_string(),
                    None,
                ),
                Err(e) if e.is_code("RepositoryAlreadyExistsException") => {
                    let Some(found) = observe(ctx, ecr, name).await? else {
                        return Err(e.into());
                    };
                    return Box::pin(ensure(ctx, ecr, name, spec, want_tags, Some(&found))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    // What differs (a new repository: its lifecycle policy), each set right by its own call,
    // all at once; each runs to its end even when another fails.
    let (arn, todo) = match live {
        Some((l, todo)) => (l.arn.as_str(), todo),
        None => (
            "",
            vec![RepoDiff::LifecyclePolicy {
                live: None,
                want: policy.clone(),
            }],
        ),
    };
    let calls = todo.iter().map(|diff| {
        let (resource, mutability, scanning, policy) = (&resource, &mutability, &scanning, &policy);
        async move {
            match diff {
                RepoDiff::ImmutableTags { .. } => ctx
                    .call("PutImageTagMutability", resource, || {
                        ecr.put_image_tag_mutability()
                            .repository_name(name)
                            .image_tag_mutability(mutability.clone())
                            .send()
                    })
                    .await
                    .map(|_| ())?,
                RepoDiff::ScanOnPush { .. } => ctx
                    .call("PutImageScanningConfiguration", resource, || {
                        ecr.put_image_scanning_configuration()
                            .repository_name(name)
                            .image_scanning_configuration(scanning.clone())
                            .send()
                    })
                    .await
                    .map(|_| ())?,
                RepoDiff::LifecyclePolicy { .. } => ctx
                    .call("PutLifecyclePolicy", resource, || {
                        ecr.put_lifecycle_policy()
                            .repository_name(name)
                            .lifecycle_policy_text(policy.to_string())
                            .send()
                    })
                    .await
                    .map(|_| ())?,
                RepoDiff::Tags(t) => tagging::ecr(ctx, ecr, resource, arn, t).await?,
            }
            Ok::<_, Error>(())
        }
    });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    Ok(uri)
}

/// Deletes the repository (the stack's, as read) with its images.
pub(crate) async fn delete(ctx: &Context, ecr: &Client, name: &str) -> Result<()> {
    let resource = format!("{KIND} {name}");
    match ctx
        .call("DeleteRepository", &resource, || {
            ecr.delete_repository()
                .repository_name(name)
                .force(true)
                .send()
        })
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_code("RepositoryNotFoundException") => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Credentials for `docker login` to the account's registry, from `GetAuthorizationToken`.
/// The password never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryLogin {
    /// The registry host, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub registry: String,
    /// The user name (`AWS`).
    pub username: String,
    /// The password (valid for 12 hours).
    pub password: String,
    /// When the password expires (seconds since the Unix epoch), when AWS says.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Fetches registry credentials.
pub(crate) async fn login(ctx: &Context, ecr: &Client) -> Result<RegistryLogin> {
    let out = ctx
        .call("GetAuthorizationToken", "ecr registry", || {
            ecr.get_authorization_token().send()
        })
        .await?;
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| Error::NotFound {
            resource: "ecr authorization data".into(),
            id: "registry".into(),
        })?;
    let decoded = data
        .authorization_token()
        .and_then(|t| aws_smithy_types::base64::decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let (username, password) = decoded.split_once(':').ok_or_else(|| Error::NotFound {
        resource: "ecr authorization token".into(),
        id: "user:password".into(),
    })?;
    let registry = data
        .proxy_endpoint()
        .unwrap_or_default()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    Ok(RegistryLogin {
        registry,
        username: username.to_string(),
        password: password.to_string(),
        expires_at: data.expires_at().map(|t| t.secs()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_core::resource::Diff;

    #[test]
    fn each_difference_is_one_typed_diff_rendered_under_its_plan_name() {
        let spec = RepositorySpec::builder().build();
        let tags = Tags::new().with("ecs:stack", "web");
        let live = LiveRepo {
            arn: "arn:aws:ecr:us-east-1:123456789012:repository/web-app".into(),
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app".into(),
            registry_id: "123456789012".into(),
            immutable: true,
            scan_on_push: true,
            kms_key: None,
            lifecycle: Some(lifecycle_policy(&spec)),
            tags: tags.clone(),
        };
        assert_eq!(diffs(&spec, &tags, &live), vec![]);
        let cases: Vec<(LiveRepo, &str)> = vec![
            (
                LiveRepo {
                    immutable: false,
                    ..live.clone()
                },
                "immutable_tags",
            ),
            (
                LiveRepo {
                    scan_on_push: false,
                    ..live.clone()
                },
                "scan_on_push",
            ),
            (
                LiveRepo {
                    lifecycle: None,
                    ..live.clone()
                },
                "lifecycle_policy",
            ),
            (
                LiveRepo {
                    tags: Tags::new(),
                    ..live.clone()
                },
                "tags",
            ),
        ];
        for (drifted, field) in cases {
            let d = diffs(&spec, &tags, &drifted);
            assert_eq!(d.len(), 1, "{field}: {d:?}");
            assert_eq!(d[0].field().field, field);
        }
        assert_eq!(
            RepoDiff::LifecyclePolicy {
                live: None,
                want: json!({})
            }
            .field(),
            FieldDiff::new("lifecycle_policy", "none", "{}")
        );
    }

    #[test]
    fn lifecycle_policy_keeps_tagged_and_expires_untagged() {
        let p = lifecycle_policy(
            &RepositorySpec::builder()
                .keep_tagged_images(5)
                .expire_untagged_after_days(3)
                .build(),
        );
        assert_eq!(p["rules"][0]["selection"]["countNumber"], 3);
        assert_eq!(p["rules"][0]["selection"]["tagStatus"], "untagged");
        assert_eq!(p["rules"][1]["selection"]["countNumber"], 5);
        assert_eq!(
            p["rules"][1]["selection"]["countType"],
            "imageCountMoreThan"
        );
    }

    #[test]
    fn login_debug_redacts_the_password() {
        let l = RegistryLogin {
            registry: "r".into(),
            username: "AWS".into(),
            password: "sentinel-secret".into(),
            expires_at: None,
        };
        assert!(!format!("{l:?}").contains("sentinel-secret"));
    }
}
