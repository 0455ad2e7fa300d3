//! Audio outputs: `[[audio]]` tables and the partitions' `audio`, one rule
//! at a time, each breaking a valid system in one place.

use super::fixture::{BASE, Fixture};
use super::rules::{assert_has, assert_only, errors};
use crate::model::Region;
use crate::{OwnedAudio, OwnedPartitionAudio};

/// An output on the slot below the touch panel's pointer.
const SPEAKER: &str = "[[audio]]\nname = \"speaker\"\ndevice = \"/virtio_mmio@a003400\"\n";

/// `BASE` with `cluster` and `ivi` lines at the end of the two partitions
/// and `outputs` after them.
fn system(cluster: &str, ivi: &str, outputs: &str) -> String {
    let text = BASE
        .replacen(
            "on_fault = \"restart\"\n",
            &format!("on_fault = \"restart\"\n{cluster}\n"),
            1,
        )
        .replacen("cpus = [2, 3]\n", &format!("cpus = [2, 3]\n{ivi}\n"), 1);
    format!("{text}\n{outputs}")
}

/// Where `needle` first starts in `text`, as `line:col` (1-based).
fn at(text: &str, needle: &str) -> String {
    nth_at(text, needle, 0)
}

/// Where the value of the first `key = value` line `line` is in `text`.
fn value_at(text: &str, line: &str) -> String {
    let (key, value) = line.split_once(" = ").expect("a key = value line");
    let offset = text
        .find(line)
        .unwrap_or_else(|| panic!("no {line:?} in:\n{text}"))
        + key.len()
        + 3;
    let _ = value;
    position(text, offset)
}

/// Where the `n`th (0-based) `needle` starts in `text`.
fn nth_at(text: &str, needle: &str, n: usize) -> String {
    let (offset, _) = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("no {needle:?} #{n} in:\n{text}"));
    position(text, offset)
}

/// Byte `offset` of `text` as `line:col` (1-based).
fn position(text: &str, offset: usize) -> String {
    let line = text[..offset].matches('\n').count() + 1;
    let col = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("{line}:{col}")
}

#[test]
fn outputs_and_streams_load() {
    let text = system(
        "audio = {}",
        "audio = { gain_db = -3, duck_db = -20, priority = 50 }",
        &format!("{SPEAKER}period_ms = 5\nperiods = 2\nhome_cpu = 0\n"),
    );
    let loaded = Fixture::new()
        .load(&text)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let sys = loaded.system;
    assert_eq!(
        sys.audio,
        [OwnedAudio {
            name: "speaker".into(),
            device: "/virtio_mmio@a003400".into(),
            regions: vec![Region {
                base: 0xa00_3400,
                size: 0x200
            }],
            interrupts: vec![32 + 16 + 26],
            period_ms: 5,
            periods: 2,
            home_cpu: Some(0),
        }]
    );
    // The cluster's priority is its partition's; its gain 0 dB, its duck
    // the default.
    let cluster = sys.partitions[0].audio.unwrap();
    assert_eq!(
        cluster,
        OwnedPartitionAudio {
            output: 0,
            priority: 200,
            gain_db: 0,
            duck_db: -20
        }
    );
    assert_eq!(cluster.gain_q16(), 65536);
    assert_eq!(cluster.duck_q16(), 6554);
    let ivi = sys.partitions[1].audio.unwrap();
    assert_eq!((ivi.priority, ivi.gain_db), (50, -3));
    assert_eq!(ivi.gain_q16(), 46396);
    // -96 mutes.
    let muted = OwnedPartitionAudio {
        duck_db: -96,
        ..ivi
    };
    assert_eq!(muted.duck_q16(), 0);
    // Defaults without the optional keys.
    let plain = Fixture::new()
        .load(&system("audio = {}", "", SPEAKER))
        .unwrap()
        .system;
    assert_eq!((plain.audio[0].period_ms, plain.audio[0].periods), (10, 3));
    assert_eq!(plain.partitions[1].audio, None);
}

#[test]
fn output_keys_out_of_range() {
    let text = system("", "", &format!("{SPEAKER}period_ms = 60\n"));
    assert_only(
        &errors(&text),
        &at(&text, "60"),
        "period_ms 60 of audio output \"speaker\" is out of range 5..=50 ms",
    );
    let text = system("", "", &format!("{SPEAKER}periods = 1\n"));
    assert_only(
        &errors(&text),
        &at(&text, "1\n"),
        "periods 1 of audio output \"speaker\" is out of range 2..=8",
    );
}

#[test]
fn stream_keys_out_of_range() {
    let text = system("audio = { gain_db = 13 }", "", SPEAKER);
    assert_only(
        &errors(&text),
        &at(&text, "13"),
        "gain_db 13 of audio of partition \"cluster\" is out of range -60..=12 dB",
    );
    let text = system("audio = { duck_db = -97 }", "", SPEAKER);
    assert_only(
        &errors(&text),
        &at(&text, "-97"),
        "duck_db -97 of audio of partition \"cluster\" is out of range -96..=0 dB",
    );
    let text = system("audio = { priority = 300 }", "", SPEAKER);
    assert_only(
        &errors(&text),
        &at(&text, "300"),
        "priority 300 of audio of partition \"cluster\" is out of range 0..=255",
    );
}

#[test]
fn a_stream_needs_an_output() {
    let text = system("audio = {}", "", "");
    assert_only(
        &errors(&text),
        &value_at(&text, "audio = {}"),
        "partition \"cluster\" has audio but there is no [[audio]] output to mix its stream into",
    );
    let text = system("audio = { output = \"rear\" }", "", SPEAKER);
    assert_only(
        &errors(&text),
        &at(&text, "\"rear\""),
        "partition \"cluster\": unknown audio output \"rear\" (the outputs are \"speaker\")",
    );
    let two = format!("{SPEAKER}\n[[audio]]\nname = \"rear\"\ndevice = \"/virtio_mmio@a003200\"\n");
    let text = system("audio = {}", "", &two);
    assert_only(
        &errors(&text),
        &value_at(&text, "audio = {}"),
        "partition \"cluster\": audio needs output = one of \"speaker\", \"rear\": there are several [[audio]] outputs",
    );
    assert!(errors(&system("audio = { output = \"rear\" }", "", &two)).is_empty());
}

#[test]
fn output_device_is_the_hypervisors() {
    // Another output's device.
    let two = format!("{SPEAKER}\n[[audio]]\nname = \"rear\"\ndevice = \"/virtio_mmio@a003400\"\n");
    let text = system("", "", &two);
    assert_only(
        &errors(&text),
        &nth_at(&text, "\"/virtio_mmio@a003400\"", 1),
        "audio output \"rear\" device /virtio_mmio@a003400 is already audio output \"speaker\"",
    );
    // A passthrough device.
    let text = system("devices = [\"/virtio_mmio@a003400\"]", "", SPEAKER);
    assert!(
        errors(&text)
            .iter()
            .any(|e| e.contains("is audio output \"speaker\", which the hypervisor mediates")),
        "{:?}",
        errors(&text)
    );
}

#[test]
fn the_mixer_never_runs_on_a_safety_core() {
    let text = system("", "", &format!("{SPEAKER}home_cpu = 1\n"));
    assert_only(
        &errors(&text),
        &value_at(&text, "home_cpu = 1"),
        "home_cpu 1 of audio output \"speaker\" is a core of partition \"cluster\" (asil-b): an audio output's mixer must never run on a safety partition's core",
    );
    assert!(errors(&system("", "", &format!("{SPEAKER}home_cpu = 2\n"))).is_empty());
}

#[test]
fn the_sound_device_needs_a_free_slot() {
    let storage = "[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n";
    let disks = |n: usize| {
        format!(
            "disks = [{}]",
            vec!["{ storage = \"disk0\", gpt = \"x\", read_only = true }"; n].join(", ")
        )
    };
    let fits = system(
        &format!("{}\naudio = {{}}", disks(15)),
        "",
        &format!("{storage}\n{SPEAKER}"),
    );
    assert!(errors(&fits).is_empty(), "{:?}", errors(&fits));
    let full = system(
        &format!("{}\naudio = {{}}", disks(16)),
        "",
        &format!("{storage}\n{SPEAKER}"),
    );
    assert_has(
        &errors(&full),
        &value_at(&full, "audio = {}"),
        "partition \"cluster\" has 16 disks, 0 virtio-gpu device, 0 touch input devices and a virtio-snd device (audio): they need 17 virtio-mmio slots, and it has 16",
    );
}
