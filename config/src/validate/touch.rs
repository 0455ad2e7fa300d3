//! Touch panels: the `[[touch]]` devices and pointers against the board
//! device tree and the displays, each partition's `touch` against the
//! panels and its views (and the virtio-mmio slots its input devices
//! take), and where a panel's driver may run.

use toml::Spanned;

use super::{Screen, Touch, Validator, first_use};
use crate::dtb::NodeId;
use crate::layout;
use crate::raw::{RawConfig, RawPartition, RawTouch};

impl Validator<'_, '_> {
    /// The `[[touch]]` tables, in file order, each with what passed.
    /// Storage devices and displays must have been checked first: a panel
    /// cannot take one's device, and it lies on a display.
    pub(super) fn touch_panels(&mut self, raw: &RawConfig) -> Vec<Touch> {
        let Some(list) = &raw.touch else {
            return Vec::new();
        };
        let mut panels: Vec<Touch> = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            let t = self.touch_panel(entry.get_ref(), &list.get_ref()[..i], &panels);
            panels.push(t);
        }
        panels
    }

    fn touch_panel(
        &mut self,
        raw: &RawTouch,
        earlier_raw: &[Spanned<RawTouch>],
        earlier: &[Touch],
    ) -> Touch {
        let name = raw.name.get_ref().0.clone();
        let first = first_use(earlier_raw.iter().map(|e| &e.get_ref().name), &raw.name);
        let name_ok = self.check_name(&raw.name, "touch panel", first);
        let what = format!("touch panel \"{name}\"");
        // The storage devices, the displays and the earlier panels and
        // their pointers: the hypervisor has them already.
        let storage = self
            .storage
            .iter()
            .filter_map(|s| Some((format!("storage \"{}\"", s.name), s.device.as_ref()?.node)));
        let displays = self
            .displays
            .iter()
            .filter_map(|d| Some((format!("display \"{}\"", d.name), d.device.as_ref()?.node)));
        let panels = earlier.iter().filter_map(|t| {
            Some((
                format!("touch panel \"{}\"", t.name),
                t.device.as_ref()?.node,
            ))
        });
        let pointers = earlier.iter().filter_map(|t| {
            Some((
                format!("the pointer of touch panel \"{}\"", t.name),
                t.pointer.as_ref()?.node,
            ))
        });
        let mut taken: Vec<(String, NodeId)> = storage
            .chain(displays)
            .chain(panels)
            .chain(pointers)
            .collect();
        let device = self.mediated_node(&raw.device, &what, &taken);
        // The pointer: as the device, and not the device either.
        let (pointer, pointer_ok) = match &raw.pointer {
            None => (None, true),
            Some(value) => {
                if let Some(device) = &device {
                    taken.push((what.clone(), device.node));
                }
                let pointer = self.mediated_node(value, &format!("{what} pointer"), &taken);
                let ok = pointer.is_some();
                (pointer, ok)
            }
        };
        let (display, display_ok) = self.panel_display(raw, &what, earlier_raw, earlier);
        let (home_cpu, home_ok) = match &raw.home_cpu {
            None => (None, true),
            Some(value) => match self.home_cpu(value, &what) {
                Some(cpu) => (Some(cpu), true),
                None => (None, false),
            },
        };
        Touch {
            ok: name_ok && device.is_some() && display_ok && home_ok && pointer_ok,
            name,
            device,
            pointer,
            display,
            home_cpu,
            home_cpu_span: raw.home_cpu.as_ref().map(|v| v.span()),
        }
    }

    /// A panel's `display`: a `[[display]]` table, on which no earlier
    /// panel lies. The display's index if it exists (also when another
    /// panel is on it: the partitions' checks can still count it), and
    /// whether all is well.
    fn panel_display(
        &mut self,
        raw: &RawTouch,
        what: &str,
        earlier_raw: &[Spanned<RawTouch>],
        earlier: &[Touch],
    ) -> (Option<usize>, bool) {
        let wanted = &raw.display.get_ref().0;
        let Some(display) = self.displays.iter().position(|d| d.name == *wanted) else {
            let known: Vec<String> = self
                .displays
                .iter()
                .map(|d| format!("\"{}\"", d.name))
                .collect();
            let known = if known.is_empty() {
                "there is no [[display]] table".to_owned()
            } else {
                format!("the displays are {}", known.join(", "))
            };
            self.diags.error(
                raw.display.span(),
                format!("{what}: unknown display \"{wanted}\" ({known})"),
            );
            return (None, false);
        };
        let other = earlier
            .iter()
            .zip(earlier_raw)
            .find(|(t, _)| t.display == Some(display));
        if let Some((other, other_raw)) = other {
            let (line, _) = self
                .diags
                .position(other_raw.get_ref().display.span().start);
            self.diags.error(
                raw.display.span(),
                format!(
                    "{what} lies on display \"{wanted}\", as does touch panel \"{}\" (line {line}): a display has at most one touch panel",
                    other.name
                ),
            );
            return (Some(display), false);
        }
        (Some(display), true)
    }

    /// A partition's `touch`. With it, the partition gets an input device
    /// per panel on whose display it has a view (of those that passed their
    /// checks, in `screen`): it must have at least one, and they take the
    /// virtio-mmio slots after its virtio-gpu device, which must be enough.
    pub(super) fn partition_touch(
        &mut self,
        raw: &RawPartition,
        name: &str,
        screen: &Screen,
    ) -> bool {
        let Some(value) = &raw.touch else {
            return false;
        };
        if !*value.get_ref() {
            return false;
        }
        let inputs = self
            .touch
            .iter()
            .filter_map(|t| t.display)
            .filter(|&d| screen.views.iter().any(|v| v.display == d))
            .count();
        if inputs == 0 {
            // Unless a view or a panel that failed its own checks is the
            // reason.
            let raw_views = raw.views.as_ref().map_or(0, |v| v.get_ref().len());
            let all_views_ok = screen.views.len() == raw_views;
            let all_panels_ok = self.touch.iter().all(|t| t.display.is_some());
            if all_views_ok && all_panels_ok {
                let mut displays: Vec<String> = Vec::new();
                for d in self.touch.iter().filter_map(|t| t.display) {
                    let quoted = format!("\"{}\"", self.displays[d].name);
                    if !displays.contains(&quoted) {
                        displays.push(quoted);
                    }
                }
                let message = match displays.len() {
                    0 => format!(
                        "partition \"{name}\" has touch = true but there is no [[touch]] panel: touch gives a partition an input device for each touch panel on whose display it has a view"
                    ),
                    1 => format!(
                        "partition \"{name}\" has touch = true but no view on a display with a touch panel (display {} has one): it would get no input device",
                        displays[0]
                    ),
                    _ => format!(
                        "partition \"{name}\" has touch = true but no view on a display with a touch panel (displays {} have one): it would get no input device",
                        displays.join(", ")
                    ),
                };
                self.diags.error(value.span(), message);
            }
            return true;
        }
        // Disks, the virtio-gpu device (it has views), then the input
        // devices. Disks alone, or with the gpu, that take all the slots
        // have been reported already.
        let disks = raw.disks.as_ref().map_or(0, |d| d.get_ref().len());
        let needed = disks + 1 + inputs;
        if disks < layout::VIRTIO_SLOTS && needed > layout::VIRTIO_SLOTS {
            self.diags.error(
                value.span(),
                format!(
                    "partition \"{name}\" has {disks} disks, a virtio-gpu device and {inputs} touch input devices (one per touch panel on whose display it has a view): they need {needed} virtio-mmio slots, and it has {}",
                    layout::VIRTIO_SLOTS
                ),
            );
        }
        true
    }
}
