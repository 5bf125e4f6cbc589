//! report.html: one self-contained page per run (inline CSS and SVG, no script, nothing
//! fetched), and index.html for a matrix of runs.
//!
//! The page shows the verdict (outcome, checks, metrics, violations) and a timeline drawn
//! from the checker's model: one lane per partition with its owners over time, how each
//! ownership ended, unowned gaps, zombie windows, commits, re-deliveries, fault windows
//! and rebalance rounds. Every violation with a time and a partition gets a marker the
//! list links to (`#v-N`); hovering anything shows its `<title>`.
//!
//! Its size does not grow with the traffic: commits and consumption are drawn per pixel
//! bucket, never per event, and the violation list is capped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::check::model::{EndReason, Model, Ownership};
use crate::check::{Outcome, Verdict, Violation};
use crate::history::{Ms, TopicPartition, ViolationKind};

/// Width of the timeline's coordinate system (it scales to the page).
const W: f64 = 1320.0;
/// Room for the lane labels on the left, and a margin on the right.
const LEFT: f64 = 92.0;
const RIGHT: f64 = 18.0;
const PLOT: f64 = W - LEFT - RIGHT;
/// One lane: zombie strip, owner bar, commit ticks.
const LANE_H: f64 = 46.0;
const BAR_TOP: f64 = 11.0;
const BAR_H: f64 = 22.0;
/// One row of the fault strip above the lanes.
const FAULT_ROW_H: f64 = 22.0;
/// Buckets of the consumption sparkline per lane.
const SPARK_BUCKETS: usize = 150;
/// Commits are drawn one tick per this many units of width, per lane and kind.
const TICK_BUCKET: f64 = 2.0;
/// At most this many violations are listed and marked (the rest are counted).
const MAX_VIOLATIONS: usize = 400;

/// Member colours: fill and the text colour readable on it. Red, orange and amber are
/// kept for faults and violations.
const PALETTE: [(&str, &str); 10] = [
    ("#4e79a7", "#fff"),
    ("#59a14f", "#fff"),
    ("#b07aa1", "#fff"),
    ("#76b7b2", "#10302e"),
    ("#9c755f", "#fff"),
    ("#2f4b7c", "#fff"),
    ("#a0cbe8", "#10263a"),
    ("#8cd17d", "#163312"),
    ("#d4a6c8", "#3a1633"),
    ("#5f6b6d", "#fff"),
];

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "o-pass",
        Outcome::Fail => "o-fail",
        Outcome::KnownDeviation | Outcome::ClientFinding => "o-warn",
        Outcome::Skipped => "o-skip",
    }
}

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--pass:#1a7f37;--fail:#cf222e;--warn:#9a6700;--skip:#6e7781;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1380px;margin:0 auto;padding:14px 20px 40px}
header.run{display:flex;gap:18px;align-items:center;background:var(--card);border:1px solid var(--line);border-left:10px solid var(--c);border-radius:8px;padding:12px 18px}
.o-pass{--c:var(--pass)}.o-fail{--c:var(--fail)}.o-warn{--c:var(--warn)}.o-skip{--c:var(--skip)}
.badge{background:var(--c);color:#fff;font-weight:700;letter-spacing:.04em;padding:6px 12px;border-radius:6px;white-space:nowrap;font-size:15px}
header h1{margin:0;font-size:22px;font-weight:650}
header h1 span{color:var(--muted);font-weight:500}
.meta{color:var(--muted);font-size:13px;margin-top:2px}
.meta b{color:var(--fg);font-weight:600}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code.replay{background:#eef1f4;border:1px solid var(--line);border-radius:4px;padding:1px 6px;color:var(--fg);word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:8px;margin:10px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:7px 11px}
.card .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}
.card .k{color:var(--muted);font-size:12px}
.card.bad{border-color:var(--fail)}.card.bad .v{color:var(--fail)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 16px;margin:10px 0}
section h2{font-size:15px;margin:2px 0 8px}
svg.timeline{width:100%;height:auto;display:block;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg .axis text{font-size:11px;fill:#57606a}
svg .grid{stroke:#eaeef2;stroke-width:1}
svg .lanebg{fill:#fbfcfd}
svg .lanebg.odd{fill:#f1f3f5}
svg .lanelabel{font-size:12px;fill:#24292f;font-weight:600}
svg .bar{stroke:#fff;stroke-width:1}
svg .bar:hover,svg .zombie:hover,svg .redeliv:hover{stroke:#000;stroke-width:1.5}
svg .barlabel{font-size:11.5px;font-weight:650;pointer-events:none}
svg .gap{stroke:#cf222e;stroke-width:1.2;stroke-dasharray:3 3;opacity:.55}
svg .gaphit{fill:transparent}
svg .gaphit:hover+.gap,svg .gap:hover{opacity:1}
svg .ctick{stroke:#57606a;stroke-width:1}
svg .cfail{stroke:#cf222e;stroke-width:2}
svg .spark{fill:#fff;opacity:.38;pointer-events:none}
svg .rebal{stroke:#0969da;stroke-width:1;stroke-dasharray:2 3;opacity:.5}
svg .rebalm{fill:#0969da}
svg .flabel{font-size:11.5px;font-weight:650;fill:#6b4700;paint-order:stroke;stroke:#fff3cd;stroke-width:4px;stroke-linejoin:round}
svg .fdr{font-size:10.5px;fill:#6b4700;paint-order:stroke;stroke:#fbf4e2;stroke-width:3px;stroke-linejoin:round}
svg .vmark{scroll-margin-top:160px}
svg .vmark .halo{fill:none;stroke:#cf222e;stroke-width:3;opacity:0}
svg .vmark:target .halo{opacity:1;animation:pulse 1.2s ease-in-out 4}
svg .vmark:hover .vm{stroke:#000}
@keyframes pulse{0%,100%{stroke-width:2}50%{stroke-width:7}}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;font-size:12.5px;color:#424a53;margin:6px 4px 0 4px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend svg{flex:none}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;background:#f6f8fa;white-space:nowrap}
td.nw{white-space:nowrap}
.scroll{overflow-x:auto}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pill{display:inline-block;min-width:52px;text-align:center;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:650;color:#fff}
.pill.pass{background:var(--pass)}.pill.fail{background:var(--fail)}.pill.waived{background:var(--warn)}
td.detail{color:#424a53;font-size:13px;word-break:break-word}
ol.violations{margin:0;padding-left:26px}
ol.violations li{padding:4px 0;border-bottom:1px solid #eaeef2}
ol.violations li:target{background:#fff8c5}
ol.violations li{scroll-margin-top:60px}
.tag{display:inline-block;font-size:11.5px;padding:0 6px;border-radius:4px;background:#eef1f4;border:1px solid var(--line);margin-right:4px}
.tag.unwaived{background:#ffebe9;border-color:#ffcecb;color:#a40e26}
.tag.waived{background:#fff8c5;border-color:#eac54f;color:#6b4700}
.muted{color:var(--muted)}
ul.plain{margin:0;padding-left:18px}
footer{color:var(--muted);font-size:12px;margin-top:14px}
"#;

/// The run's report page.
pub fn page(verdict: &Verdict, model: &Model) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let protocol = verdict.protocol.map_or("?", |p| p.as_str());
    let title = format!(
        "{} / {protocol} / {}: {}",
        verdict.scenario,
        verdict.broker,
        verdict.outcome.label()
    );
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    );
    let tl = Timeline::new(model);
    let listed = numbered_violations(verdict);
    header(&mut s, verdict, model, &tl);
    cards(&mut s, verdict);
    timeline(&mut s, verdict, model, &tl, &listed);
    faults_table(&mut s, verdict, &tl);
    checks_table(&mut s, verdict);
    violations_list(&mut s, verdict, &tl, &listed);
    extras(&mut s, verdict);
    s.push_str(
        "<footer>Written by the harness from the run's history; \
         <code>harness check history.jsonl</code> re-checks it offline.</footer>\n\
         </main>\n</body>\n</html>\n",
    );
    s
}

/// Maps event times onto the timeline's x axis.
struct Timeline {
    t0: Ms,
    t1: Ms,
}

impl Timeline {
    fn new(model: &Model) -> Timeline {
        // The model keeps no record of the run's first event as such: take the earliest
        // time it knows of.
        let firsts = [
            model.processes.iter().map(|p| p.started).min(),
            model.ownerships.iter().map(|o| o.start).min(),
            model.assignments.iter().map(|a| a.ts).min(),
            model.commits.iter().map(|c| c.ts).min(),
            model.faults.iter().map(|f| f.start).min(),
            model
                .partitions
                .values()
                .filter_map(|l| l.acked_hw.first().map(|a| a.0))
                .min(),
        ];
        let t1 = model.horizon;
        let t0 = firsts.into_iter().flatten().min().unwrap_or(t1).min(t1);
        Timeline {
            t0,
            t1: t1.max(t0 + 1),
        }
    }

    fn x(&self, t: Ms) -> f64 {
        let t = t.clamp(self.t0, self.t1);
        LEFT + (t - self.t0) as f64 / (self.t1 - self.t0) as f64 * PLOT
    }

    /// Milliseconds one unit of width stands for.
    fn ms_per_unit(&self) -> f64 {
        (self.t1 - self.t0) as f64 / PLOT
    }

    /// A time as seconds since the start of the timeline.
    fn rel(&self, t: Ms) -> String {
        let d = t.saturating_sub(self.t0) as f64 / 1000.0;
        format!("+{d:.1} s")
    }
}

fn dur(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

fn opt_dur(ms: Option<u64>) -> String {
    ms.map_or("–".into(), dur)
}

/// A UTC date and time from ms since the epoch.
fn utc(ms: Ms) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn header(s: &mut String, v: &Verdict, model: &Model, tl: &Timeline) {
    let protocol = v.protocol.map_or("?", |p| p.as_str());
    let _ = write!(
        s,
        "<header class=\"run {}\">\n<div class=\"badge\">{}</div>\n<div>\n\
         <h1>{} <span>/ {} / {}</span></h1>\n",
        outcome_class(v.outcome),
        esc(v.outcome.label()),
        esc(&v.scenario),
        esc(protocol),
        esc(&v.broker)
    );
    let clients: Vec<String> = v.clients.iter().map(|c| esc(&c.to_string())).collect();
    let _ = write!(
        s,
        "<div class=\"meta\">client <b>{}</b> · seed <b>{}</b>",
        if clients.is_empty() {
            "–".to_owned()
        } else {
            clients.join(", ")
        },
        v.seed
    );
    if model.horizon > 0 {
        let _ = write!(
            s,
            " · {} · {:.1} s",
            utc(tl.t0),
            (tl.t1 - tl.t0) as f64 / 1000.0
        );
    }
    if let Some(i) = &model.info {
        let _ = write!(
            s,
            "<br>topic <b>{}</b> × {} partitions · group <b>{}</b> · session timeout {} ms",
            esc(&i.topic),
            i.partitions,
            esc(&i.group),
            i.consumer.session_timeout_ms
        );
    }
    s.push_str("</div>\n");
    if let Some(why) = &v.skipped {
        let _ = writeln!(s, "<div class=\"meta\">skipped: <b>{}</b></div>", esc(why));
    }
    if !v.replay.is_empty() {
        let _ = writeln!(
            s,
            "<div class=\"meta\">replay <code class=\"replay\">{}</code></div>",
            esc(&v.replay)
        );
    }
    s.push_str("</div>\n</header>\n");
}

fn cards(s: &mut String, v: &Verdict) {
    let m = &v.metrics;
    let first = m.faults.first();
    let items: Vec<(String, String, bool)> = vec![
        (m.records_acked.to_string(), "records acked".into(), false),
        (
            m.records_consumed.to_string(),
            "records consumed".into(),
            false,
        ),
        (m.lost.to_string(), "lost".into(), m.lost > 0),
        (
            m.duplicates.to_string(),
            format!(
                "duplicates: {} explained, {} not",
                m.duplicates_explained, m.duplicates_unexplained
            ),
            m.duplicates_unexplained > 0,
        ),
        (m.rebalances.to_string(), "rebalances".into(), false),
        (dur(m.max_unowned_ms), "max unowned".into(), false),
        (dur(m.max_zombie_ms), "max zombie".into(), false),
        (
            opt_dur(first.and_then(|f| f.detection_ms)),
            first.map_or("detection".into(), |f| format!("detection ({})", f.id)),
            false,
        ),
        (
            opt_dur(first.and_then(|f| f.recovery_ms)),
            first.map_or("recovery".into(), |f| format!("recovery ({})", f.id)),
            false,
        ),
    ];
    s.push_str("<div class=\"cards\">\n");
    for (value, key, bad) in items {
        let _ = writeln!(
            s,
            "<div class=\"card{}\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
            if bad { " bad" } else { "" },
            esc(&value),
            esc(&key)
        );
    }
    s.push_str("</div>\n");
}

/// Violations as listed: (number from 1, violation), capped.
fn numbered_violations(v: &Verdict) -> Vec<(usize, &Violation)> {
    v.violations()
        .enumerate()
        .map(|(i, x)| (i + 1, x))
        .take(MAX_VIOLATIONS)
        .collect()
}

/// Whether a violation gets a marker on the timeline: it has a time, and either no
/// partition (a marker on the axis) or a partition that has a lane.
fn marked(x: &Violation, model: &Model) -> bool {
    x.at.is_some()
        && x.tp
            .as_ref()
            .is_none_or(|tp| model.partitions.contains_key(tp))
}

/// Members in order of first appearance, each with its colours.
fn member_colours(model: &Model) -> BTreeMap<String, (String, &'static str)> {
    let mut order: Vec<&str> = Vec::new();
    let names = model
        .processes
        .iter()
        .map(|p| p.member.as_str())
        .chain(model.ownerships.iter().map(|o| o.member.as_str()))
        .chain(model.commits.iter().map(|c| c.member.as_str()));
    for m in names {
        if !order.contains(&m) {
            order.push(m);
        }
    }
    order
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let c = match PALETTE.get(i) {
                Some(&(fill, text)) => (fill.to_owned(), text),
                None => (format!("hsl({}, 45%, 42%)", (i * 137) % 360), "#fff"),
            };
            (m.to_owned(), c)
        })
        .collect()
}

fn end_word(r: EndReason) -> &'static str {
    match r {
        EndReason::Revoked => "revoked",
        EndReason::Closed => "closed",
        EndReason::Lost => "lost",
        EndReason::Killed => "killed",
        EndReason::Exited => "exited",
        EndReason::Open => "still held at the end",
    }
}

/// An end marker's shape, centred on (x, y).
fn end_marker(r: EndReason, x: f64, y: f64) -> String {
    match r {
        EndReason::Revoked => format!(
            "<path d=\"M{:.1} {:.1}v{:.1}\" stroke=\"#24292f\" stroke-width=\"2.5\"/>",
            x - 1.25,
            y - 11.0,
            22.0
        ),
        EndReason::Closed => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"7\" height=\"7\" fill=\"#24292f\" stroke=\"#fff\"/>",
            x - 3.5,
            y - 3.5
        ),
        EndReason::Lost => format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6\" fill=\"#fb8500\" stroke=\"#fff\"/>\
             <path d=\"M{:.1} {:.1}l6 6m0 -6l-6 6\" stroke=\"#fff\" stroke-width=\"1.8\"/>",
            x - 3.0,
            y - 3.0
        ),
        EndReason::Killed => format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"7\" fill=\"#cf222e\" stroke=\"#fff\"/>\
             <path d=\"M{:.1} {:.1}l7 7m0 -7l-7 7\" stroke=\"#fff\" stroke-width=\"2.2\"/>",
            x - 3.5,
            y - 3.5
        ),
        EndReason::Exited => format!(
            "<path d=\"M{:.1} {:.1}l7 12h-14z\" fill=\"#cf222e\" stroke=\"#fff\"/>",
            x,
            y - 7.0
        ),
        EndReason::Open => format!(
            "<path d=\"M{:.1} {:.1}l6 5l-6 5z\" fill=\"#57606a\"/>",
            x - 6.0,
            y - 5.0
        ),
    }
}

/// Re-deliveries of one ownership: records delivered again that some earlier batch of
/// the partition had already delivered.
struct Redelivery {
    owner: usize,
    first: Ms,
    last: Ms,
    records: u64,
    min: i64,
    max: i64,
}

fn redeliveries(model: &Model, tp: &TopicPartition) -> Vec<Redelivery> {
    let Some(log) = model.log(tp) else {
        return Vec::new();
    };
    let mut batches: Vec<(usize, &crate::check::model::Batch)> = log
        .owners
        .iter()
        .flat_map(|&i| model.ownerships[i].batches.iter().map(move |b| (i, b)))
        .collect();
    batches.sort_by_key(|(_, b)| b.at);
    let mut high = -1i64;
    let mut out: BTreeMap<usize, Redelivery> = BTreeMap::new();
    for (owner, b) in batches {
        let again: u64 = b
            .ranges
            .iter()
            .filter(|r| r.0 <= high)
            .map(|r| (r.1.min(high) - r.0 + 1) as u64)
            .sum();
        if again > 0 {
            let e = out.entry(owner).or_insert(Redelivery {
                owner,
                first: b.ts,
                last: b.ts,
                records: 0,
                min: i64::MAX,
                max: i64::MIN,
            });
            e.last = b.ts;
            e.records += again;
            e.min = e.min.min(b.min);
            e.max = e.max.max(b.max.min(high));
        }
        high = high.max(b.max);
    }
    out.into_values().collect()
}

/// Rebalance rounds: `partitions_assigned` events close together, as (time, members).
fn rounds(model: &Model, tl: &Timeline) -> Vec<(Ms, Vec<String>)> {
    let close = (tl.ms_per_unit() * 4.0).max(50.0) as Ms;
    let mut out: Vec<(Ms, Vec<String>)> = Vec::new();
    let mut sorted: Vec<_> = model.assignments.iter().collect();
    sorted.sort_by_key(|a| a.ts);
    for a in sorted {
        let who = if a.first_of_process {
            format!("{} (joining)", a.member)
        } else {
            a.member.clone()
        };
        match out.last_mut() {
            Some((t, members)) if a.ts - *t <= close => {
                if !members.contains(&who) {
                    members.push(who);
                }
            }
            _ => out.push((a.ts, vec![who])),
        }
    }
    out
}

/// A tick step (ms) giving at most ~14 ticks over the timeline.
fn tick_step(span: Ms) -> Ms {
    const STEPS: [Ms; 14] = [
        100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
        1_800_000,
    ];
    STEPS
        .into_iter()
        .find(|&s| span / s <= 14)
        .unwrap_or(3_600_000)
}

fn timeline(
    s: &mut String,
    v: &Verdict,
    model: &Model,
    tl: &Timeline,
    listed: &[(usize, &Violation)],
) {
    let colours = member_colours(model);
    let rounds = rounds(model, tl);

    // Fault rows: greedy stacking so overlapping windows (and labels) do not collide.
    let mut row_ends: Vec<f64> = Vec::new();
    let mut fault_rows = Vec::new();
    for f in &model.faults {
        let label = fault_label(f);
        let x0 = tl.x(f.start);
        let x1 = tl
            .x(f.healed.unwrap_or(f.window_end))
            .max(x0 + 10.0 + text_width(&label, 7.0));
        let row = match row_ends.iter().position(|&e| e + 6.0 < x0) {
            Some(r) => r,
            None => {
                row_ends.push(0.0);
                row_ends.len() - 1
            }
        };
        row_ends[row] = x1;
        fault_rows.push(row);
    }
    let fault_h = row_ends.len() as f64 * FAULT_ROW_H;
    let axis_y = fault_h + 18.0; // baseline of the top axis labels
    let rebal_y = axis_y + 4.0; // rebalance markers under the labels
    let lanes_y = rebal_y + 14.0;
    let n = model.partitions.len();
    let lanes_h = n as f64 * LANE_H;
    let bottom = lanes_y + lanes_h;
    let height = bottom + 24.0;

    let _ = write!(
        s,
        "<section>\n<h2>Timeline <span class=\"muted\" style=\"font-weight:400\">· one lane per partition · hover for details · {} rebalance round(s) marked on the axis</span></h2>\n\
         <svg class=\"timeline\" viewBox=\"0 0 {W} {height:.0}\" role=\"img\" aria-label=\"ownership timeline\">\n\
         <defs>\
         <pattern id=\"hatch-ok\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffe8a3\"/><path d=\"M0 0v6\" stroke=\"#d4a72c\" stroke-width=\"3\"/></pattern>\
         <pattern id=\"hatch-bad\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffcecb\"/><path d=\"M0 0v6\" stroke=\"#cf222e\" stroke-width=\"3\"/></pattern>\
         <pattern id=\"hatch-dup\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\"><rect width=\"5\" height=\"5\" fill=\"#fff\" opacity=\".0\"/><path d=\"M0 0v5\" stroke=\"#8250df\" stroke-width=\"2.2\"/></pattern>\
         </defs>\n",
        rounds.len()
    );

    // Grid and axes.
    let step = tick_step(tl.t1 - tl.t0);
    s.push_str("<g class=\"axis\">\n");
    let mut t = 0;
    while tl.t0 + t <= tl.t1 {
        let x = tl.x(tl.t0 + t);
        let label = if step < 1000 {
            format!("{:.1} s", t as f64 / 1000.0)
        } else {
            format!("{} s", t / 1000)
        };
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{axis_y:.1}\" text-anchor=\"middle\">{label}</text>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            axis_y + 4.0,
            bottom + 16.0
        );
        t += step;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{axis_y:.1}\" text-anchor=\"end\" style=\"font-weight:600\">time</text>",
        LEFT - 10.0
    );
    s.push_str("</g>\n");

    // Lane backgrounds under everything else, so fault windows shade across them.
    s.push_str("<g class=\"lanebgs\">");
    for li in 0..n {
        let _ = write!(
            s,
            "<rect class=\"lanebg{}\" x=\"0\" y=\"{:.1}\" width=\"{W}\" height=\"{LANE_H}\"/>",
            if li % 2 == 1 { " odd" } else { "" },
            lanes_y + li as f64 * LANE_H
        );
    }
    s.push_str("</g>\n");

    // Fault windows, shaded across every lane, labelled in their strip row.
    let mut taken: Vec<Vec<(f64, f64)>> = vec![Vec::new(); row_ends.len()];
    for (f, &row) in model.faults.iter().zip(&fault_rows) {
        let x0 = tl.x(f.start);
        let active_end = f.healed.map(|h| tl.x(h));
        let win_end = tl.x(f.window_end.max(f.healed.unwrap_or(0)));
        let ry = row as f64 * FAULT_ROW_H + 2.0;
        let m = v.metrics.faults.iter().find(|m| m.id == f.fault.id);
        let mut tip = format!(
            "fault {} {}{}\ninjected {}",
            f.fault.id,
            f.fault.kind.as_str(),
            f.fault
                .target
                .as_deref()
                .map_or(String::new(), |t| format!(" on {t}")),
            tl.rel(f.start)
        );
        match f.healed {
            Some(h) => {
                let _ = write!(tip, ", healed {} (after {})", tl.rel(h), dur(h - f.start));
            }
            None => tip.push_str(", not healed (instantaneous or lasting)"),
        }
        let _ = write!(tip, "\nwindow measured up to {}", tl.rel(f.window_end));
        if let Some(m) = m {
            let _ = write!(
                tip,
                "\ndetection {}, recovery {}, {} partition(s) moved, {} rebalance(s)",
                opt_dur(m.detection_ms),
                opt_dur(m.recovery_ms),
                m.partitions_moved,
                m.rebalances
            );
        }
        let tip = esc(&tip);
        let _ = write!(
            s,
            "<g class=\"fault\"><title>{tip}</title>\
             <rect x=\"{x0:.1}\" y=\"{lanes_y:.1}\" width=\"{:.1}\" height=\"{lanes_h:.1}\" fill=\"#d4a72c\" opacity=\".08\"/>",
            (win_end - x0).max(1.0)
        );
        if let Some(xa) = active_end {
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{lanes_y:.1}\" width=\"{:.1}\" height=\"{lanes_h:.1}\" fill=\"#e3b341\" opacity=\".16\"/>\
                 <rect x=\"{x0:.1}\" y=\"{ry:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"#ffd65c\" stroke=\"#d4a72c\"/>",
                (xa - x0).max(1.0),
                (xa - x0).max(2.0),
                FAULT_ROW_H - 4.0
            );
        }
        let _ = write!(
            s,
            "<rect x=\"{x0:.1}\" y=\"{ry:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"#d4a72c\" opacity=\".16\"/>\
             <line x1=\"{x0:.1}\" y1=\"{ry:.1}\" x2=\"{x0:.1}\" y2=\"{bottom:.1}\" stroke=\"#bf8700\" stroke-width=\"2\"/>",
            (win_end - x0).max(1.0),
            FAULT_ROW_H - 4.0
        );
        let label = fault_label(f);
        let width = text_width(&label, 7.0);
        let right = x0 + 6.0 + width > W - RIGHT;
        let (lx, anchor) = if right {
            (x0 - 5.0, "end")
        } else {
            (x0 + 5.0, "start")
        };
        let (a, b) = if right {
            (lx - width, lx)
        } else {
            (lx, lx + width)
        };
        taken[row].push((a, b));
        // Drawn after the flags, over them.
        let flabel = format!(
            "<text class=\"flabel\" x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            ry + FAULT_ROW_H - 9.0,
            esc(&label)
        );
        // Detection and recovery, as flags on the fault's row. A label goes left of its
        // flag, else right, else (no room) only in the flag's tooltip; two flags too close
        // for two labels share one.
        if let Some(m) = m {
            let mut flags: Vec<(f64, Ms, &str)> =
                [(m.detection_ms, "detected"), (m.recovery_ms, "recovered")]
                    .into_iter()
                    .filter_map(|(ms, what)| ms.map(|ms| (tl.x(f.start + ms), ms, what)))
                    .collect();
            flags.sort_by(|a, b| a.0.total_cmp(&b.0));
            for &(x, ms, what) in &flags {
                let _ = write!(
                    s,
                    "<g><title>{} {what} after {} ({})</title>\
                     <line x1=\"{x:.1}\" y1=\"{ry:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#6b4700\" stroke-width=\"2\"/></g>",
                    esc(&f.fault.id),
                    dur(ms),
                    tl.rel(f.start + ms),
                    ry + FAULT_ROW_H - 4.0,
                );
            }
            let text =
                |&(_, ms, what): &(f64, Ms, &str)| format!("{what} {}", tl.rel(f.start + ms));
            let labels: Vec<(f64, f64, String)> = match flags.as_slice() {
                [a, b] if b.0 - a.0 < text_width(&text(b), 6.2) + 10.0 => {
                    vec![(a.0, b.0, format!("{} · {}", text(a), text(b)))]
                }
                _ => flags.iter().map(|f| (f.0, f.0, text(f))).collect(),
            };
            for (left, right, label) in labels {
                let w = text_width(&label, 6.2);
                let free = |a: f64, b: f64, taken: &[(f64, f64)]| {
                    a >= LEFT - 40.0
                        && b <= W
                        && taken.iter().all(|&(c, d)| b + 4.0 < c || a > d + 4.0)
                };
                let place = if free(left - 3.0 - w, left, &taken[row]) {
                    Some((left - 3.0, "end", (left - 3.0 - w, left)))
                } else if free(right, right + 3.0 + w, &taken[row]) {
                    Some((right + 3.0, "start", (right, right + 3.0 + w)))
                } else {
                    None
                };
                if let Some((tx, anchor, span)) = place {
                    taken[row].push(span);
                    let _ = write!(
                        s,
                        "<text class=\"fdr\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                        ry + FAULT_ROW_H - 9.0,
                        esc(&label)
                    );
                }
            }
        }
        s.push_str(&flabel);
        s.push_str("</g>\n");
    }

    // Rebalance rounds on the axis, with a faint line across the lanes.
    for (t, members) in &rounds {
        let x = tl.x(*t);
        let _ = writeln!(
            s,
            "<g><title>rebalance round at {}: {} assigned</title>\
             <line class=\"rebal\" x1=\"{x:.1}\" y1=\"{lanes_y:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>\
             <path class=\"rebalm\" d=\"M{:.1} {:.1}h10l-5 8z\"/></g>",
            tl.rel(*t),
            esc(&members.join(", ")),
            x - 5.0,
            rebal_y + 1.0
        );
    }

    // Consumption per bucket, normalised over every lane.
    let spark: BTreeMap<&TopicPartition, Vec<u64>> = model
        .partitions
        .keys()
        .map(|tp| {
            let mut b = vec![0u64; SPARK_BUCKETS];
            for o in model.ownerships_of(tp) {
                for batch in &o.batches {
                    let i = ((batch.ts.saturating_sub(tl.t0)) as f64 / (tl.t1 - tl.t0) as f64
                        * SPARK_BUCKETS as f64) as usize;
                    b[i.min(SPARK_BUCKETS - 1)] += batch.count;
                }
            }
            (tp, b)
        })
        .collect();
    // Scaled to twice the median busy bucket (clipped): one catch-up burst should not
    // flatten the rest.
    let mut busy: Vec<u64> = spark
        .values()
        .flat_map(|b| b.iter())
        .copied()
        .filter(|&c| c > 0)
        .collect();
    busy.sort_unstable();
    let spark_max = busy.get(busy.len() / 2).map_or(1, |m| m * 2).max(1);

    let unexplained: Vec<&(usize, &Violation)> = listed
        .iter()
        .filter(|(_, x)| x.kind == ViolationKind::Unexplained)
        .collect();

    s.push_str("<g class=\"lanes\">\n");
    for (li, (tp, log)) in model.partitions.iter().enumerate() {
        let y0 = lanes_y + li as f64 * LANE_H;
        let bar_y = y0 + BAR_TOP;
        let mid = bar_y + BAR_H / 2.0;
        let owners: Vec<&Ownership> = model.ownerships_of(tp).collect();
        let consumed: u64 = owners
            .iter()
            .flat_map(|o| o.batches.iter())
            .map(|b| b.count)
            .sum();
        let commits: Vec<_> = model.commits_of(tp).collect();
        let failed = commits.iter().filter(|c| !c.success).count();
        let name = tp.to_string();
        let _ = write!(
            s,
            "<g class=\"lane\" data-partition=\"{}\">\n\
             <text class=\"lanelabel\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}: {} ownership(s), {} record(s) consumed, {} commit(s) ({} failed), {} acked offset range(s)</title>{}</text>\n",
            esc(&name),
            LEFT - 10.0,
            mid + 4.0,
            esc(&name),
            owners.len(),
            consumed,
            commits.len(),
            failed,
            log.acked.iter().count(),
            esc(&name)
        );

        // Unowned gaps between ownerships (not before the first or after the last).
        let mut covered: Option<Ms> = None;
        for o in &owners {
            if let Some(c) = covered {
                if o.start > c {
                    let (x0, x1) = (tl.x(c), tl.x(o.start));
                    let _ = writeln!(
                        s,
                        "<g><title>{} unowned for {} ({} to {})</title>\
                         <rect class=\"gaphit\" x=\"{x0:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{BAR_H}\"/>\
                         <line class=\"gap\" x1=\"{x0:.1}\" y1=\"{mid:.1}\" x2=\"{x1:.1}\" y2=\"{mid:.1}\"/></g>",
                        esc(&name),
                        dur(o.start - c),
                        tl.rel(c),
                        tl.rel(o.start),
                        (x1 - x0).max(1.0)
                    );
                }
            }
            let end = o.end_or(model.horizon);
            covered = Some(covered.map_or(end, |c| c.max(end)));
        }

        // Owner bars (their labels go on top of the sparkline, below).
        let mut labels = String::new();
        for o in &owners {
            let (fill, text) = colours
                .get(&o.member)
                .map_or(("#888".to_owned(), "#fff"), |(f, t)| (f.clone(), *t));
            let end = o.end_or(model.horizon);
            let (x0, x1) = (tl.x(o.start), tl.x(end));
            let w = (x1 - x0).max(1.5);
            let count: u64 = o.batches.iter().map(|b| b.count).sum();
            let span = match (
                o.batches.iter().map(|b| b.min).min(),
                o.batches.iter().map(|b| b.max).max(),
            ) {
                (Some(a), Some(b)) => format!(", offsets {a}..{b}"),
                _ => String::new(),
            };
            let who = if o.process > 1 {
                format!("{} (process {})", o.member, o.process)
            } else {
                o.member.clone()
            };
            let tip = format!(
                "{who} owns {name}\n{} to {} ({}), {}\n{count} record(s) in {} batch(es){span}",
                tl.rel(o.start),
                tl.rel(end),
                dur(end - o.start),
                end_word(o.end_reason),
                o.batches.len()
            );
            let _ = write!(
                s,
                "<g><title>{}</title><rect class=\"bar\" x=\"{x0:.1}\" y=\"{bar_y:.1}\" width=\"{w:.1}\" height=\"{BAR_H}\" rx=\"3\" fill=\"{fill}\"/>",
                esc(&tip)
            );
            let label = if o.process > 1 {
                format!("{}#{}", o.member, o.process)
            } else {
                o.member.clone()
            };
            if w > 8.0 * label.chars().count() as f64 + 10.0 {
                let _ = write!(
                    labels,
                    "<text class=\"barlabel\" x=\"{:.1}\" y=\"{:.1}\" fill=\"{text}\">{}</text>",
                    x0 + 6.0,
                    mid + 2.0,
                    esc(&label)
                );
            }
            s.push_str("</g>\n");
        }

        // Consumption sparkline, white over the bars.
        if let Some(b) = spark.get(tp) {
            if b.iter().any(|&c| c > 0) {
                let bw = PLOT / SPARK_BUCKETS as f64;
                let base = bar_y + BAR_H - 1.0;
                let mut d = format!("M{LEFT:.1} {base:.1}");
                let mut prev = base;
                for (i, &c) in b.iter().enumerate() {
                    let y = base - c.min(spark_max) as f64 / spark_max as f64 * (BAR_H * 0.4);
                    if (y - prev).abs() > 0.05 {
                        let _ = write!(d, "H{:.1}V{y:.1}", LEFT + i as f64 * bw);
                        prev = y;
                    }
                }
                let _ = write!(d, "H{:.1}V{base:.1}Z", LEFT + PLOT);
                let _ = writeln!(s, "<path class=\"spark\" d=\"{d}\"/>");
            }
        }
        s.push_str(&labels);

        // End markers.
        for o in &owners {
            let end = o.end_or(model.horizon);
            let x = tl.x(end);
            let _ = writeln!(
                s,
                "<g><title>{} {} {} at {}</title>{}</g>",
                esc(&o.member),
                end_word(o.end_reason),
                esc(&name),
                tl.rel(end),
                end_marker(o.end_reason, x, mid)
            );
        }

        // Zombie windows: the old owner still holding it, in the strip above the bar.
        for z in model.zombies.iter().filter(|z| &z.tp == tp) {
            let excused = z.excused_ms();
            let excess = z.excess_ms();
            let fault = z
                .fault
                .and_then(|i| model.faults.get(i))
                .map_or("no fault".to_owned(), |f| {
                    format!("{} {}", f.fault.id, f.fault.kind.as_str())
                });
            let tip = format!(
                "zombie: {} still held {name} after {} took it\n{} to {} ({}): {} excused by {fault}, {} beyond",
                z.member,
                model.ownerships.get(z.new).map_or("?", |o| o.member.as_str()),
                tl.rel(z.start),
                tl.rel(z.end),
                dur(z.end - z.start),
                dur(excused),
                dur(excess)
            );
            let split = z.start + excused;
            let (xs, xm, xe) = (tl.x(z.start), tl.x(split), tl.x(z.end));
            let _ = write!(s, "<g class=\"zombie\"><title>{}</title>", esc(&tip));
            if excused > 0 {
                let _ = write!(
                    s,
                    "<rect x=\"{xs:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"url(#hatch-ok)\" stroke=\"#bf8700\" stroke-width=\".8\"/>",
                    y0 + 2.0,
                    (xm - xs).max(2.0)
                );
            }
            if excess > 0 {
                let _ = write!(
                    s,
                    "<rect x=\"{xm:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"url(#hatch-bad)\" stroke=\"#cf222e\" stroke-width=\".8\"/>",
                    y0 + 2.0,
                    (xe - xm).max(2.0)
                );
            }
            s.push_str("</g>\n");
        }

        // Commits: one tick per bucket; failed ones red and taller, each bucket its own
        // hover target.
        let tick_y = bar_y + BAR_H + 1.5;
        let mut ok_buckets: BTreeSet<i64> = BTreeSet::new();
        let mut failed_buckets: BTreeMap<i64, Vec<&crate::check::model::Commit>> = BTreeMap::new();
        for c in &commits {
            let k = (tl.x(c.ts) / TICK_BUCKET).round() as i64;
            if c.success {
                ok_buckets.insert(k);
            } else {
                failed_buckets.entry(k).or_default().push(c);
            }
        }
        if !ok_buckets.is_empty() {
            let mut d = String::new();
            for k in &ok_buckets {
                let _ = write!(d, "M{:.0} {tick_y:.1}v6", *k as f64 * TICK_BUCKET);
            }
            let last = commits
                .iter()
                .rev()
                .find(|c| c.success)
                .map_or(String::new(), |c| {
                    format!(", the last to offset {} by {}", c.offset, c.member)
                });
            let _ = writeln!(
                s,
                "<g><title>{} successful commit(s) of {}{}</title><path class=\"ctick\" d=\"{d}\"/></g>",
                commits.len() - failed,
                esc(&name),
                esc(&last)
            );
        }
        for (k, cs) in &failed_buckets {
            let x = *k as f64 * TICK_BUCKET;
            let mut tip = format!("{} failed commit(s) of {name}:", cs.len());
            for c in cs.iter().take(5) {
                let _ = write!(
                    tip,
                    "\n{} at {} offset {} ({})",
                    c.member,
                    tl.rel(c.ts),
                    c.offset,
                    if c.definite {
                        "did not land"
                    } else {
                        "may have landed"
                    }
                );
            }
            if cs.len() > 5 {
                let _ = write!(tip, "\n… and {} more", cs.len() - 5);
            }
            let _ = writeln!(
                s,
                "<g><title>{}</title><path class=\"cfail\" d=\"M{x:.1} {:.1}v10\"/></g>",
                esc(&tip),
                tick_y - 1.0
            );
        }

        // Re-deliveries (explained or not), hatched over the bar where they happened.
        for r in redeliveries(model, tp) {
            let o = &model.ownerships[r.owner];
            let (x0, x1) = (tl.x(r.first), tl.x(r.last));
            let tip = format!(
                "{} re-delivered {} record(s) of {name} (offsets {}..{}) from {} to {}",
                o.member,
                r.records,
                r.min,
                r.max,
                tl.rel(r.first),
                tl.rel(r.last)
            );
            let _ = writeln!(
                s,
                "<g class=\"redeliv\"><title>{}</title><rect x=\"{:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{BAR_H}\" fill=\"url(#hatch-dup)\" stroke=\"#8250df\" stroke-width=\"1\"/></g>",
                esc(&tip),
                x0 - 1.5,
                (x1 - x0).max(3.0) + 1.5
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n");

    // Violation markers (drawn last, on top). Unexplained duplicates are the re-delivered
    // spots the checker could not explain.
    let lane_of: BTreeMap<&TopicPartition, usize> = model
        .partitions
        .keys()
        .enumerate()
        .map(|(i, tp)| (tp, i))
        .collect();
    s.push_str("<g class=\"violations\">\n");
    for (n, x) in listed.iter().filter(|(_, x)| marked(x, model)) {
        let Some(at) = x.at else { continue };
        let cx = tl.x(at);
        let cy = match x.tp.as_ref().and_then(|tp| lane_of.get(tp)) {
            Some(&l) => lanes_y + l as f64 * LANE_H + BAR_TOP + BAR_H / 2.0,
            None => rebal_y + 5.0,
        };
        let colour = if x.waived_by.is_some() {
            "#bf8700"
        } else {
            "#cf222e"
        };
        let r = if x.kind == ViolationKind::Unexplained {
            8.0
        } else {
            7.0
        };
        let tip = format!(
            "#{n} {} / {}{}\n{}{}",
            x.rule,
            x.kind,
            x.waived_by
                .as_deref()
                .map_or(String::new(), |w| format!(" (waived by {w})")),
            x.message,
            if unexplained.iter().any(|(m, _)| m == n) {
                "\nre-delivered without an explaining handover"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "<a href=\"#vl-{n}\"><g class=\"vmark\" id=\"v-{n}\"><title>{}</title>\
             <circle class=\"halo\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"14\"/>\
             <path class=\"vm\" d=\"M{cx:.1} {:.1}l{r} {r}l-{r} {r}l-{r} -{r}z\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"1.5\"/>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#fff\" style=\"font-size:10px;font-weight:700;pointer-events:none\">!</text></g></a>",
            esc(&tip),
            cy - r,
            cy + 3.5
        );
    }
    s.push_str("</g>\n</svg>\n");
    legend(s, &colours);
    s.push_str("</section>\n");
}

/// Roughly how wide a label is drawn, at `per_char` units a character.
fn text_width(s: &str, per_char: f64) -> f64 {
    s.chars().count() as f64 * per_char
}

fn fault_label(f: &crate::check::model::FaultWindow) -> String {
    match &f.fault.target {
        Some(t) => format!("{} {} → {t}", f.fault.id, f.fault.kind.as_str()),
        None => format!("{} {}", f.fault.id, f.fault.kind.as_str()),
    }
}

fn legend(s: &mut String, colours: &BTreeMap<String, (String, &'static str)>) {
    s.push_str("<div class=\"legend\">");
    let mut members: Vec<(&String, &String)> = colours.iter().map(|(m, (c, _))| (m, c)).collect();
    // Natural order for C1..C10.
    members.sort_by_key(|(m, _)| {
        let digits: String = m.chars().filter(char::is_ascii_digit).collect();
        (
            m.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned(),
            digits.parse::<u64>().unwrap_or(0),
            m.to_string(),
        )
    });
    for (m, c) in members {
        let _ = write!(
            s,
            "<span><svg width=\"22\" height=\"12\"><rect width=\"22\" height=\"12\" rx=\"3\" fill=\"{c}\"/></svg>{}</span>",
            esc(m)
        );
    }
    let sym = |inner: &str| {
        format!("<svg width=\"18\" height=\"22\" viewBox=\"-9 -11 18 22\">{inner}</svg>")
    };
    let items: [(String, &str); 14] = [
        (sym(&end_marker(EndReason::Revoked, 0.0, 0.0)), "revoked"),
        (sym(&end_marker(EndReason::Closed, 0.0, 0.0)), "closed"),
        (sym(&end_marker(EndReason::Lost, 0.0, 0.0)), "lost"),
        (sym(&end_marker(EndReason::Killed, 0.0, 0.0)), "killed"),
        (sym(&end_marker(EndReason::Exited, 0.0, 0.0)), "exited"),
        (
            "<svg width=\"26\" height=\"10\"><line class=\"gap\" x1=\"1\" y1=\"5\" x2=\"25\" y2=\"5\" stroke=\"#cf222e\" stroke-dasharray=\"3 3\"/></svg>".into(),
            "unowned",
        ),
        (
            "<svg width=\"22\" height=\"10\"><rect width=\"22\" height=\"10\" fill=\"url(#hatch-ok)\" stroke=\"#bf8700\"/></svg>".into(),
            "zombie (excused)",
        ),
        (
            "<svg width=\"22\" height=\"10\"><rect width=\"22\" height=\"10\" fill=\"url(#hatch-bad)\" stroke=\"#cf222e\"/></svg>".into(),
            "zombie (excess)",
        ),
        (
            "<svg width=\"16\" height=\"12\"><rect width=\"16\" height=\"12\" fill=\"url(#hatch-dup)\" stroke=\"#8250df\"/></svg>".into(),
            "re-delivered",
        ),
        (
            "<svg width=\"20\" height=\"12\"><path d=\"M3 2v7M8 2v7M13 2v7\" stroke=\"#57606a\"/><path d=\"M18 0v12\" stroke=\"#cf222e\" stroke-width=\"2\"/></svg>".into(),
            "commits / failed",
        ),
        (
            "<svg width=\"22\" height=\"12\"><rect width=\"22\" height=\"12\" fill=\"#d4a72c\" opacity=\".35\"/><line x1=\"1\" y1=\"0\" x2=\"1\" y2=\"12\" stroke=\"#bf8700\" stroke-width=\"2\"/></svg>".into(),
            "fault window",
        ),
        (
            "<svg width=\"12\" height=\"10\"><path d=\"M1 1h10l-5 8z\" fill=\"#0969da\"/></svg>".into(),
            "rebalance round",
        ),
        (
            "<svg width=\"26\" height=\"10\"><rect y=\"2\" width=\"26\" height=\"8\" fill=\"#4e79a7\"/><path d=\"M0 10V6h6V3h6V7h6V5h8v5z\" fill=\"#fff\" opacity=\".5\"/></svg>".into(),
            "records consumed",
        ),
        (
            "<svg width=\"16\" height=\"16\"><path d=\"M8 1l7 7l-7 7l-7 -7z\" fill=\"#cf222e\"/></svg>".into(),
            "violation (amber: waived)",
        ),
    ];
    for (svg, label) in items {
        let _ = write!(s, "<span>{svg}{label}</span>");
    }
    s.push_str("</div>\n");
}

fn checks_table(s: &mut String, v: &Verdict) {
    s.push_str(
        "<section>\n<h2>Checks</h2>\n<table>\n<tr><th>check</th><th>result</th><th>detail</th></tr>\n",
    );
    for c in &v.checks {
        let (cls, word) = match (&c.known_deviation, c.passed) {
            (_, true) => ("pass", "pass"),
            (Some(_), false) => ("waived", "waived"),
            (None, false) => ("fail", "FAIL"),
        };
        let mut detail = esc(&c.detail);
        if let Some(d) = &c.known_deviation {
            let _ = write!(
                detail,
                "<br><span class=\"muted\">waived: {}</span>",
                esc(d)
            );
        }
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td><span class=\"pill {cls}\">{word}</span></td><td class=\"detail\">{detail}</td></tr>",
            esc(c.name.as_str())
        );
    }
    s.push_str("</table>\n</section>\n");
}

fn faults_table(s: &mut String, v: &Verdict, tl: &Timeline) {
    let m = &v.metrics;
    s.push_str("<section>\n<h2>Faults</h2>\n");
    if m.faults.is_empty() {
        s.push_str("<p class=\"muted\">No fault was injected.</p>\n");
    } else {
        s.push_str(
            "<div class=\"scroll\"><table>\n<tr><th>fault</th><th>target</th><th class=\"num\">at</th><th class=\"num\">healed</th>\
             <th class=\"num\">detection</th><th class=\"num\">recovery</th><th class=\"num\">moved</th>\
             <th class=\"num\">rebalances</th><th class=\"num\">zombie</th><th class=\"num\">lag</th><th>stop-the-world</th></tr>\n",
        );
        for f in &m.faults {
            let _ = writeln!(
                s,
                "<tr><td class=\"nw\"><b>{}</b> {}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&f.id),
                esc(f.kind.as_str()),
                esc(f.target.as_deref().unwrap_or("–")),
                if f.start > 0 { tl.rel(f.start) } else { "–".into() },
                f.healed.map_or("–".into(), |h| tl.rel(h)),
                opt_dur(f.detection_ms),
                opt_dur(f.recovery_ms),
                f.partitions_moved,
                f.rebalances,
                dur(f.zombie_ms),
                f.lag_at_fault,
                esc(&f.stop_the_world_members.join(", "))
            );
        }
        s.push_str("</table></div>\n");
    }
    if !m.final_assignment.is_empty() {
        let fin: Vec<String> = m
            .final_assignment
            .iter()
            .map(|(k, p)| {
                let ps: Vec<String> = p.iter().map(ToString::to_string).collect();
                format!("<b>{}</b> [{}]", esc(k), ps.join(", "))
            })
            .collect();
        let _ = writeln!(
            s,
            "<p class=\"meta\">final assignment: {}</p>",
            fin.join(" · ")
        );
    }
    s.push_str("</section>\n");
}

fn violations_list(s: &mut String, v: &Verdict, tl: &Timeline, listed: &[(usize, &Violation)]) {
    let total = v.violations().count();
    let _ = writeln!(
        s,
        "<section id=\"violations\">\n<h2>Violations ({total})</h2>"
    );
    if total == 0 {
        s.push_str("<p class=\"muted\">None.</p>\n</section>\n");
        return;
    }
    s.push_str("<ol class=\"violations\">\n");
    for (n, x) in listed {
        let state = match &x.waived_by {
            Some(w) => format!("<span class=\"tag waived\">waived by {}</span>", esc(w)),
            None => "<span class=\"tag unwaived\">unwaived</span>".to_owned(),
        };
        let mut place = Vec::new();
        if let Some(tp) = &x.tp {
            place.push(esc(&tp.to_string()));
        }
        if let Some(m) = &x.member {
            place.push(esc(m));
        }
        if let Some(f) = &x.fault {
            place.push(format!("under {} {}", esc(&f.id), esc(f.kind.as_str())));
        }
        if let Some(at) = x.at {
            place.push(format!("at {} ({})", tl.rel(at), esc(&utc(at))));
        }
        place.push(format!("size {}", x.size));
        let link = if x.at.is_some() {
            format!(" <a href=\"#v-{n}\">show on timeline ↑</a>")
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "<li id=\"vl-{n}\"><span class=\"tag\">{}</span><span class=\"tag\">{}</span>{state} {}{link}<br><span class=\"muted\">{}</span></li>",
            esc(x.rule.as_str()),
            esc(&x.kind.as_str()),
            esc(&x.message),
            place.join(" · ")
        );
    }
    s.push_str("</ol>\n");
    if total > listed.len() {
        let _ = writeln!(
            s,
            "<p class=\"muted\">… and {} more (verdict.json has them all).</p>",
            total - listed.len()
        );
    }
    s.push_str("</section>\n");
}

fn extras(s: &mut String, v: &Verdict) {
    if !v.notes.is_empty() {
        s.push_str("<section>\n<h2>Notes</h2>\n<ul class=\"plain\">\n");
        for n in &v.notes {
            let _ = writeln!(s, "<li>{}</li>", esc(n));
        }
        s.push_str("</ul>\n</section>\n");
    }
    if !v.stale_deviations.is_empty() {
        s.push_str(
            "<section>\n<h2>Stale deviations</h2>\n<p class=\"muted\">These applied to the run but waived nothing:</p>\n<ul class=\"plain\">\n",
        );
        for d in &v.stale_deviations {
            let _ = writeln!(s, "<li><code>{}</code></li>", esc(d));
        }
        s.push_str("</ul>\n</section>\n");
    }
}

/// One cell of a matrix's index page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexCell {
    pub fault: String,
    pub protocol: String,
    pub outcome: Outcome,
    /// The cell's report.html, relative to index.html.
    pub report: String,
    /// Why it came out as it did (a failed check, a deviation, why it was skipped).
    pub reason: String,
}

/// A matrix's index.html: rows are faults, columns protocols (both in order of first
/// appearance), each cell coloured by outcome and linking its report; `gate_diff` (text
/// or markdown, shown as is) adds a section below.
pub fn index(cells: &[IndexCell], gate_diff: Option<&str>) -> String {
    let mut faults: Vec<&str> = Vec::new();
    let mut protocols: Vec<&str> = Vec::new();
    for c in cells {
        if !faults.contains(&c.fault.as_str()) {
            faults.push(&c.fault);
        }
        if !protocols.contains(&c.protocol.as_str()) {
            protocols.push(&c.protocol);
        }
    }
    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    for c in cells {
        *counts.entry(c.outcome).or_default() += 1;
    }
    let worst = counts.keys().copied().max().unwrap_or(Outcome::Skipped);
    let overall = if counts.contains_key(&Outcome::Fail) {
        Outcome::Fail
    } else if counts.keys().all(|&o| o == Outcome::Pass) && !cells.is_empty() {
        Outcome::Pass
    } else if counts.contains_key(&Outcome::KnownDeviation)
        || counts.contains_key(&Outcome::ClientFinding)
    {
        Outcome::KnownDeviation
    } else {
        worst
    };
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>conformance matrix</title>\n<style>{CSS}{INDEX_CSS}</style>\n</head>\n<body>\n<main>\n\
         <header class=\"run {}\"><div class=\"badge\">{}</div><div><h1>Conformance matrix <span>/ {} cell(s)</span></h1>\
         <div class=\"meta\">",
        outcome_class(overall),
        esc(overall.label()),
        cells.len()
    );
    let summary: Vec<String> = counts
        .iter()
        .map(|(o, n)| format!("<b>{n}</b> {}", esc(o.as_str())))
        .collect();
    s.push_str(&summary.join(" · "));
    s.push_str("</div></div></header>\n<section>\n<table class=\"matrix\">\n<tr><th>fault \\ protocol</th>");
    for p in &protocols {
        let _ = write!(s, "<th>{}</th>", esc(p));
    }
    s.push_str("</tr>\n");
    for f in &faults {
        let _ = write!(s, "<tr><th>{}</th>", esc(f));
        for p in &protocols {
            match cells.iter().find(|c| c.fault == *f && c.protocol == *p) {
                Some(c) => {
                    let _ = write!(
                        s,
                        "<td class=\"cell {}\" title=\"{}\"><a href=\"{}\">{}{}</a></td>",
                        outcome_class(c.outcome),
                        esc(&c.reason),
                        esc(&c.report),
                        esc(c.outcome.label()),
                        if c.reason.is_empty() {
                            String::new()
                        } else {
                            format!("<span class=\"reason\">{}</span>", esc(&c.reason))
                        }
                    );
                }
                None => s.push_str("<td class=\"cell none\">–</td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n</section>\n");
    if let Some(diff) = gate_diff {
        let _ = writeln!(
            s,
            "<section id=\"gate-diff\">\n<h2>Gate diff</h2>\n<pre>{}</pre>\n</section>",
            esc(diff)
        );
    }
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

const INDEX_CSS: &str = r#"
table.matrix td.cell{background:var(--c);color:#fff;text-align:center;border:2px solid #fff;min-width:110px;padding:0;vertical-align:middle}
table.matrix td.cell a{display:block;padding:7px 8px;color:#fff;font-weight:700;text-decoration:none;font-size:12.5px}
table.matrix td.cell a:hover{box-shadow:inset 0 0 0 3px rgba(0,0,0,.25)}
table.matrix td.cell .reason{display:block;font-weight:400;font-size:11px;opacity:.9;max-width:220px;margin:2px auto 0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.matrix td.none{background:#eef1f4;color:var(--muted);text-align:center}
table.matrix th{white-space:nowrap;vertical-align:middle}
pre{white-space:pre-wrap;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:10px;margin:0}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{self, Violation};
    use crate::history::Record;

    /// A small run: three members (one named like a script), six partitions, a crash,
    /// a failed commit and re-deliveries.
    fn history() -> Vec<Record> {
        let evil = "<script>alert(1)</script>";
        let t = 1_700_000_000_000u64;
        let mut lines = vec![format!(
            r#"{{"seq":0,"ts":{t},"name":"run_started","scenario":"crash","protocol":"eager-range","broker":"mock","seed":7,"topic":"events","partitions":6,"group":"g","consumer":{{"session_timeout_ms":6000,"heartbeat_interval_ms":1000,"max_poll_interval_ms":10000}},"budgets":{{}},"replay":"harness run --seed 7 --scenario crash"}}"#
        )];
        let members = ["C1", "C2", evil];
        let mut seq = 1;
        let mut push = |ts: u64, member: Option<&str>, body: String| {
            let m = member.map_or(String::new(), |m| {
                format!(r#""member":{},"#, serde_json::to_string(m).unwrap())
            });
            lines.push(format!(r#"{{"seq":{seq},"ts":{ts},{m}{body}}}"#));
            seq += 1;
        };
        for m in members {
            push(t + 1, Some(m), r#""name":"member_started","pid":1"#.into());
            push(
                t + 2,
                Some(m),
                r#""name":"startup_complete","client":{"name":"vc","version":"1"}"#.into(),
            );
        }
        let parts = |ps: &[i32]| {
            ps.iter()
                .map(|p| format!(r#"{{"topic":"events","partition":{p}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        for (i, m) in members.iter().enumerate() {
            let ps = [2 * i as i32, 2 * i as i32 + 1];
            push(
                t + 1000,
                Some(m),
                format!(
                    r#""name":"partitions_assigned","partitions":[{}]"#,
                    parts(&ps)
                ),
            );
        }
        for k in 0..20u64 {
            push(
                t + 1100 + k * 100,
                None,
                format!(
                    r#""name":"records_acked","partitions":[{}]"#,
                    (0..6)
                        .map(|p| format!(
                            r#"{{"topic":"events","partition":{p},"count":1,"minOffset":{k},"maxOffset":{k}}}"#
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            );
            for (i, m) in members.iter().enumerate() {
                if i == 1 && k >= 10 {
                    continue;
                }
                let ps = [2 * i as i32, 2 * i as i32 + 1];
                let ranges = ps
                    .iter()
                    .map(|p| format!(r#"{{"topic":"events","partition":{p},"count":1,"minOffset":{k},"maxOffset":{k}}}"#))
                    .collect::<Vec<_>>()
                    .join(",");
                push(
                    t + 1150 + k * 100,
                    Some(m),
                    format!(r#""name":"records_consumed","count":2,"partitions":[{ranges}]"#),
                );
                if k % 3 == 0 {
                    let offs = ps
                        .iter()
                        .map(|p| {
                            format!(r#"{{"topic":"events","partition":{p},"offset":{}}}"#, k + 1)
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    let ok = !(i == 0 && k == 6);
                    push(
                        t + 1160 + k * 100,
                        Some(m),
                        format!(r#""name":"offsets_committed","offsets":[{offs}],"success":{ok}"#),
                    );
                }
            }
            if k == 9 {
                push(
                    t + 2100,
                    None,
                    r#""name":"fault_injected","id":"f1","kind":"crash","target":"C2""#.into(),
                );
                push(
                    t + 2101,
                    Some("C2"),
                    r#""name":"member_exited","signal":9,"killed":true,"requested":true"#.into(),
                );
            }
        }
        push(
            t + 3300,
            Some("C1"),
            format!(
                r#""name":"partitions_assigned","partitions":[{}]"#,
                parts(&[2])
            ),
        );
        push(
            t + 3350,
            Some("C1"),
            r#""name":"records_consumed","count":8,"partitions":[{"topic":"events","partition":2,"count":8,"minOffset":7,"maxOffset":14}]"#.into(),
        );
        push(t + 3400, None, r#""name":"production_stopped""#.into());
        for m in ["C1", evil] {
            push(t + 3500, Some(m), r#""name":"shutdown_complete""#.into());
            push(
                t + 3501,
                Some(m),
                r#""name":"member_exited","code":0,"killed":false,"requested":true"#.into(),
            );
        }
        push(
            t + 3600,
            None,
            r#""name":"run_finished","outcome":"completed""#.into(),
        );
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn rendered() -> (Verdict, Model, String) {
        let records = history();
        let model = Model::build(&records);
        let mut verdict = check::check(&records);
        // Two violations placed on the timeline, one that has no time.
        let tp = TopicPartition {
            topic: "events".into(),
            partition: 2,
        };
        let c = &mut verdict.checks[0];
        c.violations.push(
            Violation::new(
                ViolationKind::Unexplained,
                "<i class=x>re-delivered</i> 7 records",
            )
            .tp(&tp)
            .member("C1")
            .at(model.horizon - 300),
        );
        c.violations.push(
            Violation::new(ViolationKind::Skip, "skipped & jumped")
                .tp(&tp)
                .at(model.horizon - 500),
        );
        c.violations.push(Violation::new(
            ViolationKind::NotDrained,
            "no time for this one",
        ));
        let html = page(&verdict, &model);
        (verdict, model, html)
    }

    #[test]
    fn one_lane_per_partition() {
        let (_, model, html) = rendered();
        assert_eq!(model.partitions.len(), 6);
        assert_eq!(html.matches("class=\"lane\"").count(), 6);
        for p in 0..6 {
            assert!(html.contains(&format!("data-partition=\"events-{p}\"")));
        }
    }

    #[test]
    fn escapes_member_names_and_messages() {
        let (_, _, html) = rendered();
        assert!(
            !html.contains("<script"),
            "a member name got through unescaped"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<i class=x>"));
        assert!(html.contains("&lt;i class=x&gt;re-delivered&lt;/i&gt; 7 records"));
        assert!(html.contains("skipped &amp; jumped"));
    }

    #[test]
    fn is_self_contained() {
        let (_, _, html) = rendered();
        assert!(!html.contains("http://"));
        assert!(!html.contains("https://"));
        assert!(!html.contains("src="));
        assert!(!html.contains("@import"));
    }

    #[test]
    fn links_every_violation() {
        let (verdict, _, html) = rendered();
        let all: Vec<_> = verdict.violations().collect();
        assert!(all.len() >= 3);
        for (i, x) in all.iter().enumerate() {
            let n = i + 1;
            assert!(
                html.contains(&format!("id=\"vl-{n}\"")),
                "violation {n} not listed"
            );
            if x.at.is_some() {
                assert!(html.contains(&format!("id=\"v-{n}\"")), "no marker for {n}");
                assert!(html.contains(&format!("href=\"#v-{n}\"")), "no link to {n}");
                assert!(
                    html.contains(&format!("href=\"#vl-{n}\"")),
                    "no link back from {n}"
                );
            }
        }
    }

    #[test]
    fn shows_the_story() {
        let (verdict, model, html) = rendered();
        assert!(html.contains(verdict.outcome.label()));
        assert!(html.contains("harness run --seed 7 --scenario crash"));
        // The crash's fault window, the killed ownerships and the failed commit.
        assert!(html.contains("f1 crash → C2"));
        assert!(model
            .ownerships
            .iter()
            .any(|o| o.end_reason == EndReason::Killed));
        assert!(html.contains("C2 killed events-2"));
        assert!(html.contains("failed commit(s) of events-0"));
        // C1 re-read offsets 7..9 of events-2 that C2 had already consumed.
        assert!(html.contains("C1 re-delivered 3 record(s) of events-2 (offsets 7..9)"));
        // Every check in the table.
        for c in &verdict.checks {
            assert!(html.contains(&format!("<code>{}</code>", c.name.as_str())));
        }
    }

    #[test]
    fn empty_model_renders() {
        let model = Model::default();
        let verdict = check::check(&[]);
        let html = page(&verdict, &model);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("class=\"lane\"").count(), 0);
    }

    #[test]
    fn stays_small_however_busy_the_run() {
        // 60 s at 20,000 records/s over 6 partitions: 10 ms polls, a commit each.
        let t = 1_700_000_000_000u64;
        let mut lines = vec![format!(
            r#"{{"seq":0,"ts":{t},"name":"run_started","scenario":"busy","protocol":"eager-range","broker":"mock","seed":1,"topic":"events","partitions":6,"group":"g","consumer":{{"session_timeout_ms":6000,"heartbeat_interval_ms":1000,"max_poll_interval_ms":10000}},"budgets":{{}},"replay":"r"}}"#
        )];
        let mut seq = 1;
        lines.push(format!(
            r#"{{"seq":{seq},"ts":{},"member":"C1","name":"partitions_assigned","partitions":[{}]}}"#,
            t + 1,
            (0..6)
                .map(|p| format!(r#"{{"topic":"events","partition":{p}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        ));
        for k in 0..6000u64 {
            seq += 1;
            let ts = t + 10 + k * 10;
            let ranges = (0..6)
                .map(|p| {
                    format!(
                        r#"{{"topic":"events","partition":{p},"count":33,"minOffset":{},"maxOffset":{}}}"#,
                        k * 33,
                        k * 33 + 32
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            lines.push(format!(
                r#"{{"seq":{seq},"ts":{ts},"member":"C1","name":"records_consumed","count":200,"partitions":[{ranges}]}}"#
            ));
            seq += 1;
            let offs = (0..6)
                .map(|p| {
                    format!(
                        r#"{{"topic":"events","partition":{p},"offset":{}}}"#,
                        k * 33 + 33
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            lines.push(format!(
                r#"{{"seq":{seq},"ts":{},"member":"C1","name":"offsets_committed","offsets":[{offs}],"success":{}}}"#,
                ts + 1,
                k % 50 != 0
            ));
        }
        let records: Vec<Record> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let model = Model::build(&records);
        let verdict = check::check(&records);
        let html = page(&verdict, &model);
        assert!(html.len() < 400_000, "page is {} bytes", html.len());
    }

    #[test]
    fn index_links_every_cell_coloured_by_outcome() {
        let cell = |fault: &str, protocol: &str, outcome, reason: &str| IndexCell {
            fault: fault.into(),
            protocol: protocol.into(),
            outcome,
            report: format!("{fault}/{protocol}/report.html"),
            reason: reason.into(),
        };
        let cells = vec![
            cell("crash", "eager-range", Outcome::Pass, ""),
            cell("crash", "consumer", Outcome::Fail, "no_loss: 3 <lost>"),
            cell(
                "pause-long",
                "eager-range",
                Outcome::KnownDeviation,
                "dev-1",
            ),
            cell(
                "partition-increase",
                "consumer",
                Outcome::Skipped,
                "no CreatePartitions",
            ),
        ];
        let html = index(&cells, Some("+ crash/consumer: pass -> fail <!>"));
        for c in &cells {
            assert!(html.contains(&format!("href=\"{}\"", c.report)));
        }
        assert!(html.contains("class=\"cell o-pass\""));
        assert!(html.contains("class=\"cell o-fail\""));
        assert!(html.contains("class=\"cell o-warn\""));
        assert!(html.contains("class=\"cell o-skip\""));
        // The missing cells are shown as such: 3 rows x 2 columns, 4 present.
        assert_eq!(html.matches("class=\"cell none\"").count(), 2);
        assert!(html.contains("no_loss: 3 &lt;lost&gt;"));
        assert!(html.contains("id=\"gate-diff\""));
        assert!(html.contains("pass -&gt; fail &lt;!&gt;"));
        // Rows in order of first appearance.
        let crash = html.find("<th>crash</th>").unwrap();
        let pause = html.find("<th>pause-long</th>").unwrap();
        assert!(crash < pause);
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(html.contains("FAILED"), "overall outcome is the worst");
        assert!(!index(&cells, None).contains("gate-diff"));
    }
}
