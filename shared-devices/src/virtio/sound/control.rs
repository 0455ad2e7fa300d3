//! The controlq: what the device says about its jack, stream and channel
//! map (the QUERY_INFO requests), and the stream commands that drive the
//! lifecycle of [`super::stream`]. See [`super`] for the rules.

use super::protocol::{self, ChmapInfo, JackInfo, PcmInfo, QueryInfo, SetParams, code, status};
use super::stream::{self, Command};
use super::{
    CHAINS_PER_CALL, CHMAPS, CONTROL_QUEUE, Chain, JACKS, MAX_INFO_SIZE, STREAM_ID, STREAMS,
    VirtioSound, writable_in_ram,
};
use crate::virtio::device::DeviceContext;
use crate::virtio::memory::GuestMemory;

/// The jack: an internal speaker, always connected. HDA pin default
/// configuration (HDA 7.3.3.31): fixed function device (port
/// connectivity 2), internal (location 0x10), speaker (device 1), no
/// presence detection (misc bit 0), association 1, sequence 0; Linux
/// names it "Speaker" and reports it as a line out. Pin capabilities
/// (HDA 7.3.4.9): output capable.
const JACK_INFO: JackInfo = JackInfo {
    hda_fn_nid: 0,
    features: 0,
    hda_reg_defconf: (2 << 30) | (0x10 << 24) | (1 << 20) | (1 << 8) | (1 << 4),
    hda_reg_caps: 1 << 4,
    connected: true,
};

/// The stream.
const PCM_INFO: PcmInfo = PcmInfo {
    hda_fn_nid: 0,
    features: stream::SUPPORTED_FEATURES,
    formats: 1 << protocol::PCM_FMT_S16,
    rates: 1 << protocol::PCM_RATE_48000,
    direction: protocol::D_OUTPUT,
    channels_min: stream::CHANNELS_MIN,
    channels_max: stream::CHANNELS_MAX,
};

/// The channel map of the output direction: front left, front right.
const CHMAP_INFO: ChmapInfo = {
    let mut positions = [protocol::chmap::NONE; protocol::CHMAP_MAX_SIZE];
    positions[0] = protocol::chmap::FL;
    positions[1] = protocol::chmap::FR;
    ChmapInfo {
        hda_fn_nid: 0,
        direction: protocol::D_OUTPUT,
        channels: 2,
        positions,
    }
};

impl VirtioSound {
    /// Serves the controlq, after taking the txq's messages.
    pub(super) fn process_control(&mut self, ctx: &mut DeviceContext<'_>) {
        self.process_tx(ctx);
        let mut budget = CHAINS_PER_CALL;
        while let Some(bufs) = self.next_chain(CONTROL_QUEUE, &mut budget, ctx) {
            self.stats.control_requests += 1;
            let written = self.control(&bufs, ctx);
            if self.broken {
                return;
            }
            self.push(bufs.token(), written, ctx);
        }
    }

    /// Carries out one control request and writes its response: the
    /// bytes written.
    fn control(&mut self, bufs: &Chain, ctx: &mut DeviceContext<'_>) -> u32 {
        let mem = ctx.mem();
        // Nothing is done for a request that cannot be answered.
        if !writable_in_ram(bufs, mem, 0, protocol::HDR_BYTES) {
            self.stats.control_errors += 1;
            return 0;
        }
        let mut req = [0u8; protocol::SET_PARAMS_BYTES];
        let n = (bufs.readable_len() as usize).min(req.len());
        let status = if n < protocol::HDR_BYTES || bufs.read(mem, 0, &mut req[..n]).is_err() {
            status::BAD_MSG
        } else {
            match u32::from_le_bytes([req[0], req[1], req[2], req[3]]) {
                c @ (code::JACK_INFO | code::PCM_INFO | code::CHMAP_INFO) => {
                    match self.query_info(c, &req[..n], bufs, mem) {
                        Ok(payload) => {
                            return match self.respond(bufs, mem, status::OK) {
                                0 => 0,
                                n => n + payload,
                            };
                        }
                        Err(s) => s,
                    }
                }
                code::PCM_SET_PARAMS => self.command(Command::SetParams, &req[..n], ctx),
                code::PCM_PREPARE => self.command(Command::Prepare, &req[..n], ctx),
                code::PCM_RELEASE => self.command(Command::Release, &req[..n], ctx),
                code::PCM_START => self.command(Command::Start, &req[..n], ctx),
                code::PCM_STOP => self.command(Command::Stop, &req[..n], ctx),
                _ => status::NOT_SUPP,
            }
        };
        self.respond(bufs, ctx.mem(), status)
    }

    /// Writes the response header: 4 bytes written (the caller checked
    /// they are in RAM), or 0 if memory changed under the device.
    fn respond(&mut self, bufs: &Chain, mem: &dyn GuestMemory, status: u32) -> u32 {
        if status != status::OK {
            self.stats.control_errors += 1;
        }
        match bufs.write(mem, 0, &status.to_le_bytes()) {
            Ok(()) => protocol::HDR_BYTES as u32,
            Err(_) => 0,
        }
    }

    /// Writes the items a QUERY_INFO asks for after the header: the
    /// payload's length, or the status to answer.
    fn query_info(
        &self,
        code: u32,
        req: &[u8],
        bufs: &Chain,
        mem: &dyn GuestMemory,
    ) -> Result<u32, u32> {
        let req: &[u8; protocol::QUERY_INFO_BYTES] = req
            .get(..protocol::QUERY_INFO_BYTES)
            .and_then(|r| r.try_into().ok())
            .ok_or(status::BAD_MSG)?;
        let q = QueryInfo::from_bytes(req);
        let (total, item_bytes) = match code {
            code::JACK_INFO => (JACKS, protocol::JACK_INFO_BYTES),
            code::PCM_INFO => (STREAMS, protocol::PCM_INFO_BYTES),
            _ => (CHMAPS, protocol::CHMAP_INFO_BYTES),
        };
        let end = q.start_id.checked_add(q.count).ok_or(status::BAD_MSG)?;
        if end > total || q.size < item_bytes as u32 || q.size > MAX_INFO_SIZE {
            return Err(status::BAD_MSG);
        }
        // At most `total` items of at most MAX_INFO_SIZE bytes.
        let payload = q.count * q.size;
        let hdr = protocol::HDR_BYTES;
        if !writable_in_ram(bufs, mem, hdr, payload as usize) {
            return Err(status::BAD_MSG);
        }
        // One item of each kind, so every id asked for (0) gets the same.
        let mut item = [0u8; protocol::PCM_INFO_BYTES];
        let bytes: &[u8] = match code {
            code::JACK_INFO => {
                item[..protocol::JACK_INFO_BYTES].copy_from_slice(&JACK_INFO.to_bytes());
                &item[..protocol::JACK_INFO_BYTES]
            }
            code::PCM_INFO => {
                item = PCM_INFO.to_bytes();
                &item
            }
            _ => {
                item[..protocol::CHMAP_INFO_BYTES].copy_from_slice(&CHMAP_INFO.to_bytes());
                &item[..protocol::CHMAP_INFO_BYTES]
            }
        };
        let zeros = [0u8; 64];
        for i in 0..q.count {
            let at = hdr as u32 + i * q.size;
            bufs.write(mem, at, bytes).map_err(|_| status::BAD_MSG)?;
            let mut pad = at + bytes.len() as u32;
            let pad_end = at + q.size;
            while pad < pad_end {
                let k = (pad_end - pad).min(zeros.len() as u32);
                bufs.write(mem, pad, &zeros[..k as usize])
                    .map_err(|_| status::BAD_MSG)?;
                pad += k;
            }
        }
        Ok(payload)
    }

    /// A PCM stream command: the status to answer.
    fn command(&mut self, command: Command, req: &[u8], ctx: &mut DeviceContext<'_>) -> u32 {
        let need = match command {
            Command::SetParams => protocol::SET_PARAMS_BYTES,
            _ => protocol::PCM_HDR_BYTES,
        };
        if req.len() < need || u32::from_le_bytes([req[4], req[5], req[6], req[7]]) != STREAM_ID {
            return status::BAD_MSG;
        }
        let Some(next) = self.state.after(command) else {
            return status::BAD_MSG;
        };
        match command {
            Command::SetParams => {
                let Ok(req) = <&[u8; protocol::SET_PARAMS_BYTES]>::try_from(req) else {
                    return status::BAD_MSG;
                };
                let params = match self.limits.check(&SetParams::from_bytes(req)) {
                    Ok(p) => p,
                    Err(s) => return s,
                };
                if !self.fifo.is_empty() {
                    return status::BAD_MSG;
                }
                self.params = Some(params);
                self.period_pos = 0;
            }
            Command::Prepare => self.period_pos = 0,
            Command::Release => {
                while !self.fifo.is_empty() && !self.broken {
                    self.complete_head(true, ctx);
                }
                self.period_pos = 0;
            }
            Command::Start | Command::Stop => {}
        }
        // A new run (or a new position) starts a new underrun episode.
        self.starved = false;
        self.state = next;
        status::OK
    }
}
