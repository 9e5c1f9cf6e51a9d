//! Protocol parsers over borrowed bytes: they read a message and say what it
//! holds, and know nothing of indicators, hosts or units.
//!
//! - [`dns`]: DNS messages (hickory-proto), over UDP and framed over TCP;
//! - [`tls`]: the TLS ClientHello and its server name;
//! - [`quic`]: QUIC v1/v2 client Initials, decrypted to their ClientHello;
//! - [`http`]: HTTP/1.x request heads (method, Host, target);
//! - [`hostnames`]: names internal machines announce (DHCP, NetBIOS, mDNS);
//! - [`name`]: the one definition of a normalised host name.

pub mod dns;
pub mod hostnames;
pub mod http;
pub mod name;
pub mod quic;
pub mod tls;
