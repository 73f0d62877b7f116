//! Logs on stderr: colours only on a terminal (and never with `NO_COLOR`), and each line
//! written around the progress bar of `waybill import` rather than through it.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{Config, LogFormat};

/// The progress bar on screen, if any: log lines are written while it is cleared.
static PROGRESS: Progress = Progress::new();

pub fn init(config: &Config) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&config.log_filter))
        .with_ansi(colour(std::io::stderr().is_terminal()))
        .with_writer(Stderr);
    match config.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether to colour stderr: only a terminal, and not when `NO_COLOR` is set to anything
/// (<https://no-color.org>).
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes log lines around `bar` (cleared while a line is written, then drawn again) until the
/// returned guard is dropped, which also clears the bar if it is not finished yet.
pub fn show_progress(bar: &ProgressBar) -> Shown<'static> {
    PROGRESS.show(bar)
}

/// A slot for the progress bar on screen.
struct Progress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    const fn new() -> Self {
        Self {
            bar: Mutex::new(None),
        }
    }

    fn show(&self, bar: &ProgressBar) -> Shown<'_> {
        *self.bar.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        Shown {
            progress: self,
            bar: bar.clone(),
        }
    }

    /// Runs `write` with the bar, if one is shown, cleared from the screen.
    fn around<R>(&self, write: impl FnOnce() -> R) -> R {
        // Not under the lock: the bar has a lock of its own.
        let bar = self
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// While alive, log lines are written around the bar.
pub struct Shown<'a> {
    progress: &'a Progress,
    bar: ProgressBar,
}

impl Drop for Shown<'_> {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
        *self
            .progress
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// tracing's writer: one [`Line`] per event.
#[derive(Clone, Copy)]
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One formatted event, written to stderr in one piece when dropped.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        PROGRESS.around(|| {
            let mut stderr = std::io::stderr().lock();
            // Nowhere left to report a failure to write a log line.
            let _ = stderr.write_all(&self.0);
            let _ = stderr.flush();
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use indicatif::{ProgressDrawTarget, TermLike};

    use super::*;

    /// A terminal that records what is done to it, in one list with the log lines.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn push(&self, what: String) {
            self.0.lock().unwrap().push(what);
        }

        fn events(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("up {n}"));
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("down {n}"));
            Ok(())
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("right {n}"));
            Ok(())
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("left {n}"));
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(format!("bar {s}"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(format!("bar {s}"));
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.push("clear".into());
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_are_written_while_the_bar_is_cleared_and_the_bar_comes_back_after() {
        let screen = Screen::default();
        let bar = ProgressBar::with_draw_target(
            Some(10),
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        let progress = Progress::new();
        let shown = progress.show(&bar);
        bar.set_position(3);
        bar.tick();
        let before = screen.events();
        assert!(
            before
                .iter()
                .any(|e| e.starts_with("bar") && e.contains("3/10")),
            "the bar is drawn: {before:?}"
        );

        progress.around(|| screen.push("LOG".into()));
        let events = screen.events();
        let log = events.iter().position(|e| e == "LOG").unwrap();
        let last_bar = events[..log]
            .iter()
            .rposition(|e| e.starts_with("bar"))
            .unwrap();
        assert!(
            events[last_bar..log].iter().any(|e| e == "clear"),
            "the bar is cleared before the log line: {events:?}"
        );
        assert!(
            events[log..]
                .iter()
                .any(|e| e.starts_with("bar") && e.contains("3/10")),
            "the bar is drawn again after the log line: {events:?}"
        );

        // Once the guard is gone, lines are written as they are and the bar is cleared.
        drop(shown);
        assert!(bar.is_finished());
        let count = screen.events().len();
        progress.around(|| screen.push("LATER".into()));
        assert_eq!(screen.events()[count..], ["LATER".to_owned()]);
    }

    #[test]
    fn colour_only_on_a_terminal() {
        assert!(!colour(false));
        // NO_COLOR is read from the environment; the test does not change it.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        assert_eq!(colour(true), !no_color);
    }
}
