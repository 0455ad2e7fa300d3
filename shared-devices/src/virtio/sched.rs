//! The storage scheduler: which partition's request goes to a shared
//! physical disk next. Pure logic over opaque items (the block model's
//! request tokens, each with its size in bytes), testable on the host.
//!
//! Each partition has a FIFO queue and a priority (higher is served first;
//! config priorities are unique). The partition with the highest priority
//! is the *top* partition, the safety partition in practice; all others
//! are *lower* partitions. The top partition is *busy* while it has a
//! request queued or in flight, *idle* otherwise. The physical device
//! takes at most `L` requests at a time ([`Limits::in_flight`]). The rules:
//!
//! 1. **Lower partitions together have at most `K` requests and `B` bytes
//!    in flight** ([`Limits::others_in_flight`], `K < L`;
//!    [`Limits::others_bytes`]). A lower request bigger than `B` starts
//!    only when no other lower request is in flight.
//! 2. **While the top partition is busy the budget shrinks**: a lower
//!    request starts only while fewer than `Kb` lower requests are in
//!    flight ([`Limits::busy_others_in_flight`], `1 <= Kb <= K`). The
//!    moment a top request is queued, lower partitions start nothing more
//!    until their requests in flight have drained below `Kb`.
//! 3. **The top partition always has `L - K` slots to itself.** It may also
//!    use the other `K` while no lower request could take them; once one
//!    could, the top partition takes no slot beyond `L - K` until that
//!    request has gone.
//! 4. Otherwise the highest-priority queue that may go goes first (ties:
//!    oldest request first), and FIFO within a partition.
//! 5. **Anti-starvation**: a queue that has been passed over `N` times
//!    ([`Limits::starvation`]) at dispatches where it could have been
//!    served goes next.
//!
//! **The bound.** From 1 and 3, a top-partition request is never kept from
//! a slot by a lower partition: it waits for a slot only while its own
//! partition has `L - K` requests in flight. When it is dispatched, at
//! most `K` lower-priority requests of at most `B` bytes together (or one
//! bigger request) are in flight on the device ahead of it; from 2, once
//! it has been queued, no lower request starts while `Kb` are in flight,
//! so the requests of a burst after the first find at most `Kb` lower
//! requests started since the burst began. The lower partitions pay for
//! the bound only while the top one is busy: while it is idle they may
//! keep `K` requests and `B` bytes on the device, which is what keeps a
//! large sequential transfer streaming.
//!
//! **No starvation.** A lower request waiting for a slot or budget gets
//! one at the latest when the lower requests in flight have completed
//! (rule 3 keeps the top partition from taking the slot they free). Among
//! lower partitions rule 5 serves a queue after at most `N + P - 1`
//! dispatches that passed it over (`P` partitions): once it has been
//! passed `N` times, each other queue can go ahead of it at most once more.
//!
//! Completions may arrive in any order; each dispatched request has a
//! [`RequestId`] (slot and generation) that maps its completion back to
//! the partition and item, and a stale or repeated completion is refused.

use heapless::Deque;

/// Names one physical request from dispatch to completion. Backends carry
/// it (e.g. in a physical descriptor's cookie) and hand it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(u32);

impl RequestId {
    pub fn raw(self) -> u32 {
        self.0
    }

    pub fn from_raw(raw: u32) -> Self {
        RequestId(raw)
    }

    fn new(slot: usize, generation: u16) -> Self {
        RequestId((u32::from(generation) << 16) | slot as u32)
    }

    fn slot(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

/// The scheduler's parameters (one set per physical device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `L`: physical requests in flight at once.
    pub in_flight: usize,
    /// `K`: of which at most this many from lower partitions (`1..L`).
    pub others_in_flight: usize,
    /// `B`: bytes of lower partitions' requests in flight at most (not 0).
    pub others_bytes: u64,
    /// `Kb`: while the top partition is busy, lower requests start only
    /// while fewer than this many are in flight (`1..=K`).
    pub busy_others_in_flight: usize,
    /// `N`: passed over this many times, a queue goes next.
    pub starvation: u32,
}

impl Default for Limits {
    /// One lower request at a time, whatever its size.
    fn default() -> Self {
        Limits {
            in_flight: 4,
            others_in_flight: 1,
            others_bytes: u64::MAX,
            busy_others_in_flight: 1,
            starvation: 8,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// More partitions than the scheduler was built for.
    TooManyPartitions,
    /// `L` is 0 or above the built-in maximum, `K` is not in `1..L`, `Kb`
    /// not in `1..=K`, or `B` is 0.
    Limits,
}

/// A request leaving for the physical device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch<T> {
    pub id: RequestId,
    pub partition: usize,
    pub item: T,
}

/// A queued request: its arrival number (ties between equal priorities),
/// its size in bytes, and the item.
type Queued<T> = (u64, u64, T);

struct Part<T, const DEPTH: usize> {
    priority: u8,
    top: bool,
    queue: Deque<Queued<T>, DEPTH>,
    /// Times passed over while it could have been served.
    passed: u32,
    in_flight: usize,
}

struct Slot<T> {
    generation: u16,
    /// The partition, size in bytes and item of the request in it.
    busy: Option<(usize, u64, T)>,
}

/// The scheduler for one physical device: up to `P` partitions, `DEPTH`
/// queued requests each, `MAX_IN_FLIGHT` slots (`L` is at most this).
pub struct Scheduler<T, const P: usize, const DEPTH: usize, const MAX_IN_FLIGHT: usize> {
    parts: heapless::Vec<Part<T, DEPTH>, P>,
    slots: [Slot<T>; MAX_IN_FLIGHT],
    limits: Limits,
    in_flight: usize,
    /// Lower partitions' requests in flight, and their bytes.
    others: usize,
    others_bytes: u64,
    arrivals: u64,
}

impl<T: Copy, const P: usize, const DEPTH: usize, const MAX_IN_FLIGHT: usize>
    Scheduler<T, P, DEPTH, MAX_IN_FLIGHT>
{
    /// Partition `i` has priority `priorities[i]`.
    pub fn new(priorities: &[u8], limits: Limits) -> Result<Self, SchedError> {
        if priorities.len() > P {
            return Err(SchedError::TooManyPartitions);
        }
        let l = limits.in_flight;
        if l == 0 || l > MAX_IN_FLIGHT || l > 1 << 16 {
            return Err(SchedError::Limits);
        }
        let k = limits.others_in_flight;
        if k == 0 || k >= l || limits.others_bytes == 0 {
            return Err(SchedError::Limits);
        }
        if limits.busy_others_in_flight == 0 || limits.busy_others_in_flight > k {
            return Err(SchedError::Limits);
        }
        let top = priorities.iter().copied().max().unwrap_or(0);
        let mut parts = heapless::Vec::new();
        for &priority in priorities {
            let part = Part {
                priority,
                top: priority == top,
                queue: Deque::new(),
                passed: 0,
                in_flight: 0,
            };
            if parts.push(part).is_err() {
                return Err(SchedError::TooManyPartitions);
            }
        }
        Ok(Self {
            parts,
            slots: core::array::from_fn(|_| Slot {
                generation: 0,
                busy: None,
            }),
            limits,
            in_flight: 0,
            others: 0,
            others_bytes: 0,
            arrivals: 0,
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Whether `partition` is the top partition.
    pub fn is_top(&self, partition: usize) -> bool {
        self.parts.get(partition).is_some_and(|p| p.top)
    }

    pub fn queued(&self, partition: usize) -> usize {
        self.parts.get(partition).map_or(0, |p| p.queue.len())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn in_flight_of(&self, partition: usize) -> usize {
        self.parts.get(partition).map_or(0, |p| p.in_flight)
    }

    /// Requests of lower partitions in flight (never above `K`).
    pub fn others_in_flight(&self) -> usize {
        self.others
    }

    /// Bytes of lower partitions' requests in flight (never above `B`,
    /// but for one request bigger than `B` alone).
    pub fn others_bytes_in_flight(&self) -> u64 {
        self.others_bytes
    }

    /// Whether the top partition has a request queued or in flight.
    pub fn top_busy(&self) -> bool {
        self.parts
            .iter()
            .any(|p| p.top && (p.in_flight > 0 || !p.queue.is_empty()))
    }

    /// Queues `item`, a request of `bytes` bytes (what it moves on the
    /// device: the budget `B` counts them), for `partition`; gives it back
    /// if the queue is full or there is no such partition.
    pub fn enqueue(&mut self, partition: usize, item: T, bytes: u64) -> Result<(), T> {
        let Some(p) = self.parts.get_mut(partition) else {
            return Err(item);
        };
        p.queue
            .push_back((self.arrivals, bytes, item))
            .map_err(|(_, _, item)| item)?;
        self.arrivals += 1;
        Ok(())
    }

    /// The next request to send to the device, if the rules allow one now.
    /// Call until `None` after every enqueue and completion.
    pub fn dispatch(&mut self) -> Option<Dispatch<T>> {
        self.dispatch_if(|_| true)
    }

    /// [`Scheduler::dispatch`], but only if the request the rules choose
    /// is `partition`'s; otherwise nothing changes. (The top partition's
    /// own core starts its requests itself, and nobody else's.)
    pub fn dispatch_for(&mut self, partition: usize) -> Option<Dispatch<T>> {
        self.dispatch_if(|chosen| chosen == partition)
    }

    fn dispatch_if(&mut self, allowed: impl Fn(usize) -> bool) -> Option<Dispatch<T>> {
        let l = self.limits.in_flight;
        let k = self.limits.others_in_flight;
        if self.in_flight >= l {
            return None;
        }
        let top_busy = self.top_busy();
        // A lower queue *waits* when a lower request could start by count
        // (rules 1 and 2); it *may go* when its head fits the bytes too.
        let cap = if top_busy {
            self.limits.busy_others_in_flight
        } else {
            self.limits.others_in_flight
        };
        let lower_slot = self.others < cap;
        let fits = |p: &Part<T, DEPTH>| {
            p.queue.front().is_some_and(|&(_, bytes, _)| {
                self.others == 0
                    || self.others_bytes.saturating_add(bytes) <= self.limits.others_bytes
            })
        };
        let lower_may_go = |p: &Part<T, DEPTH>| !p.top && lower_slot && fits(p);
        let other_waiting = self.parts.iter().any(lower_may_go);
        let top_can = self.in_flight - self.others < l - k || !other_waiting;
        let may_go = |p: &Part<T, DEPTH>| {
            if p.top {
                top_can && !p.queue.is_empty()
            } else {
                lower_may_go(p)
            }
        };
        let waiting = |p: &Part<T, DEPTH>| {
            if p.top {
                may_go(p)
            } else {
                lower_slot && !p.queue.is_empty()
            }
        };

        let head = |p: &Part<T, DEPTH>| p.queue.front().map_or(u64::MAX, |(seq, _, _)| *seq);
        let starving = self
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| waiting(p) && p.passed >= self.limits.starvation)
            .max_by_key(|(_, p)| (p.passed, p.priority, core::cmp::Reverse(head(p))))
            .map(|(i, _)| i);
        let best = |lower: bool| {
            self.parts
                .iter()
                .enumerate()
                .filter(|(_, p)| may_go(p) && (lower || p.top))
                .max_by_key(|(_, p)| (p.priority, core::cmp::Reverse(head(p))))
                .map(|(i, _)| i)
        };
        let chosen = match starving {
            Some(i) if may_go(&self.parts[i]) => i,
            // A starved lower queue whose head does not fit the bytes
            // left: no other lower request goes before it (the bytes in
            // flight drain until it fits); the top partition may.
            Some(_) => best(false)?,
            None => best(true)?,
        };
        if !allowed(chosen) {
            return None;
        }

        let passed: heapless::Vec<bool, P> = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| i != chosen && waiting(p))
            .collect();
        for (p, passed) in self.parts.iter_mut().zip(passed) {
            if passed {
                p.passed = p.passed.saturating_add(1);
            }
        }
        let slot = self.slots.iter().position(|s| s.busy.is_none())?;
        let part = &mut self.parts[chosen];
        let (_, bytes, item) = part.queue.pop_front()?;
        part.passed = 0;
        part.in_flight += 1;
        if !part.top {
            self.others += 1;
            self.others_bytes += bytes;
        }
        self.in_flight += 1;
        let s = &mut self.slots[slot];
        s.busy = Some((chosen, bytes, item));
        Some(Dispatch {
            id: RequestId::new(slot, s.generation),
            partition: chosen,
            item,
        })
    }

    /// The partition and item of in-flight request `id`.
    pub fn lookup(&self, id: RequestId) -> Option<(usize, T)> {
        let s = self.slots.get(id.slot())?;
        if s.generation != id.generation() {
            return None;
        }
        s.busy.map(|(partition, _, item)| (partition, item))
    }

    /// The device finished request `id`: returns its partition and item,
    /// or `None` for an id that is not in flight (stale or repeated).
    pub fn complete(&mut self, id: RequestId) -> Option<(usize, T)> {
        let s = self.slots.get_mut(id.slot())?;
        if s.generation != id.generation() {
            return None;
        }
        let (partition, bytes, item) = s.busy.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.in_flight -= 1;
        if let Some(p) = self.parts.get_mut(partition) {
            p.in_flight -= 1;
            if !p.top {
                self.others -= 1;
                self.others_bytes -= bytes;
            }
        }
        Some((partition, item))
    }

    /// Drops `partition`'s queued (not yet dispatched) requests, handing
    /// each to `f`; for a device reset or a partition restart. Requests in
    /// flight stay until the device completes them.
    pub fn cancel(&mut self, partition: usize, mut f: impl FnMut(T)) {
        if let Some(p) = self.parts.get_mut(partition) {
            while let Some((_, _, item)) = p.queue.pop_front() {
                f(item);
            }
            p.passed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Sched = Scheduler<(usize, u32), 4, 64, 8>;

    /// xorshift64*: a small deterministic generator for the randomized
    /// tests (fixed seeds, so failures reproduce).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn drain(s: &mut Sched) -> Vec<Dispatch<(usize, u32)>> {
        core::iter::from_fn(|| s.dispatch()).collect()
    }

    #[test]
    fn refuses_bad_parameters() {
        let l = |in_flight, others_in_flight| Limits {
            in_flight,
            others_in_flight,
            starvation: 1,
            ..Limits::default()
        };
        assert!(Sched::new(&[1, 2, 3, 4, 5], l(2, 1)).is_err());
        assert_eq!(Sched::new(&[1], l(0, 1)).err(), Some(SchedError::Limits));
        assert_eq!(Sched::new(&[1], l(9, 1)).err(), Some(SchedError::Limits));
        assert_eq!(Sched::new(&[1], l(2, 0)).err(), Some(SchedError::Limits));
        assert_eq!(Sched::new(&[1], l(2, 2)).err(), Some(SchedError::Limits));
        assert!(Sched::new(&[1, 2], l(2, 1)).is_ok());
    }

    #[test]
    fn top_partition_first_fifo_within() {
        let mut s = Sched::new(&[10, 200], Limits::default()).unwrap();
        for i in 0..3 {
            s.enqueue(0, (0, i), 512).unwrap();
        }
        for i in 0..3 {
            s.enqueue(1, (1, i), 512).unwrap();
        }
        let d: Vec<_> = drain(&mut s).iter().map(|d| d.item).collect();
        assert_eq!(d, [(1, 0), (1, 1), (1, 2), (0, 0)], "L=4, K=1");
        assert!(s.is_top(1) && !s.is_top(0));
        assert_eq!((s.in_flight(), s.others_in_flight()), (4, 1));
    }

    /// The bound, concretely: the lower partition floods the device; the
    /// top partition's requests go out at once, with at most K lower
    /// requests ahead of them; once the top is busy, the lower partition
    /// starts nothing more until fewer than Kb of its requests are out.
    #[test]
    fn top_waits_for_at_most_k_lower_requests() {
        for k in 1..4 {
            for kb in 1..=k {
                let limits = Limits {
                    in_flight: 4,
                    others_in_flight: k,
                    busy_others_in_flight: kb,
                    starvation: 2,
                    ..Limits::default()
                };
                let mut s = Sched::new(&[10, 200], limits).unwrap();
                for i in 0..20 {
                    s.enqueue(0, (0, i), 512).unwrap();
                }
                let first = drain(&mut s);
                assert_eq!(first.len(), k, "lower partition capped at K");
                for i in 0..(4 - k) as u32 {
                    s.enqueue(1, (1, i), 512).unwrap();
                }
                let top = drain(&mut s);
                assert_eq!(top.len(), 4 - k, "L - K slots are the top's");
                assert!(top.iter().all(|d| d.partition == 1));
                assert_eq!(s.others_in_flight(), k, "ahead of them: K requests");
                s.enqueue(1, (1, 9), 512).unwrap();
                assert!(s.complete(first[0].id).is_some());
                let next = drain(&mut s);
                if k - 1 < kb {
                    // Below Kb: the freed lower slot is the lower's again.
                    assert_eq!(next[0].partition, 0, "k {k} kb {kb}");
                    assert!(s.complete(top[0].id).is_some());
                    assert_eq!(drain(&mut s)[0].item, (1, 9));
                } else {
                    // The budget shrank: the slot serves the top.
                    assert_eq!(next[0].item, (1, 9), "k {k} kb {kb}");
                }
                assert!(s.others_in_flight() <= k);
            }
        }
    }

    /// `dispatch_for` starts only the partition the rules choose, and
    /// changes nothing when they choose another.
    #[test]
    fn dispatch_for_one_partition() {
        let mut s = Sched::new(&[10, 200], Limits::default()).unwrap();
        s.enqueue(0, (0, 0), 512).unwrap();
        s.enqueue(1, (1, 0), 512).unwrap();
        assert_eq!(s.dispatch_for(0), None, "the top goes first");
        assert_eq!((s.queued(0), s.queued(1), s.in_flight()), (1, 1, 0));
        assert_eq!(s.dispatch_for(1).map(|d| d.item), Some((1, 0)));
        assert_eq!(s.dispatch_for(1), None, "nothing left of the top's");
        assert_eq!(s.dispatch_for(0).map(|d| d.item), Some((0, 0)));
    }

    /// The byte budget: lower requests start while their bytes in flight
    /// stay within B; one bigger than B goes alone.
    #[test]
    fn lower_bytes_in_flight_stay_within_the_budget() {
        let limits = Limits {
            in_flight: 8,
            others_in_flight: 6,
            others_bytes: 1000,
            busy_others_in_flight: 1,
            starvation: 8,
        };
        let mut s = Sched::new(&[10, 200], limits).unwrap();
        for (i, bytes) in [400, 400, 400, 5000, 100].into_iter().enumerate() {
            s.enqueue(0, (0, i as u32), bytes).unwrap();
        }
        let d = drain(&mut s);
        assert_eq!(d.len(), 2, "400 + 400 fit, a third would not");
        assert_eq!(s.others_bytes_in_flight(), 800);
        s.complete(d[0].id).unwrap();
        let third = drain(&mut s);
        assert_eq!(third.len(), 1, "the third");
        s.complete(d[1].id).unwrap();
        assert!(drain(&mut s).is_empty(), "5000 waits until it is alone");
        s.complete(third[0].id).unwrap();
        let big = drain(&mut s);
        assert_eq!(big.len(), 1, "the big one alone");
        assert_eq!(s.others_bytes_in_flight(), 5000);
        assert!(drain(&mut s).is_empty(), "nothing beside it");
        s.complete(big[0].id).unwrap();
        assert_eq!(drain(&mut s)[0].item, (0, 4));
        assert_eq!(s.others_bytes_in_flight(), 100);
    }

    /// While the top partition is idle the lower ones may keep K requests
    /// out; the moment a top request is queued they start nothing more
    /// until fewer than Kb are out, and get K again once it is idle.
    #[test]
    fn the_budget_shrinks_while_the_top_is_busy() {
        let limits = Limits {
            in_flight: 4,
            others_in_flight: 3,
            others_bytes: u64::MAX,
            busy_others_in_flight: 1,
            starvation: 8,
        };
        let mut s = Sched::new(&[10, 200], limits).unwrap();
        for i in 0..10 {
            s.enqueue(0, (0, i), 512).unwrap();
        }
        let lower = drain(&mut s);
        assert_eq!(lower.len(), 3);
        assert!(!s.top_busy());
        s.enqueue(1, (1, 0), 512).unwrap();
        assert!(s.top_busy());
        let top = drain(&mut s);
        assert_eq!(top.len(), 1, "the top's own slot");
        for d in &lower[..2] {
            s.complete(d.id).unwrap();
            assert!(drain(&mut s).is_empty(), "still Kb or more out");
        }
        s.complete(lower[2].id).unwrap();
        assert_eq!(drain(&mut s).len(), 1, "below Kb: one");
        assert!(drain(&mut s).is_empty());
        s.complete(top[0].id).unwrap();
        assert!(!s.top_busy());
        assert_eq!(drain(&mut s).len(), 2, "idle again: back to K");
    }

    #[test]
    fn top_borrows_idle_lower_slots_but_gives_them_back() {
        let mut s = Sched::new(&[200, 10], Limits::default()).unwrap();
        for i in 0..6 {
            s.enqueue(0, (0, i), 512).unwrap();
        }
        let top = drain(&mut s);
        assert_eq!(top.len(), 4, "nobody else waiting: all of L");
        s.enqueue(1, (1, 0), 512).unwrap();
        s.enqueue(1, (1, 1), 512).unwrap();
        assert!(drain(&mut s).is_empty());
        // The first completion goes to the waiting lower request, although
        // the top has requests queued too.
        s.complete(top[0].id).unwrap();
        assert_eq!(
            drain(&mut s).iter().map(|d| d.item).collect::<Vec<_>>(),
            [(1, 0)]
        );
        s.complete(top[1].id).unwrap();
        assert_eq!(
            drain(&mut s).iter().map(|d| d.item).collect::<Vec<_>>(),
            [(0, 4)]
        );
    }

    #[test]
    fn lower_queues_do_not_starve_each_other() {
        let limits = Limits {
            in_flight: 2,
            others_in_flight: 1,
            starvation: 3,
            ..Limits::default()
        };
        let mut s = Sched::new(&[200, 50, 10], limits).unwrap();
        for i in 0..10 {
            s.enqueue(1, (1, i), 512).unwrap();
            s.enqueue(2, (2, i), 512).unwrap();
        }
        let mut order = Vec::new();
        for _ in 0..10 {
            let d = drain(&mut s);
            assert_eq!(d.len(), 1);
            order.push(d[0].partition);
            s.complete(d[0].id).unwrap();
        }
        assert_eq!(order, [1, 1, 1, 2, 1, 1, 1, 2, 1, 1]);
    }

    #[test]
    fn completions_map_back_and_stale_ones_are_refused() {
        let mut s = Sched::new(&[200, 10], Limits::default()).unwrap();
        s.enqueue(0, (0, 7), 512).unwrap();
        s.enqueue(1, (1, 8), 512).unwrap();
        let d = drain(&mut s);
        assert_eq!(s.lookup(d[1].id), Some((1, (1, 8))));
        assert_eq!(s.complete(d[1].id), Some((1, (1, 8))));
        assert_eq!(s.complete(d[1].id), None, "twice");
        assert_eq!(s.lookup(d[1].id), None);
        // The slot is reused under a new generation.
        s.enqueue(1, (1, 9), 512).unwrap();
        let e = drain(&mut s);
        assert_ne!(e[0].id, d[1].id);
        assert_eq!(s.complete(d[1].id), None);
        assert_eq!(
            s.complete(RequestId::from_raw(0xffff)),
            None,
            "no such slot"
        );
        assert_eq!(s.complete(e[0].id), Some((1, (1, 9))));
        assert_eq!(s.complete(d[0].id), Some((0, (0, 7))));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn cancel_drops_only_queued_requests() {
        let mut s = Sched::new(&[200, 10], Limits::default()).unwrap();
        for i in 0..3 {
            s.enqueue(1, (1, i), 512).unwrap();
        }
        let d = drain(&mut s);
        let mut dropped = Vec::new();
        s.cancel(1, |item| dropped.push(item));
        assert_eq!(dropped, [(1, 1), (1, 2)]);
        assert_eq!(s.queued(1), 0);
        assert_eq!(s.complete(d[0].id), Some((1, (1, 0))));
        assert_eq!(s.enqueue(5, (5, 0), 512), Err((5, 0)));
    }

    #[test]
    fn queue_full_gives_the_item_back() {
        let mut s = Scheduler::<u8, 1, 2, 2>::new(
            &[1],
            Limits {
                in_flight: 2,
                others_in_flight: 1,
                starvation: 1,
                ..Limits::default()
            },
        )
        .unwrap();
        s.enqueue(0, 1, 512).unwrap();
        s.enqueue(0, 2, 512).unwrap();
        assert_eq!(s.enqueue(0, 3, 512), Err(3));
    }

    /// Randomized: arrivals and out-of-order completions on up to four
    /// partitions with random limits. Checks at every step: FIFO within a
    /// partition; completions return what was dispatched under that id;
    /// lower partitions never exceed `K` in flight; a waiting top request
    /// implies its own partition holds `L - K` slots (so it waits only for
    /// its own and at most `K` lower requests); a lower queue is passed
    /// over by at most `N + P - 1` lower dispatches; and at the end every
    /// request is served.
    #[test]
    fn randomized_properties() {
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let n = 1 + rng.below(4);
            let mut prios: Vec<u8> = Vec::new();
            while prios.len() < n {
                let p = rng.below(256) as u8;
                if !prios.contains(&p) {
                    prios.push(p);
                }
            }
            let l = 2 + rng.below(6);
            let k = 1 + rng.below(l - 1);
            let limits = Limits {
                in_flight: l,
                others_in_flight: k,
                others_bytes: [u64::MAX, 512, 4096, 10_000][rng.below(4)],
                busy_others_in_flight: 1 + rng.below(k),
                starvation: rng.below(6) as u32,
            };
            let mut s = Sched::new(&prios, limits).unwrap();
            let top = (0..n).max_by_key(|&i| prios[i]).unwrap();
            let lower: Vec<usize> = (0..n).filter(|&i| i != top).collect();
            let bound = limits.starvation as usize + n - 1;

            let mut sent = vec![0u32; n];
            let mut next_out = vec![0u32; n];
            let mut flying: Vec<Dispatch<(usize, u32)>> = Vec::new();
            // Lower dispatches of others seen while each queue's head waited.
            let mut passed_by = vec![0usize; n];
            let steps = 3000;
            for step in 0..steps + 10_000 {
                let arriving = step < steps;
                if arriving && rng.below(3) != 0 {
                    // Bursty: the top partition less often than the others.
                    let p = rng.below(n);
                    let bytes = [0, 512, 4096, 65536][rng.below(4)];
                    if (p != top || rng.below(3) == 0) && s.enqueue(p, (p, sent[p]), bytes).is_ok()
                    {
                        sent[p] += 1;
                    }
                } else if !flying.is_empty() {
                    let d = flying.swap_remove(rng.below(flying.len()));
                    assert_eq!(s.complete(d.id), Some((d.partition, d.item)));
                    assert_eq!(s.complete(d.id), None);
                } else if !arriving && (0..n).all(|p| s.queued(p) == 0) {
                    break;
                }
                loop {
                    let (busy, others_before) = (s.top_busy(), s.others_in_flight());
                    let Some(d) = s.dispatch() else { break };
                    let p = d.partition;
                    if p != top {
                        assert!(
                            !busy || others_before < limits.busy_others_in_flight,
                            "seed {seed}: Kb exceeded while the top was busy"
                        );
                        assert!(
                            s.others_bytes_in_flight() <= limits.others_bytes
                                || s.others_in_flight() == 1,
                            "seed {seed}: B exceeded"
                        );
                    }
                    assert_eq!(d.item, (p, next_out[p]), "seed {seed}: FIFO");
                    next_out[p] += 1;
                    assert_eq!(s.lookup(d.id), Some((p, d.item)));
                    if p != top {
                        for &q in &lower {
                            if q != p && s.queued(q) > 0 {
                                passed_by[q] += 1;
                                assert!(
                                    passed_by[q] <= bound,
                                    "seed {seed}: partition {q} starved"
                                );
                            }
                        }
                        passed_by[p] = 0;
                    }
                    flying.push(d);
                    assert!(s.others_in_flight() <= k, "seed {seed}: K exceeded");
                }
                for &q in &lower {
                    if s.queued(q) == 0 {
                        passed_by[q] = 0;
                    }
                }
                if s.queued(top) > 0 {
                    assert!(
                        s.in_flight_of(top) >= l - k,
                        "seed {seed}: top kept waiting by lower partitions"
                    );
                }
                assert!(s.in_flight() <= l);
                assert_eq!(s.in_flight(), flying.len());
            }
            assert!(flying.is_empty(), "seed {seed}: not drained");
            assert_eq!(sent, next_out, "seed {seed}: every request served");
        }
    }
}
