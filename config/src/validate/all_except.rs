//! `devices = { all_except = [...] }`: a partition that takes every device
//! of the board nobody else has. The except list is checked where the
//! partition is; the devices are resolved once every partition is known,
//! because they are what the others leave.
//!
//! A candidate is a node [`Board::device_nodes`] lists that the hypervisor
//! does not keep (its console, the GIC, the mediated devices), that no
//! other partition names and that the list does not except (a node of the
//! list excepts everything below it too: a bus, its devices). Each is judged
//! by the rules an explicit entry is (`Validator::device_rules`), then
//! against what the others own: a candidate that would break a rule is
//! left out, with the reason, instead of making the config invalid. What is
//! left goes into the partition's `devices` exactly as explicit entries do.

use toml::Spanned;

use super::devices::page_overlap;
use super::{Device, Part, Span, Validator, overlaps, page_span};
use crate::dtb::{Board, NodeId};
use crate::model::Region;
use crate::owned::{LeftOut, range};
use crate::raw::{RawDevices, RawPartition, Str};

/// A partition's `all_except`, as checked so far.
pub(super) struct Remainder {
    /// The `devices` value: where the resolved devices are "named".
    pub span: Span,
    /// The nodes of the except list, resolved, in file order.
    pub except: Vec<NodeId>,
    /// Once resolved: the candidates left out, and why.
    pub left_out: Vec<LeftOut>,
}

impl Validator<'_, '_> {
    /// The partition's `all_except`, if it has one: each path of the list
    /// must name a node of the board, once; and only one partition may
    /// have it (a second one is refused and takes nothing).
    pub(super) fn all_except(
        &mut self,
        raw: &RawPartition,
        name: &str,
        earlier: &[Part<'_>],
    ) -> Option<Remainder> {
        let devices = raw.devices.as_ref()?;
        let RawDevices::AllExcept(all) = devices.get_ref() else {
            return None;
        };
        if let Some(first) = earlier.iter().find(|p| has_all_except(p.raw)) {
            let at = first.raw.devices.as_ref().map_or(0, |d| d.span().start);
            let (line, _) = self.diags.position(at);
            self.diags.error(
                devices.span(),
                format!(
                    "partition \"{name}\" has devices = {{ all_except = [...] }}, as has partition \"{}\" (line {line}): only one partition may take the devices no one else has",
                    first.name
                ),
            );
            return None;
        }
        let except = self.except_list(&all.all_except, name);
        Some(Remainder {
            span: devices.span(),
            except,
            left_out: Vec::new(),
        })
    }

    /// The except list's nodes; an unknown path or one listed twice is an
    /// error at the entry.
    fn except_list(&mut self, list: &Spanned<Vec<Spanned<Str>>>, name: &str) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = Vec::new();
        for entry in list.get_ref() {
            let Some(board) = self.board.as_ref() else {
                break;
            };
            match board.resolve(&entry.get_ref().0) {
                Ok(node) if nodes.contains(&node) => {
                    let message = format!(
                        "device {} is listed twice in all_except of partition \"{name}\"",
                        board.path(node)
                    );
                    self.diags.error(entry.span(), message);
                }
                Ok(node) => nodes.push(node),
                Err(e) => self.diags.error(
                    entry.span(),
                    format!("all_except of partition \"{name}\": {e}"),
                ),
            }
        }
        nodes
    }

    /// Gives the partition with `all_except` (if any) its devices and
    /// records the ones left out.
    pub(super) fn resolve_all_except(&self, parts: &mut [Part<'_>]) {
        let Some(k) = parts.iter().position(|p| p.all_except.is_some()) else {
            return;
        };
        let Some(board) = self.board.as_ref() else {
            return;
        };
        let (given, left_out) = self.remainder(board, parts, k);
        parts[k].devices = given;
        if let Some(remainder) = parts[k].all_except.as_mut() {
            remainder.left_out = left_out;
        }
    }

    /// The devices partition `k` gets, and those it does not, with why.
    fn remainder(
        &self,
        board: &Board,
        parts: &[Part<'_>],
        k: usize,
    ) -> (Vec<Device>, Vec<LeftOut>) {
        let part = &parts[k];
        let Some(remainder) = &part.all_except else {
            return (Vec::new(), Vec::new());
        };
        let taken = Taken::new(self, board, parts, k, remainder);
        let gic = board.gic();
        let mut given = Vec::new();
        let mut left_out = Vec::new();
        for node in board.device_nodes() {
            let kept = self.console == Some(node)
                || gic.is_some_and(|g| board.is_within(node, g))
                || self.mediated_at(node).is_some();
            let excepted = remainder.except.iter().any(|&e| board.is_within(node, e));
            if kept || excepted || taken.others.iter().any(|(_, d)| d.node == node) {
                continue;
            }
            let span = remainder.span.clone();
            let reasons = match self.device_rules(node, span, None, part.cpus.len()) {
                Ok(device) => {
                    let reasons = taken.conflicts(&device);
                    if reasons.is_empty() {
                        given.push(device);
                        continue;
                    }
                    reasons
                }
                Err(errors) => errors.into_iter().map(|(_, message)| message).collect(),
            };
            left_out.push(LeftOut {
                path: board.path(node).to_owned(),
                reasons,
            });
        }
        (given, left_out)
    }
}

/// What an `all_except` candidate that passed the rules of a listed
/// device must still keep clear of.
struct Taken<'p> {
    /// The partition with `all_except`.
    name: &'p str,
    /// Its memory entries that passed their checks.
    memory: Vec<Region>,
    /// The other partitions' devices, each with its owner's name.
    others: Vec<(&'p str, &'p Device)>,
    /// The hypervisor console's path, pages and SPIs.
    console: Option<(&'p str, Vec<Region>, Vec<u32>)>,
    /// The except list's paths and `reg`s.
    excepted: Vec<(&'p str, Vec<Region>)>,
}

impl<'p> Taken<'p> {
    fn new(
        validator: &Validator<'_, '_>,
        board: &'p Board,
        parts: &'p [Part<'_>],
        k: usize,
        remainder: &Remainder,
    ) -> Taken<'p> {
        let regs = |node: NodeId| board.regs(node).ok().flatten().unwrap_or_default();
        Taken {
            name: &parts[k].name,
            memory: parts[k]
                .memory
                .iter()
                .flatten()
                .map(|m| Region {
                    base: m.guest,
                    size: m.size,
                })
                .collect(),
            others: parts
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != k)
                .flat_map(|(_, p)| p.devices.iter().map(move |d| (p.name.as_str(), d)))
                .collect(),
            console: validator
                .console
                .map(|node| (board.path(node), regs(node), board.spis(node))),
            excepted: remainder
                .except
                .iter()
                .map(|&node| (board.path(node), regs(node)))
                .collect(),
        }
    }

    /// Why `device` cannot be the partition's, if it cannot: a page or an
    /// interrupt of another partition's device or of the console, a page
    /// of an excepted device, or the partition's own memory.
    fn conflicts(&self, device: &Device) -> Vec<String> {
        let path = &device.path;
        let mut reasons = Vec::new();
        for (owner, other) in &self.others {
            if let Some(shared) = first_shared_page(&device.regions, &other.regions) {
                reasons.push(format!(
                    "device {path} shares a 4 KiB page ({}) with device {} of partition \"{owner}\"",
                    range(shared.base, shared.size),
                    other.path
                ));
            }
            for (intid, _) in &device.interrupts {
                if other.interrupts.iter().any(|(i, _)| i == intid) {
                    reasons.push(format!(
                        "interrupt {intid} of device {path} is also raised by device {} of partition \"{owner}\"",
                        other.path
                    ));
                }
            }
        }
        if let Some((console, regions, interrupts)) = &self.console {
            if let Some(shared) = first_shared_page(&device.regions, regions) {
                reasons.push(format!(
                    "device {path} shares a 4 KiB page ({}) with the hypervisor console ({console})",
                    range(shared.base, shared.size)
                ));
            }
            for (intid, _) in &device.interrupts {
                if interrupts.contains(intid) {
                    reasons.push(format!(
                        "interrupt {intid} of device {path} is the interrupt of the hypervisor console ({console})"
                    ));
                }
            }
        }
        for (except, regions) in &self.excepted {
            if let Some(shared) = first_shared_page(&device.regions, regions) {
                reasons.push(format!(
                    "device {path} shares a 4 KiB page ({}) with {except}, which all_except leaves out",
                    range(shared.base, shared.size)
                ));
            }
        }
        for guest in &self.memory {
            let mut pages = device.regions.iter().map(|r| page_span(*r));
            if let Some(pages) = pages.find(|pages| overlaps(*pages, *guest)) {
                reasons.push(format!(
                    "device {path} (guest {}, mapped guest == host) overlaps memory of partition \"{}\" (guest {})",
                    range(pages.base, pages.size),
                    self.name,
                    range(guest.base, guest.size)
                ));
            }
        }
        reasons
    }
}

/// Whether the partition's `devices` is the `all_except` form.
fn has_all_except(raw: &RawPartition) -> bool {
    raw.devices
        .as_ref()
        .is_some_and(|d| matches!(d.get_ref(), RawDevices::AllExcept(_)))
}

/// The first page range both sets of regions touch, if any.
fn first_shared_page(a: &[Region], b: &[Region]) -> Option<Region> {
    a.iter()
        .map(|r| page_span(*r))
        .find_map(|x| b.iter().find_map(|r| page_overlap(x, page_span(*r))))
}
