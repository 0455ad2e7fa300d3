//! The storage scheduler under arbitrary arrivals, completions (in any
//! order, including stale and repeated ids) and cancellations, with
//! arbitrary priorities and limits. Checks its invariants: FIFO within a
//! partition, completions return what was dispatched under that id, lower
//! partitions never exceed K requests or B bytes (but for one bigger
//! request alone) in flight, start none while the top partition is busy
//! and Kb of theirs are out, a waiting top request means its partition
//! holds L - K slots, `dispatch_for` starts only the partition it names,
//! and everything queued is eventually served.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_devices::virtio::sched::{Dispatch, Limits, RequestId, Scheduler};

#[derive(Arbitrary, Debug)]
struct Input {
    priorities: Vec<u8>,
    in_flight: u8,
    others: u8,
    others_bytes: u16,
    busy_others: u8,
    starvation: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Enqueue(u8, u16),
    DispatchFor(u8),
    Complete(u8),
    Stale(u32),
    Cancel(u8),
}

fuzz_target!(|input: Input| {
    let limits = Limits {
        in_flight: usize::from(input.in_flight % 10),
        others_in_flight: usize::from(input.others % 10),
        others_bytes: u64::from(input.others_bytes),
        busy_others_in_flight: usize::from(input.busy_others % 10),
        starvation: u32::from(input.starvation % 16),
    };
    let Ok(mut s) = Scheduler::<(usize, u32), 4, 16, 8>::new(&input.priorities, limits) else {
        return;
    };
    let n = input.priorities.len();
    if n == 0 {
        return;
    }
    let (l, k) = (limits.in_flight, limits.others_in_flight);
    let top = (0..n).max_by_key(|&i| input.priorities[i]).unwrap();
    let top_prio = input.priorities[top];
    let mut sent = vec![0u32; n];
    // Next expected item per partition; cancelled items are skipped.
    let mut expect: Vec<std::collections::VecDeque<u32>> = vec![Default::default(); n];
    let mut flying: Vec<Dispatch<(usize, u32)>> = Vec::new();
    let dispatch = |s: &mut Scheduler<(usize, u32), 4, 16, 8>,
                    expect: &mut Vec<std::collections::VecDeque<u32>>,
                    flying: &mut Vec<Dispatch<(usize, u32)>>| {
        loop {
            let (busy, before) = (s.top_busy(), s.others_in_flight());
            let Some(d) = s.dispatch() else { break };
            let p = d.partition;
            assert_eq!(Some(d.item.1), expect[p].pop_front(), "FIFO");
            assert_eq!(d.item.0, p);
            flying.push(d);
            let others: usize = (0..n)
                .filter(|&q| input.priorities[q] != top_prio)
                .map(|q| s.in_flight_of(q))
                .sum();
            assert!(others <= k && s.others_in_flight() == others);
            if input.priorities[p] != top_prio {
                assert!(!busy || before < limits.busy_others_in_flight, "Kb");
                assert!(
                    s.others_bytes_in_flight() <= limits.others_bytes || others == 1,
                    "B"
                );
            }
        }
        for p in 0..n {
            if input.priorities[p] == top_prio && s.queued(p) > 0 {
                let mine: usize = (0..n)
                    .filter(|&q| input.priorities[q] == top_prio)
                    .map(|q| s.in_flight_of(q))
                    .sum();
                assert!(mine >= l - k, "top kept waiting");
            }
        }
        assert!(s.in_flight() <= l);
    };
    for op in input.ops.iter().take(2000) {
        match *op {
            Op::Enqueue(p, bytes) => {
                let p = usize::from(p) % n;
                if s.enqueue(p, (p, sent[p]), u64::from(bytes)).is_ok() {
                    expect[p].push_back(sent[p]);
                    sent[p] += 1;
                }
            }
            Op::DispatchFor(p) => {
                let p = usize::from(p) % n;
                if let Some(d) = s.dispatch_for(p) {
                    assert_eq!(d.partition, p);
                    assert_eq!(Some(d.item.1), expect[p].pop_front(), "FIFO");
                    flying.push(d);
                }
            }
            Op::Complete(i) if !flying.is_empty() => {
                let d = flying.swap_remove(usize::from(i) % flying.len());
                assert_eq!(s.complete(d.id), Some((d.partition, d.item)));
                assert_eq!(s.complete(d.id), None);
            }
            Op::Complete(_) => {}
            Op::Stale(raw) => {
                let id = RequestId::from_raw(raw);
                if !flying.iter().any(|d| d.id == id) {
                    assert_eq!(s.complete(id), None);
                }
            }
            Op::Cancel(p) => {
                let p = usize::from(p) % n;
                s.cancel(p, |item| {
                    assert_eq!(Some(item.1), expect[p].pop_front());
                });
            }
        }
        dispatch(&mut s, &mut expect, &mut flying);
    }
    // Drain: everything queued is served.
    while let Some(d) = flying.pop() {
        assert_eq!(s.complete(d.id), Some((d.partition, d.item)));
        dispatch(&mut s, &mut expect, &mut flying);
    }
    assert!((0..n).all(|p| s.queued(p) == 0 && expect[p].is_empty()));
    let _ = top;
});
