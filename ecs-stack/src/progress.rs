//! The progress display on standard error.
//!
//! On a terminal (and in human mode) it keeps one spinner line per resource in flight — from
//! its `Started` event until its `Done` or `Failed` — with what it waits for and the time
//! elapsed (an `indicatif` multi-progress display, which also fits the lines to the terminal's
//! width); finished resources, retries and progress messages scroll above it as permanent
//! lines. Otherwise it prints one line per event, stamped with the seconds elapsed.

use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ecs_facade::Event;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::render::{colour_allowed, paint, Paint, DIM, GREEN, RED, YELLOW};

const TICK: Duration = Duration::from_millis(250);
/// At most this many spinner lines (the rest are counted on one line).
const MAX_LINES: usize = 12;
/// A wait that no `Started` event announced (the library's polls emit `Waiting` but nothing
/// when the wait ends) leaves the display when no `Waiting` refreshed it for this long; polls
/// report at least every 15 s.
const ORPHAN_WAIT_EXPIRY: Duration = Duration::from_secs(25);

/// The display; its sink goes to `Deployer::events`. Call `clear` before printing anything
/// else (the spinners of resources in flight are erased).
pub(crate) struct Progress {
    state: Arc<Mutex<State>>,
}

impl Progress {
    /// A display for human output (live spinners on a terminal) or for JSON output (plain
    /// lines).
    pub(crate) fn new(human: bool) -> Self {
        let live = human && std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let colour = live && colour_allowed();
        let style = ProgressStyle::with_template(if colour {
            "  {spinner:.cyan} {wide_msg} {elapsed:.dim}"
        } else {
            "  {spinner} {wide_msg} {elapsed}"
        })
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        Self {
            state: Arc::new(Mutex::new(State {
                live,
                colour,
                start: Instant::now(),
                multi,
                style,
                flights: Vec::new(),
                more: None,
            })),
        }
    }

    /// The event sink for `Deployer::events`.
    pub(crate) fn sink(&self) -> impl Fn(Event) + Send + Sync + 'static {
        let state = Arc::clone(&self.state);
        move |event: Event| lock(&state).event(event)
    }

    /// Erases the spinners and forgets what was in flight (the call that emitted the events
    /// has returned).
    pub(crate) fn clear(&self) {
        lock(&self.state).clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
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
    since: Instant,
    /// When the latest event about it arrived.
    seen: Instant,
    /// Whether a `Started` event announced it (else it is a bare wait).
    announced: bool,
    /// Its spinner, while it is among the first [`MAX_LINES`].
    bar: Option<ProgressBar>,
}

struct State {
    live: bool,
    colour: bool,
    start: Instant,
    multi: MultiProgress,
    style: ProgressStyle,
    flights: Vec<Flight>,
    /// The `… and N more` line.
    more: Option<ProgressBar>,
}

impl State {
    fn event(&mut self, event: Event) {
        if !self.live {
            let t = self.start.elapsed().as_secs_f64();
            let _ = writeln!(std::io::stderr(), "[{t:7.1}s] {event}");
            return;
        }
        let now = Instant::now();
        match &event {
            Event::Started { resource, action } => {
                self.finish(resource);
                self.flights.push(Flight {
                    resource: resource.clone(),
                    action: action.clone(),
                    since: now,
                    seen: now,
                    announced: true,
                    bar: None,
                });
                self.show(resource, &format!("{resource}: {action}…"));
            }
            Event::Waiting {
                resource,
                awaiting,
                elapsed,
            } => {
                if !self.flights.iter().any(|f| f.resource == *resource) {
                    self.flights.push(Flight {
                        resource: resource.clone(),
                        action: "wait".to_string(),
                        since: now.checked_sub(*elapsed).unwrap_or(now),
                        seen: now,
                        announced: false,
                        bar: None,
                    });
                }
                if let Some(f) = self.flights.iter_mut().find(|f| f.resource == *resource) {
                    f.seen = now;
                }
                self.show(resource, &format!("{resource}: waiting for {awaiting}"));
            }
            Event::Retrying { .. } => self.println(YELLOW, "↻", &event.to_string()),
            Event::Progress { .. } => self.println(DIM, "·", &event.to_string()),
            Event::Done { resource, detail } => {
                let took = self.finish(resource);
                self.println(GREEN, "✓", &format!("{resource}: {detail}{took}"));
            }
            Event::Failed { resource, error } => {
                let took = self.finish(resource);
                self.println(RED, "✗", &format!("{resource}: {error}{took}"));
            }
            _ => {
                let _ = self.multi.println(format!("  {event}"));
            }
        }
        self.expire(now);
        self.layout();
    }

    /// A permanent line above the spinners.
    fn println(&self, code: Paint, mark: &str, text: &str) {
        let _ = self
            .multi
            .println(format!("{} {text}", paint(self.colour, code, mark)));
    }

    /// Sets the message of `resource`'s spinner.
    fn show(&mut self, resource: &str, message: &str) {
        self.layout();
        if let Some(bar) = self
            .flights
            .iter()
            .find(|f| f.resource == resource)
            .and_then(|f| f.bar.as_ref())
        {
            bar.set_message(message.to_string());
        }
    }

    /// Removes `resource`; returns how long it took, for its final line.
    fn finish(&mut self, resource: &str) -> String {
        let Some(i) = self.flights.iter().position(|f| f.resource == resource) else {
            return String::new();
        };
        let f = self.flights.remove(i);
        if let Some(bar) = f.bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let took = f.since.elapsed();
        if took >= Duration::from_secs(1) {
            paint(self.colour, DIM, &format!(" ({:.0}s)", took.as_secs_f64()))
        } else {
            String::new()
        }
    }

    /// Drops waits nothing refreshed for a while.
    fn expire(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .flights
            .iter()
            .filter(|f| !f.announced && now.duration_since(f.seen) >= ORPHAN_WAIT_EXPIRY)
            .map(|f| f.resource.clone())
            .collect();
        for r in stale {
            self.finish(&r);
        }
    }

    /// Spinners for the first [`MAX_LINES`] flights, one line counting the rest.
    fn layout(&mut self) {
        let shown = if self.flights.len() > MAX_LINES {
            MAX_LINES - 1
        } else {
            self.flights.len()
        };
        for (i, f) in self.flights.iter_mut().enumerate() {
            // Past the limit: its spinner goes, it is counted on the last line.
            if i >= shown {
                if let Some(bar) = f.bar.take() {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                continue;
            }
            if f.bar.is_none() {
                // Above the `… and N more` line, when there is one.
                let bar = match &self.more {
                    Some(more) => self.multi.insert_before(more, ProgressBar::new_spinner()),
                    None => self.multi.add(ProgressBar::new_spinner()),
                };
                bar.set_style(self.style.clone());
                bar.set_elapsed(f.since.elapsed());
                bar.set_message(format!("{}: {}…", f.resource, f.action));
                bar.enable_steady_tick(TICK);
                f.bar = Some(bar);
            }
        }
        let more = self.flights.len() - shown;
        match (&self.more, more) {
            (Some(bar), 0) => {
                bar.finish_and_clear();
                self.multi.remove(bar);
                self.more = None;
            }
            (Some(bar), n) => bar.set_message(format!("… and {n} more")),
            (None, 0) => {}
            (None, n) => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("    {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("… and {n} more"));
                self.more = Some(bar);
            }
        }
    }

    fn clear(&mut self) {
        for f in self.flights.drain(..) {
            if let Some(bar) = f.bar {
                bar.finish_and_clear();
            }
        }
        if let Some(bar) = self.more.take() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}
