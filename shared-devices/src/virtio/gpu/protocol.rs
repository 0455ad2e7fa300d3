//! The virtio-gpu wire format (VIRTIO 1.2 §5.7), 2D subset: command and
//! response codes, the request header, rectangles and pixel formats. All
//! fields are little endian; the requests are parsed from byte buffers
//! (never by reinterpreting guest memory). Rectangles and pixel formats
//! are the display mediator's ([`crate::display`]).

use crate::display::Rect;

/// Feature bits (§5.7.3).
pub mod features {
    /// 3D (virgl): not offered.
    pub const VIRGL: u64 = 1 << 0;
    /// GET_EDID.
    pub const EDID: u64 = 1 << 1;
    /// Not offered.
    pub const RESOURCE_UUID: u64 = 1 << 2;
    /// Not offered.
    pub const RESOURCE_BLOB: u64 = 1 << 3;
    /// Not offered.
    pub const CONTEXT_INIT: u64 = 1 << 4;
}

/// Command types (`enum virtio_gpu_ctrl_type`).
pub mod cmd {
    pub const GET_DISPLAY_INFO: u32 = 0x0100;
    pub const RESOURCE_CREATE_2D: u32 = 0x0101;
    pub const RESOURCE_UNREF: u32 = 0x0102;
    pub const SET_SCANOUT: u32 = 0x0103;
    pub const RESOURCE_FLUSH: u32 = 0x0104;
    pub const TRANSFER_TO_HOST_2D: u32 = 0x0105;
    pub const RESOURCE_ATTACH_BACKING: u32 = 0x0106;
    pub const RESOURCE_DETACH_BACKING: u32 = 0x0107;
    pub const GET_CAPSET_INFO: u32 = 0x0108;
    pub const GET_CAPSET: u32 = 0x0109;
    pub const GET_EDID: u32 = 0x010a;
    pub const RESOURCE_ASSIGN_UUID: u32 = 0x010b;
    pub const RESOURCE_CREATE_BLOB: u32 = 0x010c;
    pub const SET_SCANOUT_BLOB: u32 = 0x010d;
    /// First of the 3D commands (context, 3D resources, submit).
    pub const CTX_CREATE: u32 = 0x0200;
    pub const UPDATE_CURSOR: u32 = 0x0300;
    pub const MOVE_CURSOR: u32 = 0x0301;
}

/// Response types.
pub mod resp {
    pub const OK_NODATA: u32 = 0x1100;
    pub const OK_DISPLAY_INFO: u32 = 0x1101;
    pub const OK_CAPSET_INFO: u32 = 0x1102;
    pub const OK_CAPSET: u32 = 0x1103;
    pub const OK_EDID: u32 = 0x1104;
    pub const ERR_UNSPEC: u32 = 0x1200;
    pub const ERR_OUT_OF_MEMORY: u32 = 0x1201;
    pub const ERR_INVALID_SCANOUT_ID: u32 = 0x1202;
    pub const ERR_INVALID_RESOURCE_ID: u32 = 0x1203;
    pub const ERR_INVALID_CONTEXT_ID: u32 = 0x1204;
    pub const ERR_INVALID_PARAMETER: u32 = 0x1205;
}

/// `hdr.flags`: the driver wants the fence `fence_id` signalled by the
/// response.
pub const FLAG_FENCE: u32 = 1 << 0;
/// `hdr.flags`: `ring_idx` is meaningful (CONTEXT_INIT).
pub const FLAG_INFO_RING_IDX: u32 = 1 << 1;

/// `virtio_gpu_config.events_read`: the display configuration changed.
pub const EVENT_DISPLAY: u32 = 1 << 0;

/// Scanouts a device can have (`VIRTIO_GPU_MAX_SCANOUTS`).
pub const MAX_SCANOUTS: usize = 16;

/// Bytes of `struct virtio_gpu_ctrl_hdr`.
pub const HDR_BYTES: usize = 24;
/// Bytes of `struct virtio_gpu_mem_entry`.
pub const MEM_ENTRY_BYTES: usize = 16;
/// Bytes of `struct virtio_gpu_resp_display_info`: the header and 16
/// `virtio_gpu_display_one` (rect, enabled, flags).
pub const DISPLAY_INFO_BYTES: usize = HDR_BYTES + MAX_SCANOUTS * 24;
/// Bytes of the EDID blob in `struct virtio_gpu_resp_edid`.
pub const EDID_BLOB_BYTES: usize = 1024;
/// Bytes of `struct virtio_gpu_resp_edid`: header, size, padding, blob.
pub const EDID_RESP_BYTES: usize = HDR_BYTES + 8 + EDID_BLOB_BYTES;

/// Bytes of each request, header included (the structure of §5.7.6.7
/// and §5.7.6.10 named after the command).
pub const fn request_bytes(kind: u32) -> Option<usize> {
    Some(match kind {
        cmd::GET_DISPLAY_INFO => HDR_BYTES,
        // resource_id / scanout, padding
        cmd::GET_EDID | cmd::RESOURCE_UNREF | cmd::RESOURCE_DETACH_BACKING => HDR_BYTES + 8,
        // resource_id, nr_entries (the entries follow)
        cmd::RESOURCE_ATTACH_BACKING => HDR_BYTES + 8,
        // resource_id, format, width, height
        cmd::RESOURCE_CREATE_2D => HDR_BYTES + 16,
        // rect, scanout_id + resource_id / resource_id + padding
        cmd::SET_SCANOUT | cmd::RESOURCE_FLUSH => HDR_BYTES + 16 + 8,
        // rect, offset, resource_id, padding
        cmd::TRANSFER_TO_HOST_2D => HDR_BYTES + 16 + 8 + 8,
        // cursor_pos (4 x u32), resource_id, hot_x, hot_y, padding
        cmd::UPDATE_CURSOR | cmd::MOVE_CURSOR => HDR_BYTES + 16 + 16,
        _ => return None,
    })
}

/// The little-endian `u32` at `at` of `b` (0 where `b` is too short: the
/// callers check lengths first).
pub fn le32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

/// The little-endian `u64` at `at` of `b` (0 where `b` is too short).
pub fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

/// `struct virtio_gpu_ctrl_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtrlHdr {
    pub kind: u32,
    pub flags: u32,
    pub fence_id: u64,
    pub ctx_id: u32,
    pub ring_idx: u8,
}

impl CtrlHdr {
    /// The header at the start of `b` (at least [`HDR_BYTES`] long).
    pub fn parse(b: &[u8]) -> Self {
        Self {
            kind: le32(b, 0),
            flags: le32(b, 4),
            fence_id: le64(b, 8),
            ctx_id: le32(b, 16),
            ring_idx: b.get(20).copied().unwrap_or(0),
        }
    }

    /// The header of the response of type `kind` to this request: a
    /// fenced request gets a fenced response with the same fence id,
    /// context and (if the driver flagged it) ring index.
    pub fn response(&self, kind: u32) -> [u8; HDR_BYTES] {
        let mut b = [0u8; HDR_BYTES];
        b[0..4].copy_from_slice(&kind.to_le_bytes());
        if self.flags & FLAG_FENCE != 0 {
            let flags = FLAG_FENCE | (self.flags & FLAG_INFO_RING_IDX);
            b[4..8].copy_from_slice(&flags.to_le_bytes());
            b[8..16].copy_from_slice(&self.fence_id.to_le_bytes());
            b[16..20].copy_from_slice(&self.ctx_id.to_le_bytes());
            if flags & FLAG_INFO_RING_IDX != 0 {
                b[20] = self.ring_idx;
            }
        }
        b
    }
}

/// `struct virtio_gpu_rect` at `b[at..at + 16]` (x, y, width, height).
pub fn rect_at(b: &[u8], at: usize) -> Rect {
    Rect::new(
        le32(b, at),
        le32(b, at + 4),
        le32(b, at + 8),
        le32(b, at + 12),
    )
}

/// Does `r` lie entirely inside a `width` x `height` image? (Its far
/// edges are computed in 64 bits: no rectangle overflows.)
pub fn fits(r: &Rect, width: u32, height: u32) -> bool {
    Rect::new(0, 0, width, height).contains(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_on_the_wire() {
        let mut b = [0u8; 20];
        for (i, v) in [1u32, 2, 3, u32::MAX].iter().enumerate() {
            b[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        assert_eq!(rect_at(&b, 4), Rect::new(1, 2, 3, u32::MAX));
        assert!(!fits(&rect_at(&b, 4), 4, u32::MAX), "overflows in 32 bits");
        assert!(fits(&Rect::new(1, 2, 3, 4), 4, 6));
        assert!(!fits(&Rect::new(1, 2, 4, 4), 4, 6));
        assert!(!fits(&Rect::new(u32::MAX, 0, 1, 1), u32::MAX, 1));
        assert!(fits(&Rect::new(0, 0, u32::MAX, 1), u32::MAX, 1));
    }

    #[test]
    fn response_echoes_fences() {
        let mut req = [0u8; HDR_BYTES];
        req[0..4].copy_from_slice(&cmd::RESOURCE_FLUSH.to_le_bytes());
        req[4..8].copy_from_slice(&(FLAG_FENCE | FLAG_INFO_RING_IDX | 0x80).to_le_bytes());
        req[8..16].copy_from_slice(&0x1234_5678_9abc_def0u64.to_le_bytes());
        req[16..20].copy_from_slice(&7u32.to_le_bytes());
        req[20] = 3;
        let h = CtrlHdr::parse(&req);
        let r = h.response(resp::OK_NODATA);
        assert_eq!(le32(&r, 0), resp::OK_NODATA);
        assert_eq!(le32(&r, 4), FLAG_FENCE | FLAG_INFO_RING_IDX);
        assert_eq!(le64(&r, 8), 0x1234_5678_9abc_def0);
        assert_eq!(le32(&r, 16), 7);
        assert_eq!(r[20], 3);
        // No fence: nothing echoed.
        let h = CtrlHdr { flags: 0, ..h };
        assert_eq!(h.response(resp::ERR_UNSPEC)[4..], [0; 20]);
    }
}
