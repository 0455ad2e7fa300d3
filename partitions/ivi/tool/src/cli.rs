//! Command-line parsing, by hand: the binary goes into the hypervisor image,
//! so it carries no argument-parsing crate.

use std::path::PathBuf;

use crate::play::{self, PlayOptions};

pub const USAGE: &str = "\
usage: ivi-tool check --cpus N --mem-mib M [--allow NODES]... [--report] [--root DIR]
       ivi-tool clock
       ivi-tool draw [--frames N] [--fps N] [--card PATH]
       ivi-tool play [--tones SPEC | --wav FILE] [--seconds N] [--device PATH]
                     [--rate HZ] [--channels N] [--amplitude A]
                     [--period-frames N] [--buffer-frames N]
       ivi-tool touch [--device PATH] [--name TEXT] [--contacts N]
       ivi-tool help

check   compares what this Linux sees with what the partition was given:
        the CPU count (/proc/cpuinfo and /sys/devices/system/cpu/online),
        MemTotal (/proc/meminfo; the kernel keeps some for itself) and the
        device tree's top-level nodes, of which only the partition's
        virtual machine (cpus, memory, intc, timer, psci, pl011, apb-pclk,
        chosen, aliases) and the NODES named with --allow may exist.
        NODES is a comma-separated list of node names; `name` and `name@*`
        allow every unit address.
        Prints `ivi-tool: check ok ...` or `ivi-tool: check FAILED: ...`
        and exits 1 on failure, unless --report is given.
        --root reads /proc and /sys below DIR instead of /.

clock   prints the virtual counter (CNTVCT_EL0) and its frequency, and the
        counter as milliseconds: `ivi-tool: clock <ticks> ticks at <hz> Hz
        = <ms> ms`. Under the hypervisor the counter runs from machine
        start, so this timestamps boot events against the hypervisor's.

draw    draws an animated navigation screen on every connected display of
        the DRM device PATH (default /dev/dri/card0) through KMS: the
        preferred mode, two dumb buffers, page flips (or SetCrtc and
        DirtyFB each frame where flips fail). The frame number's low 16
        bits are in the top left corner: 16 squares of 4x4 pixels, bit 0
        first, white for 1, black for 0. Prints `ivi-tool: draw: <connector>
        <w>x<h> crtc <id> (page flips|setcrtc)` per display, `ivi-tool: draw:
        frames=<n>` every 30 frames, `ivi-tool: draw: done after <n> frames`
        after --frames N (default: never stops), at most --fps N frames a
        second (default 30). Errors: `ivi-tool: draw: <what>: <error>`,
        exit code 1.

play    plays test audio through the ALSA PCM device PATH (default: the
        first playback device /proc/asound/pcm lists) with the kernel's
        PCM ioctls: interleaved S16_LE at HZ (default 48000) with N
        channels (default 2), periods of --period-frames (default 2048)
        and a buffer of --buffer-frames (default 4 periods), or the
        nearest sizes the device takes; it starts once the buffer is full.
        SPEC is a tone sequence HZ:MS[,HZ:MS]... (0 Hz: silence; default
        440:500,660:500,0:250,880:500), sines at A of full scale (default
        0.25), the phase continuous from tone to tone, the same sample on
        every channel. --wav plays a 16-bit PCM WAV file instead (its rate
        and channels). Once through, or repeated for N seconds; then at
        least 50 ms of silence before it drains. Prints
        `ivi-tool: play: <PATH> <hz> Hz <n> ch period <frames> buffer
        <frames>`, `ivi-tool: play: started`, `ivi-tool: play: second <s>
        frames=<n> underruns=<m>` each second of audio written,
        `ivi-tool: play: underrun` for each underrun (then it prepares the
        device again and plays on) and `ivi-tool: play: done frames=<n>
        underruns=<m>`. Errors: `ivi-tool: play: error: <what>: <error>`,
        exit code 1.

touch   prints the contacts of a multi-touch input device through evdev:
        PATH (default: the first /dev/input/event* whose device name
        contains TEXT, default \"touch panel\"), one line per change of
        each frame: `ivi-tool: touch: slot <s> down id <id> at <x>,<y>`,
        `... slot <s> id <id> at <x>,<y>`, `... slot <s> up id <id>`;
        after N contacts lifted (--contacts N; default never) it prints
        `ivi-tool: touch: done after <n> contacts` and exits.";

/// What to do.
#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Clock,
    Check(CheckOptions),
    Draw(DrawOptions),
    Play(PlayOptions),
    Touch(TouchOptions),
}

/// Limits of `play`'s numbers.
const MAX_SECONDS: u64 = 24 * 3600;
const RATES: std::ops::RangeInclusive<u64> = 1000..=768_000;
const MAX_CHANNELS: u64 = 64;
const MAX_FRAMES: u64 = 1 << 24;

#[derive(Debug, PartialEq, Eq)]
pub struct TouchOptions {
    pub device: Option<PathBuf>,
    pub name: String,
    pub contacts: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct CheckOptions {
    pub cpus: usize,
    pub mem_mib: u64,
    /// Extra top-level device-tree nodes the partition may see.
    pub allow: Vec<String>,
    /// Report a failed check without failing.
    pub report_only: bool,
    /// Where `/proc` and `/sys` are found (`/` on a running system).
    pub root: PathBuf,
}

/// How `draw` runs (`ivi-tool draw [--frames N] [--fps N] [--card PATH]`).
#[derive(Debug, PartialEq, Eq)]
pub struct DrawOptions {
    /// Stop after this many frames; `None`: never.
    pub frames: Option<u64>,
    /// At most this many frames a second.
    pub fps: u32,
    /// The DRM device.
    pub card: PathBuf,
}

impl Default for DrawOptions {
    fn default() -> Self {
        DrawOptions {
            frames: None,
            fps: 30,
            card: PathBuf::from("/dev/dri/card0"),
        }
    }
}

/// Frame rates `--fps` accepts.
const MAX_FPS: u64 = 1000;

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
{
    let mut args = args.into_iter();
    match args.next().as_deref() {
        None | Some("help" | "-h" | "--help") => Ok(Command::Help),
        Some("check") => parse_check(args).map(Command::Check),
        Some("clock") => Ok(Command::Clock),
        Some("draw") => parse_draw(args).map(Command::Draw),
        Some("play") => parse_play(args).map(Command::Play),
        Some("touch") => parse_touch(args).map(Command::Touch),
        Some(other) => Err(format!("unknown command `{other}`")),
    }
}

fn parse_check(mut args: impl Iterator<Item = String>) -> Result<CheckOptions, String> {
    let mut cpus = None;
    let mut mem_mib = None;
    let mut allow = Vec::new();
    let mut report_only = false;
    let mut root = PathBuf::from("/");
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => args.next().ok_or(format!("{name} needs a value")),
            }
        };
        match name.as_str() {
            "--cpus" => cpus = Some(number(&name, &value()?)?),
            "--mem-mib" => mem_mib = Some(number(&name, &value()?)?),
            "--allow" => allow.extend(
                value()?
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
            ),
            "--root" => root = PathBuf::from(value()?),
            "--report" if inline.is_none() => report_only = true,
            _ => return Err(format!("check: unexpected argument `{arg}`")),
        }
    }
    let cpus = cpus.ok_or("check: --cpus N is required")?;
    let mem_mib = mem_mib.ok_or("check: --mem-mib M is required")?;
    if cpus == 0 || mem_mib == 0 {
        return Err("check: --cpus and --mem-mib must be positive".to_string());
    }
    Ok(CheckOptions {
        cpus: usize::try_from(cpus).map_err(|_| "check: --cpus is too large".to_string())?,
        mem_mib,
        allow,
        report_only,
        root,
    })
}

fn parse_draw(mut args: impl Iterator<Item = String>) -> Result<DrawOptions, String> {
    let mut options = DrawOptions::default();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => args.next().ok_or(format!("draw: {name} needs a value")),
            }
        };
        match name.as_str() {
            "--frames" => match number(&name, &value()?)? {
                0 => return Err("draw: --frames must be positive".to_string()),
                n => options.frames = Some(n),
            },
            "--fps" => match number(&name, &value()?)? {
                n @ 1..=MAX_FPS => options.fps = n as u32,
                _ => return Err(format!("draw: --fps must be 1 to {MAX_FPS}")),
            },
            "--card" => options.card = PathBuf::from(value()?),
            _ => return Err(format!("draw: unexpected argument `{arg}`")),
        }
    }
    Ok(options)
}

fn parse_play(mut args: impl Iterator<Item = String>) -> Result<PlayOptions, String> {
    let mut options = PlayOptions::default();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => args.next().ok_or(format!("play: {name} needs a value")),
            }
        };
        let within = |name: &str, n: u64, min: u64, max: u64| -> Result<u32, String> {
            if (min..=max).contains(&n) {
                Ok(n as u32)
            } else {
                Err(format!("play: {name} must be {min} to {max}"))
            }
        };
        match name.as_str() {
            "--device" => options.device = Some(PathBuf::from(value()?)),
            "--tones" => {
                options.tones =
                    Some(play::parse_tones(&value()?).map_err(|e| format!("play: {e}"))?)
            }
            "--wav" => options.wav = Some(PathBuf::from(value()?)),
            "--seconds" => match play_number(&name, &value()?)? {
                n @ 1..=MAX_SECONDS => options.seconds = Some(n),
                _ => return Err(format!("play: --seconds must be 1 to {MAX_SECONDS}")),
            },
            "--rate" => {
                let n = play_number(&name, &value()?)?;
                options.rate = Some(within(&name, n, *RATES.start(), *RATES.end())?);
            }
            "--channels" => {
                let n = play_number(&name, &value()?)?;
                options.channels = Some(within(&name, n, 1, MAX_CHANNELS)?);
            }
            "--period-frames" => {
                let n = play_number(&name, &value()?)?;
                options.period_frames = Some(within(&name, n, 1, MAX_FRAMES)?);
            }
            "--buffer-frames" => {
                let n = play_number(&name, &value()?)?;
                options.buffer_frames = Some(within(&name, n, 1, MAX_FRAMES)?);
            }
            "--amplitude" => {
                let text = value()?;
                match text.parse::<f64>() {
                    Ok(a) if (0.0..=1.0).contains(&a) => options.amplitude = a,
                    _ => {
                        return Err(format!(
                            "play: --amplitude: `{text}` is not a number from 0 to 1"
                        ));
                    }
                }
            }
            _ => return Err(format!("play: unexpected argument `{arg}`")),
        }
    }
    if options.tones.is_some() && options.wav.is_some() {
        return Err("play: --tones and --wav exclude each other".to_string());
    }
    Ok(options)
}

fn parse_touch(mut args: impl Iterator<Item = String>) -> Result<TouchOptions, String> {
    let mut options = TouchOptions {
        device: None,
        name: "touch panel".to_string(),
        contacts: None,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => args.next().ok_or(format!("touch: {name} needs a value")),
            }
        };
        match name.as_str() {
            "--device" => options.device = Some(PathBuf::from(value()?)),
            "--name" => options.name = value()?,
            "--contacts" => options.contacts = Some(number(&name, &value()?)?),
            _ => return Err(format!("touch: unexpected argument `{arg}`")),
        }
    }
    Ok(options)
}

fn play_number(name: &str, text: &str) -> Result<u64, String> {
    number(name, text).map_err(|e| format!("play: {e}"))
}

fn number(name: &str, text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{name}: `{text}` is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::play::Tone;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn touch_options() {
        assert_eq!(
            parse(args("touch --contacts 3 --name=Shared")),
            Ok(Command::Touch(TouchOptions {
                device: None,
                name: "Shared".into(),
                contacts: Some(3),
            }))
        );
        assert!(parse(args("touch --bogus")).is_err());
    }

    #[test]
    fn check_with_every_option() {
        let parsed = parse(args(
            "check --cpus 2 --mem-mib=256 --allow watchdog,virtio_mmio@a000000 --allow=x --report --root /tmp/r",
        ))
        .unwrap();
        assert_eq!(
            parsed,
            Command::Check(CheckOptions {
                cpus: 2,
                mem_mib: 256,
                allow: vec!["watchdog".into(), "virtio_mmio@a000000".into(), "x".into()],
                report_only: true,
                root: PathBuf::from("/tmp/r"),
            })
        );
    }

    #[test]
    fn defaults_and_errors() {
        let Command::Check(opts) = parse(args("check --cpus 1 --mem-mib 64")).unwrap() else {
            panic!("not a check");
        };
        assert!(opts.allow.is_empty() && !opts.report_only);
        assert_eq!(opts.root, PathBuf::from("/"));

        assert_eq!(parse(args("clock")), Ok(Command::Clock));
        assert_eq!(parse(args("")), Ok(Command::Help));
        assert_eq!(parse(args("--help")), Ok(Command::Help));
        assert!(parse(args("heartbeat")).is_err());
        assert!(parse(args("check --mem-mib 64")).is_err());
        assert!(parse(args("check --cpus 1")).is_err());
        assert!(parse(args("check --cpus two --mem-mib 64")).is_err());
        assert!(parse(args("check --cpus 0 --mem-mib 64")).is_err());
        assert!(parse(args("check --cpus 1 --mem-mib 64 --bogus")).is_err());
        assert!(parse(args("check --cpus 1 --mem-mib 64 --report=yes")).is_err());
        assert!(parse(args("check --cpus 1 --mem-mib")).is_err());
    }

    #[test]
    fn play_options() {
        assert_eq!(
            parse(args("play")),
            Ok(Command::Play(PlayOptions::default()))
        );
        assert_eq!(PlayOptions::default().amplitude, 0.25);
        assert_eq!(
            parse(args(
                "play --device /dev/snd/pcmC1D0p --tones 440:500,0:250 --seconds=3 --rate 44100 \
                 --channels 1 --amplitude 0.5 --period-frames 441 --buffer-frames=1764"
            )),
            Ok(Command::Play(PlayOptions {
                device: Some(PathBuf::from("/dev/snd/pcmC1D0p")),
                tones: Some(vec![Tone { hz: 440, ms: 500 }, Tone { hz: 0, ms: 250 }]),
                wav: None,
                seconds: Some(3),
                rate: Some(44_100),
                channels: Some(1),
                amplitude: 0.5,
                period_frames: Some(441),
                buffer_frames: Some(1764),
            }))
        );
        assert_eq!(
            parse(args("play --wav /tmp/a.wav")),
            Ok(Command::Play(PlayOptions {
                wav: Some(PathBuf::from("/tmp/a.wav")),
                ..PlayOptions::default()
            }))
        );
        for (bad, says) in [
            ("play --tones", "needs a value"),
            ("play --tones 440", "`440` is not HZ:MS"),
            ("play --tones 440:x", "not a duration"),
            ("play --seconds 0", "--seconds must be"),
            ("play --seconds 86401", "--seconds must be"),
            ("play --rate 999", "--rate must be"),
            ("play --rate fast", "`fast` is not a number"),
            ("play --channels 0", "--channels must be"),
            ("play --period-frames 0", "--period-frames must be"),
            ("play --buffer-frames 99999999", "--buffer-frames must be"),
            ("play --amplitude 1.5", "--amplitude"),
            ("play --amplitude loud", "--amplitude"),
            ("play --tones 440:5 --wav a.wav", "exclude each other"),
            ("play --loud", "unexpected argument"),
            ("play 440:500", "unexpected argument"),
        ] {
            let e = parse(args(bad)).unwrap_err();
            assert!(e.starts_with("play: ") && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn draw_options() {
        assert_eq!(
            parse(args("draw")),
            Ok(Command::Draw(DrawOptions::default()))
        );
        assert_eq!(
            DrawOptions::default(),
            DrawOptions {
                frames: None,
                fps: 30,
                card: PathBuf::from("/dev/dri/card0"),
            }
        );
        assert_eq!(
            parse(args("draw --frames 90 --fps=60 --card /dev/dri/card1")),
            Ok(Command::Draw(DrawOptions {
                frames: Some(90),
                fps: 60,
                card: PathBuf::from("/dev/dri/card1"),
            }))
        );
        assert_eq!(
            parse(args("draw --frames=1 --fps 1000")),
            Ok(Command::Draw(DrawOptions {
                frames: Some(1),
                fps: 1000,
                ..DrawOptions::default()
            }))
        );
        for bad in [
            "draw --frames 0",
            "draw --frames",
            "draw --frames -1",
            "draw --frames ten",
            "draw --fps 0",
            "draw --fps 1001",
            "draw --fps 99999999999",
            "draw --card",
            "draw --forever",
            "draw 30",
        ] {
            assert!(parse(args(bad)).is_err(), "{bad}");
        }
    }
}
