//! `cargo xtask test [FILTER]`: host unit tests, invalid configs, QEMU
//! scenarios. Each result is printed as it finishes; the last line is
//! `N passed, M failed`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use regex::Regex;

use crate::board::{self, Board};
use crate::paths;
use crate::process::{Cmd, step};
use crate::qemu;
use crate::scenario::Scenario;
use crate::{check_config, guests, images, prereqs, scenarios};

/// Serial-log lines shown for a failed scenario.
const LOG_TAIL: usize = 30;

pub fn run(filter: Option<&str>) -> Result<ExitCode> {
    prereqs::ensure()?;
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    let mut report = Report::default();

    host_tests(&mut report, filter);

    let invalid: Vec<PathBuf> = invalid_configs()
        .into_iter()
        .filter(|p| selected(&paths::display(p)))
        .collect();
    let scenarios: Vec<Scenario> = scenarios::all()
        .into_iter()
        .filter(|s| selected(&format!("qemu/{}", s.name)))
        .collect();

    let configs: Vec<PathBuf> = (invalid.iter().cloned())
        .chain(scenarios.iter().map(|s| paths::root().join(s.config)))
        .collect();
    if (!invalid.is_empty() || !scenarios.is_empty())
        && let Err(e) = images::build_guests().and_then(|_| guests::build_referenced(&configs))
    {
        let reason = format!("the guest images did not build: {e:#}");
        for config in &invalid {
            report.record(&paths::display(config), Duration::ZERO, Err(reason.clone()));
        }
        for scenario in &scenarios {
            let name = format!("qemu/{}", scenario.name);
            report.record(&name, Duration::ZERO, Err(reason.clone()));
        }
        return Ok(report.finish());
    }

    if !invalid.is_empty() {
        step(format!("Invalid configs ({})", invalid.len()));
    }
    for config in &invalid {
        let started = Instant::now();
        let result = invalid_config(config);
        report.record(&paths::display(config), started.elapsed(), result);
    }

    for (name, duration, result) in guests::tests(&selected) {
        report.record(&name, duration, result);
    }

    for scenario in &scenarios {
        let name = format!("qemu/{}", scenario.name);
        step(format!("{name}: {}", scenario.config));
        let (duration, result) = run_scenario(scenario);
        report.record(&name, duration, result);
    }

    Ok(report.finish())
}

/// Tallies results and prints each as it comes.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
    failed_names: Vec<String>,
}

impl Report {
    fn record(&mut self, name: &str, duration: Duration, result: Result<(), String>) {
        let seconds = duration.as_secs_f64();
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("ok      {name} ({seconds:.1}s)");
            }
            Err(why) => {
                self.failed += 1;
                self.failed_names.push(name.to_string());
                println!("FAILED  {name} ({seconds:.1}s)");
                for line in why.lines() {
                    println!("    {line}");
                }
            }
        }
    }

    /// Prints the failures and, as the very last line, the totals.
    fn finish(self) -> ExitCode {
        println!();
        if !self.failed_names.is_empty() {
            println!("failed:");
            for name in &self.failed_names {
                println!("    {name}");
            }
        }
        if self.passed + self.failed == 0 {
            println!("no test was selected");
        }
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed > 0 || self.passed == 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Host unit tests through `cargo test`, counted from libtest's summary
/// lines. A `cargo test` that fails without a failing test (it did not
/// compile, or a test binary crashed) counts as one failure.
fn host_tests(report: &mut Report, filter: Option<&str>) {
    let runs = [
        (
            "host: config, shared-devices, xtask, ivi-tool",
            "test -p config -p shared-devices -p xtask -p ivi-tool",
        ),
        // Their binaries are bare-metal only; their libraries are
        // host-testable.
        (
            "host: hypervisor, testkit, cluster (--lib)",
            "test -p hypervisor -p testkit -p cluster --lib",
        ),
    ];
    let summary = Regex::new(r"^test result: \w+\. (\d+) passed; (\d+) failed;").unwrap();
    for (label, args) in runs {
        step(label);
        let mut cmd = Cmd::cargo().args(args.split_whitespace());
        if let Some(filter) = filter {
            cmd = cmd.args(["--", filter]);
        }
        println!("$ {}", cmd.text());
        let text = cmd.text().to_string();
        let started = Instant::now();
        let mut command = cmd.into_command();
        command.stdout(Stdio::piped());
        let (passed, failed, status) = match command.spawn() {
            Err(e) => (0, 0, Err(crate::process::spawn_error(&text, e).to_string())),
            Ok(mut child) => {
                let (mut passed, mut failed) = (0, 0);
                let stdout = child.stdout.take().expect("stdout is piped");
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    println!("{line}");
                    if let Some(c) = summary.captures(&line) {
                        passed += c[1].parse::<usize>().unwrap_or(0);
                        failed += c[2].parse::<usize>().unwrap_or(0);
                    }
                }
                let status = match child.wait() {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!("`{text}` failed ({s})")),
                    Err(e) => Err(format!("`{text}`: {e}")),
                };
                (passed, failed, status)
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        report.passed += passed;
        report.failed += failed;
        match status {
            Ok(()) => println!("ok      {label}: {passed} passed, {failed} failed ({seconds:.1}s)"),
            Err(why) => {
                println!("FAILED  {label}: {passed} passed, {failed} failed ({seconds:.1}s)");
                println!("    {why}");
                if failed == 0 {
                    report.failed += 1;
                }
                report.failed_names.push(label.to_string());
            }
        }
    }
}

/// `config/<board>/invalid/*.toml`, sorted.
fn invalid_configs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(boards) = std::fs::read_dir(paths::root().join("config")) else {
        return files;
    };
    for board in boards.flatten() {
        let Ok(entries) = std::fs::read_dir(board.path().join("invalid")) else {
            continue;
        };
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml")),
        );
    }
    files.sort();
    files
}

/// An invalid config's first line, `# expect: <line>:<col>: <substring>`.
struct Expected {
    line: u32,
    col: u32,
    substring: String,
}

fn parse_expected(text: &str) -> Option<Expected> {
    let first = text.lines().next()?;
    let rest = first
        .strip_prefix('#')?
        .trim_start()
        .strip_prefix("expect:")?;
    let mut parts = rest.trim_start().splitn(3, ':');
    let line = parts.next()?.trim().parse().ok()?;
    let col = parts.next()?.trim().parse().ok()?;
    let substring = parts.next()?.trim().to_string();
    Some(Expected {
        line,
        col,
        substring,
    })
}

/// The config must be refused with a diagnostic at the expected place that
/// contains the expected text.
fn invalid_config(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let Some(expected) = parse_expected(&text) else {
        return Err("the first line is not `# expect: <line>:<col>: <substring>`".to_string());
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let location = format!("{name}:{}:{}:", expected.line, expected.col);
    match check_config::check(path) {
        Ok(_) => Err(format!(
            "accepted; expected an error at {location} containing {:?}",
            expected.substring
        )),
        Err(diagnostics) => {
            let hit = diagnostics.iter().any(|d| {
                d.find(&location)
                    .is_some_and(|at| d[at + location.len()..].contains(&expected.substring))
            });
            if hit {
                Ok(())
            } else {
                let mut why = format!(
                    "no diagnostic at {location} containing {:?}; got:",
                    expected.substring
                );
                for d in &diagnostics {
                    why.push_str("\n  ");
                    why.push_str(d);
                }
                Err(why)
            }
        }
    }
}

/// Builds the scenario's hypervisor image, boots it and judges the console.
/// Returns how long QEMU ran.
pub fn run_scenario(scenario: &Scenario) -> (Duration, Result<(), String>) {
    let config = paths::root().join(scenario.config);
    if !config.is_file() {
        return (
            Duration::ZERO,
            Err(format!("{} does not exist", scenario.config)),
        );
    }
    let prepared = images::build_hypervisor_as(&config, scenario.profile).and_then(|image| {
        let board = Board::load(&board::name_for_config(&config)?)?;
        qemu::command(&board, &image, &scenario.hypervisor_machine(&config)?)
    });
    let cmd = match prepared {
        Ok(cmd) => cmd,
        Err(e) => return (Duration::ZERO, Err(format!("{e:#}"))),
    };
    let log = paths::test_logs_dir().join(format!("{}.log", scenario.name));
    if let Err(e) = paths::create_dir(&paths::test_logs_dir()) {
        return (Duration::ZERO, Err(format!("{e:#}")));
    }
    let text = cmd.text().to_string();
    println!("$ {text}");
    let started = Instant::now();
    let outcome = match scenario.run(cmd.into_command(), &text, &log) {
        Ok(outcome) => outcome,
        Err(e) => return (started.elapsed(), Err(format!("{e:#}"))),
    };
    if let Some(report) = &outcome.report {
        println!("    {report}");
    }
    if outcome.passed() {
        return (outcome.duration, Ok(()));
    }
    let mut why = outcome.failures.join("\n");
    let tail = outcome.lines.len().saturating_sub(LOG_TAIL);
    why.push_str(&format!(
        "\nQEMU: {text}\nserial log {} ({} lines; the last {}):",
        paths::display(&log),
        outcome.lines.len(),
        outcome.lines.len() - tail
    ));
    for line in &outcome.lines[tail..] {
        why.push_str("\n  | ");
        why.push_str(line);
    }
    (outcome.duration, Err(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_header() {
        let e = parse_expected("# expect: 12:5: overlaps partition `ivi`\n[x]\n").unwrap();
        assert_eq!((e.line, e.col), (12, 5));
        assert_eq!(e.substring, "overlaps partition `ivi`");
        let e = parse_expected("#expect: 3:1: a: b").unwrap();
        assert_eq!(e.substring, "a: b");
        assert!(parse_expected("[x]\n# expect: 1:1: y").is_none());
        assert!(parse_expected("# expect: one:1: y").is_none());
    }
}
