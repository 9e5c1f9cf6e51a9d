//! Capture files written in memory: classic pcap and pcapng.

use std::path::Path;

/// Writes a classic pcap file (microsecond timestamps) in memory.
pub struct PcapWriter {
    pub bytes: Vec<u8>,
}

impl PcapWriter {
    /// `linktype`: 1 Ethernet, 101 raw IP, 113 Linux SLL, 276 SLL2.
    pub fn new(linktype: u32, snaplen: u32) -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&snaplen.to_le_bytes());
        bytes.extend_from_slice(&linktype.to_le_bytes());
        PcapWriter { bytes }
    }

    /// Add a frame; `orig_len` larger than `data` marks a snaplen cut.
    pub fn frame(&mut self, ts_us: u64, data: &[u8], orig_len: usize) -> &mut Self {
        self.bytes
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(orig_len.max(data.len()) as u32).to_le_bytes());
        self.bytes.extend_from_slice(data);
        self
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.bytes).expect("write test capture");
    }
}

/// Writes a pcapng file (one section, one interface, microsecond timestamps).
pub struct PcapNgWriter {
    pub bytes: Vec<u8>,
}

impl PcapNgWriter {
    pub fn new(linktype: u16) -> Self {
        PcapNgWriter::with_options(linktype, &[])
    }

    /// As [`PcapNgWriter::new`], the interface block carrying `options`
    /// (code, value), e.g. `if_tsoffset` (14) or `if_tsresol` (9).
    pub fn with_options(linktype: u16, options: &[(u16, Vec<u8>)]) -> Self {
        let mut w = PcapNgWriter { bytes: Vec::new() };
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        w.block(0x0a0d_0d0a, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        for (code, value) in options {
            idb.extend_from_slice(&code.to_le_bytes());
            idb.extend_from_slice(&(value.len() as u16).to_le_bytes());
            idb.extend_from_slice(value);
            idb.extend(std::iter::repeat_n(0, (4 - value.len() % 4) % 4));
        }
        if !options.is_empty() {
            idb.extend_from_slice(&[0; 4]);
        }
        w.block(1, &idb);
        w
    }

    fn block(&mut self, ty: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        self.bytes.extend_from_slice(&ty.to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(body);
        self.bytes.extend(std::iter::repeat_n(0, pad));
        self.bytes.extend_from_slice(&len.to_le_bytes());
    }

    pub fn frame(&mut self, ts_us: u64, data: &[u8], orig_len: usize) -> &mut Self {
        self.frame_on(0, ts_us, data, orig_len)
    }

    /// Declare one more interface (ids count from 0 in each section).
    pub fn interface(&mut self, linktype: u16, options: &[(u16, Vec<u8>)]) -> &mut Self {
        let first = PcapNgWriter::with_options(linktype, options);
        let shb_len = u32::from_le_bytes(first.bytes[4..8].try_into().expect("4 bytes")) as usize;
        self.bytes.extend_from_slice(&first.bytes[shb_len..]);
        self
    }

    /// A packet on interface `if_id`, `ts` in that interface's units.
    pub fn frame_on(&mut self, if_id: u32, ts: u64, data: &[u8], orig_len: usize) -> &mut Self {
        let mut epb = Vec::new();
        epb.extend_from_slice(&if_id.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(orig_len.max(data.len()) as u32).to_le_bytes());
        epb.extend_from_slice(data);
        self.block(6, &epb);
        self
    }
}
