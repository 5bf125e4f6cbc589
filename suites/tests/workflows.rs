//! The GitHub workflows (.github/workflows/*.yml). GitHub is not reachable from here, so
//! they are checked by construction:
//!
//! - every file parses as YAML and is well formed: jobs with steps and time limits, each
//!   step a `run` or a pinned `uses`, every `${{ }}` naming a context, input, matrix
//!   value, step or variable that exists;
//! - the triggers and the release gate's inputs are the ones callers rely on;
//! - every command a `run:` step names exists: `harness` subcommands and their flags
//!   (asked of `harness SUB --help`), repository paths, nextest profiles and test
//!   binaries, and the scripts they run (.ci/run) are read the same way;
//! - every uploaded path is one that nextest, the suites or the harness writes;
//! - the step scripts run here as they would on a runner: the release gate's matrix,
//!   baseline and gate steps on a one-cell matrix with the real harness, and the exit
//!   handling of the matrix, gate and chaos steps against a stand-in harness.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::{Mapping, Value};
use suites::{bin, report_dir, workspace};

/// The workflows this repository must have, and the triggers each one has.
const EXPECTED: &[(&str, &[&str])] = &[
    ("ci.yml", &["push", "pull_request"]),
    ("nightly.yml", &["schedule", "workflow_dispatch"]),
    ("release-gate.yml", &["workflow_call", "workflow_dispatch"]),
];

/// Contexts an expression may start from, and the functions it may call.
const CONTEXTS: &[&str] = &[
    "github", "env", "inputs", "matrix", "steps", "job", "runner", "secrets", "vars", "strategy",
    "needs",
];
const FUNCTIONS: &[&str] = &[
    "hashFiles",
    "always",
    "success",
    "failure",
    "cancelled",
    "format",
    "contains",
    "startsWith",
    "endsWith",
    "join",
    "toJSON",
    "fromJSON",
];
/// Properties of the `job` context.
const JOB_PROPERTIES: &[&str] = &[
    "workflow_repository",
    "workflow_sha",
    "workflow_ref",
    "workflow_file_path",
    "status",
    "check_run_id",
    "container",
    "services",
];

// ---------------------------------------------------------------------------------------
// Reading workflows

struct Workflow {
    file: String,
    doc: Value,
}

impl Workflow {
    fn load(file: &str) -> Workflow {
        let path = workspace().join(".github/workflows").join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let doc = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
        Workflow {
            file: file.to_owned(),
            doc,
        }
    }

    /// Every *.yml and *.yaml under .github/workflows.
    fn all() -> Vec<Workflow> {
        let dir = workspace().join(".github/workflows");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").file_name())
            .filter_map(|n| n.to_str().map(str::to_owned))
            .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
            .collect();
        files.sort();
        files.iter().map(|f| Workflow::load(f)).collect()
    }

    /// The names of the events under `on:` (a string, a list or a mapping).
    fn triggers(&self) -> BTreeSet<String> {
        match self.doc.get("on") {
            Some(Value::String(s)) => [s.clone()].into(),
            Some(Value::Sequence(seq)) => seq
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::Mapping(m)) => m
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    /// The inputs a trigger declares (`workflow_call`, `workflow_dispatch`).
    fn inputs(&self, trigger: &str) -> BTreeMap<String, Mapping> {
        let mut out = BTreeMap::new();
        let inputs = self
            .doc
            .get("on")
            .and_then(|on| on.get(trigger))
            .and_then(|t| t.get("inputs"))
            .and_then(Value::as_mapping);
        for (name, spec) in inputs.into_iter().flatten() {
            out.insert(
                name.as_str().expect("an input name").to_owned(),
                spec.as_mapping().cloned().unwrap_or_default(),
            );
        }
        out
    }

    fn jobs(&self) -> Vec<(String, &Mapping)> {
        self.doc
            .get("jobs")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().expect("a job id").to_owned(),
                            v.as_mapping().unwrap_or_else(|| {
                                panic!("{}: job {k:?} is not a mapping", self.file)
                            }),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn job(&self, id: &str) -> &Mapping {
        self.jobs()
            .into_iter()
            .find(|(j, _)| j == id)
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("{} has no job {id}", self.file))
    }

    /// The steps of one job, in order.
    fn steps(job: &Mapping) -> Vec<&Mapping> {
        job.get("steps")
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter_map(Value::as_mapping).collect())
            .unwrap_or_default()
    }

    /// The `run:` script of the step named `name` in any job.
    fn script(&self, name: &str) -> String {
        self.jobs()
            .iter()
            .flat_map(|(_, job)| Workflow::steps(job))
            .find(|s| str_of(s, "name") == Some(name))
            .and_then(|s| str_of(s, "run"))
            .unwrap_or_else(|| panic!("{} has no run step named {name:?}", self.file))
            .to_owned()
    }
}

fn str_of<'a>(m: &'a Mapping, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// How a step is called in messages: its name, else what it uses or runs.
fn step_label(step: &Mapping) -> String {
    str_of(step, "name")
        .or_else(|| str_of(step, "uses"))
        .or_else(|| str_of(step, "run").and_then(|r| r.lines().next()))
        .unwrap_or("?")
        .to_owned()
}

fn fail_with(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------------
// (a) Every workflow parses and is well formed

#[test]
fn every_workflow_parses_and_is_well_formed() {
    let workflows = Workflow::all();
    let files: BTreeSet<&str> = workflows.iter().map(|w| w.file.as_str()).collect();
    for (file, _) in EXPECTED {
        assert!(files.contains(file), ".github/workflows/{file} is missing");
    }
    let mut problems = Vec::new();
    for wf in &workflows {
        let f = &wf.file;
        let top = wf.doc.as_mapping().expect("a workflow is a mapping");
        // YAML 1.1 reads a bare `on` as the boolean true; GitHub reads the key `on`.
        if !top.contains_key("on") {
            problems.push(format!("{f}: no `on:` key (or it was read as a boolean)"));
        }
        if str_of(top, "name").is_none() {
            problems.push(format!("{f}: no name"));
        }
        let jobs = wf.jobs();
        if jobs.is_empty() {
            problems.push(format!("{f}: no jobs"));
        }
        for (id, job) in &jobs {
            if !job.contains_key("runs-on") {
                problems.push(format!("{f}: job {id} has no runs-on"));
            }
            // The default is six hours: a hung broker must not hold a runner that long.
            if job.get("timeout-minutes").and_then(Value::as_u64).is_none() {
                problems.push(format!("{f}: job {id} has no timeout-minutes"));
            }
            let steps = Workflow::steps(job);
            if steps.is_empty() {
                problems.push(format!("{f}: job {id} has no steps"));
            }
            let mut ids = BTreeSet::new();
            for step in steps {
                let label = step_label(step);
                match (str_of(step, "run"), str_of(step, "uses")) {
                    (Some(_), None) => {}
                    (None, Some(uses)) => {
                        let pinned = uses.starts_with("./")
                            || uses
                                .split_once('@')
                                .is_some_and(|(action, r)| action.contains('/') && !r.is_empty());
                        if !pinned {
                            problems.push(format!(
                                "{f}: job {id}: `uses: {uses}` is not owner/repo@ref"
                            ));
                        }
                    }
                    _ => problems.push(format!(
                        "{f}: job {id}: step {label:?} needs exactly one of run and uses"
                    )),
                }
                if let Some(sid) = str_of(step, "id") {
                    if !ids.insert(sid.to_owned()) {
                        problems.push(format!("{f}: job {id}: two steps with id {sid}"));
                    }
                }
            }
        }
        check_expressions(wf, &mut problems);
    }
    fail_with(problems);
}

/// Every `${{ }}` (and every `if:`, which is an expression without them) names what
/// exists: a known context, a declared input, a matrix value of its job, a step id of its
/// job, a variable set in `env:`.
fn check_expressions(wf: &Workflow, problems: &mut Vec<String>) {
    let mut declared_inputs = BTreeSet::new();
    for trigger in ["workflow_call", "workflow_dispatch"] {
        declared_inputs.extend(wf.inputs(trigger).into_keys());
    }
    let env_names = |m: Option<&Value>| -> BTreeSet<String> {
        m.and_then(Value::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let workflow_env = env_names(wf.doc.get("env"));
    let top = wf.doc.as_mapping().expect("a workflow is a mapping");
    // Outside the jobs: only workflow-wide contexts.
    for (key, value) in top {
        if key.as_str() == Some("jobs") {
            continue;
        }
        let scope = Scope {
            file: &wf.file,
            job: None,
            inputs: &declared_inputs,
            env: &workflow_env,
            matrix: BTreeSet::new(),
            step_ids: BTreeSet::new(),
        };
        walk(value, false, &scope, problems);
    }
    for (id, job) in wf.jobs() {
        let mut env = workflow_env.clone();
        env.extend(env_names(job.get("env")));
        for step in Workflow::steps(job) {
            env.extend(env_names(step.get("env")));
        }
        let matrix = job
            .get("strategy")
            .and_then(|s| s.get("matrix"))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let step_ids = Workflow::steps(job)
            .iter()
            .filter_map(|s| str_of(s, "id").map(str::to_owned))
            .collect();
        let scope = Scope {
            file: &wf.file,
            job: Some(&id),
            inputs: &declared_inputs,
            env: &env,
            matrix,
            step_ids,
        };
        walk(&Value::Mapping(job.clone()), false, &scope, problems);
    }
}

struct Scope<'a> {
    file: &'a str,
    job: Option<&'a str>,
    inputs: &'a BTreeSet<String>,
    env: &'a BTreeSet<String>,
    matrix: BTreeSet<String>,
    step_ids: BTreeSet<String>,
}

fn walk(v: &Value, is_if: bool, scope: &Scope, problems: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let exprs = if is_if && !s.contains("${{") {
                vec![s.clone()]
            } else {
                expressions(s).unwrap_or_else(|e| {
                    problems.push(format!("{}: {e} in {s:?}", scope.file));
                    Vec::new()
                })
            };
            for e in exprs {
                check_expression(&e, scope, problems);
            }
        }
        Value::Sequence(seq) => seq.iter().for_each(|x| walk(x, false, scope, problems)),
        Value::Mapping(m) => {
            for (k, x) in m {
                walk(x, k.as_str() == Some("if"), scope, problems);
            }
        }
        _ => {}
    }
}

/// The insides of every `${{ ... }}` in `s`.
fn expressions(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let end = after.find("}}").ok_or("an unclosed ${{")?;
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// The dotted names an expression refers to, and whether each is called as a function.
fn references(expr: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // A string literal; '' is an escaped quote.
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
            {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let call = chars.get(j) == Some(&'(');
            if !matches!(name.as_str(), "true" | "false" | "null") {
                out.push((name, call));
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn check_expression(expr: &str, scope: &Scope, problems: &mut Vec<String>) {
    let at = match scope.job {
        Some(j) => format!("{}: job {j}", scope.file),
        None => scope.file.to_owned(),
    };
    for (name, call) in references(expr) {
        if call {
            if !FUNCTIONS.contains(&name.as_str()) {
                problems.push(format!("{at}: unknown function {name}() in `{expr}`"));
            }
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        let second = parts.get(1).copied().unwrap_or("");
        let problem = match parts[0] {
            root if !CONTEXTS.contains(&root) => Some(format!("unknown context {root}")),
            "inputs" if !scope.inputs.contains(second) => {
                Some(format!("input {second} is not declared"))
            }
            "matrix" if !scope.matrix.contains(second) => {
                Some(format!("matrix.{second} is not in the job's strategy"))
            }
            "steps" if !scope.step_ids.contains(second) => {
                Some(format!("no step with id {second} in the job"))
            }
            "env" if !scope.env.contains(second) => Some(format!("env.{second} is never set")),
            "job" if !JOB_PROPERTIES.contains(&second) => {
                Some(format!("the job context has no {second}"))
            }
            _ => None,
        };
        if let Some(p) = problem {
            problems.push(format!("{at}: {p} (`{expr}`)"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// (b) Triggers, the nightly jobs and the release gate's inputs

/// An input's `required`, `default` and `type`.
type InputShape = (Option<bool>, Option<String>, Option<String>);

#[test]
fn triggers_jobs_and_inputs_are_the_expected_ones() {
    for (file, triggers) in EXPECTED {
        let wf = Workflow::load(file);
        let want: BTreeSet<String> = triggers.iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(wf.triggers(), want, "{file}: triggers");
    }

    // nightly: a valid cron, the four jobs, shards that cover 1..=N of `--partition hash:K/N`.
    let nightly = Workflow::load("nightly.yml");
    let schedule = nightly.doc["on"]["schedule"]
        .as_sequence()
        .expect("nightly: on.schedule is a list");
    assert!(!schedule.is_empty(), "nightly: an empty schedule");
    for entry in schedule {
        let cron = entry["cron"]
            .as_str()
            .expect("nightly: a schedule entry has a cron");
        let fields: Vec<&str> = cron.split_whitespace().collect();
        assert_eq!(fields.len(), 5, "nightly: cron {cron:?} needs 5 fields");
        let (minute, hour) = (fields[0].parse::<u32>(), fields[1].parse::<u32>());
        assert!(
            minute.is_ok_and(|m| m < 60) && hour.is_ok_and(|h| h < 24),
            "nightly: cron {cron:?} should run once a day at a fixed minute and hour"
        );
    }
    let jobs: BTreeSet<String> = nightly.jobs().into_iter().map(|(j, _)| j).collect();
    for job in ["matrix", "chaos", "real-brokers", "full-matrix"] {
        assert!(jobs.contains(job), "nightly has no job {job}");
    }
    let matrix_job = nightly.job("matrix");
    let strategy = matrix_job
        .get("strategy")
        .expect("nightly matrix: a strategy");
    assert_eq!(
        strategy["fail-fast"].as_bool(),
        Some(false),
        "nightly matrix: one failing shard must not cancel the others"
    );
    let shards: Vec<u64> = strategy["matrix"]["shard"]
        .as_sequence()
        .expect("nightly matrix: strategy.matrix.shard")
        .iter()
        .map(|v| v.as_u64().expect("a shard number"))
        .collect();
    let scripts: Vec<&str> = Workflow::steps(matrix_job)
        .iter()
        .filter_map(|s| str_of(s, "run"))
        .collect();
    let nextest = scripts
        .iter()
        .find(|s| s.contains("cargo nextest run"))
        .expect("nightly matrix: a cargo nextest run step");
    // `--partition hash:${{ matrix.shard }}/N`
    let prefix = "--partition hash:${{ matrix.shard }}/";
    let after = nextest
        .split_once(prefix)
        .map(|(_, a)| a)
        .unwrap_or_else(|| panic!("nightly matrix: no `{prefix}N` in {nextest:?}"));
    let total: u64 = after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("nightly matrix: no shard count after `{prefix}`"));
    let partition = format!("hash:K/{total}");
    assert_eq!(
        shards,
        (1..=total).collect::<Vec<_>>(),
        "nightly matrix: the shards must be 1..={total}, as --partition {partition} says"
    );
    assert!(
        nextest.contains("--profile nightly") && nextest.contains("binary(matrix)"),
        "nightly matrix: runs the matrix binary under the nightly profile: {nextest}"
    );
    let name = str_of(matrix_job, "name").unwrap_or_default();
    assert!(
        name.contains(&format!("/{total}")),
        "nightly matrix: the job name {name:?} should show the shard count {total}"
    );

    // release-gate: the same inputs on both triggers, with the defaults callers rely on.
    let gate = Workflow::load("release-gate.yml");
    let call = gate.inputs("workflow_call");
    let dispatch = gate.inputs("workflow_dispatch");
    let shape = |inputs: &BTreeMap<String, Mapping>| -> BTreeMap<String, InputShape> {
        inputs
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    (
                        m.get("required").and_then(Value::as_bool),
                        m.get("default").and_then(Value::as_str).map(str::to_owned),
                        m.get("type").and_then(Value::as_str).map(str::to_owned),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(
        shape(&call),
        shape(&dispatch),
        "release-gate: workflow_call and workflow_dispatch declare different inputs"
    );
    let expect = |name: &str, required: bool, default: Option<&str>| {
        let spec = call
            .get(name)
            .unwrap_or_else(|| panic!("release-gate: no input {name}"));
        assert_eq!(
            spec.get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            required,
            "release-gate: input {name} required"
        );
        assert_eq!(
            spec.get("default").and_then(Value::as_str),
            default,
            "release-gate: input {name} default"
        );
        assert_eq!(
            str_of(spec, "type"),
            Some("string"),
            "release-gate: input {name} type"
        );
    };
    expect("driver", true, None);
    expect("install", false, Some(""));
    expect("baseline", true, None);
    expect("protocols", false, Some("all"));
    expect("broker", false, Some("mock"));
    expect("harness_ref", false, Some(""));
    expect("harness_repository", false, Some(""));

    // Called from elsewhere, the checkout must name the harness, not the caller.
    let job = gate.job("gate");
    let checkout = Workflow::steps(job)
        .into_iter()
        .find(|s| str_of(s, "uses").is_some_and(|u| u.starts_with("actions/checkout@")))
        .expect("release-gate: a checkout");
    let with = checkout
        .get("with")
        .expect("release-gate: the checkout's with");
    let repository = with["repository"].as_str().unwrap_or_default();
    let git_ref = with["ref"].as_str().unwrap_or_default();
    assert!(
        repository.contains("inputs.harness_repository")
            && repository.contains("job.workflow_repository"),
        "release-gate: the first checkout's repository should be the harness: {repository:?}"
    );
    assert!(
        git_ref.contains("inputs.harness_ref") && git_ref.contains("job.workflow_sha"),
        "release-gate: the first checkout's ref should be harness_ref: {git_ref:?}"
    );
    let permissions = gate.doc["permissions"]["actions"].as_str();
    assert_eq!(
        permissions,
        Some("read"),
        "release-gate: finding a baseline artifact needs actions: read"
    );
}

// ---------------------------------------------------------------------------------------
// Reading shell scripts

/// Lines with backslash continuations joined.
fn logical_lines(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The words of one simple command, quotes removed, up to a control operator or a
/// redirection (`2>` drops its `2`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                has_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                has_word = true;
                cur.extend(chars.next());
            }
            '|' | '&' | ';' | '>' | '<' | '#' if !(c == '#' && has_word) => {
                if c == '>' && cur.chars().all(|d| d.is_ascii_digit()) {
                    cur.clear();
                    has_word = false;
                }
                break;
            }
            c if c.is_whitespace() => {
                if has_word {
                    out.push(std::mem::take(&mut cur));
                    has_word = false;
                }
            }
            c => {
                has_word = true;
                cur.push(c);
            }
        }
    }
    if has_word {
        out.push(cur);
    }
    out
}

/// One `target/debug/harness` command line in a script.
#[derive(Debug)]
struct HarnessCall {
    /// The subcommand words (`matrix`; `images build tansu`).
    subcommand: Vec<String>,
    /// `--flag` -> its value (None for a switch), including those from `"${args[@]}"`.
    flags: Vec<(String, Option<String>)>,
    line: String,
}

fn harness_calls(script: &str) -> Vec<HarnessCall> {
    const HARNESS: &str = "target/debug/harness";
    let lines = logical_lines(script);
    // Arrays of arguments built up before the call: args=(...) and args+=(...).
    let mut array_words: Vec<String> = Vec::new();
    for line in &lines {
        let t = line.trim();
        for prefix in ["args=(", "args+=("] {
            if let Some(rest) = t.strip_prefix(prefix) {
                let inner = rest.rsplit_once(')').map_or(rest, |(i, _)| i);
                array_words.extend(words(inner));
            }
        }
    }
    let mut calls = Vec::new();
    for line in &lines {
        let mut rest = line.as_str();
        while let Some(at) = rest.find(HARNESS) {
            let before = rest[..at].chars().last();
            let after_text = &rest[at + HARNESS.len()..];
            rest = after_text;
            if before.is_some_and(|c| !(c.is_whitespace() || matches!(c, '(' | '"' | '\'' | '`')))
                || !after_text.starts_with(char::is_whitespace)
            {
                continue;
            }
            let mut ws = words(after_text);
            if ws.iter().any(|w| w == "${args[@]}") {
                ws.retain(|w| w != "${args[@]}");
                ws.extend(array_words.iter().cloned());
            }
            let subcommand: Vec<String> = ws
                .iter()
                .take_while(|w| {
                    !w.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !w.starts_with('-')
                })
                .cloned()
                .collect();
            let mut flags = Vec::new();
            let mut i = subcommand.len();
            while i < ws.len() {
                let w = &ws[i];
                if let Some(flag) = w.strip_prefix("--") {
                    if let Some((name, value)) = flag.split_once('=') {
                        flags.push((format!("--{name}"), Some(value.to_owned())));
                    } else {
                        let value = ws.get(i + 1).filter(|v| !v.starts_with('-')).cloned();
                        if value.is_some() {
                            i += 1;
                        }
                        flags.push((w.clone(), value));
                    }
                }
                i += 1;
            }
            calls.push(HarnessCall {
                subcommand,
                flags,
                line: line.trim().to_owned(),
            });
        }
    }
    calls
}

/// Paths into the repository that a script names.
fn repo_paths(script: &str) -> BTreeSet<String> {
    const ROOTS: &[&str] = &[
        ".ci/",
        ".config/",
        ".github/",
        "fixtures/",
        "docs/",
        "suites/",
        "harness/src/",
        "harness/tests/",
    ];
    let mut out = BTreeSet::new();
    for (i, _) in script.char_indices() {
        let before = script[..i].chars().last();
        if before.is_some_and(|c| !(c.is_whitespace() || matches!(c, '"' | '\'' | '(' | '=' | '`')))
        {
            continue;
        }
        let rest = &script[i..];
        if !ROOTS.iter().any(|r| rest.starts_with(r)) {
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
            .collect();
        out.insert(path.trim_end_matches(['.', '/']).to_owned());
    }
    out
}

/// What `cargo nextest run` lines of a script select: profiles, test binaries, packages.
#[derive(Debug, Default)]
struct NextestUse {
    profiles: BTreeSet<String>,
    binaries: BTreeSet<String>,
    packages: BTreeSet<String>,
}

fn nextest_uses(script: &str) -> NextestUse {
    let mut out = NextestUse::default();
    for line in logical_lines(script) {
        let ws = words(&line);
        let Some(at) = ws
            .windows(3)
            .position(|w| w[0] == "cargo" && w[1] == "nextest" && w[2] == "run")
        else {
            continue;
        };
        let mut profile = "default".to_owned();
        for w in &ws[..at] {
            if let Some(p) = w.strip_prefix("NEXTEST_PROFILE=") {
                profile = p.to_owned();
            }
        }
        let args = &ws[at + 3..];
        for (i, w) in args.iter().enumerate() {
            let next = args.get(i + 1).cloned().unwrap_or_default();
            match w.as_str() {
                "--profile" | "-P" => profile = next,
                "--test" => {
                    out.binaries.insert(next);
                }
                "-p" | "--package" => {
                    out.packages.insert(next);
                }
                "-E" | "--filterset" | "--filter-expr" => {
                    for (prefix, set) in [
                        ("binary(", &mut out.binaries),
                        ("package(", &mut out.packages),
                    ] {
                        for part in next.split(prefix).skip(1) {
                            if let Some((name, _)) = part.split_once(')') {
                                set.insert(name.to_owned());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out.profiles.insert(profile);
    }
    out
}

/// A job's scripts: its `run:` steps (before step `upto`, when given) and the repository
/// scripts they run (.ci/run), read as text.
fn job_scripts(job: &Mapping, upto: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, step) in Workflow::steps(job).into_iter().enumerate() {
        if upto.is_some_and(|u| i >= u) {
            break;
        }
        if let Some(run) = str_of(step, "run") {
            out.push(run.to_owned());
            for path in repo_paths(run) {
                let file = workspace().join(&path);
                if let Ok(text) = std::fs::read_to_string(&file) {
                    if text.starts_with("#!") {
                        out.push(text);
                    }
                }
            }
        }
    }
    out
}

fn nextest_profiles() -> String {
    std::fs::read_to_string(workspace().join(".config/nextest.toml"))
        .expect("read .config/nextest.toml")
}

fn has_profile(config: &str, profile: &str) -> bool {
    profile == "default"
        || config
            .lines()
            .any(|l| l.trim() == format!("[profile.{profile}]"))
}

/// The `path` of `[profile.P.junit]` in .config/nextest.toml.
fn junit_path(config: &str, profile: &str) -> Option<String> {
    let header = format!("[profile.{profile}.junit]");
    let mut lines = config.lines().skip_while(|l| l.trim() != header).skip(1);
    lines
        .by_ref()
        .take_while(|l| !l.trim_start().starts_with('['))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "path").then(|| v.trim().trim_matches('"').to_owned())
        })
}

/// `harness SUB... --help`, once per subcommand.
fn harness_help(
    subcommand: &[String],
    cache: &mut BTreeMap<Vec<String>, Result<String, String>>,
) -> Result<String, String> {
    cache
        .entry(subcommand.to_vec())
        .or_insert_with(|| {
            let out = Command::new(bin("harness"))
                .args(subcommand)
                .arg("--help")
                .current_dir(workspace())
                .output()
                .expect("run harness --help");
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(format!(
                    "`harness {} --help` exited {:?}: {}",
                    subcommand.join(" "),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        })
        .clone()
}

fn help_has_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let next = help[i + flag.len()..].chars().next();
        let prev = help[..i].chars().last();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

// ---------------------------------------------------------------------------------------
// (c) Every command a run step names exists

#[test]
fn run_steps_name_commands_that_exist() {
    let config = nextest_profiles();
    let ci_run = std::fs::read_to_string(workspace().join(".ci/run")).expect("read .ci/run");
    let mut help = BTreeMap::new();
    let mut problems = Vec::new();
    let mut harness_checked = 0;
    for wf in Workflow::all() {
        for (job_id, job) in wf.jobs() {
            let at = format!("{}: job {job_id}", wf.file);
            for script in job_scripts(job, None) {
                for call in harness_calls(&script) {
                    harness_checked += 1;
                    if call.subcommand.is_empty() {
                        problems.push(format!("{at}: no subcommand in `{}`", call.line));
                        continue;
                    }
                    match harness_help(&call.subcommand, &mut help) {
                        Err(e) => problems.push(format!("{at}: {e} (for `{}`)", call.line)),
                        Ok(text) => {
                            for (flag, _) in &call.flags {
                                if !help_has_flag(&text, flag) {
                                    problems.push(format!(
                                        "{at}: `harness {}` has no {flag} (in `{}`)",
                                        call.subcommand.join(" "),
                                        call.line
                                    ));
                                }
                            }
                        }
                    }
                }
                for path in repo_paths(&script) {
                    if !workspace().join(&path).exists() {
                        problems.push(format!("{at}: {path} does not exist in the repository"));
                    }
                }
                let uses = nextest_uses(&script);
                for p in &uses.profiles {
                    if !has_profile(&config, p) {
                        problems.push(format!(
                            "{at}: nextest profile {p} is not in .config/nextest.toml"
                        ));
                    }
                }
                for b in &uses.binaries {
                    let found = ["suites/tests", "harness/tests"]
                        .iter()
                        .any(|d| workspace().join(d).join(format!("{b}.rs")).is_file());
                    if !found {
                        problems.push(format!("{at}: no test binary {b} (suites/tests/{b}.rs)"));
                    }
                }
                for p in &uses.packages {
                    if !workspace().join(p).join("Cargo.toml").is_file() {
                        problems.push(format!("{at}: no workspace package {p}"));
                    }
                }
                // The same tansu as .ci/run, so that one cache serves both.
                for line in logical_lines(&script) {
                    let t = line.trim();
                    if t.starts_with("cargo install tansu") && !ci_run.contains(t) {
                        problems.push(format!("{at}: `{t}` differs from .ci/run's tansu install"));
                    }
                }
            }
        }
    }
    assert!(
        harness_checked >= 5,
        "only {harness_checked} harness command lines found: is the scanner broken?"
    );
    fail_with(problems);
}

// ---------------------------------------------------------------------------------------
// (d) Every uploaded path is one that is written

/// What a harness report directory holds, by the subcommand that writes it.
fn report_files(subcommand: &str) -> &'static [&'static str] {
    match subcommand {
        "matrix" => &["matrix.json", "matrix.md", "junit.xml", "index.html"],
        "chaos" => &["chaos.json", "junit.xml"],
        _ => &[],
    }
}

#[test]
fn uploads_are_paths_that_get_written() {
    let config = nextest_profiles();
    // Where the suites put their report directories (suites::report_dir).
    let probe = report_dir("workflows_upload_probe");
    let suite_reports = probe.parent().expect("a parent").to_path_buf();
    let _ = std::fs::remove_dir_all(&probe);
    assert_eq!(
        suite_reports.file_name().and_then(|n| n.to_str()),
        Some("suite-reports")
    );
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        assert_eq!(
            suite_reports,
            workspace().join("target/suite-reports"),
            "suites::report_dir no longer writes under target/suite-reports"
        );
    }

    let mut problems = Vec::new();
    let mut uploads = 0;
    for wf in Workflow::all() {
        let mut names = BTreeSet::new();
        for (job_id, job) in wf.jobs() {
            let at = format!("{}: job {job_id}", wf.file);
            let matrix_job = job.get("strategy").is_some();
            for (index, step) in Workflow::steps(job).into_iter().enumerate() {
                let Some(uses) = str_of(step, "uses") else {
                    continue;
                };
                if !uses.starts_with("actions/upload-artifact@") {
                    continue;
                }
                uploads += 1;
                let label = step_label(step);
                if str_of(step, "if") != Some("always()") {
                    problems.push(format!(
                        "{at}: {label:?} should upload with `if: always()` (reports matter most on failure)"
                    ));
                }
                let with = step.get("with").and_then(Value::as_mapping);
                let name = with.and_then(|w| str_of(w, "name")).unwrap_or("");
                if name.is_empty() {
                    problems.push(format!("{at}: {label:?} has no artifact name"));
                } else if !names.insert(name.to_owned()) {
                    problems.push(format!("{at}: artifact name {name} is used twice"));
                }
                if matrix_job && !name.contains("${{ matrix.") {
                    problems.push(format!(
                        "{at}: {label:?}: artifact {name} must differ per matrix entry"
                    ));
                }
                let before = job_scripts(job, Some(index));
                let paths = with.and_then(|w| str_of(w, "path")).unwrap_or("");
                for path in paths.lines().map(str::trim).filter(|p| !p.is_empty()) {
                    if let Some(p) = upload_problem(path, &before, &config) {
                        problems.push(format!("{at}: {label:?}: {path}: {p}"));
                    }
                }
            }
        }
    }
    assert!(uploads >= 8, "only {uploads} uploads found");
    fail_with(problems);
}

/// Why `path` would be empty when uploaded after the scripts `before`, if it would.
fn upload_problem(path: &str, before: &[String], config: &str) -> Option<String> {
    let path = path.trim_end_matches('/');
    if let Some(rest) = path.strip_prefix("target/nextest/") {
        let (profile, file) = rest.split_once('/')?;
        let junit = junit_path(config, profile);
        if junit.as_deref() != Some(file) {
            return Some(format!(
                "profile {profile} writes its JUnit to {junit:?} (junit.path in .config/nextest.toml)"
            ));
        }
        let ran = before
            .iter()
            .any(|s| nextest_uses(s).profiles.contains(profile));
        return (!ran).then(|| format!("no earlier step runs nextest with profile {profile}"));
    }
    if path == "target/suite-reports" {
        let ran = before.iter().any(|s| {
            let uses = nextest_uses(s);
            !uses.profiles.is_empty()
                && (uses.packages.is_empty() || uses.packages.contains("suites"))
        });
        return (!ran).then(|| "no earlier step runs the suites".to_owned());
    }
    // A harness report directory: the --report-dir of an earlier harness command.
    let writer = before.iter().flat_map(|s| harness_calls(s)).find(|c| {
        c.flags.iter().any(|(f, v)| {
            f == "--report-dir" && v.as_deref().map(|v| v.trim_end_matches('/')) == Some(path)
        })
    });
    match writer {
        None => {
            Some("no earlier step writes it (harness --report-dir, nextest, the suites)".into())
        }
        Some(c) if report_files(&c.subcommand[0]).is_empty() => Some(format!(
            "written by `harness {}`, which is not known to write a report directory",
            c.subcommand.join(" ")
        )),
        Some(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// (e) The step scripts, run here

/// A step script as the runner would run it: `${{ }}` replaced by `values` (every
/// expression in it must have one).
fn local_script(script: &str, values: &[(&str, &str)]) -> String {
    let mut out = script.to_owned();
    for e in expressions(script).expect("balanced expressions") {
        let value = values
            .iter()
            .find(|(k, _)| *k == e)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no local value for ${{{{ {e} }}}} in:\n{script}"));
        out = out.replace(&format!("${{{{ {e} }}}}"), value);
    }
    out
}

/// A runner's working directory: `target/debug/harness` is `harness` (a path to the
/// real binary or a stand-in script), GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and RUNNER_TEMP
/// are files in it.
struct Runner {
    dir: PathBuf,
}

struct StepResult {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Runner {
    fn new(test: &str, harness: &Path) -> Runner {
        let dir = report_dir(test);
        std::fs::create_dir_all(dir.join("target/debug")).expect("target/debug");
        std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
        std::os::unix::fs::symlink(harness, dir.join("target/debug/harness"))
            .expect("link target/debug/harness");
        Runner { dir }
    }

    /// Runs a step script with bash as GitHub's default shell does (`bash -e {0}`).
    fn run(&self, script: &str, env: &[(&str, &str)]) -> StepResult {
        let file = self.dir.join("tmp/step.sh");
        std::fs::write(&file, script).expect("write the step script");
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-e"])
            .arg(&file)
            .current_dir(&self.dir)
            .env("GITHUB_OUTPUT", self.dir.join("github_output"))
            .env("GITHUB_STEP_SUMMARY", self.dir.join("step_summary.md"))
            .env("RUNNER_TEMP", self.dir.join("tmp"))
            .envs(env.iter().copied())
            .output()
            .expect("run bash");
        StepResult {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    fn reset_outputs(&self) {
        for f in ["github_output", "step_summary.md"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
    }
}

impl std::fmt::Display for StepResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list a directory") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// The release gate on a one-cell matrix with the real harness and the reference driver,
/// through the workflow's own step scripts: Candidate matrix, Recorded without a gate,
/// the nightly full-matrix summary step on the same report, Baseline (a directory), and
/// Gate three times: identical matrices (exit 0), another broker (2), a cell that now
/// fails (1). The files a matrix writes are listed together before the test fails.
#[test]
fn release_gate_steps_run_locally_on_a_tiny_matrix() {
    let gate = Workflow::load("release-gate.yml");
    let runner = Runner::new("workflows_release_gate", &bin("harness"));
    let driver = bin("verifiable-consumer");
    let driver = driver.to_str().expect("a UTF-8 path");
    let env = |baseline: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("DRIVER", driver.to_owned()),
            ("INSTALL", String::new()),
            ("BASELINE", baseline.to_owned()),
            ("PROTOCOLS", "eager-range".to_owned()),
            ("FAULTS", "pause-short".to_owned()),
            ("BROKER", "mock".to_owned()),
            ("UPLOAD_AS", "release-gate-candidate".to_owned()),
        ]
    };
    let run = |step: &str, env: &[(&'static str, String)]| -> StepResult {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let script = local_script(&gate.script(step), &[]);
        runner.run(&script, &env)
    };
    let mut problems = Vec::new();

    // Candidate matrix: the candidate/ the workflow uploads.
    let r = run("Candidate matrix", &env("saved/baseline-a"));
    assert_eq!(r.code, Some(0), "Candidate matrix step:\n{r}");
    // 0, or 1 if the cell failed on a loaded machine: either way the gate decides.
    let output = runner.read("github_output");
    assert!(
        output.contains("status=0") || output.contains("status=1"),
        "the matrix step's status output:\n{output}"
    );
    let candidate = runner.dir.join("candidate");
    let cell = candidate.join("pause-short/eager-range");
    for file in report_files("matrix") {
        if !candidate.join(file).is_file() {
            problems.push(format!("harness matrix did not write {file}"));
        }
    }
    for file in [
        "history.jsonl",
        "verdict.json",
        "summary.md",
        "report.html",
        "metrics.prom",
    ] {
        if !cell.join(file).is_file() {
            problems.push(format!(
                "harness matrix did not write <fault>/<protocol>/{file}"
            ));
        }
    }
    let matrix: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(candidate.join("matrix.json")).expect("candidate/matrix.json"),
    )
    .expect("matrix.json is JSON");
    let cells = matrix.as_array().expect("matrix.json is a list of cells");
    assert_eq!(cells.len(), 1, "one cell: {matrix}");
    assert_eq!(cells[0]["fault"], "pause-short");
    assert_eq!(cells[0]["protocol"], "eager-range");
    let table = std::fs::read_to_string(candidate.join("matrix.md")).expect("matrix.md");
    assert!(
        table.contains("| pause-short") && table.contains("eager-range"),
        "matrix.md is not the table:\n{table}"
    );

    // Recorded without a gate (baseline: none): the table becomes the summary.
    runner.reset_outputs();
    let r = run("Recorded without a gate", &env("none"));
    assert_eq!(r.code, Some(0), "Recorded step:\n{r}");
    let summary = runner.read("step_summary.md");
    assert!(
        summary.contains(&table) && summary.contains("release-gate-candidate"),
        "the recorded summary lacks the table or the artifact name:\n{summary}"
    );

    // Nightly full-matrix: the same table into the job summary.
    runner.reset_outputs();
    copy_dir(&candidate, &runner.dir.join("reports/matrix"));
    let nightly = Workflow::load("nightly.yml");
    let r = runner.run(
        &local_script(&nightly.script("Matrix table as the job summary"), &[]),
        &[],
    );
    assert_eq!(r.code, Some(0), "nightly summary step:\n{r}");
    assert!(
        runner.read("step_summary.md").contains(&table),
        "the nightly summary lacks matrix.md"
    );

    // Baseline from a directory: a copy of the candidate, as a committed baseline would be.
    copy_dir(&candidate, &runner.dir.join("saved/baseline-a"));
    std::fs::create_dir_all(runner.dir.join("saved/not-a-matrix")).expect("an empty dir");
    let r = run("Baseline", &env("saved/not-a-matrix"));
    assert_eq!(r.code, Some(2), "a baseline without matrix.json:\n{r}");
    assert!(r.stdout.contains("holds no matrix.json"), "{r}");
    let _ = std::fs::remove_dir_all(runner.dir.join("baseline"));
    let r = run("Baseline", &env("saved/baseline-a"));
    assert_eq!(r.code, Some(0), "Baseline step:\n{r}");
    assert!(runner.dir.join("baseline/matrix.json").is_file());

    // Gate: the same matrix twice is no regression; gate.md is printed, written next to
    // gate.json and becomes the summary.
    runner.reset_outputs();
    let r = run("Gate", &env("saved/baseline-a"));
    assert_eq!(r.code, Some(0), "the Gate step on identical matrices:\n{r}");
    let md = std::fs::read_to_string(candidate.join("gate.md")).expect("candidate/gate.md");
    assert!(
        candidate.join("gate.json").is_file(),
        "no candidate/gate.json"
    );
    assert!(
        runner.read("step_summary.md").contains(md.trim()),
        "the Gate step did not put gate.md into the summary"
    );
    assert!(
        r.stdout.contains(md.trim()),
        "harness gate did not print its markdown:\n{r}"
    );

    // Not comparable (the baseline ran on another broker): exit 2, with the reason.
    let edit = |file: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut cells: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("read matrix.json"))
                .expect("matrix.json");
        for cell in cells.as_array_mut().expect("a list of cells") {
            f(cell);
        }
        std::fs::write(file, cells.to_string()).expect("write matrix.json");
    };
    edit(&runner.dir.join("baseline/matrix.json"), &|c| {
        c["broker"] = "process:tansu".into();
    });
    runner.reset_outputs();
    let r = run("Gate", &env("saved/baseline-a"));
    assert_eq!(r.code, Some(2), "the Gate step, another broker:\n{r}");
    assert!(
        r.stdout
            .contains("::error title=release gate: not comparable::")
            && r.stdout.contains("different brokers"),
        "no annotation with the reason:\n{r}"
    );
    assert!(
        runner.read("step_summary.md").contains("different brokers"),
        "the reason is not in the summary:\n{}",
        runner.read("step_summary.md")
    );

    // A regression (the candidate's cell now fails): exit 1.
    let _ = std::fs::remove_dir_all(runner.dir.join("baseline"));
    copy_dir(
        &runner.dir.join("saved/baseline-a"),
        &runner.dir.join("baseline"),
    );
    edit(&runner.dir.join("baseline/matrix.json"), &|c| {
        c["outcome"] = "pass".into();
        c["reason"] = "".into();
    });
    edit(&candidate.join("matrix.json"), &|c| {
        c["outcome"] = "fail".into();
        c["reason"] = "no_loss: planted by the test".into();
    });
    runner.reset_outputs();
    let r = run("Gate", &env("saved/baseline-a"));
    assert_eq!(
        r.code,
        Some(1),
        "the Gate step, a cell that now fails:\n{r}"
    );
    assert!(
        r.stdout.contains("::error title=release gate::regression"),
        "no regression annotation:\n{r}"
    );
    assert!(
        runner
            .read("step_summary.md")
            .contains("planted by the test"),
        "the regression is not in the summary:\n{}",
        runner.read("step_summary.md")
    );
    fail_with(problems);
}

/// A stand-in `harness`: logs its arguments one per line, writes what the real one would
/// for the path the workflow then reads, and exits STUB_EXIT.
const STUB: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$@" > "$STUB_LOG"
case "$1" in
  gate)
    # Exit 2 as when a matrix.json is unreadable: no gate.md, the reason on stderr.
    rm -f candidate/gate.md
    if [ "$STUB_EXIT" = 2 ]; then
      echo "error: cannot read baseline/matrix.json" >&2
    else
      printf '## Gate\n\n| cell | change |\n' > candidate/gate.md
    fi
    ;;
  chaos)
    dir=""; prev=""
    for a in "$@"; do [ "$prev" = --report-dir ] && dir="$a"; prev="$a"; done
    mkdir -p "$dir"; echo '{"runs":[]}' > "$dir/chaos.json"
    [ "$STUB_EXIT" = 1 ] && printf 'name = "minimal"\n' > "$dir/minimal.toml"
    ;;
  matrix)
    dir=""; prev=""
    for a in "$@"; do [ "$prev" = --report-dir ] && dir="$a"; prev="$a"; done
    mkdir -p "$dir"; echo '[]' > "$dir/matrix.json"
    ;;
esac
exit "$STUB_EXIT"
"#;

/// The exit handling of the steps that run the harness, against a stand-in: the matrix
/// step carries on after a failed cell and stops when the matrix could not run; the gate
/// step fails on 1 and on 2 (with the reason); the chaos step fails on 1 with the shrunk
/// schedule in the summary. Also: the driver reaches the harness as one argument.
#[test]
fn step_scripts_handle_every_exit_code() {
    let scratch = report_dir("workflows_stub_harness");
    let stub = scratch.join("harness-stub");
    std::fs::write(&stub, STUB).expect("write the stub");
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let runner = Runner::new("workflows_stub_steps", &stub);
    let log = runner.dir.join("tmp/stub-args");
    let log = log.to_str().expect("a UTF-8 path");
    let args = || -> Vec<String> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };

    let gate = Workflow::load("release-gate.yml");
    let matrix_step = local_script(&gate.script("Candidate matrix"), &[]);
    let driver = "python3 my client/driver.py --flag";
    let base_env = |exit: &'static str, protocols: &'static str, faults: &'static str| {
        vec![
            ("STUB_LOG", log),
            ("STUB_EXIT", exit),
            ("DRIVER", driver),
            ("PROTOCOLS", protocols),
            ("FAULTS", faults),
            ("BROKER", "mock"),
            ("BASELINE", "baseline-artifact"),
        ]
    };
    for (exit, step_exit, status) in [
        ("0", Some(0), "status=0"),
        ("1", Some(0), "status=1"),
        ("2", Some(2), "status=2"),
    ] {
        runner.reset_outputs();
        let r = runner.run(&matrix_step, &base_env(exit, "all", "crash,join"));
        assert_eq!(
            r.code, step_exit,
            "Candidate matrix, harness exit {exit}:\n{r}"
        );
        assert!(runner.read("github_output").contains(status), "{r}");
        if exit == "2" {
            assert!(
                r.stdout.contains("::error"),
                "no annotation for exit 2:\n{r}"
            );
        }
    }
    let a = args();
    assert_eq!(a.first().map(String::as_str), Some("matrix"));
    let pos = |flag: &str| a.iter().position(|x| x == flag);
    let value = |flag: &str| pos(flag).and_then(|i| a.get(i + 1)).cloned();
    assert_eq!(value("--driver").as_deref(), Some(driver), "args: {a:?}");
    assert_eq!(
        value("--report-dir").as_deref(),
        Some("candidate"),
        "args: {a:?}"
    );
    assert_eq!(value("--broker").as_deref(), Some("mock"), "args: {a:?}");
    assert_eq!(
        value("--faults").as_deref(),
        Some("crash,join"),
        "args: {a:?}"
    );
    assert_eq!(
        pos("--protocols"),
        None,
        "protocols=all passes no --protocols: {a:?}"
    );
    runner.run(&matrix_step, &base_env("0", "consumer", "all"));
    let a = args();
    assert!(
        a.windows(2)
            .any(|w| w[0] == "--protocols" && w[1] == "consumer")
            && !a.contains(&"--faults".to_owned()),
        "args: {a:?}"
    );

    // Gate: 0 passes, 1 fails as a regression, 2 fails with the gate's reason.
    std::fs::create_dir_all(runner.dir.join("candidate")).expect("candidate/");
    let gate_step = local_script(&gate.script("Gate"), &[]);
    for (exit, want) in [
        ("0", "no regression"),
        ("1", "::error title=release gate::regression"),
        (
            "2",
            "::error title=release gate: not comparable::error: cannot read baseline/matrix.json",
        ),
    ] {
        runner.reset_outputs();
        let r = runner.run(&gate_step, &base_env(exit, "all", "all"));
        assert_eq!(
            r.code.map(|c| c.to_string()).as_deref(),
            Some(exit),
            "Gate, harness exit {exit}:\n{r}"
        );
        assert!(
            r.stdout.contains(want),
            "Gate, harness exit {exit}: no {want:?}:\n{r}"
        );
        let summary = runner.read("step_summary.md");
        assert_eq!(
            summary.contains("| cell | change |"),
            exit != "2",
            "gate.md belongs in the summary when there is one:\n{summary}"
        );
        if exit == "2" {
            assert!(
                summary.contains("cannot read baseline/matrix.json"),
                "the reason is not in the summary:\n{summary}"
            );
        }
    }
    assert_eq!(
        args(),
        ["gate", "--baseline", "baseline", "--candidate", "candidate"],
        "the gate's arguments"
    );

    // Chaos: seeded by the run number, bounded, fails on 1 with minimal.toml in the summary.
    let nightly = Workflow::load("nightly.yml");
    let chaos = local_script(
        &nightly.script("Chaos session (30 minutes, seeded by the run number)"),
        &[("github.run_number", "42")],
    );
    for (exit, step_exit) in [("0", Some(0)), ("1", Some(1)), ("2", Some(2))] {
        runner.reset_outputs();
        let _ = std::fs::remove_dir_all(runner.dir.join("reports/chaos"));
        let r = runner.run(&chaos, &[("STUB_LOG", log), ("STUB_EXIT", exit)]);
        assert_eq!(r.code, step_exit, "chaos, harness exit {exit}:\n{r}");
        let summary = runner.read("step_summary.md");
        assert_eq!(
            summary.contains("name = \"minimal\""),
            exit == "1",
            "chaos, harness exit {exit}: minimal.toml in the summary only on failure:\n{summary}"
        );
    }
    assert_eq!(
        args(),
        [
            "chaos",
            "--broker",
            "mock",
            "--for",
            "30m",
            "--seed",
            "42",
            "--report-dir",
            "reports/chaos"
        ],
        "the chaos session's arguments"
    );

    // The nightly summary step without a matrix.md says so and does not fail.
    runner.reset_outputs();
    let _ = std::fs::remove_dir_all(runner.dir.join("reports/matrix"));
    let r = runner.run(
        &local_script(&nightly.script("Matrix table as the job summary"), &[]),
        &[],
    );
    assert_eq!(r.code, Some(0), "{r}");
    assert!(runner
        .read("step_summary.md")
        .contains("no reports/matrix/matrix.md"));
}
