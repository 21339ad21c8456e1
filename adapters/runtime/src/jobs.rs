//! The command line's side of the administration: who acts (`cli:<user>`, recorded
//! with every action) and running a job (a replay, a rebuild) in the foreground, with a
//! progress bar on a terminal (`indicatif`) and plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use application::admin::{Job, JobState, RunningJob};
use application::Actor;
use indicatif::{ProgressBar, ProgressStyle};

/// The actor of an administrative subcommand: whoever can reach the database may
/// administer; the record names the operating-system user, as `cli:<user>`.
pub fn cli_actor() -> Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    Actor::unrestricted(Some(format!("cli:{user}")))
}

/// How often a plain line reports progress when standard error is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// Runs `job` to its end, showing its progress on standard error; returns the job as
/// recorded at its end.
///
/// # Errors
/// When the job's end could not be recorded, or the job failed (its error).
pub async fn run_in_foreground(job: Box<dyn RunningJob>, what: &str) -> anyhow::Result<Job> {
    let id = job.id();
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        bar
    });
    let last_line = Mutex::new(None::<Instant>);
    let progress = |processed: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(processed);
            return;
        }
        let mut last = last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= LINE_EVERY) {
            *last = Some(Instant::now());
            eprintln_plain(&format!("{what}: {processed}/{total} events"));
        }
    };
    let ended = job.run(&progress).await?;
    if let Some(bar) = &bar {
        bar.finish();
    }
    match ended.state {
        JobState::Succeeded => {
            eprintln_plain(&format!(
                "{what}: done, {} events (job {id})",
                ended.processed
            ));
            Ok(ended)
        }
        JobState::Failed | JobState::Running => anyhow::bail!(
            "{what} failed after {}/{} events (job {id}): {}",
            ended.processed,
            ended.total,
            ended.error.as_deref().unwrap_or("no error recorded")
        ),
    }
}

#[allow(clippy::print_stderr)]
fn eprintln_plain(line: &str) {
    eprintln!("{line}");
}
