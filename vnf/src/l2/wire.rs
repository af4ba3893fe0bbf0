//! Ethernet and VLAN tag layout, and the tag edits the bridge makes in place.
//!
//! Tags are pushed into the buffer's headroom and popped by sliding the two MAC
//! addresses over them, so a frame is never copied to gain or lose a tag.

use packet::Packet;

pub const ETH_HEADER: usize = 14;
pub const MAC_LEN: usize = 6;
pub const TAG_LEN: usize = 4;
/// Offset of the EtherType (or of the first tag's TPID).
pub const ETHERTYPE_AT: usize = 12;

pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;
/// VID 4095 is reserved by 802.1Q and never carried.
pub const VID_RESERVED: u16 = 4095;
const VID_MASK: u16 = 0x0fff;

pub type Mac = [u8; MAC_LEN];

/// A tag's TPID and TCI (priority, DEI and VLAN ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    pub tpid: u16,
    pub tci: u16,
}

impl Tag {
    pub fn vid(self) -> u16 {
        self.tci & VID_MASK
    }
}

#[inline]
pub fn is_tpid(ethertype: u16) -> bool {
    ethertype == TPID_8021Q || ethertype == TPID_8021AD
}

#[inline]
fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

/// The EtherType (or outer TPID) of a frame at least `ETH_HEADER` long; 0 if shorter.
#[inline]
pub fn ethertype(frame: &[u8]) -> u16 {
    if frame.len() < ETH_HEADER {
        return 0;
    }
    be16(frame, ETHERTYPE_AT)
}

/// A TPID whose tag the frame ends inside of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TruncatedTag;

/// The tag at the front of the frame's tag stack (`depth` tags in), if the EtherType
/// position there holds a TPID.
#[inline]
pub fn tag(frame: &[u8], depth: usize) -> Result<Option<Tag>, TruncatedTag> {
    let at = ETHERTYPE_AT + depth * TAG_LEN;
    if frame.len() < at + 2 {
        return Ok(None);
    }
    let tpid = be16(frame, at);
    if !is_tpid(tpid) {
        return Ok(None);
    }
    if frame.len() < at + TAG_LEN + 2 {
        return Err(TruncatedTag);
    }
    Ok(Some(Tag {
        tpid,
        tci: be16(frame, at + 2),
    }))
}

/// How many tags (at most two) follow the MAC addresses.
#[inline]
pub fn tag_count(frame: &[u8]) -> usize {
    match tag(frame, 0) {
        Ok(Some(_)) => match tag(frame, 1) {
            Ok(Some(_)) => 2,
            _ => 1,
        },
        _ => 0,
    }
}

/// Both addresses (destination, then source) as one fixed-size value, so comparing two
/// frames' addresses is two integer compares. The frame is at least 12 bytes long.
#[inline]
pub fn addresses(frame: &[u8]) -> [u8; 2 * MAC_LEN] {
    frame[..2 * MAC_LEN]
        .try_into()
        .expect("slice of 2 * MAC_LEN")
}

/// The Ethernet header (addresses and EtherType) as two overlapping words, for
/// comparing two frames' headers cheaply. The frame is at least `ETH_HEADER` long.
#[inline]
pub fn header_words(frame: &[u8]) -> (u64, u64) {
    let w = |at: usize| u64::from_ne_bytes(frame[at..at + 8].try_into().expect("8 bytes"));
    (w(0), w(ETH_HEADER - 8))
}

#[inline]
pub fn dst(frame: &[u8]) -> Mac {
    frame[..MAC_LEN].try_into().expect("slice of MAC_LEN")
}

#[inline]
pub fn src(frame: &[u8]) -> Mac {
    frame[MAC_LEN..2 * MAC_LEN]
        .try_into()
        .expect("slice of MAC_LEN")
}

/// Group addresses (broadcast and multicast) have the I/G bit set.
#[inline]
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// Removes the first tag. The caller has checked that the frame holds one.
#[inline]
pub fn pop_tag(pkt: &mut Packet) {
    let d = pkt.data_mut();
    d.copy_within(0..2 * MAC_LEN, TAG_LEN);
    pkt.pull_front(TAG_LEN);
}

/// Inserts a tag after the MAC addresses; false if the headroom is used up.
#[inline]
pub fn push_tag(pkt: &mut Packet, tag: Tag) -> bool {
    if pkt.push_front(TAG_LEN).is_none() {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(TAG_LEN..TAG_LEN + 2 * MAC_LEN, 0);
    d[ETHERTYPE_AT..ETHERTYPE_AT + 2].copy_from_slice(&tag.tpid.to_be_bytes());
    d[ETHERTYPE_AT + 2..ETHERTYPE_AT + 4].copy_from_slice(&tag.tci.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet::Pool;

    fn frame(pool: &mut Pool, bytes: &[u8]) -> Packet {
        let mut p = pool.alloc().unwrap();
        p.room_mut()[..bytes.len()].copy_from_slice(bytes);
        assert!(p.set_len(bytes.len()));
        p
    }

    const UNTAGGED: [u8; 20] = [
        1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    ];

    #[test]
    fn push_then_pop_restores_the_frame() {
        let mut pool = Pool::new(4).unwrap();
        let mut p = frame(&mut pool, &UNTAGGED);
        assert!(push_tag(
            &mut p,
            Tag {
                tpid: TPID_8021Q,
                tci: 0x2064
            }
        ));
        assert!(push_tag(
            &mut p,
            Tag {
                tpid: TPID_8021AD,
                tci: 300
            }
        ));
        let d = p.data();
        assert_eq!(d.len(), UNTAGGED.len() + 8);
        assert_eq!(&d[..12], &UNTAGGED[..12]);
        assert_eq!(
            &d[12..20],
            &[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x20, 0x64]
        );
        assert_eq!(&d[20..], &UNTAGGED[12..]);
        assert_eq!(tag_count(d), 2);
        assert_eq!(tag(d, 1).unwrap().unwrap().vid(), 100);
        pop_tag(&mut p);
        pop_tag(&mut p);
        assert_eq!(p.data(), &UNTAGGED);
        pool.free(p);
    }

    #[test]
    fn truncated_tag_is_an_error_and_short_frames_have_none() {
        let truncated = [1u8, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x81, 0x00, 0x00];
        assert_eq!(tag(&truncated, 0), Err(TruncatedTag));
        assert_eq!(tag(&truncated[..12], 0), Ok(None));
        assert_eq!(tag(&UNTAGGED, 0), Ok(None));
        assert_eq!(tag_count(&truncated), 0);
    }

    #[test]
    fn group_bit() {
        assert!(is_group(&[0xff; 6]));
        assert!(is_group(&[0x33, 0x33, 0, 0, 0, 1]));
        assert!(!is_group(&[0x52, 0x54, 0, 0, 0, 1]));
    }
}
