//! `ivi-tool check`: does this Linux see the machine the partition's config
//! gave it, and nothing more?
//!
//! [`Sources::read`] collects the raw text from procfs, sysfs and the
//! device tree; [`evaluate`] judges it. Only the first touches the file
//! system.

use std::fs;
use std::path::Path;

use crate::cli::CheckOptions;

/// Top-level device-tree nodes of the virtual machine every partition gets
/// (see docs/architecture.md): these are always allowed, with any unit
/// address.
pub const BASE_NODES: &[&str] = &[
    "cpus", "memory", "intc", "timer", "psci", "pl011", "apb-pclk", "chosen", "aliases",
];

/// Where the device tree is, relative to the root, in order of preference.
const DT_DIRS: &[&str] = &["proc/device-tree", "sys/firmware/devicetree/base"];

/// The raw facts, as the kernel reports them.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `/proc/cpuinfo`.
    pub cpuinfo: String,
    /// `/sys/devices/system/cpu/online`, e.g. `0-1`.
    pub online: String,
    /// `/proc/meminfo`.
    pub meminfo: String,
    /// Names of the device tree's top-level nodes (its subdirectories).
    pub dt_nodes: Vec<String>,
}

impl Sources {
    /// Reads everything below `root` (`/` on a running system). A file that
    /// cannot be read is an error naming it.
    pub fn read(root: &Path) -> Result<Sources, String> {
        let text = |rel: &str| {
            fs::read_to_string(root.join(rel)).map_err(|e| format!("cannot read /{rel}: {e}"))
        };
        let dt = DT_DIRS
            .iter()
            .map(|rel| root.join(rel))
            .find(|dir| dir.is_dir())
            .ok_or("no device tree in /proc/device-tree or /sys/firmware/devicetree/base")?;
        let entries =
            fs::read_dir(&dt).map_err(|e| format!("cannot list {}: {e}", dt.display()))?;
        let mut dt_nodes: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        dt_nodes.sort();
        Ok(Sources {
            cpuinfo: text("proc/cpuinfo")?,
            online: text("sys/devices/system/cpu/online")?,
            meminfo: text("proc/meminfo")?,
            dt_nodes,
        })
    }
}

/// The verdict: what was seen (`lines`, for people), what is wrong, and
/// the facts for the one-line result.
#[derive(Debug)]
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
    /// `cpus=.. mem=..MiB devices=..`, for the `check ok` line.
    pub summary: String,
}

impl Report {
    /// A check that could not even read its sources.
    pub fn unreadable(problem: String) -> Report {
        Report {
            lines: Vec::new(),
            problems: vec![problem],
            summary: String::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges `sources` against what the options promise.
pub fn evaluate(sources: &Sources, expected: &CheckOptions) -> Report {
    let mut lines = Vec::new();
    let mut problems = Vec::new();

    // CPUs: both views must show exactly the partition's vCPUs.
    let listed = cpuinfo_processors(&sources.cpuinfo);
    let online = cpu_list_len(&sources.online);
    lines.push(format!(
        "cpus: {listed} in /proc/cpuinfo, online {} ({}), expected {}",
        sources.online.trim(),
        online
            .as_ref()
            .map_or_else(|e| e.clone(), |n| n.to_string()),
        expected.cpus
    ));
    if listed != expected.cpus {
        problems.push(format!(
            "/proc/cpuinfo lists {listed} CPUs, expected {}",
            expected.cpus
        ));
    }
    match online {
        Ok(n) if n == expected.cpus => {}
        Ok(n) => problems.push(format!("{n} CPUs online, expected {}", expected.cpus)),
        Err(e) => problems.push(e),
    }

    // Memory: at most what the partition owns, and not much less.
    let (low, high) = mem_bounds_kib(expected.mem_mib);
    let mem_kib = mem_total_kib(&sources.meminfo);
    match mem_kib {
        Some(kib) => {
            lines.push(format!(
                "memory: MemTotal {kib} kB ({} MiB) of {} MiB, expected {}..={} MiB",
                kib / 1024,
                expected.mem_mib,
                low / 1024,
                high / 1024
            ));
            if !(low..=high).contains(&kib) {
                problems.push(format!(
                    "MemTotal is {} MiB, outside {}..={} MiB for a {} MiB partition",
                    kib / 1024,
                    low / 1024,
                    high / 1024,
                    expected.mem_mib
                ));
            }
        }
        None => problems.push("no MemTotal in /proc/meminfo".to_string()),
    }

    // Device tree: only the base machine and the allowed devices.
    lines.push(format!(
        "device tree: {} top-level nodes: {}",
        sources.dt_nodes.len(),
        sources.dt_nodes.join(" ")
    ));
    let mut devices = Vec::new();
    let mut unexpected = Vec::new();
    for node in &sources.dt_nodes {
        if BASE_NODES.iter().any(|b| node_matches(node, b)) {
            continue;
        }
        if expected.allow.iter().any(|a| node_matches(node, a)) {
            devices.push(node.as_str());
        } else {
            unexpected.push(node.as_str());
        }
    }
    for base in ["cpus", "memory", "intc", "timer", "psci", "chosen"] {
        if !sources.dt_nodes.iter().any(|n| node_matches(n, base)) {
            problems.push(format!("the device tree has no `{base}` node"));
        }
    }
    if !unexpected.is_empty() {
        problems.push(format!(
            "unexpected device-tree nodes: {}",
            unexpected.join(", ")
        ));
    }

    let summary = format!(
        "cpus={listed} mem={}MiB devices={}",
        mem_kib.unwrap_or(0) / 1024,
        if devices.is_empty() {
            "none".to_string()
        } else {
            devices.join(",")
        }
    );
    Report {
        lines,
        problems,
        summary,
    }
}

/// The lines `ivi-tool check` prints, the last one being the verdict.
pub fn render(report: &Report) -> Vec<String> {
    let mut out: Vec<String> = report
        .lines
        .iter()
        .map(|l| format!("ivi-tool: {l}"))
        .collect();
    if report.ok() {
        out.push(format!("ivi-tool: check ok {}", report.summary));
    } else {
        out.push(format!(
            "ivi-tool: check FAILED: {}",
            report.problems.join("; ")
        ));
    }
    out
}

/// Whether device-tree node `node` is the one `allowed` names: the same
/// name, or any unit address of it when `allowed` has none (or `@*`).
pub fn node_matches(node: &str, allowed: &str) -> bool {
    let allowed = allowed.strip_suffix("@*").unwrap_or(allowed);
    node == allowed || (!allowed.contains('@') && node.split('@').next() == Some(allowed))
}

/// Number of `processor : N` entries in `/proc/cpuinfo`.
pub fn cpuinfo_processors(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(key, _)| key.trim() == "processor")
        })
        .count()
}

/// Number of CPUs in a sysfs CPU list such as `0-1,3`.
pub fn cpu_list_len(list: &str) -> Result<usize, String> {
    let bad = || format!("cannot read the CPU list `{}`", list.trim());
    let list = list.trim();
    if list.is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let first: usize = first.trim().parse().map_err(|_| bad())?;
        let last: usize = last.trim().parse().map_err(|_| bad())?;
        if last < first {
            return Err(bad());
        }
        n += last - first + 1;
    }
    Ok(n)
}

/// `MemTotal:` from `/proc/meminfo`, in KiB.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        let mut words = rest.split_whitespace();
        let value: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") | None => Some(value),
            Some(_) => None,
        }
    })
}

/// The MemTotal range (KiB) that is sane for a partition of `mem_mib` MiB.
/// The kernel never reports more than it was given, and keeps back its own
/// image (Debian's arm64 kernel is about 45 MiB with .bss), the page
/// structures (1/64 of RAM) and a few early allocations: allow that plus
/// an eighth of the rest.
pub fn mem_bounds_kib(mem_mib: u64) -> (u64, u64) {
    let high = mem_mib * 1024;
    let reserve = 64 * 1024 + high / 8;
    (high.saturating_sub(reserve), high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const CPUINFO: &str = "processor\t: 0\nBogoMIPS\t: 125.00\nFeatures\t: fp asimd\n\n\
                           processor\t: 1\nBogoMIPS\t: 125.00\n\n";
    const MEMINFO: &str = "MemTotal:         201980 kB\nMemFree:          170000 kB\n";

    fn options(cpus: usize, mem_mib: u64, allow: &[&str]) -> CheckOptions {
        CheckOptions {
            cpus,
            mem_mib,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            report_only: false,
            root: PathBuf::from("/"),
        }
    }

    fn partition_sources(extra: &[&str]) -> Sources {
        let mut nodes: Vec<String> = [
            "aliases",
            "apb-pclk",
            "chosen",
            "cpus",
            "intc@8000000",
            "memory@40000000",
            "pl011@9000000",
            "psci",
            "timer",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        nodes.sort();
        Sources {
            cpuinfo: CPUINFO.to_string(),
            online: "0-1\n".to_string(),
            meminfo: MEMINFO.to_string(),
            dt_nodes: nodes,
        }
    }

    #[test]
    fn parsers() {
        assert_eq!(cpuinfo_processors(CPUINFO), 2);
        assert_eq!(cpuinfo_processors(""), 0);
        assert_eq!(cpu_list_len("0-1\n"), Ok(2));
        assert_eq!(cpu_list_len("0"), Ok(1));
        assert_eq!(cpu_list_len("0-3,6,8-9"), Ok(7));
        assert_eq!(cpu_list_len(""), Ok(0));
        assert!(cpu_list_len("3-1").is_err());
        assert!(cpu_list_len("a").is_err());
        assert_eq!(mem_total_kib(MEMINFO), Some(201_980));
        assert_eq!(mem_total_kib("MemFree: 3 kB\n"), None);
        assert_eq!(mem_total_kib("MemTotal: 3 MB\n"), None);
    }

    #[test]
    fn node_names() {
        assert!(node_matches("memory@40000000", "memory"));
        assert!(node_matches("memory@40000000", "memory@*"));
        assert!(node_matches("memory@40000000", "memory@40000000"));
        assert!(!node_matches("memory@40000000", "memory@50000000"));
        assert!(node_matches("timer", "timer"));
        assert!(!node_matches("timer-x", "timer"));
        assert!(!node_matches("pl011@9000000", "pl01"));
    }

    #[test]
    fn memory_bounds() {
        let (low, high) = mem_bounds_kib(256);
        assert_eq!(high, 256 * 1024);
        assert_eq!(low, (256 - 64 - 32) * 1024);
        assert_eq!(mem_bounds_kib(16), (0, 16 * 1024));
    }

    #[test]
    fn a_partition_passes() {
        let report = evaluate(
            &partition_sources(&["watchdog@c000000"]),
            &options(2, 256, &["watchdog"]),
        );
        assert!(report.ok(), "{:?}", report.problems);
        let out = render(&report);
        assert_eq!(
            out.last().unwrap(),
            "ivi-tool: check ok cpus=2 mem=197MiB devices=watchdog@c000000"
        );
        assert!(out.iter().all(|l| l.starts_with("ivi-tool: ")));
    }

    #[test]
    fn every_problem_is_reported() {
        let mut sources = partition_sources(&["pcie@10000000", "watchdog@c000000"]);
        sources.online = "0-2".to_string();
        sources.meminfo = "MemTotal: 1048576 kB\n".to_string();
        let report = evaluate(&sources, &options(2, 256, &[]));
        let verdict = render(&report).pop().unwrap();
        assert!(verdict.starts_with("ivi-tool: check FAILED: "), "{verdict}");
        assert!(verdict.contains("3 CPUs online, expected 2"), "{verdict}");
        assert!(verdict.contains("MemTotal is 1024 MiB"), "{verdict}");
        assert!(
            verdict.contains("unexpected device-tree nodes: pcie@10000000, watchdog@c000000"),
            "{verdict}"
        );
    }

    #[test]
    fn missing_base_nodes_fail() {
        let mut sources = partition_sources(&[]);
        sources.dt_nodes.retain(|n| n != "psci");
        let report = evaluate(&sources, &options(2, 256, &[]));
        assert_eq!(report.problems, ["the device tree has no `psci` node"]);
    }

    #[test]
    fn reads_a_fake_root() {
        let root = std::env::temp_dir().join(format!("ivi-tool-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for dir in [
            "proc",
            "sys/devices/system/cpu",
            "sys/firmware/devicetree/base/cpus",
            "sys/firmware/devicetree/base/memory@40000000",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        fs::write(root.join("proc/cpuinfo"), CPUINFO).unwrap();
        fs::write(root.join("proc/meminfo"), MEMINFO).unwrap();
        fs::write(root.join("sys/devices/system/cpu/online"), "0-1\n").unwrap();
        fs::write(root.join("sys/firmware/devicetree/base/compatible"), "x").unwrap();
        let sources = Sources::read(&root).unwrap();
        assert_eq!(sources.dt_nodes, ["cpus", "memory@40000000"]);
        assert_eq!(cpuinfo_processors(&sources.cpuinfo), 2);
        fs::remove_file(root.join("proc/meminfo")).unwrap();
        let err = Sources::read(&root).unwrap_err();
        assert!(err.contains("/proc/meminfo"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }
}
