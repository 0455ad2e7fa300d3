//! A copy of a flattened device tree without its NOP tokens.
//!
//! Boot loaders and QEMU delete nodes and properties by overwriting them
//! with FDT_NOP (QEMU's `imx8mp-evk` leaves some 150, U-Boot's fixups do
//! the same). The `fdt` crate (0.1.5) skips NOPs while it lists nodes, but
//! its path lookup stops at a NOP between two siblings and reports the
//! node missing; reading the compacted copy sidesteps that for every
//! lookup at once.

use alloc::vec::Vec;

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
/// The version 17 header: ten big-endian words.
const HEADER: usize = 40;

fn be32(blob: &[u8], at: usize) -> Option<u32> {
    let bytes = blob.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

/// `blob` with its structure block's NOP tokens left out, or `None` if it
/// is no well-formed FDT (the caller then reports the original as bad).
pub fn without_nops(blob: &[u8]) -> Option<Vec<u8>> {
    if be32(blob, 0)? != MAGIC {
        return None;
    }
    let total = be32(blob, 4)? as usize;
    let off_struct = be32(blob, 8)? as usize;
    let off_strings = be32(blob, 12)? as usize;
    let off_rsvmap = be32(blob, 16)? as usize;
    let size_strings = be32(blob, 32)? as usize;
    let size_struct = be32(blob, 36)? as usize;
    let blob = blob.get(..total)?;
    let structs = blob.get(off_struct..off_struct.checked_add(size_struct)?)?;
    let strings = blob.get(off_strings..off_strings.checked_add(size_strings)?)?;
    // The reservation map runs from its offset to the structure block (it
    // ends with an all-zero entry; it is copied whole).
    let rsvmap = blob.get(off_rsvmap..off_struct)?;

    let mut out_struct = Vec::with_capacity(structs.len());
    let mut at = 0;
    loop {
        let token = be32(structs, at)?;
        let len = match token {
            NOP => {
                at += 4;
                continue;
            }
            BEGIN_NODE => {
                let name = structs.get(at + 4..)?;
                let nul = name.iter().position(|&b| b == 0)?;
                4 + align4(nul + 1)?
            }
            PROP => 12 + align4(be32(structs, at + 4)? as usize)?,
            END_NODE | END => 4,
            _ => return None,
        };
        out_struct.extend_from_slice(structs.get(at..at.checked_add(len)?)?);
        at += len;
        if token == END {
            break;
        }
    }

    // Header, reservation map (8-aligned), structure block, strings.
    let rsv_at = HEADER.next_multiple_of(8);
    let struct_at = rsv_at + rsvmap.len();
    let strings_at = struct_at + out_struct.len();
    let total = strings_at + strings.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(blob.get(..HEADER)?);
    out.resize(rsv_at, 0);
    out.extend_from_slice(rsvmap);
    out.extend_from_slice(&out_struct);
    out.extend_from_slice(strings);
    for (field, value) in [
        (4, total),
        (8, struct_at),
        (12, strings_at),
        (16, rsv_at),
        (32, strings.len()),
        (36, out_struct.len()),
    ] {
        out[field..field + 4].copy_from_slice(&(value as u32).to_be_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dt::fdt_writer::FdtWriter;

    /// A tree with a NOP between two siblings (where the `fdt` crate's path
    /// lookup gives up) and one between two properties.
    fn with_nops() -> Vec<u8> {
        let mut w = FdtWriter::new();
        w.begin_node("");
        w.prop_u32("#address-cells", 2);
        w.begin_node("a@1");
        w.prop_u32("x", 1);
        w.end_node();
        w.begin_node("b@2");
        w.prop_u32("y", 2);
        w.prop_u32("z", 3);
        w.end_node();
        w.end_node();
        let mut blob = w.finish(0);
        let structs = be32(&blob, 8).unwrap() as usize;
        let size = be32(&blob, 36).unwrap() as usize;
        // Splice NOPs in: after node a's END_NODE and after b's first prop.
        let mut tokens = Vec::new();
        let mut at = structs;
        while at < structs + size {
            tokens.push(at);
            let t = be32(&blob, at).unwrap();
            at += match t {
                BEGIN_NODE => {
                    let nul = blob[at + 4..].iter().position(|&b| b == 0).unwrap();
                    4 + align4(nul + 1).unwrap()
                }
                PROP => 12 + align4(be32(&blob, at + 4).unwrap() as usize).unwrap(),
                _ => 4,
            };
        }
        let end_of_a = tokens
            .iter()
            .copied()
            .find(|&t| be32(&blob, t) == Some(END_NODE))
            .unwrap();
        let prop_y = tokens
            .iter()
            .copied()
            .filter(|&t| be32(&blob, t) == Some(PROP))
            .nth(2)
            .unwrap();
        let nop = NOP.to_be_bytes();
        // Later offset first, so the earlier one stays valid.
        let prop_z = prop_y + 16;
        for at in [prop_z, end_of_a + 4] {
            for _ in 0..2 {
                blob.splice(at..at, nop);
            }
        }
        // The structure block grew by 16 bytes; the strings moved with it.
        let grow = 16u32;
        for field in [4usize, 12, 36] {
            let v = be32(&blob, field).unwrap() + grow;
            blob[field..field + 4].copy_from_slice(&v.to_be_bytes());
        }
        blob
    }

    #[test]
    fn nops_go_and_lookups_work_again() {
        let blob = with_nops();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        assert_eq!(fdt.all_nodes().count(), 3, "the NOPs are well formed");
        assert!(
            fdt.find_node("/b@2").is_none(),
            "the crate's lookup gives up"
        );

        let compact = without_nops(&blob).unwrap();
        assert_eq!(compact.len(), blob.len() - 16);
        let fdt = fdt::Fdt::new(&compact).unwrap();
        let b = fdt.find_node("/b@2").unwrap();
        let props: Vec<&str> = b.properties().map(|p| p.name).collect();
        assert_eq!(props, ["y", "z"]);
        assert_eq!(b.property("z").unwrap().as_usize(), Some(3));
        assert!(fdt.find_node("/a@1").is_some());
    }

    #[test]
    fn what_is_no_fdt_is_refused() {
        let blob = with_nops();
        assert!(without_nops(&blob[..blob.len() - 1]).is_none());
        assert!(without_nops(&[0; 64]).is_none());
        let mut bad = blob.clone();
        // An unknown token in the structure block.
        let structs = be32(&bad, 8).unwrap() as usize;
        bad[structs..structs + 4].copy_from_slice(&7u32.to_be_bytes());
        assert!(without_nops(&bad).is_none());
    }
}
