//! Board facts read from the board's flattened device tree: CPUs, RAM, and
//! for each node its path, MMIO regions and interrupts.
//!
//! The structure block is walked here rather than through the `fdt` crate
//! that the hypervisor uses at run time: that crate panics on a malformed
//! blob (this runs inside a build script, where a clear message is worth
//! more), and its `find_node` matches names loosely (a missing unit
//! address matches any, an unknown path falls back to an alias), whereas a
//! config must name one node exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::model::Region;

/// Index of a node in [`Board::nodes`].
pub type NodeId = usize;

#[derive(Debug, Clone)]
pub struct Node {
    /// Full path with unit addresses, `/` for the root.
    pub path: String,
    pub parent: Option<NodeId>,
    pub props: BTreeMap<String, Vec<u8>>,
}

impl Node {
    fn u32_prop(&self, name: &str) -> Option<u32> {
        match self.props.get(name)?.as_slice() {
            [a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }

    fn str_prop(&self, name: &str) -> Option<&str> {
        let value = self.props.get(name)?;
        std::str::from_utf8(value.strip_suffix(&[0]).unwrap_or(value)).ok()
    }

    /// The strings of a string-list property such as `compatible`.
    fn str_list(&self, name: &str) -> Vec<&str> {
        self.props.get(name).map_or_else(Vec::new, |v| {
            v.split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .filter_map(|s| std::str::from_utf8(s).ok())
                .collect()
        })
    }

    fn is_disabled(&self) -> bool {
        matches!(self.str_prop("status"), Some(s) if s != "okay" && s != "ok")
    }
}

/// An entry of a device's `interrupts` property, decoded in the GIC's
/// 3-cell form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtInterrupt {
    /// A shared peripheral interrupt, as its GIC INTID (SPI number + 32).
    Spi(u32),
    /// A private peripheral interrupt, by its PPI number.
    Ppi(u32),
    /// Any other type cell (e.g. GICv3.1 extended SPIs) or an SPI number
    /// beyond INTID 1019.
    Other { kind: u32, number: u32 },
}

/// Highest SPI INTID of a GICv3 without the extended range.
pub const MAX_SPI_INTID: u32 = 1019;

/// The board device tree, decoded once.
#[derive(Debug)]
pub struct Board {
    pub dtb: PathBuf,
    pub nodes: Vec<Node>,
    by_path: HashMap<String, NodeId>,
    by_phandle: HashMap<u32, NodeId>,
}

impl Board {
    /// Reads `<boards_dir>/<name>/<name>.dtb`.
    pub fn load(boards_dir: &Path, name: &str) -> Result<Board, String> {
        let dtb = boards_dir.join(name).join(format!("{name}.dtb"));
        let bytes = std::fs::read(&dtb)
            .map_err(|e| format!("cannot read board device tree {}: {e}", dtb.display()))?;
        let nodes = parse_fdt(&bytes)
            .map_err(|e| format!("board device tree {} is malformed: {e}", dtb.display()))?;
        Ok(Board::from_nodes(dtb, nodes))
    }

    pub fn from_nodes(dtb: PathBuf, nodes: Vec<Node>) -> Board {
        let by_path = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.path.clone(), i))
            .collect();
        let by_phandle = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                Some((
                    n.u32_prop("phandle")
                        .or_else(|| n.u32_prop("linux,phandle"))?,
                    i,
                ))
            })
            .collect();
        Board {
            dtb,
            nodes,
            by_path,
            by_phandle,
        }
    }

    pub fn path(&self, id: NodeId) -> &str {
        &self.nodes[id].path
    }

    /// The `reg` of each enabled `/cpus/cpu@*` node (its MPIDR affinity).
    pub fn cpus(&self) -> Vec<u64> {
        let Some(&cpus) = self.by_path.get("/cpus") else {
            return Vec::new();
        };
        let cells = self.nodes[cpus].u32_prop("#address-cells").unwrap_or(1) as usize;
        self.children(cpus)
            .filter(|&id| {
                self.nodes[id].str_prop("device_type") == Some("cpu")
                    && !self.nodes[id].is_disabled()
            })
            .filter_map(|id| {
                let reg = self.nodes[id].props.get("reg")?;
                Some(be_cells(reg.get(..cells * 4)?))
            })
            .collect()
    }

    /// RAM: the regions of every enabled `device_type = "memory"` node.
    pub fn ram(&self) -> Vec<Region> {
        (0..self.nodes.len())
            .filter(|&id| {
                self.nodes[id].str_prop("device_type") == Some("memory")
                    && !self.nodes[id].is_disabled()
            })
            .filter_map(|id| self.regs(id).ok().flatten())
            .flatten()
            .collect()
    }

    /// The GICv3 node, which owns every interrupt a device can pass on.
    pub fn gic(&self) -> Option<NodeId> {
        (0..self.nodes.len()).find(|&id| {
            self.nodes[id]
                .str_list("compatible")
                .contains(&"arm,gic-v3")
        })
    }

    /// The node's `compatible` strings, most specific first.
    pub fn compatible(&self, id: NodeId) -> Vec<&str> {
        self.nodes[id].str_list("compatible")
    }

    /// Whether `id` is `ancestor` or below it.
    pub fn is_within(&self, mut id: NodeId, ancestor: NodeId) -> bool {
        loop {
            if id == ancestor {
                return true;
            }
            match self.nodes[id].parent {
                Some(parent) => id = parent,
                None => return false,
            }
        }
    }

    /// The nodes that describe a memory-mapped device of their own, in
    /// tree order: enabled (they and every node above them), with a `reg`
    /// that translates to CPU physical addresses, and not RAM
    /// (`device_type = "memory"`, `/reserved-memory`), a CPU (`/cpus`) or
    /// a bus (a node with `ranges`: what it maps are its children, and a
    /// PCIe host bridge's windows are in `ranges`, not `reg`).
    pub fn device_nodes(&self) -> Vec<NodeId> {
        let below = |id: NodeId, path: &str| {
            self.by_path
                .get(path)
                .is_some_and(|&top| self.is_within(id, top))
        };
        (0..self.nodes.len())
            .filter(|&id| {
                let node = &self.nodes[id];
                node.parent.is_some()
                    && node.props.contains_key("reg")
                    && !node.props.contains_key("ranges")
                    && node.str_prop("device_type") != Some("memory")
                    && !below(id, "/cpus")
                    && !below(id, "/reserved-memory")
                    && self.is_enabled(id)
                    && matches!(self.regs(id), Ok(Some(_)))
            })
            .collect()
    }

    /// Whether neither the node nor any node above it has a `status`
    /// other than `okay`.
    pub fn is_enabled(&self, mut id: NodeId) -> bool {
        loop {
            if self.nodes[id].is_disabled() {
                return false;
            }
            match self.nodes[id].parent {
                Some(parent) => id = parent,
                None => return true,
            }
        }
    }

    fn children(&self, parent: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).filter(move |&id| self.nodes[id].parent == Some(parent))
    }

    /// Finds the node a config names: a full path with unit addresses
    /// (`/pl011@9000000`), or an alias from `/aliases` optionally followed
    /// by a path below it (`serial0`).
    pub fn resolve(&self, name: &str) -> Result<NodeId, String> {
        if name.is_empty() {
            return Err("empty device-tree path".into());
        }
        let path = if name.starts_with('/') {
            name.to_owned()
        } else {
            let (alias, rest) = name.split_once('/').map_or((name, ""), |(a, r)| (a, r));
            let target = self
                .by_path
                .get("/aliases")
                .and_then(|&id| self.nodes[id].str_prop(alias))
                .ok_or_else(|| {
                    format!(
                        "no node or alias \"{name}\" in board device tree {}",
                        self.dtb_name()
                    )
                })?;
            if rest.is_empty() {
                target.to_owned()
            } else {
                format!("{target}/{rest}")
            }
        };
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            &path
        };
        if let Some(&id) = self.by_path.get(trimmed) {
            return Ok(id);
        }
        let mut message = format!(
            "no node \"{path}\" in board device tree {}",
            self.dtb_name()
        );
        let wanted = strip_unit_addresses(trimmed);
        let similar: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| strip_unit_addresses(&n.path) == wanted)
            .map(|n| n.path.as_str())
            .take(4)
            .collect();
        if !similar.is_empty() {
            message += &format!(" (did you mean \"{}\"?)", similar.join("\", \""));
        }
        Err(message)
    }

    fn dtb_name(&self) -> String {
        self.dtb.file_name().map_or_else(
            || self.dtb.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// The node's `reg` as CPU physical ranges, translated through the
    /// `ranges` of every bus above it. `Ok(None)` if it has no `reg`.
    pub fn regs(&self, id: NodeId) -> Result<Option<Vec<Region>>, String> {
        let node = &self.nodes[id];
        let Some(reg) = node.props.get("reg") else {
            return Ok(None);
        };
        let parent = node.parent.ok_or("the root node has no address")?;
        let (address_cells, size_cells) = self.cell_sizes(parent);
        if address_cells > 2 || size_cells > 2 || address_cells == 0 {
            return Err(format!(
                "`reg` of {} uses {address_cells} address and {size_cells} size cells: not a CPU physical address",
                node.path
            ));
        }
        let entry = (address_cells + size_cells) * 4;
        if reg.is_empty() || reg.len() % entry != 0 {
            return Err(format!(
                "`reg` of {} is {} bytes, not a multiple of {entry}",
                node.path,
                reg.len()
            ));
        }
        let mut regions = Vec::new();
        for chunk in reg.chunks_exact(entry) {
            let (address, size) = chunk.split_at(address_cells * 4);
            let base = self.translate(parent, be_cells(address))?;
            regions.push(Region {
                base,
                size: be_cells(size),
            });
        }
        Ok(Some(regions))
    }

    /// `#address-cells` and `#size-cells` a node gives its children.
    fn cell_sizes(&self, id: NodeId) -> (usize, usize) {
        let node = &self.nodes[id];
        (
            node.u32_prop("#address-cells").unwrap_or(2) as usize,
            node.u32_prop("#size-cells").unwrap_or(1) as usize,
        )
    }

    /// Maps `address`, as seen by children of `bus`, up to the root.
    fn translate(&self, mut bus: NodeId, mut address: u64) -> Result<u64, String> {
        while let Some(above) = self.nodes[bus].parent {
            let node = &self.nodes[bus];
            let ranges = node.props.get("ranges").ok_or_else(|| {
                format!(
                    "{} has no `ranges`, so what sits below it is not memory-mapped",
                    node.path
                )
            })?;
            if !ranges.is_empty() {
                let (child_cells, size_cells) = self.cell_sizes(bus);
                let (parent_cells, _) = self.cell_sizes(above);
                if child_cells > 2 || parent_cells > 2 || size_cells > 2 {
                    return Err(format!(
                        "`ranges` of {} uses more than 64-bit cells",
                        node.path
                    ));
                }
                let entry = (child_cells + parent_cells + size_cells) * 4;
                address = ranges
                    .chunks_exact(entry)
                    .find_map(|chunk| {
                        let child = be_cells(&chunk[..child_cells * 4]);
                        let parent =
                            be_cells(&chunk[child_cells * 4..(child_cells + parent_cells) * 4]);
                        let size = be_cells(&chunk[(child_cells + parent_cells) * 4..]);
                        (address >= child && address - child < size)
                            .then(|| parent + (address - child))
                    })
                    .ok_or_else(|| {
                        format!(
                            "address {address:#x} is outside the `ranges` of {}",
                            node.path
                        )
                    })?;
            }
            bus = above;
        }
        Ok(address)
    }

    /// The node's interrupts, if they go to the GICv3.
    pub fn interrupts(&self, id: NodeId) -> Result<Vec<DtInterrupt>, String> {
        let node = &self.nodes[id];
        if node.props.contains_key("interrupts-extended") {
            return Err(format!(
                "{} uses `interrupts-extended`, which is not supported",
                node.path
            ));
        }
        let Some(cells) = node.props.get("interrupts") else {
            return Ok(Vec::new());
        };
        let controller = self
            .interrupt_parent(id)
            .ok_or_else(|| format!("{} has no interrupt parent", node.path))?;
        if Some(controller) != self.gic() {
            return Err(format!(
                "interrupts of {} go to {}, not to the GICv3, so they cannot be routed to a partition",
                node.path, self.nodes[controller].path
            ));
        }
        let per = self.nodes[controller]
            .u32_prop("#interrupt-cells")
            .unwrap_or(3) as usize;
        if per < 3 || cells.len() % (per * 4) != 0 {
            return Err(format!(
                "`interrupts` of {} does not hold {per}-cell GIC specifiers ({} bytes)",
                node.path,
                cells.len()
            ));
        }
        Ok(cells
            .chunks_exact(per * 4)
            .map(|spec| {
                let kind = be_cells(&spec[0..4]) as u32;
                let number = be_cells(&spec[4..8]) as u32;
                match kind {
                    0 if number <= MAX_SPI_INTID - 32 => DtInterrupt::Spi(number + 32),
                    1 => DtInterrupt::Ppi(number),
                    _ => DtInterrupt::Other { kind, number },
                }
            })
            .collect())
    }

    /// The SPIs (GIC INTIDs) among the node's interrupts; none if they
    /// cannot be read.
    pub fn spis(&self, id: NodeId) -> Vec<u32> {
        self.interrupts(id)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|irq| match irq {
                DtInterrupt::Spi(intid) => Some(intid),
                _ => None,
            })
            .collect()
    }

    /// The node's `interrupt-parent`, or the nearest ancestor's.
    fn interrupt_parent(&self, mut id: NodeId) -> Option<NodeId> {
        loop {
            if let Some(phandle) = self.nodes[id].u32_prop("interrupt-parent") {
                return self.by_phandle.get(&phandle).copied();
            }
            id = self.nodes[id].parent?;
        }
    }
}

/// `/a@1/b@2` → `/a/b`, to suggest the right path when the unit address
/// was left out or mistyped.
fn strip_unit_addresses(path: &str) -> String {
    path.split('/')
        .map(|c| c.split('@').next().unwrap_or(c))
        .collect::<Vec<_>>()
        .join("/")
}

/// A big-endian number of one or two 32-bit cells.
fn be_cells(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(4).fold(0, |acc, c| {
        (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    })
}

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Decodes a flattened device tree (devicetree specification, chapter 5)
/// into nodes, parents before children.
pub fn parse_fdt(blob: &[u8]) -> Result<Vec<Node>, String> {
    let word = |offset: usize| -> Result<u32, String> {
        blob.get(offset..offset + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated at byte {offset:#x}"))
    };
    if word(0)? != FDT_MAGIC {
        return Err("bad magic (not a flattened device tree)".into());
    }
    let total = word(4)? as usize;
    if total > blob.len() {
        return Err(format!(
            "header says {total} bytes, file has {}",
            blob.len()
        ));
    }
    let blob = &blob[..total];
    let struct_off = word(8)? as usize;
    let strings_off = word(12)? as usize;
    let version = word(20)?;
    let strings_len = word(32)? as usize;
    let struct_len = if version >= 17 {
        word(36)? as usize
    } else {
        total.saturating_sub(struct_off)
    };
    let structure = blob
        .get(struct_off..struct_off + struct_len)
        .ok_or("structure block out of bounds")?;
    let strings = blob
        .get(strings_off..strings_off + strings_len)
        .ok_or("strings block out of bounds")?;

    let mut nodes: Vec<Node> = Vec::new();
    let mut open: Vec<NodeId> = Vec::new();
    let mut at = 0;
    let token = |at: usize| -> Result<u32, String> {
        structure
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("structure block truncated at {at:#x}"))
    };
    let c_string = |bytes: &[u8], at: usize| -> Result<String, String> {
        let rest = bytes.get(at..).ok_or("string out of bounds")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        String::from_utf8(rest[..end].to_vec()).map_err(|_| "string is not UTF-8".to_owned())
    };
    let align4 = |n: usize| (n + 3) & !3;
    loop {
        match token(at)? {
            FDT_BEGIN_NODE => {
                let name = c_string(structure, at + 4)?;
                at = align4(at + 4 + name.len() + 1);
                let parent = open.last().copied();
                let path = match parent {
                    None => "/".to_owned(),
                    Some(p) if nodes[p].path == "/" => format!("/{name}"),
                    Some(p) => format!("{}/{name}", nodes[p].path),
                };
                open.push(nodes.len());
                nodes.push(Node {
                    path,
                    parent,
                    props: BTreeMap::new(),
                });
            }
            FDT_END_NODE => {
                open.pop().ok_or("unbalanced end of node")?;
                at += 4;
            }
            FDT_PROP => {
                let len = token(at + 4)? as usize;
                let name = c_string(strings, token(at + 8)? as usize)?;
                let value = structure
                    .get(at + 12..at + 12 + len)
                    .ok_or("property value out of bounds")?;
                let &node = open.last().ok_or("property outside any node")?;
                nodes[node].props.insert(name, value.to_vec());
                at = align4(at + 12 + len);
            }
            FDT_NOP => at += 4,
            FDT_END if open.is_empty() => break,
            FDT_END => return Err("end of structure block inside a node".into()),
            other => return Err(format!("unknown token {other:#x} at {at:#x}")),
        }
    }
    if nodes.is_empty() {
        return Err("no root node".into());
    }
    Ok(nodes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn qemu_virt() -> Board {
        let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board");
        Board::load(&boards, "qemu-virt").expect("the qemu-virt board DTB loads")
    }

    #[test]
    fn qemu_virt_cpus_and_ram() {
        let board = qemu_virt();
        assert_eq!(board.cpus(), [0, 1, 2, 3]);
        assert_eq!(
            board.ram(),
            [Region {
                base: 0x4000_0000,
                size: 0x8000_0000
            }]
        );
    }

    #[test]
    fn qemu_virt_devices() {
        let board = qemu_virt();
        let gpio = board.resolve("/pl061@9030000").unwrap();
        assert_eq!(
            board.regs(gpio).unwrap().unwrap(),
            [Region {
                base: 0x903_0000,
                size: 0x1000
            }]
        );
        assert_eq!(board.interrupts(gpio).unwrap(), [DtInterrupt::Spi(39)]);
        let virtio = board.resolve("/virtio_mmio@a000200").unwrap();
        assert_eq!(
            board.regs(virtio).unwrap().unwrap(),
            [Region {
                base: 0xa00_0200,
                size: 0x200
            }]
        );
        assert_eq!(board.interrupts(virtio).unwrap(), [DtInterrupt::Spi(49)]);
        assert_eq!(board.compatible(virtio), ["virtio,mmio"]);
        assert_eq!(board.compatible(gpio), ["arm,pl061", "arm,primecell"]);
        let pmu = board.resolve("/pmu").unwrap();
        assert_eq!(board.regs(pmu).unwrap(), None);
        assert_eq!(board.interrupts(pmu).unwrap(), [DtInterrupt::Ppi(7)]);
    }

    #[test]
    fn qemu_virt_device_nodes() {
        let board = qemu_virt();
        let paths: Vec<&str> = board
            .device_nodes()
            .into_iter()
            .map(|id| board.path(id))
            .collect();
        // The 32 virtio-mmio transports, and the PrimeCells, fw-cfg and
        // flash; the GIC and ITS too (the validator keeps them for the
        // hypervisor). Not memory, the CPUs, or the PCIe host bridge and
        // platform bus (buses, with `ranges`).
        assert_eq!(
            paths
                .iter()
                .filter(|p| p.starts_with("/virtio_mmio@"))
                .count(),
            32
        );
        for path in [
            "/pl011@9000000",
            "/pl031@9010000",
            "/pl061@9030000",
            "/fw-cfg@9020000",
            "/flash@0",
            "/intc@8000000/its@8080000",
        ] {
            assert!(paths.contains(&path), "{path} in {paths:?}");
        }
        for path in [
            "/memory@40000000",
            "/cpus/cpu@0",
            "/pcie@10000000",
            "/intc@8000000",
            "/platform-bus@c000000",
        ] {
            assert!(!paths.contains(&path), "{path} in {paths:?}");
        }
    }

    #[test]
    fn disabled_nodes_and_their_children_are_no_devices() {
        let one = cells(&[1]);
        let board = Board::from_nodes(
            "synthetic.dtb".into(),
            vec![
                node(
                    "/",
                    None,
                    &[
                        ("#address-cells", one.clone()),
                        ("#size-cells", one.clone()),
                    ],
                ),
                node("/on@1000", Some(0), &[("reg", cells(&[0x1000, 0x100]))]),
                node(
                    "/okay@2000",
                    Some(0),
                    &[
                        ("reg", cells(&[0x2000, 0x100])),
                        ("status", b"okay\0".to_vec()),
                    ],
                ),
                node(
                    "/off@3000",
                    Some(0),
                    &[
                        ("reg", cells(&[0x3000, 0x100])),
                        ("status", b"disabled\0".to_vec()),
                        ("#address-cells", one.clone()),
                        ("#size-cells", one.clone()),
                        ("ranges", vec![]),
                    ],
                ),
                node(
                    "/off@3000/child@3000",
                    Some(3),
                    &[("reg", cells(&[0x3000, 0x10]))],
                ),
            ],
        );
        let paths: Vec<&str> = board
            .device_nodes()
            .into_iter()
            .map(|id| board.path(id))
            .collect();
        assert_eq!(paths, ["/on@1000", "/okay@2000"]);
    }

    #[test]
    fn qemu_virt_gic_and_its() {
        let board = qemu_virt();
        let gic = board.gic().unwrap();
        assert_eq!(board.path(gic), "/intc@8000000");
        let its = board.resolve("/intc@8000000/its@8080000").unwrap();
        assert!(board.is_within(its, gic));
        // `ranges;` on the GIC node: identity translation.
        assert_eq!(
            board.regs(its).unwrap().unwrap(),
            [Region {
                base: 0x808_0000,
                size: 0x2_0000
            }]
        );
    }

    #[test]
    fn resolves_aliases_and_exact_paths_only() {
        let board = qemu_virt();
        assert_eq!(
            board.path(board.resolve("serial0").unwrap()),
            "/pl011@9000000"
        );
        assert_eq!(
            board.path(board.resolve("/pl011@9000000/").unwrap()),
            "/pl011@9000000"
        );
        let err = board.resolve("/pl061").unwrap_err();
        assert!(err.contains("no node \"/pl061\""), "{err}");
        assert!(err.contains("did you mean \"/pl061@9030000\""), "{err}");
        let err = board.resolve("serial9").unwrap_err();
        assert!(err.contains("no node or alias \"serial9\""), "{err}");
    }

    fn node(path: &str, parent: Option<NodeId>, props: &[(&str, Vec<u8>)]) -> Node {
        Node {
            path: path.into(),
            parent,
            props: props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    fn cells(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// A root with 1-cell addresses, a GIC, a bus at 0x1000_0000 whose
    /// children count from 0, a bus without `ranges`, and a second
    /// interrupt controller.
    fn synthetic() -> Board {
        let one = cells(&[1]);
        Board::from_nodes(
            "synthetic.dtb".into(),
            vec![
                node(
                    "/",
                    None,
                    &[
                        ("#address-cells", one.clone()),
                        ("#size-cells", one.clone()),
                        ("interrupt-parent", cells(&[1])),
                    ],
                ),
                node(
                    "/gic",
                    Some(0),
                    &[
                        ("compatible", b"arm,gic-v3\0".to_vec()),
                        ("phandle", cells(&[1])),
                        ("#interrupt-cells", cells(&[3])),
                    ],
                ),
                node(
                    "/bus@10000000",
                    Some(0),
                    &[
                        ("#address-cells", one.clone()),
                        ("#size-cells", one.clone()),
                        ("ranges", cells(&[0, 0x1000_0000, 0x10_0000])),
                    ],
                ),
                node(
                    "/bus@10000000/dev@2000",
                    Some(2),
                    &[
                        ("reg", cells(&[0x2000, 0x100])),
                        ("interrupts", cells(&[0, 5, 4, 1, 3, 4, 2, 1, 4])),
                    ],
                ),
                node(
                    "/bus@10000000/far@200000",
                    Some(2),
                    &[("reg", cells(&[0x20_0000, 0x100]))],
                ),
                node(
                    "/opaque",
                    Some(0),
                    &[
                        ("#address-cells", one.clone()),
                        ("#size-cells", one.clone()),
                    ],
                ),
                node("/opaque/dev@0", Some(5), &[("reg", cells(&[0, 0x10]))]),
                node(
                    "/mux",
                    Some(0),
                    &[("phandle", cells(&[2])), ("interrupt-controller", vec![])],
                ),
                node(
                    "/muxed",
                    Some(0),
                    &[
                        ("interrupt-parent", cells(&[2])),
                        ("interrupts", cells(&[3])),
                    ],
                ),
                node(
                    "/ext",
                    Some(0),
                    &[("interrupts-extended", cells(&[1, 0, 3, 4]))],
                ),
                node(
                    "/cpus",
                    Some(0),
                    &[
                        ("#address-cells", cells(&[2])),
                        ("#size-cells", cells(&[0])),
                    ],
                ),
                node(
                    "/cpus/cpu@100",
                    Some(10),
                    &[
                        ("device_type", b"cpu\0".to_vec()),
                        ("reg", cells(&[0, 0x100])),
                    ],
                ),
                node(
                    "/cpus/cpu@101",
                    Some(10),
                    &[
                        ("device_type", b"cpu\0".to_vec()),
                        ("reg", cells(&[0, 0x101])),
                        ("status", b"disabled\0".to_vec()),
                    ],
                ),
            ],
        )
    }

    #[test]
    fn translates_through_bus_ranges() {
        let board = synthetic();
        assert_eq!(
            board.regs(3).unwrap().unwrap(),
            [Region {
                base: 0x1000_2000,
                size: 0x100
            }]
        );
        let err = board.regs(4).unwrap_err();
        assert!(
            err.contains("outside the `ranges` of /bus@10000000"),
            "{err}"
        );
        let err = board.regs(6).unwrap_err();
        assert!(err.contains("/opaque has no `ranges`"), "{err}");
    }

    #[test]
    fn decodes_interrupt_types_with_inherited_parent() {
        let board = synthetic();
        assert_eq!(
            board.interrupts(3).unwrap(),
            [
                DtInterrupt::Spi(37),
                DtInterrupt::Ppi(3),
                DtInterrupt::Other { kind: 2, number: 1 }
            ]
        );
        let err = board.interrupts(8).unwrap_err();
        assert!(err.contains("go to /mux, not to the GICv3"), "{err}");
        let err = board.interrupts(9).unwrap_err();
        assert!(err.contains("interrupts-extended"), "{err}");
    }

    #[test]
    fn two_cell_cpu_reg_and_disabled_cpus() {
        assert_eq!(synthetic().cpus(), [0x100]);
    }

    /// The hypervisor re-reads the DTB at boot with the `fdt` crate and
    /// compares it with the config: both readers must see the same board.
    #[test]
    fn agrees_with_the_fdt_crate() {
        let board = qemu_virt();
        let blob = std::fs::read(&board.dtb).unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let fdt_cpus: Vec<u64> = fdt.cpus().map(|c| c.ids().first() as u64).collect();
        assert_eq!(board.cpus(), fdt_cpus);
        let fdt_ram: Vec<Region> = fdt
            .memory()
            .regions()
            .map(|r| Region {
                base: r.starting_address as u64,
                size: r.size.unwrap() as u64,
            })
            .collect();
        assert_eq!(board.ram(), fdt_ram);
        let mut compared = 0;
        for id in 0..board.nodes.len() {
            // Only children of the root: `fdt` does not translate through
            // bus `ranges`, so deeper nodes would differ by design.
            if board.nodes[id].parent != Some(0) {
                continue;
            }
            let Ok(Some(ours)) = board.regs(id) else {
                continue;
            };
            let node = fdt.find_node(board.path(id)).unwrap();
            let theirs: Vec<Region> = node
                .reg()
                .unwrap()
                .map(|r| Region {
                    base: r.starting_address as u64,
                    size: r.size.unwrap_or(0) as u64,
                })
                .collect();
            assert_eq!(ours, theirs, "{}", board.path(id));
            compared += 1;
        }
        assert!(
            compared > 30,
            "the virtio slots, UART, GPIO, RTC, GIC, flash, PCIe..."
        );
    }

    #[test]
    fn rejects_malformed_blobs() {
        assert!(
            parse_fdt(b"not a dtb at all, not even close....")
                .unwrap_err()
                .contains("bad magic")
        );
        let real = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../board/qemu-virt/qemu-virt.dtb"),
        )
        .unwrap();
        let err = parse_fdt(&real[..real.len() / 2]).unwrap_err();
        assert!(err.contains("header says"), "{err}");
    }
}
