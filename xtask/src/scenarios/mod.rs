//! The QEMU scenarios `cargo xtask test` runs (as `qemu/<name>`), in order.
//!
//! Each boots one config from `config/<board>/tests/` and judges the
//! serial console. Most run on qemu-virt; the hypervisor's own ones and a
//! Linux boot run on the i.MX 8M Plus EVK too (named `imx8mp-evk-<name>`). Hypervisor lines look like `[hv] INFO  message`,
//! partition console lines like `[cluster] hello: tick=3 pattern=ok`.
//! Keep each short (at most 240 s even for Linux): TCG runs in real time.
//!
//! One file per area: `partitions` (the hypervisor itself: partitions, SMP,
//! timers, isolation, faults, the watchdog, boot time), `console`, `linux`
//! (the Linux partition), `storage`, `display`, `touch`, `audio`,
//! `hostile` (partitions that attack the hypervisor), `flashed` (booted
//! by U-Boot from a flashed image) and `tools` (the operator's tools on a
//! running system); the helpers they
//! share are here, and [`all`] lists every scenario in the order they run.

mod audio;
mod console;
mod display;
mod flashed;
pub mod hostile;
pub mod linux;
mod partitions;
pub mod storage;
mod tools;
mod touch;

use crate::scenario::{Scenario, after, count, numbers};

pub fn all() -> Vec<Scenario> {
    let seed = storage::power_cut_seed();
    let mut all = vec![
        partitions::two_partitions(QEMU_VIRT),
        partitions::smp(QEMU_VIRT),
        partitions::timer(QEMU_VIRT),
        partitions::isolation(QEMU_VIRT),
        partitions::all_except(),
        partitions::new_config(QEMU_VIRT),
        partitions::restart(QEMU_VIRT),
        partitions::stop(),
        partitions::bad_entry_el(),
        partitions::platform_mismatch(),
        console::console_focus(),
        console::console_production(),
        console::console_flood(),
        tools::gdb_cluster(),
        partitions::watchdog(),
        partitions::aarch32_el0(),
        hostile::hostile_partition(),
        hostile::leftovers(),
        hostile::crash_loop(),
        linux::ivi_boot(),
        linux::ivi_lifecycle(),
        partitions::boot_time(),
        storage::storage(),
        storage::hostile_blk(),
        storage::storage_priority(),
        storage::storage_home(),
        storage::storage_console_flood(),
        storage::plain_disk(),
        storage::disk_error(),
        display::display_composition(),
        display::hostile_gpu(),
        display::display_linux(),
        display::display_deadline(),
        display::display_home_partition(),
        touch::touch_routing(),
        touch::touch_pointer(),
        touch::touch_pointer_absent(),
        touch::touch_stop(),
        touch::touch_restart(),
        touch::hostile_input(),
        audio::audio_mix(),
        audio::audio_restart(),
        audio::hostile_snd(),
        audio::audio_linux(),
        audio::cluster_chimes(),
        display::display_ivi_draw(),
        display::cockpit(),
    ];
    // Booted as a flashed board: U-Boot from the image's disk, twice.
    all.extend([flashed::flashed_boot(1), flashed::flashed_boot(2)]);
    all.extend((0..tools::RECORDS_RUNS).map(tools::crash_records));
    all.extend((0..storage::POWER_CUT_CUTS).map(|cut| storage::power_cut(cut, seed)));
    all.extend((0..storage::POWER_CUT_LINUX_CUTS).map(|cut| storage::power_cut_linux(cut, seed)));
    // The second board: the hypervisor's own behaviour and the Linux IVI,
    // with the same guests (the board has no virtio devices to share).
    all.extend([
        partitions::two_partitions(IMX8MP_EVK),
        partitions::smp(IMX8MP_EVK),
        partitions::timer(IMX8MP_EVK),
        partitions::isolation(IMX8MP_EVK),
        partitions::restart(IMX8MP_EVK),
        partitions::new_config(IMX8MP_EVK),
        linux::ivi_console(IMX8MP_EVK),
    ]);
    all
}

const QEMU_VIRT: &str = "qemu-virt";
const IMX8MP_EVK: &str = "imx8mp-evk";

/// Scenario `name` with `config/<board>/tests/<file>`: named `name` on
/// qemu-virt, `<board>-<name>` on the other boards.
fn on_board(board: &str, name: &str, file: &str) -> Scenario {
    let config = format!("config/{board}/tests/{file}").leak();
    if board == QEMU_VIRT {
        Scenario::new(name.to_string().leak(), config)
    } else {
        Scenario::new(format!("{board}-{name}").leak(), config)
    }
}

/// The beat numbers a `heartbeat` partition named `partition` printed.
fn beats(lines: &[String], partition: &str) -> Vec<u64> {
    numbers(lines, &format!(r"^\[{partition}\] heartbeat: n=(\d+) "))
}

/// At least `n` lines matching `pattern` after the first line matching
/// `marker`.
fn at_least_after(lines: &[String], marker: &str, pattern: &str, n: usize) -> Result<(), String> {
    let Some(rest) = after(lines, marker) else {
        return Err(format!("no line matches `{marker}`"));
    };
    let found = count(rest, pattern);
    if found >= n {
        Ok(())
    } else {
        Err(format!(
            "{found} line(s) match `{pattern}` after `{marker}`, expected at least {n}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_well_formed() {
        let all = all();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "scenario names are unique");
        for scenario in &all {
            // Linux boots (several, in ivi-lifecycle) need minutes under
            // TCG; the whole suite must still stay well under an hour.
            assert!(
                scenario.timeout.as_secs() <= 240,
                "{} is too long",
                scenario.name
            );
            assert!(scenario.config.starts_with("config/"));
        }
    }
}
