//! The `--output json` documents: one per command, their shape stable and described by
//! `ecs-stack/output.schema.json` (a test validates every command's output against it).
//!
//! Each document is the command's result as the library reports it, with three rules that
//! make it plain JSON for scripts:
//! - it names its `command`;
//! - a duration is a number of seconds, under a key ending in `_seconds` (`duration` becomes
//!   `duration_seconds`);
//! - a plan is the list of its changes (never `changes.changes`).

use serde::Serialize;
use serde_json::{Map, Value};

/// The document of `command` for `value`.
pub(crate) fn document(command: &str, value: &impl Serialize) -> Result<Value, serde_json::Error> {
    let mut doc = plain(serde_json::to_value(value)?);
    match &mut doc {
        Value::Object(map) => {
            map.insert("command".to_string(), Value::String(command.to_string()));
        }
        other => {
            let mut map = Map::new();
            map.insert("command".to_string(), Value::String(command.to_string()));
            map.insert("result".to_string(), other.take());
            doc = Value::Object(map);
        }
    }
    Ok(doc)
}

/// A `std::time::Duration` as serde writes it.
fn as_seconds(v: &Value) -> Option<f64> {
    let o = v.as_object()?;
    if o.len() != 2 {
        return None;
    }
    let secs = o.get("secs")?.as_u64()?;
    let nanos = o.get("nanos")?.as_u64()?;
    Some(secs as f64 + nanos as f64 / 1e9)
}

/// A plan as serde writes it: `{"changes": [...]}`.
fn as_changes(v: &mut Value) -> Option<Value> {
    let o = v.as_object_mut()?;
    if o.len() != 1 || !o.get("changes")?.is_array() {
        return None;
    }
    o.remove("changes")
}

fn plain(mut v: Value) -> Value {
    if let Some(changes) = as_changes(&mut v) {
        return plain(changes);
    }
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match as_seconds(&value) {
                    Some(s) => {
                        let key = if key.ends_with("_seconds") {
                            key
                        } else {
                            format!("{}_seconds", key.trim_end_matches("_secs"))
                        };
                        out.insert(key, serde_json::json!(s));
                    }
                    None => {
                        out.insert(key, plain(value));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_are_seconds_and_plans_are_lists() {
        let value = json!({
            "changes": {"changes": [{"resource": "vpc"}]},
            "duration": {"secs": 2, "nanos": 500_000_000},
            "rollout": {"waited": {"secs": 1, "nanos": 0}, "deployment": "d"},
            "elapsed_secs": {"secs": 3, "nanos": 0},
        });
        let doc = document("deploy", &value).unwrap();
        assert_eq!(
            doc,
            json!({
                "command": "deploy",
                "changes": [{"resource": "vpc"}],
                "duration_seconds": 2.5,
                "rollout": {"waited_seconds": 1.0, "deployment": "d"},
                "elapsed_seconds": 3.0,
            })
        );
        // A bare plan is the list of its changes, under `result`.
        let doc = document("plan", &json!({"changes": []})).unwrap();
        assert_eq!(doc, json!({"command": "plan", "result": []}));
    }
}
