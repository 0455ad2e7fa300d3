//! `cargo xtask`: build, run and test the hypervisor.
//!
//! One module per subcommand (`build`, `run`, `check_config`, `lint`,
//! `test`), helpers for the rest: `paths`, `process` (running programs),
//! `prereqs`, `board`, `images` (guest and hypervisor images), `guests`
//! (the Linux guests' kernel and initramfs), `disk` (GPT disk images),
//! `image` and `flash` (SD-card images and writing them, with `fat`),
//! `records` (crash records read back from a disk image),
//! `qemu`, `fuzz` (cargo-fuzz runs), `bench` (the storage and display benchmarks), `soak`
//! (long versions of scenarios), and
//! the scenario framework (`scenario`) with its scenarios (`scenarios`).

mod bench;
mod board;
mod build;
mod check_config;
mod cli;
mod disk;
mod fat;
mod flash;
mod fuzz;
mod gdb;
mod guests;
mod image;
mod images;
mod lint;
mod new_config;
mod paths;
mod prereqs;
mod process;
mod qemu;
mod qmp;
mod records;
mod run;
mod scenario;
mod scenarios;
mod soak;
mod test;
mod wav;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [--config FILE] [--release-profile production]
                                     check prerequisites, build the guest images,
                                     check the config, build the hypervisor image
                                     (target/hv/<config-stem>.bin); production:
                                     no console input, log at warnings
                                     (<config-stem>-production.bin)
  run [--config FILE] [--release-profile production] [-- ARGS...]
                                     build, then boot it in QEMU on this terminal
                                     with the board's disk attached and its
                                     displays in a window (headless without a
                                     graphical session); ARGS go to QEMU. Quit
                                     with Ctrl-A then X
  screenshot [--config FILE]         save the displays of the running `run` as
                                     PNGs in target/screens/
  touch X Y [--to X2 Y2] [--display NAME] [--config FILE]
                                     a finger on the touch panel of the running
                                     `run` at display pixel X,Y: a tap, or a
                                     drag to X2,Y2
  guests [--boot [-- ARGS...]]       build the Linux guests' kernel and initramfs
                                     (target/partitions/<guest>/); --boot then
                                     boots ivi on QEMU without the hypervisor
  disk [--fresh] [--board NAME]      write the board's GPT disk image if missing
                                     (target/disk/<board>.img; --fresh rewrites
                                     it) and print its partition table
  image [--board B] [--config FILE] [--release-profile production] [-o FILE]
                                     build, then write a flashable SD-card image:
                                     a FAT32 boot partition (Image, U-Boot's
                                     boot.scr) then the board's disk partitions
                                     (default target/image/<board>.img)
  new-config --board B [--partitions N] [--give-all-except PATH,...] [-o FILE]
                                     a starting config for the board from its
                                     device tree (RAM and cores split, its
                                     disk shared, devices offered to the last
                                     partition); it passes check-config
  gdb [--config FILE] [--partition NAME] [--batch FILE]
                                     boot under QEMU's gdb stub and attach
                                     gdb-multiarch with the hypervisor's symbols
                                     or the partition's (pbreak LOCATION stops
                                     in that partition only); the console goes
                                     to target/gdb/<config-stem>.console.log
  records [--disk IMAGE] [--area NAME]
                                     the crash records the hypervisor saved on a
                                     disk image (default target/disk/<board>.img,
                                     GPT partition hv-records), oldest first
  flash --device /dev/sdX [--image FILE] [--yes] [--force-not-removable]
        [--force-small]              write that image to a removable disk after
                                     checks and a confirmation, then verify it
  fuzz [--seconds N]                 run each cargo-fuzz target of the device side
                                     for N seconds (default 20)
  check-config FILE...               validate configs: a summary for a valid one,
                                     file:line:col: message for each error
  lint                               cargo fmt --check and clippy -D warnings,
                                     host and bare-metal targets
  test [FILTER]                      host unit tests, invalid configs, QEMU
                                     scenarios (those whose name contains FILTER)
  bench [--icount VALUE] [storage|display|boot|cpu]
                                     benchmarks under QEMU -icount (default
                                     shift=0): cluster disk latency alone and
                                     under IVI write load, IVI throughput
                                     mediated vs passed through; cluster
                                     flush-to-screen latency alone and under an
                                     IVI redrawing flat out, compositor cost,
                                     IVI frame rate mediated vs native; boot
                                     to the cluster's first frame and the
                                     IVI's userspace, vs native; CPU-bound
                                     kernels in a partition vs native
                                     (target/bench/results.json)
  soak restarts [--boots N]          the crash-loop scenario with N boots (default
                                     10 000) of a partition that dies after each
  soak ivi [--restarts N]            the IVI restarted N times (default 100),
                                     by reboot, panic, watchdog and a fault
  soak power-cut [--cuts N]          N power cuts (default 50) while both
                                     partitions write and flush journals
  help                               this text

FILE defaults to config/qemu-virt/default.toml.";

fn main() -> ExitCode {
    match dispatch(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: Vec<String>) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    match command.as_str() {
        "build" => {
            let (profile, rest) = profile_option(rest)?;
            let (config, extra) = config_option(&rest)?;
            no_extra(command, &extra)?;
            build::run(&config, profile)?;
        }
        "run" => {
            let (profile, rest) = profile_option(rest)?;
            let (config, extra) = config_option(&rest)?;
            run::run(&config, profile, &extra)?;
        }
        "screenshot" => {
            let (config, extra) = config_option(rest)?;
            no_extra(command, &extra)?;
            run::screenshot(&config)?;
        }
        "touch" => {
            // Its own arguments, and --config FILE among them.
            let mut own = Vec::new();
            let mut config = Vec::new();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                if a == "--config" {
                    config.push(a.clone());
                    config.extend(it.next().cloned());
                } else if a.starts_with("--config=") {
                    config.push(a.clone());
                } else {
                    own.push(a.clone());
                }
            }
            let (config, _) = config_option(&config)?;
            run::touch(&config, &own)?;
        }
        "check-config" => check_config::command(rest)?,
        "guests" => guests::command(rest)?,
        "disk" => disk::command(rest)?,
        "image" => image::command(rest)?,
        "gdb" => gdb::command(rest)?,
        "records" => records::command(rest)?,
        "new-config" => new_config::command(rest)?,
        "flash" => flash::command(rest)?,
        "fuzz" => fuzz::command(rest)?,
        "lint" => {
            no_extra(command, rest)?;
            lint::run()?;
        }
        "test" => {
            let filter = match rest {
                [] => None,
                [filter] if !filter.starts_with('-') => Some(filter.as_str()),
                _ => bail!("usage: cargo xtask test [FILTER]"),
            };
            return test::run(filter);
        }
        "bench" => return bench::command(rest),
        "soak" => return soak::command(rest),
        "help" | "-h" | "--help" => println!("{USAGE}"),
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `[--config FILE] [-- ARGS...]`: the config as an absolute path (the
/// default one when not given) and the arguments after `--`.
fn config_option(args: &[String]) -> Result<(PathBuf, Vec<String>)> {
    let mut config = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--" => return Ok((config_path(config)?, iter.cloned().collect())),
            "--config" => match iter.next() {
                Some(file) => config = Some(PathBuf::from(file)),
                None => bail!("--config needs a FILE"),
            },
            _ => match arg.strip_prefix("--config=") {
                Some(file) => config = Some(PathBuf::from(file)),
                None => bail!("unexpected argument `{arg}`\n\n{USAGE}"),
            },
        }
    }
    Ok((config_path(config)?, Vec::new()))
}

/// `--release-profile NAME` (before any `--`), and the other arguments.
fn profile_option(args: &[String]) -> Result<(images::Profile, Vec<String>)> {
    let mut profile = images::Profile::Development;
    let mut rest = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            rest.push(arg.clone());
            rest.extend(iter.cloned());
            break;
        }
        let name = match arg.strip_prefix("--release-profile=") {
            Some(name) => name,
            None if arg == "--release-profile" => iter
                .next()
                .ok_or_else(|| anyhow::anyhow!("--release-profile needs a NAME"))?,
            None => {
                rest.push(arg.clone());
                continue;
            }
        };
        profile = images::Profile::parse(name)?;
    }
    Ok((profile, rest))
}

fn config_path(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(path) => paths::absolute_existing(&path),
        None => paths::absolute_existing(&paths::root().join(paths::DEFAULT_CONFIG)),
    }
}

fn no_extra(command: &str, extra: &[String]) -> Result<()> {
    if extra.is_empty() {
        Ok(())
    } else {
        bail!("{command}: unexpected arguments {extra:?}\n\n{USAGE}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn release_profile_option() {
        let (profile, rest) = profile_option(&strings(&["--config", "a.toml"])).unwrap();
        assert_eq!(profile, images::Profile::Development);
        assert_eq!(rest, ["--config", "a.toml"]);
        let (profile, rest) = profile_option(&strings(&[
            "--release-profile",
            "production",
            "--config",
            "a.toml",
        ]))
        .unwrap();
        assert_eq!(profile, images::Profile::Production);
        assert_eq!(rest, ["--config", "a.toml"]);
        let (profile, _) = profile_option(&strings(&["--release-profile=production"])).unwrap();
        assert_eq!(profile, images::Profile::Production);
        // After `--` it is QEMU's.
        let (profile, rest) =
            profile_option(&strings(&["--", "--release-profile", "production"])).unwrap();
        assert_eq!(profile, images::Profile::Development);
        assert_eq!(rest, ["--", "--release-profile", "production"]);
        assert!(profile_option(&strings(&["--release-profile", "fast"])).is_err());
        assert!(profile_option(&strings(&["--release-profile"])).is_err());
    }
}
