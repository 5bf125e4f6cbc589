//! Rule 1, no loss: after drain, consumed ranges cover every acked offset. Also checks
//! the producer's own promise: acked offsets per partition are contiguous.

use rangemap::RangeInclusiveSet;

use super::{show, size};
use crate::check::model::Model;
use crate::check::verdict::{CheckResult, Metrics};

pub fn check(model: &Model, metrics: &mut Metrics) -> Vec<CheckResult> {
    let mut loss = Vec::new();
    let mut gaps = Vec::new();
    let mut lost_total = 0;
    for (tp, acked) in &model.acked {
        let mut consumed = RangeInclusiveSet::new();
        for o in model.ownerships_of(tp) {
            for b in &o.batches {
                consumed.insert(b.min..=b.max);
            }
        }
        for s in model.stray.iter().filter(|s| &s.tp == tp) {
            consumed.insert(s.batch.min..=s.batch.max);
        }
        let mut missing = RangeInclusiveSet::new();
        for r in acked.iter() {
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
            loss.push(format!(
                "{}-{}: {n} acked records never consumed (offsets {}){}",
                tp.topic,
                tp.partition,
                show(&missing),
                if stranded {
                    "; stranded: no member owned the partition when production stopped"
                } else {
                    ""
                }
            ));
        }
        if acked.iter().count() > 1 {
            let first = acked.iter().next().map(|r| *r.start()).unwrap_or(0);
            let last = acked.iter().next_back().map(|r| *r.end()).unwrap_or(0);
            let holes: RangeInclusiveSet<i64> = acked.gaps(&(first..=last)).collect();
            gaps.push(format!(
                "{}-{}: acked offsets have holes at {}",
                tp.topic,
                tp.partition,
                show(&holes)
            ));
        }
    }
    metrics.lost = lost_total;
    metrics.records_acked = model.acked_count;

    let mut no_loss_violations = loss;
    if model.production_stopped.is_none() {
        no_loss_violations.push("the run never stopped production, so it never drained".into());
    }
    if model.acked_count == 0 {
        no_loss_violations.push("no record was acked: nothing was tested".into());
    }
    vec![
        CheckResult::new(
            "no_loss",
            no_loss_violations,
            format!(
                "all {} acked records consumed across {} partitions",
                model.acked_count,
                model.acked.len()
            ),
        ),
        CheckResult::new(
            "acks_contiguous",
            gaps,
            format!(
                "acked offsets contiguous per partition ({} produce failures)",
                model.produce_failures
            ),
        ),
    ]
}
