//! Audio outputs: the `[[audio]]` devices against the board device tree,
//! each partition's `audio` against the outputs (and the virtio-mmio slot
//! its sound device takes), and where an output's mixer may run.

use toml::Spanned;

use super::{Audio, MediatedDevice, Screen, Validator, first_use};
use crate::dtb::NodeId;
use crate::layout;
use crate::owned::OwnedPartitionAudio;
use crate::raw::{Int, RawAudio, RawPartition, RawPartitionAudio};

/// `period_ms`: its range and default.
const PERIOD_MS: (i64, i64, u32) = (5, 50, 10);
/// `periods`: its range and default.
const PERIODS: (i64, i64, u32) = (2, 8, 3);
/// A partition's `gain_db`: its range and default.
const GAIN_DB: (i64, i64, i32) = (-60, 12, 0);
/// A partition's `duck_db`: its range and default; its lowest value mutes.
const DUCK_DB: (i64, i64, i32) = (-96, 0, -20);

impl Validator<'_, '_> {
    /// The `[[audio]]` tables, in file order, each with what passed. The
    /// other mediated devices must have been checked first: an output
    /// cannot take one's device.
    pub(super) fn audio_outputs(&mut self, raw: &crate::raw::RawConfig) -> Vec<Audio> {
        let Some(list) = &raw.audio else {
            return Vec::new();
        };
        let mut outputs: Vec<Audio> = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            let a = self.audio_output(entry.get_ref(), &list.get_ref()[..i], &outputs);
            outputs.push(a);
        }
        outputs
    }

    fn audio_output(
        &mut self,
        raw: &RawAudio,
        earlier_raw: &[Spanned<RawAudio>],
        earlier: &[Audio],
    ) -> Audio {
        let name = raw.name.get_ref().0.clone();
        let first = first_use(earlier_raw.iter().map(|e| &e.get_ref().name), &raw.name);
        let name_ok = self.check_name(&raw.name, "audio output", first);
        let what = format!("audio output \"{name}\"");
        // Every other mediated device and the earlier outputs: the
        // hypervisor has them already.
        let mut taken: Vec<(String, NodeId)> = self.mediated().map(|(w, d)| (w, d.node)).collect();
        taken.extend(earlier.iter().filter_map(|a| {
            Some((
                format!("audio output \"{}\"", a.name),
                a.device.as_ref()?.node,
            ))
        }));
        let device = self.mediated_node(&raw.device, &what, &taken);
        let period_ms = self.in_range(raw.period_ms.as_ref(), &what, "period_ms", "ms", PERIOD_MS);
        let periods = self.in_range(raw.periods.as_ref(), &what, "periods", "", PERIODS);
        let (home_cpu, home_ok) = match &raw.home_cpu {
            None => (None, true),
            Some(value) => match self.home_cpu(value, &what) {
                Some(cpu) => (Some(cpu), true),
                None => (None, false),
            },
        };
        Audio {
            ok: name_ok && device.is_some() && period_ms.is_some() && periods.is_some() && home_ok,
            name,
            device,
            period_ms: period_ms.unwrap_or(PERIOD_MS.2 as i64) as u32,
            periods: periods.unwrap_or(PERIODS.2 as i64) as u32,
            home_cpu,
            home_cpu_span: raw.home_cpu.as_ref().map(|v| v.span()),
        }
    }

    /// An optional integer key `key` of `what` in `min..=max` (`unit`
    /// after the numbers in messages), or its default.
    pub(super) fn in_range<D: Into<i64>>(
        &mut self,
        value: Option<&Spanned<Int>>,
        what: &str,
        key: &str,
        unit: &str,
        (min, max, default): (i64, i64, D),
    ) -> Option<i64> {
        let Some(value) = value else {
            return Some(default.into());
        };
        let Int(v) = *value.get_ref();
        if (min..=max).contains(&v) {
            return Some(v);
        }
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        self.diags.error(
            value.span(),
            format!("{key} {v} of {what} is out of range {min}..={max}{unit}"),
        );
        None
    }

    /// A partition's `audio`: an output (named, or the only one) and how
    /// the mixer treats its stream. Its sound device takes the virtio-mmio
    /// slot after its disks, virtio-gpu and input devices, which must be
    /// free. `priority` is the partition's, if it passed.
    pub(super) fn partition_audio(
        &mut self,
        raw: &RawPartition,
        name: &str,
        priority: Option<u8>,
        screen: &Screen,
        touch: bool,
    ) -> Option<OwnedPartitionAudio> {
        let value = raw.audio.as_ref()?;
        let audio: &RawPartitionAudio = value.get_ref();
        let what = format!("audio of partition \"{name}\"");
        let output = self.audio_output_of(audio, value.span(), name)?;
        let priority = match &audio.priority {
            Some(p) => {
                u8::try_from(self.in_range(Some(p), &what, "priority", "", (0, 255, 0))?).ok()?
            }
            None => priority?,
        };
        let gain_db =
            self.in_range(audio.gain_db.as_ref(), &what, "gain_db", "dB", GAIN_DB)? as i32;
        let duck_db =
            self.in_range(audio.duck_db.as_ref(), &what, "duck_db", "dB", DUCK_DB)? as i32;
        // Disks, the virtio-gpu device, the input devices, then this one.
        let disks = raw.disks.as_ref().map_or(0, |d| d.get_ref().len());
        let gpu = usize::from(!screen.views.is_empty());
        let inputs = if touch {
            self.touch
                .iter()
                .filter_map(|t| t.display)
                .filter(|&d| screen.views.iter().any(|v| v.display == d))
                .count()
        } else {
            0
        };
        let needed = disks + gpu + inputs + 1;
        if disks + gpu + inputs <= layout::VIRTIO_SLOTS && needed > layout::VIRTIO_SLOTS {
            self.diags.error(
                value.span(),
                format!(
                    "partition \"{name}\" has {disks} disks, {gpu} virtio-gpu device, {inputs} touch input devices and a virtio-snd device (audio): they need {needed} virtio-mmio slots, and it has {}",
                    layout::VIRTIO_SLOTS
                ),
            );
            return None;
        }
        Some(OwnedPartitionAudio {
            output,
            priority,
            gain_db,
            duck_db,
        })
    }

    /// The output a partition's `audio` names (its `output`, or the only
    /// `[[audio]]` table), if it passed its own checks.
    fn audio_output_of(
        &mut self,
        audio: &RawPartitionAudio,
        span: std::ops::Range<usize>,
        name: &str,
    ) -> Option<usize> {
        let known = || -> String {
            let names: Vec<String> = self
                .audio
                .iter()
                .map(|a| format!("\"{}\"", a.name))
                .collect();
            names.join(", ")
        };
        let index = match &audio.output {
            Some(wanted) => {
                let w = &wanted.get_ref().0;
                let Some(i) = self.audio.iter().position(|a| a.name == *w) else {
                    let message = if self.audio.is_empty() {
                        format!(
                            "partition \"{name}\": unknown audio output \"{w}\" (there is no [[audio]] table)"
                        )
                    } else {
                        format!(
                            "partition \"{name}\": unknown audio output \"{w}\" (the outputs are {})",
                            known()
                        )
                    };
                    self.diags.error(wanted.span(), message);
                    return None;
                };
                i
            }
            None => match self.audio.len() {
                1 => 0,
                0 => {
                    self.diags.error(
                        span,
                        format!(
                            "partition \"{name}\" has audio but there is no [[audio]] output to mix its stream into"
                        ),
                    );
                    return None;
                }
                _ => {
                    let message = format!(
                        "partition \"{name}\": audio needs output = one of {}: there are several [[audio]] outputs",
                        known()
                    );
                    self.diags.error(span, message);
                    return None;
                }
            },
        };
        self.audio[index].ok.then_some(index)
    }
}

/// What [`super::mediated`] lists for an output.
pub(super) fn mediated(audio: &[Audio]) -> impl Iterator<Item = (String, &MediatedDevice)> {
    audio
        .iter()
        .filter_map(|a| Some((format!("audio output \"{}\"", a.name), a.device.as_ref()?)))
}
