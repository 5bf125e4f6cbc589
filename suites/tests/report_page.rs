//! report.html in a real browser: a short crash run on the embedded broker, its page
//! rebuilt from the history, loaded in headless Chromium (Debian's `chromium` package)
//! with no console errors and one lane per partition, and a screenshot of it taken (in
//! the test's report dir; with `UPDATE_SCREENSHOT=1`, as docs/report.png for the README).
//! Offline: the page fetches nothing.
//!
//! Console errors are caught two ways, and both are first shown to catch a page that
//! does have errors (otherwise the check would prove nothing on this Chromium):
//! - Chromium's own log (`--enable-logging=stderr`): every console message shows as an
//!   `INFO:CONSOLE` line, uncaught exceptions included. The page has no script, so any
//!   console message at all is a failure.
//! - a probe script injected into a copy of the page records error events (scripts and
//!   failed resource loads), unhandled rejections and `console.error`/`console.warn`
//!   into a `<meta id="console-probe">` that `--dump-dom` brings back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use suites::{run_builtin, workspace};

/// Debian's chromium on PATH, or a failure saying how to get it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed (this test renders report.html in it): \
                 run `apt-get install -y chromium`"
            )
        })
}

/// What one headless Chromium run printed.
struct Output {
    stdout: String,
    stderr: String,
}

/// Runs headless Chromium on a local page with a throwaway profile, killing it if it
/// hangs.
fn headless(page: &Path, args: &[&str]) -> Output {
    let profile = tempfile::tempdir().expect("temp profile dir");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let (out, err) = (
        std::thread::spawn(move || read_all(out)),
        std::thread::spawn(move || read_all(err)),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = Output {
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    assert!(
        status.success(),
        "chromium failed ({status}) on {}:\n{}",
        page.display(),
        output.stderr
    );
    output
}

fn read_all(mut r: impl Read) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

const PROBE: &str = r#"<script>(function(){var errs=[];function rec(s){errs.push(String(s));}
window.addEventListener('error',function(e){rec(e.message?('error: '+e.message):('failed to load '+((e.target&&(e.target.src||e.target.href))||'a resource')));},true);
window.addEventListener('unhandledrejection',function(e){rec('unhandled rejection: '+e.reason);});
['error','warn'].forEach(function(k){var o=console[k];console[k]=function(){rec('console.'+k+': '+Array.prototype.join.call(arguments,' '));return o.apply(console,arguments);};});
window.addEventListener('load',function(){setTimeout(function(){var m=document.createElement('meta');m.id='console-probe';m.setAttribute('data-errors',String(errs.length));m.setAttribute('content',errs.join(' | '));document.head.appendChild(m);},0);});})();</script>"#;

/// Console messages in Chromium's log.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Errors the probe recorded in a copy of `html` (written next to `dir`), or why the
/// probe could not tell.
fn probed_errors(html: &str, dir: &Path, name: &str) -> Result<Vec<String>, String> {
    let probed = match html.find("<head>") {
        Some(i) => format!("{}{PROBE}{}", &html[..i + 6], &html[i + 6..]),
        None => return Err("the page has no <head>".into()),
    };
    let path = dir.join(name);
    std::fs::write(&path, probed).expect("write probed copy");
    let out = headless(&path, &["--dump-dom", "--virtual-time-budget=2000"]);
    let _ = std::fs::remove_file(&path);
    let Some(i) = out.stdout.find("<meta id=\"console-probe\"") else {
        return Err(format!(
            "the probe never reported (did the page load?):\n{}",
            out.stderr
        ));
    };
    let tag = &out.stdout[i..i + out.stdout[i..].find('>').unwrap_or(0)];
    let count: usize = attr(tag, "data-errors")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unreadable probe: {tag}"))?;
    let content = attr(tag, "content").unwrap_or_default();
    let mut errors: Vec<String> = content
        .split(" | ")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    errors.extend(console_lines(&out.stderr).iter().map(|l| l.to_string()));
    if count > 0 && errors.is_empty() {
        errors.push(format!("{count} error(s)"));
    }
    Ok(errors)
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[test]
fn report_page_renders_in_chromium_without_errors() {
    // Fail early, before the run, when there is no browser.
    chromium();
    let (run_verdict, dir) = run_builtin("crash", "eager-range", None, "report_page");

    // The page, rebuilt from the history as `harness check` would.
    let records = harness::history::read_history(&dir.join("history.jsonl")).expect("read history");
    let model = harness::check::Model::build(&records);
    let verdict = harness::check::check(&records);
    assert_eq!(
        verdict.outcome, run_verdict.outcome,
        "re-checking the history changed the verdict"
    );
    harness::report::write_page(&dir, &verdict, &model).expect("write report.html");
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).expect("read report.html");
    let partitions = model.partitions.len();
    assert_eq!(partitions, 6, "the crash scenario runs on six partitions");
    eprintln!(
        "report.html: {} bytes, {} partitions, outcome {} ({})",
        html.len(),
        partitions,
        verdict.outcome,
        page.display()
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page refers to something on the network"
    );
    assert!(html.len() < 2_000_000, "page of {} bytes", html.len());

    // The detectors must see errors where there are some.
    let bad = "<!DOCTYPE html><html><head><title>bad</title></head><body>\
               <script>console.error('planted'); notAFunction();</script>\
               <img src=\"missing.png\"></body></html>";
    let bad_path = dir.join("bad.html");
    std::fs::write(&bad_path, bad).expect("write bad page");
    let logged = headless(&bad_path, &["--dump-dom", "--virtual-time-budget=2000"]);
    assert!(
        console_lines(&logged.stderr)
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "chromium's log does not show console errors on this version; stderr:\n{}",
        logged.stderr
    );
    let caught = probed_errors(bad, &dir, "bad.probe.html").expect("probe on the bad page");
    assert!(
        caught.len() >= 3
            && caught.iter().any(|e| e.contains("notAFunction"))
            && caught.iter().any(|e| e.contains("missing.png")),
        "the probe missed planted errors: {caught:?}"
    );
    let _ = std::fs::remove_file(&bad_path);

    // The report itself: no console message in the log, nothing caught by the probe.
    let out = headless(&page, &["--dump-dom", "--virtual-time-budget=2000"]);
    let console = console_lines(&out.stderr);
    assert!(
        console.is_empty(),
        "report.html logged to the console:\n{}",
        console.join("\n")
    );
    let errors = probed_errors(&html, &dir, "report.probe.html").expect("probe on the report");
    assert!(errors.is_empty(), "report.html has errors: {errors:?}");

    // One lane per partition in the rendered DOM.
    let dom = out.stdout;
    assert!(dom.contains("<svg"), "no timeline in the DOM");
    assert_eq!(
        dom.matches("class=\"lane\"").count(),
        partitions,
        "lanes in the rendered DOM"
    );
    for tp in model.partitions.keys() {
        assert!(
            dom.contains(&format!("data-partition=\"{tp}\"")),
            "no lane for {tp}"
        );
    }

    // The screenshot; the README's is refreshed on request only, so that a test run
    // leaves the work tree clean.
    let png = if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        workspace().join("docs").join("report.png")
    } else {
        dir.join("report.png")
    };
    let _ = std::fs::remove_file(&png);
    let shot = format!("--screenshot={}", png.display());
    headless(&page, &[&shot, "--window-size=1400,1000"]);
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    assert!(
        bytes.len() > 20 * 1024,
        "screenshot of only {} bytes: a blank page?",
        bytes.len()
    );
    eprintln!("screenshot: {} ({} bytes)", png.display(), bytes.len());
}
