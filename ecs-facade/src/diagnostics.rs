//! Manifest problems in the manifest's own terms: each names the key as the manifest writes
//! it (`health_check.path`, not `service.load_balancer.target_group.health_check.path`), with
//! the file, the line and column of that key, and the line itself.

use std::fmt;

use serde::Serialize;

/// One problem of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ManifestProblem {
    /// The manifest's key, e.g. `health_check.path` or `secrets.DB_PASSWORD`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The key's line (from 1), when the manifest writes the key (a value that comes from
    /// the profile has none).
    pub line: Option<usize>,
    /// The key's column (from 1).
    pub column: Option<usize>,
    /// The line's text.
    #[serde(skip)]
    pub text: Option<String>,
}

impl ManifestProblem {
    /// `message` about the stack's `field` (e.g. a pre-flight [`Check`](crate::Check)'s), named
    /// by the key of the manifest `yaml` it comes from and placed at that key.
    pub fn locate(yaml: &str, field: &str, message: &str) -> Self {
        problem(yaml, &keys(yaml), &manifest_key(field), message)
    }

    /// `file:line:column: `key``, or `file: `key`` when the manifest does not write it.
    pub fn position(&self, file: &str) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}: `{}`", self.field),
            _ => format!("{file}: `{}` (the profile's default)", self.field),
        }
    }
}

/// Every problem of a manifest, rendered like a compiler's diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ManifestProblems {
    /// The manifest's file (`manifest` for text that came from no file).
    pub file: String,
    /// The problems, in the manifest's order.
    pub problems: Vec<ManifestProblem>,
}

impl fmt::Display for ManifestProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}; no AWS call was made",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            match (p.line, p.column) {
                (Some(line), Some(column)) => write!(
                    f,
                    "\n  {}:{line}:{column}: `{}` {}",
                    self.file, p.field, p.message
                )?,
                _ => write!(
                    f,
                    "\n  {}: `{}` {} (not in the manifest: the profile's default)",
                    self.file, p.field, p.message
                )?,
            }
            if let (Some(line), Some(column), Some(text)) = (p.line, p.column, &p.text) {
                let gutter = line.to_string().len();
                write!(
                    f,
                    "\n  {:gutter$} |\n  {line} | {text}\n  {:gutter$} | {:>column$}",
                    "", "", "^"
                )?;
            }
        }
        Ok(())
    }
}

/// A key of the manifest and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyAt {
    /// `a.b[2].c`.
    pub(crate) path: String,
    /// From 1.
    pub(crate) line: usize,
    /// From 1.
    pub(crate) column: usize,
}

/// Every key of a YAML document in block style (and one level of flow mappings and
/// sequences written on a key's line), with its position. Anchors, aliases and multi-line
/// flow collections are not followed: their keys are found at the key that holds them.
pub(crate) fn keys(yaml: &str) -> Vec<KeyAt> {
    // Open block nodes: (indent, path, whether it is a sequence item).
    let mut open: Vec<(usize, String, bool)> = Vec::new();
    // The next index of each block sequence, by its path.
    let mut next_item: std::collections::HashMap<String, usize> = Default::default();
    let mut out = Vec::new();
    for (n, raw) in yaml.lines().enumerate() {
        let line = n + 1;
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let content = raw[indent..].trim_end();
        if content.is_empty() || content.starts_with('#') || content == "---" {
            continue;
        }
        let item = content == "-" || content.starts_with("- ");
        // A sequence's items may sit at their key's own indent; an item ends its sibling.
        while let Some((i, _, was_item)) = open.last() {
            if *i > indent || (*i == indent && (!item || *was_item)) {
                open.pop();
            } else {
                break;
            }
        }
        let parent = open.last().map(|(_, p, _)| p.clone()).unwrap_or_default();
        let (base, rest, col) = if item {
            let index = next_item.entry(parent.clone()).or_insert(0);
            let here = format!("{parent}[{index}]");
            *index += 1;
            let after = content[1..].trim_start();
            out.push(KeyAt {
                path: here.clone(),
                line,
                column: indent + 1,
            });
            // `- key: value`: a mapping item whose keys sit at the item's content.
            open.push((indent, here.clone(), true));
            (here, after, indent + 1 + content.len() - after.len())
        } else {
            (parent, content, indent + 1)
        };
        let Some((key, value)) = split_key(rest) else {
            continue;
        };
        let path = join(&base, key);
        out.push(KeyAt {
            path: path.clone(),
            line,
            column: col,
        });
        let value = value.trim();
        if value.starts_with('{') || value.starts_with('[') {
            let value_col = col + rest.len() - rest[key.len() + 1..].trim_start().len();
            flow(&path, value, line, value_col, &mut out);
        }
        if value.is_empty() || value.starts_with('#') {
            open.push((col - 1, path, false));
        }
    }
    out
}

/// `key: value` → (key, value); `None` for a line that is no key.
fn split_key(s: &str) -> Option<(&str, &str)> {
    let (key, value) = if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        let after = &q[end + 1..];
        (&s[..end + 2], after.strip_prefix(':')?)
    } else {
        let i = s
            .find(": ")
            .or_else(|| s.strip_suffix(':').map(|k| k.len()))?;
        (&s[..i], &s[i + 1..])
    };
    (!key.is_empty() && !key.starts_with(['{', '[', '-', '#'])).then_some((key, value))
}

fn join(base: &str, key: &str) -> String {
    let key = key.trim_matches('"');
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// The entries of a one-line flow collection at `col` of `line`.
fn flow(path: &str, value: &str, line: usize, col: usize, out: &mut Vec<KeyAt>) {
    let mapping = value.starts_with('{');
    let inner = &value[1..];
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut index = 0usize;
    let mut entries = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' if depth == 0 => {
                entries.push((start, &inner[start..i]));
                break;
            }
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                entries.push((start, &inner[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    for (offset, entry) in entries {
        let trimmed = entry.trim_start();
        if trimmed.trim().is_empty() {
            continue;
        }
        let column = col + 1 + offset + (entry.len() - trimmed.len());
        let here = if mapping {
            match trimmed.split_once(':') {
                Some((k, _)) => join(path, k.trim()),
                None => continue,
            }
        } else {
            let p = format!("{path}[{index}]");
            index += 1;
            p
        };
        out.push(KeyAt {
            path: here,
            line,
            column,
        });
    }
}

/// The manifest key a stack's field comes from (the manifest writes every stack the facade
/// builds from it; see [`crate::Manifest::to_stack`]). A field no key gives stays as it is.
pub(crate) fn manifest_key(field: &str) -> String {
    // Longest stack prefixes first; the rest of the field follows the manifest key.
    const MAP: &[(&str, &str)] = &[
        ("service.task.containers[0].ports[0]", "port"),
        (
            "service.task.containers[0].health_check",
            "container_health_check",
        ),
        ("service.task.containers[0].", ""),
        ("service.task.containers", "image"),
        ("service.task.", ""),
        (
            "service.load_balancer.target_group.health_check",
            "health_check",
        ),
        (
            "service.load_balancer.listeners[0].certificate_arn",
            "https.certificate_arn",
        ),
        (
            "service.load_balancer.listeners[0].ssl_policy",
            "https.ssl_policy",
        ),
        ("service.load_balancer.listeners", "https"),
        ("service.load_balancer.internal", "internal"),
        ("service.service.desired_count", "count"),
        ("service.desired_count", "count"),
        ("service.service.rollout.timeout", "rollout_timeout"),
        ("service.service.enable_execute_command", "exec"),
        ("service.enable_execute_command", "exec"),
        ("service.service.capacity_provider_strategy", "spot"),
        ("service.repository", "repository"),
        (
            "service.environment.target_group.health_check",
            "health_check",
        ),
        ("service.environment.routes", "routes"),
        ("service.environment.environment", "environment_name"),
        ("load_balancer.listeners", "https"),
        ("internal_load_balancer.", "internal_load_balancer"),
        ("service.iam.task_role_statements", "permissions"),
        ("network.vpc.managed.", "network."),
        ("network.vpc.existing", "network.existing"),
        ("network.alb_ingress_cidrs", "network.allowed_cidrs"),
        ("network.container_port", "port"),
        ("network.listener_ports", "https"),
        ("scaling.cpu.target", "scaling.cpu"),
        ("scaling.memory.target", "scaling.memory"),
        (
            "scaling.requests_per_target.target",
            "scaling.requests_per_target",
        ),
        ("observe.log_retention_days", "log_retention_days"),
        ("observe.alarm_actions", "alarms.actions"),
        ("observe.ok_actions", "alarms.actions"),
        ("observe.alarms.", "alarms."),
        ("observe.monitoring", "monitoring"),
    ];
    for (from, to) in MAP {
        if let Some(rest) = field.strip_prefix(from) {
            let rest = rest.trim_start_matches('.');
            return match (to.is_empty(), rest.is_empty()) {
                (true, _) => rest.to_string(),
                (false, true) => (*to).to_string(),
                (false, false) if rest.starts_with('[') => format!("{to}{rest}"),
                (false, false) => format!("{}.{rest}", to.trim_end_matches('.')),
            };
        }
    }
    field.to_string()
}

/// A problem at `field` (a manifest key), placed at the key or its nearest written parent.
pub(crate) fn problem(yaml: &str, keys: &[KeyAt], field: &str, message: &str) -> ManifestProblem {
    let mut at = field.to_string();
    let found = loop {
        if let Some(k) = keys.iter().find(|k| k.path == at) {
            break Some(k);
        }
        match at.rfind(['.', '[']) {
            Some(i) => at.truncate(i),
            None => break None,
        }
    };
    ManifestProblem {
        field: field.to_string(),
        message: message.to_string(),
        line: found.map(|k| k.line),
        column: found.map(|k| k.column),
        text: found
            .and_then(|k| yaml.lines().nth(k.line - 1))
            .map(str::to_string),
    }
}

/// The key written at `line` (the last one at or before `column`), for a parse error's
/// position.
pub(crate) fn key_at(keys: &[KeyAt], line: usize, column: usize) -> Option<&KeyAt> {
    keys.iter()
        .rfind(|k| k.line == line && k.column <= column.max(1))
        .or_else(|| keys.iter().find(|k| k.line == line))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
name: shop
# a comment
health_check:
  path: /health
  interval: 10
scaling: { min: 2, max: 20 }
secrets:
  DB_PASSWORD: arn:x
alarms:
  actions:
    - arn:a
    - arn:b
  latency_p99:
    threshold: 1.5
permissions:
- actions: [s3:GetObject, s3:PutObject]
  resources: ['*']
tags: {team: shop}
";

    fn at(path: &str) -> Option<(usize, usize)> {
        keys(YAML)
            .into_iter()
            .find(|k| k.path == path)
            .map(|k| (k.line, k.column))
    }

    #[test]
    fn keys_are_found_with_their_line_and_column() {
        assert_eq!(at("name"), Some((1, 1)));
        assert_eq!(at("health_check.path"), Some((4, 3)));
        assert_eq!(at("health_check.interval"), Some((5, 3)));
        assert_eq!(at("scaling.min"), Some((6, 12)));
        assert_eq!(at("scaling.max"), Some((6, 20)));
        assert_eq!(at("secrets.DB_PASSWORD"), Some((8, 3)));
        assert_eq!(at("alarms.actions[0]"), Some((11, 5)));
        assert_eq!(at("alarms.actions[1]"), Some((12, 5)));
        assert_eq!(at("alarms.latency_p99.threshold"), Some((14, 5)));
        assert_eq!(at("permissions[0]"), Some((16, 1)));
        assert_eq!(at("permissions[0].actions"), Some((16, 3)));
        assert_eq!(at("permissions[0].actions[1]"), Some((16, 27)));
        assert_eq!(at("permissions[0].resources"), Some((17, 3)));
        assert_eq!(at("tags.team"), Some((18, 8)));
    }

    #[test]
    fn stack_fields_become_manifest_keys() {
        for (field, key) in [
            ("service.task.cpu", "cpu"),
            ("service.task.memory", "memory"),
            ("service.task.containers[0].image", "image"),
            ("service.task.containers[0].secrets.DB", "secrets.DB"),
            ("service.task.containers[0].ports[0]", "port"),
            (
                "service.load_balancer.target_group.health_check.path",
                "health_check.path",
            ),
            (
                "service.load_balancer.listeners[0].certificate_arn",
                "https.certificate_arn",
            ),
            ("service.service.desired_count", "count"),
            ("service.desired_count", "count"),
            ("network.vpc.managed.cidr", "network.cidr"),
            ("network.vpc.existing.vpc_id", "network.existing.vpc_id"),
            ("network.alb_ingress_cidrs[1]", "network.allowed_cidrs[1]"),
            ("observe.alarm_actions[0]", "alarms.actions[0]"),
            ("observe.log_retention_days", "log_retention_days"),
            ("scaling.min", "scaling.min"),
            ("name", "name"),
        ] {
            assert_eq!(manifest_key(field), key, "{field}");
        }
    }

    #[test]
    fn a_problem_sits_at_its_key_or_its_nearest_written_parent() {
        let k = keys(YAML);
        let p = problem(YAML, &k, "health_check.path", "must start with /");
        assert_eq!((p.line, p.column), (Some(4), Some(3)));
        assert_eq!(p.text.as_deref(), Some("  path: /health"));
        let p = problem(YAML, &k, "health_check.timeout", "x");
        assert_eq!((p.line, p.column), (Some(3), Some(1)), "the parent");
        let p = problem(YAML, &k, "count", "x");
        assert_eq!((p.line, p.column), (None, None), "not written");
        let shown = ManifestProblems {
            file: "shop.yml".into(),
            problems: vec![problem(YAML, &k, "health_check.path", "must start with /")],
        }
        .to_string();
        assert!(
            shown.contains("shop.yml:4:3: `health_check.path` must start with /\n    |\n  4 |   path: /health\n    |   ^"),
            "{shown}"
        );
    }
}
