//! The ECS cluster: Container Insights, Fargate capacity providers and the default strategy.

use std::time::Duration;

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ClusterField, ClusterSetting, ClusterSettingName,
};
use aws_sdk_ecs::Client;
use ecs_core::resource::{Diff, Owner, Ownership, Resource};
use ecs_core::{Context, FieldDiff, RetryOn, TagDiff, Tags};

use crate::spec::{ClusterSpec, StrategyItem};
use crate::{tagging, Error, Result};

/// The resource kind in plans and events.
pub(crate) const KIND: &str = "ecs-cluster";

/// The cluster's logical id (its `ecs:resource` tag).
pub(crate) const LOGICAL: &str = "cluster";

/// A cluster as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveCluster {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) insights: bool,
    pub(crate) providers: Vec<String>,
    pub(crate) strategy: Vec<String>,
    pub(crate) tags: Tags,
}

fn providers(spec: &ClusterSpec) -> Vec<String> {
    let mut p: Vec<String> = spec
        .capacity_providers
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    p.sort();
    p
}

pub(crate) fn strategy_strings(items: &[StrategyItem]) -> Vec<String> {
    let mut s: Vec<String> = items.iter().map(ToString::to_string).collect();
    s.sort();
    s
}

pub(crate) fn strategy_items(items: &[StrategyItem]) -> Vec<CapacityProviderStrategyItem> {
    items
        .iter()
        .map(|i| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(i.provider.as_str())
                .weight(i.weight as i32)
                .base(i.base as i32)
                .build()
                .expect("capacity provider is set")
        })
        .collect()
}

pub(crate) fn live_strategy(items: &[CapacityProviderStrategyItem]) -> Vec<String> {
    let mut s: Vec<String> = items
        .iter()
        .map(|i| format!("{}:{}+{}", i.capacity_provider(), i.weight(), i.base()))
        .collect();
    s.sort();
    s
}

/// Reads the cluster: `None` when absent or inactive. Whether it is the stack's is the
/// engine's check ([`Cluster`]'s ownership is its tag).
pub(crate) async fn observe(
    ctx: &Context,
    ecs: &Client,
    name: &str,
) -> Result<Option<LiveCluster>> {
    let out = ctx
        .call("DescribeClusters", &format!("{KIND} {name}"), || {
            ecs.describe_clusters()
                .clusters(name)
                .include(ClusterField::Tags)
                .include(ClusterField::Settings)
                .send()
        })
        .await?;
    let Some(c) = out
        .clusters()
        .iter()
        .find(|c| c.cluster_name() == Some(name) && c.status() != Some("INACTIVE"))
    else {
        return Ok(None);
    };
    let mut providers = c.capacity_providers().to_vec();
    providers.sort();
    Ok(Some(LiveCluster {
        name: name.to_string(),
        arn: c.cluster_arn().unwrap_or_default().to_string(),
        insights: c.settings().iter().any(|s| {
            s.name() == Some(&ClusterSettingName::ContainerInsights)
                && matches!(s.value(), Some("enabled" | "enhanced"))
        }),
        providers,
        strategy: live_strategy(c.default_capacity_provider_strategy()),
        tags: Tags::from_pairs(c.tags().iter().map(|t| (t.key(), t.value()))),
    }))
}

/// One typed difference of the cluster: each is set right by its own call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClusterDiff {
    /// Container Insights on or off (`UpdateCluster`).
    ContainerInsights { live: bool, want: bool },
    /// The capacity providers (`PutClusterCapacityProviders`, with the strategy).
    CapacityProviders {
        live: Vec<String>,
        want: Vec<String>,
    },
    /// The default capacity provider strategy (the same call).
    DefaultStrategy {
        live: Vec<String>,
        want: Vec<String>,
    },
    /// The tags (`TagResource` / `UntagResource`).
    Tags(TagDiff),
}

impl Diff for ClusterDiff {
    fn field(&self) -> FieldDiff {
        match self {
            ClusterDiff::ContainerInsights { live, want } => {
                FieldDiff::new("container_insights", live, want)
            }
            ClusterDiff::CapacityProviders { live, want } => {
                FieldDiff::new("capacity_providers", live.join(","), want.join(","))
            }
            ClusterDiff::DefaultStrategy { live, want } => {
                FieldDiff::new("default_strategy", live.join(","), want.join(","))
            }
            ClusterDiff::Tags(t) => t.field(),
        }
    }
}

/// The cluster as desired: its name, its spec and the tags it should carry.
#[derive(Debug, Clone)]
pub(crate) struct Cluster<'a> {
    pub(crate) name: &'a str,
    pub(crate) spec: &'a ClusterSpec,
    pub(crate) tags: Tags,
}

fn insights(spec: &ClusterSpec) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if spec.container_insights {
            "enabled"
        } else {
            "disabled"
        })
        .build()
}

impl Cluster<'_> {
    fn resource(&self) -> String {
        format!("{KIND} {}", self.name)
    }
}

impl Resource for Cluster<'_> {
    const KIND: &'static str = KIND;
    const OWNERSHIP: Ownership = Ownership::Tag;
    type Client = Client;
    type Live = LiveCluster;
    type Diff = ClusterDiff;
    /// Its ARN.
    type Output = String;
    type Error = Error;

    /// Its name (plans name the cluster by it).
    fn logical_id(&self) -> String {
        self.name.to_string()
    }

    fn owner(live: &LiveCluster) -> Owner<'_> {
        Owner::Tags(&live.tags)
    }

    fn diff(&self, live: &LiveCluster) -> Vec<ClusterDiff> {
        let mut d = Vec::new();
        if self.spec.container_insights != live.insights {
            d.push(ClusterDiff::ContainerInsights {
                live: live.insights,
                want: self.spec.container_insights,
            });
        }
        if providers(self.spec) != live.providers {
            d.push(ClusterDiff::CapacityProviders {
                live: live.providers.clone(),
                want: providers(self.spec),
            });
        }
        let want = strategy_strings(&self.spec.default_strategy);
        if want != live.strategy {
            d.push(ClusterDiff::DefaultStrategy {
                live: live.strategy.clone(),
                want,
            });
        }
        d.extend(self.tags.diff_from(&live.tags).map(ClusterDiff::Tags));
        d
    }

    fn output(live: &LiveCluster) -> String {
        live.arn.clone()
    }

    fn created(arn: &String) -> Option<String> {
        Some(arn.clone())
    }

    async fn create(&self, ctx: &Context, ecs: &Client) -> Result<String> {
        // The first cluster of an account creates ECS's service-linked role, which takes a
        // moment to become usable (AWS-NOTES.md).
        let retry = RetryOn::codes(&[], Duration::from_secs(120)).message(
            "InvalidParameterException",
            "Unable to assume the service linked role",
        );
        let tags = self
            .tags
            .to_sdk(|k, v| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
        let out = ctx
            .call_retrying("CreateCluster", &self.resource(), &retry, || {
                ecs.create_cluster()
                    .cluster_name(self.name)
                    .settings(insights(self.spec))
                    .set_capacity_providers(Some(providers(self.spec)))
                    .set_default_capacity_provider_strategy(Some(strategy_items(
                        &self.spec.default_strategy,
                    )))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        Ok(out
            .cluster()
            .and_then(|c| c.cluster_arn())
            .unwrap_or_default()
            .to_string())
    }

    /// Each difference is set right by its own call; the two capacity differences share one.
    async fn update(
        &self,
        ctx: &Context,
        ecs: &Client,
        live: &LiveCluster,
        diffs: &[ClusterDiff],
    ) -> Result<()> {
        let resource = self.resource();
        let mut capacity_put = false;
        for diff in diffs {
            match diff {
                ClusterDiff::ContainerInsights { .. } => {
                    ctx.call("UpdateCluster", &resource, || {
                        ecs.update_cluster()
                            .cluster(self.name)
                            .settings(insights(self.spec))
                            .send()
                    })
                    .await?;
                }
                ClusterDiff::CapacityProviders { .. } | ClusterDiff::DefaultStrategy { .. } => {
                    if !std::mem::replace(&mut capacity_put, true) {
                        ctx.call("PutClusterCapacityProviders", &resource, || {
                            ecs.put_cluster_capacity_providers()
                                .cluster(self.name)
                                .set_capacity_providers(Some(providers(self.spec)))
                                .set_default_capacity_provider_strategy(Some(strategy_items(
                                    &self.spec.default_strategy,
                                )))
                                .send()
                        })
                        .await?;
                    }
                }
                ClusterDiff::Tags(t) => tagging::ecs(ctx, ecs, &resource, &live.arn, t).await?,
            }
        }
        Ok(())
    }

    /// Deletes the cluster, retrying while its services and tasks drain.
    async fn delete(ctx: &Context, ecs: &Client, live: &LiveCluster) -> Result<()> {
        let name = &live.name;
        let retry = RetryOn::codes(
            &[
                "ClusterContainsServicesException",
                "ClusterContainsTasksException",
                "UpdateInProgressException",
            ],
            Duration::from_secs(600),
        );
        match ctx
            .call_retrying("DeleteCluster", &format!("{KIND} {name}"), &retry, || {
                ecs.delete_cluster().cluster(name).send()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_code("ClusterNotFoundException") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod typed_diff_tests {
    use super::*;

    fn diffs(spec: &ClusterSpec, tags: &Tags, live: &LiveCluster) -> Vec<ClusterDiff> {
        Cluster {
            name: "web",
            spec,
            tags: tags.clone(),
        }
        .diff(live)
    }

    fn live() -> LiveCluster {
        LiveCluster {
            name: "web".into(),
            arn: "arn:aws:ecs:us-east-1:123456789012:cluster/web".into(),
            insights: true,
            providers: vec!["FARGATE".into(), "FARGATE_SPOT".into()],
            strategy: Vec::new(),
            tags: Tags::new().with("ecs:stack", "web"),
        }
    }

    #[test]
    fn each_difference_is_one_typed_diff_rendered_under_its_plan_name() {
        let want_tags = Tags::new().with("ecs:stack", "web");
        let matching = ClusterSpec {
            container_insights: true,
            default_strategy: Vec::new(),
            ..ClusterSpec::default()
        };
        let mut l = live();
        l.providers = providers(&matching);
        assert_eq!(diffs(&matching, &want_tags, &l), vec![]);

        let off = ClusterSpec {
            container_insights: false,
            ..matching.clone()
        };
        let d = diffs(&off, &want_tags, &l);
        assert_eq!(
            d,
            [ClusterDiff::ContainerInsights {
                live: true,
                want: false
            }]
        );
        assert_eq!(
            d[0].field(),
            FieldDiff::new("container_insights", true, false)
        );

        let spot = ClusterSpec {
            default_strategy: vec![StrategyItem::spot()],
            ..matching.clone()
        };
        let d = diffs(&spot, &want_tags, &l);
        assert!(
            matches!(&d[..], [ClusterDiff::DefaultStrategy { live, .. }] if live.is_empty()),
            "{d:?}"
        );
        assert_eq!(d[0].field().field, "default_strategy");

        let retag = diffs(&matching, &want_tags.clone().with("team", "a"), &l);
        assert!(matches!(&retag[..], [ClusterDiff::Tags(t)] if t.set.get("team") == Some("a")));
        assert_eq!(retag[0].field().field, "tags");
    }
}
