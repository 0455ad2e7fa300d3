//! The PCM stream's command lifecycle (VIRTIO 1.2 §5.14.6.6.1) and the
//! checks on the parameters a driver sets, apart from any queue: pure
//! functions of the current state and the request.

use super::protocol::{PCM_FMT_S16, PCM_RATE_48000, SetParams, pcm_feature, status};

/// Where the stream is in its lifecycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StreamState {
    /// No parameters yet (after construction and after a reset): only
    /// SET_PARAMETERS is valid. The specification leaves the initial
    /// state open; every driver sets parameters first (ALSA's `hw_params`
    /// comes before `prepare`).
    #[default]
    Unset,
    /// SET_PARAMETERS done.
    ParamsSet,
    /// PREPARE done: I/O messages are taken (pre-buffering) but not
    /// played.
    Prepared,
    /// START done: the mixer plays the queued messages.
    Running,
    /// STOP done: queued messages wait, as in `Prepared`.
    Stopped,
    /// RELEASE done: every queued message was returned.
    Released,
}

/// A stream command (the PCM control requests that change the state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    SetParams,
    Prepare,
    Release,
    Start,
    Stop,
}

impl StreamState {
    /// The state `command` leads to, or None if the lifecycle does not
    /// allow it from here (the device then answers BAD_MSG and stays):
    /// set parameters → {set parameters, prepare}; prepare → {set
    /// parameters, prepare, start, release}; start → {stop}; stop →
    /// {start, release}; release → {set parameters, prepare}.
    pub fn after(self, command: Command) -> Option<StreamState> {
        use Command as C;
        use StreamState as S;
        let allowed = match self {
            S::Unset => matches!(command, C::SetParams),
            S::ParamsSet | S::Released => matches!(command, C::SetParams | C::Prepare),
            S::Prepared => matches!(command, C::SetParams | C::Prepare | C::Start | C::Release),
            S::Running => matches!(command, C::Stop),
            S::Stopped => matches!(command, C::Start | C::Release),
        };
        allowed.then_some(match command {
            C::SetParams => S::ParamsSet,
            C::Prepare => S::Prepared,
            C::Release => S::Released,
            C::Start => S::Running,
            C::Stop => S::Stopped,
        })
    }

    /// Whether the device takes I/O messages for the stream in this state
    /// (from PREPARE to RELEASE: the driver pre-buffers before START, and
    /// Linux keeps its messages queued across a pause).
    pub fn takes_io(self) -> bool {
        matches!(
            self,
            StreamState::Prepared | StreamState::Running | StreamState::Stopped
        )
    }
}

/// The parameters of the stream, as accepted: S16 at 48 kHz always, so
/// only what varies is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmParams {
    /// The driver's buffer, a whole number of periods; also the longest
    /// I/O message the device takes.
    pub buffer_bytes: u32,
    /// A whole number of frames; a PERIOD_ELAPSED event goes out each
    /// time this many bytes have been played.
    pub period_bytes: u32,
    /// `1 << pcm_feature::*` bits selected (a subset of
    /// [`SUPPORTED_FEATURES`]).
    pub features: u32,
    /// 1 (mono) or 2 (stereo, left then right).
    pub channels: u8,
}

impl PcmParams {
    /// Bytes of one frame: one S16 sample per channel.
    pub fn frame_bytes(&self) -> u32 {
        2 * u32::from(self.channels)
    }

    /// Whether the driver asked for underrun notifications.
    pub fn xrun_events(&self) -> bool {
        self.features & (1 << pcm_feature::EVT_XRUNS) != 0
    }
}

/// The stream features the device offers in PCM_INFO: underrun
/// notifications only (no shared memory, no polling).
pub const SUPPORTED_FEATURES: u32 = 1 << pcm_feature::EVT_XRUNS;

/// Channels the stream takes.
pub const CHANNELS_MIN: u8 = 1;
pub const CHANNELS_MAX: u8 = 2;

/// Bounds on the sizes a driver may set (SET_PARAMETERS beyond them is
/// answered NOT_SUPP). The defaults take what stock Linux asks for, with
/// room: its `virtio_snd` driver derives ALSA's limits from PCM_INFO
/// (`virtsnd_pcm_build_hw`, with its default module parameters) as
/// periods of 10 to 80 ms and a buffer of 160 ms rounded up to a page,
/// which for S16 at 48 kHz and 1 to 2 channels is `period_bytes` 960
/// (10 ms mono) to 15360 (80 ms stereo) and `buffer_bytes` at most
/// 32768 (30720 page-aligned with 4 KiB pages; 65536 with 64 KiB pages),
/// with 2 to 16 periods. `aplay` and the IVI tool take the shortest
/// period and the largest buffer ALSA allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoundLimits {
    /// Shortest period: 192 bytes (1 ms of stereo) by default, well
    /// below Linux's 960 so that a bare-metal chime player may use short
    /// periods; shorter ones would only multiply completions and
    /// PERIOD_ELAPSED events per mixer period.
    pub period_bytes_min: u32,
    /// Longest period: 32768 bytes by default (half the largest buffer,
    /// as Linux keeps at least two periods).
    pub period_bytes_max: u32,
    /// Largest buffer: 65536 bytes (341 ms of stereo) by default, enough
    /// for Linux with 64 KiB pages. It bounds how long one I/O message
    /// may be, not how much the device holds (the messages are played
    /// from guest memory, never copied).
    pub buffer_bytes_max: u32,
}

impl Default for SoundLimits {
    fn default() -> Self {
        Self {
            period_bytes_min: 192,
            period_bytes_max: 32768,
            buffer_bytes_max: 65536,
        }
    }
}

impl SoundLimits {
    /// Checks a SET_PARAMETERS request's values (its stream id and the
    /// lifecycle are the caller's business): the parameters to install,
    /// or the status to answer. Anything but S16, 48 kHz, 1 or 2 channels
    /// and a subset of [`SUPPORTED_FEATURES`] is NOT_SUPP; sizes the
    /// specification forbids (a period of 0 or of a partial frame, a
    /// buffer that is not a whole number of periods) are BAD_MSG; sizes
    /// beyond these limits are NOT_SUPP.
    pub fn check(&self, req: &SetParams) -> Result<PcmParams, u32> {
        if req.format != PCM_FMT_S16
            || req.rate != PCM_RATE_48000
            || !(CHANNELS_MIN..=CHANNELS_MAX).contains(&req.channels)
            || req.features & !SUPPORTED_FEATURES != 0
        {
            return Err(status::NOT_SUPP);
        }
        let params = PcmParams {
            buffer_bytes: req.buffer_bytes,
            period_bytes: req.period_bytes,
            features: req.features,
            channels: req.channels,
        };
        let period = req.period_bytes;
        if period == 0
            || !period.is_multiple_of(params.frame_bytes())
            || !req.buffer_bytes.is_multiple_of(period)
            || req.buffer_bytes == 0
        {
            return Err(status::BAD_MSG);
        }
        if period < self.period_bytes_min
            || period > self.period_bytes_max
            || req.buffer_bytes > self.buffer_bytes_max
        {
            return Err(status::NOT_SUPP);
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [StreamState; 6] = [
        StreamState::Unset,
        StreamState::ParamsSet,
        StreamState::Prepared,
        StreamState::Running,
        StreamState::Stopped,
        StreamState::Released,
    ];
    const COMMANDS: [Command; 5] = [
        Command::SetParams,
        Command::Prepare,
        Command::Release,
        Command::Start,
        Command::Stop,
    ];

    #[test]
    fn lifecycle_is_the_specifications() {
        use Command as C;
        use StreamState as S;
        let allowed: &[(S, &[C])] = &[
            (S::Unset, &[C::SetParams]),
            (S::ParamsSet, &[C::SetParams, C::Prepare]),
            (
                S::Prepared,
                &[C::SetParams, C::Prepare, C::Release, C::Start],
            ),
            (S::Running, &[C::Stop]),
            (S::Stopped, &[C::Release, C::Start]),
            (S::Released, &[C::SetParams, C::Prepare]),
        ];
        for &(from, ok) in allowed {
            for c in COMMANDS {
                let to = from.after(c);
                assert_eq!(to.is_some(), ok.contains(&c), "{from:?} {c:?}");
            }
        }
        // Each command leads to its own state, from wherever it is allowed.
        let target = [
            (C::SetParams, S::ParamsSet),
            (C::Prepare, S::Prepared),
            (C::Release, S::Released),
            (C::Start, S::Running),
            (C::Stop, S::Stopped),
        ];
        for s in ALL {
            for (c, to) in target {
                assert!(s.after(c).is_none_or(|t| t == to), "{s:?} {c:?}");
            }
        }
        let io: Vec<_> = ALL.into_iter().filter(|s| s.takes_io()).collect();
        assert_eq!(io, [S::Prepared, S::Running, S::Stopped]);
    }

    fn linux(channels: u8, period_bytes: u32, periods: u32) -> SetParams {
        SetParams {
            stream_id: 0,
            buffer_bytes: period_bytes * periods,
            period_bytes,
            features: SUPPORTED_FEATURES,
            channels,
            format: PCM_FMT_S16,
            rate: PCM_RATE_48000,
        }
    }

    #[test]
    fn limits_take_what_linux_asks_for() {
        let l = SoundLimits::default();
        // virtsnd_pcm_build_hw's limits for S16, 48 kHz, 1..=2 channels,
        // and the corners of ALSA's choices within them.
        for (ch, period, periods) in [
            (1, 960, 2),
            (2, 960, 16),
            (2, 15360, 2),
            (1, 15360, 2),
            (2, 8192, 4),
            (2, 16384, 2),
            (2, 4096, 16),
        ] {
            let req = linux(ch, period, periods);
            let p = l.check(&req).unwrap();
            assert_eq!(
                (p.buffer_bytes, p.period_bytes, p.channels),
                (req.buffer_bytes, period, ch)
            );
            assert!(p.xrun_events());
            let plain = SetParams { features: 0, ..req };
            assert!(!l.check(&plain).unwrap().xrun_events());
        }
        assert_eq!(linux(1, 960, 2).buffer_bytes, 1920);
    }

    #[test]
    fn parameters_other_than_s16_48k_stereo_or_mono_are_not_supported() {
        let l = SoundLimits::default();
        let ok = linux(2, 960, 4);
        let not_supp = Err(status::NOT_SUPP);
        for f in (0..=255u8).filter(|f| *f != PCM_FMT_S16) {
            assert_eq!(l.check(&SetParams { format: f, ..ok }), not_supp);
        }
        for r in (0..=255u8).filter(|r| *r != PCM_RATE_48000) {
            assert_eq!(l.check(&SetParams { rate: r, ..ok }), not_supp);
        }
        for c in [0, 3, 4, 8, 18, 255] {
            assert_eq!(l.check(&SetParams { channels: c, ..ok }), not_supp);
        }
        for bit in (0..32).filter(|b| *b != pcm_feature::EVT_XRUNS) {
            let features = 1 << bit;
            assert_eq!(l.check(&SetParams { features, ..ok }), not_supp);
        }
        // Sizes the specification forbids: malformed.
        let bad = Err(status::BAD_MSG);
        for (buffer_bytes, period_bytes) in [(0, 0), (1920, 0), (0, 960), (1922, 962), (2000, 960)]
        {
            let req = SetParams {
                buffer_bytes,
                period_bytes,
                ..ok
            };
            assert_eq!(l.check(&req), bad, "{buffer_bytes}/{period_bytes}");
        }
        // A mono frame is 2 bytes, a stereo one 4.
        let odd = SetParams {
            buffer_bytes: 1932,
            period_bytes: 966,
            channels: 1,
            ..ok
        };
        assert!(l.check(&odd).is_ok());
        assert_eq!(l.check(&SetParams { channels: 2, ..odd }), bad);
        // Beyond the limits: not supported.
        for (buffer_bytes, period_bytes) in [(376, 188), (65536 * 2, 65536), (69632, 4096)] {
            let req = SetParams {
                buffer_bytes,
                period_bytes,
                ..ok
            };
            assert_eq!(l.check(&req), not_supp, "{buffer_bytes}/{period_bytes}");
        }
        let exact = SetParams {
            buffer_bytes: 65536,
            period_bytes: 32768,
            ..ok
        };
        assert!(l.check(&exact).is_ok());
        let tight = SoundLimits {
            period_bytes_min: 1920,
            period_bytes_max: 1920,
            buffer_bytes_max: 3840,
        };
        assert_eq!(tight.check(&ok), not_supp);
        assert!(tight.check(&linux(2, 1920, 2)).is_ok());
        assert_eq!(tight.check(&linux(2, 1920, 3)), not_supp);
    }
}
