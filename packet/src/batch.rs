use crate::{Packet, Pool};

/// Most frames a worker moves through one stage at a time.
pub const BATCH_SIZE: usize = 64;

/// A batch of packets handed from stage to stage. Its storage is allocated once, when the
/// worker starts; pushing never grows it past `BATCH_SIZE`.
pub struct Batch {
    pkts: Vec<Packet>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            pkts: Vec::with_capacity(BATCH_SIZE),
        }
    }
}

impl Batch {
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.pkts.len() == BATCH_SIZE
    }

    pub fn room(&self) -> usize {
        BATCH_SIZE - self.pkts.len()
    }

    /// Adds a packet; hands it back if the batch is full.
    #[inline]
    pub fn push(&mut self, pkt: Packet) -> Result<(), Packet> {
        if self.is_full() {
            return Err(pkt);
        }
        self.pkts.push(pkt);
        Ok(())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Packet> {
        self.pkts.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Packet> {
        self.pkts.iter_mut()
    }

    /// Takes every packet out, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Packet> {
        self.pkts.drain(..)
    }

    /// Returns every packet still in the batch to `pool`.
    pub fn free_all(&mut self, pool: &mut Pool) {
        for p in self.pkts.drain(..) {
            pool.free(p);
        }
    }
}
