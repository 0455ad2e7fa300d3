//! Split virtqueue, device side (VIRTIO 1.2 §2.7).
//!
//! The driver owns the descriptor table and the available ring and may
//! change them at any time, from any core, with any content; the device
//! owns the used ring. Everything read from the driver's side is therefore
//! validated as it is used, once: a descriptor is read from guest memory
//! exactly once per walk and the values the walk returns are the ones it
//! checked, so a driver that rewrites a descriptor behind the device's back
//! only changes what it gets itself. Malformed input (an index out of
//! range, a loop, an address that wraps, a readable buffer after a
//! writable one, an unexpected indirect table, more buffers than the queue
//! holds) is reported as a [`QueueError`], never a panic; the device
//! decides whether to fail the request or to give up on the queue with
//! DEVICE_NEEDS_RESET.
//!
//! Barriers: [`VirtQueue::pop`] fences (acquire) after reading `avail.idx`;
//! [`VirtQueue::push`] fences (release) before publishing `used.idx` and
//! (full) before reading `used_event`/`flags`;
//! [`VirtQueue::enable_notification`] fences (full) between writing
//! `avail_event` and re-reading `avail.idx`. See [`Fence`].

use super::memory::{Fence, GuestMemory, MemoryError};

/// The buffer continues in the descriptor named by `next`.
pub const DESC_F_NEXT: u16 = 1;
/// The buffer is device-writable (otherwise device-readable).
pub const DESC_F_WRITE: u16 = 2;
/// The buffer is a table of descriptors (VIRTIO_F_INDIRECT_DESC).
pub const DESC_F_INDIRECT: u16 = 4;
/// In the available ring's `flags`: the driver does not want used-buffer
/// notifications (only meaningful without VIRTIO_F_EVENT_IDX).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Largest queue size the split ring allows (16-bit indices must tell a
/// full ring from an empty one).
pub const MAX_SIZE: u16 = 32768;

pub const DESC_BYTES: u64 = 16;

/// A guest-physical buffer: `len` bytes at `gpa`. `gpa + len` never
/// overflows for regions produced here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub gpa: u64,
    pub len: u32,
}

/// One buffer of a descriptor chain, as validated by the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub gpa: u64,
    pub len: u32,
    pub writable: bool,
}

/// What is wrong with the driver's side of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// A ring, descriptor table or indirect table lies outside the
    /// partition's RAM.
    Memory(MemoryError),
    /// `avail.idx` claims more new buffers than the queue holds.
    AvailIndex { idx: u16, last: u16 },
    /// An available-ring entry names a descriptor beyond the queue size.
    HeadIndex(u16),
    /// A `next` field names a descriptor beyond its table.
    DescIndex(u16),
    /// More descriptors than the queue size: a loop, or a driver bug.
    ChainTooLong,
    /// The buffers add up to more than 4 GiB - 1 (VIRTIO 1.2 §2.7.5.1).
    ChainTooBig,
    /// A buffer or table whose end does not fit in 64 bits.
    AddressOverflow,
    /// A device-readable buffer after a device-writable one (§2.7.4.2).
    ReadableAfterWritable,
    /// An indirect table where none is allowed (feature not negotiated,
    /// inside an indirect table, or together with NEXT), or one whose
    /// length is zero or not a multiple of 16.
    BadIndirect,
    /// `push` of a chain from before the queue was last disabled or reset:
    /// its ring is gone and nothing was written.
    Stale,
    /// `push` with nothing popped and not yet pushed (a device bug).
    NotInFlight,
}

impl From<MemoryError> for QueueError {
    fn from(e: MemoryError) -> Self {
        QueueError::Memory(e)
    }
}

/// Why a queue could not be enabled (QueueReady written with a bad layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// QueueNum is zero, not a power of two or above QueueNumMax.
    Size(u32),
    /// A part is not aligned as §2.7 requires (16, 2, 4).
    Misaligned,
    /// A part's end does not fit in 64 bits.
    Overflow,
}

/// Names a chain popped from a queue until it is pushed back as used; it
/// also carries the queue's epoch, so a chain popped before the queue was
/// disabled or reset can never be written into the new ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainToken {
    queue: u16,
    head: u16,
    epoch: u32,
}

impl ChainToken {
    pub fn queue(&self) -> u16 {
        self.queue
    }

    pub fn head(&self) -> u16 {
        self.head
    }
}

/// The layout the driver wrote for a queue (QueueNum and the three area
/// addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLayout {
    pub num: u32,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

impl QueueLayout {
    /// Bytes of the descriptor table, available ring (with `used_event`)
    /// and used ring (with `avail_event`).
    pub fn desc_bytes(&self) -> u64 {
        DESC_BYTES * u64::from(self.num)
    }

    pub fn avail_bytes(&self) -> u64 {
        6 + 2 * u64::from(self.num)
    }

    pub fn used_bytes(&self) -> u64 {
        6 + 8 * u64::from(self.num)
    }
}

/// One split virtqueue: the driver's layout plus the device's position in
/// it.
#[derive(Clone, Debug)]
pub struct VirtQueue {
    max_size: u16,
    layout: QueueLayout,
    ready: bool,
    event_idx: bool,
    indirect: bool,
    /// Next available-ring entry to consume.
    last_avail: u16,
    /// Next used-ring entry to fill (mirrors `used.idx`).
    used_idx: u16,
    /// Chains popped and not yet pushed.
    in_flight: u32,
    /// Bumped whenever the ring goes away (disable, reset, re-enable).
    epoch: u32,
}

impl VirtQueue {
    /// A queue the device offers with at most `max_size` entries (0: the
    /// queue does not exist).
    pub const fn new(max_size: u16) -> Self {
        Self {
            max_size: if max_size > MAX_SIZE {
                MAX_SIZE
            } else {
                max_size
            },
            layout: QueueLayout {
                num: 0,
                desc: 0,
                avail: 0,
                used: 0,
            },
            ready: false,
            event_idx: false,
            indirect: false,
            last_avail: 0,
            used_idx: 0,
            in_flight: 0,
            epoch: 0,
        }
    }

    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    pub fn layout(&self) -> QueueLayout {
        self.layout
    }

    /// Chains popped and not yet pushed back.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The queue size; meaningful while ready (validated then).
    fn size(&self) -> u16 {
        self.layout.num as u16
    }

    /// The driver's layout registers. Ignored while the queue is ready:
    /// §4.2.2.2 forbids changing them then, and the device keeps using the
    /// layout it validated.
    pub fn set_layout(&mut self, f: impl FnOnce(&mut QueueLayout)) {
        if !self.ready {
            f(&mut self.layout);
        }
    }

    /// QueueReady = 1: validates the layout and starts from the beginning
    /// of the rings (as a freshly zeroed ring has it). `event_idx` and
    /// `indirect` are the negotiated VIRTIO_F_EVENT_IDX and
    /// VIRTIO_F_INDIRECT_DESC.
    pub fn enable(&mut self, event_idx: bool, indirect: bool) -> Result<(), SetupError> {
        if self.ready {
            return Ok(());
        }
        let l = self.layout;
        if l.num == 0 || !l.num.is_power_of_two() || l.num > u32::from(self.max_size) {
            return Err(SetupError::Size(l.num));
        }
        if !l.desc.is_multiple_of(16) || !l.avail.is_multiple_of(2) || !l.used.is_multiple_of(4) {
            return Err(SetupError::Misaligned);
        }
        let fits = |base: u64, len: u64| base.checked_add(len).is_some();
        if !fits(l.desc, l.desc_bytes())
            || !fits(l.avail, l.avail_bytes())
            || !fits(l.used, l.used_bytes())
        {
            return Err(SetupError::Overflow);
        }
        self.ready = true;
        self.event_idx = event_idx;
        self.indirect = indirect;
        self.last_avail = 0;
        self.used_idx = 0;
        self.in_flight = 0;
        self.epoch = self.epoch.wrapping_add(1);
        Ok(())
    }

    /// QueueReady = 0: the device stops using the rings at once; chains
    /// still in flight become stale.
    pub fn disable(&mut self) {
        self.ready = false;
        self.in_flight = 0;
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Device reset: not ready, layout cleared.
    pub fn reset(&mut self) {
        self.disable();
        self.layout = QueueLayout::default();
    }

    /// Takes the next available chain, if any. `index` is this queue's
    /// number (recorded in the chain's token). The returned chain is walked
    /// with [`DescriptorChain::next`]; it counts as in flight until pushed.
    pub fn pop(
        &mut self,
        index: u16,
        mem: &dyn GuestMemory,
    ) -> Result<Option<DescriptorChain>, QueueError> {
        if !self.ready {
            return Ok(None);
        }
        let size = self.size();
        let idx = mem.read_u16(at(self.layout.avail, 2)?)?;
        mem.fence(Fence::Acquire);
        let pending = idx.wrapping_sub(self.last_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > size {
            return Err(QueueError::AvailIndex {
                idx,
                last: self.last_avail,
            });
        }
        let slot = u64::from(self.last_avail & (size - 1));
        let head = mem.read_u16(at(self.layout.avail, 4 + 2 * slot)?)?;
        if head >= size {
            return Err(QueueError::HeadIndex(head));
        }
        self.last_avail = self.last_avail.wrapping_add(1);
        self.in_flight = self.in_flight.saturating_add(1);
        Ok(Some(DescriptorChain {
            token: ChainToken {
                queue: index,
                head,
                epoch: self.epoch,
            },
            queue_size: size,
            table: self.layout.desc,
            table_len: u32::from(size),
            in_indirect: false,
            indirect_ok: self.indirect,
            next: Some(head),
            visited: 0,
            total: 0,
            writable_seen: false,
        }))
    }

    /// Returns a chain to the driver with `written` bytes written to its
    /// device-writable buffers, and says whether the driver wants a
    /// used-buffer notification for it (EVENT_IDX's `used_event` if
    /// negotiated, otherwise unless the driver set NO_INTERRUPT).
    pub fn push(
        &mut self,
        token: ChainToken,
        written: u32,
        mem: &dyn GuestMemory,
    ) -> Result<bool, QueueError> {
        if !self.ready || token.epoch != self.epoch {
            return Err(QueueError::Stale);
        }
        if self.in_flight == 0 {
            return Err(QueueError::NotInFlight);
        }
        let size = self.size();
        let slot = u64::from(self.used_idx & (size - 1));
        let mut elem = [0; 8];
        elem[..4].copy_from_slice(&u32::from(token.head).to_le_bytes());
        elem[4..].copy_from_slice(&written.to_le_bytes());
        mem.write(at(self.layout.used, 4 + 8 * slot)?, &elem)?;
        mem.fence(Fence::Release);
        let old = self.used_idx;
        let new = old.wrapping_add(1);
        mem.write_u16(at(self.layout.used, 2)?, new)?;
        self.used_idx = new;
        self.in_flight -= 1;
        mem.fence(Fence::Full);
        if self.event_idx {
            let used_event = mem.read_u16(at(self.layout.avail, 4 + 2 * u64::from(size))?)?;
            Ok(need_event(used_event, new, old))
        } else {
            let flags = mem.read_u16(self.layout.avail)?;
            Ok(flags & AVAIL_F_NO_INTERRUPT == 0)
        }
    }

    /// Called when [`VirtQueue::pop`] found nothing: with EVENT_IDX, asks
    /// the driver to notify when it adds the next buffer (`avail_event`),
    /// then re-reads `avail.idx`. True means buffers arrived in between and
    /// the device must pop again (the driver may have decided not to
    /// notify for them).
    pub fn enable_notification(&mut self, mem: &dyn GuestMemory) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        if self.event_idx {
            let avail_event = at(self.layout.used, 4 + 8 * u64::from(self.size()))?;
            mem.write_u16(avail_event, self.last_avail)?;
        }
        mem.fence(Fence::Full);
        let idx = mem.read_u16(at(self.layout.avail, 2)?)?;
        Ok(idx != self.last_avail)
    }
}

/// EVENT_IDX: does moving the index from `old` to `new` pass `event`?
/// (The wrapping comparison of §2.7.10: `event` lies in `old..new`.)
fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

fn at(base: u64, offset: u64) -> Result<u64, QueueError> {
    base.checked_add(offset).ok_or(QueueError::AddressOverflow)
}

/// A descriptor chain being walked. Each call to [`DescriptorChain::next`]
/// reads one descriptor from guest memory and validates it against what
/// came before, so the walk is bounded (at most the queue size
/// descriptors, 4 GiB - 1 bytes) whatever the driver wrote.
#[derive(Clone, Debug)]
pub struct DescriptorChain {
    token: ChainToken,
    queue_size: u16,
    table: u64,
    table_len: u32,
    in_indirect: bool,
    indirect_ok: bool,
    next: Option<u16>,
    visited: u32,
    total: u32,
    writable_seen: bool,
}

impl DescriptorChain {
    pub fn token(&self) -> ChainToken {
        self.token
    }

    /// The next buffer of the chain, `None` at its end.
    pub fn next(&mut self, mem: &dyn GuestMemory) -> Result<Option<Descriptor>, QueueError> {
        loop {
            let Some(i) = self.next.take() else {
                return Ok(None);
            };
            if u32::from(i) >= self.table_len {
                return Err(QueueError::DescIndex(i));
            }
            let mut raw = [0u8; 16];
            mem.read(at(self.table, DESC_BYTES * u64::from(i))?, &mut raw)?;
            let gpa = u64::from_le_bytes(raw[0..8].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(raw[8..12].try_into().unwrap_or_default());
            let flags = u16::from_le_bytes([raw[12], raw[13]]);
            let next = u16::from_le_bytes([raw[14], raw[15]]);
            let end = gpa.checked_add(u64::from(len));
            if flags & DESC_F_INDIRECT != 0 {
                if !self.indirect_ok || self.in_indirect || flags & DESC_F_NEXT != 0 {
                    return Err(QueueError::BadIndirect);
                }
                if len == 0 || !len.is_multiple_of(16) {
                    return Err(QueueError::BadIndirect);
                }
                end.ok_or(QueueError::AddressOverflow)?;
                // The WRITE flag of the pointing descriptor is ignored
                // (§2.7.5.3.2); the table's own descriptors say.
                self.table = gpa;
                self.table_len = len / 16;
                self.in_indirect = true;
                self.next = Some(0);
                continue;
            }
            // Every buffer descriptor visited counts: §2.7.5.2 bounds the
            // chain by the queue size, which also ends any loop. The one
            // that points to an indirect table (at most one, checked
            // above) is not a buffer of the chain: Linux fills a table of
            // the whole queue size behind it.
            self.visited += 1;
            if self.visited > u32::from(self.queue_size) {
                return Err(QueueError::ChainTooLong);
            }
            let writable = flags & DESC_F_WRITE != 0;
            if !writable && self.writable_seen {
                return Err(QueueError::ReadableAfterWritable);
            }
            end.ok_or(QueueError::AddressOverflow)?;
            self.total = self.total.checked_add(len).ok_or(QueueError::ChainTooBig)?;
            self.writable_seen |= writable;
            if flags & DESC_F_NEXT != 0 {
                self.next = Some(next);
            }
            return Ok(Some(Descriptor { gpa, len, writable }));
        }
    }
}

/// Access to a [`ChainBuffers`] stream that it cannot serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// Beyond the end of the stream.
    OutOfRange,
    /// The chain had more buffers than the collection holds, so the
    /// stream is incomplete.
    Overflowed,
    Memory(MemoryError),
}

impl From<MemoryError> for StreamError {
    fn from(e: MemoryError) -> Self {
        StreamError::Memory(e)
    }
}

/// A whole chain, walked and split into its device-readable and
/// device-writable parts, each seen as one byte stream whatever the
/// framing (§2.7.4: the device must not assume any particular arrangement
/// of descriptors). Holds up to `N` non-empty buffers per direction; a
/// longer chain is still walked to its end (and so fully validated), with
/// [`ChainBuffers::overflowed`] set.
#[derive(Clone, Debug)]
pub struct ChainBuffers<const N: usize> {
    token: ChainToken,
    readable: heapless::Vec<Region, N>,
    writable: heapless::Vec<Region, N>,
    readable_len: u32,
    writable_len: u32,
    last_writable: Option<Region>,
    overflow: bool,
}

impl<const N: usize> ChainBuffers<N> {
    /// Walks `chain` to its end.
    pub fn collect(mut chain: DescriptorChain, mem: &dyn GuestMemory) -> Result<Self, QueueError> {
        let mut b = Self {
            token: chain.token(),
            readable: heapless::Vec::new(),
            writable: heapless::Vec::new(),
            readable_len: 0,
            writable_len: 0,
            last_writable: None,
            overflow: false,
        };
        while let Some(d) = chain.next(mem)? {
            if d.len == 0 {
                continue;
            }
            let r = Region {
                gpa: d.gpa,
                len: d.len,
            };
            // The chain's total is below 4 GiB, so neither sum overflows.
            let (list, total) = if d.writable {
                b.last_writable = Some(r);
                (&mut b.writable, &mut b.writable_len)
            } else {
                (&mut b.readable, &mut b.readable_len)
            };
            *total += d.len;
            if list.push(r).is_err() {
                b.overflow = true;
            }
        }
        Ok(b)
    }

    pub fn token(&self) -> ChainToken {
        self.token
    }

    /// Total bytes of the device-readable buffers.
    pub fn readable_len(&self) -> u32 {
        self.readable_len
    }

    /// Total bytes of the device-writable buffers.
    pub fn writable_len(&self) -> u32 {
        self.writable_len
    }

    /// The chain had more than `N` buffers in one direction; the streams
    /// are incomplete and refuse access, but [`ChainBuffers::last_writable_byte`]
    /// still works (so a status can be reported).
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// The guest-physical address of the last device-writable byte, where
    /// most devices put their status.
    pub fn last_writable_byte(&self) -> Option<u64> {
        self.last_writable.map(|r| r.gpa + u64::from(r.len) - 1)
    }

    pub fn readable(&self) -> Result<&[Region], StreamError> {
        if self.overflow {
            return Err(StreamError::Overflowed);
        }
        Ok(&self.readable)
    }

    pub fn writable(&self) -> Result<&[Region], StreamError> {
        if self.overflow {
            return Err(StreamError::Overflowed);
        }
        Ok(&self.writable)
    }

    /// Reads `buf.len()` bytes at `offset` of the readable stream.
    pub fn read(
        &self,
        mem: &dyn GuestMemory,
        offset: u32,
        buf: &mut [u8],
    ) -> Result<(), StreamError> {
        let mut done = 0;
        for r in pieces(self.readable()?, offset, buf.len())? {
            let n = r.len as usize;
            mem.read(r.gpa, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Writes `data` at `offset` of the writable stream.
    pub fn write(
        &self,
        mem: &dyn GuestMemory,
        offset: u32,
        data: &[u8],
    ) -> Result<(), StreamError> {
        let mut done = 0;
        for r in pieces(self.writable()?, offset, data.len())? {
            let n = r.len as usize;
            mem.write(r.gpa, &data[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// The regions covering `len` bytes at `offset` of the readable stream.
    pub fn readable_range<const M: usize>(
        &self,
        offset: u32,
        len: u32,
    ) -> Result<heapless::Vec<Region, M>, StreamError> {
        collect_pieces(self.readable()?, offset, len)
    }

    /// The regions covering `len` bytes at `offset` of the writable stream.
    pub fn writable_range<const M: usize>(
        &self,
        offset: u32,
        len: u32,
    ) -> Result<heapless::Vec<Region, M>, StreamError> {
        collect_pieces(self.writable()?, offset, len)
    }
}

/// [`pieces`] as a list of at most `M` regions (`Overflowed` if it takes
/// more).
fn collect_pieces<const M: usize>(
    regions: &[Region],
    offset: u32,
    len: u32,
) -> Result<heapless::Vec<Region, M>, StreamError> {
    let mut v = heapless::Vec::new();
    for r in pieces(regions, offset, len as usize)? {
        v.push(r).map_err(|_| StreamError::Overflowed)?;
    }
    Ok(v)
}

/// The parts of `regions` (a stream) that cover `len` bytes from `offset`,
/// or `OutOfRange` if the stream is shorter.
fn pieces(
    regions: &[Region],
    offset: u32,
    len: usize,
) -> Result<impl Iterator<Item = Region> + '_, StreamError> {
    let total: u64 = regions.iter().map(|r| u64::from(r.len)).sum();
    let end = u64::from(offset).saturating_add(len as u64);
    if end > total {
        return Err(StreamError::OutOfRange);
    }
    let mut skip = u64::from(offset);
    let mut left = len as u64;
    Ok(regions.iter().filter_map(move |r| {
        let rlen = u64::from(r.len);
        if skip >= rlen {
            skip -= rlen;
            return None;
        }
        if left == 0 {
            return None;
        }
        let n = (rlen - skip).min(left);
        let piece = Region {
            gpa: r.gpa + skip,
            len: n as u32,
        };
        skip = 0;
        left -= n;
        Some(piece)
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_driver::{BASE, Driver, RAM};
    use super::*;
    use crate::virtio::memory::SliceMemory;

    fn queue(d: &Driver, event_idx: bool, indirect: bool) -> VirtQueue {
        let mut q = VirtQueue::new(256);
        q.set_layout(|l| *l = d.layout());
        q.enable(event_idx, indirect).unwrap();
        q
    }

    fn walk(chain: DescriptorChain, mem: &SliceMemory) -> Result<Vec<Descriptor>, QueueError> {
        let mut chain = chain;
        let mut v = Vec::new();
        while let Some(d) = chain.next(mem)? {
            v.push(d);
        }
        Ok(v)
    }

    #[test]
    fn pops_chains_in_order_and_returns_them_used() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(8);
        let mut q = queue(&d, false, false);
        assert_eq!(q.pop(0, &mem).unwrap().map(|c| c.token()), None);
        let a = d.add(
            &mem,
            &[(BASE + 0x8000, 16, false), (BASE + 0x9000, 512, true)],
        );
        let b = d.add(&mem, &[(BASE + 0xa000, 1, true)]);
        d.publish(&mem);
        let ca = q.pop(0, &mem).unwrap().unwrap();
        assert_eq!(ca.token().head(), a);
        assert_eq!(
            walk(ca.clone(), &mem).unwrap(),
            [
                Descriptor {
                    gpa: BASE + 0x8000,
                    len: 16,
                    writable: false
                },
                Descriptor {
                    gpa: BASE + 0x9000,
                    len: 512,
                    writable: true
                }
            ]
        );
        let cb = q.pop(0, &mem).unwrap().unwrap();
        assert_eq!(cb.token().head(), b);
        assert!(q.pop(0, &mem).unwrap().is_none());
        assert_eq!(q.in_flight(), 2);
        // Completion order is the device's choice.
        assert_eq!(q.push(cb.token(), 1, &mem), Ok(true));
        assert_eq!(q.push(ca.token(), 513, &mem), Ok(true));
        assert_eq!(d.used(&mem), [(u32::from(b), 1), (u32::from(a), 513)]);
        assert_eq!(q.push(ca.token(), 1, &mem), Err(QueueError::NotInFlight));
    }

    #[test]
    fn indices_wrap_at_65536() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(4);
        let mut q = queue(&d, true, false);
        for i in 0..70_000u32 {
            d.add(&mem, &[(BASE + 0x8000, 4, true)]);
            d.publish(&mem);
            let c = q.pop(0, &mem).unwrap().unwrap();
            q.push(c.token(), i, &mem).unwrap();
            assert_eq!(d.used(&mem), [(u32::from(c.token().head()), i)]);
            assert!(q.pop(0, &mem).unwrap().is_none());
        }
    }

    #[test]
    fn refuses_bad_layouts() {
        let mut q = VirtQueue::new(64);
        let mut try_layout = |num, desc, avail, used| {
            q.set_layout(|l| {
                *l = QueueLayout {
                    num,
                    desc,
                    avail,
                    used,
                }
            });
            q.enable(false, false)
        };
        assert_eq!(try_layout(0, 0, 0, 0), Err(SetupError::Size(0)));
        assert_eq!(try_layout(48, 0, 0, 0), Err(SetupError::Size(48)));
        assert_eq!(try_layout(128, 0, 0, 0), Err(SetupError::Size(128)));
        assert_eq!(try_layout(64, 8, 0, 0), Err(SetupError::Misaligned));
        assert_eq!(try_layout(64, 0, 1, 0), Err(SetupError::Misaligned));
        assert_eq!(try_layout(64, 0, 0, 2), Err(SetupError::Misaligned));
        assert_eq!(
            try_layout(64, u64::MAX - 15, 0, 0),
            Err(SetupError::Overflow)
        );
        assert_eq!(
            try_layout(64, 0, 0, u64::MAX - 3),
            Err(SetupError::Overflow)
        );
        assert_eq!(try_layout(64, 0x1000, 0x2000, 0x3000), Ok(()));
        // Layout writes while ready are ignored.
        q.set_layout(|l| l.desc = 0x5000);
        assert_eq!(q.layout().desc, 0x1000);
        assert_eq!(VirtQueue::new(u16::MAX).max_size(), MAX_SIZE);
    }

    #[test]
    fn rejects_malformed_rings_and_chains() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(8);
        let mut q = queue(&d, false, false);
        let pop_walk = |d: &mut Driver, q: &mut VirtQueue| {
            d.publish(&mem);
            let c = q.pop(0, &mem)?.unwrap();
            walk(c, &mem)
        };

        // Head out of range.
        d.push_head(&mem, 8);
        d.publish(&mem);
        assert_eq!(q.pop(0, &mem).unwrap_err(), QueueError::HeadIndex(8));
        // The bad entry was not consumed; a reset driver starts over.
        q.disable();
        let mut d = Driver::new(8);
        q.enable(false, false).unwrap();

        // next out of range.
        d.desc(&mem, 0, BASE, 4, DESC_F_NEXT, 9);
        d.push_head(&mem, 0);
        assert_eq!(pop_walk(&mut d, &mut q), Err(QueueError::DescIndex(9)));
        // A loop.
        d.desc(&mem, 1, BASE, 4, DESC_F_NEXT, 2);
        d.desc(&mem, 2, BASE, 4, DESC_F_NEXT, 1);
        d.push_head(&mem, 1);
        assert_eq!(pop_walk(&mut d, &mut q), Err(QueueError::ChainTooLong));
        // Address wraps.
        d.desc(&mem, 3, u64::MAX - 1, 4, 0, 0);
        d.push_head(&mem, 3);
        assert_eq!(pop_walk(&mut d, &mut q), Err(QueueError::AddressOverflow));
        // More than 4 GiB - 1 in total.
        d.desc(&mem, 4, BASE, u32::MAX, DESC_F_NEXT, 5);
        d.desc(&mem, 5, BASE, 1, 0, 0);
        d.push_head(&mem, 4);
        assert_eq!(pop_walk(&mut d, &mut q), Err(QueueError::ChainTooBig));
        // Readable after writable.
        d.desc(&mem, 6, BASE, 4, DESC_F_WRITE | DESC_F_NEXT, 7);
        d.desc(&mem, 7, BASE, 4, 0, 0);
        d.push_head(&mem, 6);
        assert_eq!(
            pop_walk(&mut d, &mut q),
            Err(QueueError::ReadableAfterWritable)
        );
        // Indirect without the feature.
        d.desc(&mem, 0, BASE + 0x8000, 16, DESC_F_INDIRECT, 0);
        d.push_head(&mem, 0);
        assert_eq!(pop_walk(&mut d, &mut q), Err(QueueError::BadIndirect));
        // A descriptor table outside RAM.
        let mut d = Driver::new(8);
        q.disable();
        q.set_layout(|l| l.desc = BASE + RAM as u64);
        q.enable(false, false).unwrap();
        d.push_head(&mem, 0);
        assert!(matches!(
            pop_walk(&mut d, &mut q),
            Err(QueueError::Memory(_))
        ));
        // avail.idx running ahead by more than the queue size.
        let d = Driver::new(8);
        q.disable();
        q.set_layout(|l| *l = d.layout());
        q.enable(false, false).unwrap();
        d.set_avail_idx(&mem, 9);
        assert_eq!(
            q.pop(0, &mem).unwrap_err(),
            QueueError::AvailIndex { idx: 9, last: 0 }
        );
    }

    #[test]
    fn indirect_tables() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(8);
        let mut q = queue(&d, false, true);
        let table = BASE + 0x7000;
        let raw = |i: u64, gpa: u64, len: u32, flags: u16, next: u16| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&gpa.to_le_bytes());
            b[8..12].copy_from_slice(&len.to_le_bytes());
            b[12..14].copy_from_slice(&flags.to_le_bytes());
            b[14..].copy_from_slice(&next.to_le_bytes());
            mem.write(table + 16 * i, &b).unwrap();
        };
        raw(0, BASE + 0x100, 16, DESC_F_NEXT, 2);
        raw(2, BASE + 0x200, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
        raw(1, BASE + 0x300, 1, DESC_F_WRITE, 0);
        // A direct readable descriptor, then the table (its WRITE ignored).
        d.desc(&mem, 3, BASE + 0x50, 4, DESC_F_NEXT, 5);
        d.desc(&mem, 5, table, 48, DESC_F_INDIRECT | DESC_F_WRITE, 0);
        d.push_head(&mem, 3);
        d.publish(&mem);
        let c = q.pop(0, &mem).unwrap().unwrap();
        let got: Vec<_> = walk(c, &mem)
            .unwrap()
            .iter()
            .map(|d| (d.gpa - BASE, d.len, d.writable))
            .collect();
        assert_eq!(
            got,
            [
                (0x50, 4, false),
                (0x100, 16, false),
                (0x200, 8, true),
                (0x300, 1, true)
            ]
        );

        let bad = |d: &mut Driver, q: &mut VirtQueue| {
            d.push_head(&mem, 5);
            d.publish(&mem);
            walk(q.pop(0, &mem).unwrap().unwrap(), &mem)
        };
        // Index beyond the table.
        raw(1, BASE + 0x300, 1, DESC_F_WRITE | DESC_F_NEXT, 3);
        assert_eq!(bad(&mut d, &mut q), Err(QueueError::DescIndex(3)));
        // A table inside a table.
        raw(1, table, 16, DESC_F_INDIRECT, 0);
        assert_eq!(bad(&mut d, &mut q), Err(QueueError::BadIndirect));
        // A loop inside the table.
        raw(1, BASE, 1, DESC_F_WRITE | DESC_F_NEXT, 2);
        assert_eq!(bad(&mut d, &mut q), Err(QueueError::ChainTooLong));
        // INDIRECT together with NEXT, and bad table lengths.
        for (len, flags) in [
            (48, DESC_F_INDIRECT | DESC_F_NEXT),
            (0, DESC_F_INDIRECT),
            (40, DESC_F_INDIRECT),
        ] {
            d.desc(&mem, 5, table, len, flags, 0);
            assert_eq!(bad(&mut d, &mut q), Err(QueueError::BadIndirect));
        }
    }

    /// A table may hold as many buffers as the queue has entries (Linux
    /// fills one so): the descriptor pointing to it is not a buffer. One
    /// buffer more is a chain longer than the queue.
    #[test]
    fn an_indirect_table_may_fill_the_queue_size() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(8);
        let mut q = queue(&d, false, true);
        let table = BASE + 0x7000;
        for (buffers, direct, ok) in [(8, 0, true), (9, 0, false), (7, 1, true), (8, 1, false)] {
            for i in 0..buffers {
                let next = (i + 1) as u16;
                let flags = if i + 1 < buffers { DESC_F_NEXT } else { 0 };
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&(BASE + 0x100).to_le_bytes());
                b[8..12].copy_from_slice(&4u32.to_le_bytes());
                b[12..14].copy_from_slice(&flags.to_le_bytes());
                b[14..].copy_from_slice(&next.to_le_bytes());
                mem.write(table + 16 * i, &b).unwrap();
            }
            if direct == 1 {
                d.desc(&mem, 3, BASE + 0x50, 4, DESC_F_NEXT, 5);
                d.desc(&mem, 5, table, 16 * buffers as u32, DESC_F_INDIRECT, 0);
                d.push_head(&mem, 3);
            } else {
                d.desc(&mem, 5, table, 16 * buffers as u32, DESC_F_INDIRECT, 0);
                d.push_head(&mem, 5);
            }
            d.publish(&mem);
            let walked = walk(q.pop(0, &mem).unwrap().unwrap(), &mem);
            match ok {
                true => assert_eq!(walked.unwrap().len() as u64, buffers + direct),
                false => assert_eq!(walked, Err(QueueError::ChainTooLong)),
            }
        }
    }

    #[test]
    fn used_notification_suppression() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        // Without EVENT_IDX: interrupt unless NO_INTERRUPT.
        let mut d = Driver::new(4);
        let mut q = queue(&d, false, false);
        let one = |d: &mut Driver, q: &mut VirtQueue| {
            d.add(&mem, &[(BASE + 0x8000, 1, true)]);
            d.publish(&mem);
            let c = q.pop(0, &mem).unwrap().unwrap();
            q.push(c.token(), 1, &mem).unwrap()
        };
        assert!(one(&mut d, &mut q));
        d.set_avail_flags(&mem, AVAIL_F_NO_INTERRUPT);
        assert!(!one(&mut d, &mut q));
        // With EVENT_IDX the flag is ignored and used_event decides.
        let mut d = Driver::new(4);
        q.disable();
        q.set_layout(|l| *l = d.layout());
        q.enable(true, false).unwrap();
        d.set_avail_flags(&mem, AVAIL_F_NO_INTERRUPT);
        d.set_used_event(&mem, 0);
        assert!(one(&mut d, &mut q), "used.idx 0 -> 1 passes used_event 0");
        assert!(!one(&mut d, &mut q));
        d.set_used_event(&mem, 3);
        assert!(!one(&mut d, &mut q));
        assert!(one(&mut d, &mut q), "3 -> 4");
        assert!(!one(&mut d, &mut q));
    }

    #[test]
    fn avail_event_rearms_driver_notifications() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(8);
        let mut q = queue(&d, true, false);
        d.add(&mem, &[(BASE + 0x8000, 1, true)]);
        d.add(&mem, &[(BASE + 0x8000, 1, true)]);
        d.publish(&mem);
        q.pop(0, &mem).unwrap().unwrap();
        q.pop(0, &mem).unwrap().unwrap();
        assert!(q.pop(0, &mem).unwrap().is_none());
        assert_eq!(q.enable_notification(&mem), Ok(false));
        assert_eq!(d.avail_event(&mem), 2);
        // A buffer published in the window is caught by the re-check.
        d.add(&mem, &[(BASE + 0x8000, 1, true)]);
        d.publish(&mem);
        assert_eq!(q.enable_notification(&mem), Ok(true));
    }

    #[test]
    fn chains_popped_before_disable_are_stale() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(4);
        let mut q = queue(&d, false, false);
        d.add(&mem, &[(BASE + 0x8000, 1, true)]);
        d.publish(&mem);
        let c = q.pop(0, &mem).unwrap().unwrap();
        q.disable();
        assert_eq!(q.push(c.token(), 1, &mem), Err(QueueError::Stale));
        q.enable(false, false).unwrap();
        assert_eq!(q.push(c.token(), 1, &mem), Err(QueueError::Stale));
        assert_eq!(d.used(&mem), []);
        q.reset();
        assert!(!q.is_ready());
        assert_eq!(q.layout(), QueueLayout::default());
    }

    /// Records what the queue does to memory, to check where the fences
    /// fall.
    struct Logged<'a> {
        mem: SliceMemory<'a>,
        log: std::cell::RefCell<Vec<String>>,
    }

    impl GuestMemory for Logged<'_> {
        fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            self.log.borrow_mut().push(format!("r{:x}", gpa - BASE));
            self.mem.read(gpa, buf)
        }
        fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
            self.log.borrow_mut().push(format!("w{:x}", gpa - BASE));
            self.mem.write(gpa, data)
        }
        fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
            self.mem.check(gpa, len)
        }
        fn fence(&self, kind: Fence) {
            self.log.borrow_mut().push(format!("{kind:?}"));
        }
    }

    #[test]
    fn fences_where_the_memory_model_needs_them() {
        let mut ram = vec![0u8; RAM];
        let mem = Logged {
            mem: SliceMemory::new(BASE, &mut ram),
            log: Default::default(),
        };
        let mut d = Driver::new(4);
        let mut q = queue(&d, true, false);
        d.add(&mem.mem, &[(BASE + 0x8000, 1, true)]);
        d.publish(&mem.mem);
        let c = q.pop(0, &mem).unwrap().unwrap();
        // avail.idx, then the fence, then the ring entry.
        assert_eq!(*mem.log.borrow(), ["r3002", "Acquire", "r3004"]);
        mem.log.borrow_mut().clear();
        q.push(c.token(), 1, &mem).unwrap();
        // Element, release, used.idx, full fence, used_event.
        assert_eq!(
            *mem.log.borrow(),
            ["w4004", "Release", "w4002", "Full", "r300c"]
        );
        mem.log.borrow_mut().clear();
        q.enable_notification(&mem).unwrap();
        // avail_event, full fence, avail.idx again.
        assert_eq!(*mem.log.borrow(), ["w4024", "Full", "r3002"]);
    }

    #[test]
    fn chain_buffers_are_streams() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut d = Driver::new(16);
        let mut q = queue(&d, false, false);
        mem.write(BASE + 0x100, b"head").unwrap();
        mem.write(BASE + 0x200, b"er and data").unwrap();
        d.add(
            &mem,
            &[
                (BASE + 0x100, 4, false),
                (BASE + 0x180, 0, false),
                (BASE + 0x200, 11, false),
                (BASE + 0x300, 3, true),
                (BASE + 0x400, 2, true),
            ],
        );
        d.publish(&mem);
        let c = q.pop(0, &mem).unwrap().unwrap();
        let b = ChainBuffers::<4>::collect(c, &mem).unwrap();
        assert!(!b.overflowed());
        assert_eq!((b.readable_len(), b.writable_len()), (15, 5));
        let mut buf = [0u8; 9];
        b.read(&mem, 2, &mut buf).unwrap();
        assert_eq!(&buf, b"ader and ");
        assert_eq!(b.read(&mem, 7, &mut buf), Err(StreamError::OutOfRange));
        b.write(&mem, 1, b"xyz").unwrap();
        let mut out = [0u8; 5];
        mem.read(BASE + 0x300, &mut out[..3]).unwrap();
        mem.read(BASE + 0x400, &mut out[3..]).unwrap();
        assert_eq!(&out, b"\0xyz\0");
        assert_eq!(b.last_writable_byte(), Some(BASE + 0x401));
        let r: heapless::Vec<Region, 2> = b.readable_range(3, 4).unwrap();
        assert_eq!(
            r.as_slice(),
            [
                Region {
                    gpa: BASE + 0x103,
                    len: 1
                },
                Region {
                    gpa: BASE + 0x200,
                    len: 3
                }
            ]
        );
        assert_eq!(
            b.writable_range::<1>(0, 5),
            Err(StreamError::Overflowed),
            "two pieces do not fit in one"
        );

        // Too many buffers for the collection: walked anyway, streams closed.
        let bufs: Vec<_> = (0..6).map(|i| (BASE + 0x100 * i, 1, i >= 3)).collect();
        d.add(&mem, &bufs);
        d.publish(&mem);
        let c = q.pop(0, &mem).unwrap().unwrap();
        let b = ChainBuffers::<2>::collect(c, &mem).unwrap();
        assert!(b.overflowed());
        assert_eq!(b.read(&mem, 0, &mut [0]), Err(StreamError::Overflowed));
        assert_eq!(b.last_writable_byte(), Some(BASE + 0x500));
    }
}
