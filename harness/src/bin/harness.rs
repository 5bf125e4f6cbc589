//! The `harness` command line. Exit codes: 0 passed, 1 a violation, 2 could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use harness::check::{self, Outcome, Verdict};
use harness::client::{DriverCommand, PROTOCOLS};
use harness::cluster::BROKERS;
use harness::history::read_history;
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
    /// Run a scenario against a broker and check it. With no arguments: the seed
    /// scenario under every supported protocol on the embedded broker.
    Run(RunArgs),
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Check {
            history,
            report_dir,
        } => check_command(&history, report_dir.as_deref()),
        Command::List => {
            println!("scenarios: {}", scenario::catalogue().join(", "));
            println!("protocols: {}", PROTOCOLS.join(", "));
            println!("brokers:   {}", BROKERS.join(", "));
            Ok(true)
        }
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

fn run_command(args: RunArgs) -> Result<bool> {
    let (scenario, scenario_flag) = match (&args.scenario, &args.scenario_file) {
        (_, Some(f)) => (
            Scenario::load(f)?,
            format!("--scenario-file {}", f.display()),
        ),
        (Some(n), None) => (Scenario::builtin(n)?, format!("--scenario {n}")),
        (None, None) => (Scenario::builtin("seed")?, "--scenario seed".to_owned()),
    };
    let protocols: Vec<String> = if args.protocol.is_empty() {
        PROTOCOLS.iter().map(|p| p.to_string()).collect()
    } else {
        args.protocol.clone()
    };
    for p in &protocols {
        harness::client::protocol_flags(p)?;
    }
    if !BROKERS.contains(&args.broker.as_str()) {
        bail!(
            "unknown broker '{}': supported brokers are {}",
            args.broker,
            BROKERS.join(", ")
        );
    }
    let driver = args
        .driver
        .as_deref()
        .map(DriverCommand::parse)
        .transpose()?;
    let budgets = match &args.budgets {
        Some(p) => Budgets::load(p)?,
        None => Budgets::builtin(),
    };
    let seed = args.seed.unwrap_or_else(harness::history::now_ms);
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
        if let Some(d) = &args.driver {
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
                _ = tokio::signal::ctrl_c() => bail!("interrupted; the history so far is in {}", dir.display()),
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
