//! The local AWS emulator: it installs and starts by itself, and the current CloudWatch SDK
//! (RPC v2 CBOR) works against it through the protocol bridge.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic, Tag};
use ecs_core::testing::{CallCounter, Emulator, EmulatorError, EmulatorOptions};

fn emulator() -> &'static Emulator {
    Emulator::shared().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn cloudwatch_alarms_and_dashboards_through_the_cbor_bridge() {
    let emulator = emulator();
    let config = emulator.sdk_config().await;
    let counter = CallCounter::new();
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&config)
            .interceptor(counter.clone())
            .build(),
    );

    cw.put_metric_alarm()
        .alarm_name("bridge-cpu-high")
        .namespace("AWS/ECS")
        .metric_name("CPUUtilization")
        .dimensions(
            Dimension::builder()
                .name("ClusterName")
                .value("bridge")
                .build(),
        )
        .dimensions(
            Dimension::builder()
                .name("ServiceName")
                .value("web")
                .build(),
        )
        .statistic(Statistic::Average)
        .period(60)
        .evaluation_periods(3)
        .datapoints_to_alarm(2)
        .threshold(80.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .alarm_actions("arn:aws:sns:us-east-1:123456789012:ops")
        .tags(Tag::builder().key("ecs:stack").value("bridge").build())
        .send()
        .await
        .expect("PutMetricAlarm");

    let alarms = cw
        .describe_alarms()
        .alarm_names("bridge-cpu-high")
        .send()
        .await
        .expect("DescribeAlarms");
    let alarm = &alarms.metric_alarms()[0];
    assert_eq!(alarm.alarm_name(), Some("bridge-cpu-high"));
    assert_eq!(alarm.threshold(), Some(80.0));
    assert_eq!(alarm.period(), Some(60));
    assert_eq!(alarm.evaluation_periods(), Some(3));
    assert_eq!(alarm.dimensions().len(), 2);
    assert_eq!(
        alarm.alarm_actions(),
        ["arn:aws:sns:us-east-1:123456789012:ops"]
    );
    assert!(
        alarm.alarm_configuration_updated_timestamp().is_some(),
        "timestamps decode"
    );
    assert!(matches!(
        alarm.state_value(),
        Some(StateValue::InsufficientData | StateValue::Ok | StateValue::Alarm)
    ));
    let arn = alarm.alarm_arn().expect("alarm ARN").to_string();
    let tags = cw
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("ListTagsForResource");
    assert_eq!(tags.tags()[0].key(), Some("ecs:stack"));

    let body = r#"{"widgets":[{"type":"text","x":0,"y":0,"width":6,"height":3,"properties":{"markdown":"hello"}}]}"#;
    cw.put_dashboard()
        .dashboard_name("bridge-dashboard")
        .dashboard_body(body)
        .send()
        .await
        .expect("PutDashboard");
    let got = cw
        .get_dashboard()
        .dashboard_name("bridge-dashboard")
        .send()
        .await
        .expect("GetDashboard");
    assert_eq!(got.dashboard_body(), Some(body));
    let listed = cw
        .list_dashboards()
        .dashboard_name_prefix("bridge-")
        .send()
        .await
        .expect("ListDashboards");
    assert_eq!(listed.dashboard_entries().len(), 1);
    assert!(listed.dashboard_entries()[0].last_modified().is_some());

    cw.delete_alarms()
        .alarm_names("bridge-cpu-high")
        .send()
        .await
        .expect("DeleteAlarms");
    cw.delete_dashboards()
        .dashboard_names("bridge-dashboard")
        .send()
        .await
        .expect("DeleteDashboards");
    let alarms = cw
        .describe_alarms()
        .alarm_names("bridge-cpu-high")
        .send()
        .await
        .expect("DescribeAlarms after delete");
    assert!(alarms.metric_alarms().is_empty());

    // Errors come back with their AWS code.
    let missing = cw
        .get_dashboard()
        .dashboard_name("bridge-dashboard")
        .send()
        .await
        .expect_err("dashboard is gone");
    let err = ecs_core::AwsError::from_sdk("GetDashboard", "dashboard bridge-dashboard", missing);
    assert_eq!(err.code(), Some("ResourceNotFound"), "{err}");

    let ops: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(
        ops,
        [
            "PutMetricAlarm",
            "PutDashboard",
            "DeleteAlarms",
            "DeleteDashboards"
        ]
    );
}

#[tokio::test]
async fn the_ec2_api_is_served_too() {
    let config = emulator().sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let zones = ec2
        .describe_availability_zones()
        .send()
        .await
        .expect("DescribeAvailabilityZones");
    assert!(zones.availability_zones().len() >= 2);
}

#[test]
fn a_missing_python_is_an_error_that_says_what_to_install() {
    let home = std::env::temp_dir().join(format!("ecs-emulator-nopython-{}", std::process::id()));
    let err = Emulator::start(
        EmulatorOptions::builder()
            .home(&home)
            .python("/nonexistent/python3")
            .build(),
    )
    .expect_err("no interpreter");
    let _ = std::fs::remove_dir_all(&home);
    assert!(
        matches!(err, EmulatorError::PythonMissing { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("apt-get install python3 python3-venv"),
        "{text}"
    );
    assert!(text.contains("/nonexistent/python3"), "{text}");
}

#[test]
fn the_server_stops_when_dropped() {
    let emulator = Emulator::start(EmulatorOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let addr = emulator
        .endpoint_url()
        .trim_start_matches("http://")
        .to_string();
    assert!(
        std::net::TcpStream::connect(&addr).is_ok(),
        "server answers"
    );
    drop(emulator);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "server stopped"
    );
}
