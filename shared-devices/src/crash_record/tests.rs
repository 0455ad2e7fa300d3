use super::*;
use std::string::String;
use std::vec::Vec;

fn sample() -> Record {
    let mut r = Record {
        seq: 42,
        boot: 3,
        time_us: 12_345_678,
        restarts: 7,
        cause: Cause::DataAbort,
        action: Action::Restart,
        vcpu: 1,
        cpu: 3,
        esr: 0x9200_0046,
        far: 0xdead_0000,
        ipa: 0x1_0000_0000,
        pc: 0x4008_1234,
        pstate: 0x3c5,
        regs: Some(Registers {
            x: core::array::from_fn(|i| 0x1000 + i as u64),
            sp: 0x4010_0000,
        }),
        ..Record::default()
    };
    r.partition.push_str("crashloop").unwrap();
    r.tail
        .extend_from_slice(b"booting\nabout to fault\n")
        .unwrap();
    r
}

fn lines(r: &Record) -> Vec<String> {
    let mut out = Vec::new();
    r.write_lines(&mut |a| out.push(std::format!("{a}")));
    out
}

#[test]
fn a_record_survives_its_slot() {
    let r = sample();
    let mut slot = [0u8; RECORD_BYTES];
    r.encode(&mut slot);
    assert_eq!(Record::decode(&slot), Ok(r.clone()));
    let without = Record {
        regs: None,
        tail: heapless::Vec::new(),
        ..r
    };
    without.encode(&mut slot);
    assert_eq!(Record::decode(&slot), Ok(without));
}

#[test]
fn a_torn_or_foreign_slot_is_not_a_record() {
    let mut slot = [0u8; RECORD_BYTES];
    assert_eq!(Record::decode(&slot), Err(DecodeError::Empty));
    assert_eq!(Record::decode(&slot[1..]), Err(DecodeError::Size));
    sample().encode(&mut slot);
    // A write torn after its first sectors: the rest is the old slot's.
    let mut torn = slot;
    torn[RECORD_BYTES - 512..].fill(0x5a);
    assert_eq!(Record::decode(&torn), Err(DecodeError::Crc));
    let mut newer = slot;
    newer[at::VERSION] = 2;
    assert_eq!(Record::decode(&newer), Err(DecodeError::Version(2)));
    // Fields out of range are refused even with a good CRC.
    for (offset, value, field) in [
        (at::CAUSE, 0u8, "cause"),
        (at::ACTION, 9, "action"),
        (at::NAME_LEN, 200, "partition"),
        (at::HAS_REGS, 2, "registers"),
        (at::NAME, 0x1b, "partition"), // an escape in the name
    ] {
        let mut bad = slot;
        bad[offset] = value;
        let crc = crc32(&bad[at::COVERED..]);
        bad[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Record::decode(&bad), Err(DecodeError::Field(field)));
    }
}

#[test]
fn the_summary_says_what_the_log_line_said_before_and_the_record_number() {
    let r = sample();
    assert_eq!(
        std::format!("{}", r.summary()),
        "stage-2 fault: write at IPA 0x100000000 (pc 0x40081234) -> restart (record #42)"
    );
    let watchdog = Record {
        cause: Cause::Watchdog,
        action: Action::Stop,
        ..sample()
    };
    assert_eq!(
        std::format!("{}", watchdog.what()),
        "watchdog expired -> stop"
    );
    let undefined = Record {
        cause: Cause::Undefined,
        action: Action::Inject,
        esr: 0x0200_0000,
        ..sample()
    };
    assert_eq!(
        std::format!("{}", undefined.what()),
        "undefined trap: EC 0x0 (ESR 0x2000000) (pc 0x40081234) -> inject abort"
    );
}

#[test]
fn the_dump_shows_every_register_and_the_console_lines() {
    let out = lines(&sample());
    assert!(
        out[0].starts_with("record #42 (boot 3, 12.345678 s after power-on): partition crashloop")
    );
    let all = out.join("\n");
    for i in 0..31 {
        let cell = std::format!("x{i:<2} {:#018x}", 0x1000 + i);
        assert!(all.contains(&cell), "{cell} missing from\n{all}");
    }
    assert!(all.contains("SP 0x0000000040100000"));
    assert!(out.ends_with(&[
        "  console, last lines:".into(),
        "  | booting".into(),
        "  | about to fault".into()
    ]));
    let none = lines(&Record {
        regs: None,
        tail: heapless::Vec::new(),
        ..sample()
    });
    assert!(none.iter().any(|l| l.contains("no registers")));
    assert_eq!(none.last().unwrap(), "  console: nothing written");
}

#[test]
fn console_text_cannot_rewrite_the_readers_terminal() {
    let mut r = sample();
    r.tail.clear();
    r.tail.extend_from_slice(b"\x1b[2Jcleared\xff\n").unwrap();
    let out = lines(&r);
    assert_eq!(out.last().unwrap(), "  | \\x1b[2Jcleared\\xff");
}

#[test]
fn the_tail_keeps_the_newest_whole_lines() {
    let mut t = Tail::new();
    for i in 0..1000 {
        t.push(std::format!("line {i}").as_bytes());
    }
    let mut out = heapless::Vec::new();
    t.copy_to(&mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(text.ends_with("line 999\n"));
    assert!(text.starts_with("line "), "the oldest line kept is whole");
    assert!(text.len() > TAIL_BYTES - 20);
    // A line longer than the tail keeps its end.
    t.push(&[b'a'; 3 * TAIL_BYTES]);
    t.copy_to(&mut out);
    assert_eq!(out.len(), TAIL_BYTES);
    assert_eq!(out.last(), Some(&b'\n'));
    t.clear();
    t.copy_to(&mut out);
    assert!(out.is_empty());
}

#[test]
fn an_area_tells_the_next_sequence_number_and_boot() {
    let mut state = AreaState::FRESH;
    let mut area = std::vec![0u8; 8 * RECORD_BYTES];
    for slot in area.chunks_exact(RECORD_BYTES) {
        state.scan(slot);
    }
    assert_eq!(state, AreaState::FRESH);
    for (seq, boot) in [(9u64, 2u32), (10, 2), (11, 4)] {
        let r = Record {
            seq,
            boot,
            ..sample()
        };
        let slot = slot_of(seq, 8) as usize;
        let bytes: &mut [u8; RECORD_BYTES] = (&mut area[slot * RECORD_BYTES..][..RECORD_BYTES])
            .try_into()
            .unwrap();
        r.encode(bytes);
    }
    area[RECORD_BYTES * 3 - 1] ^= 1; // slot 2 (seq 10) torn
    let mut state = AreaState::FRESH;
    for slot in area.chunks_exact(RECORD_BYTES) {
        state.scan(slot);
    }
    assert_eq!(
        state,
        AreaState {
            next_seq: 12,
            boot: 5,
            records: 2,
            damaged: 1
        }
    );
    let found: Vec<_> = slots_in(&area).collect();
    assert_eq!(found.len(), 3);
    assert_eq!(found.iter().filter(|r| r.is_ok()).count(), 2);
}
