//! The flashing path: the default system written by `cargo xtask image`
//! to a disk, booted by the board's U-Boot from it as a board boots from
//! its SD card, twice on the same disk.

use crate::scenario::Scenario;

/// The flashed image's series (`target/test-disks/flashed.img`).
const SERIES: &str = "flashed";

/// Power-on `boot` (1 or 2) of the flashed default cockpit: U-Boot's own
/// boot flow finds `boot.scr` on the image's boot partition, which loads
/// the hypervisor to its link address and `booti`s it with U-Boot's DTB;
/// the hypervisor boots both partitions and mediates the disk it was
/// loaded from: the cluster's odometer record on its GPT partition counts
/// this boot, so the second power-on finds the first one's.
pub(super) fn flashed_boot(boot: u32) -> Scenario {
    let name: &'static str = format!("flashed-boot-{boot}").leak();
    Scenario::new(name, "config/qemu-virt/default.toml")
        .flashed(SERIES, boot == 1, |config, image| {
            let board = crate::board::name_for_config(config)?;
            crate::image::write_for(&board, config, crate::images::Profile::Development, image)
        })
        .timeout(180)
        .expect(r"^U-Boot 20\d\d\.\d\d")
        .expect(r"^Found U-Boot script /boot\.scr$")
        .expect(r"^Loading the hypervisor from virtio 0:1$")
        .expect(r"^Starting kernel \.\.\.$")
        .expect(r"^\[hv\] INFO  hypervisor \S+ for board qemu-virt: image 0x40080000\.\.")
        .expect(&format!(
            r"^\[cluster\] cluster: odometer \d+ km \(boot {boot}\)$"
        ))
        .expect(r"^\[cluster\] cluster: first frame shown at counter \d+ ")
        .expect(r"^\[ivi\] ivi: userspace up after ")
        .expect_none(r"^\[hv\] (WARN|ERROR)|cluster: .*error|odometer not persisted")
}
