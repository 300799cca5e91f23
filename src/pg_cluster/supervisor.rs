//! Keeps the built-in PostgreSQL running while the web server runs: when the server process
//! dies (killed, out of memory, crashed), it is started again, a few times with growing
//! pauses, and the pool's next connections reach the new one by themselves. Meanwhile pages
//! answer 503, as in any other outage.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cluster::{Cluster, ClusterOptions};

/// Restarts tried after one death before giving up.
pub const RESTART_TRIES: u32 = 5;
/// How often the server is looked at.
const POLL: Duration = Duration::from_secs(1);
/// The pause after the first failed restart; it doubles after each.
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The built-in cluster, watched or not.
pub enum BuiltIn {
    /// Stopped by whoever holds it (the command-line tools, which run briefly).
    Unwatched(Cluster),
    /// Owned by its watcher, which stops it when told to.
    Watched {
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    },
}

impl BuiltIn {
    /// Watches `cluster` when we started its server (an adopted one is its owner's to watch).
    pub fn watch(cluster: Cluster, options: ClusterOptions) -> Self {
        if !cluster.owns_server() {
            return Self::Unwatched(cluster);
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(watch_over(cluster, options, stopped));
        Self::Watched { stop, task }
    }

    /// Stops the server (after a restart under way, if any) and waits for it.
    pub async fn stop(self) {
        match self {
            Self::Unwatched(cluster) => stop_cluster(cluster).await,
            Self::Watched { stop, task } => {
                let _ = stop.send(true);
                if let Err(e) = task.await {
                    tracing::error!(error = %e, "the built-in PostgreSQL's watcher failed");
                }
            }
        }
    }
}

async fn stop_cluster(cluster: Cluster) {
    match tokio::task::spawn_blocking(move || cluster.stop()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "stopping the built-in PostgreSQL"),
        Err(e) => tracing::error!(error = %e, "stopping the built-in PostgreSQL"),
    }
}

async fn watch_over(
    mut cluster: Cluster,
    options: ClusterOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticks.tick() => {}
        }
        let Some(reason) = cluster.exited() else {
            continue;
        };
        tracing::error!(
            reason,
            "the built-in PostgreSQL stopped unexpectedly; restarting it"
        );
        match restart(&options, &mut stop, FIRST_PAUSE).await {
            Restart::Running(again) => {
                cluster = again;
                tracing::info!("the built-in PostgreSQL is running again");
            }
            Restart::Stopping => return,
            Restart::GaveUp => {
                tracing::error!(
                    tries = RESTART_TRIES,
                    log = %options.data_dir.join("postgres.log").display(),
                    "the built-in PostgreSQL could not be restarted; pages answer 503 until \
                     it is fixed and Portcullis restarted (see its log)"
                );
                let _ = stop.changed().await;
                return;
            }
        }
    }
    stop_cluster(cluster).await;
}

enum Restart {
    Running(Cluster),
    /// The web server is shutting down: nothing to restart for.
    Stopping,
    GaveUp,
}

/// Starts the server again: [`RESTART_TRIES`] tries, `first_pause` after the first failure,
/// doubling after each.
async fn restart(
    options: &ClusterOptions,
    stop: &mut watch::Receiver<bool>,
    first_pause: Duration,
) -> Restart {
    let mut pause = first_pause;
    for attempt in 1..=RESTART_TRIES {
        let o = options.clone();
        match tokio::task::spawn_blocking(move || Cluster::start(&o)).await {
            Ok(Ok(cluster)) => return Restart::Running(cluster),
            // Commonly: backends of the dead server still hold its shared memory for a moment.
            Ok(Err(e)) => {
                tracing::warn!(attempt, error = %e, "the built-in PostgreSQL did not restart")
            }
            Err(e) => {
                tracing::warn!(attempt, error = %e, "the built-in PostgreSQL did not restart")
            }
        }
        if attempt < RESTART_TRIES {
            tokio::select! {
                _ = stop.changed() => return Restart::Stopping,
                () = tokio::time::sleep(pause) => {}
            }
            pause *= 2;
        }
    }
    Restart::GaveUp
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A data directory that cannot be made: every start fails at once.
    fn unstartable() -> ClusterOptions {
        ClusterOptions::new("/dev/null/portcullis")
    }

    #[tokio::test]
    async fn a_server_that_will_not_start_is_tried_five_times_with_growing_pauses_then_given_up() {
        let (_stop, mut stopped) = watch::channel(false);
        let started = Instant::now();
        let outcome = restart(&unstartable(), &mut stopped, Duration::from_millis(20)).await;
        assert!(matches!(outcome, Restart::GaveUp));
        // Four pauses between five tries: 20 + 40 + 80 + 160 ms.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn shutting_down_ends_the_tries() {
        let (stop, mut stopped) = watch::channel(false);
        assert!(stop.send(true).is_ok());
        let started = Instant::now();
        let outcome = restart(&unstartable(), &mut stopped, Duration::from_secs(60)).await;
        assert!(matches!(outcome, Restart::Stopping));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
