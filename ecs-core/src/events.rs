//! Progress events, delivered to a sink the caller provides. The library never prints.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Something that happened during a plan, deploy or destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Work on a resource started (`action` is e.g. `create`, `update`, `delete`).
    Started {
        /// The resource, e.g. `nat-gateway nat/us-east-1a`.
        resource: String,
        /// What is being done to it.
        action: String,
    },
    /// Waiting for a resource to reach a state.
    Waiting {
        /// The resource waited on.
        resource: String,
        /// What is awaited, e.g. `state available (now pending)`.
        awaiting: String,
        /// How long the wait has lasted so far.
        elapsed: Duration,
    },
    /// A call failed with a transient error and will be tried again.
    Retrying {
        /// The resource concerned.
        resource: String,
        /// The AWS operation, e.g. `DeleteSubnet`.
        operation: String,
        /// Why it failed (error code and message).
        reason: String,
        /// The attempt that failed, from 1.
        attempt: u32,
    },
    /// Something observed while waiting, e.g. a new ECS service event or why a task stopped.
    Progress {
        /// The resource concerned.
        resource: String,
        /// What was observed.
        message: String,
    },
    /// Work on a resource finished.
    Done {
        /// The resource.
        resource: String,
        /// What was done, possibly with the AWS id.
        detail: String,
    },
    /// Work on a resource failed.
    Failed {
        /// The resource.
        resource: String,
        /// The error, rendered as text.
        error: String,
    },
}

impl Event {
    /// The resource the event is about.
    pub fn resource(&self) -> &str {
        match self {
            Event::Started { resource, .. }
            | Event::Waiting { resource, .. }
            | Event::Retrying { resource, .. }
            | Event::Progress { resource, .. }
            | Event::Done { resource, .. }
            | Event::Failed { resource, .. } => resource,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started { resource, action } => write!(f, "{resource}: {action}…"),
            Event::Waiting {
                resource,
                awaiting,
                elapsed,
            } => write!(
                f,
                "{resource}: waiting for {awaiting} ({}s)",
                elapsed.as_secs()
            ),
            Event::Retrying {
                resource,
                operation,
                reason,
                attempt,
            } => write!(
                f,
                "{resource}: {operation} attempt {attempt} failed ({reason}); retrying"
            ),
            Event::Progress { resource, message } => write!(f, "{resource}: {message}"),
            Event::Done { resource, detail } => write!(f, "{resource}: {detail}"),
            Event::Failed { resource, error } => write!(f, "{resource}: FAILED: {error}"),
        }
    }
}

/// Receives progress events. Implemented for any `Fn(Event)`.
///
/// ```
/// use ecs_core::{Event, EventSink};
/// let sink = |event: Event| eprintln!("{event}");
/// sink.emit(Event::Done { resource: "vpc".into(), detail: "created".into() });
/// ```
pub trait EventSink: Send + Sync {
    /// Handles one event. Must not block for long: deploys call it inline.
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}

/// Keeps every event in memory, for tests and reports.
#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<Event>>>);

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventSink for EventLog {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keeps_events_and_display_is_readable() {
        let log = EventLog::new();
        log.emit(Event::Waiting {
            resource: "nat-gateway nat/a".into(),
            awaiting: "state available".into(),
            elapsed: Duration::from_secs(12),
        });
        let events = log.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].resource(), "nat-gateway nat/a");
        assert_eq!(
            events[0].to_string(),
            "nat-gateway nat/a: waiting for state available (12s)"
        );
    }
}
