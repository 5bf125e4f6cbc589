//! One member process: spawned in its own process group (so a kill reaches everything
//! it started), stdout parsed into history events, stderr kept in a log file.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::Mutex;

use super::protocol::parse_line;
use super::{DriverCommand, MemberSpec};
use crate::history::{Event, Recorder};

/// How a member's process ended.
#[derive(Debug, Clone)]
pub struct MemberExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

pub struct Member {
    pub name: String,
    pub pid: u32,
    killed: Arc<AtomicBool>,
    /// Set once the harness asks the process to end (SIGTERM, SIGKILL): an exit
    /// before that is a death the run reports.
    requested: Arc<AtomicBool>,
    stdin: Mutex<Option<ChildStdin>>,
    exited: tokio::sync::watch::Receiver<Option<MemberExit>>,
}

impl Member {
    /// Starts the driver and the task that records its events. Events go to `recorder`;
    /// a line that breaks the protocol marks the run as broken (the run stops, exit 2).
    pub fn spawn(
        driver: &DriverCommand,
        spec: &MemberSpec,
        log_dir: &Path,
        recorder: Arc<Recorder>,
    ) -> Result<Member> {
        let stderr_path = log_dir.join(format!("{}.stderr.log", spec.name));
        // Appended: a restarted member keeps its earlier processes' logs.
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .with_context(|| format!("cannot create {}", stderr_path.display()))?;
        let mut cmd = Command::new(&driver.program);
        cmd.args(&driver.args)
            .args(spec.flags())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true);
        let mut child: Child = cmd.spawn().with_context(|| {
            format!(
                "cannot start driver {} for {}",
                driver.program.display(),
                spec.name
            )
        })?;
        let pid = child
            .id()
            .context("driver exited before it could be tracked")?;
        recorder.record(Some(&spec.name), Event::MemberStarted { pid });
        let stdout = child.stdout.take().context("driver stdout")?;
        let stdin = child.stdin.take();
        let killed = Arc::new(AtomicBool::new(false));
        let requested = Arc::new(AtomicBool::new(false));
        let (exit_tx, exited) = tokio::sync::watch::channel(None);

        let name = spec.name.clone();
        let killed_flag = killed.clone();
        let requested_flag = requested.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.trim().is_empty() => {}
                    Ok(Some(line)) => match parse_line(&name, &line) {
                        Ok(Some((ts, event))) => {
                            recorder.record_at(ts, Some(&name), event);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            if recorder.protocol_error(e.to_string()) {
                                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                            }
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        recorder.fail(format!("cannot read driver {name}'s output: {e}"));
                        break;
                    }
                }
            }
            let status = child.wait().await.ok();
            let exit = MemberExit {
                code: status.and_then(|s| s.code()),
                signal: status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
            };
            let requested = requested_flag.load(Ordering::SeqCst);
            recorder.record(
                Some(&name),
                Event::MemberExited {
                    code: exit.code,
                    signal: exit.signal,
                    killed: killed_flag.load(Ordering::SeqCst),
                    requested: Some(requested),
                    stderr_tail: if requested {
                        Vec::new()
                    } else {
                        tail(&stderr_path, STDERR_TAIL)
                    },
                },
            );
            let _ = exit_tx.send(Some(exit));
        });
        Ok(Member {
            name: spec.name.clone(),
            pid,
            killed,
            requested,
            stdin: Mutex::new(stdin),
            exited,
        })
    }

    fn signal(&self, sig: Signal) -> Result<()> {
        killpg(Pid::from_raw(self.pid as i32), sig)
            .with_context(|| format!("cannot send {sig} to {}", self.name))
    }

    /// SIGKILL: a crash. The history marks the exit as killed.
    pub fn kill(&self) -> Result<()> {
        self.killed.store(true, Ordering::SeqCst);
        self.requested.store(true, Ordering::SeqCst);
        self.signal(Signal::SIGKILL)
    }

    /// SIGTERM: clean shutdown (commit, close, `shutdown_complete`).
    pub fn terminate(&self) -> Result<()> {
        self.requested.store(true, Ordering::SeqCst);
        self.signal_if_alive(Signal::SIGTERM)
    }

    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    pub fn resume(&self) -> Result<()> {
        self.signal_if_alive(Signal::SIGCONT)
    }

    /// A signal that only matters while the process lives: a driver that exited on its
    /// own between our check and the signal (ESRCH) has nothing left to resume or stop.
    fn signal_if_alive(&self, sig: Signal) -> Result<()> {
        match self.signal(sig) {
            Err(e) if e.downcast_ref() == Some(&nix::errno::Errno::ESRCH) => Ok(()),
            r => r,
        }
    }

    /// Closes the driver's stdin: the harness is gone, and the driver must shut down.
    pub async fn close_stdin(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.stdin.lock().await.take();
    }

    /// Sends one JSON command line on the driver's stdin.
    pub async fn command(&self, cmd: &serde_json::Value) -> Result<()> {
        let mut guard = self.stdin.lock().await;
        let stdin = guard.as_mut().context("driver stdin is closed")?;
        stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    pub fn has_exited(&self) -> Option<MemberExit> {
        self.exited.borrow().clone()
    }

    /// Waits for the process to end.
    pub async fn wait(&self) -> MemberExit {
        let mut rx = self.exited.clone();
        loop {
            if let Some(e) = rx.borrow().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return MemberExit {
                    code: None,
                    signal: None,
                };
            }
        }
    }
}

/// Lines of stderr quoted for a member that died.
const STDERR_TAIL: usize = 12;

/// The last `n` lines of a log file (none if it cannot be read).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect()
}

impl Drop for Member {
    fn drop(&mut self) {
        // Never leave a driver behind, whatever way the run ends.
        if self.has_exited().is_none() {
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
    }
}
