//! The `ecs-stack` command line, run as a real process. `validate` and `cost` make no AWS call
//! (they run with an endpoint nothing listens on); against the local AWS emulator, reached only
//! through the standard AWS environment variables as a user's configuration would be, the
//! binary plans, deploys, redeploys without a change (reading once: as many requests as a
//! plan), reports the status, refuses an unconfirmed destroy and destroys.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ecs-stack");

/// An endpoint nothing listens on: any AWS call would fail.
const NOWHERE: &str = "http://127.0.0.1:9";

/// A file of the workspace's `examples/` directory.
fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .display()
        .to_string()
}

/// A manifest written under the temporary directory with a unique name, removed on drop.
struct TempManifest(PathBuf);

impl TempManifest {
    fn new(tag: &str, yaml: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ecs-stack-cli-{tag}-{}-{}.yml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempManifest {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The shared emulator for this test alone: one test counts the requests in the emulator's
/// log, which another test's requests would add to.
fn emulator_to_myself() -> std::sync::MutexGuard<'static, ()> {
    static EMULATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    EMULATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `ecs-stack` with the standard AWS environment pointing at `endpoint` (no profile,
/// static credentials, region us-east-1), no colour, and standard input closed.
fn ecs_stack(endpoint: &str, args: &[&str]) -> Output {
    ecs_stack_with(endpoint, args, &[])
}

/// [`ecs_stack`] with more environment variables.
fn ecs_stack_with(endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {BIN}: {e}"))
}

/// Shown with `cargo test -- --nocapture`: figures for the README.
#[allow(clippy::print_stderr)]
fn show(line: &str) {
    eprintln!("{line}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "exit code {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Standard output as one JSON document, checked against the documented shape
/// (`ecs-stack/output.schema.json`).
fn json(out: &Output) -> Value {
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", describe(out)));
    conforms(&doc);
    doc
}

/// Checks `doc` against `ecs-stack/output.schema.json`.
fn conforms(doc: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let text = include_str!("../output.schema.json");
        let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the schema: {e}"))
    });
    let errors: Vec<String> = schema.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "the document does not match output.schema.json: {errors:?}\n{doc:#}"
    );
}

/// The schema holds the shape: a plan nested as `changes.changes`, a duration as
/// `{secs, nanos}` or an unknown top-level key is refused.
#[test]
fn the_output_schema_refuses_what_the_documents_must_not_be() {
    let text = include_str!("../output.schema.json");
    let schema: Value = serde_json::from_str(text).unwrap();
    let schema = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({
        "command": "deploy",
        "changes": [{"resource": "vpc", "id": "vpc", "action": {"action": "create"}, "detail": ""}],
        "outputs": {"network": {}, "service": {"url": null, "task_definition_arn": "arn"}, "log_group": "/ecs/x", "alarms": []},
        "duration_seconds": 1.5,
        "rollout": null,
        "lease": 3,
    });
    assert!(schema.is_valid(&good));
    let mut nested = good.clone();
    nested["changes"] = serde_json::json!({"changes": []});
    assert!(!schema.is_valid(&nested));
    let mut duration = good.clone();
    duration["duration_seconds"] = serde_json::json!({"secs": 1, "nanos": 0});
    assert!(!schema.is_valid(&duration));
    let mut extra = good.clone();
    extra["surprise"] = serde_json::json!(1);
    assert!(!schema.is_valid(&extra));
    let error = serde_json::json!({"command": "plan", "error": "e", "chain": [], "problems": [], "exit_code": 1});
    assert!(schema.is_valid(&error));
}

fn actions(changes: &Value) -> Vec<(String, String)> {
    changes
        .as_array()
        .unwrap_or_else(|| panic!("not a list of changes: {changes}"))
        .iter()
        .map(|c| {
            (
                c["resource"].as_str().unwrap_or_default().to_string(),
                c["action"]["action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// The example manifests run on real AWS as written (placeholders aside): their image,
/// nginx-unprivileged, listens on 8080 as a non-root user and answers 200 on `/` only (its
/// documented behaviour), so that is the port the load balancer sends to and the path it
/// checks; a check on a path the image does not serve would fail every task.
#[test]
fn the_example_manifests_check_what_their_image_serves() {
    for name in ["dev.yml", "prod.yml", "existing-vpc.yml"] {
        let stack = ecs_facade::Stack::from_manifest(&example(name)).unwrap();
        let container = &stack.service.task.containers[0];
        assert!(
            container
                .image
                .starts_with("public.ecr.aws/nginx/nginx-unprivileged:"),
            "{name}: review the health check against this image: {}",
            container.image
        );
        assert_eq!(container.ports, [8080], "{name}");
        let lb = stack.service.load_balancer.as_ref().unwrap();
        assert_eq!(lb.target_group.health_check.path, "/", "{name}");
        let text = std::fs::read_to_string(example(name)).unwrap();
        if text.contains("123456789012") || text.contains("vpc-0123456789abcdef0") {
            assert!(
                text.contains("PLACEHOLDER"),
                "{name}: mark the placeholders"
            );
        }
    }
}

#[test]
fn validate_accepts_every_example_manifest() {
    for name in ["dev.yml", "prod.yml", "existing-vpc.yml"] {
        let out = ecs_stack(NOWHERE, &["validate", &example(name)]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", describe(&out));
        let stdout = text(&out.stdout);
        assert!(stdout.contains(": valid"), "{name}: {stdout}");
        assert!(
            stdout.contains("MiB"),
            "{name}: a summary of the stack: {stdout}"
        );
    }
    // The profile's defaults are applied: prod means 512 CPU / 1024 MiB, autoscaling 2–10.
    let out = ecs_stack(
        NOWHERE,
        &["validate", &example("prod.yml"), "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["valid"].as_bool(), Some(true), "{doc}");
    assert_eq!(doc["profile"], "prod", "{doc}");
    assert_eq!(doc["stack"]["service"]["task"]["cpu"], 512, "{doc}");
    assert_eq!(doc["stack"]["service"]["task"]["memory"], 1024, "{doc}");
    assert_eq!(doc["stack"]["scaling"]["min"], 2, "{doc}");
    assert_eq!(doc["stack"]["scaling"]["max"], 10, "{doc}");
}

#[test]
fn validate_names_the_offending_key_and_makes_no_aws_call() {
    let base = "name: shop\nimage: nginx:1.27\n";
    let cases = [
        ("unknown-key", "prots: 8080\n", "prots"),
        ("cpu-memory", "cpu: 512\nmemory: 512\n", "`memory`"),
        ("cidr", "network:\n  cidr: 10.0.0.0/33\n", "cidr"),
    ];
    for (tag, extra, field) in cases {
        let manifest = TempManifest::new(tag, &format!("{base}{extra}"));
        let out = ecs_stack(NOWHERE, &["validate", &manifest.path()]);
        assert_eq!(out.status.code(), Some(1), "{tag}: {}", describe(&out));
        assert!(out.stdout.is_empty(), "{tag}: {}", describe(&out));
        let stderr = text(&out.stderr);
        let errors = stderr.lines().filter(|l| l.starts_with("error:")).count();
        assert_eq!(errors, 1, "{tag}: one message: {stderr}");
        assert!(stderr.contains(field), "{tag}: names {field}: {stderr}");
        // Any AWS call would have failed to connect and said so in the error's chain.
        assert!(!stderr.contains("caused by"), "{tag}: {stderr}");
        assert!(!stderr.contains("127.0.0.1:9"), "{tag}: {stderr}");
    }

    // In JSON mode the error and its problems are the JSON document.
    let manifest = TempManifest::new("cpu-memory-json", &format!("{base}cpu: 512\nmemory: 512\n"));
    let out = ecs_stack(NOWHERE, &["validate", &manifest.path(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["problems"][0]["field"], "memory", "{doc}");
    assert_eq!(doc["problems"][0]["line"], 4, "{doc}");
    assert_eq!(doc["problems"][0]["column"], 1, "{doc}");
    assert_eq!(doc["problems"].as_array().map(Vec::len), Some(1), "{doc}");
    assert!(
        doc["error"].as_str().is_some_and(|e| e.contains("memory")),
        "{doc}"
    );
}

#[test]
fn ci_policy_prints_the_release_policy_of_the_stack() {
    let out = ecs_stack(
        NOWHERE,
        &[
            "ci-policy",
            &example("prod.yml"),
            "--account",
            "123456789012",
            "--region",
            "eu-west-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Exactly the library's policy (proven against the emulator with IAM enforced).
    let stack = ecs_facade::Stack::from_manifest(&example("prod.yml")).unwrap();
    let expected = ecs_facade::service::release_policy(
        &stack.stack_name().unwrap(),
        &stack.service_spec(),
        "eu-west-1",
        "123456789012",
    );
    assert_eq!(printed, expected);
    let text = printed.to_string();
    assert!(
        text.contains("arn:aws:ecs:eu-west-1:123456789012:service/shop/shop-app")
            && text.contains("arn:aws:iam::123456789012:role/shop-execution"),
        "{text}"
    );
    // A malformed account id is a usage error.
    let out = ecs_stack(
        NOWHERE,
        &["ci-policy", &example("prod.yml"), "--account", "12345"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn the_github_actions_workflow_uses_oidc_and_only_commands_the_cli_has() {
    let yaml =
        std::fs::read_to_string(Path::new(example("github-actions/release.yml").as_str())).unwrap();
    let workflow: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(workflow["permissions"]["id-token"], "write", "OIDC");
    let steps = workflow["jobs"]["release"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["uses"]
        .as_str()
        .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials"))
        && s["with"]["role-to-assume"].is_string()));
    let last = steps.last().unwrap();
    assert_eq!(last["if"], "failure()");
    assert!(last["run"].as_str().unwrap().contains("ecs-stack status"));
    // Every `ecs-stack VERB … --FLAG` it runs is a verb and a flag the CLI has.
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    let mut checked = 0;
    for line in runs.iter().flat_map(|r| r.lines()) {
        let Some(rest) = line.split("ecs-stack ").nth(1) else {
            continue;
        };
        let verb = rest.split_whitespace().next().unwrap();
        let help = ecs_stack(NOWHERE, &[verb, "--help"]);
        assert_eq!(
            help.status.code(),
            Some(0),
            "`ecs-stack {verb}`: {}",
            describe(&help)
        );
        for flag in rest
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches(')').trim_end_matches('"'))
        {
            assert!(
                text(&help.stdout).contains(flag),
                "`ecs-stack {verb}` has no {flag}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "{runs:?}");
}

#[test]
fn cost_as_json_has_min_typical_and_max() {
    let out = ecs_stack(NOWHERE, &["cost", &example("prod.yml"), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    let scenarios = doc["scenarios"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"));
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["min", "typical", "max"], "{doc}");
    assert!(
        scenarios
            .iter()
            .all(|s| s["total"].as_f64().is_some_and(|t| t > 0.0)),
        "{doc}"
    );
    assert_eq!(
        doc["region"], "us-east-1",
        "the region comes from AWS_REGION"
    );

    let out = ecs_stack(
        NOWHERE,
        &[
            "cost",
            &example("prod.yml"),
            "--region",
            "eu-west-1",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(json(&out)["region"], "eu-west-1");
}

#[test]
fn plan_deploy_redeploy_status_destroy_against_the_emulator() {
    let _alone = emulator_to_myself();
    let emulator = ecs_core::testing::Emulator::shared().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = emulator.endpoint_url();
    let dev = std::fs::read_to_string(example("dev.yml")).expect("examples/dev.yml");
    assert!(dev.contains("name: shop-dev\n"), "{dev}");
    let manifest = TempManifest::new(
        "dev",
        &dev.replacen("name: shop-dev\n", "name: cli-dev\n", 1),
    );
    let file = manifest.path();
    let run = |args: &[&str]| ecs_stack(endpoint, args);

    // Plan: everything is to be created.
    let out = run(&["plan", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("+ vpc"), "{stdout}");
    assert!(stdout.contains("+ ecs-service"), "{stdout}");
    assert!(stdout.contains("to add"), "{stdout}");

    // Deploy.
    let out = run(&["deploy", &file, "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = json(&out);
    let url = report["outputs"]["service"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no URL: {report}"));
    assert!(
        url.starts_with("http://") && url.contains("cli-dev"),
        "{url}"
    );
    let created = actions(&report["changes"]);
    assert!(
        created
            .iter()
            .any(|(r, a)| r == "ecs-service" && a == "create"),
        "{created:?}"
    );

    // Redeploy: nothing to change, from one round of reads: the plan shown is the plan
    // applied, with no second planning pass (the emulator's access log counts requests).
    let requests = || {
        std::fs::read_to_string(emulator.log_path())
            .unwrap_or_else(|e| panic!("{}: {e}", emulator.log_path().display()))
            .matches("\"POST ")
            .count()
    };
    let before = requests();
    let out = run(&["plan", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let plan_requests = requests() - before;
    let before = requests();
    let out = run(&["deploy", &file, "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let deploy_requests = requests() - before;
    show(&format!(
        "no-op: plan {plan_requests} requests, deploy {deploy_requests}"
    ));
    assert!(
        deploy_requests <= 40 && deploy_requests == plan_requests,
        "a no-op deploy made {deploy_requests} requests, a plan {plan_requests}"
    );
    let changes = actions(&json(&out)["changes"]);
    assert!(!changes.is_empty());
    assert!(
        changes.iter().all(|(_, a)| a == "no_change"),
        "a redeploy of the same manifest changes nothing: {changes:?}"
    );

    // Status.
    let out = run(&["status", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let status = json(&out);
    assert_eq!(status["service"]["desired"], 1, "{status}");

    // The registry login helper: the password reaches `docker login` on its standard input
    // (a stand-in `docker` records what it got), never the terminal.
    let dir = std::env::temp_dir().join(format!("cli-dev-docker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let docker = dir.join("docker");
    std::fs::write(
        &docker,
        "#!/bin/sh\necho \"$@\" > \"$0.args\"\ncat > \"$0.stdin\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = ecs_stack_with(
        endpoint,
        &["registry-login", &file],
        &[("ECS_STACK_DOCKER", docker.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let args = std::fs::read_to_string(dir.join("docker.args")).unwrap();
    let password = std::fs::read_to_string(dir.join("docker.stdin")).unwrap();
    let registry = args.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(
        args.trim(),
        format!("login --username AWS --password-stdin {registry}")
    );
    assert!(registry.ends_with(".amazonaws.com"), "{args}");
    assert_eq!(text(&out.stdout).trim(), format!("{registry}/cli-dev-app"));
    assert!(!password.is_empty());
    assert!(
        !text(&out.stdout).contains(&password) && !text(&out.stderr).contains(&password),
        "the password was printed"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A plan saved for review, before CI releases an image.
    let saved = std::env::temp_dir().join(format!("cli-dev-{}.plan.json", std::process::id()));
    let saved = saved.to_str().unwrap().to_string();
    let out = run(&["plan", &file, "--out", &saved]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains("Saved the plan to"),
        "{}",
        describe(&out)
    );

    // An image-only release, as CI runs it: one new revision, the service updated, waited.
    let out = run(&[
        "deploy",
        &file,
        "--image",
        "public.ecr.aws/nginx/nginx-unprivileged:1.28",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let released = json(&out);
    assert_eq!(released["released"], true, "{released}");
    assert_eq!(
        released["image"], "public.ecr.aws/nginx/nginx-unprivileged:1.28",
        "{released}"
    );
    let revision = released["task_definition"].as_str().unwrap().to_string();
    assert!(revision.ends_with("cli-dev-app:2"), "{released}");
    assert_eq!(released["rollout"]["task_definition"], revision.as_str());
    // The manifest's image would go back over it: the plan says so in plain words.
    let out = run(&["plan", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("the service runs revision 2, released with `deploy --image`")
            && stdout.contains(
                "! this deploy puts the manifest's image public.ecr.aws/nginx/nginx-unprivileged:1.27 back"
            ),
        "{stdout}"
    );
    // The saved plan is stale now: refused before any change, saying why.
    let out = run(&["apply", &saved, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("no longer applies: the stack changed since it was planned"),
        "{}",
        describe(&out)
    );
    // Planned again and applied as saved: the manifest's image goes back.
    let out = run(&["plan", &file, "--out", &saved]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = run(&["apply", &saved, "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let applied = json(&out);
    assert!(
        applied["outputs"]["service"]["task_definition_arn"]
            .as_str()
            .unwrap()
            .ends_with("cli-dev-app:3"),
        "{applied}"
    );
    let _ = std::fs::remove_file(&saved);

    // A selector that names nothing in the stack is refused before any call.
    let out = run(&["deploy", &file, "--image", "nginx:2", "--service", "worker"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("the stack has no service `worker`"),
        "{}",
        describe(&out)
    );

    // Destroy without --yes, standard input closed: refused (exit 2), nothing deleted.
    let out = run(&["destroy", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = run(&["status", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let status = json(&out);
    assert_eq!(status["service"]["desired"], 1, "still there: {status}");

    // Destroy.
    let out = run(&[
        "destroy",
        &file,
        "--yes",
        "--force-delete-images",
        "--delete-logs",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Nothing left: a plan creates the network, the load balancer and the service again.
    let out = run(&["plan", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let plan = actions(&json(&out)["changes"]);
    for kind in ["vpc", "subnet", "load-balancer"] {
        let of_kind: Vec<&(String, String)> = plan.iter().filter(|(r, _)| r == kind).collect();
        assert!(!of_kind.is_empty(), "no {kind} in {plan:?}");
        assert!(
            of_kind.iter().all(|(_, a)| a == "create"),
            "{kind} left behind: {plan:?}"
        );
    }
}

/// `verify` and `plan` against the emulator with the example `prod` manifest as written: its
/// placeholders (the certificate, the secret, the topic) do not exist there, so `verify`
/// lists each as failed (exit code 1, one JSON document), and `plan` refuses before any
/// change, naming them, instead of accepting a certificate a deploy would fail on.
#[test]
fn verify_and_plan_name_what_the_manifest_refers_to_but_does_not_exist() {
    let _alone = emulator_to_myself();
    let emulator = ecs_core::testing::Emulator::shared().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = emulator.endpoint_url();
    let prod = std::fs::read_to_string(example("prod.yml")).expect("examples/prod.yml");
    let manifest = TempManifest::new(
        "verify",
        &prod.replacen("name: shop\n", "name: cli-verify\n", 1),
    );
    let file = manifest.path();

    let out = ecs_stack(endpoint, &["verify", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["passed"], false, "{doc}");
    let failed: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .filter(|c| c["outcome"]["status"] == "failed")
        .map(|c| c["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        failed,
        [
            "service.load_balancer.listeners[0].certificate_arn",
            "service.task.containers[0].secrets.DB_PASSWORD",
            "observe.alarm_actions[0]",
        ],
        "{doc}"
    );

    let out = ecs_stack(endpoint, &["plan", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("certificate/00000000-0000-0000-0000-000000000000")
            && stderr.contains("does not exist")
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("+ vpc"), "no plan is shown");
}

/// `logs` against the emulator: events that boto3 puts into the stack's log group (as a
/// task's container would) are printed oldest first, those older than `--since` left out; as
/// JSON, one document; with `--follow`, one JSON line per event, new ones as they come.
#[test]
fn logs_prints_the_stacks_log_events_and_follows_new_ones() {
    let _alone = emulator_to_myself();
    let emulator = ecs_core::testing::Emulator::shared().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = emulator.endpoint_url();
    let manifest = TempManifest::new("logs", "name: cli-logs\nimage: nginx:1.27\n");
    let file = manifest.path();
    let put = |message: &str, age_ms: i64| {
        emulator
            .boto3(&format!(
                "import boto3, time\n\
                 logs = boto3.client('logs')\n\
                 try:\n    logs.create_log_group(logGroupName='/ecs/cli-logs')\n\
                 except logs.exceptions.ResourceAlreadyExistsException:\n    pass\n\
                 try:\n    logs.create_log_stream(logGroupName='/ecs/cli-logs', logStreamName='ecs/app/task1')\n\
                 except logs.exceptions.ResourceAlreadyExistsException:\n    pass\n\
                 logs.put_log_events(logGroupName='/ecs/cli-logs', logStreamName='ecs/app/task1',\n\
                     logEvents=[{{'timestamp': int(time.time() * 1000) - {age_ms}, 'message': '{message}'}}])\n\
                 print('ok')"
            ))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    put("old line", 3 * 3_600_000);
    put("first line", 2_000);
    put("second line", 1_000);

    let out = ecs_stack(endpoint, &["logs", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    let messages: Vec<&str> = doc["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(messages, ["first line", "second line"], "{doc}");

    let out = ecs_stack(endpoint, &["logs", &file, "--since", "4h"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].ends_with("ecs/app/task1 old line") && lines[2].ends_with("second line"),
        "{stdout}"
    );

    // Following: the two recent events, then one put while it runs.
    let child = Command::new(BIN)
        .args(["logs", &file, "--follow", "--output", "json"])
        .env_remove("AWS_PROFILE")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed when the test ends, whatever happens; and by a watchdog should the lines never
    // come (the test then fails instead of hanging).
    struct Follower(std::process::Child);
    impl Drop for Follower {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Follower(child);
    let pid = child.0.id().to_string();
    let (done, watched) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watched.recv_timeout(std::time::Duration::from_secs(120))
        {
            let _ = Command::new("kill").arg(&pid).status();
        }
    });
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(child.0.stdout.take().unwrap()));
    let mut next = || {
        let line = lines.next().expect("a line").expect("text");
        let event = serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        conforms(&event);
        event
    };
    assert_eq!(next()["message"], "first line");
    assert_eq!(next()["message"], "second line");
    put("third line", 0);
    let third = next();
    assert_eq!(third["message"], "third line", "{third}");
    assert_eq!(third["command"], "logs");
    drop(done);
    drop(child);
}

/// `exec` without AWS's Session Manager plugin says what to install, before any AWS call
/// (the endpoint nothing listens on would have failed it otherwise).
#[test]
fn exec_without_the_session_manager_plugin_says_what_to_install() {
    let manifest = TempManifest::new("exec", "name: cli-exec\nimage: nginx:1.27\nexec: true\n");
    let out = ecs_stack_with(
        NOWHERE,
        &["exec", &manifest.path(), "--", "ls", "-la"],
        &[
            ("PATH", "/nonexistent"),
            (
                "ECS_STACK_SESSION_MANAGER_PLUGIN",
                "/nonexistent/session-manager-plugin",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("session-manager-plugin")
            && stderr.contains("session-manager-working-with-install-plugin"),
        "{stderr}"
    );
    assert!(!stderr.contains("127.0.0.1:9"), "no AWS call: {stderr}");
}

/// `exec` with a Session Manager plugin older than 1.2.497.0 (which would want the session's
/// token on its command line) says to upgrade it, before any AWS call.
#[test]
fn exec_refuses_a_plugin_too_old_to_take_the_session_privately() {
    let manifest = TempManifest::new(
        "exec-old",
        "name: cli-exec\nimage: nginx:1.27\nexec: true\n",
    );
    let dir = std::env::temp_dir().join(format!("cli-exec-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("session-manager-plugin");
    std::fs::write(&plugin, "#!/bin/sh\necho 1.2.463.0\n").unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = ecs_stack_with(
        NOWHERE,
        &["exec", &manifest.path()],
        &[("ECS_STACK_SESSION_MANAGER_PLUGIN", plugin.to_str().unwrap())],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("1.2.463.0") && stderr.contains("1.2.497.0 or newer"),
        "{stderr}"
    );
    assert!(!stderr.contains("127.0.0.1:9"), "no AWS call: {stderr}");
}

#[test]
fn an_environment_manifest_is_validated_whole_and_one_service_is_picked_with_service() {
    let file = example("environment.yml");
    let out = ecs_stack(NOWHERE, &["validate", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["environment"], "shop-env", "{doc}");
    assert_eq!(
        doc["stacks"],
        serde_json::json!(["shop-env-api", "shop-env-web", "shop-env-worker"])
    );
    // One service of it, as a stack.
    let out = ecs_stack(
        NOWHERE,
        &["validate", &file, "--service", "api", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["stack"]["name"], "shop-env-api", "{doc}");
    // A verb on one stack needs `--service`: refused before any AWS call, listing them.
    let out = ecs_stack(NOWHERE, &["logs", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--service") && stderr.contains("api, web, worker"),
        "{stderr}"
    );
    let out = ecs_stack(NOWHERE, &["logs", &file, "--service", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("no service `nope`"),
        "{}",
        describe(&out)
    );
}

#[test]
fn an_environment_is_deployed_shown_and_destroyed_with_its_services() {
    let _alone = emulator_to_myself();
    let emulator = ecs_core::testing::Emulator::shared().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = emulator.endpoint_url();
    let yaml = std::fs::read_to_string(example("environment.yml"))
        .unwrap()
        .replacen("name: shop-env\n", "name: cli-env\n", 1);
    let manifest = TempManifest::new("env", &yaml);
    let file = manifest.path();

    let out = ecs_stack(endpoint, &["deploy", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    let services = doc["report"]["services"].as_array().unwrap();
    assert_eq!(services.len(), 3, "{doc}");

    let out = ecs_stack(endpoint, &["status", &file, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["deployed"], true, "{doc}");
    let urls: Vec<(String, Value)> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["url"].clone()))
        .collect();
    let url = |name: &str| urls.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(
        url("cli-env-api").as_str().unwrap().ends_with("/api/"),
        "{urls:?}"
    );
    assert_eq!(url("cli-env-worker"), Value::Null, "{urls:?}");

    // Human status: one line per service.
    let out = ecs_stack(endpoint, &["status", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    for name in ["cli-env-api", "cli-env-web", "cli-env-worker"] {
        assert!(stdout.contains(name), "{stdout}");
    }

    let out = ecs_stack(
        endpoint,
        &[
            "destroy",
            &file,
            "--yes",
            "--force-delete-images",
            "--delete-logs",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["destroyed"].as_array().unwrap().len(), 4, "{doc}");
}

#[test]
fn cost_of_an_environment_shows_the_saving_against_one_stack_per_service() {
    let out = ecs_stack(
        NOWHERE,
        &[
            "cost",
            &example("environment.yml"),
            "--region",
            "us-east-1",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["services"].as_array().unwrap().len(), 3, "{doc}");
    let (total, separate) = (
        doc["total"].as_f64().unwrap(),
        doc["separate_total"].as_f64().unwrap(),
    );
    // Three NAT gateways fewer, two load balancers fewer (the worker has none).
    assert!(separate > total + 2.0 * 0.045 * 730.0, "{doc}");
    assert!((doc["saving"].as_f64().unwrap() - (separate - total)).abs() < 1e-6);
    let out = ecs_stack(
        NOWHERE,
        &["cost", &example("environment.yml"), "--region", "us-east-1"],
    );
    assert!(
        text(&out.stdout).contains("one stack per service instead"),
        "{}",
        describe(&out)
    );
}
