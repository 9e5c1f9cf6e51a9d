//! mDNS (RFC 6762, UDP 5353) host names: A and AAAA records for
//! `<name>.local` in the answer and additional sections of responses
//! (announcements and answers; queries and probes announce nothing).
//!
//! Owner names are read with hickory-proto (compression pointers, loop and
//! length checks); the fixed record fields and the address data are read
//! here, so an unusual record type elsewhere in the message cannot stop the
//! A/AAAA records from being read. Labels are raw bytes: mDNS names are
//! UTF-8 (`Máy-Kế-Toán.local`), kept as announced. Goodbye records (TTL 0)
//! withdraw a name and are skipped.

use super::{HostName, NameSource, Names};
use crate::packet::Reason;
use hickory_proto::op::{Header, MessageType, Query};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// mDNS reuses the class's top bit as the cache-flush flag.
const CACHE_FLUSH: u16 = 0x8000;

pub(super) fn parse(p: &[u8], out: &mut Vec<HostName>) -> Result<(), Reason> {
    const BAD: Reason = Reason::HostNameMalformed;
    let mut d = BinDecoder::new(p);
    let header = Header::read(&mut d).map_err(|_| BAD)?;
    if header.metadata.message_type != MessageType::Response {
        return Ok(());
    }
    for _ in 0..header.counts.queries {
        Query::read(&mut d).map_err(|_| BAD)?;
    }
    let c = &header.counts;
    let answers = usize::from(c.answers);
    let authority_end = answers + usize::from(c.authorities);
    let total = authority_end + usize::from(c.additionals);
    let mut names = Names::new(out);
    for i in 0..total {
        let Ok((owner, rtype, class, ttl, rdata)) = record(&mut d) else {
            // Keep what came before the break: a cut announcement still
            // names its host when its A record came first.
            return if names.pushed > 0 { Ok(()) } else { Err(BAD) };
        };
        let in_authority = (answers..authority_end).contains(&i);
        if in_authority || class & !CACHE_FLUSH != CLASS_IN || ttl == 0 {
            continue;
        }
        let ip = match (rtype, rdata) {
            (TYPE_A, &[a, b, c, d]) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            (TYPE_AAAA, data) if data.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                IpAddr::V6(Ipv6Addr::from(o))
            }
            (TYPE_A | TYPE_AAAA, _) => {
                return if names.pushed > 0 { Ok(()) } else { Err(BAD) };
            }
            _ => continue,
        };
        let labels: Vec<&[u8]> = owner.iter().collect();
        let [host @ .., last] = labels.as_slice() else {
            continue;
        };
        if host.is_empty() || !last.eq_ignore_ascii_case(b"local") {
            continue;
        }
        names.push(ip, &host.join(&b'.'), None, NameSource::Mdns);
    }
    names.finish()
}

/// One resource record: owner, type, class, TTL and its data.
fn record<'a>(d: &mut BinDecoder<'a>) -> Result<(Name, u16, u16, u32, &'a [u8]), ()> {
    let owner = Name::read(d).map_err(|_| ())?;
    let rtype = d.read_u16().map_err(|_| ())?.unverified();
    let class = d.read_u16().map_err(|_| ())?.unverified();
    let ttl = d.read_u32().map_err(|_| ())?.unverified();
    let len = d.read_u16().map_err(|_| ())?.unverified();
    let data = d.read_slice(usize::from(len)).map_err(|_| ())?.unverified();
    Ok((owner, rtype, class, ttl, data))
}
