//! `junit.xml` for a matrix or a chaos session: one test case per cell or run, so CI
//! systems show each as a test. Violations are the failure text; a skipped cell is
//! skipped; a known deviation or client finding passes with a property saying so.

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::check::Outcome;

/// One cell or run, as a test case.
pub struct Case {
    pub name: String,
    pub classname: String,
    pub time_s: f64,
    pub outcome: Outcome,
    /// Why it is not a pass (the violations, the skip reason, the deviations).
    pub reason: String,
    /// Where its reports are.
    pub report: String,
}

/// The JUnit XML of one suite named `name`.
pub fn render(name: &str, cases: &[Case]) -> Result<String> {
    let mut suite = TestSuite::new(name);
    for c in cases {
        let status = match c.outcome {
            Outcome::Pass | Outcome::KnownDeviation | Outcome::ClientFinding => {
                TestCaseStatus::success()
            }
            Outcome::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(c.reason.clone());
                s
            }
            Outcome::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(first_line(&c.reason));
                s.set_description(c.reason.clone());
                s
            }
        };
        let mut case = TestCase::new(c.name.clone(), status);
        case.set_classname(c.classname.clone());
        case.set_time(std::time::Duration::from_secs_f64(c.time_s.max(0.0)));
        case.add_property(Property::new("outcome", c.outcome.as_str()));
        case.add_property(Property::new("report", c.report.clone()));
        if matches!(c.outcome, Outcome::KnownDeviation | Outcome::ClientFinding) {
            case.add_property(Property::new("waived", c.reason.clone()));
        }
        suite.add_test_case(case);
    }
    let mut report = Report::new(name);
    report.add_test_suite(suite);
    report.to_string().context("cannot render the JUnit report")
}

fn first_line(s: &str) -> String {
    s.split("; ")
        .next()
        .unwrap_or(s)
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_junit_statuses() {
        let case = |name: &str, outcome| Case {
            name: name.into(),
            classname: "matrix.mock".into(),
            time_s: 1.5,
            outcome,
            reason: format!("{name} because; more"),
            report: format!("r/{name}"),
        };
        let xml = render(
            "matrix",
            &[
                case("pass", Outcome::Pass),
                case("fail", Outcome::Fail),
                case("skipped", Outcome::Skipped),
                case("deviation", Outcome::KnownDeviation),
            ],
        )
        .unwrap();
        assert!(xml.contains("tests=\"4\""), "{xml}");
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(
            xml.contains("disabled=\"1\"") && xml.contains("<skipped"),
            "{xml}"
        );
        assert!(xml.contains("<failure message=\"fail because\""), "{xml}");
        assert!(
            xml.contains("name=\"waived\" value=\"deviation because; more\""),
            "{xml}"
        );
    }
}
