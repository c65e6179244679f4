//! Persisting traces off the hot path: a bounded queue the collector fills without ever
//! waiting (full: the trace is dropped and counted), a writer storing batches, and the
//! retention loop pruning by age and count.

use super::Collector;
use super::model::Trace;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How persistence and retention behave.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistSettings {
    /// Traces the queue holds before new ones are dropped.
    pub capacity: usize,
    /// Most traces written in one transaction.
    pub batch_max: usize,
    /// Longest a trace waits for its batch to fill.
    pub flush_every: Duration,
    /// Traces older than this are deleted.
    pub max_age: Duration,
    /// At most this many traces are kept (the newest).
    pub max_count: u64,
    /// How often retention runs.
    pub prune_every: Duration,
}

impl Default for PersistSettings {
    fn default() -> Self {
        PersistSettings {
            capacity: 4096,
            batch_max: 256,
            flush_every: Duration::from_millis(500),
            max_age: Duration::from_secs(7 * 86_400),
            max_count: 100_000,
            prune_every: Duration::from_secs(600),
        }
    }
}

/// The writer and retention tasks; stop them with [`TraceWriter::flush_and_stop`].
pub struct TraceWriter {
    collector: Arc<Collector>,
    stop: CancellationToken,
    writer: JoinHandle<()>,
    retention: JoinHandle<()>,
}

/// Starts persisting `collector`'s kept traces into `store`.
pub fn start(store: Store, collector: Arc<Collector>, settings: PersistSettings) -> TraceWriter {
    let (sender, receiver) = mpsc::channel(settings.capacity.max(1));
    collector.persist_to(Some(sender));
    let stop = CancellationToken::new();
    let writer = tokio::spawn(write_batches(
        store.clone(),
        receiver,
        settings.clone(),
        stop.clone(),
    ));
    let retention = tokio::spawn(retain(store, collector.clone(), settings, stop.clone()));
    TraceWriter {
        collector,
        stop,
        writer,
        retention,
    }
}

impl TraceWriter {
    /// Writes what is queued, then stops both tasks.
    pub async fn flush_and_stop(self) {
        self.collector.persist_to(None);
        self.stop.cancel();
        let _ = self.writer.await;
        self.retention.abort();
    }
}

async fn write_batches(
    store: Store,
    mut receiver: mpsc::Receiver<Arc<Trace>>,
    settings: PersistSettings,
    stop: CancellationToken,
) {
    let batch_max = settings.batch_max.max(1);
    let mut batch: Vec<Arc<Trace>> = Vec::with_capacity(batch_max);
    loop {
        let stopping = tokio::select! {
            received = receiver.recv() => match received {
                Some(trace) => { batch.push(trace); false }
                None => true,
            },
            () = stop.cancelled() => true,
        };
        if !stopping && batch.len() < batch_max {
            // Let the batch fill a little before a transaction.
            let deadline = tokio::time::sleep(settings.flush_every);
            tokio::pin!(deadline);
            while batch.len() < batch_max {
                tokio::select! {
                    received = receiver.recv() => match received {
                        Some(trace) => batch.push(trace),
                        None => break,
                    },
                    () = &mut deadline => break,
                    () = stop.cancelled() => break,
                }
            }
        }
        if stopping {
            receiver.close();
            while let Ok(trace) = receiver.try_recv() {
                batch.push(trace);
            }
        }
        if !batch.is_empty() {
            if let Err(error) = store.insert_traces(&batch).await {
                // Telemetry: a failed batch is reported and dropped, not retried forever.
                tracing::warn!(%error, traces = batch.len(), "cannot persist traces; dropped");
            }
            batch.clear();
        }
        if stopping {
            return;
        }
    }
}

async fn retain(
    store: Store,
    collector: Arc<Collector>,
    settings: PersistSettings,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(settings.prune_every.max(Duration::from_millis(10)));
    let mut reported_drops = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let oldest = crate::store::now_ms()
            - i64::try_from(settings.max_age.as_millis()).unwrap_or(i64::MAX);
        match store.prune_traces(oldest, settings.max_count).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "old traces pruned"),
            Err(error) => tracing::warn!(%error, "cannot prune old traces"),
        }
        let dropped = collector.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops {
            tracing::warn!(
                dropped = dropped - reported_drops,
                "traces not persisted: the writer's queue was full"
            );
            reported_drops = dropped;
        }
    }
}
