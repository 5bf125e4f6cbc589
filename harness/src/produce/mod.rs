//! The verifiable producer: idempotent, acks=all, a steady rate spread round-robin over
//! the partitions. Acked offsets are batched into `records_acked` history events.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;

use crate::history::{Event, PartitionRange, Recorder};

/// How often acks are written to the history.
const ACK_FLUSH: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Acks {
    offsets: Vec<(i32, i64)>,
    failures: Vec<String>,
}

struct AckContext {
    acks: Arc<Mutex<Acks>>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut acks = self.acks.lock().expect("acks lock");
        match result {
            Ok(m) => acks.offsets.push((m.partition(), m.offset())),
            Err((e, _)) => acks.failures.push(e.to_string()),
        }
    }
}

pub struct Producer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Producer {
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        rate_per_sec: u32,
        recorder: Arc<Recorder>,
    ) -> Result<Self> {
        let acks = Arc::new(Mutex::new(Acks::default()));
        let producer: ThreadedProducer<AckContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            .set("log_level", "3")
            .create_with_context(AckContext { acks: acks.clone() })
            .context("cannot create the verifiable producer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_owned();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                produce(
                    producer,
                    &topic,
                    partitions,
                    rate_per_sec.max(1),
                    &flag,
                    &acks,
                    &recorder,
                )
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sending, waits for every outstanding ack, records `production_stopped`.
    pub fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => anyhow::bail!("the producer thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn produce(
    producer: ThreadedProducer<AckContext>,
    topic: &str,
    partitions: i32,
    rate: u32,
    stop: &AtomicBool,
    acks: &Mutex<Acks>,
    recorder: &Recorder,
) -> Result<()> {
    let interval = Duration::from_secs(1) / rate;
    let mut next = Instant::now();
    let mut last_flush = Instant::now();
    let mut seq: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        while Instant::now() >= next {
            let payload = seq.to_string();
            let record = BaseRecord::to(topic)
                .partition((seq % partitions as u64) as i32)
                .key(&payload)
                .payload(&payload);
            match producer.send(record) {
                Ok(()) => {
                    seq += 1;
                    next += interval;
                }
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    _,
                )) => break,
                Err((e, _)) => anyhow::bail!("cannot produce: {e}"),
            }
        }
        if last_flush.elapsed() >= ACK_FLUSH {
            flush_acks(acks, topic, recorder);
            last_flush = Instant::now();
        }
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(ACK_FLUSH),
        );
    }
    producer
        .flush(Duration::from_secs(60))
        .context("producer could not flush outstanding records")?;
    flush_acks(acks, topic, recorder);
    recorder.record(None, Event::ProductionStopped {});
    Ok(())
}

fn flush_acks(acks: &Mutex<Acks>, topic: &str, recorder: &Recorder) {
    let Acks { offsets, failures } = std::mem::take(&mut *acks.lock().expect("acks lock"));
    if !failures.is_empty() {
        recorder.record(
            None,
            Event::ProduceFailed {
                count: failures.len() as u64,
                error: failures[0].clone(),
            },
        );
    }
    if offsets.is_empty() {
        return;
    }
    recorder.record(
        None,
        Event::RecordsAcked {
            partitions: to_ranges(topic, offsets),
        },
    );
}

/// Folds acked (partition, offset) pairs into contiguous ranges per partition. An ack
/// without an offset (-1: librdkafka's answer to a retried send the broker already had,
/// whose first ack was lost) says nothing about where the record is, and is dropped.
pub fn to_ranges(topic: &str, mut offsets: Vec<(i32, i64)>) -> Vec<PartitionRange> {
    offsets.retain(|&(_, o)| o >= 0);
    offsets.sort_unstable();
    let mut by_partition: BTreeMap<i32, Vec<PartitionRange>> = BTreeMap::new();
    for (p, o) in offsets {
        let ranges = by_partition.entry(p).or_default();
        match ranges.last_mut() {
            Some(r) if r.max_offset + 1 == o => {
                r.max_offset = o;
                r.count += 1;
            }
            Some(r) if r.max_offset == o => {}
            _ => ranges.push(PartitionRange {
                topic: topic.to_owned(),
                partition: p,
                count: 1,
                min_offset: o,
                max_offset: o,
                offsets: None,
            }),
        }
    }
    by_partition.into_values().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_fold_into_contiguous_ranges() {
        let r = to_ranges(
            "t",
            vec![(1, 5), (0, 1), (1, 3), (0, 0), (1, 4), (1, 7), (1, -1)],
        );
        let got: Vec<_> = r
            .iter()
            .map(|r| (r.partition, r.min_offset, r.max_offset, r.count))
            .collect();
        assert_eq!(got, vec![(0, 0, 1, 2), (1, 3, 5, 3), (1, 7, 7, 1)]);
    }
}
