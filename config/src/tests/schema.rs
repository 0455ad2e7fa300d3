//! `config/schema/partition-config.schema.json` against the parser: same
//! keys at every level, and the repository's configs judged the same way.

use std::path::Path;

use serde_json::{Map, Value};

use crate::raw::introspect::keys;
use crate::raw::{
    RawAllExcept, RawAudio, RawConfig, RawDeviceTable, RawDisk, RawDisplay, RawHypervisor, RawMap,
    RawPartition, RawPartitionAudio, RawRegion, RawScreenRect, RawStorage, RawTouch,
};

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/partition-config.schema.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn property_names(object: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = object["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

#[test]
fn is_draft_2020_12() {
    assert_eq!(
        schema()["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn keys_match_the_parser() {
    let schema = schema();
    let defs = &schema["$defs"];
    assert_eq!(property_names(&schema), keys::<RawConfig>(), "top level");
    assert_eq!(
        property_names(&defs["hypervisor"]),
        keys::<RawHypervisor>(),
        "[hypervisor]"
    );
    assert_eq!(
        property_names(&defs["region"]),
        keys::<RawRegion>(),
        "hypervisor.memory"
    );
    assert_eq!(
        property_names(&defs["partition"]),
        keys::<RawPartition>(),
        "[[partition]]"
    );
    assert_eq!(
        property_names(&defs["memoryMap"]),
        keys::<RawMap>(),
        "partition.memory"
    );
    assert_eq!(
        property_names(&defs["deviceTable"]),
        keys::<RawDeviceTable>(),
        "partition.devices table form"
    );
    assert_eq!(
        property_names(&defs["allExcept"]),
        keys::<RawAllExcept>(),
        "partition.devices all_except form"
    );
    assert_eq!(
        property_names(&defs["storage"]),
        keys::<RawStorage>(),
        "[[storage]]"
    );
    assert_eq!(
        property_names(&defs["disk"]),
        keys::<RawDisk>(),
        "partition.disks"
    );
    assert_eq!(
        property_names(&defs["display"]),
        keys::<RawDisplay>(),
        "[[display]]"
    );
    assert_eq!(
        property_names(&defs["touch"]),
        keys::<RawTouch>(),
        "[[touch]]"
    );
    assert_eq!(
        property_names(&defs["audio"]),
        keys::<RawAudio>(),
        "[[audio]]"
    );
    assert_eq!(
        property_names(&defs["partition"]["properties"]["audio"]),
        keys::<RawPartitionAudio>(),
        "partition.audio"
    );
    assert_eq!(
        property_names(&defs["view"]),
        keys::<RawScreenRect>(),
        "partition.views"
    );
    // A protected region: the same without a deadline (the validator
    // refuses one there).
    let mut region = keys::<RawScreenRect>();
    region.retain(|k| !["deadline_ms", "fallback"].contains(k));
    assert_eq!(
        property_names(&defs["screenRect"]),
        region,
        "partition.protected"
    );
}

#[test]
fn optional_keys_match_the_parser() {
    let schema = schema();
    let required = |object: &Value| -> Vec<String> {
        let mut r: Vec<String> = object["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        r.sort();
        r
    };
    assert_eq!(required(&schema), ["board", "hypervisor", "partition"]);
    assert_eq!(
        required(&schema["$defs"]["partition"]),
        ["cpus", "criticality", "image", "memory", "name", "priority"]
    );
    assert_eq!(required(&schema["$defs"]["deviceTable"]), ["path"]);
    assert_eq!(required(&schema["$defs"]["allExcept"]), ["all_except"]);
    assert_eq!(required(&schema["$defs"]["storage"]), ["device", "name"]);
    assert_eq!(required(&schema["$defs"]["disk"]), ["storage"]);
    assert_eq!(
        required(&schema["$defs"]["display"]),
        ["device", "height", "name", "width"]
    );
    assert_eq!(
        required(&schema["$defs"]["touch"]),
        ["device", "display", "name"]
    );
    assert_eq!(required(&schema["$defs"]["audio"]), ["device", "name"]);
    assert_eq!(
        required(&schema["$defs"]["screenRect"]),
        ["display", "height", "width", "x", "y"]
    );
    // What the parser accepts without the optional keys.
    let minimal = super::fixture::BASE.replace("on_fault = \"restart\"\n", "");
    assert!(super::fixture::Fixture::new().load(&minimal).is_ok());
}

/// Checks `value` against `schema` for the keywords this schema uses. Not a
/// general validator: it panics on a keyword it does not know, so that the
/// schema cannot grow a rule this test silently skips. `pattern` is not
/// checked (no regex engine here); the name rule has its own tests.
fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = schema.as_object().expect("schema object");
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "title" | "description" | "examples" | "default" | "$defs" | "pattern" => {}
            // Applied by "if".
            "then" => {}
            "allOf" => {
                for branch in rule.as_array().unwrap() {
                    check(root, branch, value, at, errors);
                }
            }
            "dependentRequired" => {
                let Some(object) = value.as_object() else {
                    continue;
                };
                for (key, needs) in rule.as_object().unwrap() {
                    if !object.contains_key(key) {
                        continue;
                    }
                    for need in needs.as_array().unwrap() {
                        let need = need.as_str().unwrap();
                        if !object.contains_key(need) {
                            errors.push(format!("{at}: {key} needs {need}"));
                        }
                    }
                }
            }
            "if" => {
                let mut failed = Vec::new();
                check(root, rule, value, at, &mut failed);
                if failed.is_empty()
                    && let Some(then) = schema.get("then")
                {
                    check(root, then, value, at, errors);
                }
            }
            "not" => {
                let mut failed = Vec::new();
                check(root, rule, value, at, &mut failed);
                if failed.is_empty() {
                    errors.push(format!("{at}: {value} matches not {rule}"));
                }
            }
            "const" => {
                if value != rule {
                    errors.push(format!("{at}: {value} is not {rule}"));
                }
            }
            "$ref" => {
                let name = rule
                    .as_str()
                    .unwrap()
                    .strip_prefix("#/$defs/")
                    .expect("local $ref");
                check(root, &root["$defs"][name], value, at, errors);
            }
            "type" => {
                let ok = match rule.as_str().unwrap() {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "integer" => value.is_i64() || value.is_u64(),
                    other => panic!("type {other}"),
                };
                if !ok {
                    errors.push(format!("{at}: not a {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    errors.push(format!("{at}: {value} not in {rule}"));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "multipleOf" => {
                let (Some(v), Some(r)) = (value.as_i64(), rule.as_i64()) else {
                    continue;
                };
                let ok = match keyword.as_str() {
                    "minimum" => v >= r,
                    "maximum" => v <= r,
                    "exclusiveMinimum" => v > r,
                    _ => v % r == 0,
                };
                if !ok {
                    errors.push(format!("{at}: {v} fails {keyword} {r}"));
                }
            }
            "minLength" => {
                if value
                    .as_str()
                    .is_some_and(|s| (s.chars().count() as u64) < rule.as_u64().unwrap())
                {
                    errors.push(format!("{at}: too short"));
                }
            }
            "maxLength" => {
                if value
                    .as_str()
                    .is_some_and(|s| (s.chars().count() as u64) > rule.as_u64().unwrap())
                {
                    errors.push(format!("{at}: too long"));
                }
            }
            "minItems" => {
                if value
                    .as_array()
                    .is_some_and(|a| (a.len() as u64) < rule.as_u64().unwrap())
                {
                    errors.push(format!("{at}: too few items"));
                }
            }
            "maxItems" => {
                if value
                    .as_array()
                    .is_some_and(|a| (a.len() as u64) > rule.as_u64().unwrap())
                {
                    errors.push(format!("{at}: too many items"));
                }
            }
            "uniqueItems" => {
                if let Some(items) = value.as_array()
                    && (1..items.len()).any(|i| items[..i].contains(&items[i]))
                {
                    errors.push(format!("{at}: items not unique"));
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    check(root, rule, item, &format!("{at}[{i}]"), errors);
                }
            }
            "required" => {
                for key in rule.as_array().unwrap() {
                    let key = key.as_str().unwrap();
                    if value.as_object().is_some_and(|o| !o.contains_key(key)) {
                        errors.push(format!("{at}: missing {key}"));
                    }
                }
            }
            "properties" => {
                let properties = rule.as_object().unwrap();
                for (key, item) in value.as_object().into_iter().flatten() {
                    if let Some(property) = properties.get(key) {
                        check(root, property, item, &format!("{at}.{key}"), errors);
                    }
                }
            }
            "additionalProperties" => {
                assert_eq!(rule, &Value::Bool(false));
                let known: &Map<String, Value> = schema["properties"].as_object().unwrap();
                for key in value.as_object().into_iter().flatten().map(|(k, _)| k) {
                    if !known.contains_key(key) {
                        errors.push(format!("{at}: unknown key {key}"));
                    }
                }
            }
            "anyOf" => {
                let any = rule.as_array().unwrap().iter().any(|branch| {
                    let mut e = Vec::new();
                    check(root, branch, value, at, &mut e);
                    e.is_empty()
                });
                if !any {
                    errors.push(format!("{at}: matches none of anyOf"));
                }
            }
            "oneOf" => {
                let matching = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|branch| {
                        let mut e = Vec::new();
                        check(root, branch, value, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                if matching != 1 {
                    errors.push(format!("{at}: matches {matching} of oneOf"));
                }
            }
            other => panic!("schema keyword {other} is not understood by this test"),
        }
    }
}

fn file_schema_errors(file: &Path) -> Vec<String> {
    text_schema_errors(&schema(), &std::fs::read_to_string(file).unwrap())
}

#[test]
fn repository_configs_conform() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in [
        "qemu-virt",
        "qemu-virt/tests",
        "qemu-virt/examples",
        "imx8mp-evk/tests",
        "imx8mp-evk/examples",
    ] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let errors = file_schema_errors(&path);
                assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            }
        }
    }
}

#[test]
fn schema_rejects_what_the_parser_rejects_on_shape() {
    let invalid = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu-virt/invalid");
    for (file, expected) in [
        ("unknown-key.toml", "$.partition[0]: unknown key colour"),
        ("missing-key.toml", "$.partition[0]: missing cpus"),
        ("wrong-type.toml", "$.partition[0].cpus: not a \"array\""),
        (
            "misaligned.toml",
            "$.partition[0].memory[0].host: 1207961600 fails multipleOf 4096",
        ),
        (
            "priority-range.toml",
            "$.partition[0].priority: 256 fails maximum 255",
        ),
        (
            "bad-criticality.toml",
            "$.partition[0].criticality: \"asil-e\" not in",
        ),
        (
            "hypervisor-misaligned.toml",
            "$.hypervisor.memory.base: 1073807360 fails multipleOf 2097152",
        ),
        ("no-partitions.toml", "$: missing partition"),
        (
            "watchdog-inject.toml",
            "$.partition[0].on_fault: \"inject\" matches not",
        ),
        // The only other branch, a string, does not match either.
        (
            "emulated-interrupt.toml",
            "$.partition[0].devices[0]: matches 0 of oneOf",
        ),
        (
            "disk-gpt-and-lba.toml",
            "$.partition[0].disks[0]: matches 0 of oneOf",
        ),
        ("records-bad-name.toml", "$.storage[0].records: too short"),
        (
            "protected-by-qm.toml",
            "$.partition[0].criticality: \"qm\" matches not {\"const\":\"qm\"}",
        ),
    ] {
        let errors = file_schema_errors(&invalid.join(file));
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{file}: {errors:?}"
        );
    }
}

/// The interrupts the schema keeps passthrough devices off are the
/// emulated devices' ones.
#[test]
fn emulated_interrupts_match_the_layout() {
    let schema = schema();
    let items = &schema["$defs"]["deviceTable"]["properties"]["interrupts"]["items"];
    let listed: Vec<u64> = items["not"]["enum"]
        .as_array()
        .expect("an enum of INTIDs")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..=crate::dtb::MAX_SPI_INTID)
        .filter(|&i| crate::layout::is_reserved_intid(i))
        .map(u64::from)
        .collect();
    assert_eq!(listed, expected);
}

/// The schema's view of `BASE` with `devices = <value>` in the first
/// partition.
fn devices_errors(value: &str) -> Vec<String> {
    let schema = schema();
    let text =
        super::fixture::BASE.replacen("cpus = [1]", &format!("cpus = [1]\ndevices = {value}"), 1);
    text_schema_errors(&schema, &text)
}

/// What the schema says of the config `text`.
fn text_schema_errors(schema: &Value, text: &str) -> Vec<String> {
    let toml: toml::Value = toml::from_str(text).unwrap();
    let mut errors = Vec::new();
    check(
        schema,
        schema,
        &serde_json::to_value(toml).unwrap(),
        "$",
        &mut errors,
    );
    errors
}

#[test]
fn devices_are_a_list_or_all_except() {
    assert!(devices_errors("[\"/pl061@9030000\", { path = \"/pl031@9010000\" }]").is_empty());
    assert!(devices_errors("{ all_except = [] }").is_empty());
    assert!(devices_errors("{ all_except = [\"/flash@0\", \"serial0\"] }").is_empty());
    for (value, expected) in [
        (
            "{ all_but = [] }",
            "$.partition[0].devices: matches none of anyOf",
        ),
        ("{}", "$.partition[0].devices: matches none of anyOf"),
        (
            "\"/flash@0\"",
            "$.partition[0].devices: matches none of anyOf",
        ),
        ("[5]", "$.partition[0].devices[0]: matches 0 of oneOf"),
    ] {
        let errors = devices_errors(value);
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{value}: {errors:?}"
        );
    }
}

/// The schema's view of `BASE` with `disks` in the first partition and a
/// storage device.
fn disk_errors(disks: &str) -> Vec<String> {
    let schema = schema();
    let text = format!(
        "{}\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n",
        super::fixture::BASE.replacen("cpus = [1]", &format!("cpus = [1]\ndisks = [{disks}]"), 1)
    );
    text_schema_errors(&schema, &text)
}

#[test]
fn disks_are_a_gpt_name_or_an_lba_range() {
    assert!(disk_errors("{ storage = \"disk0\", gpt = \"data\" }").is_empty());
    assert!(
        disk_errors("{ storage = \"disk0\", lba = 0, sectors = 1, read_only = true }").is_empty()
    );
    for (disk, expected) in [
        (
            "{ storage = \"disk0\", gpt = \"data\", lba = 0 }",
            "$.partition[0].disks[0]: matches 0 of oneOf",
        ),
        (
            "{ storage = \"disk0\", gpt = \"data\", sectors = 1 }",
            "$.partition[0].disks[0]: matches 0 of oneOf",
        ),
        (
            "{ storage = \"disk0\", lba = 0 }",
            "$.partition[0].disks[0]: matches 0 of oneOf",
        ),
        (
            "{ storage = \"disk0\" }",
            "$.partition[0].disks[0]: matches 0 of oneOf",
        ),
        (
            "{ storage = \"disk0\", lba = 0, sectors = 0 }",
            "$.partition[0].disks[0].sectors: 0 fails exclusiveMinimum 0",
        ),
        (
            "{ storage = \"disk0\", gpt = \"\" }",
            "$.partition[0].disks[0].gpt: too short",
        ),
        (
            "{ storage = \"disk0\", gpt = \"a-name-of-thirty-seven-characters-xyz\" }",
            "$.partition[0].disks[0].gpt: too long",
        ),
        (
            "{ storage = \"disk0\", gpt = \"x\", read_only = 1 }",
            "$.partition[0].disks[0].read_only: not a \"boolean\"",
        ),
    ] {
        let errors = disk_errors(disk);
        assert!(errors.iter().any(|e| e == expected), "{disk}: {errors:?}");
    }
    let seventeen = vec!["{ storage = \"disk0\", gpt = \"x\", read_only = true }"; 17].join(", ");
    assert_eq!(
        disk_errors(&seventeen),
        ["$.partition[0].disks: too many items"]
    );
}

#[test]
fn watchdog_and_inject_are_refused_together_only() {
    let schema = schema();
    let partition = |extra: &str| -> Vec<String> {
        let text = format!(
            "{}{extra}\n",
            super::fixture::BASE.replace("on_fault = \"restart\"\n", "")
        );
        let toml: toml::Value = toml::from_str(&text).unwrap();
        let mut errors = Vec::new();
        check(
            &schema,
            &schema,
            &serde_json::to_value(toml).unwrap(),
            "$",
            &mut errors,
        );
        errors
    };
    assert!(partition("watchdog = true").is_empty());
    assert!(partition("watchdog = true\non_fault = \"restart\"").is_empty());
    assert!(partition("watchdog = false\non_fault = \"inject\"").is_empty());
    assert!(partition("on_fault = \"inject\"").is_empty());
    assert_eq!(
        partition("watchdog = true\non_fault = \"inject\""),
        ["$.partition[1].on_fault: \"inject\" matches not {\"const\":\"inject\"}"]
    );
    assert_eq!(
        partition("watchdog = \"yes\""),
        ["$.partition[1].watchdog: not a \"boolean\""]
    );
}

/// The schema's view of a config.
fn text_errors(text: &str) -> Vec<String> {
    let schema = schema();
    let toml: toml::Value = toml::from_str(text).unwrap();
    let mut errors = Vec::new();
    check(
        &schema,
        &schema,
        &serde_json::to_value(toml).unwrap(),
        "$",
        &mut errors,
    );
    errors
}

/// `BASE` with `cluster` and `ivi` lines in the two partitions and a
/// 1920x720 display `instrument` (with `display` lines of its own).
fn display_text(cluster: &str, ivi: &str, display: &str) -> String {
    let text = super::fixture::BASE
        .replacen("cpus = [1]", &format!("cpus = [1]\n{cluster}"), 1)
        .replacen("cpus = [2, 3]", &format!("cpus = [2, 3]\n{ivi}"), 1);
    format!(
        "{text}\n[[display]]\nname = \"instrument\"\ndevice = \"/virtio_mmio@a003c00\"\nwidth = 1920\nheight = 720\n{display}"
    )
}

const VIEW: &str =
    "views = [{ display = \"instrument\", x = 0, y = 0, width = 1920, height = 720 }]";

#[test]
fn displays_views_and_protected_regions() {
    let protected =
        "protected = [{ display = \"instrument\", x = 0, y = 0, width = 1920, height = 96 }]";
    let cluster = format!("{VIEW}\n{protected}\ndisplay_memory_mib = 16\ndisplay_resources = 8");
    let valid = display_text(&cluster, VIEW, "refresh_hz = 60\nhome_cpu = 0\n");
    assert!(text_errors(&valid).is_empty(), "{:?}", text_errors(&valid));
    for (cluster, ivi, display, expected) in [
        (
            VIEW.to_owned(),
            protected.to_owned(),
            "",
            "$.partition[1].criticality: \"qm\" matches not {\"const\":\"qm\"}",
        ),
        (
            "display_memory_mib = 16".to_owned(),
            String::new(),
            "",
            "$.partition[0]: display_memory_mib needs views",
        ),
        (
            "display_resources = 8".to_owned(),
            String::new(),
            "",
            "$.partition[0]: display_resources needs views",
        ),
        (
            format!("{VIEW}\ndisplay_memory_mib = 513"),
            String::new(),
            "",
            "$.partition[0].display_memory_mib: 513 fails maximum 512",
        ),
        (
            format!("{VIEW}\ndisplay_resources = 0"),
            String::new(),
            "",
            "$.partition[0].display_resources: 0 fails minimum 1",
        ),
        (
            VIEW.replace("x = 0", "x = 4096"),
            String::new(),
            "",
            "$.partition[0].views[0].x: 4096 fails maximum 4095",
        ),
        (
            VIEW.replace("width = 1920", "width = 0"),
            String::new(),
            "",
            "$.partition[0].views[0].width: 0 fails minimum 1",
        ),
        (
            VIEW.replace(", height = 720", ""),
            String::new(),
            "",
            "$.partition[0].views[0]: missing height",
        ),
        (
            String::new(),
            String::new(),
            "refresh_hz = 241\n",
            "$.display[0].refresh_hz: 241 fails maximum 240",
        ),
        (
            String::new(),
            String::new(),
            "depth = 32\n",
            "$.display[0]: unknown key depth",
        ),
    ] {
        let errors = text_errors(&display_text(&cluster, &ivi, display));
        assert!(
            errors.iter().any(|e| e == expected),
            "{cluster} / {ivi} / {display}: {errors:?}"
        );
    }
    let seventeen = format!(
        "views = [{}]",
        vec!["{ display = \"instrument\", x = 0, y = 0, width = 1, height = 1 }"; 17].join(", ")
    );
    assert_eq!(
        text_errors(&display_text(&seventeen, "", "")),
        ["$.partition[0].views: too many items"]
    );
    assert!(text_errors(&display_text("", "protected = []", "")).is_empty());
}

/// The virtio-gpu device of a partition with views takes the slot after
/// its disks: 15 disks at most.
#[test]
fn views_leave_room_for_15_disks() {
    let disks = |n: usize| {
        format!(
            "disks = [{}]",
            vec!["{ storage = \"disk0\", gpt = \"x\", read_only = true }"; n].join(", ")
        )
    };
    let storage = "[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n";
    let text = |n: usize, views: &str| display_text(&format!("{}\n{views}", disks(n)), "", storage);
    assert!(text_errors(&text(15, VIEW)).is_empty());
    assert!(text_errors(&text(16, "")).is_empty());
    assert!(text_errors(&text(16, "views = []")).is_empty());
    assert_eq!(
        text_errors(&text(16, VIEW)),
        ["$.partition[0].disks: too many items"]
    );
}

/// `display_text` with a touch panel on the display (with `panel` lines of
/// its own).
fn touch_text(cluster: &str, ivi: &str, panel: &str) -> String {
    format!(
        "{}\n[[touch]]\nname = \"panel\"\ndevice = \"/virtio_mmio@a003a00\"\ndisplay = \"instrument\"\n{panel}",
        display_text(cluster, ivi, "")
    )
}

#[test]
fn touch_panels_and_touch() {
    let valid = touch_text(
        &format!("{VIEW}\ntouch = true"),
        "touch = false",
        "home_cpu = 0\n",
    );
    assert!(text_errors(&valid).is_empty(), "{:?}", text_errors(&valid));
    for (cluster, panel, expected) in [
        ("touch = true", "", "$.partition[0]: missing views"),
        (
            "touch = true\nviews = []",
            "",
            "$.partition[0].views: too few items",
        ),
        (
            "touch = \"yes\"",
            "",
            "$.partition[0].touch: not a \"boolean\"",
        ),
        (
            "",
            "home_cpu = -1\n",
            "$.touch[0].home_cpu: -1 fails minimum 0",
        ),
        ("", "width = 100\n", "$.touch[0]: unknown key width"),
    ] {
        let errors = text_errors(&touch_text(cluster, "", panel));
        assert!(
            errors.iter().any(|e| e == expected),
            "{cluster} / {panel}: {errors:?}"
        );
    }
    let no_display = touch_text("", "", "").replace("display = \"instrument\"\n", "");
    assert_eq!(text_errors(&no_display), ["$.touch[0]: missing display"]);
}
