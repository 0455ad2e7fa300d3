//! The config file as written: serde types that keep every value's span.
//!
//! Only the shape is checked here (keys, types). Ranges, names and
//! everything that needs the board are left to `validate`, which can then
//! report all of them at once instead of stopping at the first as serde
//! does.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub board: Spanned<Str>,
    pub hypervisor: Spanned<RawHypervisor>,
    /// Optional for serde so that "no partitions" gets its own message.
    #[serde(default)]
    pub partition: Option<Spanned<Vec<Spanned<RawPartition>>>>,
    #[serde(default)]
    pub storage: Option<Spanned<Vec<Spanned<RawStorage>>>>,
    #[serde(default)]
    pub display: Option<Spanned<Vec<Spanned<RawDisplay>>>>,
    #[serde(default)]
    pub touch: Option<Spanned<Vec<Spanned<RawTouch>>>>,
    #[serde(default)]
    pub audio: Option<Spanned<Vec<Spanned<RawAudio>>>>,
}

/// An `[[audio]]` table: a physical audio output whose stream the
/// hypervisor feeds with the mix of the partitions' streams.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudio {
    pub name: Spanned<Str>,
    pub device: Spanned<Str>,
    #[serde(default)]
    pub period_ms: Option<Spanned<Int>>,
    #[serde(default)]
    pub periods: Option<Spanned<Int>>,
    #[serde(default)]
    pub home_cpu: Option<Spanned<Int>>,
}

/// A partition's `audio` table: its stream on an output, and how the mixer
/// treats it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartitionAudio {
    #[serde(default)]
    pub output: Option<Spanned<Str>>,
    #[serde(default)]
    pub priority: Option<Spanned<Int>>,
    #[serde(default)]
    pub gain_db: Option<Spanned<Int>>,
    #[serde(default)]
    pub duck_db: Option<Spanned<Int>>,
}

/// A `[[touch]]` table: a physical multi-touch panel lying on a display,
/// whose contacts the hypervisor routes to the partitions' views, and
/// optionally an absolute pointer whose button-down drags are one more
/// contact on it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTouch {
    pub name: Spanned<Str>,
    pub device: Spanned<Str>,
    pub display: Spanned<Str>,
    #[serde(default)]
    pub pointer: Option<Spanned<Str>>,
    #[serde(default)]
    pub home_cpu: Option<Spanned<Int>>,
}

/// A `[[display]]` table: a physical display the hypervisor composes the
/// partitions' views onto.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDisplay {
    pub name: Spanned<Str>,
    pub device: Spanned<Str>,
    pub width: Spanned<Int>,
    pub height: Spanned<Int>,
    #[serde(default)]
    pub refresh_hz: Option<Spanned<Int>>,
    #[serde(default)]
    pub home_cpu: Option<Spanned<Int>>,
}

/// A `[[storage]]` table: a physical block device the hypervisor mediates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub name: Spanned<Str>,
    pub device: Spanned<Str>,
    #[serde(default)]
    pub home_cpu: Option<Spanned<Int>>,
    #[serde(default)]
    pub lower_in_flight_kib: Option<Spanned<Int>>,
    /// The GPT partition on this device where the hypervisor keeps its
    /// crash records.
    #[serde(default)]
    pub records: Option<Spanned<Str>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHypervisor {
    pub memory: Spanned<RawRegion>,
    pub console: Spanned<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub base: Spanned<Int>,
    pub size: Spanned<Int>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    pub name: Spanned<Str>,
    pub criticality: Spanned<Str>,
    pub priority: Spanned<Int>,
    pub cpus: Spanned<Vec<Spanned<Int>>>,
    pub image: Spanned<Str>,
    #[serde(default)]
    pub initrd: Option<Spanned<Str>>,
    #[serde(default)]
    pub on_fault: Option<Spanned<Str>>,
    #[serde(default)]
    pub watchdog: Option<Spanned<bool>>,
    #[serde(default)]
    pub bootargs: Option<Spanned<Str>>,
    pub memory: Spanned<Vec<Spanned<RawMap>>>,
    #[serde(default)]
    pub devices: Option<Spanned<RawDevices>>,
    #[serde(default)]
    pub disks: Option<Spanned<Vec<Spanned<RawDisk>>>>,
    #[serde(default)]
    pub views: Option<Spanned<Vec<Spanned<RawScreenRect>>>>,
    #[serde(default)]
    pub protected: Option<Spanned<Vec<Spanned<RawScreenRect>>>>,
    #[serde(default)]
    pub display_memory_mib: Option<Spanned<Int>>,
    #[serde(default)]
    pub display_resources: Option<Spanned<Int>>,
    #[serde(default)]
    pub touch: Option<Spanned<bool>>,
    #[serde(default)]
    pub audio: Option<Spanned<RawPartitionAudio>>,
}

/// A `views` or `protected` entry: a rectangle on a named display. Only a
/// view may have `deadline_ms` and `fallback` (the validator says so).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScreenRect {
    pub display: Spanned<Str>,
    pub x: Spanned<Int>,
    pub y: Spanned<Int>,
    pub width: Spanned<Int>,
    pub height: Spanned<Int>,
    #[serde(default)]
    pub deadline_ms: Option<Spanned<Int>>,
    #[serde(default)]
    pub fallback: Option<Spanned<Int>>,
}

/// A `disks` entry. Which of `gpt` and `lba`/`sectors` may go together is
/// the validator's business, so that it can say so at the right key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDisk {
    pub storage: Spanned<Str>,
    #[serde(default)]
    pub gpt: Option<Spanned<Str>>,
    #[serde(default)]
    pub lba: Option<Spanned<Int>>,
    #[serde(default)]
    pub sectors: Option<Spanned<Int>>,
    #[serde(default)]
    pub read_only: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMap {
    pub guest: Spanned<Int>,
    pub host: Spanned<Int>,
    pub size: Spanned<Int>,
}

/// A partition's `devices`: a list of devices, or every device the board
/// has left once the hypervisor and the other partitions have theirs,
/// except some.
#[derive(Debug)]
pub enum RawDevices {
    List(Vec<Spanned<RawDevice>>),
    AllExcept(RawAllExcept),
}

/// `devices = { all_except = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllExcept {
    /// Device-tree paths or aliases the partition does not get.
    pub all_except: Spanned<Vec<Spanned<Str>>>,
}

impl RawDevices {
    /// The explicit entries; none for `all_except`.
    pub fn list(&self) -> &[Spanned<RawDevice>] {
        match self {
            RawDevices::List(list) => list,
            RawDevices::AllExcept(_) => &[],
        }
    }
}

impl<'de> Deserialize<'de> for RawDevices {
    // Hand-written for the same reason as `RawDevice`: the inner error and
    // its position survive.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DevicesVisitor;
        impl<'de> Visitor<'de> for DevicesVisitor {
            type Value = RawDevices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of devices, or a table { all_except = [\"...\"] }")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawDevices, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(RawDevices::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDevices, A::Error> {
                RawAllExcept::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawDevices::AllExcept)
            }
        }
        deserializer.deserialize_any(DevicesVisitor)
    }
}

/// A `devices` entry: a bare path string, or a table that can also
/// override the interrupts the device tree gives the device.
#[derive(Debug)]
pub enum RawDevice {
    Path(String),
    Table(RawDeviceTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeviceTable {
    pub path: Spanned<Str>,
    #[serde(default)]
    pub interrupts: Option<Spanned<Vec<Spanned<Int>>>>,
}

impl<'de> Deserialize<'de> for RawDevice {
    // Hand-written rather than `#[serde(untagged)]`: an untagged enum
    // reports only "did not match any variant" and loses the inner error
    // (an unknown key in the table form, say) and its position.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DeviceVisitor;
        impl<'de> Visitor<'de> for DeviceVisitor {
            type Value = RawDevice;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a device-tree path or alias, or a table { path = \"...\", interrupts = [...] }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDevice, E> {
                Ok(RawDevice::Path(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDevice, A::Error> {
                RawDeviceTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawDevice::Table)
            }
        }
        deserializer.deserialize_any(DeviceVisitor)
    }
}

/// A TOML integer. Kept signed and unchecked so that the validator can
/// report a negative or too-large value together with every other error;
/// its own type so that a wrong type reads "expected an integer" rather
/// than "expected i64".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| too_large(v))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| too_large(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| too_large(v))
            }
        }
        deserializer.deserialize_i64(IntVisitor)
    }
}

fn too_large<E: de::Error>(v: impl fmt::LowerHex) -> E {
    E::custom(format_args!(
        "integer {v:#x} is out of range: TOML integers are 64-bit signed"
    ))
}

/// A TOML string; its own type for the same reason as [`Int`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str(pub String);

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl Visitor<'_> for StrVisitor {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str, E> {
                Ok(Str(v.to_owned()))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Parses `text`; on failure returns the byte span and message of the
/// (first) error, with serde's wording turned into TOML's.
pub fn parse(text: &str) -> Result<RawConfig, (std::ops::Range<usize>, String)> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        (span, reword(e.message()))
    })
}

/// serde talks about fields and structs; a config author writes keys and
/// tables.
fn reword(message: &str) -> String {
    let message = message.trim_end();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        format!(
            "unknown key {}",
            rest.replace("expected one of", "expected one of the keys")
        )
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        format!("missing required key {rest}")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
pub(crate) mod introspect {
    //! The key names each raw table accepts, read from the serde derive
    //! itself so that the JSON Schema test cannot drift from the parser.

    use serde::de::{self, Deserialize, Deserializer, Visitor};
    use std::fmt;

    /// A deserializer that only records the field list serde hands it.
    struct Fields(Option<&'static [&'static str]>);

    #[derive(Debug)]
    struct Stop;
    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    /// The keys of the table `T` deserializes from.
    pub fn keys<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
        let mut fields = Fields(None);
        let _ = T::deserialize(&mut fields);
        let mut keys = fields.0.expect("a struct").to_vec();
        keys.sort_unstable();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (String, String) {
        let (span, message) = parse(text).unwrap_err();
        (text[span].to_owned(), message)
    }

    const GOOD: &str = r#"
board = "qemu-virt"
hypervisor = { memory = { base = 0x4000_0000, size = 0x0800_0000 }, console = "serial0" }
[[partition]]
name = "a"
criticality = "qm"
priority = 1
cpus = [1]
image = "@/x.img"
memory = [ { guest = 0x4000_0000, host = 0x4800_0000, size = 0x0200_0000 } ]
devices = [ "/pl061@9030000", { path = "/pl031@9010000", interrupts = [40] } ]
initrd = "@/x.cpio"
watchdog = true
"#;

    #[test]
    fn parses_both_device_forms() {
        let raw = parse(GOOD).unwrap();
        let partitions = raw.partition.unwrap().into_inner();
        let devices = partitions[0].get_ref().devices.as_ref().unwrap().get_ref();
        let devices = devices.list();
        assert!(matches!(devices[0].get_ref(), RawDevice::Path(p) if p == "/pl061@9030000"));
        let RawDevice::Table(t) = devices[1].get_ref() else {
            panic!("table form")
        };
        assert_eq!(t.path.get_ref().0, "/pl031@9010000");
        assert_eq!(t.interrupts.as_ref().unwrap().get_ref()[0].get_ref().0, 40);
    }

    #[test]
    fn parses_all_except() {
        let text = GOOD.replace(
            "devices = [ \"/pl061@9030000\", { path = \"/pl031@9010000\", interrupts = [40] } ]",
            "devices = { all_except = [\"/pl031@9010000\", \"serial0\"] }",
        );
        let raw = parse(&text).unwrap();
        let partitions = raw.partition.unwrap().into_inner();
        let devices = partitions[0].get_ref().devices.as_ref().unwrap();
        assert_eq!(
            &text[devices.span()],
            "{ all_except = [\"/pl031@9010000\", \"serial0\"] }"
        );
        let RawDevices::AllExcept(all) = devices.get_ref() else {
            panic!("the all_except form")
        };
        let except: Vec<&str> = all
            .all_except
            .get_ref()
            .iter()
            .map(|p| p.get_ref().0.as_str())
            .collect();
        assert_eq!(except, ["/pl031@9010000", "serial0"]);
        assert_eq!(&text[all.all_except.get_ref()[1].span()], "\"serial0\"");
        assert!(devices.get_ref().list().is_empty());
        // An empty list is all of them.
        let raw = parse(&GOOD.replace(
            "devices = [ \"/pl061@9030000\", { path = \"/pl031@9010000\", interrupts = [40] } ]",
            "devices = { all_except = [] }",
        ))
        .unwrap();
        let partitions = raw.partition.unwrap().into_inner();
        let RawDevices::AllExcept(all) =
            partitions[0].get_ref().devices.as_ref().unwrap().get_ref()
        else {
            panic!("the all_except form")
        };
        assert!(all.all_except.get_ref().is_empty());
    }

    #[test]
    fn all_except_shape_errors_point_at_the_culprit() {
        let list =
            "devices = [ \"/pl061@9030000\", { path = \"/pl031@9010000\", interrupts = [40] } ]";
        let (at, message) = err(&GOOD.replace(list, "devices = { all_but = [] }"));
        assert_eq!(at, "all_but");
        assert!(message.starts_with("unknown key `all_but`"), "{message}");
        let (_, message) = err(&GOOD.replace(list, "devices = {}"));
        assert_eq!(message, "missing required key `all_except`");
        let (at, message) = err(&GOOD.replace(list, "devices = { all_except = [7] }"));
        assert_eq!(at, "7");
        assert!(message.contains("expected a string"), "{message}");
        let (at, message) = err(&GOOD.replace(list, "devices = \"/pl061@9030000\""));
        assert_eq!(at, "\"/pl061@9030000\"");
        assert!(
            message.contains("a list of devices, or a table"),
            "{message}"
        );
    }

    #[test]
    fn parses_initrd_and_watchdog() {
        let raw = parse(GOOD).unwrap();
        let partitions = raw.partition.unwrap().into_inner();
        let p = partitions[0].get_ref();
        assert_eq!(p.initrd.as_ref().unwrap().get_ref().0, "@/x.cpio");
        assert!(*p.watchdog.as_ref().unwrap().get_ref());
        let raw = parse(&GOOD.replace("initrd = \"@/x.cpio\"\nwatchdog = true\n", "")).unwrap();
        let partitions = raw.partition.unwrap().into_inner();
        assert!(partitions[0].get_ref().initrd.is_none());
        assert!(partitions[0].get_ref().watchdog.is_none());
    }

    const STORAGE: &str = r#"
[[storage]]
name = "disk0"
device = "/virtio_mmio@a003e00"
home_cpu = 0
"#;

    #[test]
    fn parses_storage_and_disks() {
        let text = format!(
            "{}{STORAGE}",
            GOOD.replace(
                "watchdog = true",
                "watchdog = true\ndisks = [ { storage = \"disk0\", gpt = \"a\" }, { storage = \"disk0\", lba = 34, sectors = 8, read_only = true } ]"
            )
        );
        let raw = parse(&text).unwrap();
        let storage = raw.storage.unwrap().into_inner();
        let s = storage[0].get_ref();
        assert_eq!(s.name.get_ref().0, "disk0");
        assert_eq!(s.device.get_ref().0, "/virtio_mmio@a003e00");
        assert_eq!(s.home_cpu.as_ref().unwrap().get_ref().0, 0);
        let partitions = raw.partition.unwrap().into_inner();
        let disks = partitions[0].get_ref().disks.as_ref().unwrap().get_ref();
        let gpt = disks[0].get_ref();
        assert_eq!(gpt.gpt.as_ref().unwrap().get_ref().0, "a");
        assert!(gpt.lba.is_none() && gpt.sectors.is_none() && gpt.read_only.is_none());
        let lba = disks[1].get_ref();
        assert_eq!(lba.lba.as_ref().unwrap().get_ref().0, 34);
        assert_eq!(lba.sectors.as_ref().unwrap().get_ref().0, 8);
        assert!(*lba.read_only.as_ref().unwrap().get_ref());
        // Both are optional.
        let raw = parse(GOOD).unwrap();
        assert!(raw.storage.is_none());
        assert!(
            raw.partition.unwrap().get_ref()[0]
                .get_ref()
                .disks
                .is_none()
        );
    }

    const DISPLAY: &str = r#"
[[display]]
name = "center"
device = "/virtio_mmio@a003c00"
width = 1280
height = 800
"#;

    #[test]
    fn parses_displays_views_and_protected() {
        let text = format!(
            "{}{DISPLAY}",
            GOOD.replace(
                "watchdog = true",
                "watchdog = true\nviews = [ { display = \"center\", x = 0, y = 0, width = 1280, height = 800 } ]\nprotected = [ { display = \"center\", x = 0, y = 760, width = 1280, height = 40 } ]\ndisplay_memory_mib = 16\ndisplay_resources = 8"
            )
        );
        let raw = parse(&text).unwrap();
        let displays = raw.display.unwrap().into_inner();
        let d = displays[0].get_ref();
        assert_eq!(d.name.get_ref().0, "center");
        assert_eq!(d.device.get_ref().0, "/virtio_mmio@a003c00");
        assert_eq!((d.width.get_ref().0, d.height.get_ref().0), (1280, 800));
        assert!(d.refresh_hz.is_none() && d.home_cpu.is_none());
        let partitions = raw.partition.unwrap().into_inner();
        let p = partitions[0].get_ref();
        let view = p.views.as_ref().unwrap().get_ref()[0].get_ref();
        assert_eq!(view.display.get_ref().0, "center");
        assert_eq!(view.width.get_ref().0, 1280);
        let protected = p.protected.as_ref().unwrap().get_ref()[0].get_ref();
        assert_eq!(
            (protected.y.get_ref().0, protected.height.get_ref().0),
            (760, 40)
        );
        assert_eq!(p.display_memory_mib.as_ref().unwrap().get_ref().0, 16);
        assert_eq!(p.display_resources.as_ref().unwrap().get_ref().0, 8);
        // All optional.
        let raw = parse(GOOD).unwrap();
        assert!(raw.display.is_none());
        let partitions = raw.partition.unwrap().into_inner();
        let p = partitions[0].get_ref();
        assert!(p.views.is_none() && p.protected.is_none());
        assert!(p.display_memory_mib.is_none() && p.display_resources.is_none());
    }

    const TOUCH: &str = r#"
[[touch]]
name = "panel"
device = "/virtio_mmio@a003800"
display = "center"
"#;

    #[test]
    fn parses_touch_panels_and_touch() {
        let text = format!(
            "{}{DISPLAY}{TOUCH}home_cpu = 3\n",
            GOOD.replace("watchdog = true", "watchdog = true\ntouch = true")
        );
        let raw = parse(&text).unwrap();
        let panels = raw.touch.unwrap().into_inner();
        let t = panels[0].get_ref();
        assert_eq!(t.name.get_ref().0, "panel");
        assert_eq!(t.device.get_ref().0, "/virtio_mmio@a003800");
        assert_eq!(t.display.get_ref().0, "center");
        assert_eq!(t.home_cpu.as_ref().unwrap().get_ref().0, 3);
        assert!(t.pointer.is_none());
        let partitions = raw.partition.unwrap().into_inner();
        assert!(*partitions[0].get_ref().touch.as_ref().unwrap().get_ref());
        // All optional.
        let raw = parse(&format!("{GOOD}{TOUCH}")).unwrap();
        assert!(raw.touch.unwrap().get_ref()[0].get_ref().home_cpu.is_none());
        // A pointer: a path, as `device` is.
        let raw = parse(&format!(
            "{GOOD}{TOUCH}pointer = \"/virtio_mmio@a003600\"\n"
        ))
        .unwrap();
        let panels = raw.touch.unwrap().into_inner();
        let pointer = panels[0].get_ref().pointer.as_ref().unwrap();
        assert_eq!(pointer.get_ref().0, "/virtio_mmio@a003600");
        let (at, message) = err(&format!("{GOOD}{TOUCH}pointer = true\n"));
        assert_eq!(at, "true");
        assert!(message.contains("expected a string"), "{message}");
        let raw = parse(GOOD).unwrap();
        assert!(raw.touch.is_none());
        assert!(
            raw.partition.unwrap().get_ref()[0]
                .get_ref()
                .touch
                .is_none()
        );
        // `display` is required, `touch` a boolean.
        let (at, message) = err(&format!(
            "{GOOD}{}",
            TOUCH.replace("display = \"center\"\n", "")
        ));
        assert_eq!(at, "[[touch]]");
        assert_eq!(message, "missing required key `display`");
        let (at, message) = err(&GOOD.replace("watchdog = true", "touch = 1"));
        assert_eq!(at, "1");
        assert!(message.contains("expected a boolean"), "{message}");
    }

    #[test]
    fn a_view_needs_every_key() {
        let text = GOOD.replace(
            "watchdog = true",
            "views = [ { display = \"center\", x = 0, y = 0, width = 1280 } ]",
        );
        let (_, message) = err(&text);
        assert_eq!(message, "missing required key `height`");
        let text = format!("{GOOD}{}", DISPLAY.replace("height = 800\n", ""));
        let (at, message) = err(&text);
        assert_eq!(at, "[[display]]");
        assert_eq!(message, "missing required key `height`");
    }

    #[test]
    fn unknown_key_in_storage_and_disk() {
        let text = format!("{GOOD}{}", STORAGE.replace("home_cpu", "cpu"));
        let (at, message) = err(&text);
        assert_eq!(at, "cpu");
        assert!(message.starts_with("unknown key `cpu`"), "{message}");
        let text = GOOD.replace(
            "watchdog = true",
            "disks = [ { storage = \"d\", partition = \"x\" } ]",
        );
        let (at, message) = err(&text);
        assert_eq!(at, "partition");
        assert!(message.starts_with("unknown key `partition`"), "{message}");
        let text = GOOD.replace("watchdog = true", "disks = [ { gpt = \"x\" } ]");
        let (_, message) = err(&text);
        assert_eq!(message, "missing required key `storage`");
    }

    #[test]
    fn watchdog_must_be_a_boolean() {
        let (at, message) = err(&GOOD.replace("watchdog = true", "watchdog = \"yes\""));
        assert_eq!(at, "\"yes\"");
        assert!(message.contains("expected a boolean"), "{message}");
    }

    #[test]
    fn unknown_key_points_at_the_key() {
        let text = GOOD.replace("priority = 1", "priority = 1\nprio = 2");
        let (at, message) = err(&text);
        assert_eq!(at, "prio");
        assert!(message.starts_with("unknown key `prio`"), "{message}");
    }

    #[test]
    fn unknown_key_in_device_table() {
        let text = GOOD.replace("interrupts = [40]", "irqs = [40]");
        let (at, message) = err(&text);
        assert_eq!(at, "irqs");
        assert!(message.starts_with("unknown key `irqs`"), "{message}");
    }

    #[test]
    fn missing_key_points_at_its_table() {
        let text = GOOD.replace("criticality = \"qm\"\n", "");
        let (at, message) = err(&text);
        assert_eq!(at, "[[partition]]");
        assert_eq!(message, "missing required key `criticality`");
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let text = GOOD.replace("priority = 1", "priority = \"high\"");
        let (at, message) = err(&text);
        assert_eq!(at, "\"high\"");
        assert!(message.contains("expected an integer"), "{message}");

        let text = GOOD.replace("name = \"a\"", "name = 7");
        let (at, message) = err(&text);
        assert_eq!(at, "7");
        assert!(message.contains("expected a string"), "{message}");

        let text = GOOD.replace("\"/pl061@9030000\",", "5,");
        let (at, message) = err(&text);
        assert_eq!(at, "5");
        assert!(
            message.contains("expected a device-tree path or alias"),
            "{message}"
        );
    }

    #[test]
    fn integer_beyond_64_bits() {
        let text = GOOD.replace("priority = 1", "priority = 0x1_0000_0000_0000_0000");
        let (at, message) = err(&text);
        assert_eq!(at, "0x1_0000_0000_0000_0000");
        assert!(message.contains("out of range"), "{message}");
    }

    #[test]
    fn syntax_error() {
        let text = GOOD.replace("priority = 1", "priority = = 1");
        let (at, _) = err(&text);
        assert_eq!(at, "=");
    }

    #[test]
    fn keys_are_introspectable() {
        assert_eq!(
            introspect::keys::<RawConfig>(),
            [
                "audio",
                "board",
                "display",
                "hypervisor",
                "partition",
                "storage",
                "touch"
            ]
        );
        assert_eq!(
            introspect::keys::<RawAudio>(),
            ["device", "home_cpu", "name", "period_ms", "periods"]
        );
        assert_eq!(
            introspect::keys::<RawPartitionAudio>(),
            ["duck_db", "gain_db", "output", "priority"]
        );
        assert_eq!(
            introspect::keys::<RawTouch>(),
            ["device", "display", "home_cpu", "name", "pointer"]
        );
        assert_eq!(
            introspect::keys::<RawDisplay>(),
            [
                "device",
                "height",
                "home_cpu",
                "name",
                "refresh_hz",
                "width"
            ]
        );
        assert_eq!(
            introspect::keys::<RawScreenRect>(),
            [
                "deadline_ms",
                "display",
                "fallback",
                "height",
                "width",
                "x",
                "y"
            ]
        );
        assert_eq!(
            introspect::keys::<RawStorage>(),
            [
                "device",
                "home_cpu",
                "lower_in_flight_kib",
                "name",
                "records"
            ]
        );
        assert_eq!(
            introspect::keys::<RawDisk>(),
            ["gpt", "lba", "read_only", "sectors", "storage"]
        );
        assert_eq!(introspect::keys::<RawDeviceTable>(), ["interrupts", "path"]);
        assert_eq!(introspect::keys::<RawAllExcept>(), ["all_except"]);
    }
}
