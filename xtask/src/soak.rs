//! `cargo xtask soak`: the long versions of scenarios whose short versions
//! run in `cargo xtask test` (the suite must stay well under an hour on a
//! 2-core machine; soaks take as long as they need).
//!
//! - `restarts [--boots N]`: the crash-loop scenario with N boots (default
//!   10 000) of a partition that dies right after each one: the heartbeat
//!   beside it must never skip, the hypervisor's heap must stay flat.
//! - `power-cut [--cuts N]`: N power cuts (default 50; the suite makes 3)
//!   at random moments while both partitions write and flush their
//!   journals, each booting on the disk the last one left: every block
//!   flushed before a cut must be on the disk, nothing outside the
//!   partitions may change.
//! - `power-cut-linux [--cuts N]`: the same with the IVI's Linux writing,
//!   syncing, renaming and removing files on ext4 (default 50; the suite
//!   makes 1): after each cut its file system must check clean and hold
//!   every file synced before the cut.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::process::step;
use crate::scenario::Scenario;
use crate::scenarios::hostile::{CRASH_LOOP_BOOTS, CRASH_LOOP_CONFIG, crash_loop_of};
use crate::scenarios::linux::{IVI_CRASH_LOOP_CONFIG, IVI_CRASH_LOOP_RESTARTS, ivi_crash_loop_of};
use crate::scenarios::storage::{
    POWER_CUT_LINUX_CONFIG, power_cut, power_cut_linux, power_cut_seed,
};
use crate::{guests, images, paths, prereqs, test};

const USAGE: &str = "usage: cargo xtask soak restarts [--boots N] | ivi [--restarts N] | power-cut [--cuts N] | power-cut-linux [--cuts N]";

pub fn command(args: &[String]) -> Result<ExitCode> {
    let count = |flag: &str, args: &[String], default: u64| -> Result<u64> {
        match args {
            [] => Ok(default),
            [given, n] if given == flag => n.parse().context(format!("{flag} needs a number")),
            _ => bail!(USAGE),
        }
    };
    match args.split_first() {
        Some((what, rest)) if what == "restarts" => restarts(count("--boots", rest, 10_000)?),
        Some((what, rest)) if what == "power-cut" => {
            power_cuts("power-cut", power_cut, count("--cuts", rest, 50)?)
        }
        Some((what, rest)) if what == "power-cut-linux" => {
            guests::build_referenced(&[std::path::PathBuf::from(POWER_CUT_LINUX_CONFIG)])?;
            power_cuts(
                "power-cut-linux",
                power_cut_linux,
                count("--cuts", rest, 50)?,
            )
        }
        Some((what, rest)) if what == "ivi" => ivi_restarts(count("--restarts", rest, 100)?),
        _ => bail!(USAGE),
    }
}

/// `cuts` cuts of the series `cut` makes (`cut(n, seed)`: cut `n`).
fn power_cuts(name: &str, cut: fn(u64, u64) -> Scenario, cuts: u64) -> Result<ExitCode> {
    prereqs::ensure()?;
    images::build_guests()?;
    let seed = power_cut_seed();
    step(format!(
        "soak {name}: {cuts} cuts (seed {seed:#x}; POWER_CUT_SEED repeats them)"
    ));
    for n in 0..cuts {
        let scenario = cut(n, seed);
        let (_, result) = test::run_scenario(&scenario);
        if let Err(why) = result {
            println!("FAILED  soak {name}: cut {} of {cuts}", n + 1);
            for line in why.lines() {
                println!("    {line}");
            }
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("ok      soak {name}: {cuts} cuts");
    Ok(ExitCode::SUCCESS)
}

/// `config` (a scenario config saying `from`) with `from` replaced by
/// `to`, written to target/soak/<name>: its path, for a scenario.
fn config_with(config: &str, from: &str, to: &str, name: &str) -> Result<&'static str> {
    let template = paths::root().join(config);
    let text = std::fs::read_to_string(&template)
        .with_context(|| format!("cannot read {}", template.display()))?;
    if !text.contains(from) {
        bail!("{config} no longer says `{from}`");
    }
    let dir = paths::target_dir().join("soak");
    paths::create_dir(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, text.replace(from, to))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_string_lossy().into_owned().leak())
}

/// Runs one soak scenario and says how it went.
fn judge(what: &str, scenario: &crate::scenario::Scenario) -> ExitCode {
    let (duration, result) = test::run_scenario(scenario);
    match result {
        Ok(()) => {
            println!("ok      soak {what} in {:.1}s", duration.as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("FAILED  soak {what} ({:.1}s)", duration.as_secs_f64());
            for line in why.lines() {
                println!("    {line}");
            }
            ExitCode::FAILURE
        }
    }
}

fn ivi_restarts(restarts: u64) -> Result<ExitCode> {
    prereqs::ensure()?;
    let config = config_with(
        IVI_CRASH_LOOP_CONFIG,
        &format!("ivi.restarts={IVI_CRASH_LOOP_RESTARTS}"),
        &format!("ivi.restarts={restarts}"),
        &format!("ivi-crashloop-{restarts}.toml"),
    )?;
    images::build_guests()?;
    guests::build_referenced(&[std::path::PathBuf::from(config)])?;
    step(format!(
        "soak ivi: {restarts} restarts of the IVI ({config})"
    ));
    Ok(judge(
        &format!("ivi: {restarts} restarts"),
        &ivi_crash_loop_of(config, restarts),
    ))
}

fn restarts(boots: u64) -> Result<ExitCode> {
    if boots < 2 {
        bail!("--boots: at least 2");
    }
    prereqs::ensure()?;
    images::build_guests()?;
    let config = config_with(
        CRASH_LOOP_CONFIG,
        &format!("boots={CRASH_LOOP_BOOTS}"),
        &format!("boots={boots}"),
        &format!("crashloop-{boots}.toml"),
    )?;
    step(format!("soak restarts: {boots} boots ({config})"));
    Ok(judge(
        &format!("restarts: {boots} boots"),
        &crash_loop_of(config, boots),
    ))
}
