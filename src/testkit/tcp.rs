//! TCP conversations for tests and benches: handshake, data split into
//! segments in any order, and the close, as Ethernet frames built with
//! etherparse.

use super::ip_layer;
use etherparse::PacketBuilder;
use std::net::IpAddr;

/// TCP flags of one segment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

pub const SYN: Flags = Flags {
    syn: true,
    ack: false,
    fin: false,
    rst: false,
};
pub const SYN_ACK: Flags = Flags {
    syn: true,
    ack: true,
    fin: false,
    rst: false,
};
pub const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
};
pub const FIN_ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: true,
    rst: false,
};
pub const RST: Flags = Flags {
    syn: false,
    ack: false,
    fin: false,
    rst: true,
};

/// One Ethernet + IP + TCP frame with the given flags.
pub fn segment(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    f: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut b = ip_layer(eth, src, dst).tcp(sport, dport, seq, 64240);
    if f.syn {
        b = b.syn();
    }
    if f.ack {
        b = b.ack(1);
    }
    if f.fin {
        b = b.fin();
    }
    if f.rst {
        b = b.rst();
    }
    if !payload.is_empty() {
        b = b.psh();
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build packet");
    out
}

/// A client/server pair and their initial sequence numbers.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub client: IpAddr,
    pub cport: u16,
    pub server: IpAddr,
    pub sport: u16,
    pub client_isn: u32,
    pub server_isn: u32,
}

impl Conn {
    pub fn new(client: IpAddr, cport: u16, server: IpAddr, sport: u16) -> Conn {
        Conn {
            client,
            cport,
            server,
            sport,
            client_isn: 1_000,
            server_isn: 500_000,
        }
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&self) -> Vec<Vec<u8>> {
        vec![
            self.from_client(self.client_isn, SYN, b""),
            self.from_server(self.server_isn, SYN_ACK, b""),
            self.from_client(self.client_isn + 1, ACK, b""),
        ]
    }

    pub fn from_client(&self, seq: u32, f: Flags, payload: &[u8]) -> Vec<u8> {
        segment(
            self.client,
            self.server,
            self.cport,
            self.sport,
            seq,
            f,
            payload,
        )
    }

    pub fn from_server(&self, seq: u32, f: Flags, payload: &[u8]) -> Vec<u8> {
        segment(
            self.server,
            self.client,
            self.sport,
            self.cport,
            seq,
            f,
            payload,
        )
    }

    /// `data` sent by the client after the handshake, cut at `cuts` (byte
    /// offsets), the pieces in the order given by `order` (indexes).
    pub fn client_data(&self, data: &[u8], cuts: &[usize], order: &[usize]) -> Vec<Vec<u8>> {
        let pieces = split(data, cuts);
        order
            .iter()
            .map(|&i| {
                let (off, bytes) = pieces[i];
                self.from_client(self.client_isn + 1 + off as u32, ACK, bytes)
            })
            .collect()
    }

    /// `data` sent by the server, in order, cut at `cuts`.
    pub fn server_data(&self, data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        split(data, cuts)
            .into_iter()
            .map(|(off, bytes)| self.from_server(self.server_isn + 1 + off as u32, ACK, bytes))
            .collect()
    }

    /// FIN from both sides after `client_sent` and `server_sent` bytes.
    pub fn close(&self, client_sent: usize, server_sent: usize) -> Vec<Vec<u8>> {
        let c = self.client_isn + 1 + client_sent as u32;
        let s = self.server_isn + 1 + server_sent as u32;
        vec![
            self.from_client(c, FIN_ACK, b""),
            self.from_server(s, FIN_ACK, b""),
            self.from_client(c + 1, ACK, b""),
        ]
    }
}

/// Pieces of `data` cut at the given offsets, with their offsets.
fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<(usize, &'a [u8])> {
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < data.len()));
    bounds.push(data.len());
    bounds
        .windows(2)
        .map(|w| (w[0], &data[w[0]..w[1]]))
        .collect()
}
