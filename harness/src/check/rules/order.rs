//! Rule 4, order: within one ownership, offsets are delivered contiguously, starting at
//! a position the group's commits allow (see starts.rs: the committed position, a
//! batch boundary an unobserved or indeterminate commit may have set, or the member's
//! own position when it gets a partition back that nobody owned in between).

use super::starts;
use crate::check::model::{Batch, Model, Ownership};
use crate::check::verdict::{CheckResult, Violation};
use crate::history::{Rule, ViolationKind};

pub fn check(model: &Model) -> CheckResult {
    let mut violations = Vec::new();
    let mut checked = 0usize;
    for o in &model.ownerships {
        let Some(first) = o.batches.first() else {
            continue;
        };
        checked += 1;
        violations.extend(start(model, o, first));
        violations.extend(contiguity(model, o));
    }
    CheckResult::new(
        Rule::Order,
        violations,
        format!("{checked} ownerships consumed in order from an allowed start"),
    )
}

fn label(o: &Ownership) -> String {
    format!("{} under {}", o.tp, o.member)
}

/// The first offset delivered must be an allowed start.
fn start(model: &Model, o: &Ownership, first: &Batch) -> Option<Violation> {
    let starts = starts::allowed(model, o, first.at);
    let f = first.first();
    if starts.allowed.contains(&f) {
        return None;
    }
    let below = starts.allowed.range(..f).next_back().copied();
    let (kind, size, what) = match below {
        Some(b) => (ViolationKind::Skip, (f - b) as u64, "skipped"),
        None => {
            let above = starts.allowed.iter().next().copied().unwrap_or(f);
            (ViolationKind::Rewind, (above - f) as u64, "rewound")
        }
    };
    let others = if starts.allowed.len() > 1 {
        let list: Vec<String> = starts.allowed.iter().map(i64::to_string).collect();
        format!("; allowed starts {}", list.join(", "))
    } else {
        String::new()
    };
    Some(
        Violation::new(
            kind,
            format!(
                "{}: started at {f} but the committed position was {} ({what}{others})",
                label(o),
                starts.committed
            ),
        )
        .tp(&o.tp)
        .member(&o.member)
        .size(size)
        .at(first.ts)
        .fault(model.fault_at(first.ts)),
    )
}

/// Each delivered range continues where the previous one ended.
fn contiguity(model: &Model, o: &Ownership) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut next: Option<i64> = None;
    for b in &o.batches {
        let at_ts = |v: Violation| {
            v.tp(&o.tp)
                .member(&o.member)
                .at(b.ts)
                .fault(model.fault_at(b.ts))
        };
        if !b.exact && b.count != (b.max - b.min + 1) as u64 {
            let span = (b.max - b.min + 1) as u64;
            out.push(at_ts(
                Violation::new(
                    ViolationKind::GapInBatch,
                    format!(
                        "{}: batch {}..={} holds {} records, so it {} offsets",
                        label(o),
                        b.min,
                        b.max,
                        b.count,
                        if b.count < span {
                            "skipped"
                        } else {
                            "repeated"
                        }
                    ),
                )
                .size(b.count.abs_diff(span)),
            ));
        }
        for (i, &(a, z)) in b.ranges.iter().enumerate() {
            if let Some(n) = next.filter(|&n| n != a) {
                let inside = i > 0;
                let what = if a > n { "skipped" } else { "rewound" };
                let kind = match (inside, a > n) {
                    (true, _) => ViolationKind::GapInBatch,
                    (false, true) => ViolationKind::Skip,
                    (false, false) => ViolationKind::Rewind,
                };
                out.push(at_ts(
                    Violation::new(
                        kind,
                        format!(
                            "{}: expected offset {n} next, got {a} ({what}{})",
                            label(o),
                            if inside { " inside one batch" } else { "" }
                        ),
                    )
                    .size(a.abs_diff(n)),
                ));
            }
            next = Some(z + 1);
        }
    }
    out
}
