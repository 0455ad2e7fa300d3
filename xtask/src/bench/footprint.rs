//! The hypervisor's own footprint, from the `boot` run's log (the default
//! cockpit under the hypervisor, see [`super::boot`]): the size of its
//! image by part, the partitions' images it carries told apart (they are
//! built in as read-only data), and its heap: in use and at its
//! high-water mark when each partition's first vCPU started, after
//! everything the hypervisor sets up at boot (device trees, page tables,
//! framebuffers, the mediators' rings and arenas). Nothing on a trap's
//! path allocates, so the mark stays where boot left it unless a
//! partition restarts.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{RunResult, captures, lines_of};
use crate::scenario::numbers;

/// The hypervisor's line about its image (KiB).
const IMAGE: &str = r"^\[hv\] INFO  image: code (\d+) KiB, read-only data (\d+) KiB \(partition images (\d+) KiB besides\), data (\d+) KiB, bss (\d+) KiB \(stacks, page tables\) besides the (\d+) MiB heap";
/// All the heap the hypervisor has (MiB): the heap region and the rest of
/// its reservation.
const HEAP_TOTAL: &str = r"^\[hv\] INFO  heap: (\d+) MiB$";
/// Heap in use and its high-water mark (KiB) as a partition's vCPU 0 starts.
const HEAP_AT_BOOT: &str = r"vcpu 0 booting at 0x[0-9a-f]+ on cpu \d+ \(hypervisor heap: (\d+) KiB in use, high-water (\d+) KiB\)";

/// What the `boot` run's log says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Summary {
    /// KiB: code, read-only data, partition images, data, bss (without
    /// the heap region); MiB of the heap region.
    image: Option<[u64; 6]>,
    heap_mib: Option<u64>,
    /// KiB at the last partition's start: in use, high-water.
    heap_kib: Option<(u64, u64)>,
}

impl Summary {
    pub(super) fn from_runs(results: &[RunResult<'_>]) -> Summary {
        Summary::from_lines(lines_of(results, "boot"))
    }

    fn from_lines(lines: &[String]) -> Summary {
        let image = captures(lines, IMAGE).and_then(|v| v.try_into().ok());
        let in_use = numbers(lines, HEAP_AT_BOOT);
        let high = numbers(
            lines,
            &HEAP_AT_BOOT.replace(r"(\d+) KiB in use", r"\d+ KiB in use"),
        );
        Summary {
            image,
            heap_mib: captures(lines, HEAP_TOTAL).map(|v| v[0]),
            heap_kib: in_use.last().copied().zip(high.iter().max().copied()),
        }
    }

    /// The image the boot loader loads, KiB: code, read-only and
    /// initialised data, without the partitions' images.
    fn loaded_kib(&self) -> Option<u64> {
        let [code, rodata, _, data, _, _] = self.image?;
        Some(code + rodata + data)
    }

    pub(super) fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "Hypervisor footprint (default cockpit)\n");
        match self.image {
            Some([code, rodata, guests, data, bss, heap]) => {
                let _ = writeln!(
                    t,
                    "  image without partition images   {:>7} KiB  (code {code}, read-only data \
                     {rodata}, data {data})",
                    code + rodata + data
                );
                let _ = writeln!(t, "  partition images built in        {guests:>7} KiB");
                let _ = writeln!(
                    t,
                    "  bss                              {bss:>7} KiB  (stacks, page tables; \
                     besides the {heap} MiB heap region)"
                );
            }
            None => {
                let _ = writeln!(t, "  image                                  -");
            }
        }
        match (self.heap_kib, self.heap_mib) {
            (Some((in_use, high)), total) => {
                let of = total.map_or(String::new(), |m| format!(" of {m} MiB"));
                let _ = writeln!(
                    t,
                    "  heap high-water mark             {high:>7} KiB{of}  ({in_use} KiB in use \
                     when the last partition started)"
                );
            }
            (None, _) => {
                let _ = writeln!(t, "  heap                                   -");
            }
        }
        t
    }

    pub(super) fn json(&self) -> Value {
        let image = self.image.map(|[code, rodata, guests, data, bss, heap]| {
            json!({
                "code_kib": code,
                "rodata_kib": rodata,
                "data_kib": data,
                "loaded_kib_without_partition_images": self.loaded_kib(),
                "partition_images_kib": guests,
                "bss_kib_without_heap": bss,
                "heap_region_mib": heap,
            })
        });
        json!({
            "image": image,
            "heap": {
                "total_mib": self.heap_mib,
                "in_use_kib": self.heap_kib.map(|h| h.0),
                "high_water_kib": self.heap_kib.map(|h| h.1),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::console_lines as lines;

    #[test]
    fn footprint_from_the_log() {
        let log = lines(
            "[hv] INFO  heap: 106 MiB\n\
             [hv] INFO  image: code 310 KiB, read-only data 120 KiB (partition images 48000 KiB \
             besides), data 4 KiB, bss 900 KiB (stacks, page tables) besides the 16 MiB heap\n\
             [hv] INFO  partition cluster: vcpu 0 booting at 0x40080000 on cpu 1 (hypervisor \
             heap: 80000 KiB in use, high-water 81000 KiB)\n\
             [hv] INFO  partition ivi: vcpu 0 booting at 0x40200000 on cpu 2 (hypervisor \
             heap: 80500 KiB in use, high-water 80900 KiB)\n",
        );
        let s = Summary::from_lines(&log);
        assert_eq!(s.image, Some([310, 120, 48000, 4, 900, 16]));
        assert_eq!(s.loaded_kib(), Some(434));
        assert_eq!(s.heap_mib, Some(106));
        assert_eq!(
            s.heap_kib,
            Some((80500, 81000)),
            "the last in use, the highest mark"
        );
        let t = s.table();
        assert!(t.contains("434 KiB"), "{t}");
        assert!(t.contains("81000 KiB of 106 MiB"), "{t}");
        let j = s.json();
        assert_eq!(j["image"]["partition_images_kib"], 48000);
        assert_eq!(j["heap"]["high_water_kib"], 81000);
        let none = Summary::from_lines(&[]);
        assert_eq!(none, Summary::default());
        assert!(none.table().contains('-'));
        assert_eq!(none.json()["image"], Value::Null);
    }
}
