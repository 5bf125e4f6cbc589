//! One module per rule of the oracle (README, "What a verdict means").

pub mod commits;
pub mod completed;
pub mod duplicates;
pub mod latency;
pub mod loss;
pub mod members;
pub mod order;
pub mod ownership;
pub mod protocol;
mod starts;

use rangemap::RangeInclusiveSet;

/// Number of offsets in a set of inclusive ranges.
pub fn size(set: &RangeInclusiveSet<i64>) -> u64 {
    set.iter().map(|r| (r.end() - r.start() + 1) as u64).sum()
}

/// `a ∩ b` as a new set.
pub fn intersect(a: &RangeInclusiveSet<i64>, b: &RangeInclusiveSet<i64>) -> RangeInclusiveSet<i64> {
    let mut out = RangeInclusiveSet::new();
    for r in a.iter() {
        for o in b.overlapping(r) {
            out.insert(*r.start().max(o.start())..=*r.end().min(o.end()));
        }
    }
    out
}

/// Renders a set compactly: `3..=7, 12`.
pub fn show(set: &RangeInclusiveSet<i64>) -> String {
    let parts: Vec<String> = set
        .iter()
        .take(5)
        .map(|r| {
            if r.start() == r.end() {
                r.start().to_string()
            } else {
                format!("{}..={}", r.start(), r.end())
            }
        })
        .collect();
    let more = set.iter().count().saturating_sub(parts.len());
    if more > 0 {
        format!("{} (+{more} ranges)", parts.join(", "))
    } else {
        parts.join(", ")
    }
}
