//! The local AWS emulator: moto server in a project-local virtualenv, on loopback.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::SdkConfig;
use typed_builder::TypedBuilder;

/// The pinned moto version.
pub const MOTO_VERSION: &str = "5.2.5";
/// The pinned cbor2 version (used by the CloudWatch protocol bridge).
pub const CBOR2_VERSION: &str = "5.9.0";

/// The server script: moto's WSGI app behind the CloudWatch CBOR ↔ JSON bridge.
const SERVER_SCRIPT: &str = include_str!("moto_server.py");

/// Why the emulator could not be installed or started.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// No Python 3 interpreter was found.
    #[error(
        "the local AWS emulator needs Python 3, but `{python}` was not found: install Python 3.9 or \
         newer with its venv module (Debian/Ubuntu: `apt-get install python3 python3-venv`; macOS: \
         `brew install python`), or name the interpreter with ECS_EMULATOR_PYTHON"
    )]
    PythonMissing {
        /// The interpreter that was tried.
        python: String,
    },
    /// Creating the virtualenv or installing moto into it failed.
    #[error("installing the local AWS emulator failed at `{step}`: {detail}")]
    Install {
        /// The command that failed.
        step: String,
        /// What it printed (the end of it).
        detail: String,
    },
    /// The server did not start.
    #[error("the local AWS emulator did not start: {detail} (server log: {})", log.display())]
    Start {
        /// What went wrong.
        detail: String,
        /// The server's log file.
        log: PathBuf,
    },
    /// A file system operation failed.
    #[error("{action}: {detail}")]
    Io {
        /// What was being done.
        action: String,
        /// The I/O error.
        detail: String,
    },
}

fn io_err(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmulatorError {
    let action = action.into();
    move |e| EmulatorError::Io {
        action,
        detail: e.to_string(),
    }
}

/// How to install and start the emulator.
#[derive(Debug, Clone, TypedBuilder)]
pub struct EmulatorOptions {
    /// How many tasks moto reports as running for every ECS service (`MOTO_ECS_SERVICE_RUNNING`).
    #[builder(default = 2)]
    pub ecs_service_running: u32,
    /// Where the virtualenv, the server script and the logs live. Default: `$ECS_EMULATOR_HOME`,
    /// else `.ecs-emulator` in the nearest ancestor of the current directory that holds a
    /// `Cargo.lock` (the project root), else in the current directory.
    #[builder(default, setter(strip_option, into))]
    pub home: Option<PathBuf>,
    /// The Python 3 interpreter that creates the virtualenv. Default: `$ECS_EMULATOR_PYTHON`,
    /// else `python3`.
    #[builder(default, setter(strip_option, into))]
    pub python: Option<String>,
    /// How long to wait for the server to answer.
    #[builder(default = Duration::from_secs(120))]
    pub startup_timeout: Duration,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// A running moto server on `127.0.0.1`, stopped when dropped — and also when the process
/// that started it exits or panics, because the server quits when its standard input closes.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use ecs_core::testing::Emulator;
/// let emulator = Emulator::shared()?;
/// let config = emulator.sdk_config().await;
/// let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
/// cloudwatch.list_dashboards().send().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    log: PathBuf,
    python: PathBuf,
    process: Mutex<Option<(Child, ChildStdin)>>,
}

impl Emulator {
    /// Installs the emulator if needed and starts a new server (blocking).
    pub fn start(options: EmulatorOptions) -> Result<Self, EmulatorError> {
        let home = match &options.home {
            Some(home) => home.clone(),
            None => default_home()?,
        };
        fs::create_dir_all(&home).map_err(io_err(format!("creating {}", home.display())))?;
        let python = options
            .python
            .clone()
            .or_else(|| std::env::var("ECS_EMULATOR_PYTHON").ok())
            .unwrap_or_else(|| "python3".to_string());
        let venv_python = install(&home, &python)?;
        let script = home.join("moto_server.py");
        write_if_changed(&script, SERVER_SCRIPT)?;

        // Each server writes its own log; only the newest are kept, for looking into a failure.
        prune_logs(&home, KEPT_LOGS);
        let log = home.join(format!(
            "moto-{}-{}.log",
            std::process::id(),
            fastrand::u32(..)
        ));
        let log_file =
            fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
        let mut child = Command::new(&venv_python)
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // A requested certificate is issued at once (on AWS: once its DNS validation
            // record is found), so that the pre-flight finds it `ISSUED`.
            .env("MOTO_ACM_VALIDATION_WAIT", "0")
            .env(
                "MOTO_ECS_SERVICE_RUNNING",
                options.ecs_service_running.to_string(),
            )
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(io_err(format!("starting {}", venv_python.display())))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(result);
        });
        let failed = |child: &mut Child, detail: String| {
            let _ = child.kill();
            let _ = child.wait();
            EmulatorError::Start {
                detail: format!("{detail}; last lines of its log:\n{}", tail(&log, 20)),
                log: log.clone(),
            }
        };
        let port = match rx.recv_timeout(options.startup_timeout) {
            Ok(Ok(line)) => match line.trim().strip_prefix("READY ").map(str::parse::<u16>) {
                Some(Ok(port)) => port,
                _ => {
                    return Err(failed(
                        &mut child,
                        format!("unexpected first line {line:?}"),
                    ))
                }
            },
            Ok(Err(e)) => return Err(failed(&mut child, format!("reading its output: {e}"))),
            Err(_) => {
                return Err(failed(
                    &mut child,
                    format!("no answer within {}s", options.startup_timeout.as_secs()),
                ))
            }
        };
        tracing::info!(port, log = %log.display(), "local AWS emulator started");
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            python: venv_python,
            process: Mutex::new(Some((child, stdin))),
        })
    }

    /// The emulator shared by the whole test process, started with default options on first
    /// use. It stops when the process exits.
    pub fn shared() -> Result<&'static Emulator, EmulatorError> {
        static SHARED: OnceLock<Result<Emulator, EmulatorError>> = OnceLock::new();
        SHARED
            .get_or_init(|| Emulator::start(EmulatorOptions::default()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Runs a Python `script` with boto3 (the official AWS SDK for Python, which the
    /// emulator's virtualenv has, moto being built on it) against this emulator, and returns
    /// what it printed on standard output. The script finds the endpoint in the usual
    /// `AWS_ENDPOINT_URL`, region and credentials variables, so `boto3.client("ec2")` talks to
    /// the emulator: tests use it to inspect what a deploy made with a tool other than ours.
    ///
    /// ```no_run
    /// # fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let emulator = ecs_core::testing::Emulator::shared()?;
    /// let vpcs = emulator.boto3("import boto3\nprint(len(boto3.client('ec2').describe_vpcs()['Vpcs']))")?;
    /// assert!(vpcs.trim().parse::<usize>().is_ok());
    /// # Ok(()) }
    /// ```
    pub fn boto3(&self, script: &str) -> Result<String, EmulatorError> {
        let out = Command::new(&self.python)
            .args(["-c", script])
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .output()
            .map_err(io_err(format!("running {}", self.python.display())))?;
        if !out.status.success() {
            return Err(EmulatorError::Io {
                action: "running a boto3 script".to_string(),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An [`SdkConfig`] that talks to this emulator: region `us-east-1`, static test
    /// credentials, the emulator's endpoint.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "ecs-emulator",
            )))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    /// Stops the server now (dropping the emulator does the same).
    pub fn stop(&self) {
        let process = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((mut child, stdin)) = process {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$ECS_EMULATOR_HOME`, else `.ecs-emulator` in the project root.
fn default_home() -> Result<PathBuf, EmulatorError> {
    if let Some(home) = std::env::var_os("ECS_EMULATOR_HOME") {
        return Ok(PathBuf::from(home));
    }
    let cwd = std::env::current_dir().map_err(io_err("reading the current directory"))?;
    let root = cwd
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(&cwd);
    Ok(root.join(".ecs-emulator"))
}

/// Creates the virtualenv and installs the pinned packages unless already done; returns the
/// virtualenv's interpreter. Concurrent test processes serialise on a lock file.
fn install(home: &Path, python: &str) -> Result<PathBuf, EmulatorError> {
    let requirements = [
        format!("moto[server]=={MOTO_VERSION}"),
        format!("cbor2=={CBOR2_VERSION}"),
    ];
    let stamp = requirements.join(" ");
    let venv = home.join(format!("venv-moto-{MOTO_VERSION}"));
    let venv_python = venv.join("bin").join("python");
    let marker = venv.join(".ecs-installed");
    let installed = || fs::read_to_string(&marker).is_ok_and(|s| s == stamp);
    if installed() {
        return Ok(venv_python);
    }
    let lock_path = home.join(".install.lock");
    let lock = fs::File::create(&lock_path)
        .map_err(io_err(format!("creating {}", lock_path.display())))?;
    lock.lock()
        .map_err(io_err(format!("locking {}", lock_path.display())))?;
    if installed() {
        return Ok(venv_python);
    }
    match Command::new(python).arg("--version").output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EmulatorError::PythonMissing {
                python: python.to_string(),
            })
        }
        Err(e) => return Err(io_err(format!("running {python}"))(e)),
        Ok(_) => {}
    }
    if venv.exists() {
        fs::remove_dir_all(&venv).map_err(io_err(format!("removing {}", venv.display())))?;
    }
    tracing::info!(venv = %venv.display(), "installing the local AWS emulator (moto {MOTO_VERSION})");
    run(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
        "(on Debian/Ubuntu install the venv module: `apt-get install python3-venv`)",
    )?;
    run(
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
            ])
            .args(&requirements),
        &format!("pip install {stamp}"),
        "(pip needs to reach PyPI, or a mirror configured with PIP_INDEX_URL)",
    )?;
    fs::write(&marker, &stamp).map_err(io_err(format!("writing {}", marker.display())))?;
    Ok(venv_python)
}

fn run(command: &mut Command, step: &str, hint: &str) -> Result<(), EmulatorError> {
    let output = command.output().map_err(|e| EmulatorError::Install {
        step: step.to_string(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let last: Vec<&str> = text.lines().rev().take(15).collect();
    Err(EmulatorError::Install {
        step: step.to_string(),
        detail: format!(
            "{} {hint}\n{}",
            output.status,
            last.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}

/// Writes `content` to `path` unless it is already there, atomically (other processes may
/// be starting servers from the same file).
fn write_if_changed(path: &Path, content: &str) -> Result<(), EmulatorError> {
    if fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, content).map_err(io_err(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io_err(format!("writing {}", path.display())))
}

/// How many server logs a start leaves in the emulator's home (the newest).
const KEPT_LOGS: usize = 20;

/// Deletes the server logs (`moto-*.log`) in `home` but the newest `keep`, by modification
/// time (a log still being written is among the newest). Best effort: a log another process
/// removed meanwhile, or one that cannot be read, is skipped.
fn prune_logs(home: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(home) else {
        return;
    };
    let mut logs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("moto-") && name.ends_with(".log")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    logs.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, path) in logs.into_iter().skip(keep) {
        let _ = fs::remove_file(path);
    }
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_start_keeps_only_the_newest_server_logs() {
        let home = std::env::temp_dir().join(format!("ecs-emulator-logs-{}", fastrand::u64(..)));
        fs::create_dir_all(&home).unwrap();
        for i in 0..25_u64 {
            let log = home.join(format!("moto-{i}-1.log"));
            let f = fs::File::create(&log).unwrap();
            f.set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000 + i))
                .unwrap();
        }
        fs::write(home.join("moto_server.py"), "").unwrap();
        prune_logs(&home, 20);
        let mut left: Vec<String> = fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected: Vec<String> = (5..25).map(|i| format!("moto-{i}-1.log")).collect();
        expected.push("moto_server.py".to_string());
        expected.sort();
        assert_eq!(
            left, expected,
            "the 20 newest logs and nothing else are kept"
        );
        fs::remove_dir_all(&home).unwrap();
    }
}
