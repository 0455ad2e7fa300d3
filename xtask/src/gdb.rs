//! `cargo xtask gdb [--config FILE] [--partition NAME] [--batch FILE]`: the
//! system under QEMU with its gdb stub, and Debian's `gdb-multiarch`
//! attached with the right symbols.
//!
//! Every core is one gdb thread (core N is thread N + 1). Without
//! `--partition` the symbols are the hypervisor's ELF (`target/hv/<config
//! stem>.elf`); with it, the partition's own: a bare-metal partition's ELF
//! (its image `@/<bin>.img` was made from `<bin>`), or a Linux partition's
//! `vmlinux` beside its `Image` if there is one (Debian's kernel has none:
//! then no symbols). Only one set: the hypervisor and the bare-metal
//! partitions are all linked at 0x40080000, the hypervisor in its EL2
//! address space and each partition in its own, so one address means
//! different code on different cores.
//!
//! For the same reason a plain `break` in a partition also stops wherever
//! that address runs elsewhere. The session defines `pbreak LOCATION`: a
//! breakpoint that stops only at EL1 on the partition's cores. While gdb
//! holds the machine every core stops (QEMU's stub is all-stop); on
//! `continue` they all go on.
//!
//! QEMU's serial console goes to `target/gdb/<config stem>.console.log`
//! (gdb has the terminal), sound to `target/gdb/<output>.wav`. With `--batch FILE` gdb runs the commands in FILE
//! after attaching and exits; QEMU is stopped when gdb exits either way.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::board::{self, Board};
use crate::process::{self, step};
use crate::qemu::{self, AudioSink, MachineChanges, Qemu};
use crate::{build, images, paths, prereqs};

const USAGE: &str = "usage: cargo xtask gdb [--config FILE] [--partition NAME] [--batch FILE]";

/// Debian's multi-architecture gdb.
pub const GDB: &str = "gdb-multiarch";

/// `cargo xtask gdb ...`.
pub fn command(args: &[String]) -> Result<()> {
    let mut config = None;
    let mut partition = None;
    let mut batch = None;
    let mut args = crate::cli::Options::new(args, USAGE);
    while let Some(option) = args.next_option() {
        match option {
            "--config" => config = Some(paths::absolute_existing(Path::new(args.value(option)?))?),
            "--partition" => partition = Some(args.value(option)?.to_owned()),
            "--batch" => batch = Some(paths::absolute_existing(Path::new(args.value(option)?))?),
            _ => return Err(args.unexpected(option)),
        }
    }
    let config = match config {
        Some(config) => config,
        None => paths::absolute_existing(&paths::root().join(paths::DEFAULT_CONFIG))?,
    };
    ensure_gdb()?;
    let image = build::run(&config, images::Profile::Development)?;
    let symbols = Symbols::for_config(&config, partition.as_deref())?;
    let port = free_port()?;
    let board = Board::load(&board::name_for_config(&config)?)?;
    let system = qemu::system_of(&config)?;
    let dir = paths::target_dir().join("gdb");
    paths::create_dir(&dir)?;
    // As `run` has them, headless; sound is recorded.
    let changes = MachineChanges {
        disk: crate::disk::for_board(&board.name, false)?,
        displays: qemu::displays_in(&system),
        audio: qemu::audio_in(&system, |name| {
            AudioSink::Wav(dir.join(format!("{name}.wav")))
        }),
        gdb_port: Some(port),
        ..Default::default()
    };
    let stem = config.file_stem().unwrap_or_default().to_string_lossy();
    let console = dir.join(format!("{stem}.console.log"));
    let log = std::fs::File::create(&console)
        .with_context(|| format!("cannot create {}", console.display()))?;
    let cmd = qemu::command(&board, &image, &changes)?;
    let text = cmd.text().to_string();
    println!("$ {text}");
    let mut command = cmd.into_command();
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut qemu = Qemu::spawn(command, &text)?;
    step(format!(
        "QEMU's console goes to {} (tail -f it); gdb: {}",
        paths::display(&console),
        symbols.describe()
    ));
    let script = dir.join(format!("{stem}.gdb"));
    std::fs::write(&script, symbols.script(port))
        .with_context(|| format!("cannot write {}", script.display()))?;
    let mut gdb = Command::new(GDB);
    gdb.arg("-q").arg("-x").arg(&script);
    if let Some(batch) = &batch {
        gdb.arg("-batch").arg("-x").arg(batch);
    }
    let status = gdb.status().map_err(|e| process::spawn_error(GDB, e))?;
    qemu.stop(std::time::Duration::from_secs(2));
    if !status.success() {
        bail!("{GDB} exited with {status}");
    }
    Ok(())
}

/// Runs `commands` in a batch gdb session attached to the QEMU gdb stub at
/// `port`, with `symbols`; returns what gdb printed (stdout and stderr).
pub fn batch(symbols: &Symbols, port: u16, commands: &str) -> Result<String> {
    let dir = paths::target_dir().join("gdb");
    paths::create_dir(&dir)?;
    let script = dir.join(format!("batch-{port}.gdb"));
    std::fs::write(&script, format!("{}{commands}", symbols.script(port)))
        .with_context(|| format!("cannot write {}", script.display()))?;
    let out = Command::new(GDB)
        .args(["-q", "-batch", "-x"])
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| process::spawn_error(GDB, e))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

/// `gdb-multiarch`, installed with apt as root when missing.
pub fn ensure_gdb() -> Result<()> {
    prereqs::ensure_package(GDB, GDB, || process::on_path(GDB))
}

/// A TCP port on the loopback interface nobody listens on now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free TCP port")?;
    Ok(listener.local_addr()?.port())
}

/// What gdb loads, and on which cores a partition runs.
#[derive(Debug, PartialEq)]
pub struct Symbols {
    /// The ELF whose symbols are loaded, if any.
    elf: Option<PathBuf>,
    /// Whose symbols they are (for messages).
    what: String,
    /// The partition's cores (gdb threads are cores + 1); none for the
    /// hypervisor.
    cpus: Vec<u64>,
}

impl Symbols {
    /// The symbols for `partition` of `config`, or the hypervisor's.
    pub fn for_config(config: &Path, partition: Option<&str>) -> Result<Symbols> {
        let Some(name) = partition else {
            let stem = config.file_stem().unwrap_or_default().to_string_lossy();
            let elf = paths::hv_dir().join(format!("{stem}.elf"));
            return Ok(Symbols {
                elf: Some(elf),
                what: "the hypervisor".into(),
                cpus: Vec::new(),
            });
        };
        let system = qemu::system_of(config)?;
        let Some(p) = system.partitions.iter().find(|p| p.name == name) else {
            let names: Vec<&str> = system.partitions.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "{} has no partition {name:?} (it has {})",
                paths::display(config),
                names.join(", ")
            );
        };
        Ok(Symbols {
            elf: partition_elf(&p.image),
            what: format!("partition {name}"),
            cpus: p.cpus.clone(),
        })
    }

    /// One line for people: what is loaded.
    pub fn describe(&self) -> String {
        match &self.elf {
            Some(elf) => format!("symbols of {} from {}", self.what, paths::display(elf)),
            None => format!(
                "no symbols for {} (a Linux partition needs a vmlinux beside its Image)",
                self.what
            ),
        }
    }

    /// The gdb commands that load the symbols, attach to the stub at
    /// `port` and define `pbreak`.
    pub fn script(&self, port: u16) -> String {
        let mut s = String::from("set pagination off\nset confirm off\nset architecture aarch64\n");
        if let Some(elf) = &self.elf {
            s.push_str(&format!("file {}\n", elf.display()));
        }
        s.push_str(&format!("target remote 127.0.0.1:{port}\n"));
        // EL1 (CurrentEL in PSTATE bits 3:2), on one of the cores.
        let cores = if self.cpus.is_empty() {
            "1".to_string()
        } else {
            self.cpus
                .iter()
                .map(|c| format!("$_thread == {}", c + 1))
                .collect::<Vec<_>>()
                .join(" || ")
        };
        s.push_str(&format!(
            "define pbreak\n  break $arg0\n  condition $bpnum ($cpsr & 0xc) == 4 && ({cores})\nend\n\
             document pbreak\nA breakpoint at LOCATION that stops only when {} runs it (EL1{}).\nend\n",
            self.what,
            if self.cpus.is_empty() {
                String::new()
            } else {
                format!(", threads {}", self.cpus.iter().map(|c| (c + 1).to_string()).collect::<Vec<_>>().join(", "))
            }
        ));
        s
    }
}

/// The ELF a partition image was made from: `target/partitions/<bin>.img`
/// comes from the guest build's `<bin>`; a Linux `Image` from the `vmlinux`
/// beside it, if there is one.
fn partition_elf(image: &Path) -> Option<PathBuf> {
    let stem = image.file_stem()?.to_str()?;
    if image.extension().is_some_and(|e| e == "img") {
        let elf = paths::target_dir()
            .join(paths::GUEST_TARGET)
            .join("release")
            .join(stem);
        return elf.is_file().then_some(elf);
    }
    let vmlinux = image.with_file_name("vmlinux");
    vmlinux.is_file().then_some(vmlinux)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_attaches_and_limits_pbreak_to_the_partition() {
        let symbols = Symbols {
            elf: Some(PathBuf::from("/x/cluster")),
            what: "partition cluster".into(),
            cpus: vec![1, 3],
        };
        let script = symbols.script(4321);
        assert!(script.contains("file /x/cluster\n"));
        assert!(script.contains("target remote 127.0.0.1:4321\n"));
        assert!(script.contains("($cpsr & 0xc) == 4 && ($_thread == 2 || $_thread == 4)"));
        let none = Symbols {
            elf: None,
            what: "partition ivi".into(),
            cpus: vec![2],
        };
        assert!(!none.script(1).contains("file "));
        assert!(none.describe().contains("no symbols"));
    }

    #[test]
    fn partition_elves() {
        let elf = partition_elf(Path::new("/t/partitions/cluster.img"))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
        // Built or not, it is the guest build's `cluster`.
        assert!(elf.is_none() || elf.as_deref() == Some("cluster"));
        assert_eq!(partition_elf(Path::new("/nowhere/ivi/Image")), None);
    }
}
