//! The partition machinery on the fake architecture: traps in, what the
//! hypervisor did to the (simulated) hardware and the guest out.

use super::esr::ec;
use super::lifecycle::{REQ_STOP, stop_partition};
use super::trap::{lower_irq, lower_sync};
use super::*;
use crate::arch::fake::{self, Left};
use crate::arch::list_register::*;
use crate::arch::{Frame, cpu};
use config::layout;
use config::model::{
    Criticality, Device, MemoryMap, OnFault, Partition as PartitionConfig, Region,
};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use shared_devices::mmio::Width;
use std::sync::atomic::Ordering::SeqCst;

const QEMU_VIRT: &[u8] = include_bytes!("../../../board/qemu-virt/qemu-virt.dtb");

/// A probe device at `PROBE_BASE`: remembers the last write, reads back
/// a fixed pattern, and has an interrupt line the test controls.
#[derive(Default)]
struct Probe {
    last_write: AtomicU64,
    writes: AtomicU32,
    line: AtomicBool,
    resets: AtomicU32,
}

const PROBE_BASE: u64 = 0x0a00_0000;
const PROBE_INTID: u32 = 48;
const PATTERN: u64 = 0x8877_6655_4433_2211;

impl EmulatedDevice for Probe {
    fn read(&'static self, a: &Access, _: &mut Actions) -> u64 {
        (PATTERN >> (8 * (a.offset % 8))) & a.width.mask()
    }

    fn write(&'static self, _: &Access, value: u64, actions: &mut Actions) {
        self.last_write.store(value, SeqCst);
        self.writes.fetch_add(1, SeqCst);
        actions.raise_line = self.line.load(SeqCst);
    }

    fn line_high(&self, _: &Partition) -> bool {
        self.line.load(SeqCst)
    }

    fn reset(&self, _: &Partition) {
        self.resets.fetch_add(1, SeqCst);
    }
}

/// A mediator that counts how often it was asked to quiesce, and how
/// many shown crash records it was told of; it adds a console line to
/// every record.
#[derive(Default)]
struct CountingMediator {
    quiesced: AtomicU32,
    records_made: AtomicU32,
}

impl Mediator for CountingMediator {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn service(&self) -> Option<u64> {
        None
    }
    fn interrupt(&self, _: u32) {}
    fn quiesce(&self, _: &Partition) {
        self.quiesced.fetch_add(1, SeqCst);
    }
    fn add_to_record(&self, _: &Partition, record: &mut shared_devices::crash_record::Record) {
        let _ = record.tail.extend_from_slice(b"last words\n");
    }
    fn record_made(&self) {
        self.records_made.fetch_add(1, SeqCst);
    }
}

static CONFIG: PartitionConfig = PartitionConfig {
    name: "guest",
    criticality: Criticality::Qm,
    priority: 10,
    cpus: &[1, 2],
    memory: &[MemoryMap {
        guest: 0x4000_0000,
        host: 0x5000_0000,
        size: 0x100_0000,
    }],
    devices: &[Device {
        path: "/pl061@9030000",
        regions: &[Region {
            base: 0x903_0000,
            size: 0x1000,
        }],
        interrupts: &[39],
    }],
    disks: &[],
    image: &[],
    initrd: &[],
    bootargs: "",
    on_fault: OnFault::Inject,
    watchdog: false,
    views: &[],
    protected: &[],
    display_memory: 0,
    display_resources: 0,
    touch: false,
    audio: None,
};

struct Setup {
    hv: &'static Hypervisor,
    probe: &'static Probe,
    mediator: &'static CountingMediator,
}

/// A fresh machine with one partition ("guest", vCPUs on cores 1 and 2)
/// whose windows are the vGIC and the probe; core 1 runs vCPU 0.
fn setup(on_fault: OnFault) -> Setup {
    setup_with(on_fault, false)
}

/// `setup`, with the virtual IRQ line raised by the hypervisor
/// (`virq_by_hcr`) or by the GIC.
fn setup_with(on_fault: OnFault, virq_by_hcr: bool) -> Setup {
    fake::reset_machine();
    let fdt = fdt::Fdt::new(QEMU_VIRT).unwrap();
    let platform = crate::dt::platform::Platform::parse(&fdt, "/pl011@9000000").unwrap();
    let config: &'static PartitionConfig =
        Box::leak(Box::new(PartitionConfig { on_fault, ..CONFIG }));
    let probe: &'static Probe = Box::leak(Box::default());
    let mediator: &'static CountingMediator = Box::leak(Box::default());
    let mut windows = Vec::from(vgic_mmio::windows(2));
    windows.push(Window {
        base: PROBE_BASE,
        size: 0x1000,
        intid: Some(PROBE_INTID),
        device: probe,
    });
    mmio::sort_windows(&mut windows).unwrap();
    let cpus = (0..4)
        .map(|c| {
            let vcpu = match c {
                1 => Some((0, 0)),
                2 => Some((0, 1)),
                _ => None,
            };
            PhysicalCpu::new(c as u64, 0x80a_0000 + c as u64 * 0x2_0000, vcpu)
        })
        .collect();
    let partition = Partition {
        index: 0,
        config,
        vttbr: 1 << 48,
        vcpu_cpus: vec![1, 2],
        vgic: Mutex::new(VGic::new(2, &[39], &[PROBE_INTID], 288)),
        watchdog: None,
        windows,
        virtio_slots: 0,
        lifecycle: Mutex::new(Lifecycle::Running),
        running: AtomicBool::new(true),
        spi_routes: Default::default(),
        restarts: AtomicU32::new(0),
        reports: Default::default(),
        records: Default::default(),
    };
    let hv = install(Hypervisor {
        platform,
        host_dtb: QEMU_VIRT.to_vec(),
        gicd: 0x800_0000,
        cpus,
        partitions: vec![partition],
        mediators: vec![mediator],
        interrupt_owners: Vec::new(),
        virq_by_hcr,
        records: Default::default(),
    });
    *hv.cpus[1].power.lock() = Power::On;
    *hv.cpus[2].power.lock() = Power::On;
    cpu::set_current(1);
    Setup {
        hv,
        probe,
        mediator,
    }
}

/// Stops the partition from core 1 while core 2 (its other vCPU) plays
/// along: it parks when asked, clearing its REQ_STOP bit. Returns how core 1
/// left.
fn stop_from_core_1(hv: &'static Hypervisor) -> Option<Left> {
    let other_core = std::thread::spawn(move || {
        while hv.cpus[2].requests.load(SeqCst) & REQ_STOP == 0 {
            std::thread::yield_now();
        }
        hv.cpus[2].requests.fetch_and(!REQ_STOP, SeqCst);
    });
    let left = fake::run_until_left(|| stop_partition(&hv.partitions[0], OnFault::Stop));
    other_core.join().unwrap();
    left
}

/// ESR of a data abort with a valid syndrome.
fn data_abort(write: bool, width: Width, reg: u8, sign_extend: bool, sixty_four: bool) -> u64 {
    let sas = match width {
        Width::Byte => 0,
        Width::Half => 1,
        Width::Word => 2,
        Width::Double => 3,
    };
    ((ec::DATA_ABORT_LOWER as u64) << 26)
        | (1 << 25)
        | (1 << 24)
        | (sas << 22)
        | ((sign_extend as u64) << 21)
        | ((reg as u64) << 16)
        | ((sixty_four as u64) << 15)
        | ((write as u64) << 6)
        | 0x07
}

/// Takes a data abort at `ipa` on the running core.
fn trap_at(frame: &mut Frame, ipa: u64, esr: u64) {
    fake::with(|m| {
        m.trap = cpu::TrapInfo {
            esr,
            far: 0xffff_0000_0000_0000 | (ipa & 0xfff),
            hpfar: (ipa >> 12) << 4,
        }
    });
    lower_sync(frame);
}

#[test]
fn a_byte_load_of_the_last_redistributor_priority_answers() {
    // The review's attack: `ldrb w3, [GICR + 0x1041d]` (and the last byte
    // and a 64-bit load there) used to index past the priority array and
    // panic at EL2 with the vGIC lock held.
    let s = setup(OnFault::Stop);
    let mut frame = Frame::default();
    frame.elr = 0x4008_0000;
    for (offset, width) in [
        (0x1_041d, Width::Byte),
        (0x1_041f, Width::Byte),
        (0x1_041e, Width::Half),
        (0x1_041c, Width::Double),
    ] {
        frame.x[3] = 0xdead;
        trap_at(
            &mut frame,
            layout::GICR_BASE + layout::GICR_STRIDE + offset,
            data_abort(false, width, 3, false, true),
        );
        assert_eq!(frame.x[3], 0, "{offset:#x} {width:?}");
    }
    assert_eq!(
        frame.elr,
        0x4008_0000 + 16,
        "each load was emulated and stepped over"
    );
    assert!(
        s.hv.partitions[0].vgic.try_lock().is_some(),
        "no lock left held"
    );
}

#[test]
fn loads_are_sized_sign_extended_and_zero_extended() {
    let _s = setup(OnFault::Stop);
    let mut frame = Frame::default();
    // ldrsb x5, [probe + 7]: 0x88 sign-extended into 64 bits.
    trap_at(
        &mut frame,
        PROBE_BASE + 7,
        data_abort(false, Width::Byte, 5, true, true),
    );
    assert_eq!(frame.x[5], 0xffff_ffff_ffff_ff88);
    // ldrsh w5, [probe + 6]: 0x8877 sign-extended into 32 bits only.
    trap_at(
        &mut frame,
        PROBE_BASE + 6,
        data_abort(false, Width::Half, 5, true, false),
    );
    assert_eq!(frame.x[5], 0xffff_8877);
    // ldr x5, [probe]: all 8 bytes.
    trap_at(
        &mut frame,
        PROBE_BASE,
        data_abort(false, Width::Double, 5, false, true),
    );
    assert_eq!(frame.x[5], PATTERN);
    // A load into xzr changes nothing.
    trap_at(
        &mut frame,
        PROBE_BASE,
        data_abort(false, Width::Double, 31, false, true),
    );
    assert_eq!(frame.x[30], 0);
}

#[test]
fn stores_reach_the_device_masked_and_raise_its_line() {
    let s = setup(OnFault::Stop);
    let mut frame = Frame::default();
    frame.x[7] = 0x1234_5678_9abc_def0;
    s.probe.line.store(true, SeqCst);
    // strh w7, [probe + 2]
    trap_at(
        &mut frame,
        PROBE_BASE + 2,
        data_abort(true, Width::Half, 7, false, false),
    );
    assert_eq!(s.probe.last_write.load(SeqCst), 0xdef0);
    // The line rose: its SPI is pending on the vCPU it is routed to
    // (vCPU 0, this core) ... but disabled in the vGIC, so it waits.
    assert!(fake::with(|m| m.core().lrs.iter().all(|&lr| lr == 0)));
    // The guest enables it (GICD_CTLR.EnableGrp1, ISENABLER1 bit 16).
    frame.x[1] = 0b10;
    trap_at(
        &mut frame,
        layout::GICD_BASE,
        data_abort(true, Width::Word, 1, false, false),
    );
    frame.x[1] = 1 << (PROBE_INTID - 32);
    trap_at(
        &mut frame,
        layout::GICD_BASE + 0x104,
        data_abort(true, Width::Word, 1, false, false),
    );
    let lrs = fake::with(|m| m.core().lrs);
    assert!(
        lrs.iter()
            .any(|&lr| lr as u32 == PROBE_INTID && lr & LR_STATE_PENDING != 0 && lr & LR_EOI != 0),
        "pending in a list register, with EOI maintenance: {lrs:x?}"
    );
}

#[test]
fn a_level_still_high_after_eoi_is_raised_again() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    s.probe.line.store(true, SeqCst);
    fake::with(|m| {
        m.core().lrs[2] = PROBE_INTID as u64 | LR_EOI | LR_GROUP1;
        m.core().ended = 1 << 2;
    });
    virq::end_of_interrupts(this_cpu(), p);
    assert_eq!(
        fake::with(|m| m.core().lrs[2]),
        0,
        "ended list register freed"
    );
    assert!(
        hv().cpus[1].pending.is_set(PROBE_INTID),
        "the line is still high: pending again"
    );
}

#[test]
fn an_access_outside_every_window_faults_per_policy() {
    let s = setup(OnFault::Inject);
    let mut frame = Frame::default();
    frame.spsr = 0x3c5;
    frame.elr = 0x4000_1000;
    trap_at(
        &mut frame,
        0x0b00_0000,
        data_abort(false, Width::Word, 1, false, false),
    );
    let injected = fake::with(|m| m.core().injected.clone());
    assert_eq!(injected.len(), 1, "one abort injected");
    assert_eq!(injected[0] >> 26, 0x25, "data abort from the current EL");
    assert_eq!(s.probe.writes.load(SeqCst), 0);
}

#[test]
fn a_fault_leaves_a_record_with_the_vcpus_registers_and_last_lines() {
    use shared_devices::crash_record::{Action, Cause};
    let s = setup(OnFault::Inject);
    let p = &s.hv.partitions[0];
    let mut frame = Frame::default();
    frame.spsr = 0x3c5;
    frame.elr = 0x4000_1000;
    frame.x = core::array::from_fn(|i| 0x100 + i as u64);
    fake::with(|m| {
        m.counter = 3 * m.frequency / 2;
        m.core().guest_sp = 0x4020_0000;
    });
    let esr = data_abort(true, Width::Word, 1, false, false);
    trap_at(&mut frame, 0x0b00_0040, esr);
    let ring = p.records.lock();
    assert_eq!(ring.seqs().as_slice(), [1]);
    let r = ring.get(1).unwrap();
    assert_eq!((r.cause, r.action), (Cause::DataAbort, Action::Inject));
    assert_eq!(
        (r.esr, r.ipa, r.pc, r.pstate),
        (esr, 0x0b00_0040, 0x4000_1000, 0x3c5)
    );
    assert_eq!(r.time_us, 1_500_000);
    assert_eq!((r.vcpu, r.cpu, r.restarts), (0, 1, 0));
    assert_eq!(r.partition.as_str(), "guest");
    let regs = r.regs.unwrap();
    assert_eq!(regs.x[30], 0x100 + 30);
    assert_eq!(regs.sp, 0x4020_0000);
    assert_eq!(&r.tail[..], b"last words\n", "the mediators added theirs");
    drop(ring);
    assert_eq!(s.mediator.records_made.load(SeqCst), 1);
    assert_eq!(
        s.hv.records.first_unsaved(),
        Some((0, 1)),
        "it waits for the disk"
    );
}

#[test]
fn the_ring_keeps_the_newest_records_and_the_disk_gets_those_shown() {
    let s = setup(OnFault::Inject);
    let p = &s.hv.partitions[0];
    let mut frame = Frame::default();
    frame.spsr = 0x3c5;
    let n = 40;
    for _ in 0..n {
        trap_at(
            &mut frame,
            0x0b00_0000,
            data_abort(false, Width::Word, 1, false, false),
        );
    }
    let newest: Vec<u64> = (n - crash::RING as u64 + 1..=n).collect();
    assert_eq!(p.records.lock().seqs().as_slice(), newest.as_slice());
    // At one instant the report budget shows a burst; only those are
    // written to the disk, oldest first.
    let shown = report::BURST;
    assert_eq!(s.mediator.records_made.load(SeqCst), shown);
    assert_eq!(s.hv.records.first_unsaved(), Some((0, 1)));
    for seq in 1..=u64::from(shown) {
        assert_eq!(s.hv.records.first_unsaved(), Some((0, seq)));
        s.hv.records.saved(seq);
    }
    assert_eq!(s.hv.records.first_unsaved(), None);
    assert_eq!(s.hv.records.take_lost(), 0);
}

#[test]
fn an_sgi_reaches_only_the_partitions_own_vcpus() {
    let s = setup(OnFault::Stop);
    let mut frame = Frame::default();
    // msr ICC_SGI1R_EL1, x2: SGI 5 to target list {vCPU 1, vCPU 3 (absent)}.
    frame.x[2] = (5 << 24) | 0b1010;
    let iss = (3 << 20) | (5 << 17) | (12 << 10) | (2 << 5) | (11 << 1);
    fake::with(|m| m.trap.esr = ((ec::SYSREG as u64) << 26) | (1 << 25) | iss);
    lower_sync(&mut frame);
    assert!(s.hv.cpus[2].pending.is_set(5), "vCPU 1 (core 2) has it");
    assert!(!s.hv.cpus[1].pending.is_set(5), "not the sender");
    let sgis = fake::with(|m| m.sgis.clone());
    assert_eq!(sgis, [(KICK_SGI, 2)], "core 2 kicked, nobody else");
}

#[test]
fn stopping_resets_devices_quiesces_mediators_and_parks() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    let mut frame = Frame::default();
    // The guest enables its passthrough SPI 39 (physically backed).
    frame.x[1] = 0b10;
    trap_at(
        &mut frame,
        layout::GICD_BASE,
        data_abort(true, Width::Word, 1, false, false),
    );
    frame.x[1] = 1 << 7;
    trap_at(
        &mut frame,
        layout::GICD_BASE + 0x104,
        data_abort(true, Width::Word, 1, false, false),
    );
    assert!(fake::with(|m| m.spis_enabled.contains(&39)));
    let left = stop_from_core_1(s.hv);
    assert!(matches!(left, Some(Left::Parked { cpu: 1 })), "{left:?}");
    assert_eq!(*p.lifecycle.lock(), Lifecycle::Stopped);
    assert_eq!(s.mediator.quiesced.load(SeqCst), 1);
    assert_eq!(s.probe.resets.load(SeqCst), 1);
    assert!(
        !fake::with(|m| m.spis_enabled.contains(&39)),
        "the passthrough SPI is disabled again"
    );
    assert_eq!(*s.hv.cpus[1].power.lock(), Power::Off);
    assert_eq!(
        fake::with(|m| m.sgis.clone()),
        [(KICK_SGI, 2)],
        "the other vCPU's core was asked to stop"
    );
}

/// Its passthrough SPIs and both EL1 timers (virtual and physical: the
/// partition owns both) go to the vCPU with the HW bit.
#[test]
fn a_physical_interrupt_of_the_partition_goes_to_a_list_register() {
    let s = setup(OnFault::Stop);
    let (vtimer, ptimer) = (s.hv.platform.vtimer_intid, s.hv.platform.ptimer_intid);
    fake::with(|m| m.core().waiting = vec![39, vtimer, ptimer]);
    lower_irq(&mut Frame::default());
    let lrs = fake::with(|m| m.core().lrs);
    for intid in [39, vtimer, ptimer] {
        assert!(
            lrs.iter()
                .any(|&lr| lr as u32 == intid && lr & LR_HW != 0 && physical_intid(lr) == intid),
            "{intid} forwarded with the HW bit: {lrs:x?}"
        );
    }
    // Not deactivated by the hypervisor: the guest's deactivation does it.
    assert!(fake::with(|m| m.deactivated.is_empty()));
}

#[test]
fn windows_are_found_by_address() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    assert_eq!(
        mmio::find(p, PROBE_BASE + 0xfff).map(|w| w.base),
        Some(PROBE_BASE)
    );
    assert!(mmio::find(p, PROBE_BASE + 0x1000).is_none());
    assert!(mmio::find(p, 0).is_none());
    assert!(mmio::find(p, u64::MAX).is_none());
    assert_eq!(
        mmio::find(p, layout::GICR_BASE + 2 * layout::GICR_STRIDE - 1).map(|w| w.base),
        Some(layout::GICR_BASE)
    );
    let mut overlapping = vec![
        Window {
            base: 0x1000,
            size: 0x2000,
            intid: None,
            device: s.probe,
        },
        Window {
            base: 0x2000,
            size: 0x1000,
            intid: None,
            device: s.probe,
        },
    ];
    assert_eq!(mmio::sort_windows(&mut overlapping), Err((0x1000, 0x2000)));
}

/// PSCI CPU_ON from a vCPU of a partition that is being stopped.
#[test]
fn cpu_on_is_denied_while_the_partition_stops() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    *s.hv.cpus[2].power.lock() = Power::Off;
    p.set_lifecycle(&mut p.lifecycle.lock(), Lifecycle::Stopping);
    let mut frame = Frame::default();
    frame.x[..4].copy_from_slice(&[psci::CPU_ON_64 as u64, 1, 0x4008_0000, 0]);
    firmware::call(p, &mut frame);
    assert_eq!(frame.x[0] as i64, psci::DENIED);
    assert_eq!(*s.hv.cpus[2].power.lock(), Power::Off, "no vCPU started");
    // Running, the same call starts vCPU 1.
    p.set_lifecycle(&mut p.lifecycle.lock(), Lifecycle::Running);
    frame.x[..4].copy_from_slice(&[psci::CPU_ON_64 as u64, 1, 0x4008_0000, 0]);
    firmware::call(p, &mut frame);
    assert_eq!(frame.x[0] as i64, psci::SUCCESS);
    assert!(matches!(
        *s.hv.cpus[2].power.lock(),
        Power::OnPending { .. }
    ));
}

/// A device that completes work for a stopped partition raises nothing
/// that would survive into its next boot.
#[test]
fn nothing_is_raised_for_a_partition_that_is_not_running() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    p.set_lifecycle(&mut p.lifecycle.lock(), Lifecycle::Stopped);
    raise_virtual_spi(p, PROBE_INTID);
    assert!(!s.hv.cpus[1].pending.is_set(PROBE_INTID));
    assert!(fake::with(|m| m.sgis.is_empty()), "nobody kicked");
    p.set_lifecycle(&mut p.lifecycle.lock(), Lifecycle::Running);
    raise_virtual_spi(p, PROBE_INTID);
    assert!(s.hv.cpus[1].pending.is_set(PROBE_INTID));
}

/// A hardware interrupt that found every list register full waits in the
/// core's pending set; stopping the vCPU must deactivate it, or it stays
/// active at the GIC and never fires on that core again (a restarted
/// partition would get no timer there).
#[test]
fn stopping_deactivates_hardware_interrupts_waiting_for_a_list_register() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    fake::with(|m| m.core().lrs = [PROBE_INTID as u64 | LR_STATE_PENDING; 4]);
    let vtimer = s.hv.platform.vtimer_intid;
    virq::inject_hardware(this_cpu(), p, 0, vtimer);
    assert!(fake::with(|m| m.deactivated.is_empty()));
    stop_from_core_1(s.hv);
    assert_eq!(fake::with(|m| m.deactivated.clone()), [vtimer]);
}

/// A hardware interrupt that found every list register full goes into the
/// first one that frees, on a later return to the guest, and only once.
#[test]
fn a_waiting_hardware_interrupt_gets_the_next_free_list_register() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    fake::with(|m| m.core().lrs = [PROBE_INTID as u64 | LR_STATE_PENDING; 4]);
    let vtimer = s.hv.platform.vtimer_intid;
    virq::inject_hardware(this_cpu(), p, 0, vtimer);
    virq::flush(this_cpu(), p, 0);
    let holding = || {
        fake::with(|m| {
            m.core()
                .lrs
                .iter()
                .filter(|&&lr| lr as u32 == vtimer && lr & LR_STATE_MASK != 0)
                .count()
        })
    };
    assert_eq!(holding(), 0, "no list register free yet");
    // The guest ends one.
    fake::with(|m| m.core().lrs[2] = 0);
    virq::flush(this_cpu(), p, 0);
    assert_eq!(holding(), 1);
    virq::flush(this_cpu(), p, 0);
    assert_eq!(holding(), 1, "injected once");
}

/// On a board whose GIC cannot raise the virtual IRQ line, the hypervisor
/// raises it (HCR_EL2.VI) while a list register is pending, with a "no
/// pending" maintenance interrupt to come back, and drops both once the
/// guest has acknowledged it. Where the GIC raises it, neither is used.
#[test]
fn the_virtual_irq_line_follows_pending_list_registers_without_the_gic() {
    for by_hcr in [true, false] {
        let s = setup_with(OnFault::Stop, by_hcr);
        let p = &s.hv.partitions[0];
        let vtimer = s.hv.platform.vtimer_intid;
        virq::inject_hardware(this_cpu(), p, 0, vtimer);
        virq::flush(this_cpu(), p, 0);
        let line = || fake::with(|m| (m.core().virtual_irq, m.core().no_pending));
        assert_eq!(line(), (by_hcr, by_hcr), "by_hcr {by_hcr}");
        // The guest acknowledges it: pending becomes active.
        fake::with(|m| {
            for lr in m.core().lrs.iter_mut() {
                if *lr & LR_STATE_PENDING != 0 {
                    *lr = (*lr & !LR_STATE_MASK) | LR_STATE_ACTIVE;
                }
            }
        });
        virq::flush(this_cpu(), p, 0);
        assert_eq!(line(), (false, false), "by_hcr {by_hcr}");
    }
}

/// An exception at EL2 (a hypervisor bug) stops the whole system through
/// firmware, and, should firmware refuse, has every other core halt at its
/// next entry to EL2: no core is left waiting on a lock the dead one held.
#[test]
fn a_hypervisor_bug_stops_every_core() {
    let s = setup(OnFault::Stop);
    let left = fake::run_until_left(|| {
        trap::hv_exception(&mut Frame::default());
    });
    assert!(matches!(left, Some(Left::Halted { cpu: 1 })), "{left:?}");
    assert!(fatal::stopping());
    assert_eq!(
        fake::with(|m| m.firmware_calls.clone()),
        [[psci::SYSTEM_OFF as u64, 0, 0, 0]]
    );
    for (c, core) in s.hv.cpus.iter().enumerate() {
        let asked = core.requests.load(SeqCst) & lifecycle::REQ_HALT != 0;
        assert_eq!(asked, c != 1, "core {c}");
    }
    // Core 2, entering EL2 for anything, halts.
    cpu::set_current(2);
    let left = fake::run_until_left(lifecycle::handle_requests);
    assert!(matches!(left, Some(Left::Halted { cpu: 2 })), "{left:?}");
}

/// Data cache maintenance by set/way (trapped by HCR_EL2.TSW) completes as
/// a no-op; a PMU register reads as zero; an unknown system register is an
/// undefined instruction for the guest.
#[test]
fn trapped_system_instructions_by_family() {
    let _s = setup(OnFault::Inject);
    let sysreg = |op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64, read: bool| {
        ((ec::SYSREG as u64) << 26)
            | (1 << 25)
            | (op0 << 20)
            | (op2 << 17)
            | (op1 << 14)
            | (crn << 10)
            | (rt << 5)
            | (crm << 1)
            | read as u64
    };
    let mut frame = Frame::default();
    frame.spsr = 0x3c5;
    frame.elr = 0x4000_0000;
    // dc cisw, x3
    fake::with(|m| m.trap.esr = sysreg(1, 0, 7, 14, 2, 3, false));
    lower_sync(&mut frame);
    assert_eq!(frame.elr, 0x4000_0004);
    // mrs x4, pmcr_el0
    frame.x[4] = 0xdead;
    fake::with(|m| m.trap.esr = sysreg(3, 3, 9, 12, 0, 4, true));
    lower_sync(&mut frame);
    assert_eq!((frame.elr, frame.x[4]), (0x4000_0008, 0));
    assert!(fake::with(|m| m.core().injected.is_empty()));
    // mrs x4, s3_0_c15_c0_0 (implementation defined): undefined.
    fake::with(|m| m.trap.esr = sysreg(3, 0, 15, 0, 0, 4, true));
    lower_sync(&mut frame);
    assert_eq!(fake::with(|m| m.core().injected.len()), 1);
}

/// A device's interrupt is raised on the vCPU the guest routed it to,
/// without the partition's vGIC lock (which its own vCPUs may keep busy
/// with register accesses while the home core completes requests for
/// everybody): the home core must not wait for it.
#[test]
fn raising_a_virtual_spi_takes_no_partition_lock() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    let mut frame = Frame::default();
    frame.x[1] = 1; // vCPU 1
    let irouter = layout::GICD_BASE + 0x6000 + 8 * PROBE_INTID as u64;
    trap_at(
        &mut frame,
        irouter,
        data_abort(true, Width::Double, 1, false, true),
    );
    let busy_vgic = p.vgic.lock();
    let busy_lifecycle = p.lifecycle.lock();
    raise_virtual_spi(p, PROBE_INTID);
    drop((busy_vgic, busy_lifecycle));
    assert!(s.hv.cpus[2].pending.is_set(PROBE_INTID), "on vCPU 1's core");
    assert!(!s.hv.cpus[1].pending.is_set(PROBE_INTID));
}

/// Pending and active state, as a guest that checks or clears it sees it:
/// an emulated device's SPI (software: its vCPU's pending set and list
/// registers), a passthrough SPI and a timer PPI (the physical GIC), a
/// virtual SGI of the other vCPU (its core's pending set).
#[test]
fn pending_and_active_state_is_what_it_is() {
    let s = setup(OnFault::Stop);
    let mut frame = Frame::default();
    let store = |frame: &mut Frame, at: u64, value: u64| {
        frame.x[1] = value;
        trap_at(frame, at, data_abort(true, Width::Word, 1, false, false));
    };
    let load = |frame: &mut Frame, at: u64| {
        trap_at(frame, at, data_abort(false, Width::Word, 2, false, false));
        frame.x[2]
    };
    let word = |intid: u32| u64::from(intid / 32) * 4;
    let bit = |intid: u32| 1u64 << (intid % 32);
    let gicd = layout::GICD_BASE;
    // The probe's SPI: set pending, seen, cleared.
    store(
        &mut frame,
        gicd + 0x200 + word(PROBE_INTID),
        bit(PROBE_INTID),
    );
    assert!(s.hv.cpus[1].pending.is_set(PROBE_INTID));
    assert_eq!(
        load(&mut frame, gicd + 0x200 + word(PROBE_INTID)),
        bit(PROBE_INTID)
    );
    store(
        &mut frame,
        gicd + 0x280 + word(PROBE_INTID),
        bit(PROBE_INTID),
    );
    assert!(!s.hv.cpus[1].pending.is_set(PROBE_INTID));
    assert_eq!(load(&mut frame, gicd + 0x200 + word(PROBE_INTID)), 0);
    // Active in a list register on this core: seen, then cleared.
    fake::with(|m| m.core().lrs[1] = PROBE_INTID as u64 | LR_STATE_ACTIVE | LR_GROUP1);
    assert_eq!(
        load(&mut frame, gicd + 0x300 + word(PROBE_INTID)),
        bit(PROBE_INTID)
    );
    store(
        &mut frame,
        gicd + 0x380 + word(PROBE_INTID),
        bit(PROBE_INTID),
    );
    assert_eq!(fake::with(|m| m.core().lrs[1]), 0);
    // The passthrough SPI: the physical distributor's state.
    store(&mut frame, gicd + 0x200 + word(39), bit(39));
    assert!(fake::with(|m| m.irq_states[&(0, 39)].pending));
    assert_eq!(load(&mut frame, gicd + 0x200 + word(39)), bit(39));
    // A foreign SPI: nothing, either way.
    store(&mut frame, gicd + 0x200 + word(40), bit(40));
    assert!(!fake::with(|m| m.irq_states.contains_key(&(0, 40))));
    // vCPU 1's redistributor: a virtual SGI made pending there, seen and
    // cleared from vCPU 0; its virtual timer's state is the physical one.
    let gicr1 = layout::GICR_BASE + layout::GICR_STRIDE;
    store(&mut frame, gicr1 + 0x1_0200, 1 << 3);
    assert!(s.hv.cpus[2].pending.is_set(3));
    assert_eq!(load(&mut frame, gicr1 + 0x1_0200), 1 << 3);
    store(&mut frame, gicr1 + 0x1_0280, 1 << 3);
    assert!(!s.hv.cpus[2].pending.is_set(3));
    let vtimer = s.hv.platform.vtimer_intid;
    let rd2 = s.hv.cpus[2].redistributor;
    fake::with(|m| {
        m.irq_states.insert(
            (rd2, vtimer),
            crate::arch::IrqState {
                pending: false,
                active: true,
            },
        )
    });
    assert_eq!(load(&mut frame, gicr1 + 0x1_0300), 1 << vtimer);
}

/// A clear-pending written by one vCPU for an interrupt sitting in another
/// vCPU's list register takes it out of there before that vCPU runs again.
#[test]
fn clearing_pending_reaches_another_cores_list_registers() {
    let s = setup(OnFault::Stop);
    let p = &s.hv.partitions[0];
    // vCPU 1 (core 2) has SGI 3 pending in a list register.
    cpu::set_current(2);
    fake::with(|m| m.core().lrs[0] = 3 | LR_STATE_PENDING | LR_GROUP1);
    virq::publish_lrs(this_cpu());
    // vCPU 0 (core 1) sees it, and clears it.
    cpu::set_current(1);
    let gicr1 = layout::GICR_BASE + layout::GICR_STRIDE;
    let mut frame = Frame::default();
    trap_at(
        &mut frame,
        gicr1 + 0x1_0200,
        data_abort(false, Width::Word, 2, false, false),
    );
    assert_eq!(frame.x[2], 1 << 3, "pending, as core 2 last published");
    frame.x[1] = 1 << 3;
    trap_at(
        &mut frame,
        gicr1 + 0x1_0280,
        data_abort(true, Width::Word, 1, false, false),
    );
    assert!(
        fake::with(|m| m.sgis.contains(&(KICK_SGI, 2))),
        "core 2 kicked"
    );
    // Core 2, on its way back to vCPU 1.
    cpu::set_current(2);
    virq::flush(this_cpu(), p, 1);
    assert_eq!(fake::with(|m| m.core().lrs[0]), 0);
}
