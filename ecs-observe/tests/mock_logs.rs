//! `ObserveLayer::log_events` against mocked clients: `FilterLogEvents` on the stack's log
//! group from the given time, page after page (following `nextToken`), oldest first, at most
//! the limit; a log group that does not exist yet has no events.

use aws_sdk_cloudwatchlogs::error::ErrorMetadata;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::{
    FilterLogEventsError, FilterLogEventsOutput,
};
use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use aws_smithy_mocks::{Rule, RuleMode};
use ecs_core::testing::mock;
use ecs_core::{Context, StackName};
use ecs_observe::{ObserveClients, ObserveLayer};

fn event(id: &str, at: i64, message: &str) -> FilteredLogEvent {
    FilteredLogEvent::builder()
        .event_id(id)
        .timestamp(at)
        .log_stream_name("ecs/app/task1")
        .message(format!("{message}\n"))
        .build()
}

fn layer(logs: &[&Rule]) -> ObserveLayer {
    let none: Vec<Rule> = Vec::new();
    ObserveLayer::from_clients(ObserveClients {
        logs: ecs_core::mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::MatchAny,
            logs.iter().copied()
        ),
        cloudwatch: ecs_core::mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, &none),
    })
}

fn ctx() -> Context {
    Context::builder()
        .stack(StackName::new("web").unwrap())
        .build()
}

#[tokio::test]
async fn events_are_read_page_after_page_oldest_first_up_to_the_limit() {
    let first = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| {
            r.log_group_name() == Some("/ecs/web")
                && r.start_time() == Some(1_000)
                && r.next_token().is_none()
        })
        .then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("b", 1_200, "second"))
                .events(event("a", 1_100, "first"))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.next_token() == Some("page-2") && r.start_time() == Some(1_000))
        .then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("c", 1_300, "third"))
                .build()
        });
    let layer = layer(&[&first, &second]);
    let events = layer
        .log_events(&ctx(), "/ecs/web", 1_000, 10)
        .await
        .unwrap();
    let read: Vec<(&str, i64, &str)> = events
        .iter()
        .map(|e| (e.id.as_str(), e.timestamp_ms, e.message.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("a", 1_100, "first"),
            ("b", 1_200, "second"),
            ("c", 1_300, "third")
        ]
    );
    assert_eq!(events[0].stream, "ecs/app/task1");
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));

    // A limit reached on the first page reads no further page.
    let events = layer
        .log_events(&ctx(), "/ecs/web", 1_000, 2)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!((first.num_calls(), second.num_calls()), (2, 1));
}

#[tokio::test]
async fn a_log_group_not_made_yet_has_no_events() {
    let missing = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events).then_error(|| {
        FilterLogEventsError::generic(
            ErrorMetadata::builder()
                .code("ResourceNotFoundException")
                .message("The specified log group does not exist.")
                .build(),
        )
    });
    let events = layer(&[&missing])
        .log_events(&ctx(), "/ecs/web", 0, 10)
        .await
        .unwrap();
    assert!(events.is_empty());
}
