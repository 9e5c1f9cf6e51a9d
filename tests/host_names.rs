//! Host names in the offender store: names and hits through the one writer,
//! in either order and across commits; the history of a renamed machine;
//! the latest name on the export row; a version-1 store migrated in place.

use gatewatch::protocols::hostnames::NameSource;
use gatewatch::reports::export::select_offenders;
use gatewatch::reports::export::table::HEADERS;
use gatewatch::reports::export::text::write_csv;
use gatewatch::store::writer::{NameRecord, StoreRecord, StoreWriter};
use gatewatch::store::{SCHEMA_VERSION, Store};
use gatewatch::testkit::{bin, ip};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

const PC: &str = "10.20.1.13";
const MAC: [u8; 6] = [0x3c, 0x52, 0x82, 0x1a, 0x2b, 0x3c];

fn hit(host: &str, ts_ns: i64) -> StoreRecord {
    StoreRecord {
        ts_ns,
        host: ip(host),
        unit: "SO-TTTT".into(),
        unit_name: "Sở Thông tin và Truyền thông".into(),
        value: "91.254.215.167".into(),
        kind: "ipv4",
        feed: "c2".into(),
        category: "c2".into(),
        severity: "high",
        json: "{}".into(),
    }
}

fn name(host: &str, n: &str, source: NameSource, ts_ns: i64) -> NameRecord {
    NameRecord {
        ts_ns,
        ip: ip(host),
        name: n.into(),
        mac: matches!(source, NameSource::Dhcp | NameSource::DhcpFqdn).then_some(MAC),
        source,
    }
}

enum Rec {
    Hit(StoreRecord),
    Name(NameRecord),
}

/// One writer session: everything queued in order, then committed.
fn write(db: &Path, recs: Vec<Rec>) {
    let w = StoreWriter::start(Store::open(db).unwrap(), 1000, None);
    let (mut hits, mut names) = (0, 0);
    for r in recs {
        match r {
            Rec::Hit(h) => {
                hits += 1;
                w.put(h)
            }
            Rec::Name(n) => {
                names += 1;
                w.put_name(n)
            }
        }
    }
    let st = w.finish();
    assert_eq!(st.written.load(Relaxed), hits);
    assert_eq!(st.names_written.load(Relaxed), names);
    assert_eq!(st.errors.load(Relaxed), 0);
}

fn hostname(db: &Path, host: &str) -> Option<String> {
    let s = Store::open_read_only(db).unwrap();
    s.host(ip(host)).unwrap().expect("host in store").hostname
}

/// The "Tên máy" cell of `host`'s row in the CSV export.
fn exported_name(db: &Path, host: &str) -> String {
    let s = Store::open_read_only(db).unwrap();
    let sel = select_offenders(&s, None, None).unwrap();
    let mut csv = Vec::new();
    write_csv(&sel.rows, &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut r = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let col = HEADERS.iter().position(|h| *h == "Tên máy").unwrap();
    assert_eq!(&r.headers().unwrap()[col], "Tên máy");
    r.records()
        .map(|x| x.unwrap())
        .find(|x| &x[0] == host)
        .map(|x| x[col].to_owned())
        .expect("row of the host")
}

#[test]
fn a_name_learned_before_the_hit_is_on_the_export_row() {
    let d = tempfile::tempdir().unwrap();
    // Across commits: the name in one session, the hit in the next.
    let db = d.path().join("a.db");
    write(
        &db,
        vec![Rec::Name(name(PC, "PC-KeToan01", NameSource::Dhcp, 100))],
    );
    write(&db, vec![Rec::Hit(hit(PC, 200))]);
    assert_eq!(hostname(&db, PC).as_deref(), Some("PC-KeToan01"));
    assert_eq!(exported_name(&db, PC), "PC-KeToan01");
    // In one batch, name first.
    let db = d.path().join("b.db");
    write(
        &db,
        vec![
            Rec::Name(name(PC, "Máy Kế Toán", NameSource::Netbios, 100)),
            Rec::Hit(hit(PC, 200)),
            Rec::Hit(hit("10.20.1.14", 200)),
        ],
    );
    assert_eq!(exported_name(&db, PC), "Máy Kế Toán");
    assert_eq!(hostname(&db, "10.20.1.14"), None);
    assert_eq!(exported_name(&db, "10.20.1.14"), "");
}

#[test]
fn a_name_learned_after_the_hit_updates_the_host() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("g.db");
    write(&db, vec![Rec::Hit(hit(PC, 100))]);
    assert_eq!(hostname(&db, PC), None);
    write(
        &db,
        vec![Rec::Name(name(PC, "pc13", NameSource::Mdns, 500))],
    );
    assert_eq!(exported_name(&db, PC), "pc13");
    // A name for an address that never hit is kept, and makes no host.
    write(
        &db,
        vec![Rec::Name(name("10.20.9.9", "NAS", NameSource::Netbios, 1))],
    );
    let s = Store::open_read_only(&db).unwrap();
    assert!(s.host(ip("10.20.9.9")).unwrap().is_none());
    assert_eq!(s.host_names(ip("10.20.9.9")).unwrap()[0].name, "NAS");
    assert_eq!(s.hosts(None).unwrap().len(), 1);
}

#[test]
fn a_renamed_machine_keeps_both_names_and_shows_the_latest() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("g.db");
    write(
        &db,
        vec![
            Rec::Name(name(PC, "PC-OLD", NameSource::Dhcp, 100)),
            Rec::Hit(hit(PC, 150)),
            Rec::Name(name(PC, "PC-OLD", NameSource::Dhcp, 120)),
            Rec::Name(name(PC, "PC-NEW", NameSource::Dhcp, 300)),
        ],
    );
    assert_eq!(exported_name(&db, PC), "PC-NEW");
    // A late replay of the old name (seen before the new one) extends its
    // span but does not make it the latest again.
    write(
        &db,
        vec![
            Rec::Name(name(PC, "PC-OLD", NameSource::Dhcp, 200)),
            Rec::Name(name(PC, "PC-OLD", NameSource::Dhcp, 50)),
        ],
    );
    let s = Store::open_read_only(&db).unwrap();
    let h = s.host_names(ip(PC)).unwrap();
    let got: Vec<(&str, &str, i64, i64)> = h
        .iter()
        .map(|n| (&*n.name, &*n.source, n.first_seen_ns, n.last_seen_ns))
        .collect();
    assert_eq!(
        got,
        [("PC-NEW", "dhcp", 300, 300), ("PC-OLD", "dhcp", 50, 200)]
    );
    assert_eq!(h[0].mac.as_deref(), Some("3c:52:82:1a:2b:3c"));
    assert_eq!(exported_name(&db, PC), "PC-NEW");
    assert_eq!(
        s.offender(ip(PC)).unwrap().unwrap().hostname.as_deref(),
        Some("PC-NEW")
    );
    drop(s);

    // Seen at the same time from several sources: the DHCP host name is
    // shown (before the FQDN, though it sorts after it); each source keeps
    // its own row, and no MAC (NetBIOS) is a key of its own.
    let mut fqdn = name(PC, "KT01.so-tttt.gov.vn", NameSource::DhcpFqdn, 900);
    write(
        &db,
        vec![
            Rec::Name(name(PC, "PC-NEW", NameSource::Netbios, 900)),
            Rec::Name(name(PC, "PC-NEW", NameSource::Netbios, 900)),
            Rec::Name(fqdn.clone()),
            Rec::Name(name(PC, "PC-NEW", NameSource::Dhcp, 900)),
        ],
    );
    assert_eq!(hostname(&db, PC).as_deref(), Some("PC-NEW"));
    let s = Store::open_read_only(&db).unwrap();
    let order: Vec<(String, String)> = s
        .host_names(ip(PC))
        .unwrap()
        .into_iter()
        .map(|n| (n.name, n.source))
        .collect();
    assert_eq!(
        order,
        [
            ("PC-NEW".into(), "dhcp".into()),
            ("KT01.so-tttt.gov.vn".into(), "dhcp_fqdn".into()),
            ("PC-NEW".into(), "netbios".into()),
            ("PC-OLD".into(), "dhcp".into()),
        ]
    );
    drop(s);
    // The same name from another network card is another row.
    fqdn.mac = Some([2, 0, 0, 0, 0, 9]);
    write(&db, vec![Rec::Name(fqdn)]);
    let s = Store::open_read_only(&db).unwrap();
    assert_eq!(s.host_names(ip(PC)).unwrap().len(), 5);
}

#[test]
fn names_share_the_bounded_queue_and_overflow_is_counted() {
    let d = tempfile::tempdir().unwrap();
    let w = StoreWriter::start(Store::open(&d.path().join("q.db")).unwrap(), 4, None);
    let mut refused = 0;
    for i in 0..5_000i64 {
        let n = name(PC, &format!("pc{}", i % 7), NameSource::Mdns, i);
        if !w.offer_name(n) {
            refused += 1;
        }
    }
    let st = w.finish();
    let (written, overflow) = (
        st.names_written.load(Relaxed),
        st.names_overflow.load(Relaxed),
    );
    assert!(
        refused > 0,
        "a 4-slot queue should overflow under 5,000 offers"
    );
    assert_eq!(overflow, refused);
    assert_eq!(written + overflow, 5_000, "every name written or counted");
    assert_eq!(
        (st.written.load(Relaxed), st.overflow.load(Relaxed)),
        (0, 0)
    );
}

#[test]
fn a_version_1_store_migrates_and_keeps_its_hosts() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("v1.db");
    Store::create_with_schema(&db, 1).unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        c.execute_batch(
            "INSERT INTO units VALUES ('SO-TTTT', 'Sở TTTT');
             INSERT INTO hosts (ip, unit, first_seen, last_seen, hits)
             VALUES ('10.20.1.13', 'SO-TTTT', 10, 20, 3);",
        )
        .unwrap();
    }
    // Readers refuse an old schema until the sensor has migrated it.
    let e = Store::open_read_only(&db)
        .err()
        .expect("old schema refused");
    assert!(e.to_string().contains("schema 1 is older"), "{e}");

    write(
        &db,
        vec![Rec::Name(name(PC, "PC-KeToan01", NameSource::Dhcp, 30))],
    );
    let s = Store::open_read_only(&db).unwrap();
    assert_eq!(SCHEMA_VERSION, 7);
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let h = s.host(ip(PC)).unwrap().unwrap();
    assert_eq!((h.hits, h.first_seen_ns, h.last_seen_ns), (3, 10, 20));
    assert_eq!(h.hostname.as_deref(), Some("PC-KeToan01"));
    assert_eq!(exported_name(&db, PC), "PC-KeToan01");
    drop(s);
    // Every step from an empty file, and a store already current, open too.
    for v in 0..=SCHEMA_VERSION {
        let p = d.path().join(format!("s{v}.db"));
        Store::create_with_schema(&p, v).unwrap();
        assert_eq!(
            Store::open(&p).unwrap().schema_version().unwrap(),
            SCHEMA_VERSION
        );
    }
    assert!(
        Store::create_with_schema(&db, 1).is_err(),
        "never over a file"
    );
}

/// End to end on a crafted capture: a DHCPREQUEST names the machine, its
/// later DNS query for a listed domain is an alert carrying that name, and
/// `gatewatch replay --store` puts the name on the export row.
#[test]
fn dhcp_name_is_attached_to_later_hits_and_exported() {
    use gatewatch::testkit::names::dhcp_request;
    use gatewatch::testkit::{PcapWriter, T0_US, dns_query, udp_frame};
    use hickory_proto::rr::RecordType;
    let d = tempfile::tempdir().unwrap();
    let mut w = PcapWriter::new(1, 65535);
    let dhcp = dhcp_request(
        MAC,
        0x1234,
        Some("10.20.1.13".parse().unwrap()),
        Some("PC-KeToan01"),
        None,
    );
    let ts = T0_US;
    w.frame(
        ts,
        &udp_frame(ip("0.0.0.0"), ip("255.255.255.255"), 68, 67, None, &dhcp),
        0,
    );
    let q = dns_query(5, "beacon.bad.example", RecordType::A);
    w.frame(
        ts + 5_000_000,
        &udp_frame(ip(PC), ip("8.8.8.8"), 40000, 53, None, &q),
        0,
    );
    let pcap = d.path().join("t.pcap");
    w.write(&pcap);
    std::fs::write(d.path().join("bad.txt"), "bad.example\n").unwrap();
    std::fs::write(
        d.path().join("feeds.toml"),
        "[[feed]]\nname = \"ncsc\"\npath = \"bad.txt\"\nformat = \"plain\"\ncategory = \"botnet-c2\"\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("units.csv"),
        "code,name,cidrs\nSO-TTTT,Sở Thông tin và Truyền thông,10.20.1.0/24\n",
    )
    .unwrap();
    let db = d.path().join("g.db");
    let alerts = d.path().join("alerts.jsonl");
    let out = bin()
        .arg("replay")
        .arg("--feeds")
        .arg(d.path().join("feeds.toml"))
        .arg("--units")
        .arg(d.path().join("units.csv"))
        .arg("--alerts")
        .arg(&alerts)
        .arg("--store")
        .arg(&db)
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&alerts).unwrap();
    let alert: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(alert["host_ip"], PC);
    assert_eq!(alert["hostname"], "PC-KeToan01");
    assert_eq!(hostname(&db, PC).as_deref(), Some("PC-KeToan01"));
    assert_eq!(exported_name(&db, PC), "PC-KeToan01");
    let names = Store::open_read_only(&db)
        .unwrap()
        .host_names(ip(PC))
        .unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].mac.as_deref(), Some("3c:52:82:1a:2b:3c"));
}

/// Issue 14, defect 2: an mDNS announcement (port 5353, which is also DNS)
/// names the machine, and its later hit carries the name.
#[test]
fn mdns_announcement_names_the_host() {
    use gatewatch::testkit::names::mdns_announcement;
    use gatewatch::testkit::{crafted_engine, dns_query, replay_at_secs, udp_frame};
    use hickory_proto::rr::RecordType;
    let host = "10.1.0.7";
    let ann = mdns_announcement("johanna-QEMU-Virtual-Machine", &[ip(host)]);
    let q = dns_query(5, "beacon.c2.example", RecordType::A);
    let frames = [
        (
            0,
            udp_frame(ip(host), ip("224.0.0.251"), 5353, 5353, None, &ann),
        ),
        (5, udp_frame(ip(host), ip("8.8.8.8"), 40000, 53, None, &q)),
    ];
    let mut e = crafted_engine(&["c2.example"]);
    let c = replay_at_secs(&mut e, &frames);
    assert_eq!(e.stats.host_names_seen, 1, "{}", e.stats);
    assert_eq!(c.hits.len(), 1);
    assert_eq!(
        c.hits[0].host_name.as_deref(),
        Some("johanna-QEMU-Virtual-Machine")
    );
}

/// Issue 14, defect 4: a NetBIOS name for an internal address is believed
/// from the machine itself (a registration from another sender is refused
/// at parse), and an answer only from inside (a WINS server), never from
/// the Internet.
#[test]
fn names_from_outside_are_not_believed() {
    use gatewatch::packet::Reason;
    use gatewatch::testkit::names::{NbnsMsg, nbns_registration};
    use gatewatch::testkit::{crafted_engine, dns_query, replay_at_secs, udp_frame};
    use hickory_proto::rr::RecordType;
    let host = "10.1.0.9";
    let q = dns_query(5, "beacon.c2.example", RecordType::A);
    let reg = nbns_registration("PLANTED", host.parse().unwrap());
    let answer = NbnsMsg {
        opcode: 0,
        response: true,
        name: "PLANTED".into(),
        suffix: 0,
        group: false,
        addrs: vec![host.parse().unwrap()],
    }
    .encode();
    // (sender, message, named, refused at parse, from outside)
    let cases = [
        ("203.0.113.66", &reg, false, 1, 0),
        ("203.0.113.66", &answer, false, 0, 1),
        ("10.1.0.77", &reg, false, 1, 0),
        ("10.1.0.53", &answer, true, 0, 0),
        (host, &reg, true, 0, 0),
    ];
    for (sender, msg, named, refused, outside) in cases {
        let frames = [
            (
                0,
                udp_frame(ip(sender), ip("10.1.255.255"), 137, 137, None, msg),
            ),
            (5, udp_frame(ip(host), ip("8.8.8.8"), 40000, 53, None, &q)),
        ];
        let mut e = crafted_engine(&["c2.example"]);
        let c = replay_at_secs(&mut e, &frames);
        assert_eq!(c.hits.len(), 1);
        assert_eq!(c.hits[0].host_name.is_some(), named, "sender {sender}");
        assert_eq!(
            e.stats.errors_of(Reason::HostNameRejected),
            refused,
            "{sender}"
        );
        assert_eq!(e.stats.host_names_from_outside, outside, "{sender}");
    }
}
