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

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::process::step;
use crate::scenarios::hostile::{CRASH_LOOP_BOOTS, CRASH_LOOP_CONFIG, crash_loop_of};
use crate::scenarios::storage::{power_cut, power_cut_seed};
use crate::{images, paths, prereqs, test};

const USAGE: &str = "usage: cargo xtask soak restarts [--boots N] | power-cut [--cuts N]";

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
        Some((what, rest)) if what == "power-cut" => power_cuts(count("--cuts", rest, 50)?),
        _ => bail!(USAGE),
    }
}

fn power_cuts(cuts: u64) -> Result<ExitCode> {
    prereqs::ensure()?;
    images::build_guests()?;
    let seed = power_cut_seed();
    step(format!(
        "soak power-cut: {cuts} cuts (seed {seed:#x}; POWER_CUT_SEED repeats them)"
    ));
    for cut in 0..cuts {
        let scenario = power_cut(cut, seed);
        let (_, result) = test::run_scenario(&scenario);
        if let Err(why) = result {
            println!("FAILED  soak power-cut: cut {} of {cuts}", cut + 1);
            for line in why.lines() {
                println!("    {line}");
            }
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("ok      soak power-cut: {cuts} cuts");
    Ok(ExitCode::SUCCESS)
}

fn restarts(boots: u64) -> Result<ExitCode> {
    if boots < 2 {
        bail!("--boots: at least 2");
    }
    prereqs::ensure()?;
    images::build_guests()?;
    let template = paths::root().join(CRASH_LOOP_CONFIG);
    let text = std::fs::read_to_string(&template)
        .with_context(|| format!("cannot read {}", template.display()))?;
    let from = format!("boots={CRASH_LOOP_BOOTS}");
    if !text.contains(&from) {
        bail!("{CRASH_LOOP_CONFIG} no longer says `{from}`");
    }
    let dir = paths::target_dir().join("soak");
    paths::create_dir(&dir)?;
    let config = dir.join(format!("crashloop-{boots}.toml"));
    std::fs::write(&config, text.replace(&from, &format!("boots={boots}")))
        .with_context(|| format!("cannot write {}", config.display()))?;
    let config: &'static str = config.to_string_lossy().into_owned().leak();
    step(format!("soak restarts: {boots} boots ({config})"));
    let scenario = crash_loop_of(config, boots);
    let (duration, result) = test::run_scenario(&scenario);
    match result {
        Ok(()) => {
            println!(
                "ok      soak restarts: {boots} boots in {:.1}s",
                duration.as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("FAILED  soak restarts ({:.1}s)", duration.as_secs_f64());
            for line in why.lines() {
                println!("    {line}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
