//! Which addresses the fetcher may connect to: public unicast only, unless
//! the operator allows private ones. Addresses that wrap an IPv4 address
//! are judged by what they reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is an ordinary globally reachable unicast address, i.e.
/// one the fetcher may connect to when private addresses are not allowed.
///
/// Addresses that wrap an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo)
/// are judged by the IPv4 address inside, because that is what the packets
/// end up reaching.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

/// IPv4 ranges that are not public, as (network, prefix length).
const V4_BLOCKED: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", includes unspecified
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 carrier-grade NAT
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local (cloud metadata lives here)
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 documentation
    (0xc058_6300, 24), // 192.88.99.0/24 old 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 documentation
    (0xcb00_7100, 24), // 203.0.113.0/24 documentation
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, includes 255.255.255.255 broadcast
];

fn is_public_v4(a: Ipv4Addr) -> bool {
    let n = u32::from(a);
    !V4_BLOCKED.iter().any(|&(net, len)| in_prefix32(n, net, len))
}

fn in_prefix32(n: u32, net: u32, len: u32) -> bool {
    // checked_shr yields None for a /0, which matches everything.
    (n ^ net).checked_shr(32 - len).unwrap_or(0) == 0
}

fn in_prefix128(n: u128, net: u128, len: u32) -> bool {
    (n ^ net).checked_shr(128 - len).unwrap_or(0) == 0
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let n = u128::from(a);
    let s = a.segments();
    let v4_at = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));

    // ::ffff:a.b.c.d is a v4 address in v6 clothing; a dual-stack socket
    // connects to the v4 address itself.
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // 64:ff9b::/96, the well-known NAT64 prefix, reaches the embedded v4
    // address through the local NAT64 gateway.
    if in_prefix128(n, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return is_public_v4(v4_at(s[6], s[7]));
    }
    // Only 2000::/3 is allocated as global unicast. This also rules out
    // ::, ::1, the deprecated IPv4-compatible ::a.b.c.d, ULA fc00::/7,
    // link-local fe80::/10, site-local fec0::/10, multicast ff00::/8,
    // discard 100::/64, local NAT64 64:ff9b:1::/48 and the like.
    if !in_prefix128(n, 0x2000 << 112, 3) {
        return false;
    }
    // Teredo 2001::/32 carries the server's v4 address in plain and the
    // client's v4 address inverted; both must be public.
    if in_prefix128(n, 0x2001 << 112, 32) {
        return is_public_v4(v4_at(s[2], s[3])) && is_public_v4(v4_at(!s[6], !s[7]));
    }
    // 6to4 2002::/16 routes to the v4 address in the next 32 bits.
    if in_prefix128(n, 0x2002 << 112, 16) {
        return is_public_v4(v4_at(s[1], s[2]));
    }
    const V6_BLOCKED: &[(u128, u32)] = &[
        (0x2001 << 112, 23), // IETF protocol assignments (benchmarking, ORCHID, ...)
        ((0x2001 << 112) | (0xdb8 << 96), 32), // 2001:db8::/32 documentation
        (0x3fff << 112, 20), // 3fff::/20 documentation
    ];
    !V6_BLOCKED.iter().any(|&(net, len)| in_prefix128(n, net, len))
}
