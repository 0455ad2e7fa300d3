use super::*;

const RATE: u32 = QEMU_RATE;

/// `len` samples of `amplitude` (fraction of full scale) × sin(2π f t +
/// `phase`), from `onset` on (silence before), `total` samples in all.
fn sine(freq: f64, amplitude: f64, phase: f64, onset: usize, total: usize) -> Vec<i16> {
    (0..total)
        .map(|i| {
            if i < onset {
                return 0;
            }
            let t = (i - onset) as f64 / RATE as f64;
            let v = amplitude * 32767.0 * (2.0 * PI * freq * t + phase).sin();
            v.round() as i16
        })
        .collect()
}

/// The sample-wise sum, saturated.
fn add(a: &[i16], b: &[i16]) -> Vec<i16> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| x.saturating_add(y))
        .collect()
}

fn signal(samples: &[i16]) -> Signal<'_> {
    Signal {
        samples,
        rate: RATE,
    }
}

fn stereo(left: Vec<i16>, right: Vec<i16>) -> Wav {
    Wav::new(RATE, vec![left, right])
}

fn error(bytes: &[u8]) -> String {
    format!("{:#}", Wav::parse(bytes).unwrap_err())
}

/// A chunk: id, little-endian size, body, pad byte if odd.
fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
    out
}

fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + body.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(&body);
    out
}

/// A `fmt ` body: tag, channels, rate, bits, and `extra` bytes after.
fn fmt(tag: u16, channels: u16, rate: u32, bits: u16, extra: &[u8]) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut out = Vec::new();
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * align as u32).to_le_bytes());
    out.extend_from_slice(&align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(extra);
    out
}

fn pcm(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[test]
fn round_trips_and_measures_duration() {
    let wav = stereo(sine(440.0, 0.5, 0.0, 0, 4800), vec![-1, 2, -3]);
    assert_eq!(wav.channels[1].len(), 4800, "padded");
    let bytes = wav.to_bytes();
    assert_eq!(bytes.len(), 44 + 4800 * 4);
    let back = Wav::parse(&bytes).unwrap();
    assert_eq!(back, wav);
    back.expect_format(QEMU_RATE, QEMU_CHANNELS).unwrap();
    assert_eq!(back.frames(), 4800);
    assert_eq!(back.duration(), Duration::from_millis(100));
    assert_eq!(back.index_at(Duration::from_millis(10)), 480);
    assert_eq!(back.time_of(24_000), Duration::from_millis(500));
    assert_eq!(back.channel(1).samples[..4], [-1, 2, -3, 0]);
    assert_eq!(back.channel(0).samples_in(10.0), 480);
    assert_eq!(back.channel(0).ms(96), 2.0);
}

#[test]
fn reads_a_file() {
    let dir = paths::target_dir().join("xtask-test-wav");
    paths::create_dir(&dir).unwrap();
    let path = dir.join("read.wav");
    let wav = stereo(
        sine(1000.0, 0.25, 0.0, 0, 480),
        sine(500.0, 0.25, 0.0, 0, 480),
    );
    wav.write(&path).unwrap();
    assert_eq!(Wav::read(&path).unwrap(), wav);
    let missing = format!("{:#}", Wav::read(&dir.join("missing.wav")).unwrap_err());
    assert!(missing.contains("cannot read"), "{missing}");
}

#[test]
fn tolerates_other_chunks_and_extensible_pcm() {
    let samples = [1, -1, 2, -2, i16::MAX, i16::MIN];
    let bytes = riff(&[
        chunk(b"LIST", b"odd"),
        chunk(b"fmt ", &fmt(FORMAT_PCM, 2, 44_100, 16, &[0, 0])),
        chunk(b"fact", &[0; 4]),
        chunk(b"data", &pcm(&samples)),
        chunk(b"id3 ", b"tail"),
    ]);
    let wav = Wav::parse(&bytes).unwrap();
    assert_eq!(wav.rate, 44_100);
    assert_eq!(wav.channels, [vec![1, 2, i16::MAX], vec![-1, -2, i16::MIN]]);
    let format = format!(
        "{:#}",
        wav.expect_format(QEMU_RATE, QEMU_CHANNELS).unwrap_err()
    );
    assert!(
        format.contains("44100 Hz with 2 channels, expected 48000 Hz"),
        "{format}"
    );

    // WAVE_FORMAT_EXTENSIBLE: cbSize 22, valid bits, mask, PCM sub-format.
    let mut extra = vec![22, 0, 16, 0, 3, 0, 0, 0];
    extra.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0]);
    extra.extend_from_slice(&[0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);
    let bytes = riff(&[
        chunk(b"fmt ", &fmt(FORMAT_EXTENSIBLE, 1, RATE, 16, &extra)),
        chunk(b"data", &pcm(&samples)),
    ]);
    let wav = Wav::parse(&bytes).unwrap();
    assert_eq!(wav.channels, [samples.to_vec()]);
}

#[test]
fn refuses_what_it_cannot_judge_with_clear_errors() {
    let data = chunk(b"data", &pcm(&[0; 4]));
    let cases: [(Vec<u8>, &str); 9] = [
        (b"RIFX\x10\0\0\0WAVE".to_vec(), "not a RIFF/WAVE file"),
        (b"RIFF\x10\0\0\0AVI ".to_vec(), "not a RIFF/WAVE file"),
        (
            riff(&[chunk(b"fmt ", &fmt(3, 2, RATE, 32, &[])), data.clone()]),
            "format 0x0003 is not PCM",
        ),
        (
            riff(&[chunk(b"fmt ", &fmt(1, 2, RATE, 8, &[])), data.clone()]),
            "8-bit samples",
        ),
        (
            riff(&[chunk(b"fmt ", &fmt(1, 0, RATE, 16, &[])), data.clone()]),
            "0 channels",
        ),
        (
            riff(std::slice::from_ref(&data)),
            "data chunk comes before the fmt",
        ),
        (
            riff(&[chunk(b"fmt ", &fmt(1, 2, RATE, 16, &[]))]),
            "no data chunk",
        ),
        (
            riff(&[
                chunk(b"fmt ", &fmt(1, 2, RATE, 16, &[])),
                chunk(b"data", &pcm(&[0; 3])),
            ]),
            "not a whole number of 4-byte frames",
        ),
        (
            riff(&[chunk(b"fmt ", &[1, 0, 2, 0])]),
            "fmt chunk is 4 bytes",
        ),
    ];
    for (bytes, expected) in cases {
        let message = error(&bytes);
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
}

/// What QEMU leaves when it is killed: its header with both sizes still 0.
#[test]
fn an_unclean_exit_is_named() {
    let wav = stereo(sine(1000.0, 0.5, 0.0, 0, 480), vec![]);
    let mut bytes = wav.to_bytes();
    bytes[4..8].fill(0);
    bytes[40..44].fill(0);
    for bytes in [&bytes[..], &bytes[..44], &bytes[..20], &[][..]] {
        let message = error(bytes);
        assert!(message.contains("QEMU did not exit cleanly"), "{message}");
    }
    // Only the data size unset.
    let mut bytes = wav.to_bytes();
    bytes[40..44].fill(0);
    let message = error(&bytes);
    assert!(
        message.contains("data size is 0 but 1920 bytes follow"),
        "{message}"
    );
    assert!(message.contains("QEMU did not exit cleanly"), "{message}");
    // A clean exit with nothing played is an empty recording, not an error.
    let silent = Wav::parse(&stereo(vec![], vec![]).to_bytes()).unwrap();
    assert_eq!(silent.frames(), 0);
    assert_eq!(silent.duration(), Duration::ZERO);
}

#[test]
fn a_truncated_file_is_named() {
    let bytes = stereo(sine(1000.0, 0.5, 0.0, 0, 480), vec![]).to_bytes();
    let message = error(&bytes[..1000]);
    assert!(
        message.contains("truncated: the data chunk holds 1920 bytes but the file only 956"),
        "{message}"
    );
    let message = error(&bytes[..30]);
    assert!(
        message.contains("truncated: the \"fmt \" chunk"),
        "{message}"
    );
}

/// Levels within 0.05 dB for amplitudes from full scale to −60 dBFS, at
/// frequencies on and off the bins, over 10 and 100 ms windows.
#[test]
fn tone_level_reads_a_sines_amplitude() {
    for freq in [440.0, 1000.0, 1234.5, 3000.0, 15_000.0] {
        for db in [0.0, -6.0, -20.0, -60.0] {
            let amplitude = from_db(db);
            let samples = sine(freq, amplitude, 0.3, 0, 9600);
            let s = signal(&samples);
            for (start, len) in [(0, 480), (1000, 4800)] {
                let got = s.tone_level_db(start, len, freq);
                // The synthesis scales by 32767, not 32768.
                let expected = db + to_db(32767.0 / 32768.0);
                let tolerance = if db < -50.0 { 0.2 } else { 0.05 };
                assert!(
                    (got - expected).abs() < tolerance,
                    "{freq} Hz at {db} dB over {len}: {got}"
                );
            }
        }
    }
    // Other tones stay out: 1 kHz at 0 dB under a 1.2 kHz measure over
    // 10 ms (two bins away) reads below −31 dB; 300 Hz, further off, far
    // below.
    let loud = sine(1000.0, 1.0, 0.0, 0, 4800);
    let s = signal(&loud);
    assert!(s.tone_level_db(0, 480, 1200.0) < -31.0);
    assert!(s.tone_level_db(0, 4800, 300.0) < -90.0);
    // Two tones, each measured on its own, within 0.05 dB.
    let mixed = add(
        &sine(1000.0, 0.5, 0.0, 0, 4800),
        &sine(300.0, 0.05, 1.0, 0, 4800),
    );
    let s = signal(&mixed);
    assert!((s.tone_level(0, 4800, 1000.0) / 0.5 - 1.0).abs() < 0.006);
    assert!((s.tone_level(0, 4800, 300.0) / 0.05 - 1.0).abs() < 0.006);
    assert_eq!(s.tone_level(4800, 480, 1000.0), 0.0, "past the end");
}

/// The frequency within 0.1 Hz and the level within 0.05 dB over 100 ms.
#[test]
fn dominant_tone_finds_the_loudest_sinusoid() {
    for (freq, db) in [
        (440.0, -12.0),
        (1234.5, -3.0),
        (97.0, -30.0),
        (17_500.0, -6.0),
    ] {
        let samples = add(
            &sine(freq, from_db(db), 0.7, 0, 4800),
            &sine(2500.0, from_db(db - 20.0), 0.0, 0, 4800),
        );
        let tone = signal(&samples).dominant_tone(0, 4800).unwrap();
        assert!((tone.freq_hz - freq).abs() < 0.1, "{freq}: {tone:?}");
        assert!((tone.level_db() - db).abs() < 0.05, "{freq}: {tone:?}");
    }
    let silence = vec![0; 4800];
    assert_eq!(signal(&silence).dominant_tone(0, 4800), None);
    assert_eq!(signal(&silence).dominant_tone(0, 8), None);
}

#[test]
fn first_sound_is_the_first_sample_over_the_threshold() {
    // A cosine starts at its peak: its first sample is the onset.
    let mut samples = sine(1000.0, 0.5, PI / 2.0, 12_345, 20_000);
    samples[100] = 50;
    samples[101] = -51;
    let s = signal(&samples);
    assert_eq!(
        s.first_sound(50, 0),
        Some(101),
        "−51 exceeds 50, 50 does not"
    );
    assert_eq!(s.first_sound(51, 0), Some(12_345));
    assert_eq!(s.first_sound(100, 12_346), Some(12_346));
    assert_eq!(s.first_sound(u16::MAX, 0), None);
    assert_eq!(s.first_sound(0, 30_000), None);
    let full = [i16::MIN];
    assert_eq!(signal(&full).first_sound(32_767, 0), Some(0));
}

/// A chime's onset under media: for abrupt starts at any phase (a zero
/// crossing included) and position, ±1 sample alone, ±3 with media 20 dB under
/// the chime (as ducking leaves it), ±8 with it only 6 dB under (the
/// chime's samples near a zero crossing are then lost under the media). A
/// faded-in tone is found half-way through its fade, within 2.5% of it.
#[test]
fn first_tone_finds_an_onset_to_the_sample() {
    let total = 48_000;
    let media_at = |level: f64| {
        add(
            &sine(300.0, level, 0.4, 0, total),
            &sine(2200.0, level / 2.0, 0.0, 0, total),
        )
    };
    for (media_level, tolerance) in [(0.0, 1), (0.03, 3), (0.15, 8)] {
        let media = media_at(media_level);
        for onset in [9_600, 20_001, 20_240, 33_333] {
            for phase in [0.0, 1.0, PI / 2.0, 4.0] {
                let chime = sine(1000.0, 0.3, phase, onset, total);
                let samples = add(&media, &chime);
                let s = signal(&samples);
                let found = s.first_tone(1000.0, 480, 0, 0.1).unwrap();
                assert!(
                    found.abs_diff(onset) <= tolerance,
                    "onset {onset} phase {phase} media {media_level}: {found}"
                );
                // From later on: it is already there.
                let from = onset + 1000;
                let later = s.first_tone(1000.0, 480, from, 0.1).unwrap();
                assert!(later.abs_diff(from) <= tolerance, "{from}: {later}");
            }
        }
    }

    // A lower tone, its own window-scale: 440 Hz over 20 ms windows.
    let media = media_at(0.03);
    let chime = sine(440.0, 0.3, 2.0, 15_555, total);
    let samples = add(&media, &chime);
    let found = signal(&samples).first_tone(440.0, 960, 0, 0.1).unwrap();
    assert!(found.abs_diff(15_555) <= 3, "{found}");

    let media = media_at(0.1);
    // Absent tones and too-high thresholds are not found.
    let s = signal(&media);
    assert_eq!(s.first_tone(1000.0, 480, 0, 0.01), None);
    assert_eq!(s.first_tone(300.0, 480, 0, 0.2), None);
    assert_eq!(s.first_tone(300.0, 480, 0, 0.05), Some(0));
    assert_eq!(s.first_tone(300.0, 0, 0, 0.05), None);
    assert_eq!(s.first_tone(300.0, 480, usize::MAX - 10, 0.05), None);

    // A 10 ms linear fade-in from 12_000: half-way is 12_240.
    let fade = 480;
    let mut chime = sine(1000.0, 0.3, 0.0, 12_000, total);
    for (i, sample) in chime[12_000..12_000 + fade].iter_mut().enumerate() {
        *sample = (*sample as f64 * i as f64 / fade as f64).round() as i16;
    }
    for media_level in [0.0, 0.03, 0.1] {
        let samples = add(&media_at(media_level), &chime);
        let found = signal(&samples).first_tone(1000.0, 480, 0, 0.1).unwrap();
        assert!(
            found.abs_diff(12_240) <= fade / 40,
            "{media_level}: {found}"
        );
    }
}

#[test]
fn rms_is_relative_to_full_scale() {
    let square: Vec<i16> = (0..4800)
        .map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX })
        .collect();
    assert!((signal(&square).rms_db(..) - to_db(32767.0 / 32768.0)).abs() < 1e-9);
    // A sine of amplitude A over whole cycles: A / √2, −3.01 dB below it.
    let samples = sine(1000.0, 0.5, 0.0, 0, 4800);
    let s = signal(&samples);
    assert!((s.rms(..) - 0.5 * 32767.0 / 32768.0 / 2f64.sqrt()).abs() < 1e-4);
    assert!((s.rms_db(480..960) - (to_db(0.5) - 3.0103)).abs() < 0.01);
    // Ranges are cut to the signal; silence is −∞.
    assert_eq!(s.rms(4800..9600), 0.0);
    assert_eq!(signal(&[0; 10]).rms_db(..), f64::NEG_INFINITY);
    assert_eq!(s.rms(..=479), s.rms(0..480));
}

#[test]
fn max_step_finds_a_click() {
    let mut samples = sine(1000.0, 0.5, 0.0, 0, 4800);
    let s = signal(&samples);
    // A sampled sine of amplitude A steps by at most 2A·sin(ω/2); 48
    // samples a cycle with the phase at 0 reach A·sin(ω) of it.
    let smooth = 0.5 * 32767.0 * (2.0 * PI * 1000.0 / RATE as f64).sin();
    assert!(
        (s.max_step(..) as f64 - smooth).abs() < 2.0,
        "{}",
        s.max_step(..)
    );
    samples[2000] = samples[2000].saturating_add(8000);
    let s = signal(&samples);
    // The click is a step up into sample 2000 and one down out of it.
    let (at, step) = s.max_step_at(..).unwrap();
    assert!(at == 2000 || at == 2001, "{at}");
    assert!(step as f64 > 8000.0 - smooth && step as f64 <= 8000.0 + smooth);
    assert_eq!(s.max_step(2001..), s.max_step(2001..4800));
    assert!((s.max_step(2001..) as f64) < 8000.0);
    assert_eq!(s.max_step(10..11), 0);
    assert_eq!(s.max_step_at(10..11), None);
    let extremes = [i16::MIN, i16::MAX];
    assert_eq!(signal(&extremes).max_step(..), 65_535);
}

#[test]
fn clipped_counts_full_scale_samples() {
    let samples = [0, 32_767, -32_768, 32_766, -32_767, 32_767];
    let s = signal(&samples);
    assert_eq!(s.clipped(..), 3);
    assert_eq!(s.clipped(2..5), 1);
    // A sine at +3.5 dB, saturated by the conversion: every sample whose
    // value would have been out of range.
    let amplitude = 1.5 * 32767.0;
    let values: Vec<f64> = (0..4800)
        .map(|i| (amplitude * (2.0 * PI * 100.0 * i as f64 / RATE as f64).sin()).round())
        .collect();
    let loud: Vec<i16> = values.iter().map(|&v| v as i16).collect();
    let over = values
        .iter()
        .filter(|&&v| !(-32767.0..32767.0).contains(&v))
        .count();
    assert!(over > 1000);
    assert_eq!(signal(&loud).clipped(..), over);
    assert_eq!(signal(&sine(100.0, 0.9, 0.0, 0, 4800)).clipped(..), 0);
}

#[test]
fn silent_gaps_are_runs_of_quiet() {
    let tone = sine(1000.0, 0.5, PI / 2.0, 0, 10_000);
    let mut samples = tone.clone();
    // Gaps of 100, 500 and 2000 samples (the middle one with noise under
    // the threshold), and silence at the end.
    samples[1000..1100].fill(0);
    for (i, sample) in samples[3000..3500].iter_mut().enumerate() {
        *sample = [3, -3, 0, 2][i % 4];
    }
    samples[5000..7000].fill(0);
    samples[9700..].fill(0);
    let s = signal(&samples);
    // The sine itself passes near zero: a run of at most a few samples.
    assert_eq!(
        s.silent_gaps(.., 3, 200),
        [3000..3500, 5000..7000, 9700..10_000]
    );
    assert_eq!(s.silent_gaps(.., 2, 200), [5000..7000, 9700..10_000]);
    assert_eq!(
        s.silent_gaps(..5500, 3, 100),
        [1000..1100, 3000..3500, 5000..5500]
    );
    assert_eq!(
        s.silent_gaps(1050..9800, 3, 50),
        [1050..1100, 3000..3500, 5000..7000, 9700..9800]
    );
    assert!(signal(&tone).silent_gaps(.., 3, 10).is_empty());
}
