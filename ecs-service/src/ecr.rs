//! ECR: the stack's image repository (scan on push, immutable tags, encryption, lifecycle
//! policy), and registry login credentials for CI pipelines.

use std::fmt;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
};
use aws_sdk_ecr::Client;
use ecs_core::resource::{self, Changed, Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, TagDiff, Tags};
use serde_json::{json, Value};

use crate::spec::RepositorySpec;
use crate::{tagging, Error, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "ecr-repository";

/// The repository's logical id (its `ecs:resource` tag).
pub(crate) const LOGICAL: &str = "repository";

/// A repository as it exists.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveRepo {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) uri: String,
    pub(crate) registry_id: String,
    pub(crate) immutable: bool,
    pub(crate) scan_on_push: bool,
    pub(crate) kms_key: Option<String>,
    pub(crate) lifecycle: Option<Value>,
    pub(crate) tags: Tags,
}

/// An image in an ECR registry, as its URI names it:
/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/REPOSITORY[:TAG|@DIGEST]` (no tag means
/// `latest`).
///
/// ```
/// use ecs_service::EcrImage;
/// let i = EcrImage::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/shop:v42").unwrap();
/// assert_eq!((i.registry_id.as_str(), i.region.as_str(), i.repository.as_str()), ("123456789012", "eu-west-1", "team/shop"));
/// assert_eq!(i.tag.as_deref(), Some("v42"));
/// assert!(EcrImage::parse("nginx:1.27").is_none());
/// let pinned = EcrImage::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:v42@sha256:ab").unwrap();
/// assert_eq!((pinned.repository.as_str(), pinned.digest.as_deref()), ("shop", Some("sha256:ab")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EcrImage {
    /// The registry's id: the account that owns it.
    pub registry_id: String,
    /// The registry's region.
    pub region: String,
    /// The repository's name.
    pub repository: String,
    /// The tag (`latest` when the URI names neither a tag nor a digest).
    pub tag: Option<String>,
    /// The digest (`sha256:…`), when the URI names one.
    pub digest: Option<String>,
}

/// Whether an [`EcrImage`] exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLookup {
    /// The image is in its repository.
    Found,
    /// The repository exists; the tag or digest does not.
    NoSuchImage,
    /// The repository does not exist.
    NoSuchRepository,
}

impl EcrImage {
    /// The ECR image `image` names, or `None` for an image of any other registry.
    pub fn parse(image: &str) -> Option<Self> {
        let (host, path) = image.split_once('/')?;
        let (account, rest) = host.split_once(".dkr.ecr.")?;
        let region = rest
            .strip_suffix(".amazonaws.com")
            .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (repository, tag, digest) = match path.split_once('@') {
            // `repo:tag@digest` names the digest; the tag is a label only.
            Some((repo, digest)) => (
                repo.split_once(':').map_or(repo, |(r, _)| r),
                None,
                Some(digest.to_string()),
            ),
            None => match path.rsplit_once(':') {
                Some((repo, tag)) => (repo, Some(tag.to_string()), None),
                None => (path, Some("latest".to_string()), None),
            },
        };
        (!repository.is_empty() && !region.is_empty()).then(|| EcrImage {
            registry_id: account.to_string(),
            region: region.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// Looks the image up in its registry with `ecr` (a client of the image's region):
    /// one `DescribeImages`, which reads no image content.
    pub async fn lookup(
        &self,
        ctx: &Context,
        ecr: &Client,
    ) -> std::result::Result<ImageLookup, ecs_core::AwsError> {
        let id = aws_sdk_ecr::types::ImageIdentifier::builder()
            .set_image_tag(self.tag.clone())
            .set_image_digest(self.digest.clone())
            .build();
        let resource = format!("ecr-image {}", self.repository);
        match ctx
            .call("DescribeImages", &resource, || {
                ecr.describe_images()
                    .registry_id(&self.registry_id)
                    .repository_name(&self.repository)
                    .image_ids(id.clone())
                    .send()
            })
            .await
        {
            Ok(out) if !out.image_details().is_empty() => Ok(ImageLookup::Found),
            Ok(_) => Ok(ImageLookup::NoSuchImage),
            Err(e) if e.is_code("ImageNotFoundException") => Ok(ImageLookup::NoSuchImage),
            Err(e) if e.is_code("RepositoryNotFoundException") => Ok(ImageLookup::NoSuchRepository),
            Err(e) => Err(e),
        }
    }
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

/// Reads the repository: `None` when absent. Whether it is the stack's is the engine's check
/// ([`Repository`]'s ownership is its tag).
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
    let encryption = repo.encryption_configuration();
    Ok(Some(LiveRepo {
        name: name.to_string(),
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

impl Diff for RepoDiff {
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

/// The repository as desired: its name, its spec and the tags it should carry.
#[derive(Debug, Clone)]
pub(crate) struct Repository<'a> {
    pub(crate) name: &'a str,
    pub(crate) spec: &'a RepositorySpec,
    pub(crate) tags: Tags,
}

impl Repository<'_> {
    fn resource(&self) -> String {
        format!("{KIND} {}", self.name)
    }

    fn mutability(&self) -> ImageTagMutability {
        if self.spec.immutable_tags {
            ImageTagMutability::Immutable
        } else {
            ImageTagMutability::Mutable
        }
    }

    fn scanning(&self) -> ImageScanningConfiguration {
        ImageScanningConfiguration::builder()
            .scan_on_push(self.spec.scan_on_push)
            .build()
    }
}

impl Resource for Repository<'_> {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveRepo;
    type Diff = RepoDiff;
    /// Its URI.
    type Output = String;
    type Error = Error;

    /// Its name (plans name the repository by it).
    fn logical_id(&self) -> String {
        self.name.to_string()
    }

    fn owner(live: &LiveRepo) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveRepo) -> Vec<RepoDiff> {
        diffs(self.spec, &self.tags, live)
    }

    fn replacement(&self, live: &LiveRepo) -> Option<String> {
        kms_differs(self.spec, live).then(|| {
            format!(
                "encryption cannot change after creation ({} → {})",
                live.kms_key.as_deref().unwrap_or("AES256"),
                self.spec.kms_key.as_deref().unwrap_or("AES256")
            )
        })
    }

    fn output(live: &LiveRepo) -> String {
        live.uri.clone()
    }

    fn created(uri: &String) -> Option<String> {
        Some(uri.clone())
    }

    /// Creates it with its tags, encryption and settings, then puts its lifecycle policy. A
    /// repository that appeared since the read and is not the stack's stops the step with
    /// [`Changed`]; one that is (a retried create whose first answer was lost) is brought to
    /// the spec from its diff.
    async fn create(&self, ctx: &Context, ecr: &Client) -> Result<String> {
        let encryption = match &self.spec.kms_key {
            Some(key) => EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Kms)
                .kms_key(key),
            None => EncryptionConfiguration::builder().encryption_type(EncryptionType::Aes256),
        }
        .build()
        .expect("encryption type is set");
        let tags = tagging::ecr_tags(&self.tags);
        let created = ctx
            .call("CreateRepository", &self.resource(), || {
                ecr.create_repository()
                    .repository_name(self.name)
                    .image_tag_mutability(self.mutability())
                    .image_scanning_configuration(self.scanning())
                    .encryption_configuration(encryption.clone())
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        let uri = match created {
            Ok(out) => out
                .repository()
                .and_then(|r| r.repository_uri())
                .unwrap_or_default()
                .to_string(),
            // Our own create, retried after its answer was lost, finds what it made: carried
            // on from its diff. Anyone else's stops the step: the plan no longer holds.
            Err(e) if e.is_code("RepositoryAlreadyExistsException") => {
                let Some(found) = observe(ctx, ecr, self.name).await? else {
                    return Err(e.into());
                };
                if !resource::owned::<Self>(ctx, &found) {
                    return Err(Changed::new(KIND, self.name, "was created by someone else").into());
                }
                let diffs = self.diff(&found);
                self.update(ctx, ecr, &found, &diffs).await?;
                return Ok(found.uri);
            }
            Err(e) => return Err(e.into()),
        };
        ctx.call("PutLifecyclePolicy", &self.resource(), || {
            ecr.put_lifecycle_policy()
                .repository_name(self.name)
                .lifecycle_policy_text(lifecycle_policy(self.spec).to_string())
                .send()
        })
        .await?;
        Ok(uri)
    }

    /// Each difference is set right by its own call, all at once; each runs to its end even
    /// when another fails.
    async fn update(
        &self,
        ctx: &Context,
        ecr: &Client,
        live: &LiveRepo,
        diffs: &[RepoDiff],
    ) -> Result<()> {
        let resource = &self.resource();
        let name = self.name;
        let calls = diffs.iter().map(|diff| async move {
            match diff {
                RepoDiff::ImmutableTags { .. } => ctx
                    .call("PutImageTagMutability", resource, || {
                        ecr.put_image_tag_mutability()
                            .repository_name(name)
                            .image_tag_mutability(self.mutability())
                            .send()
                    })
                    .await
                    .map(|_| ())?,
                RepoDiff::ScanOnPush { .. } => ctx
                    .call("PutImageScanningConfiguration", resource, || {
                        ecr.put_image_scanning_configuration()
                            .repository_name(name)
                            .image_scanning_configuration(self.scanning())
                            .send()
                    })
                    .await
                    .map(|_| ())?,
                RepoDiff::LifecyclePolicy { want, .. } => ctx
                    .call("PutLifecyclePolicy", resource, || {
                        ecr.put_lifecycle_policy()
                            .repository_name(name)
                            .lifecycle_policy_text(want.to_string())
                            .send()
                    })
                    .await
                    .map(|_| ())?,
                RepoDiff::Tags(t) => tagging::ecr(ctx, ecr, resource, &live.arn, t).await?,
            }
            Ok::<_, Error>(())
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    /// Deletes it with its images.
    async fn delete(ctx: &Context, ecr: &Client, live: &LiveRepo) -> Result<()> {
        match ctx
            .call("DeleteRepository", &format!("{KIND} {}", live.name), || {
                ecr.delete_repository()
                    .repository_name(&live.name)
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
        .ok_or_else(|| resource::NotFound::new("ecr authorization data", "registry"))?;
    let decoded = data
        .authorization_token()
        .and_then(|t| aws_smithy_types::base64::decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| resource::NotFound::new("ecr authorization token", "user:password"))?;
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

    #[test]
    fn each_difference_is_one_typed_diff_rendered_under_its_plan_name() {
        let spec = RepositorySpec::builder().build();
        let tags = Tags::new().with("ecs:stack", "web");
        let live = LiveRepo {
            name: "web-app".into(),
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
