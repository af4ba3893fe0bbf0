//! Per-queue counters.
//!
//! Each counter has one writer at a time (whoever holds the queue's slot lock), so an
//! increment is a plain load and store, with no locked instruction; readers on the control
//! thread see a recent value without stopping anyone.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ring::RingError;

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a frame was dropped at a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than an Ethernet header (or than the virtio-net header).
    Runt,
    /// Longer than a packet buffer holds, or than the receiving port's MTU allows.
    Oversize,
    /// Offload flags or GSO in the virtio-net header, which we never negotiate.
    BadHeader,
    /// The guest had no receive buffers posted.
    NoRxBuffers,
    /// The frame is larger than a guest receive buffer and mergeable buffers are off.
    TooBigForGuest,
    /// The port has no frontend attached (or the queue is not enabled).
    Detached,
    /// The queue is broken (NEEDS_RESET) after a frontend violation.
    Broken,
    /// No forwarding destination for the frame.
    NoDestination,
    /// A VLAN tag the member does not carry (or a tag on an access member, or no tag
    /// on a trunk without a native VLAN).
    VlanFiltered,
    /// A VLAN tag cut short by the frame's end, or VLAN ID 4095.
    BadTag,
    /// Too long for the MTU of the port it would leave on.
    MtuExceeded,
    /// No packet buffer for a copy (flooding).
    NoBuffers,
    /// A group (multicast) or all-zero source address.
    BadSource,
    /// The destination was learned on the interface the frame came from.
    SameInterface,
    /// A routed frame sent to a unicast MAC address other than the router's.
    NotForUs,
    /// An EtherType, IP protocol or packet kind the router does not handle.
    Unsupported,
    /// An IPv4 or IPv6 header that fails validation (version, lengths, checksum), or a
    /// malformed ARP or neighbor discovery message.
    BadIpHeader,
    /// An address that must not be routed: a multicast or loopback source, a link-local
    /// address leaving its link.
    Martian,
    /// TTL or hop limit reached zero.
    TtlExceeded,
    /// No route to the destination.
    NoRoute,
    /// The route is a blackhole.
    Blackhole,
    /// The route is unreachable or prohibit (an ICMP error is sent).
    Unreachable,
    /// Too big for the egress MTU with fragmentation not allowed (an ICMP error is sent).
    FragmentationNeeded,
    /// The next hop's link-layer address could not be resolved, or too many packets
    /// were waiting for it.
    Unresolved,
}

impl DropReason {
    pub const ALL: [DropReason; 24] = [
        DropReason::Runt,
        DropReason::Oversize,
        DropReason::BadHeader,
        DropReason::NoRxBuffers,
        DropReason::TooBigForGuest,
        DropReason::Detached,
        DropReason::Broken,
        DropReason::NoDestination,
        DropReason::VlanFiltered,
        DropReason::BadTag,
        DropReason::MtuExceeded,
        DropReason::NoBuffers,
        DropReason::BadSource,
        DropReason::SameInterface,
        DropReason::NotForUs,
        DropReason::Unsupported,
        DropReason::BadIpHeader,
        DropReason::Martian,
        DropReason::TtlExceeded,
        DropReason::NoRoute,
        DropReason::Blackhole,
        DropReason::Unreachable,
        DropReason::FragmentationNeeded,
        DropReason::Unresolved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::Oversize => "oversize",
            DropReason::BadHeader => "bad_header",
            DropReason::NoRxBuffers => "no_rx_buffers",
            DropReason::TooBigForGuest => "too_big_for_guest",
            DropReason::Detached => "detached",
            DropReason::Broken => "broken",
            DropReason::NoDestination => "no_destination",
            DropReason::VlanFiltered => "vlan_filtered",
            DropReason::BadTag => "bad_tag",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::NoBuffers => "no_buffers",
            DropReason::BadSource => "bad_source",
            DropReason::SameInterface => "same_interface",
            DropReason::NotForUs => "not_for_us",
            DropReason::Unsupported => "unsupported",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::Martian => "martian",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::Blackhole => "blackhole",
            DropReason::Unreachable => "unreachable",
            DropReason::FragmentationNeeded => "fragmentation_needed",
            DropReason::Unresolved => "unresolved",
        }
    }
}

#[derive(Default)]
pub struct QueueCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    drops: [Counter; DropReason::ALL.len()],
    errors: [Counter; RingError::ALL.len()],
    pub notifications: Counter,
}

impl QueueCounters {
    #[inline]
    pub fn drop(&self, why: DropReason, n: u64) {
        self.drops[why as usize].add(n);
    }

    pub fn drops(&self, why: DropReason) -> u64 {
        self.drops[why as usize].get()
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }

    pub fn error(&self, e: RingError) {
        self.errors[e as usize].add(1);
    }

    pub fn errors(&self, e: RingError) -> u64 {
        self.errors[e as usize].get()
    }
}
