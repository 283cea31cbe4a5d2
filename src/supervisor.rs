//! The supervisor: every background task of the service starts here, with a name.
//!
//! All of them watch one shutdown signal ([`Shutdown`]). While the service runs, a task that
//! panics or ends by itself (a loop that returned, a worker that gave up) is a failure: the
//! supervisor reports it ([`Supervisor::failed`]) with the task's name, and the service stops
//! and exits non-zero instead of running on without it. At shutdown [`Supervisor::stop`]
//! raises the signal and joins every task within one deadline, logging how each ended;
//! whatever is still running then is aborted and named.
//!
//! It must not know what the tasks do: `startup` and `App::run_until_stopped` hand them in.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinSet};

/// The shared shutdown signal, as each task holds it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    raised: watch::Receiver<bool>,
}

impl Shutdown {
    /// Resolves once shutdown is raised (or the supervisor is gone, which means the same).
    pub async fn wait(&mut self) {
        let _ = self.raised.wait_for(|raised| *raised).await;
    }

    /// Whether shutdown has been raised.
    pub fn is_raised(&self) -> bool {
        *self.raised.borrow()
    }

    /// The signal as a plain watch receiver, for the code that takes one.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.raised.clone()
    }
}

/// What a task's future may end with: `()` or a `Result` whose error says why it gave up.
pub trait TaskOutput: Send + 'static {
    /// Why the task ended badly, if it did.
    fn error(self) -> Option<String>;
}

impl TaskOutput for () {
    fn error(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Display + Send + 'static> TaskOutput for Result<(), E> {
    fn error(self) -> Option<String> {
        self.err().map(|err| err.to_string())
    }
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It returned (at shutdown, the expected end).
    Returned,
    /// It returned an error.
    Failed(String),
    /// It panicked, with the panic's message.
    Panicked(String),
    /// It did not end within the deadline and was aborted.
    Aborted,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Returned => f.write_str("ended"),
            Ending::Failed(why) => write!(f, "failed: {why}"),
            Ending::Panicked(message) => write!(f, "panicked: {message}"),
            Ending::Aborted => f.write_str("did not stop within the deadline and was aborted"),
        }
    }
}

/// A task that ended while the service was running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("background task `{task}` {ending} while the service was running")]
pub struct TaskFailure {
    /// The task's name.
    pub task: &'static str,
    /// How it ended.
    pub ending: Ending,
}

/// How the tasks ended at shutdown, by name, in the order they ended.
pub type StopReport = Vec<(&'static str, Ending)>;

/// Starts, watches and joins the background tasks.
pub struct Supervisor {
    signal: watch::Sender<bool>,
    tasks: JoinSet<Option<String>>,
    names: HashMap<Id, &'static str>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("tasks", &self.names.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// A supervisor with no tasks and shutdown not raised.
    pub fn new() -> Self {
        Self {
            signal: watch::Sender::new(false),
            tasks: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    /// The shutdown signal, for a task to watch.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown {
            raised: self.signal.subscribe(),
        }
    }

    /// Starts `task` under `name` on the runtime. It must end soon after shutdown is raised,
    /// and not before.
    pub fn spawn<O: TaskOutput>(
        &mut self,
        name: &'static str,
        task: impl Future<Output = O> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(async move { task.await.error() });
        self.names.insert(handle.id(), name);
        tracing::debug!(task = name, "background task started");
    }

    /// The names of the tasks still running.
    pub fn running(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.names.values().copied().collect();
        names.sort_unstable();
        names
    }

    /// Resolves when a task ends while shutdown is not raised: that is a failure, whether it
    /// panicked, returned an error or simply returned. Logs it, naming the task. Never
    /// resolves while every task runs (or when there are none).
    pub async fn failed(&mut self) -> TaskFailure {
        loop {
            let Some(joined) = self.tasks.join_next_with_id().await else {
                return std::future::pending().await;
            };
            let (task, ending) = self.book(joined);
            if *self.signal.borrow() {
                // Raised meanwhile: an expected end, reported by `stop`.
                continue;
            }
            tracing::error!(
                task,
                "background task {ending} while the service was running; stopping the service"
            );
            return TaskFailure { task, ending };
        }
    }

    /// Raises shutdown and waits until every task has ended or `deadline` has passed; tasks
    /// still running then are aborted. Logs how each ended; returns it by name.
    pub async fn stop(mut self, deadline: Duration) -> StopReport {
        self.signal.send_replace(true);
        let mut report = StopReport::new();
        let until = tokio::time::Instant::now() + deadline;
        loop {
            match tokio::time::timeout_at(until, self.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => {
                    let (task, ending) = self.book(joined);
                    match &ending {
                        Ending::Returned => tracing::info!(task, "background task stopped"),
                        _ => tracing::error!(task, "background task {ending}"),
                    }
                    report.push((task, ending));
                }
                Ok(None) => break,
                Err(_) => {
                    let mut late = self.running();
                    late.sort_unstable();
                    for task in late {
                        tracing::error!(
                            task,
                            deadline_ms = deadline.as_millis() as u64,
                            "background task did not stop within the deadline; aborted"
                        );
                        report.push((task, Ending::Aborted));
                    }
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        report
    }

    /// Names the task that ended and says how.
    fn book(&mut self, joined: Result<(Id, Option<String>), JoinError>) -> (&'static str, Ending) {
        let (id, ending) = match joined {
            Ok((id, None)) => (id, Ending::Returned),
            Ok((id, Some(why))) => (id, Ending::Failed(why)),
            Err(err) => {
                let id = err.id();
                let ending = if err.is_panic() {
                    Ending::Panicked(panic_message(err.into_panic()))
                } else {
                    Ending::Aborted
                };
                (id, ending)
            }
        };
        (self.names.remove(&id).unwrap_or("unnamed"), ending)
    }
}

/// The text a panic was raised with, when it has one.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_string(),
            Err(_) => "(no message)".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// True, but not known to the compiler (so the panicking task has a `()` type).
    fn supervisor_is_broken() -> bool {
        std::hint::black_box(true)
    }

    /// A task that runs until shutdown, as every well-behaved loop does.
    async fn until_shutdown(mut shutdown: Shutdown) {
        shutdown.wait().await;
    }

    #[tokio::test]
    async fn a_panicking_task_is_a_failure_naming_it() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("steady", until_shutdown(supervisor.shutdown()));
        supervisor.spawn("fragile", async {
            if supervisor_is_broken() {
                panic!("the index is corrupt");
            }
        });

        let failure = tokio::time::timeout(Duration::from_secs(10), supervisor.failed())
            .await
            .expect("the panic is reported");

        assert_eq!(failure.task, "fragile");
        assert_eq!(
            failure.ending,
            Ending::Panicked("the index is corrupt".into())
        );
        assert!(
            failure.to_string().contains("`fragile` panicked"),
            "{failure}"
        );
        assert_eq!(supervisor.running(), ["steady"]);
    }

    #[tokio::test]
    async fn a_task_that_returns_early_or_gives_up_is_a_failure() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("quitter", async {});
        let failure = supervisor.failed().await;
        assert_eq!(
            (failure.task, failure.ending),
            ("quitter", Ending::Returned)
        );

        supervisor.spawn("worker", async {
            Err::<(), &str>("cannot build the client")
        });
        let failure = supervisor.failed().await;
        assert_eq!(
            (failure.task, failure.ending),
            ("worker", Ending::Failed("cannot build the client".into()))
        );
    }

    #[tokio::test]
    async fn no_failure_is_reported_while_every_task_runs() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("a", until_shutdown(supervisor.shutdown()));
        supervisor.spawn("b", until_shutdown(supervisor.shutdown()));
        let reported = tokio::time::timeout(Duration::from_millis(50), supervisor.failed()).await;
        assert!(reported.is_err(), "nothing ended: {reported:?}");
    }

    #[tokio::test]
    async fn stop_raises_the_signal_and_joins_every_task_within_the_deadline() {
        let mut supervisor = Supervisor::new();
        let stopped = Arc::new(AtomicUsize::new(0));
        for name in ["router", "push", "sweeper"] {
            let mut shutdown = supervisor.shutdown();
            let stopped = stopped.clone();
            supervisor.spawn(name, async move {
                shutdown.wait().await;
                // Some work after the signal, as a loop finishing its batch does.
                tokio::task::yield_now().await;
                stopped.fetch_add(1, Ordering::SeqCst);
            });
        }

        let started = std::time::Instant::now();
        let mut report = supervisor.stop(Duration::from_secs(10)).await;

        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            3,
            "each task ran to its end"
        );
        report.sort_by_key(|(name, _)| *name);
        assert_eq!(
            report,
            [
                ("push", Ending::Returned),
                ("router", Ending::Returned),
                ("sweeper", Ending::Returned)
            ]
        );
    }

    #[tokio::test]
    async fn a_task_that_ignores_shutdown_is_aborted_at_the_deadline_and_named() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("polite", until_shutdown(supervisor.shutdown()));
        let dropped = Arc::new(Mutex::new(false));
        let guard = DropFlag(dropped.clone());
        supervisor.spawn("stubborn", async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });

        let started = std::time::Instant::now();
        let report = supervisor.stop(Duration::from_millis(200)).await;

        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the deadline holds"
        );
        assert_eq!(
            report,
            [("polite", Ending::Returned), ("stubborn", Ending::Aborted)]
        );
        // Aborting drops the task at its next poll point; give the runtime a moment.
        for _ in 0..100 {
            if *dropped.lock().unwrap() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(*dropped.lock().unwrap(), "the aborted task was dropped");
    }

    #[tokio::test]
    async fn a_task_ending_after_shutdown_is_not_a_failure() {
        let mut supervisor = Supervisor::new();
        let shutdown = supervisor.shutdown();
        supervisor.spawn("loop", until_shutdown(shutdown.clone()));
        supervisor.signal.send_replace(true);
        let reported = tokio::time::timeout(Duration::from_millis(100), supervisor.failed()).await;
        assert!(reported.is_err(), "an end after shutdown is expected");
        assert!(shutdown.is_raised());
    }

    struct DropFlag(Arc<Mutex<bool>>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = true;
        }
    }
}
