//! Rule 8, members alive: a member whose process ends without the harness asking (any
//! exit code, or a signal the harness did not send) fails the run, named, with how it
//! ended and the last lines of its stderr.

use crate::check::model::Model;
use crate::check::verdict::{CheckResult, Violation};
use crate::history::{Rule, ViolationKind};

pub fn check(model: &Model) -> CheckResult {
    let mut violations = Vec::new();
    let mut ended = 0;
    for p in &model.processes {
        let Some(exit) = &p.exit else { continue };
        ended += 1;
        // Histories from before the harness recorded whether it asked: not judged. A
        // driver that said it cannot run the protocol exits as the protocol asks.
        if exit.requested != Some(false) || p.unsupported {
            continue;
        }
        let how = match (exit.code, exit.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(s)) => format!("signal {s}"),
            _ => "no status".into(),
        };
        let tail = if exit.stderr_tail.is_empty() {
            "its stderr was empty".to_owned()
        } else {
            format!("last lines of its stderr: {}", exit.stderr_tail.join(" | "))
        };
        violations.push(
            Violation::new(
                ViolationKind::MemberDied,
                format!(
                    "{} exited on its own at {} ({how}) while the harness still needed it; {tail}",
                    p.member, exit.ts
                ),
            )
            .member(&p.member)
            .fault(model.fault_at(exit.ts))
            .at(exit.ts),
        );
    }
    CheckResult::new(
        Rule::MembersAlive,
        violations,
        format!("{ended} member processes ended, each when the harness asked"),
    )
}
