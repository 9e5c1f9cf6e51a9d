//! Frames and messages built to order: Ethernet/IP/UDP/TCP frames (etherparse),
//! DNS queries and answers (hickory-proto), TLS ClientHello records.

use etherparse::PacketBuilder;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, Ipv4Addr};

/// An address written as text (`"10.1.0.5"`, `"fd00:1::5"`); a typo fails
/// the test.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn build_udp(b: etherparse::PacketBuilderStep<etherparse::UdpHeader>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build packet");
    out
}

fn build_tcp(b: etherparse::PacketBuilderStep<etherparse::TcpHeader>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build packet");
    out
}

pub(crate) fn ip_layer(
    eth: etherparse::PacketBuilderStep<etherparse::Ethernet2Header>,
    src: IpAddr,
    dst: IpAddr,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed address families"),
    }
}

/// Ethernet + IP + UDP frame, optionally VLAN-tagged.
pub fn udp_frame(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    vlan: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let ip = match vlan {
        Some(v) => {
            let tagged = eth.single_vlan(v.try_into().expect("vlan id"));
            match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => tagged.ipv4(s.octets(), d.octets(), 64),
                (IpAddr::V6(s), IpAddr::V6(d)) => tagged.ipv6(s.octets(), d.octets(), 64),
                _ => panic!("mixed address families"),
            }
        }
        None => ip_layer(eth, src, dst),
    };
    build_udp(ip.udp(sport, dport), payload)
}

/// Ethernet + IP + TCP (PSH|ACK) frame.
pub fn tcp_frame(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let ip = ip_layer(PacketBuilder::ethernet2(MAC_A, MAC_B), src, dst);
    build_tcp(ip.tcp(sport, dport, seq, 64240).psh().ack(1), payload)
}

/// A DNS query message for `name`, encoded by hickory-proto.
pub fn dns_query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    m.to_vec().expect("encode query")
}

/// A DNS response for `name` with a CNAME chain and then an A record.
pub fn dns_response(id: u16, name: &str, cnames: &[&str], a: Ipv4Addr) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    let mut owner = Name::from_ascii(name).expect("name");
    for c in cnames {
        let target = Name::from_ascii(c).expect("cname");
        m.add_answer(Record::from_rdata(
            owner.clone(),
            60,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(target.clone())),
        ));
        owner = target;
    }
    m.add_answer(Record::from_rdata(
        owner,
        60,
        RData::A(hickory_proto::rr::rdata::A(a)),
    ));
    m.to_vec().expect("encode response")
}

/// Build a TLS ClientHello record with the given extensions, following the
/// RFC 8446 section 4.1.2 layout.
pub fn client_hello_record(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
    body.extend_from_slice(&[1, 0]);
    let mut e = Vec::new();
    for (ty, data) in exts {
        e.extend_from_slice(&ty.to_be_bytes());
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
    }
    body.extend_from_slice(&(e.len() as u16).to_be_bytes());
    body.extend_from_slice(&e);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

pub fn sni_ext(name: &str) -> (u16, Vec<u8>) {
    let mut d = Vec::new();
    d.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    d.push(0);
    d.extend_from_slice(&(name.len() as u16).to_be_bytes());
    d.extend_from_slice(name.as_bytes());
    (0, d)
}
