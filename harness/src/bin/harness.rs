//! The `harness` command line. Exit codes: 0 passed, 1 a violation, 2 could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use harness::check::{self, Outcome, Verdict};
use harness::client::DriverCommand;
use harness::cluster::{self, PRESETS};
use harness::history::read_history;
use harness::history::Protocol;
use harness::matrix::{self, MatrixConfig};
use harness::report;
use harness::run::{self, RunConfig};
use harness::scenario::{self, Budgets, Scenario};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Chaos and conformance harness for Kafka consumer-group rebalancing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario against a broker and check it. Without --scenario or
    /// --scenario-file: the conformance matrix (every fault x the protocols).
    Run(RunArgs),
    /// Run the protocol x fault conformance matrix; writes each cell's reports and
    /// DIR/matrix.json, matrix.md, junit.xml and index.html.
    Matrix(MatrixArgs),
    /// Run generated fault schedules; shrink the first that fails to DIR/minimal.toml.
    Chaos(ChaosArgs),
    /// Compare a candidate matrix with a baseline, cell by cell: exit 1 on a regression,
    /// 2 when the two cannot be compared.
    Gate {
        /// The baseline matrix directory (its matrix.json and cells).
        #[arg(long)]
        baseline: PathBuf,
        /// The candidate matrix directory.
        #[arg(long)]
        candidate: PathBuf,
        /// A latency or window may grow by this many ms...
        #[arg(long, default_value_t = 3000)]
        tolerance_ms: u64,
        /// ...or this many percent of the baseline, whichever is larger.
        #[arg(long, default_value_t = 50)]
        tolerance_pct: u64,
        /// Duplicates may grow by this many records (or the percentage).
        #[arg(long, default_value_t = 200)]
        tolerance_duplicates: u64,
        /// Where gate.md and gate.json go. Default: the candidate directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-check a history offline and print its verdict.
    Check {
        /// A history.jsonl written by a run.
        history: PathBuf,
        /// Also write verdict.json, summary.md, metrics.prom and report.html here.
        #[arg(long)]
        report_dir: Option<PathBuf>,
        /// Exit non-zero for anything but a clean pass.
        #[arg(long)]
        strict: bool,
        /// Judge with the known deviations shipped in this build
        /// (fixtures/known-deviations.toml) instead of those the run recorded: to see what
        /// an edit of the file does to old histories.
        #[arg(long)]
        shipped_deviations: bool,
    },
    /// Put a driver through a short scripted session on the embedded broker and list
    /// every way its output breaks the driver protocol (docs/driver-protocol.md).
    DriverCheck {
        /// The driver: "CMD ARGS"; the driver protocol's flags are appended.
        #[arg(long)]
        driver: String,
        #[arg(long, default_value = "eager-range")]
        protocol: Protocol,
        /// Where the session's history and verdict go. Default:
        /// reports/driver-check-<unix time>.
        #[arg(long)]
        report_dir: Option<PathBuf>,
    },
    /// List built-in scenarios, protocols and brokers.
    List,
    /// Broker images built on this machine, with no registry.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build a preset's image (tansu): debootstrap a Debian base, `docker import` it, add
    /// the host's tansu binary. Skipped when the image is up to date.
    Build {
        /// The preset: tansu.
        name: String,
        /// Rebuild even when the image is up to date.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
struct MatrixArgs {
    #[arg(long, default_value = "mock")]
    broker: String,
    /// Where reports go (DIR/<fault>/<protocol>/ per cell). Default:
    /// reports/matrix-<unix time>.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Protocols (columns); comma-separated. Default: every supported protocol.
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<Protocol>,
    /// Fault scenarios (rows); comma-separated. Default: every catalogue scenario but
    /// the seed.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Cells run at once. Default: adaptive, starting at the number of cores and going
    /// up to four times that while the harness's own timers keep time (down as soon as
    /// a cell saw the machine starve).
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
struct ChaosArgs {
    #[arg(long, default_value = "mock")]
    broker: String,
    /// Protocols, taken in turn by successive runs. Default: every supported protocol.
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<Protocol>,
    /// How many schedules to run.
    #[arg(long, required_unless_present = "for_")]
    runs: Option<usize>,
    /// Or for how long: 90s, 30m, 2h.
    #[arg(long = "for", value_parser = parse_duration)]
    for_: Option<std::time::Duration>,
    /// Where reports go (DIR/chaos.json, DIR/runs/, DIR/minimal.toml). Default:
    /// reports/chaos-<unix time>.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Re-runs the shrinker may spend on a failing schedule (0: no shrinking).
    #[arg(long, default_value_t = 30)]
    shrink_runs: usize,
    #[command(flatten)]
    common: CommonArgs,
}

/// "90s", "30m", "2h" (or plain seconds).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: the unit is s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// Flags shared by `run`, `matrix` and `chaos`.
#[derive(Args, Clone)]
struct CommonArgs {
    /// Use this driver instead of the reference one: "CMD ARGS"; the driver protocol's
    /// flags are appended.
    #[arg(long)]
    driver: Option<String>,
    /// Seed for every random choice (schedule, jitter, keys, start order); printed in
    /// the replay line. Default: the current time in ms.
    #[arg(long)]
    seed: Option<u64>,
    /// A budgets file instead of the shipped fixtures/budgets.toml (not for chaos).
    #[arg(long)]
    budgets: Option<PathBuf>,
    /// Exit non-zero for anything but a clean pass (skipped, known deviations and
    /// client findings included): for release gates that must not go green on what did
    /// not run.
    #[arg(long)]
    strict: bool,
    /// Produce at this many records per second instead of the scenario's rate (up to
    /// 50000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    rate: Option<u32>,
}

#[derive(Args)]
struct RunArgs {
    /// A built-in scenario.
    #[arg(long, conflicts_with = "scenario_file")]
    scenario: Option<String>,
    /// A scenario TOML file.
    #[arg(long)]
    scenario_file: Option<PathBuf>,
    /// Protocol(s) to run; repeat or comma-separate. Default: every supported protocol.
    #[arg(long, value_delimiter = ',')]
    protocol: Vec<Protocol>,
    #[arg(long, default_value = "mock")]
    broker: String,
    /// Where reports go. Default: reports/run-<unix time>.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) if args.scenario.is_none() && args.scenario_file.is_none() => {
            matrix_command(MatrixArgs {
                broker: args.broker,
                report_dir: args.report_dir,
                protocols: args.protocol,
                faults: Vec::new(),
                jobs: None,
                common: args.common,
            })
        }
        Command::Run(args) => run_command(args),
        Command::Matrix(args) => matrix_command(args),
        Command::Chaos(args) => chaos_command(args),
        Command::Gate {
            baseline,
            candidate,
            tolerance_ms,
            tolerance_pct,
            tolerance_duplicates,
            out,
        } => {
            let tolerance = harness::gate::Tolerance {
                ms: tolerance_ms,
                pct: tolerance_pct,
                duplicates: tolerance_duplicates,
            };
            let out = out.unwrap_or_else(|| candidate.clone());
            match harness::gate::compare(&baseline, &candidate, tolerance) {
                Ok(report) => {
                    print!("{}", harness::gate::markdown(&report));
                    if let Err(e) = harness::gate::write(&out, &report) {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(2);
                    }
                    if let Some(why) = &report.reason {
                        eprintln!("error: not comparable: {why}");
                    }
                    return ExitCode::from(report.exit_code());
                }
                Err(e) => Err(e),
            }
        }
        Command::Check {
            history,
            report_dir,
            strict,
            shipped_deviations,
        } => check_command(&history, report_dir.as_deref(), strict, shipped_deviations),
        Command::DriverCheck {
            driver,
            protocol,
            report_dir,
        } => driver_check_command(&driver, protocol, report_dir),
        Command::List => {
            println!("scenarios: {}", scenario::catalogue().join(", "));
            println!("protocols: {}", Protocol::names());
            println!("brokers:   {}", cluster::brokers().join(", "));
            for p in PRESETS {
                println!("  container:{:<10} {}  ({})", p.name, p.image, p.about);
            }
            Ok(true)
        }
        Command::Images {
            command: ImagesCommand::Build { name, force },
        } => harness::images::build(&name, force).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check_command(
    history: &std::path::Path,
    report_dir: Option<&std::path::Path>,
    strict: bool,
    shipped_deviations: bool,
) -> Result<bool> {
    let mut records = read_history(history)?;
    if shipped_deviations {
        use harness::history::Event;
        let faults: Vec<_> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::FaultInjected(f) => Some(f.kind),
                _ => None,
            })
            .collect();
        for r in &mut records {
            if let Event::RunStarted(info) = &mut r.event {
                info.known_deviations = scenario::known_deviations(
                    &info.broker,
                    info.protocol,
                    faults.iter().copied(),
                )?;
            }
        }
    }
    let verdict = check::check(&records);
    if let Some(dir) = report_dir {
        report::write(dir, &verdict)?;
        report::write_page(dir, &verdict, &check::Model::build(&records))?;
    }
    print!("{}", report::summary(&verdict));
    Ok(verdict.outcome.exits_zero(strict))
}

fn driver_check_command(
    driver: &str,
    protocol: Protocol,
    report_dir: Option<PathBuf>,
) -> Result<bool> {
    let driver = DriverCommand::parse(driver)?;
    let report_dir = report_dir.unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/driver-check-{}",
            harness::history::now_ms() / 1000
        ))
    });
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let cfg = harness::driver_check::Config {
        driver,
        protocol,
        report_dir: report_dir.clone(),
    };
    let report = runtime.block_on(async {
        tokio::select! {
            r = harness::driver_check::run(cfg) => r,
            why = interrupted() => bail!("{why}; the history so far is in {}", report_dir.display()),
        }
    })?;
    if report.problems.is_empty() {
        println!(
            "driver-check: the driver keeps the driver protocol (session in {})",
            report_dir.display()
        );
    } else {
        println!(
            "driver-check: {} problem(s) (session in {}):",
            report.problems.len(),
            report_dir.display()
        );
        for p in &report.problems {
            println!("  - {p}");
        }
    }
    for n in &report.notes {
        println!("  note: {n}");
    }
    Ok(report.problems.is_empty())
}

/// Protocols named on the command line (all when none).
fn protocols_arg(given: &[Protocol]) -> Vec<Protocol> {
    if given.is_empty() {
        Protocol::ALL.to_vec()
    } else {
        given.to_vec()
    }
}

fn broker_arg(broker: &str) -> Result<()> {
    cluster::check_spec(broker)
}

/// Resolves when the user interrupts (Ctrl-C) or the process is asked to stop
/// (SIGTERM): either way the run's future is dropped, which stops its members and
/// brokers and removes its containers.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "interrupted";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

/// The driver, budgets and seed, resolved from the shared flags.
fn common_args(c: &CommonArgs) -> Result<(Option<DriverCommand>, Budgets, u64)> {
    let driver = c.driver.as_deref().map(DriverCommand::parse).transpose()?;
    let budgets = match &c.budgets {
        Some(p) => Budgets::load(p)?,
        None => Budgets::builtin(),
    };
    let seed = c.seed.unwrap_or_else(harness::history::now_ms);
    Ok((driver, budgets, seed))
}

fn matrix_command(args: MatrixArgs) -> Result<bool> {
    let protocols = protocols_arg(&args.protocols);
    broker_arg(&args.broker)?;
    let faults = if args.faults.is_empty() {
        matrix::default_faults()
    } else {
        args.faults.clone()
    };
    let rows = faults
        .iter()
        .map(|f| matrix::Row::builtin(f))
        .collect::<Result<Vec<_>>>()?;
    let (driver, budgets, seed) = common_args(&args.common)?;
    let report_dir = args.report_dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/matrix-{}",
            harness::history::now_ms() / 1000
        ))
    });
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let jobs = match args.jobs {
        Some(n) => harness::matrix::Jobs::Fixed(n),
        None => harness::matrix::Jobs::Auto {
            start: cores,
            max: cores * 4,
        },
    };
    eprintln!(
        "matrix: {} faults x {} protocols on {}, {jobs:?} at a time, seed {seed}, reports in {}",
        faults.len(),
        protocols.len(),
        args.broker,
        report_dir.display()
    );
    let cfg = MatrixConfig {
        broker: args.broker.clone(),
        protocols,
        rows,
        report_dir: report_dir.clone(),
        jobs,
        driver,
        driver_arg: args.common.driver.clone(),
        seed,
        budgets,
        rate: args.common.rate,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let cells = runtime.block_on(async {
        tokio::select! {
            c = matrix::run(cfg) => c,
            why = interrupted() => bail!("{why}; the cells' histories so far are in {}", report_dir.display()),
        }
    })?;
    println!(
        "
{}",
        matrix::table(&cells)
    );
    println!(
        "matrix.json and each cell's reports are in {}",
        report_dir.display()
    );
    Ok(cells
        .iter()
        .all(|c| c.outcome.exits_zero(args.common.strict)))
}

fn chaos_command(args: ChaosArgs) -> Result<bool> {
    let protocols = protocols_arg(&args.protocols);
    broker_arg(&args.broker)?;
    if args.common.budgets.is_some() {
        // Chaos judges liveness only (fixed 180 s windows); a budgets file would be ignored.
        bail!("--budgets does not apply to chaos: overlapping faults are judged for liveness only (a reaction and recovery within 180 s), never against per-fault budgets");
    }
    let (driver, budgets, seed) = common_args(&args.common)?;
    let report_dir = args.report_dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/chaos-{}",
            harness::history::now_ms() / 1000
        ))
    });
    eprintln!(
        "chaos: {} on {}, seed {seed}, protocols {}, reports in {}",
        match (args.runs, args.for_) {
            (Some(n), _) => format!("{n} runs"),
            (None, Some(d)) => format!("runs for {} s", d.as_secs()),
            (None, None) => unreachable!("clap requires one"),
        },
        args.broker,
        protocols
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(","),
        report_dir.display()
    );
    let cfg = harness::chaos::ChaosConfig {
        broker: args.broker.clone(),
        protocols,
        driver,
        driver_arg: args.common.driver.clone(),
        runs: args.runs,
        duration: args.for_,
        seed,
        report_dir: report_dir.clone(),
        rate: args.common.rate,
        shrink_runs: args.shrink_runs,
        budgets,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        tokio::select! {
            r = harness::chaos::run(cfg) => r,
            why = interrupted() => bail!("{why}; the runs so far are in {}", report_dir.display()),
        }
    })?;
    let count = |o: Outcome| report.runs.iter().filter(|r| r.outcome == o).count();
    println!(
        "chaos: {} runs: {} pass, {} known deviation, {} client finding, {} skipped, {} FAIL (chaos.json in {})",
        report.runs.len(),
        count(Outcome::Pass),
        count(Outcome::KnownDeviation),
        count(Outcome::ClientFinding),
        count(Outcome::Skipped),
        count(Outcome::Fail),
        report_dir.display()
    );
    if let Some(failed) = report.failed() {
        println!(
            "run {} failed: {} (reports in {})",
            failed.index + 1,
            failed.failing.join(", "),
            failed.report.display()
        );
        if let Some(s) = &report.shrink {
            println!(
                "shrunk from {} to {} faults in {} re-runs: {}\nreplay: {}",
                s.faults_before,
                s.faults_after,
                s.reruns,
                s.minimal.display(),
                s.replay
            );
        }
    }
    Ok(report
        .runs
        .iter()
        .all(|r| r.outcome.exits_zero(args.common.strict)))
}

fn run_command(args: RunArgs) -> Result<bool> {
    let (mut scenario, scenario_flag) = match (&args.scenario, &args.scenario_file) {
        (_, Some(f)) => (
            Scenario::load(f)?,
            format!("--scenario-file {}", f.display()),
        ),
        (Some(n), None) => (Scenario::builtin(n)?, format!("--scenario {n}")),
        (None, None) => unreachable!("without a scenario, `run` runs the matrix"),
    };
    let protocols = match (&scenario.protocols, args.protocol.is_empty()) {
        (Some(meant), true) => meant.clone(),
        (Some(meant), false) => {
            if let Some(p) = args.protocol.iter().find(|p| !meant.contains(p)) {
                let meant: Vec<&str> = meant.iter().map(|p| p.as_str()).collect();
                bail!(
                    "scenario {} is meant for {}, not {p}",
                    scenario.name,
                    meant.join(", ")
                );
            }
            args.protocol.clone()
        }
        (None, _) => protocols_arg(&args.protocol),
    };
    broker_arg(&args.broker)?;
    let (driver, budgets, seed) = common_args(&args.common)?;
    if let Some(rate) = args.common.rate {
        scenario.rate_per_sec = rate;
    }
    let base = args.report_dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!("reports/run-{}", harness::history::now_ms() / 1000))
    });

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if let [protocol] = protocols[..] {
        let mut replay = format!(
            "harness run {scenario_flag} --protocol {protocol} --broker {} --seed {seed} --report-dir {}",
            args.broker,
            base.display()
        );
        if let Some(d) = &args.common.driver {
            replay.push_str(&format!(" --driver {}", shell_words::quote(d)));
        }
        if let Some(rate) = args.common.rate {
            replay.push_str(&format!(" --rate {rate}"));
        }
        eprintln!("replay: {replay}");
        let cfg = RunConfig {
            scenario,
            protocol,
            broker: args.broker.clone(),
            report_dir: base.clone(),
            driver,
            seed,
            budgets,
            replay,
        };
        let verdict = runtime.block_on(async {
            tokio::select! {
                v = run::run(cfg) => v,
                why = interrupted() => bail!("{why}; the history so far is in {}", base.display()),
            }
        })?;
        print_verdict(&verdict, &base);
        return Ok(verdict.outcome.exits_zero(args.common.strict));
    }
    // Several protocols: one run each, at once (they mostly wait on session timeouts).
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let name = scenario.name.clone();
    let cfg = MatrixConfig {
        broker: args.broker.clone(),
        protocols,
        rows: vec![matrix::Row {
            scenario,
            replay_flag: scenario_flag,
        }],
        report_dir: base.clone(),
        jobs: matrix::Jobs::Auto {
            start: cores,
            max: cores * 4,
        },
        driver,
        driver_arg: args.common.driver.clone(),
        seed,
        budgets,
        rate: args.common.rate,
    };
    let cells = runtime.block_on(async {
        tokio::select! {
            c = matrix::run(cfg) => c,
            why = interrupted() => bail!("{why}; the histories so far are in {}", base.display()),
        }
    })?;
    for c in &cells {
        println!(
            "{name} / {} / {}: {}  (reports in {})",
            c.protocol,
            args.broker,
            c.outcome.label(),
            c.report.display()
        );
        if !c.reason.is_empty() {
            println!("  {}", c.reason.chars().take(400).collect::<String>());
        }
    }
    print_table(&cells);
    println!(
        "\nevery report is in {} (index.html: the table, each cell linking its report)",
        base.display()
    );
    Ok(cells
        .iter()
        .all(|c| c.outcome.exits_zero(args.common.strict)))
}

fn print_verdict(v: &Verdict, dir: &std::path::Path) {
    println!(
        "{} / {} / {}: {}  (reports in {})",
        v.scenario,
        v.protocol.map_or("?", |p| p.as_str()),
        v.broker,
        v.outcome.label(),
        dir.display()
    );
    if let Some(why) = &v.skipped {
        println!("  skipped: {why}");
    }
    for c in v.failed_checks() {
        let tag = if c.known_deviation.is_some() {
            " (waived)"
        } else {
            ""
        };
        println!("  {}{tag}: {}", c.name, c.detail);
    }
    for n in &v.notes {
        println!("  note: {n}");
    }
}

fn print_table(cells: &[matrix::CellResult]) {
    let ms = |v: Option<&u64>| v.map_or("-".into(), |v| v.to_string());
    println!(
        "\n{:<20} {:<15} {:>6} {:>6} {:>9} {:>10} {:>10} {:>7}",
        "protocol", "verdict", "lost", "dups", "unexpl.", "detect ms", "recover ms", "wall s"
    );
    for c in cells {
        let f = c.figures.clone().unwrap_or_default();
        println!(
            "{:<20} {:<15} {:>6} {:>6} {:>9} {:>10} {:>10} {:>7.1}",
            c.protocol.as_str(),
            c.outcome.as_str(),
            f.lost,
            f.duplicates,
            f.duplicates_unexplained,
            ms(f.detection_ms.values().next()),
            ms(f.recovery_ms.values().next()),
            c.wall_s
        );
    }
}
