//! `cpubench`: CPU-bound work timed on the shared counter, for
//! `cargo xtask bench cpu`, which runs it in a partition under the
//! hypervisor and on QEMU without it, and compares the two. Under
//! `-icount shift=0` one instruction is one nanosecond of counter time, so
//! a kernel's ticks count the instructions it ran, plus whatever else ran
//! meanwhile on any core of the machine (under the hypervisor: its traps,
//! interrupts and the service core's work).
//!
//! Three kernels of different character, each one to two seconds of
//! counter time (QEMU takes longer on the host: most for `memory`), one
//! vCPU:
//!
//! - `integer`: register-only arithmetic (multiply, rotate, xor, divide),
//!   no memory traffic;
//! - `memory`: an 8 MiB array of indices made one random cycle, followed
//!   for millions of steps while counting visits in a 1 MiB table, then
//!   streamed through in halves: loads and stores all over 9 MiB, which
//!   under the hypervisor also go through stage-2 translation;
//! - `branchy`: arrays of pseudo-random numbers sorted by a quicksort,
//!   whose comparisons go either way at random.
//!
//! Before each kernel the program sleeps a little, so console output
//! still queued (the hypervisor's and its own last line, which the
//! hypervisor writes out at the console's line rate) is not written out
//! during the measurement.
//!
//! ```text
//! cpubench: <kernel> ticks=<n> hz=<counter Hz> checksum=0x<hex>   (one line each)
//! cpubench: done
//! ```
//!
//! The checksums depend only on the kernels' work, so a run under the
//! hypervisor and a native one print the same.

#![no_std]
#![no_main]

use core::hint::black_box;
use testkit::println;
use testkit::rng::XorShift64 as Rng;
use testkit::rt::timer;

testkit::entry!("cpubench", main);

/// Rounds of the integer kernel (about 14 instructions each).
const INTEGER_ROUNDS: u64 = 120_000_000;
/// Entries of the memory kernel's index array (u32: 8 MiB).
const NEXT_LEN: usize = 2 << 20;
/// Entries of its visit counts (u32: 1 MiB); a power of two.
const COUNTS_LEN: usize = 256 << 10;
/// Steps along the cycle.
const CHASE_STEPS: usize = 10_000_000;
/// Passes over the array's halves.
const STREAM_PASSES: u32 = 40;
/// Numbers each sort sorts (u32: 128 KiB).
const SORT_LEN: usize = 32 << 10;
/// Arrays sorted.
const SORT_ROUNDS: u32 = 300;
/// Slices this short are finished by insertion sort.
const INSERTION_MAX: usize = 16;
/// Counter time slept before each kernel.
const SETTLE_MS: u64 = 200;

/// The memory kernel's arrays and the sort's, in bss (zeroed at boot).
static mut NEXT: [u32; NEXT_LEN] = [0; NEXT_LEN];
static mut COUNTS: [u32; COUNTS_LEN] = [0; COUNTS_LEN];
static mut SORT: [u32; SORT_LEN] = [0; SORT_LEN];

/// Register-only arithmetic: four words mixed with multiplies, rotates,
/// xors and a division per round.
fn integer(rounds: u64, seed: u64) -> u64 {
    let (mut a, mut b, mut c, mut d) = (seed, seed ^ 0x9e37_79b9_7f4a_7c15, !seed, seed << 1);
    for i in 0..rounds {
        a = a.wrapping_add(b ^ i).rotate_left(13);
        b = b.wrapping_mul(0xff51_afd7_ed55_8ccd) ^ (c >> 7);
        c = c.wrapping_sub(d).rotate_right(29) ^ a;
        d = d.wrapping_add(a / ((b >> 40) | 1));
    }
    a ^ b.rotate_left(16) ^ c.rotate_left(32) ^ d.rotate_left(48)
}

/// Makes `next` one cycle through all its indices in a random order
/// (Sattolo's shuffle of the identity), follows it for `steps` steps
/// counting visits in `counts`, then streams through it: each pass mixes
/// the first half into the second and the second into the first.
fn memory(next: &mut [u32], counts: &mut [u32], steps: usize, passes: u32, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    for (i, n) in next.iter_mut().enumerate() {
        *n = i as u32;
    }
    for i in (1..next.len()).rev() {
        let j = (rng.next_u64() % i as u64) as usize;
        next.swap(i, j);
    }
    counts.fill(0);

    let mask = counts.len() - 1;
    let mut at = 0usize;
    let mut sum = 0u64;
    for _ in 0..steps {
        at = next[at] as usize;
        counts[at & mask] = counts[at & mask].wrapping_add(1);
        sum = sum.wrapping_add(at as u64);
    }

    let half = next.len() / 2;
    let (low, high) = next.split_at_mut(half);
    for pass in 0..passes {
        for (l, h) in low.iter().zip(high.iter_mut()) {
            *h = h.rotate_left(pass) ^ l.wrapping_mul(0x9e37_79b9);
        }
        for (l, h) in low.iter_mut().zip(high.iter()) {
            *l = l.wrapping_add(h.rotate_right(7));
        }
    }

    let mut check = sum ^ ((at as u64) << 32);
    for (i, &c) in counts.iter().enumerate() {
        check = check.rotate_left(5) ^ u64::from(c).wrapping_mul(i as u64 | 1);
    }
    for &n in next.iter() {
        check = check.rotate_left(3).wrapping_add(u64::from(n));
    }
    check
}

/// Sorts `v` ascending: quicksort (median of three, Hoare partition),
/// recursing into the smaller side, insertion sort for short slices.
fn quicksort(mut v: &mut [u32]) {
    while v.len() > INSERTION_MAX {
        let last = v.len() - 1;
        let mid = last / 2;
        if v[mid] < v[0] {
            v.swap(mid, 0);
        }
        if v[last] < v[0] {
            v.swap(last, 0);
        }
        if v[last] < v[mid] {
            v.swap(last, mid);
        }
        let pivot = v[mid];
        let (mut i, mut j) = (0usize, last);
        loop {
            while v[i] < pivot {
                i += 1;
            }
            while v[j] > pivot {
                j -= 1;
            }
            if i >= j {
                break;
            }
            v.swap(i, j);
            i += 1;
            j -= 1;
        }
        // v[..=j] <= pivot <= v[j + 1..], both sides non-empty.
        let (left, right) = v.split_at_mut(j + 1);
        if left.len() < right.len() {
            quicksort(left);
            v = right;
        } else {
            quicksort(right);
            v = left;
        }
    }
    for i in 1..v.len() {
        let x = v[i];
        let mut k = i;
        while k > 0 && v[k - 1] > x {
            v[k] = v[k - 1];
            k -= 1;
        }
        v[k] = x;
    }
}

/// Sorts `rounds` arrays of pseudo-random numbers; the checksum covers
/// every sorted array (and marks one that is not sorted).
fn branchy(v: &mut [u32], rounds: u32, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut check = 0u64;
    for _ in 0..rounds {
        for x in v.iter_mut() {
            *x = rng.next_u64() as u32;
        }
        quicksort(v);
        let mut previous = 0;
        for (i, &x) in v.iter().enumerate() {
            if x < previous {
                check ^= 0xbad0_0000_0000_0000;
            }
            previous = x;
            check = check.rotate_left(1) ^ u64::from(x).wrapping_mul(i as u64 + 1);
        }
    }
    check
}

/// Times `kernel` on the counter after letting the console settle, and
/// prints its line.
fn measure(name: &str, kernel: impl FnOnce() -> u64) {
    timer::sleep_ms(SETTLE_MS);
    let start = timer::counter();
    let checksum = black_box(kernel());
    let ticks = timer::counter() - start;
    println!(
        "cpubench: {} ticks={} hz={} checksum=0x{:x}",
        name,
        ticks,
        timer::frequency(),
        checksum
    );
}

fn main() -> ! {
    // SAFETY: only this vCPU runs, and these are the only references ever
    // made to the arrays (each a whole static, of its length).
    let (next, counts, sort) = unsafe {
        (
            core::slice::from_raw_parts_mut((&raw mut NEXT).cast::<u32>(), NEXT_LEN),
            core::slice::from_raw_parts_mut((&raw mut COUNTS).cast::<u32>(), COUNTS_LEN),
            core::slice::from_raw_parts_mut((&raw mut SORT).cast::<u32>(), SORT_LEN),
        )
    };
    measure("integer", || {
        integer(black_box(INTEGER_ROUNDS), black_box(0x0123_4567_89ab_cdef))
    });
    measure("memory", || {
        memory(
            next,
            counts,
            black_box(CHASE_STEPS),
            black_box(STREAM_PASSES),
            black_box(0x2545_f491_4f6c_dd1d),
        )
    });
    measure("branchy", || {
        branchy(
            sort,
            black_box(SORT_ROUNDS),
            black_box(0x5851_f42d_4c95_7f2d),
        )
    });
    println!("cpubench: done");
    loop {
        timer::sleep_ms(1000);
    }
}
