//! The `harness` command line. Exit codes: 0 passed, 1 a violation, 2 could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use harness::check::{self, Outcome, Verdict};
use harness::client::{DriverCommand, PROTOCOLS};
use harness::cluster::{self, PRESETS};
use harness::history::read_history;
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
    /// Run the protocol x fault conformance matrix; writes DIR/matrix.json.
    Matrix(MatrixArgs),
    /// Re-check a history offline and print its verdict.
    Check {
        /// A history.jsonl written by a run.
        history: PathBuf,
        /// Also write verdict.json and summary.md here.
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
    protocols: Vec<String>,
    /// Fault scenarios (rows); comma-separated. Default: every catalogue scenario but
    /// the seed.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Cells run at once. Default: the number of cores.
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Flags shared by `run` and `matrix`.
#[derive(Args, Clone)]
struct CommonArgs {
    /// Use this driver instead of the reference one: "CMD ARGS"; the driver protocol's
    /// flags are appended.
    #[arg(long)]
    driver: Option<String>,
    #[arg(long)]
    seed: Option<u64>,
    /// A budgets file instead of the shipped fixtures/budgets.toml.
    #[arg(long)]
    budgets: Option<PathBuf>,
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
    protocol: Vec<String>,
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
        Command::Check {
            history,
            report_dir,
        } => check_command(&history, report_dir.as_deref()),
        Command::List => {
            println!("scenarios: {}", scenario::catalogue().join(", "));
            println!("protocols: {}", PROTOCOLS.join(", "));
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

fn check_command(history: &std::path::Path, report_dir: Option<&std::path::Path>) -> Result<bool> {
    let records = read_history(history)?;
    let verdict = check::check(&records);
    if let Some(dir) = report_dir {
        report::write(dir, &verdict)?;
    }
    print!("{}", report::summary(&verdict));
    Ok(verdict.outcome != Outcome::Fail)
}

/// Protocols named on the command line (all when none), each checked.
fn protocols_arg(given: &[String]) -> Result<Vec<String>> {
    let protocols: Vec<String> = if given.is_empty() {
        PROTOCOLS.iter().map(|p| p.to_string()).collect()
    } else {
        given.to_vec()
    };
    for p in &protocols {
        harness::client::protocol_flags(p)?;
    }
    Ok(protocols)
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
    let protocols = protocols_arg(&args.protocols)?;
    broker_arg(&args.broker)?;
    let faults = if args.faults.is_empty() {
        matrix::default_faults()
    } else {
        args.faults.clone()
    };
    for f in &faults {
        Scenario::builtin(f)?;
    }
    let (driver, budgets, seed) = common_args(&args.common)?;
    let report_dir = args.report_dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/matrix-{}",
            harness::history::now_ms() / 1000
        ))
    });
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    eprintln!(
        "matrix: {} faults x {} protocols on {}, {jobs} at a time, seed {seed}, reports in {}",
        faults.len(),
        protocols.len(),
        args.broker,
        report_dir.display()
    );
    let cfg = MatrixConfig {
        broker: args.broker.clone(),
        protocols,
        faults,
        report_dir: report_dir.clone(),
        jobs,
        driver,
        driver_arg: args.common.driver.clone(),
        seed,
        budgets,
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
    Ok(cells.iter().all(|c| c.outcome != "fail"))
}

fn run_command(args: RunArgs) -> Result<bool> {
    let (scenario, scenario_flag) = match (&args.scenario, &args.scenario_file) {
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
                bail!(
                    "scenario {} is meant for {}, not {p}",
                    scenario.name,
                    meant.join(", ")
                );
            }
            args.protocol.clone()
        }
        (None, _) => protocols_arg(&args.protocol)?,
    };
    broker_arg(&args.broker)?;
    let (driver, budgets, seed) = common_args(&args.common)?;
    let base = args.report_dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!("reports/run-{}", harness::history::now_ms() / 1000))
    });

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let mut rows = Vec::new();
    for protocol in &protocols {
        let dir = if protocols.len() == 1 {
            base.clone()
        } else {
            base.join(format!("{}-{protocol}", scenario.name))
        };
        let mut replay = format!(
            "harness run {scenario_flag} --protocol {protocol} --broker {} --seed {seed} --report-dir {}",
            args.broker,
            dir.display()
        );
        if let Some(d) = &args.common.driver {
            replay.push_str(&format!(" --driver {}", shell_words::quote(d)));
        }
        eprintln!("replay: {replay}");
        let cfg = RunConfig {
            scenario: scenario.clone(),
            protocol: protocol.clone(),
            broker: args.broker.clone(),
            report_dir: dir.clone(),
            driver: driver.clone(),
            seed,
            budgets: budgets.clone(),
            replay,
        };
        let started = Instant::now();
        let verdict = runtime.block_on(async {
            tokio::select! {
                v = run::run(cfg) => v,
                why = interrupted() => bail!("{why}; the history so far is in {}", dir.display()),
            }
        })?;
        print_verdict(&verdict, &dir);
        rows.push((protocol.clone(), verdict, started.elapsed().as_secs_f64()));
    }
    if rows.len() > 1 {
        print_table(&rows);
    }
    Ok(rows.iter().all(|(_, v, _)| v.outcome != Outcome::Fail))
}

fn print_verdict(v: &Verdict, dir: &std::path::Path) {
    let status = report::outcome_label(v.outcome);
    println!(
        "{} / {} / {}: {status}  (reports in {})",
        v.scenario,
        v.protocol,
        v.broker,
        dir.display()
    );
    for c in v.failed_checks() {
        let tag = if c.known_deviation.is_some() {
            " (known deviation)"
        } else {
            ""
        };
        println!("  {}{tag}: {}", c.name, c.detail);
    }
}

fn print_table(rows: &[(String, Verdict, f64)]) {
    let ms = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
    println!(
        "\n{:<20} {:<9} {:>6} {:>6} {:>9} {:>10} {:>10} {:>7}",
        "protocol", "verdict", "lost", "dups", "unexpl.", "detect ms", "recover ms", "wall s"
    );
    for (p, v, wall) in rows {
        let m = &v.metrics;
        println!(
            "{:<20} {:<9} {:>6} {:>6} {:>9} {:>10} {:>10} {:>7.1}",
            p,
            match v.outcome {
                Outcome::Pass => "pass",
                Outcome::KnownDeviation => "known-dev",
                Outcome::Skipped => "skipped",
                Outcome::Fail => "FAIL",
            },
            m.lost,
            m.duplicates,
            m.duplicates_unexplained,
            ms(m.detection_ms),
            ms(m.recovery_ms),
            wall
        );
    }
}
