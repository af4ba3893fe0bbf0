//! The driver side of a split virtqueue: what a guest (or a virtio-user frontend) does to
//! hand buffers to a device and take them back.
//!
//! [`DriverRing`] lays a ring out in guest memory and writes it only through vm-memory's
//! [`Bytes`] API: descriptors and ring entries with plain stores, the two indexes that
//! hand entries over with release stores and acquire loads, so it needs no `unsafe`.
//! It is deliberately raw: descriptors are written where and as the caller says, flags,
//! lengths and links included, so the same code serves a well-behaved frontend and a test
//! that plays a hostile one. Which descriptors are free is the caller's business; the
//! chain helpers ([`DriverRing::write_chain`], [`DriverRing::write_indirect`]) only lay
//! out and link the descriptors they are given room for.
//!
//! Everything in the rings is little-endian, as virtio 1.x requires.

use std::fmt;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError, GuestMemoryMmap};

use crate::ring::RingConfig;

/// Descriptor flag: the chain goes on at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (it reads it otherwise).
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors holding the chain.
pub const DESC_F_INDIRECT: u16 = 4;
/// Avail ring flag: the device need not interrupt when it uses buffers (without event_idx).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used ring flag: the driver need not kick when it makes buffers available.
pub const USED_F_NO_NOTIFY: u16 = 1;

/// Bytes in one descriptor.
pub const DESC_SIZE: u64 = 16;
/// Largest split ring the virtio specification allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// One descriptor as the driver writes it, with no constraint on any field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

impl Descriptor {
    /// A buffer the device reads.
    pub fn readable(addr: GuestAddress, len: u32) -> Descriptor {
        Descriptor {
            addr: addr.0,
            len,
            flags: 0,
            next: 0,
        }
    }

    /// A buffer the device writes.
    pub fn writable(addr: GuestAddress, len: u32) -> Descriptor {
        Descriptor {
            addr: addr.0,
            len,
            flags: DESC_F_WRITE,
            next: 0,
        }
    }

    /// A descriptor pointing to an indirect table of `count` descriptors at `table`.
    pub fn indirect(table: GuestAddress, count: u16) -> Descriptor {
        Descriptor {
            addr: table.0,
            len: u32::from(count) * DESC_SIZE as u32,
            flags: DESC_F_INDIRECT,
            next: 0,
        }
    }

    /// The same descriptor, continued at `next`.
    pub fn then(self, next: u16) -> Descriptor {
        Descriptor {
            flags: self.flags | DESC_F_NEXT,
            next,
            ..self
        }
    }

    fn to_bytes(self) -> [u8; DESC_SIZE as usize] {
        let mut b = [0u8; DESC_SIZE as usize];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..14].copy_from_slice(&self.flags.to_le_bytes());
        b[14..16].copy_from_slice(&self.next.to_le_bytes());
        b
    }

    fn from_bytes(b: [u8; DESC_SIZE as usize]) -> Descriptor {
        Descriptor {
            addr: u64::from_le_bytes(b[0..8].try_into().unwrap()),
            len: u32::from_le_bytes(b[8..12].try_into().unwrap()),
            flags: u16::from_le_bytes(b[12..14].try_into().unwrap()),
            next: u16::from_le_bytes(b[14..16].try_into().unwrap()),
        }
    }
}

/// A guest buffer for the chain helpers: `len` bytes at `addr`, read or written by the
/// device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub addr: GuestAddress,
    pub len: u32,
    pub writable: bool,
}

impl Buffer {
    pub fn readable(addr: GuestAddress, len: u32) -> Buffer {
        Buffer {
            addr,
            len,
            writable: false,
        }
    }

    pub fn writable(addr: GuestAddress, len: u32) -> Buffer {
        Buffer {
            addr,
            len,
            writable: true,
        }
    }

    fn descriptor(self) -> Descriptor {
        if self.writable {
            Descriptor::writable(self.addr, self.len)
        } else {
            Descriptor::readable(self.addr, self.len)
        }
    }
}

/// An entry of the used ring: the head of a chain the device is done with, and how many
/// bytes it wrote into it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsedElem {
    pub id: u32,
    pub len: u32,
}

#[derive(Debug)]
pub enum DriverError {
    /// Ring size not a power of two in 1..=32768, or a ring part misaligned.
    Layout,
    /// A ring part, table or buffer not (wholly) in guest memory.
    Memory(GuestMemoryError),
    /// A descriptor index beyond the descriptor table.
    Index(u16),
    /// A chain with no buffers, or with more than its table holds.
    ChainLength(usize),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Layout => write!(f, "bad split ring layout"),
            DriverError::Memory(e) => write!(f, "guest memory: {e}"),
            DriverError::Index(i) => write!(f, "descriptor index {i} beyond the table"),
            DriverError::ChainLength(n) => write!(f, "chain of {n} buffers does not fit"),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DriverError::Memory(e) => Some(e),
            _ => None,
        }
    }
}

impl From<GuestMemoryError> for DriverError {
    fn from(e: GuestMemoryError) -> Self {
        DriverError::Memory(e)
    }
}

pub type Result<T> = std::result::Result<T, DriverError>;

/// Where the three parts of a split ring live, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub desc: GuestAddress,
    pub avail: GuestAddress,
    pub used: GuestAddress,
    pub size: u16,
}

impl Layout {
    /// A layout with the parts where the caller says, checked for the specification's size
    /// and alignment rules (descriptor table 16 bytes, avail ring 2, used ring 4).
    pub fn new(
        desc: GuestAddress,
        avail: GuestAddress,
        used: GuestAddress,
        size: u16,
    ) -> Result<Layout> {
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(DriverError::Layout);
        }
        if desc.0 & 15 != 0 || avail.0 & 1 != 0 || used.0 & 3 != 0 {
            return Err(DriverError::Layout);
        }
        Ok(Layout {
            desc,
            avail,
            used,
            size,
        })
    }

    /// The three parts back to back from `base`: descriptor table, avail ring, then the
    /// used ring at the next 4-byte boundary. [`Layout::end`] says where the next free
    /// byte is.
    pub fn contiguous(base: GuestAddress, size: u16) -> Result<Layout> {
        let n = u64::from(size);
        let avail = base
            .0
            .checked_add(DESC_SIZE * n)
            .ok_or(DriverError::Layout)?;
        let used = avail
            .checked_add(Self::avail_bytes(size) + 3)
            .ok_or(DriverError::Layout)?
            & !3;
        Layout::new(base, GuestAddress(avail), GuestAddress(used), size)
    }

    /// Bytes of the descriptor table of a ring of `size`.
    pub fn desc_bytes(size: u16) -> u64 {
        DESC_SIZE * u64::from(size)
    }

    /// Bytes of the avail ring: flags, idx, `ring[size]`, used_event.
    pub fn avail_bytes(size: u16) -> u64 {
        6 + 2 * u64::from(size)
    }

    /// Bytes of the used ring: flags, idx, `ring[size]` of (id, len), avail_event.
    pub fn used_bytes(size: u16) -> u64 {
        6 + 8 * u64::from(size)
    }

    /// The first byte after the highest of the three parts.
    pub fn end(&self) -> GuestAddress {
        let ends = [
            self.desc.0 + Self::desc_bytes(self.size),
            self.avail.0 + Self::avail_bytes(self.size),
            self.used.0 + Self::used_bytes(self.size),
        ];
        GuestAddress(ends.into_iter().max().unwrap_or(0))
    }

    /// What a device is told to start this ring with: both indexes at `start`.
    pub fn ring_config(&self, start: u16, event_idx: bool) -> RingConfig {
        RingConfig {
            desc: self.desc.0,
            avail: self.avail.0,
            used: self.used.0,
            size: self.size,
            next_avail: start,
            next_used: start,
            event_idx,
        }
    }

    fn avail_flags(&self) -> GuestAddress {
        self.avail
    }

    fn avail_idx(&self) -> GuestAddress {
        GuestAddress(self.avail.0 + 2)
    }

    fn avail_slot(&self, slot: u16) -> GuestAddress {
        GuestAddress(self.avail.0 + 4 + 2 * u64::from(slot & (self.size - 1)))
    }

    fn used_event(&self) -> GuestAddress {
        GuestAddress(self.avail.0 + 4 + 2 * u64::from(self.size))
    }

    fn used_flags(&self) -> GuestAddress {
        self.used
    }

    fn used_idx(&self) -> GuestAddress {
        GuestAddress(self.used.0 + 2)
    }

    fn used_slot(&self, slot: u16) -> GuestAddress {
        GuestAddress(self.used.0 + 4 + 8 * u64::from(slot & (self.size - 1)))
    }

    fn avail_event(&self) -> GuestAddress {
        GuestAddress(self.used.0 + 4 + 8 * u64::from(self.size))
    }
}

/// The driver's end of one split virtqueue in guest memory.
///
/// Offering buffers is two steps: [`push`](DriverRing::push) writes a chain's head into
/// the next avail entry, [`publish`](DriverRing::publish) makes every pushed entry visible
/// with one index update and says whether the device wants a kick. Taking buffers back is
/// [`pop_used`](DriverRing::pop_used). The raw setters beside them write any value at all,
/// for a driver that must (or a test that wants to) break the rules.
pub struct DriverRing<M: GuestMemory = GuestMemoryMmap<()>> {
    mem: Arc<M>,
    layout: Layout,
    event_idx: bool,
    start: u16,
    /// Avail index the next pushed head goes to.
    next_avail: u16,
    /// Avail index the device can see.
    published_avail: u16,
    /// Next used entry to take back.
    last_used: u16,
}

impl<M: GuestMemory> DriverRing<M> {
    /// Lays a ring out at `layout` with both indexes at 0 (a freshly started queue).
    pub fn new(mem: Arc<M>, layout: Layout, event_idx: bool) -> Result<Self> {
        Self::starting_at(mem, layout, event_idx, 0)
    }

    /// Lays a ring out at `layout` with both indexes at `start`, as when a device resumes a
    /// queue (vhost-user SET_VRING_BASE). The rings are cleared: no flags, no entries, event
    /// indexes at `start`; the descriptor table is zeroed too.
    pub fn starting_at(mem: Arc<M>, layout: Layout, event_idx: bool, start: u16) -> Result<Self> {
        let l = layout;
        let zero_parts = [
            (l.desc, Layout::desc_bytes(l.size)),
            (l.avail, Layout::avail_bytes(l.size)),
            (l.used, Layout::used_bytes(l.size)),
        ];
        for (at, len) in zero_parts {
            mem.write_slice(&vec![0u8; len as usize], at)?;
        }
        let ring = DriverRing {
            mem,
            layout,
            event_idx,
            start,
            next_avail: start,
            published_avail: start,
            last_used: start,
        };
        ring.write_u16(l.avail_idx(), start)?;
        ring.write_u16(l.used_idx(), start)?;
        ring.write_u16(l.used_event(), start)?;
        ring.write_u16(l.avail_event(), start)?;
        Ok(ring)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn size(&self) -> u16 {
        self.layout.size
    }

    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    pub fn memory(&self) -> &Arc<M> {
        &self.mem
    }

    /// What the device is told when the queue starts: where the ring is, its size, the
    /// starting indexes and whether event indexes were negotiated.
    pub fn ring_config(&self) -> RingConfig {
        self.layout.ring_config(self.start, self.event_idx)
    }

    fn write_u16(&self, at: GuestAddress, v: u16) -> Result<()> {
        Ok(self.mem.write_obj(v.to_le(), at)?)
    }

    fn read_u16(&self, at: GuestAddress) -> Result<u16> {
        Ok(u16::from_le(self.mem.read_obj(at)?))
    }

    fn desc_addr(&self, index: u16) -> Result<GuestAddress> {
        if index >= self.layout.size {
            return Err(DriverError::Index(index));
        }
        Ok(GuestAddress(
            self.layout.desc.0 + DESC_SIZE * u64::from(index),
        ))
    }

    // Descriptors.

    /// Writes descriptor `index` of the table, whatever its fields.
    pub fn write_desc(&self, index: u16, d: Descriptor) -> Result<()> {
        Ok(self
            .mem
            .write_slice(&d.to_bytes(), self.desc_addr(index)?)?)
    }

    pub fn read_desc(&self, index: u16) -> Result<Descriptor> {
        let mut b = [0u8; DESC_SIZE as usize];
        self.mem.read_slice(&mut b, self.desc_addr(index)?)?;
        Ok(Descriptor::from_bytes(b))
    }

    /// Writes `descs` as a table of descriptors at `at` (an indirect table, or anything the
    /// caller wants there). Neither the address nor the fields are checked.
    pub fn write_table(&self, at: GuestAddress, descs: &[Descriptor]) -> Result<()> {
        let mut bytes = Vec::with_capacity(descs.len() * DESC_SIZE as usize);
        for d in descs {
            bytes.extend_from_slice(&d.to_bytes());
        }
        Ok(self.mem.write_slice(&bytes, at)?)
    }

    /// Writes `bufs` as one chain in descriptors `first`, `first + 1`, ... (wrapping at the
    /// end of the table), each linked to the next. Returns the head, `first`.
    pub fn write_chain(&self, first: u16, bufs: &[Buffer]) -> Result<u16> {
        let size = self.layout.size;
        if first >= size {
            return Err(DriverError::Index(first));
        }
        if bufs.is_empty() || bufs.len() > usize::from(size) {
            return Err(DriverError::ChainLength(bufs.len()));
        }
        let index = |k: usize| ((usize::from(first) + k) % usize::from(size)) as u16;
        for (k, b) in bufs.iter().enumerate() {
            let mut d = b.descriptor();
            if k + 1 < bufs.len() {
                d = d.then(index(k + 1));
            }
            self.write_desc(index(k), d)?;
        }
        Ok(first)
    }

    /// Writes `bufs` as a chain in an indirect table at `table` (linked 0, 1, ...) and
    /// descriptor `head` pointing to it. Returns `head`.
    pub fn write_indirect(&self, head: u16, table: GuestAddress, bufs: &[Buffer]) -> Result<u16> {
        if bufs.is_empty() || bufs.len() > usize::from(MAX_QUEUE_SIZE) {
            return Err(DriverError::ChainLength(bufs.len()));
        }
        let descs: Vec<Descriptor> = bufs
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let d = b.descriptor();
                if k + 1 < bufs.len() {
                    d.then(k as u16 + 1)
                } else {
                    d
                }
            })
            .collect();
        self.desc_addr(head)?;
        self.write_table(table, &descs)?;
        self.write_desc(head, Descriptor::indirect(table, descs.len() as u16))?;
        Ok(head)
    }

    // The avail ring.

    /// Puts `head` in the next avail entry; the device sees it after [`publish`].
    ///
    /// [`publish`]: DriverRing::publish
    pub fn push(&mut self, head: u16) -> Result<()> {
        self.set_avail_entry(self.next_avail, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(())
    }

    /// Makes every pushed entry visible to the device with one index update. Returns whether
    /// the device asked to be kicked for them (its avail_event with event_idx, the used
    /// ring's NO_NOTIFY flag without); a driver that does not kick when told to may leave
    /// the device asleep.
    pub fn publish(&mut self) -> Result<bool> {
        let old = self.published_avail;
        let new = self.next_avail;
        if old == new {
            return Ok(false);
        }
        self.mem
            .store(new.to_le(), self.layout.avail_idx(), Ordering::Release)?;
        self.published_avail = new;
        // We wrote the index and now read the device's wish; it wrote its wish and then
        // reads our index. Without a full fence both sides can miss the other's write.
        fence(Ordering::SeqCst);
        Ok(if self.event_idx {
            let event = self.read_u16(self.layout.avail_event())?;
            need_event(event, new, old)
        } else {
            self.used_flags()? & USED_F_NO_NOTIFY == 0
        })
    }

    /// Pushes every head of `heads` and publishes them together.
    pub fn offer(&mut self, heads: &[u16]) -> Result<bool> {
        for &h in heads {
            self.push(h)?;
        }
        self.publish()
    }

    /// Writes `head` into avail entry `slot` (taken modulo the ring size), as is: neither
    /// the head nor the slot need be sensible.
    pub fn set_avail_entry(&self, slot: u16, head: u16) -> Result<()> {
        self.write_u16(self.layout.avail_slot(slot), head)
    }

    /// Publishes `idx` as the avail index, whatever it is; later pushes continue from it.
    pub fn set_avail_idx(&mut self, idx: u16) -> Result<()> {
        self.mem
            .store(idx.to_le(), self.layout.avail_idx(), Ordering::Release)?;
        self.next_avail = idx;
        self.published_avail = idx;
        Ok(())
    }

    /// The avail index as last published.
    pub fn avail_idx(&self) -> u16 {
        self.published_avail
    }

    /// The avail index the next pushed entry goes to.
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }

    pub fn set_avail_flags(&self, flags: u16) -> Result<()> {
        self.write_u16(self.layout.avail_flags(), flags)
    }

    /// Asks for an interrupt once the device has used entry `idx` (with event_idx).
    pub fn set_used_event(&self, idx: u16) -> Result<()> {
        self.write_u16(self.layout.used_event(), idx)
    }

    /// Asks the device to interrupt (or not) when it uses buffers: the used_event index
    /// with event_idx, the avail ring's NO_INTERRUPT flag without.
    ///
    /// After enabling, the caller must look at the used ring again before waiting: entries
    /// used before the device saw the request raise no interrupt.
    pub fn set_interrupts(&self, enabled: bool) -> Result<()> {
        if self.event_idx {
            // Interrupt when the used index passes last_used; a value just behind it is only
            // passed again after the index wraps.
            let at = if enabled {
                self.last_used
            } else {
                self.last_used.wrapping_sub(1)
            };
            self.set_used_event(at)?;
        } else {
            self.set_avail_flags(if enabled { 0 } else { AVAIL_F_NO_INTERRUPT })?;
        }
        fence(Ordering::SeqCst);
        Ok(())
    }

    // The used ring.

    /// The used index as the device last published it.
    pub fn used_idx(&self) -> Result<u16> {
        let v: u16 = self.mem.load(self.layout.used_idx(), Ordering::Acquire)?;
        Ok(u16::from_le(v))
    }

    pub fn used_flags(&self) -> Result<u16> {
        self.read_u16(self.layout.used_flags())
    }

    /// The avail index at which the device asked to be kicked (with event_idx).
    pub fn avail_event(&self) -> Result<u16> {
        self.read_u16(self.layout.avail_event())
    }

    /// Used entry `slot` (taken modulo the ring size), whether published or not.
    pub fn used_elem(&self, slot: u16) -> Result<UsedElem> {
        let at = self.layout.used_slot(slot);
        let id: u32 = self.mem.read_obj(at)?;
        let len: u32 = self.mem.read_obj(GuestAddress(at.0 + 4))?;
        Ok(UsedElem {
            id: u32::from_le(id),
            len: u32::from_le(len),
        })
    }

    /// Used entries published and not yet taken back.
    pub fn pending_used(&self) -> Result<u16> {
        Ok(self.used_idx()?.wrapping_sub(self.last_used))
    }

    /// Takes back the next used entry, if the device has published one.
    pub fn pop_used(&mut self) -> Result<Option<UsedElem>> {
        if self.used_idx()? == self.last_used {
            return Ok(None);
        }
        let e = self.used_elem(self.last_used)?;
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some(e))
    }

    /// The used index up to which entries have been taken back.
    pub fn last_used(&self) -> u16 {
        self.last_used
    }
}

/// Whether moving an index from `old` to `new` passes `event` (virtio's vring_need_event).
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Arc<GuestMemoryMmap<()>> {
        Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap())
    }

    #[test]
    fn layout_rules() {
        assert!(Layout::contiguous(GuestAddress(0), 100).is_err());
        assert!(Layout::contiguous(GuestAddress(0), 0).is_err());
        assert!(Layout::contiguous(GuestAddress(8), 16).is_err());
        let l = Layout::contiguous(GuestAddress(0x100), 8).unwrap();
        assert_eq!(l.avail, GuestAddress(0x100 + 128));
        // avail: 6 + 16 = 22 bytes, rounded up to 24.
        assert_eq!(l.used, GuestAddress(0x100 + 128 + 24));
        assert_eq!(l.end(), GuestAddress(0x100 + 128 + 24 + 6 + 64));
        assert!(Layout::new(GuestAddress(0), GuestAddress(1), GuestAddress(4), 8).is_err());
        assert!(Layout::new(GuestAddress(0), GuestAddress(2), GuestAddress(6), 8).is_err());
    }

    #[test]
    fn descriptors_round_trip_little_endian() {
        let m = mem();
        let l = Layout::contiguous(GuestAddress(0), 8).unwrap();
        let r = DriverRing::new(m.clone(), l, false).unwrap();
        let d = Descriptor {
            addr: 0x0102_0304_0506_0708,
            len: 0x0a0b_0c0d,
            flags: 0x0e0f,
            next: 0x1011,
        };
        r.write_desc(3, d).unwrap();
        assert_eq!(r.read_desc(3).unwrap(), d);
        let mut raw = [0u8; 16];
        m.read_slice(&mut raw, GuestAddress(48)).unwrap();
        assert_eq!(raw[0], 0x08);
        assert_eq!(raw[8], 0x0d);
        assert_eq!(raw[12], 0x0f);
        assert_eq!(raw[14], 0x11);
        assert!(matches!(r.write_desc(8, d), Err(DriverError::Index(8))));
    }

    #[test]
    fn chains_link_and_wrap() {
        let r = DriverRing::new(
            mem(),
            Layout::contiguous(GuestAddress(0), 4).unwrap(),
            false,
        )
        .unwrap();
        let b = |a| Buffer::readable(GuestAddress(a), 10);
        r.write_chain(
            3,
            &[
                b(0x1000),
                b(0x2000),
                Buffer::writable(GuestAddress(0x3000), 5),
            ],
        )
        .unwrap();
        assert_eq!(
            r.read_desc(3).unwrap(),
            Descriptor::readable(GuestAddress(0x1000), 10).then(0)
        );
        assert_eq!(
            r.read_desc(0).unwrap(),
            Descriptor::readable(GuestAddress(0x2000), 10).then(1)
        );
        assert_eq!(
            r.read_desc(1).unwrap(),
            Descriptor::writable(GuestAddress(0x3000), 5)
        );
        assert!(r.write_chain(0, &[b(0); 5]).is_err());
        assert!(r.write_chain(0, &[]).is_err());
    }

    #[test]
    fn publish_honours_device_kick_requests() {
        let m = mem();
        let l = Layout::contiguous(GuestAddress(0), 8).unwrap();
        let mut r = DriverRing::new(m.clone(), l, false).unwrap();
        assert!(r.offer(&[1]).unwrap());
        assert_eq!(r.avail_idx(), 1);
        m.write_obj(USED_F_NO_NOTIFY, l.used).unwrap();
        assert!(!r.offer(&[2]).unwrap());
        assert!(!r.publish().unwrap(), "nothing new");

        let mut r = DriverRing::starting_at(m.clone(), l, true, 0xfffe).unwrap();
        // The device wants a kick once avail index 0xffff has been published.
        m.write_obj(0xffffu16, GuestAddress(l.used.0 + 4 + 8 * 8))
            .unwrap();
        assert!(
            !r.offer(&[0]).unwrap(),
            "0xfffe -> 0xffff does not pass 0xffff"
        );
        assert!(r.offer(&[1, 2]).unwrap(), "0xffff -> 0x0001 passes it");
        assert_eq!(r.avail_idx(), 1);
    }

    #[test]
    fn pop_used_follows_the_used_index() {
        let m = mem();
        let l = Layout::contiguous(GuestAddress(0), 4).unwrap();
        let mut r = DriverRing::starting_at(m.clone(), l, false, 0xffff).unwrap();
        assert!(r.pop_used().unwrap().is_none());
        // Device side, by hand: entries at slots 3 and 0, then the index.
        m.write_obj(2u32, GuestAddress(l.used.0 + 4 + 24)).unwrap();
        m.write_obj(77u32, GuestAddress(l.used.0 + 4 + 28)).unwrap();
        m.write_obj(1u32, GuestAddress(l.used.0 + 4)).unwrap();
        m.write_obj(5u32, GuestAddress(l.used.0 + 8)).unwrap();
        m.write_obj(1u16, GuestAddress(l.used.0 + 2)).unwrap();
        assert_eq!(r.pending_used().unwrap(), 2);
        assert_eq!(r.pop_used().unwrap(), Some(UsedElem { id: 2, len: 77 }));
        assert_eq!(r.pop_used().unwrap(), Some(UsedElem { id: 1, len: 5 }));
        assert_eq!(r.pop_used().unwrap(), None);
        assert_eq!(r.last_used(), 1);
    }

    #[test]
    fn need_event_matches_the_specification() {
        assert!(need_event(0, 1, 0));
        assert!(!need_event(1, 1, 0));
        assert!(need_event(4, 6, 3));
        assert!(!need_event(6, 6, 3));
        assert!(need_event(0xffff, 2, 0xfffe));
        assert!(!need_event(5, 5, 5));
    }
}
