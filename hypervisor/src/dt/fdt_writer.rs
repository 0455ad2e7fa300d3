//! A small flattened-device-tree (DTB, version 17) writer.
//!
//! The `fdt` crate only reads device trees; the hypervisor also has to
//! *write* one per partition. Nodes are emitted in order (begin, properties,
//! children, end), which is all the generator needs.

use alloc::vec::Vec;

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const END: u32 = 9;
const HEADER_SIZE: usize = 40;
const RESERVE_MAP_SIZE: usize = 16; // just the terminating (0, 0) entry

/// Builds a device tree blob. Misuse (unbalanced nodes) is a programming
/// error in the generator, caught by `finish`.
#[derive(Default)]
pub struct FdtWriter {
    structure: Vec<u8>,
    strings: Vec<u8>,
    depth: usize,
}

impl FdtWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn begin_node(&mut self, name: &str) {
        self.token(BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.pad();
        self.depth += 1;
    }

    pub fn end_node(&mut self) {
        assert!(self.depth > 0, "end_node without begin_node");
        self.token(END_NODE);
        self.depth -= 1;
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) {
        let name_offset = self.string_offset(name);
        self.token(PROP);
        self.token(value.len() as u32);
        self.token(name_offset);
        self.structure.extend_from_slice(value);
        self.pad();
    }

    pub fn prop_empty(&mut self, name: &str) {
        self.prop(name, &[]);
    }

    pub fn prop_u32(&mut self, name: &str, value: u32) {
        self.prop(name, &value.to_be_bytes());
    }

    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes);
    }

    /// A `reg`-style list of (address, size) pairs with 2 address and 2 size cells.
    pub fn prop_reg64(&mut self, name: &str, pairs: &[(u64, u64)]) {
        let mut cells = Vec::with_capacity(pairs.len() * 4);
        for &(addr, size) in pairs {
            cells.extend_from_slice(&[(addr >> 32) as u32, addr as u32]);
            cells.extend_from_slice(&[(size >> 32) as u32, size as u32]);
        }
        self.prop_cells(name, &cells);
    }

    pub fn prop_str(&mut self, name: &str, value: &str) {
        self.prop_strs(name, &[value]);
    }

    /// A string list (`"a\0b\0"`), as in `compatible`.
    pub fn prop_strs(&mut self, name: &str, values: &[&str]) {
        let mut bytes = Vec::new();
        for v in values {
            bytes.extend_from_slice(v.as_bytes());
            bytes.push(0);
        }
        self.prop(name, &bytes);
    }

    /// Finishes the blob. `boot_cpu` is the `reg` of the boot CPU.
    pub fn finish(mut self, boot_cpu: u32) -> Vec<u8> {
        assert_eq!(self.depth, 0, "unbalanced device tree nodes");
        self.token(END);
        let off_rsv = HEADER_SIZE;
        let off_struct = off_rsv + RESERVE_MAP_SIZE;
        let off_strings = off_struct + self.structure.len();
        let total = off_strings + self.strings.len();
        let header = [
            MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsv as u32,
            17, // version
            16, // last compatible version
            boot_cpu,
            self.strings.len() as u32,
            self.structure.len() as u32,
        ];
        let mut out = Vec::with_capacity(total);
        for word in header {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&[0u8; RESERVE_MAP_SIZE]);
        out.extend_from_slice(&self.structure);
        out.extend_from_slice(&self.strings);
        out
    }

    fn token(&mut self, value: u32) {
        self.structure.extend_from_slice(&value.to_be_bytes());
    }

    fn pad(&mut self) {
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
    }

    /// Property names are stored once in the strings block and shared.
    fn string_offset(&mut self, name: &str) -> u32 {
        let needle = name.as_bytes();
        let mut start = 0;
        while start < self.strings.len() {
            let end = start
                + self.strings[start..]
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(0);
            if &self.strings[start..end] == needle {
                return start as u32;
            }
            start = end + 1;
        }
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(needle);
        self.strings.push(0);
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_fdt_reader() {
        let mut w = FdtWriter::new();
        w.begin_node("");
        w.prop_u32("#address-cells", 2);
        w.prop_u32("#size-cells", 2);
        w.prop_str("compatible", "linux,dummy-virt");
        w.begin_node("memory@40000000");
        w.prop_str("device_type", "memory");
        w.prop_reg64("reg", &[(0x4000_0000, 0x0200_0000)]);
        w.end_node();
        w.begin_node("chosen");
        w.prop_str("bootargs", "console=ttyAMA0");
        w.prop_u32("hv,restart-count", 3);
        w.end_node();
        w.end_node();
        let blob = w.finish(0);

        let fdt = fdt::Fdt::new(&blob).expect("valid blob");
        let mem = fdt.memory();
        let region = mem.regions().next().unwrap();
        assert_eq!(region.starting_address as u64, 0x4000_0000);
        assert_eq!(region.size, Some(0x0200_0000));
        assert_eq!(fdt.chosen().bootargs(), Some("console=ttyAMA0"));
        let restarts = fdt
            .find_node("/chosen")
            .unwrap()
            .property("hv,restart-count")
            .unwrap();
        assert_eq!(restarts.as_usize(), Some(3));
        assert_eq!(fdt.root().compatible().first(), "linux,dummy-virt");
    }

    #[test]
    fn property_names_are_shared_in_the_strings_block() {
        let mut w = FdtWriter::new();
        w.begin_node("");
        w.begin_node("a");
        w.prop_u32("reg", 1);
        w.end_node();
        w.begin_node("b");
        w.prop_u32("reg", 2);
        w.end_node();
        w.end_node();
        assert_eq!(w.strings, b"reg\0");
    }

    #[test]
    #[should_panic(expected = "unbalanced")]
    fn unbalanced_nodes_are_caught() {
        let mut w = FdtWriter::new();
        w.begin_node("");
        w.finish(0);
    }
}
