//! `cargo xtask soak`: the long versions of scenarios whose short versions
//! run in `cargo xtask test` (the suite must stay well under an hour on a
//! 2-core machine; soaks take as long as they need).
//!
//! - `restarts [--boots N]`: the crash-loop scenario with N boots (default
//!   10 000) of a partition that dies right after each one: the heartbeat
//!   beside it must never skip, the hypervisor's heap must stay flat.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::process::step;
use crate::scenarios::hostile::{CRASH_LOOP_BOOTS, CRASH_LOOP_CONFIG, crash_loop_of};
use crate::{images, paths, prereqs, test};

const USAGE: &str = "usage: cargo xtask soak restarts [--boots N]";

pub fn command(args: &[String]) -> Result<ExitCode> {
    let boots: u64 = match args {
        [what] if what == "restarts" => 10_000,
        [what, flag, n] if what == "restarts" && flag == "--boots" => {
            n.parse().context("--boots needs a number")?
        }
        _ => bail!(USAGE),
    };
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
