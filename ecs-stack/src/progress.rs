//! The progress display on standard error.
//!
//! On a terminal (and in human mode) it keeps one line per resource in flight — from its
//! `Started` event until its `Done` or `Failed` — with what it waits for and the time elapsed,
//! redrawn in place with ANSI escapes at each event and every 250 ms; finished resources,
//! retries and progress messages scroll above it as permanent lines. Otherwise it prints one
//! line per event, stamped with the seconds elapsed.

use std::io::{IsTerminal, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ecs_facade::Event;

use crate::render::{colour_allowed, paint, CYAN, DIM, GREEN, RED, YELLOW};

const TICK: Duration = Duration::from_millis(250);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// At most this many lines in the live block (cursor movements cannot reach above the screen).
const MAX_LINES: usize = 12;
/// A wait that no `Started` event announced (the library's polls emit `Waiting` but nothing
/// when the wait ends) leaves the block when no `Waiting` refreshed it for this long; polls
/// report at least every 15 s.
const ORPHAN_WAIT_EXPIRY: Duration = Duration::from_secs(25);

/// The display; its sink goes to `Deployer::events`. Call `clear` before printing anything
/// else (the block of resources in flight is erased).
pub(crate) struct Progress {
    state: Arc<Mutex<State>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// A display for human output (`live` on a terminal) or for JSON output (plain lines).
    /// Must be called within the Tokio runtime.
    pub(crate) fn new(human: bool) -> Self {
        let live = human && std::io::stderr().is_terminal();
        let state = Arc::new(Mutex::new(State {
            live,
            colour: live && colour_allowed(),
            start: Instant::now(),
            width: if live { terminal_width() } else { 80 },
            flights: Vec::new(),
            drawn: 0,
            frame: 0,
        }));
        let ticker = live.then(|| {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(TICK);
                loop {
                    interval.tick().await;
                    lock(&state).tick();
                }
            })
        });
        Self { state, ticker }
    }

    /// The event sink for `Deployer::events`.
    pub(crate) fn sink(&self) -> impl Fn(Event) + Send + Sync + 'static {
        let state = Arc::clone(&self.state);
        move |event: Event| lock(&state).event(event)
    }

    /// Erases the live block and forgets what was in flight (the call that emitted the events
    /// has returned).
    pub(crate) fn clear(&self) {
        lock(&self.state).clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.clear();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One resource in flight.
struct Flight {
    resource: String,
    action: String,
    /// The latest `Waiting` text.
    waiting: Option<String>,
    since: Instant,
    /// When the latest event about it arrived.
    seen: Instant,
    /// Whether a `Started` event announced it (else it is a bare wait).
    announced: bool,
}

struct State {
    live: bool,
    colour: bool,
    start: Instant,
    width: usize,
    flights: Vec<Flight>,
    /// Lines of the live block currently on screen.
    drawn: usize,
    frame: usize,
}

impl State {
    fn event(&mut self, event: Event) {
        if !self.live {
            let t = self.start.elapsed().as_secs_f64();
            let _ = writeln!(std::io::stderr(), "[{t:7.1}s] {event}");
            return;
        }
        let now = Instant::now();
        let mut permanent = Vec::new();
        match &event {
            Event::Started { resource, action } => {
                self.flights.retain(|f| f.resource != *resource);
                self.flights.push(Flight {
                    resource: resource.clone(),
                    action: action.clone(),
                    waiting: None,
                    since: now,
                    seen: now,
                    announced: true,
                });
            }
            Event::Waiting {
                resource,
                awaiting,
                elapsed,
            } => match self.flights.iter_mut().find(|f| f.resource == *resource) {
                Some(f) => {
                    f.waiting = Some(awaiting.clone());
                    f.seen = now;
                }
                None => self.flights.push(Flight {
                    resource: resource.clone(),
                    action: "wait".to_string(),
                    waiting: Some(awaiting.clone()),
                    since: now.checked_sub(*elapsed).unwrap_or(now),
                    seen: now,
                    announced: false,
                }),
            },
            Event::Retrying { .. } => {
                permanent.push(format!("{} {event}", self.paint(YELLOW, "↻")));
            }
            Event::Progress { .. } => {
                permanent.push(format!("{} {event}", self.paint(DIM, "·")));
            }
            Event::Done { resource, detail } => {
                let took = self.finish(resource, now);
                permanent.push(format!(
                    "{} {resource}: {detail}{took}",
                    self.paint(GREEN, "✓")
                ));
            }
            Event::Failed { resource, error } => {
                let took = self.finish(resource, now);
                permanent.push(format!(
                    "{} {resource}: {error}{took}",
                    self.paint(RED, "✗")
                ));
            }
            _ => permanent.push(format!("  {event}")),
        }
        self.redraw(&permanent);
    }

    /// Removes `resource` from the block; returns how long it took, for its final line.
    fn finish(&mut self, resource: &str, now: Instant) -> String {
        let took = self
            .flights
            .iter()
            .find(|f| f.resource == resource)
            .map(|f| now.duration_since(f.since));
        self.flights.retain(|f| f.resource != resource);
        match took {
            Some(t) if t >= Duration::from_secs(1) => {
                self.paint(DIM, &format!(" ({:.0}s)", t.as_secs_f64()))
            }
            _ => String::new(),
        }
    }

    fn tick(&mut self) {
        self.frame = self.frame.wrapping_add(1);
        self.redraw(&[]);
    }

    fn clear(&mut self) {
        self.flights.clear();
        self.redraw(&[]);
    }

    fn paint(&self, code: &str, text: &str) -> String {
        paint(self.colour, code, text)
    }

    /// Erases the block, prints `permanent` lines, draws the block again.
    fn redraw(&mut self, permanent: &[String]) {
        if !self.live {
            return;
        }
        let now = Instant::now();
        self.flights
            .retain(|f| f.announced || now.duration_since(f.seen) < ORPHAN_WAIT_EXPIRY);
        if self.drawn == 0 && self.flights.is_empty() && permanent.is_empty() {
            return;
        }
        // Per line drawn: cursor up one line, clear the line.
        let mut out = "\x1b[1A\x1b[2K".repeat(self.drawn);
        for line in permanent {
            out.push_str(line);
            out.push('\n');
        }
        let spinner = SPINNER[self.frame % SPINNER.len()].to_string();
        let spinner = self.paint(CYAN, &spinner);
        let room = self.width.saturating_sub(5).max(10);
        let shown = if self.flights.len() > MAX_LINES {
            MAX_LINES - 1
        } else {
            self.flights.len()
        };
        for f in &self.flights[..shown] {
            let secs = now.duration_since(f.since).as_secs();
            let what = match &f.waiting {
                Some(w) => format!("waiting for {w}"),
                None => format!("{}…", f.action),
            };
            let text = truncate(&format!("{}: {what} ({secs}s)", f.resource), room);
            out.push_str(&format!("  {spinner} {text}\n"));
        }
        self.drawn = shown;
        if shown < self.flights.len() {
            let more = self.flights.len() - shown;
            out.push_str(&format!("    … and {more} more\n"));
            self.drawn += 1;
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }
}

/// `text` cut to `width` characters.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The terminal's width: `COLUMNS`, else what `stty size` says (when standard input is the
/// terminal), else 80. Block lines are cut to it so that none wraps (a wrapped line would
/// break the cursor movements of the redraw).
fn terminal_width() -> usize {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok());
    let from_stty = || {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let out = Command::new("stty")
            .arg("size")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().nth(1)?.parse::<usize>().ok()
    };
    from_env
        .or_else(from_stty)
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}
