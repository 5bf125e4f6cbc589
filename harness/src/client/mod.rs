//! Clients under test are processes speaking the driver protocol. This module builds
//! their command lines, spawns them in their own process groups, turns their stdout into
//! history events and delivers signals and stdin commands.

mod member;
pub mod protocol;

pub use member::{tail, Member, MemberExit};

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::history::Protocol;

/// How a protocol maps onto driver flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolFlags {
    pub group_protocol: &'static str,
    /// Kafka assignor class name (the driver protocol follows VerifiableConsumer).
    pub assignment_strategy: Option<&'static str>,
    pub remote_assignor: Option<&'static str>,
    pub static_membership: bool,
}

const RANGE: &str = "org.apache.kafka.clients.consumer.RangeAssignor";
const ROUNDROBIN: &str = "org.apache.kafka.clients.consumer.RoundRobinAssignor";
const COOPERATIVE_STICKY: &str = "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";

pub fn protocol_flags(protocol: Protocol) -> ProtocolFlags {
    let classic = |assignor: &'static str, static_membership: bool| ProtocolFlags {
        group_protocol: "classic",
        assignment_strategy: Some(assignor),
        remote_assignor: None,
        static_membership,
    };
    match protocol {
        Protocol::EagerRange => classic(RANGE, false),
        Protocol::EagerRoundrobin => classic(ROUNDROBIN, false),
        Protocol::CooperativeSticky => classic(COOPERATIVE_STICKY, false),
        Protocol::StaticEager => classic(RANGE, true),
        Protocol::StaticCooperative => classic(COOPERATIVE_STICKY, true),
        // KIP-848: the broker assigns; the client only heartbeats.
        Protocol::Consumer => ProtocolFlags {
            group_protocol: "consumer",
            assignment_strategy: None,
            remote_assignor: None,
            static_membership: false,
        },
    }
}

/// The driver to launch: a program and leading arguments; protocol flags are appended.
#[derive(Debug, Clone)]
pub struct DriverCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl DriverCommand {
    /// Parses `--driver "CMD ARGS"` with shell quoting rules.
    pub fn parse(spec: &str) -> Result<Self> {
        let words = shell_words::split(spec)
            .map_err(|e| anyhow::anyhow!("cannot parse --driver {spec:?}: {e}"))?;
        let Some((program, args)) = words.split_first() else {
            bail!("--driver is empty");
        };
        Ok(Self {
            program: program.into(),
            args: args.to_vec(),
        })
    }

    /// The command line, quoted as a shell would need it.
    pub fn display(&self) -> String {
        let program = self.program.display().to_string();
        shell_words::join(
            std::iter::once(program.as_str()).chain(self.args.iter().map(String::as_str)),
        )
    }

    /// The reference driver, found beside the running executable (or its parent, where
    /// test binaries live), or at $HARNESS_DRIVER_BIN.
    pub fn reference() -> Result<Self> {
        if let Ok(p) = std::env::var("HARNESS_DRIVER_BIN") {
            return Ok(Self {
                program: p.into(),
                args: vec![],
            });
        }
        let exe = std::env::current_exe()?;
        let dirs: Vec<&Path> = exe.ancestors().skip(1).take(2).collect();
        for dir in &dirs {
            let candidate = dir.join("verifiable-consumer");
            if candidate.is_file() {
                return Ok(Self {
                    program: candidate,
                    args: vec![],
                });
            }
        }
        bail!(
            "the reference driver 'verifiable-consumer' is not beside {} or in its parent: build it with \
             `cargo build --bins` or set HARNESS_DRIVER_BIN",
            exe.display()
        )
    }
}

/// Everything a member needs to join the group under test.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub name: String,
    pub bootstrap: String,
    pub topic: String,
    pub group: String,
    pub protocol: ProtocolFlags,
    pub session_timeout_ms: u64,
    /// Properties file with the remaining consumer settings.
    pub consumer_config: PathBuf,
}

impl MemberSpec {
    /// The driver protocol's flags, in VerifiableConsumer's spelling.
    pub fn flags(&self) -> Vec<String> {
        let mut f = vec![
            "--bootstrap-server".into(),
            self.bootstrap.clone(),
            "--topic".into(),
            self.topic.clone(),
            "--group-id".into(),
            self.group.clone(),
        ];
        if self.protocol.static_membership {
            f.extend([
                "--group-instance-id".into(),
                format!("{}-{}", self.group, self.name),
            ]);
        }
        if self.protocol.group_protocol != "classic" {
            f.extend([
                "--group-protocol".into(),
                self.protocol.group_protocol.into(),
            ]);
        }
        if let Some(a) = self.protocol.assignment_strategy {
            f.extend(["--assignment-strategy".into(), a.into()]);
        }
        if let Some(a) = self.protocol.remote_assignor {
            f.extend(["--group-remote-assignor".into(), a.into()]);
        }
        if self.protocol.group_protocol == "classic" {
            f.extend([
                "--session-timeout".into(),
                self.session_timeout_ms.to_string(),
            ]);
        }
        f.extend([
            "--reset-policy".into(),
            "earliest".into(),
            "--consumer.config".into(),
            self.consumer_config.display().to_string(),
        ]);
        f
    }
}
