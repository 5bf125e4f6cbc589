//! Rule 1, no loss: after drain, consumed offsets cover every acked offset. Also checks
//! the producer's own promise: acked offsets per partition are contiguous.

use rangemap::RangeInclusiveSet;

use super::{show, size};
use crate::check::model::Model;
use crate::check::verdict::{CheckResult, Metrics, Violation};
use crate::history::{Rule, ViolationKind};

pub fn check(model: &Model, metrics: &mut Metrics) -> Vec<CheckResult> {
    let mut loss = Vec::new();
    let mut holes = Vec::new();
    let mut lost_total = 0;
    for (tp, log) in model.partitions.iter().filter(|(_, l)| !l.acked.is_empty()) {
        let mut consumed = RangeInclusiveSet::new();
        let batches = model
            .ownerships_of(tp)
            .flat_map(|o| o.batches.iter())
            .chain(log.stray.iter().map(|s| &s.batch));
        for b in batches {
            for &(a, z) in &b.ranges {
                consumed.insert(a..=z);
            }
        }
        let mut missing = RangeInclusiveSet::new();
        for r in log.acked.iter() {
            for g in consumed.gaps(r) {
                missing.insert(g);
            }
        }
        let n = size(&missing);
        if n > 0 {
            lost_total += n;
            // Unowned when production stopped: the group never gave the partition to
            // anyone (a liveness failure), which is not an owner skipping records.
            let stranded = model
                .final_assignment
                .as_ref()
                .is_some_and(|f| !f.values().any(|tps| tps.contains(tp)));
            let first = missing.iter().next().map_or(0, |r| *r.start());
            let (kind, why) = if stranded {
                (
                    ViolationKind::Stranded,
                    "; stranded: no member owned the partition when production stopped",
                )
            } else {
                (ViolationKind::Lost, "")
            };
            loss.push(
                Violation::new(
                    kind,
                    format!(
                        "{tp}: {n} acked records never consumed (offsets {}){why}",
                        show(&missing)
                    ),
                )
                .tp(tp)
                .size(n)
                .fault(first_consumer_fault(model, tp, first)),
            );
        }
        if log.acked.iter().count() > 1 {
            let first = log.acked.iter().next().map(|r| *r.start()).unwrap_or(0);
            let last = log.acked.iter().next_back().map(|r| *r.end()).unwrap_or(0);
            let gaps: RangeInclusiveSet<i64> = log.acked.gaps(&(first..=last)).collect();
            holes.push(
                Violation::new(
                    ViolationKind::AckHole,
                    format!("{tp}: acked offsets have holes at {}", show(&gaps)),
                )
                .tp(tp)
                .size(size(&gaps)),
            );
        }
    }
    metrics.lost = lost_total;
    metrics.records_acked = model.acked_count;

    if model.production_stopped.is_none() {
        loss.push(Violation::new(
            ViolationKind::NotDrained,
            "the run never stopped production, so it never drained",
        ));
    }
    if model.acked_count == 0 {
        loss.push(Violation::new(
            ViolationKind::NoTraffic,
            "no record was acked: nothing was tested",
        ));
    }
    vec![
        CheckResult::new(
            Rule::NoLoss,
            loss,
            format!(
                "all {} acked records consumed across {} partitions",
                model.acked_count,
                model
                    .partitions
                    .values()
                    .filter(|l| !l.acked.is_empty())
                    .count()
            ),
        ),
        CheckResult::new(
            Rule::AcksContiguous,
            holes,
            format!(
                "acked offsets contiguous per partition ({} produce failures)",
                model.produce_failures
            ),
        ),
    ]
}

/// The fault in force when the partition's first missing offset should have been
/// consumed: when the ownership that skipped it, or the last one before the gap, began.
fn first_consumer_fault<'a>(
    model: &'a Model,
    tp: &crate::history::TopicPartition,
    offset: i64,
) -> Option<&'a crate::history::Fault> {
    let t = model
        .ownerships_of(tp)
        .filter(|o| o.batches.iter().any(|b| b.min <= offset))
        .map(|o| o.start)
        .last()
        .or_else(|| model.ownerships_of(tp).map(|o| o.start).last())
        .unwrap_or(model.horizon);
    model.fault_at(t)
}
