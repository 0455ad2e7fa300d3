//! A starting config for a board, written from its device tree (`cargo
//! xtask new-config`): RAM split between the hypervisor and the
//! partitions, cores assigned with one kept as the service core, the
//! board's shared disk where it has one, and every device the hypervisor
//! does not own offered to the last partition, listed for the engineer to
//! pick from, or given as "all except" some.
//!
//! The result is checked like any config before it is returned, so what
//! this writes always passes `check-config`.

use std::fmt::Write as _;
use std::path::Path;

use crate::dtb::Board;
use crate::model::Region;
use crate::{Context, OwnedSystem, load_str};

/// What the hypervisor keeps of RAM: its image, stacks, page tables and
/// heap (as every config in the repository has it).
pub const HYPERVISOR_RAM: u64 = 128 << 20;
/// Partitions' RAM is a multiple of this (stage-2 block mappings).
pub const ALIGN: u64 = 2 << 20;
/// No partition gets more than this (the rest stays free, for the
/// engineer to give out): three of them and the hypervisor fit the 2 GiB
/// QEMU gives the boards, whatever RAM the board's device tree lists.
pub const MOST_RAM: u64 = 512 << 20;
/// The guest-physical address of every partition's RAM: where the
/// placeholder image (and every bare-metal test program) is linked.
pub const GUEST_RAM: u64 = 0x4000_0000;
/// The placeholder image each partition boots until it is replaced.
pub const PLACEHOLDER: &str = "@/hello.img";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConfig {
    pub board: String,
    /// Partitions, at least 1; the first is the safety partition.
    pub partitions: usize,
    /// Give the last partition every device except these (device-tree
    /// paths or aliases), instead of listing them for the engineer.
    pub all_except: Option<Vec<String>>,
    /// The board's shared disk, if it has one.
    pub disk: Option<BoardDisk>,
}

/// A disk the board has, for `[[storage]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardDisk {
    /// Its device-tree node.
    pub device: String,
    /// Its GPT partitions' names, in order: partition i gets the i-th.
    pub gpt: Vec<String>,
    /// Where its layout is described (for the comment).
    pub layout: String,
}

/// The config `options` asks for, as TOML text that passes the validator,
/// or why there is none.
pub fn new_config(ctx: &Context, options: &NewConfig) -> Result<String, String> {
    let board = Board::load(&ctx.boards_dir, &options.board)?;
    let plan = Plan::of(&board, options)?;
    // First with the last partition given everything: what the validator
    // resolves is the list of candidates to write.
    let probe = plan.text(options, &Candidates::Probe);
    let system = check(ctx, &probe)?;
    let last = system
        .partitions
        .last()
        .ok_or("the generated config has no partition")?;
    let candidates = match &options.all_except {
        Some(except) => Candidates::AllExcept(except.clone()),
        None => Candidates::Listed(
            last.devices
                .iter()
                .map(|d| {
                    let mmio = d
                        .regions
                        .iter()
                        .map(|r| format!("{:#x}+{:#x}", r.base, r.size))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let irqs = d
                        .interrupts
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    let what = if irqs.is_empty() {
                        format!("MMIO {mmio}")
                    } else {
                        format!("MMIO {mmio}, INTID {irqs}")
                    };
                    (d.path.clone(), what)
                })
                .collect(),
        ),
    };
    let text = plan.text(options, &candidates);
    check(ctx, &text)?;
    Ok(text)
}

/// Validates generated `text`; its system, or the diagnostics as one
/// message (a bug here, not the engineer's).
fn check(ctx: &Context, text: &str) -> Result<OwnedSystem, String> {
    load_str(Path::new("<new-config>"), text, ctx)
        .map(|loaded| loaded.system)
        .map_err(|diagnostics| {
            let mut why = String::from("the generated config does not pass its own check:");
            for d in diagnostics {
                let _ = write!(why, "\n  {d}");
            }
            why
        })
}

/// What the last partition's `devices` says.
enum Candidates {
    /// `all_except = []`, to find the candidates.
    Probe,
    /// Every candidate, commented out: (path, what it is).
    Listed(Vec<(String, String)>),
    AllExcept(Vec<String>),
}

/// Where everything goes.
struct Plan {
    dtb: String,
    console: String,
    hypervisor: Region,
    /// Per partition: its cores and its RAM (host).
    partitions: Vec<(Vec<usize>, Region)>,
    cores: usize,
}

impl Plan {
    fn of(board: &Board, options: &NewConfig) -> Result<Plan, String> {
        let n = options.partitions;
        if n == 0 {
            return Err("a config needs at least one partition".into());
        }
        let cores = board.cpus().len();
        if cores < n + 1 {
            return Err(format!(
                "board {} has {cores} core(s): at most {} partition(s), one core being the service core",
                options.board,
                cores.saturating_sub(1)
            ));
        }
        let ram = board
            .ram()
            .into_iter()
            .min_by_key(|r| r.base)
            .ok_or_else(|| {
                format!(
                    "board {}: its device tree has no memory node",
                    options.board
                )
            })?;
        let rest = ram.size.saturating_sub(HYPERVISOR_RAM);
        let each = (rest / n as u64 / ALIGN * ALIGN).min(MOST_RAM);
        if each < 16 << 20 {
            return Err(format!(
                "board {}: {} MiB of RAM leaves {} MiB for each of {n} partition(s) after the hypervisor's {} MiB",
                options.board,
                ram.size >> 20,
                each >> 20,
                HYPERVISOR_RAM >> 20
            ));
        }
        // Core 0 serves; the others are dealt out in runs, the last
        // partition taking what is left over.
        let per = (cores - 1) / n;
        let partitions = (0..n)
            .map(|i| {
                let first = 1 + i * per;
                let end = if i + 1 == n { cores } else { first + per };
                let base = ram.base + HYPERVISOR_RAM + each * i as u64;
                ((first..end).collect(), Region { base, size: each })
            })
            .collect();
        Ok(Plan {
            dtb: board.dtb.display().to_string(),
            console: console(board)?,
            hypervisor: Region {
                base: ram.base,
                size: HYPERVISOR_RAM,
            },
            partitions,
            cores,
        })
    }

    fn text(&self, options: &NewConfig, candidates: &Candidates) -> String {
        let n = self.partitions.len();
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# Written by `cargo xtask new-config --board {} --partitions {n}` from\n\
             # {}: a starting point. Check it with `cargo xtask check-config FILE`\n\
             # (`--explain` shows what it resolves to); docs/config.md has every key.\n\
             board = \"{}\"\n",
            options.board,
            self.dtb.rsplit('/').next().unwrap_or(&self.dtb),
            options.board
        );
        let _ = writeln!(
            t,
            "[hypervisor]\n\
             # The first {} MiB of RAM: the hypervisor's image, stacks, page\n\
             # tables and heap.\n\
             memory = {{ base = {}, size = {} }}\n\
             # The board's /chosen stdout-path: the console the partitions share.\n\
             console = \"{}\"\n",
            HYPERVISOR_RAM >> 20,
            hex(self.hypervisor.base),
            hex(self.hypervisor.size),
            self.console
        );
        if let Some(disk) = &options.disk {
            let _ = writeln!(
                t,
                "# The board's disk ({}), shared by the partitions through the\n\
                 # storage mediator, the safety partition first.\n\
                 [[storage]]\n\
                 name = \"disk0\"\n\
                 device = \"{}\"\n",
                disk.layout, disk.device
            );
        }
        let _ = writeln!(
            t,
            "# Core 0 is the service core (console, disk I/O, display composition);\n\
             # the board's {} cores are dealt out to the partitions.",
            self.cores
        );
        for (i, (cores, ram)) in self.partitions.iter().enumerate() {
            let (name, criticality, priority) = match i {
                0 => ("cluster".to_string(), "asil-b", 200),
                1 => ("ivi".to_string(), "qm", 10),
                _ => (format!("partition{}", i + 1), "qm", 10 - i.min(9)),
            };
            let cpus: Vec<String> = cores.iter().map(usize::to_string).collect();
            let _ = writeln!(
                t,
                "\n[[partition]]\n\
                 name = \"{name}\"\n\
                 criticality = \"{criticality}\"\n\
                 priority = {priority}\n\
                 cpus = [{}]\n\
                 # A placeholder that says hello on the console: put your image here.\n\
                 image = \"{PLACEHOLDER}\"\n\
                 memory = [ {{ guest = {}, host = {}, size = {} }} ]",
                cpus.join(", "),
                hex(GUEST_RAM),
                hex(ram.base),
                hex(ram.size)
            );
            if let Some(gpt) = options.disk.as_ref().and_then(|d| d.gpt.get(i)) {
                let _ = writeln!(t, "disks = [ {{ storage = \"disk0\", gpt = \"{gpt}\" }} ]");
            }
            if i + 1 == n {
                devices(&mut t, candidates);
            }
        }
        t
    }
}

/// The last partition's `devices`.
fn devices(t: &mut String, candidates: &Candidates) {
    let quoted = |list: &[String]| {
        list.iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match candidates {
        Candidates::Probe => {
            let _ = writeln!(t, "devices = {{ all_except = [] }}");
        }
        Candidates::AllExcept(except) => {
            let _ = writeln!(
                t,
                "# Every device nobody else has, except these (check-config's\n\
                 # summary lists what that gives and what it leaves out).\n\
                 devices = {{ all_except = [{}] }}",
                quoted(except)
            );
        }
        Candidates::Listed(list) => {
            let _ = writeln!(
                t,
                "# Passthrough candidates: every device the hypervisor and the other\n\
                 # partitions leave. Uncomment what this partition should own (a\n\
                 # device that does DMA can reach all memory without an SMMU), or\n\
                 # write `devices = {{ all_except = [...] }}`.\n\
                 devices = ["
            );
            for (path, what) in list {
                let _ = writeln!(t, "    # \"{path}\",  # {what}");
            }
            let _ = writeln!(t, "]");
        }
    }
}

/// The board's console: `/chosen/stdout-path` without its options.
fn console(board: &Board) -> Result<String, String> {
    let chosen = board
        .nodes
        .iter()
        .find(|n| n.path == "/chosen")
        .ok_or("the device tree has no /chosen (which names the console)")?;
    let path = chosen
        .props
        .get("stdout-path")
        .and_then(|v| std::str::from_utf8(v.strip_suffix(&[0]).unwrap_or(v)).ok())
        .ok_or("the device tree's /chosen has no stdout-path (which names the console)")?;
    Ok(path.split(':').next().unwrap_or(path).to_string())
}

/// `0x4000_0000`: hexadecimal in 16-bit groups, as the configs write it.
fn hex(value: u64) -> String {
    let digits = format!("{value:x}");
    let mut groups = Vec::new();
    let mut end = digits.len();
    while end > 4 {
        groups.push(&digits[end - 4..end]);
        end -= 4;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    format!("0x{}", groups.join("_"))
}

#[cfg(test)]
mod tests {
    use super::hex;

    #[test]
    fn hex_in_groups() {
        assert_eq!(hex(0x4000_0000), "0x4000_0000");
        assert_eq!(hex(0x800_0000), "0x800_0000");
        assert_eq!(hex(0x1_0000_0000), "0x1_0000_0000");
        assert_eq!(hex(0), "0x0");
    }
}
