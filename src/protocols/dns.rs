//! DNS messages on UDP/53 and TCP/53, parsed with hickory-proto.
//!
//! Sections are read one record at a time rather than with
//! `Message::from_vec`, so a message whose answers are cut by the snaplen or
//! mangled still yields its question: the question is what identifies an
//! infected host. hickory-proto bounds compression-pointer chains and checks
//! every length, so hostile input ends in a counted error, not a panic.

use crate::packet::{Problems, Reason};
use crate::protocols::name::NameBuf;
use hickory_proto::op::{Header, MessageType, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::IpAddr;

/// Standard DNS port; both UDP and TCP use it.
pub const PORT: u16 = 53;
/// Multicast DNS (RFC 6762) and LLMNR (RFC 4795) share the DNS message
/// format; their names are local, but they show which host is which.
pub const MDNS_PORT: u16 = 5353;
pub const LLMNR_PORT: u16 = 5355;

/// Whether a UDP port pair carries DNS-format messages.
#[inline]
pub fn is_dns_udp(sp: u16, dp: u16) -> bool {
    matches!(sp, PORT | MDNS_PORT | LLMNR_PORT) || matches!(dp, PORT | MDNS_PORT | LLMNR_PORT)
}

/// One answer record we care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An A or AAAA record with its TTL in seconds.
    A(IpAddr, u32),
    Cname(Name),
}

/// The parts of a DNS message that matching and logging need.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    /// Response code (low 4 bits of the header; extended codes need EDNS).
    pub rcode: u16,
    pub queries: Vec<Query>,
    /// Owner name and data of each A, AAAA and CNAME answer.
    pub answers: Vec<(Name, Answer)>,
}

impl Message {
    pub fn rcode_str(&self) -> &'static str {
        match self.rcode {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            _ => "OTHER",
        }
    }
}

/// Parse one DNS message. `None` (with a counted reason) when not even the
/// header and first question could be read.
pub fn parse(bytes: &[u8], problems: &mut Problems) -> Option<Message> {
    let mut d = BinDecoder::new(bytes);
    let header = match Header::read(&mut d) {
        Ok(h) => h,
        Err(_) => {
            problems.count(Reason::DnsMalformed);
            return None;
        }
    };
    let mut msg = Message {
        id: header.metadata.id,
        response: header.metadata.message_type == MessageType::Response,
        rcode: u16::from(header.metadata.response_code),
        queries: Vec::with_capacity(usize::from(header.counts.queries.min(4))),
        answers: Vec::new(),
    };
    for _ in 0..header.counts.queries {
        match Query::read(&mut d) {
            Ok(q) => msg.queries.push(q),
            Err(_) => {
                if msg.queries.is_empty() {
                    problems.count(Reason::DnsMalformed);
                    return None;
                }
                problems.count(Reason::DnsAnswersMalformed);
                return Some(msg);
            }
        }
    }
    for _ in 0..header.counts.answers {
        let rec = match Record::<RData>::read(&mut d) {
            Ok(r) => r,
            Err(_) => {
                problems.count(Reason::DnsAnswersMalformed);
                break;
            }
        };
        let ans = match &rec.data {
            RData::A(a) => Answer::A(IpAddr::V4(a.0), rec.ttl),
            RData::AAAA(a) => Answer::A(IpAddr::V6(a.0), rec.ttl),
            RData::CNAME(c) => Answer::Cname(c.0.clone()),
            _ => continue,
        };
        msg.answers.push((rec.name, ans));
    }
    Some(msg)
}

/// Write `name` normalised (lower case, no trailing dot) into `buf`.
pub fn name_into(name: &Name, buf: &mut NameBuf) {
    buf.clear();
    for label in name.iter() {
        if !buf.push_label(label) {
            break;
        }
    }
}

/// Split a DNS-over-TCP segment into its length-prefixed messages and parse
/// each. A message that does not end inside this segment is counted as
/// [`Reason::DnsTcpPartial`] (segment reassembly comes with the flow table).
pub fn parse_tcp(
    payload: &[u8],
    problems: &mut Problems,
    mut each: impl FnMut(Message, &mut Problems),
) {
    let mut rest = payload;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if len == 0 || rest.len() < 2 + len {
            problems.count(Reason::DnsTcpPartial);
            return;
        }
        if let Some(m) = parse(&rest[2..2 + len], problems) {
            each(m, problems);
        }
        rest = &rest[2 + len..];
    }
    if !rest.is_empty() {
        problems.count(Reason::DnsTcpPartial);
    }
}

/// Record type as its mnemonic ("A", "AAAA", ...), for logs.
pub fn rrtype_str(t: RecordType) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `www.Example.com` type A, id 0x1234, built by hand from
    /// RFC 1035 section 4.1 so the test does not depend on an encoder.
    fn query() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["www", "Example", "com"] {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    fn response_with(answer: &[u8]) -> Vec<u8> {
        let mut m = query();
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 1;
        m.extend_from_slice(answer);
        m
    }

    #[test]
    fn query_name_is_normalised() {
        let mut st = Problems::default();
        let m = parse(&query(), &mut st).unwrap();
        assert!(!m.response);
        assert_eq!(m.id, 0x1234);
        let mut b = NameBuf::default();
        name_into(m.queries[0].name(), &mut b);
        assert_eq!(b.as_str(), "www.example.com");
    }

    #[test]
    fn answer_a_record_via_compression_pointer() {
        // name = pointer to offset 12, type A, class IN, ttl, rdlen 4, 1.2.3.4
        let ans = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4];
        let mut st = Problems::default();
        let m = parse(&response_with(&ans), &mut st).unwrap();
        assert!(m.response);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].1, Answer::A("1.2.3.4".parse().unwrap(), 60));
    }

    #[test]
    fn pointer_loop_is_an_error_not_a_hang() {
        // The answer's name points at itself.
        let at = query().len() as u8;
        let ans = [0xc0, at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4];
        let mut st = Problems::default();
        let m = parse(&response_with(&ans), &mut st).unwrap();
        assert!(m.answers.is_empty());
        assert_eq!(st.of(Reason::DnsAnswersMalformed), 1);
    }

    #[test]
    fn pointer_past_end_keeps_question() {
        let ans = [0xc0, 0xff, 0, 1];
        let mut st = Problems::default();
        let m = parse(&response_with(&ans), &mut st).unwrap();
        assert_eq!(m.queries.len(), 1);
        assert_eq!(st.of(Reason::DnsAnswersMalformed), 1);
    }

    #[test]
    fn truncated_question_is_malformed() {
        let q = query();
        let mut st = Problems::default();
        assert!(parse(&q[..16], &mut st).is_none());
        assert!(parse(&q[..5], &mut st).is_none());
        assert_eq!(st.of(Reason::DnsMalformed), 2);
    }

    #[test]
    fn tcp_two_messages_in_one_segment_and_a_partial() {
        let q = query();
        let mut seg = Vec::new();
        for _ in 0..2 {
            seg.extend_from_slice(&(q.len() as u16).to_be_bytes());
            seg.extend_from_slice(&q);
        }
        seg.extend_from_slice(&(q.len() as u16).to_be_bytes());
        seg.extend_from_slice(&q[..4]);
        let mut st = Problems::default();
        let mut n = 0;
        parse_tcp(&seg, &mut st, |_, _| n += 1);
        assert_eq!(n, 2);
        assert_eq!(st.of(Reason::DnsTcpPartial), 1);
    }
}
