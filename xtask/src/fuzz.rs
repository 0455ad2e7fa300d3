//! `cargo xtask fuzz`: a short run of every cargo-fuzz target (the device
//! models in shared-devices/fuzz, the hypervisor's vGIC in
//! hypervisor/fuzz), as CI does on every change. The targets need the
//! nightly toolchain and cargo-fuzz, which are installed here when missing.

use anyhow::{Context, Result, bail};

use crate::process::{Cmd, on_path, step};

/// Every target, with the fuzz crate it is in, in the order they run.
const TARGETS: [(&str, &str); 10] = [
    ("shared-devices/fuzz", "virtio_blk"),
    ("shared-devices/fuzz", "virtio_gpu"),
    ("shared-devices/fuzz", "virtio_input"),
    ("shared-devices/fuzz", "virtio_snd"),
    ("shared-devices/fuzz", "sched"),
    ("shared-devices/fuzz", "gpt"),
    ("shared-devices/fuzz", "crash_record"),
    ("shared-devices/fuzz", "pl011"),
    ("shared-devices/fuzz", "sp805"),
    ("hypervisor/fuzz", "vgic"),
];

pub fn command(args: &[String]) -> Result<()> {
    let seconds = match args {
        [] => 20,
        [flag, n] if flag == "--seconds" => n.parse().context("--seconds needs a number")?,
        _ => bail!("usage: cargo xtask fuzz [--seconds N]"),
    };
    prerequisites()?;
    for (fuzz_dir, target) in TARGETS {
        step(format!("Fuzzing {target} for {seconds} s"));
        // The corpus (kept between runs, not in git), then the committed
        // seeds, if the target has any: libFuzzer reads every directory
        // and adds what it finds to the first.
        let corpus = format!("{fuzz_dir}/corpus/{target}");
        std::fs::create_dir_all(&corpus).with_context(|| format!("cannot create {corpus}"))?;
        let seeds = format!("{fuzz_dir}/seeds/{target}");
        let seeds = std::path::Path::new(&seeds).is_dir().then_some(seeds);
        nightly_cargo()
            .args(["fuzz", "run", "--fuzz-dir", fuzz_dir, target])
            .arg(&corpus)
            .args(seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-max_len=8192")
            .run()
            .with_context(|| {
                format!("fuzz target {target} found a problem (see {fuzz_dir}/artifacts/{target}/)")
            })?;
    }
    Ok(())
}

/// `cargo +nightly`, through rustup, not the cargo running xtask.
fn nightly_cargo() -> Cmd {
    Cmd::new("cargo")
        .arg("+nightly")
        .env_remove("RUSTUP_TOOLCHAIN")
}

fn prerequisites() -> Result<()> {
    let toolchains = Cmd::new("rustup").args(["toolchain", "list"]).read()?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        step("Installing the nightly toolchain (cargo-fuzz needs it)");
        Cmd::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .run()?;
    }
    if !on_path("cargo-fuzz") {
        step("Installing cargo-fuzz");
        Cmd::cargo()
            .args(["install", "cargo-fuzz", "--locked"])
            .run()?;
    }
    Ok(())
}
