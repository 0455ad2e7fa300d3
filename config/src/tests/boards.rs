//! Configs for the i.MX 8M Plus EVK, checked against its own DT with the
//! same precision as on qemu-virt: a core, memory or device the board lacks
//! is refused where the config names it.

use super::fixture::Fixture;
use super::rules::{assert_has, assert_only};

/// Two partitions on the EVK, as its scenario config has them.
const EVK: &str = include_str!("../../imx8mp-evk/tests/two.toml");

fn errors_with(from: &str, to: &str) -> Vec<String> {
    assert!(EVK.contains(from), "{from}");
    Fixture::new().errors(&EVK.replacen(from, to, 1))
}

#[test]
fn the_evk_config_is_valid_and_its_console_an_imx_uart() {
    let loaded = Fixture::new().load(EVK).unwrap();
    assert_eq!(
        loaded.system.hypervisor.console,
        "/soc@0/bus@30800000/spba-bus@30800000/serial@30890000"
    );
}

#[test]
fn a_core_the_evk_lacks_is_refused() {
    let errs = errors_with("cpus = [2, 3]", "cpus = [2, 4]");
    assert_only(
        &errs,
        "22:12",
        "cpu 4 of partition \"ivi\" does not exist on the board (its cpus are 0, 1, 2, 3)",
    );
}

#[test]
fn memory_outside_the_evk_ram_is_refused() {
    let errs = errors_with("host = 0x5000_0000", "host = 0x2_0000_0000");
    assert_only(
        &errs,
        "24:42",
        "is not inside board RAM (0x40000000..0x100000000, 0x100000000..0x1c0000000)",
    );
}

#[test]
fn devices_are_found_in_the_evk_tree() {
    // A UART the SoC does not have (UART4 is at 0x30a60000).
    let errs = errors_with(
        "cpus = [2, 3]\n",
        "cpus = [2, 3]\ndevices = [\"/soc@0/bus@30800000/serial@30a70000\"]\n",
    );
    assert_only(
        &errs,
        "23:12",
        "no node \"/soc@0/bus@30800000/serial@30a70000\" in board device tree imx8mp-evk.dtb \
         (did you mean \"/soc@0/bus@30800000/serial@30a60000\"?)",
    );
    // UART1, by its alias, may be passed through.
    let errs = errors_with(
        "cpus = [2, 3]\n",
        "cpus = [2, 3]\ndevices = [\"serial0\"]\n",
    );
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn a_console_with_no_driver_is_refused() {
    let errs = errors_with("console = \"serial1\"", "console = \"spi0\"");
    assert_has(
        &errs,
        "7:11",
        "hypervisor console /soc@0/bus@30800000/spi@30bb0000 is compatible with [\"nxp,imx8mp-fspi\"]",
    );
}
