//! The virtio-snd wire format (VIRTIO 1.2 §5.14): request, status and
//! event codes, the stream parameter encodings, and the structures the
//! device reads from and writes to its queues. All fields are little
//! endian. Both directions are here (encode and decode), so that a driver
//! written for a bare-metal partition can share them.

/// Request codes (`VIRTIO_SND_R_*`), the `code` of a control request.
pub mod code {
    pub const JACK_INFO: u32 = 1;
    pub const JACK_REMAP: u32 = 2;
    pub const PCM_INFO: u32 = 0x0100;
    pub const PCM_SET_PARAMS: u32 = 0x0101;
    pub const PCM_PREPARE: u32 = 0x0102;
    pub const PCM_RELEASE: u32 = 0x0103;
    pub const PCM_START: u32 = 0x0104;
    pub const PCM_STOP: u32 = 0x0105;
    pub const CHMAP_INFO: u32 = 0x0200;
    /// First of the control element requests (`VIRTIO_SND_R_CTL_*`,
    /// `0x0300..=0x0306`), which need VIRTIO_SND_F_CTLS.
    pub const CTL_INFO: u32 = 0x0300;
}

/// Status codes (`VIRTIO_SND_S_*`), of a control response and of an I/O
/// message's `virtio_snd_pcm_status`.
pub mod status {
    pub const OK: u32 = 0x8000;
    /// A malformed control request, or invalid parameters.
    pub const BAD_MSG: u32 = 0x8001;
    /// An operation or parameters the device does not support.
    pub const NOT_SUPP: u32 = 0x8002;
    /// An I/O error: the only failure status an I/O message may carry
    /// ("PCM I/O Messages").
    pub const IO_ERR: u32 = 0x8003;
}

/// Event codes (`VIRTIO_SND_EVT_*`), the `hdr.code` of a `virtio_snd_event`.
pub mod event {
    pub const JACK_CONNECTED: u32 = 0x1000;
    pub const JACK_DISCONNECTED: u32 = 0x1001;
    /// A period (`period_bytes` of the stream) has been consumed.
    pub const PCM_PERIOD_ELAPSED: u32 = 0x1100;
    /// The output stream ran short of frames (an underrun).
    pub const PCM_XRUN: u32 = 0x1101;
}

/// Data flow directions (`VIRTIO_SND_D_*`).
pub const D_OUTPUT: u8 = 0;
pub const D_INPUT: u8 = 1;

/// PCM stream feature bit numbers (`VIRTIO_SND_PCM_F_*`): a stream's
/// `features` field holds `1 << bit`.
pub mod pcm_feature {
    pub const SHMEM_HOST: u32 = 0;
    pub const SHMEM_GUEST: u32 = 1;
    pub const MSG_POLLING: u32 = 2;
    pub const EVT_SHMEM_PERIODS: u32 = 3;
    /// Underrun/overrun notifications (`VIRTIO_SND_EVT_PCM_XRUN`).
    pub const EVT_XRUNS: u32 = 4;
}

/// Sample format `VIRTIO_SND_PCM_FMT_S16`: signed 16 bits, little endian
/// (bit number in `formats`, value in `format`).
pub const PCM_FMT_S16: u8 = 5;
/// Frame rate `VIRTIO_SND_PCM_RATE_48000` (bit number in `rates`, value
/// in `rate`).
pub const PCM_RATE_48000: u8 = 7;

/// Channel positions (`VIRTIO_SND_CHMAP_*`), the first few.
pub mod chmap {
    pub const NONE: u8 = 0;
    pub const NA: u8 = 1;
    pub const MONO: u8 = 2;
    pub const FL: u8 = 3;
    pub const FR: u8 = 4;
}

/// Positions a channel map holds (`VIRTIO_SND_CHMAP_MAX_SIZE`).
pub const CHMAP_MAX_SIZE: usize = 18;

/// Configuration space layout (`struct virtio_snd_config`, without the
/// `controls` field, which exists only with VIRTIO_SND_F_CTLS): three
/// read-only `le32` counts.
pub mod config {
    pub const JACKS: usize = 0;
    pub const STREAMS: usize = 4;
    pub const CHMAPS: usize = 8;
    /// Bytes of configuration space.
    pub const BYTES: usize = 12;
}

/// Bytes of `struct virtio_snd_hdr` (a response, or a request's code).
pub const HDR_BYTES: usize = 4;
/// Bytes of `struct virtio_snd_pcm_hdr` (code and stream id).
pub const PCM_HDR_BYTES: usize = 8;
/// Bytes of `struct virtio_snd_query_info`.
pub const QUERY_INFO_BYTES: usize = 16;
/// Bytes of `struct virtio_snd_jack_info`.
pub const JACK_INFO_BYTES: usize = 24;
/// Bytes of `struct virtio_snd_pcm_info`.
pub const PCM_INFO_BYTES: usize = 32;
/// Bytes of `struct virtio_snd_chmap_info`.
pub const CHMAP_INFO_BYTES: usize = 24;
/// Bytes of `struct virtio_snd_pcm_set_params`.
pub const SET_PARAMS_BYTES: usize = 24;
/// Bytes of `struct virtio_snd_pcm_xfer` (the stream id an I/O message
/// starts with).
pub const XFER_BYTES: usize = 4;
/// Bytes of `struct virtio_snd_pcm_status` (the last device-writable bytes
/// of an I/O message).
pub const PCM_STATUS_BYTES: usize = 8;
/// Bytes of `struct virtio_snd_event`.
pub const EVENT_BYTES: usize = 8;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | u64::from(le32(b, at + 4)) << 32
}

/// `struct virtio_snd_query_info`: the request of JACK_INFO, PCM_INFO and
/// CHMAP_INFO, for items `start_id..start_id + count`, each written as
/// `size` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryInfo {
    pub code: u32,
    pub start_id: u32,
    pub count: u32,
    pub size: u32,
}

impl QueryInfo {
    pub fn to_bytes(self) -> [u8; QUERY_INFO_BYTES] {
        let mut b = [0u8; QUERY_INFO_BYTES];
        b[0..4].copy_from_slice(&self.code.to_le_bytes());
        b[4..8].copy_from_slice(&self.start_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; QUERY_INFO_BYTES]) -> Self {
        Self {
            code: le32(b, 0),
            start_id: le32(b, 4),
            count: le32(b, 8),
            size: le32(b, 12),
        }
    }
}

/// `struct virtio_snd_pcm_set_params` (its code is PCM_SET_PARAMS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetParams {
    pub stream_id: u32,
    pub buffer_bytes: u32,
    pub period_bytes: u32,
    /// `1 << pcm_feature::*` bits.
    pub features: u32,
    pub channels: u8,
    /// A `VIRTIO_SND_PCM_FMT_*` value.
    pub format: u8,
    /// A `VIRTIO_SND_PCM_RATE_*` value.
    pub rate: u8,
}

impl SetParams {
    pub fn to_bytes(self) -> [u8; SET_PARAMS_BYTES] {
        let mut b = [0u8; SET_PARAMS_BYTES];
        b[0..4].copy_from_slice(&code::PCM_SET_PARAMS.to_le_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.buffer_bytes.to_le_bytes());
        b[12..16].copy_from_slice(&self.period_bytes.to_le_bytes());
        b[16..20].copy_from_slice(&self.features.to_le_bytes());
        b[20] = self.channels;
        b[21] = self.format;
        b[22] = self.rate;
        b
    }

    /// The fields after the code (which the caller has looked at); the
    /// padding byte is ignored.
    pub fn from_bytes(b: &[u8; SET_PARAMS_BYTES]) -> Self {
        Self {
            stream_id: le32(b, 4),
            buffer_bytes: le32(b, 8),
            period_bytes: le32(b, 12),
            features: le32(b, 16),
            channels: b[20],
            format: b[21],
            rate: b[22],
        }
    }
}

/// `struct virtio_snd_jack_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JackInfo {
    pub hda_fn_nid: u32,
    /// `1 << VIRTIO_SND_JACK_F_*` bits (only REMAP, bit 0, is defined).
    pub features: u32,
    /// HDA pin default configuration (HDA 7.3.3.31).
    pub hda_reg_defconf: u32,
    /// HDA pin capabilities (HDA 7.3.4.9).
    pub hda_reg_caps: u32,
    pub connected: bool,
}

impl JackInfo {
    pub fn to_bytes(self) -> [u8; JACK_INFO_BYTES] {
        let mut b = [0u8; JACK_INFO_BYTES];
        b[0..4].copy_from_slice(&self.hda_fn_nid.to_le_bytes());
        b[4..8].copy_from_slice(&self.features.to_le_bytes());
        b[8..12].copy_from_slice(&self.hda_reg_defconf.to_le_bytes());
        b[12..16].copy_from_slice(&self.hda_reg_caps.to_le_bytes());
        b[16] = u8::from(self.connected);
        b
    }

    pub fn from_bytes(b: &[u8; JACK_INFO_BYTES]) -> Self {
        Self {
            hda_fn_nid: le32(b, 0),
            features: le32(b, 4),
            hda_reg_defconf: le32(b, 8),
            hda_reg_caps: le32(b, 12),
            connected: b[16] != 0,
        }
    }
}

/// `struct virtio_snd_pcm_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcmInfo {
    pub hda_fn_nid: u32,
    /// `1 << pcm_feature::*` bits the driver may select.
    pub features: u32,
    /// `1 << VIRTIO_SND_PCM_FMT_*` bits.
    pub formats: u64,
    /// `1 << VIRTIO_SND_PCM_RATE_*` bits.
    pub rates: u64,
    pub direction: u8,
    pub channels_min: u8,
    pub channels_max: u8,
}

impl PcmInfo {
    pub fn to_bytes(self) -> [u8; PCM_INFO_BYTES] {
        let mut b = [0u8; PCM_INFO_BYTES];
        b[0..4].copy_from_slice(&self.hda_fn_nid.to_le_bytes());
        b[4..8].copy_from_slice(&self.features.to_le_bytes());
        b[8..16].copy_from_slice(&self.formats.to_le_bytes());
        b[16..24].copy_from_slice(&self.rates.to_le_bytes());
        b[24] = self.direction;
        b[25] = self.channels_min;
        b[26] = self.channels_max;
        b
    }

    pub fn from_bytes(b: &[u8; PCM_INFO_BYTES]) -> Self {
        Self {
            hda_fn_nid: le32(b, 0),
            features: le32(b, 4),
            formats: le64(b, 8),
            rates: le64(b, 16),
            direction: b[24],
            channels_min: b[25],
            channels_max: b[26],
        }
    }
}

/// `struct virtio_snd_chmap_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChmapInfo {
    pub hda_fn_nid: u32,
    pub direction: u8,
    /// Valid entries of `positions`.
    pub channels: u8,
    /// `VIRTIO_SND_CHMAP_*` values.
    pub positions: [u8; CHMAP_MAX_SIZE],
}

impl ChmapInfo {
    pub fn to_bytes(self) -> [u8; CHMAP_INFO_BYTES] {
        let mut b = [0u8; CHMAP_INFO_BYTES];
        b[0..4].copy_from_slice(&self.hda_fn_nid.to_le_bytes());
        b[4] = self.direction;
        b[5] = self.channels;
        b[6..].copy_from_slice(&self.positions);
        b
    }

    pub fn from_bytes(b: &[u8; CHMAP_INFO_BYTES]) -> Self {
        let mut positions = [0u8; CHMAP_MAX_SIZE];
        positions.copy_from_slice(&b[6..]);
        Self {
            hda_fn_nid: le32(b, 0),
            direction: b[4],
            channels: b[5],
            positions,
        }
    }
}

/// `struct virtio_snd_event`: an event code and its data (for PCM events,
/// the stream id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub code: u32,
    pub data: u32,
}

impl Event {
    pub fn to_bytes(self) -> [u8; EVENT_BYTES] {
        let mut b = [0u8; EVENT_BYTES];
        b[0..4].copy_from_slice(&self.code.to_le_bytes());
        b[4..8].copy_from_slice(&self.data.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; EVENT_BYTES]) -> Self {
        Self {
            code: le32(b, 0),
            data: le32(b, 4),
        }
    }
}

/// `struct virtio_snd_pcm_status`: how an I/O message ended, and the
/// device's latency then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcmStatus {
    /// [`status::OK`] or [`status::IO_ERR`].
    pub status: u32,
    pub latency_bytes: u32,
}

impl PcmStatus {
    pub fn to_bytes(self) -> [u8; PCM_STATUS_BYTES] {
        let mut b = [0u8; PCM_STATUS_BYTES];
        b[0..4].copy_from_slice(&self.status.to_le_bytes());
        b[4..8].copy_from_slice(&self.latency_bytes.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; PCM_STATUS_BYTES]) -> Self {
        Self {
            status: le32(b, 0),
            latency_bytes: le32(b, 4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_round_trip_little_endian() {
        let q = QueryInfo {
            code: code::PCM_INFO,
            start_id: 1,
            count: 2,
            size: 0x0304_0506,
        };
        assert_eq!(
            q.to_bytes(),
            [0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 6, 5, 4, 3]
        );
        assert_eq!(QueryInfo::from_bytes(&q.to_bytes()), q);
        let p = SetParams {
            stream_id: 0,
            buffer_bytes: 32768,
            period_bytes: 960,
            features: 1 << pcm_feature::EVT_XRUNS,
            channels: 2,
            format: PCM_FMT_S16,
            rate: PCM_RATE_48000,
        };
        let b = p.to_bytes();
        assert_eq!(&b[..12], &[1, 1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0]);
        assert_eq!(&b[20..], &[2, 5, 7, 0]);
        assert_eq!(SetParams::from_bytes(&b), p);
        let pcm = PcmInfo {
            hda_fn_nid: 7,
            features: 0x10,
            formats: 1 << 5,
            rates: 1 << 7,
            direction: D_OUTPUT,
            channels_min: 1,
            channels_max: 2,
        };
        let b = pcm.to_bytes();
        assert_eq!(&b[8..16], &[0x20, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..24], &[0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[24..], &[0, 1, 2, 0, 0, 0, 0, 0]);
        assert_eq!(PcmInfo::from_bytes(&b), pcm);
        let jack = JackInfo {
            hda_fn_nid: 0,
            features: 0,
            hda_reg_defconf: 0x9010_0010,
            hda_reg_caps: 0x14,
            connected: true,
        };
        let b = jack.to_bytes();
        assert_eq!(&b[16..], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(JackInfo::from_bytes(&b), jack);
        let mut positions = [0; CHMAP_MAX_SIZE];
        positions[..2].copy_from_slice(&[chmap::FL, chmap::FR]);
        let map = ChmapInfo {
            hda_fn_nid: 0,
            direction: D_OUTPUT,
            channels: 2,
            positions,
        };
        let b = map.to_bytes();
        assert_eq!(&b[4..9], &[0, 2, 3, 4, 0]);
        assert_eq!(ChmapInfo::from_bytes(&b), map);
        let e = Event {
            code: event::PCM_XRUN,
            data: 0,
        };
        assert_eq!(e.to_bytes(), [0x01, 0x11, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Event::from_bytes(&e.to_bytes()), e);
        let s = PcmStatus {
            status: status::IO_ERR,
            latency_bytes: 1920,
        };
        assert_eq!(s.to_bytes(), [3, 0x80, 0, 0, 0x80, 7, 0, 0]);
        assert_eq!(PcmStatus::from_bytes(&s.to_bytes()), s);
    }
}
