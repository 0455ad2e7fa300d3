//! What `cargo xtask check-config --explain` and `--json` show: the
//! default config's partitions and mediated devices are all there, in the
//! tables and in the JSON, and an `all_except` partition's resolution too.

use std::path::Path;

use serde_json::{Value, json};

use super::fixture::Fixture;
use crate::explain::Explanation;

fn explained(file: &str) -> Explanation {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    crate::explain(&path, &Fixture::new().ctx).unwrap_or_else(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        panic!("{file} is invalid:\n{}", lines.join("\n"))
    })
}

/// The default cockpit's mediated devices: (kind, name, device).
const DEFAULT_MEDIATED: [(&str, &str, &str); 7] = [
    ("console", "console", "/pl011@9000000"),
    ("storage", "disk0", "/virtio_mmio@a003e00"),
    ("display", "instrument", "/virtio_mmio@a003c00"),
    ("display", "center", "/virtio_mmio@a003a00"),
    ("touch panel", "panel", "/virtio_mmio@a003800"),
    ("touch pointer", "panel", "/virtio_mmio@a003600"),
    ("audio output", "speaker", "/virtio_mmio@a003400"),
];

#[test]
fn the_default_config_as_json_names_every_partition_and_mediated_device() {
    let json = serde_json::to_value(explained("qemu-virt/default.toml")).unwrap();
    let partitions: Vec<&str> = json["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(partitions, ["cluster", "ivi"]);
    let mediated: Vec<(&str, &str, &str)> = json["mediated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["name"].as_str().unwrap(),
                m["device"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(mediated, DEFAULT_MEDIATED);
    for m in json["mediated"].as_array().unwrap() {
        assert_eq!(m["shared_by"], json!(["cluster", "ivi"]), "{m}");
        assert_eq!(m["home_cpu"], Value::Null, "the service core: {m}");
    }
    let storage = &json["mediated"][1];
    assert_eq!(
        storage["mmio"],
        json!([{ "base": 0xa00_3e00, "size": 0x200 }])
    );
    assert_eq!(storage["interrupts"], json!([79]));

    let hypervisor = &json["hypervisor"];
    assert_eq!(
        hypervisor["memory"],
        json!({ "base": 0x4000_0000, "size": 0x0800_0000 })
    );
    assert_eq!(hypervisor["console"], "/pl011@9000000");
    assert_eq!(hypervisor["console_interrupts"], json!([33]));
    assert_eq!(hypervisor["free_cpus"], json!([0]));
    assert_eq!(hypervisor["service_cpu"], 0);

    let cluster = &json["partitions"][0];
    assert_eq!(cluster["cpus"], json!([1]));
    assert_eq!(
        cluster["memory"],
        json!([{ "guest": 0x4000_0000, "host": 0x4800_0000, "size": 0x0100_0000 }])
    );
    assert_eq!(cluster["devices"], json!([]));
    assert_eq!(cluster["all_except"], Value::Null);
    let ivi = &json["partitions"][1];
    let kinds: Vec<&str> = ivi["virtual_devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "gic distributor",
            "gic redistributors",
            "console",
            "watchdog",
            "disk",
            "gpu",
            "input",
            "sound"
        ]
    );
    let sound = &ivi["virtual_devices"][7];
    assert_eq!(sound["slot"], 3);
    assert_eq!(sound["mmio"], json!({ "base": 0xb00_0600, "size": 0x200 }));
    assert_eq!(sound["intid"], 99);
    assert_eq!(sound["mediated"], json!(["speaker"]));
    assert_eq!(
        ivi["virtual_devices"][5]["mediated"],
        json!(["center", "instrument"]),
        "the gpu, on the displays of its views"
    );
    assert_eq!(ivi["views"][1]["display"], "instrument");
}

#[test]
fn the_default_config_as_tables_names_every_partition_and_mediated_device() {
    let text = explained("qemu-virt/default.toml").text();
    for heading in [
        "\nhypervisor\n",
        "\nmediated devices\n",
        "\npartition \"cluster\": asil-b, priority 200, on_fault restart, watchdog off\n",
        "\npartition \"ivi\": qm, priority 10, on_fault restart, watchdog on\n",
    ] {
        assert!(text.contains(heading), "no {heading:?} in\n{text}");
    }
    let mediated = &text[text.find("\nmediated devices\n").unwrap()..];
    for (kind, name, device) in DEFAULT_MEDIATED {
        let row = mediated
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{kind} ")) && l.contains(device))
            .unwrap_or_else(|| panic!("no {kind} row for {device} in\n{text}"));
        assert!(row.contains(&format!(" {name} ")), "{row}");
        assert!(row.contains("service core (cpu 0)"), "{row}");
        assert!(row.contains("cluster, ivi"), "{row}");
    }
    for line in [
        "  memory        host 0x40000000..0x48000000 (128 MiB)",
        "  console       /pl011@9000000 at 0x9000000..0x9001000, interrupts 33",
        "  cores: vCPU 0 on cpu 2, vCPU 1 on cpu 3",
        "    0x40000000..0x50000000  0x50000000..0x60000000  256 MiB",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
}

#[test]
fn an_all_except_partition_shows_its_list_and_what_was_left_out() {
    let explanation = explained("qemu-virt/examples/all-except.toml");
    let text = explanation.text();
    assert!(
        text.contains("  devices: all except /flash@0, /fw-cfg@9020000 (25 given, 7 left out)\n"),
        "{text}"
    );
    assert!(text.contains("  left out by all_except\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("    /virtio_mmio@a003000  device /virtio_mmio@a003000 (host")),
        "{text}"
    );
    let json = serde_json::to_value(&explanation).unwrap();
    let ivi = &json["partitions"][1];
    assert_eq!(
        ivi["all_except"]["except"],
        json!(["/flash@0", "/fw-cfg@9020000"])
    );
    assert_eq!(ivi["all_except"]["left_out"].as_array().unwrap().len(), 7);
    assert_eq!(ivi["devices"].as_array().unwrap().len(), 25);
    assert_eq!(
        ivi["devices"][24],
        json!({ "path": "/pl031@9010000", "mmio": [{ "base": 0x901_0000, "size": 0x1000 }], "interrupts": [34] })
    );
    // Every device the JSON gives is in the tables.
    for device in ivi["devices"].as_array().unwrap() {
        let path = device["path"].as_str().unwrap();
        assert!(text.contains(&format!("    {path} ")), "{path}");
    }
}

/// A core with no partition and a home core: the hypervisor table says
/// which core serves, a mediated device which core is its home.
#[test]
fn home_cores_and_the_service_core() {
    let text = super::fixture::BASE.replacen("cpus = [1]", "cpus = [0, 1]", 1)
        + "\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\nhome_cpu = 3\n";
    let loaded = Fixture::new()
        .load(&text)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let explanation = Explanation::of(&loaded.system);
    assert_eq!(explanation.hypervisor.free_cpus, [] as [u64; 0]);
    assert_eq!(explanation.hypervisor.service_cpu, None);
    let storage = &explanation.mediated[1];
    assert_eq!((storage.kind, storage.home_cpu), ("storage", Some(3)));
    assert!(
        storage.shared_by.is_empty(),
        "no partition has a disk on it"
    );
    let text = explanation.text();
    assert!(text.contains("  service core  none\n"), "{text}");
    let mediated = &text[text.find("\nmediated devices\n").unwrap()..];
    let console = mediated
        .lines()
        .find(|l| l.starts_with("  console "))
        .unwrap();
    assert!(console.contains("service core (none free)"), "{console}");
    let disk = mediated
        .lines()
        .find(|l| l.starts_with("  storage "))
        .unwrap();
    assert!(disk.contains(" cpu 3 "), "{disk}");
    assert!(disk.contains(" none "), "shared by none: {disk}");
}

/// The storage device with the crash records shows their GPT partition,
/// in its row of the tables and in the JSON; the other mediated devices,
/// and storage without records, have no `records` in the JSON.
#[test]
fn the_crash_records_partition_is_shown_on_its_storage_device() {
    let explanation = explained("qemu-virt/examples/records.toml");
    let text = explanation.text();
    let mediated = &text[text.find("\nmediated devices\n").unwrap()..];
    let disk = mediated
        .lines()
        .find(|l| l.starts_with("  storage "))
        .unwrap_or_else(|| panic!("no storage row in\n{text}"));
    assert!(
        disk.ends_with(
            "1024 KiB of lower priorities in flight, crash records in GPT partition \"hv-records\""
        ),
        "{disk}"
    );
    let json = serde_json::to_value(&explanation).unwrap();
    let storage = &json["mediated"][1];
    assert_eq!(storage["kind"], "storage");
    assert_eq!(storage["records"], "hv-records");
    assert_eq!(storage["shared_by"], json!(["cluster", "ivi"]));
    assert!(
        json["mediated"][0].get("records").is_none(),
        "the console has none"
    );
    let plain = serde_json::to_value(explained("qemu-virt/tests/storage.toml")).unwrap();
    for m in plain["mediated"].as_array().unwrap() {
        assert!(m.get("records").is_none(), "{m}");
    }
}
